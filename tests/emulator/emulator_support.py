"""Constants and helpers shared by the emulator tests (a uniquely named module, not conftest)."""

from __future__ import annotations

import base64
import io
import json
from typing import Any

import aiohttp
import numpy as np

from convai_emulator.config import DEV_API_KEY, EmulatorConfig
from convai_emulator.wavfile import WavAudio, read_wav

BLACKSMITH = "c0ffee00-0000-4000-8000-000000000001"
GUARD = "c0ffee00-0000-4000-8000-000000000002"
MERCHANT = "c0ffee00-0000-4000-8000-000000000003"
INNKEEPER = "c0ffee00-0000-4000-8000-000000000004"  # long-term memory
SECOND_KEY = "second-test-key"
LIVE_HEADERS = {"X-API-Key": DEV_API_KEY}
REST_HEADERS = {"CONVAI-API-KEY": DEV_API_KEY}


def make_config(**overrides: Any) -> EmulatorConfig:
    base: dict[str, Any] = {"stream_delay_ms": 1.0, "max_sessions_per_key": 3, "extra_api_keys": (SECOND_KEY,)}
    base.update(overrides)
    return EmulatorConfig(**base)


def decode_wav_b64(text: str) -> WavAudio:
    return read_wav(base64.b64decode(text))


def speech_like(pcm: np.ndarray, rate: int) -> bool:
    """Loud enough, and its 20 ms frame energy rises and falls like syllables (not a steady tone)."""
    x = pcm.astype(np.float64).reshape(-1)
    if x.size < rate // 4:
        return False
    rms = float(np.sqrt(np.mean(x**2)))
    frame = rate // 50
    energies = np.sqrt(np.mean(x[: x.size // frame * frame].reshape(-1, frame) ** 2, axis=1))
    loud = energies > 0.25 * energies.max()
    quiet = energies < 0.1 * energies.max()
    return rms > 300 and loud.mean() > 0.2 and quiet.mean() > 0.03


async def read_sse(response: aiohttp.ClientResponse) -> list[dict[str, Any]]:
    events = []
    buffer = io.StringIO()
    async for raw in response.content:
        line = raw.decode()
        if line.startswith("data: "):
            buffer.write(line[6:])
        elif line.strip() == "" and buffer.tell():
            events.append(json.loads(buffer.getvalue()))
            buffer = io.StringIO()
    return events
