"""The daemon's own Live transports (bridge.backends.live) against the emulator's realtime side."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import numpy as np
import pytest
from conftest import BRAKKA, connect
from emu_lk_client import event_type

from convai_emulator.server import Emulator

livekit_mod = pytest.importorskip("bridge.backends.live.livekit")
sdp_mod = pytest.importorskip("bridge.backends.live.sdp")


class Inbox:
    def __init__(self) -> None:
        self.messages: list[tuple[float, dict[str, Any], str]] = []
        self.audio: list[tuple[float, np.ndarray]] = []
        self.t0 = time.monotonic()

    def on_json(self, message: dict[str, Any], sender: str) -> None:
        self.messages.append((time.monotonic() - self.t0, message, sender))

    def on_audio(self, pcm: np.ndarray, rate: int, channels: int) -> None:
        self.audio.append((time.monotonic() - self.t0, pcm.reshape(-1)[::channels].copy()))

    def types(self) -> list[str]:
        return [event_type(m) for _, m, _ in self.messages]

    async def wait(self, type_: str, count: int = 1, timeout: float = 15.0) -> None:
        deadline = time.monotonic() + timeout
        while self.types().count(type_) < count:
            assert time.monotonic() < deadline, f"timed out waiting for {type_}: {self.types()[-20:]}"
            await asyncio.sleep(0.02)


@pytest.mark.parametrize("single_pc", [False, True], ids=["v0-dual-pc", "v1-single-pc"])
async def test_daemon_livekit_transport(emulator: Emulator, single_pc: bool) -> None:
    body = await connect(emulator)
    transport = livekit_mod.LiveKitTransport(body["room_url"], body["token"], single_pc=single_pc)
    inbox = Inbox()
    transport.on_json = inbox.on_json
    transport.on_bot_audio = inbox.on_audio
    await transport.connect(timeout=10)
    try:
        await inbox.wait("bot-ready")
        await transport.send_json({"label": "rtvi-ai", "type": "user_text_message", "id": "d1",
                                   "data": {"text": "wave"}})
        await inbox.wait("bot-turn-completed")
        assert any(m.get("id") == "d1" for _, m, _ in inbox.messages)
        started = next(t for t, m, _ in inbox.messages if event_type(m) == "bot-started-speaking")
        speech = [pcm for t, pcm in inbox.audio if t >= started]
        assert speech and np.sqrt(np.mean(np.concatenate(speech).astype(np.float64) ** 2)) > 300

        # microphone: the bot's VAD hears the daemon's mic frames
        from convai_emulator.voice import VoiceSpec, synthesize

        pcm = synthesize("Good evening, smith.", VoiceSpec(), 48000)
        pcm = np.concatenate([pcm, np.zeros(48000, np.int16)])
        for start in range(0, len(pcm) - 960, 960):
            transport.send_mic(pcm[start:start + 960])
            await asyncio.sleep(0.02)
        await inbox.wait("vad-stt-stopped", timeout=10)
    finally:
        await transport.close()


async def test_daemon_smallwebrtc_transport(emulator: Emulator) -> None:
    transport = sdp_mod.SmallWebRTCTransport(f"{emulator.base_url}/bots/{BRAKKA}/api/offer",
                                             request_data={"blendshape_provider": "neurosync",
                                                           "blendshape_config": {"format": "arkit"}})
    inbox = Inbox()
    transport.on_json = inbox.on_json
    transport.on_bot_audio = inbox.on_audio
    await transport.connect(timeout=10)
    try:
        await inbox.wait("bot-ready")
        await transport.send_json({"label": "rtvi-ai", "type": "user_text_message", "id": "s1",
                                   "data": {"text": "wave"}})
        await inbox.wait("bot-turn-completed")
        chunks = [m for _, m, _ in inbox.messages if event_type(m) == "chunked-neurosync-blendshapes"]
        assert chunks and len(chunks[0]["data"]["blendshapes"][0]) == 61
    finally:
        await transport.close()
