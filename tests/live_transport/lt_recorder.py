"""Collects what a transport hands its owner, and waits for conditions, for assertions."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any

import numpy as np

from bridge.backends.live.transport import RealtimeTransport
from tests.live_transport.lt_tone import to_mono


class Recorder:
    def __init__(self, transport: RealtimeTransport) -> None:
        self.json: list[tuple[dict[str, Any], str]] = []
        self.audio: list[tuple[np.ndarray, int, int]] = []
        self.states: list[tuple[str, str | None]] = []
        transport.on_json = lambda message, sender: self.json.append((message, sender))
        transport.on_bot_audio = lambda pcm, rate, channels: self.audio.append((pcm.copy(), rate, channels))
        transport.on_state = lambda state, reason: self.states.append((state, reason))

    def types(self) -> list[str]:
        return [str(message.get("type")) for message, _ in self.json]

    def bot_pcm(self, last_frames: int = 50) -> np.ndarray:
        frames = self.audio[-last_frames:]
        return np.concatenate([to_mono(pcm, channels) for pcm, _, channels in frames])


async def wait_for(predicate: Callable[[], bool], timeout: float = 5.0, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        await asyncio.sleep(0.02)
