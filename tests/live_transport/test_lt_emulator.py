"""The transports against the real emulator (convai_emulator + its realtime extension).

This is the daemon's actual path: ``POST /connect`` → LiveKit room → Convai-style bot, and the
emulator's direct SDP bot for :class:`SmallWebRTCTransport`.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import numpy as np
import pytest

from bridge.backends.live.connect import ConnectResult, connect_session, disconnect_session
from bridge.backends.live.livekit import LiveKitTransport
from bridge.backends.live.sdp import SmallWebRTCTransport
from bridge.backends.live.transport import TransportError
from tests.live_transport.lt_recorder import Recorder, wait_for

emulator_config = pytest.importorskip("convai_emulator.config")
emulator_realtime = pytest.importorskip("convai_emulator.realtime")
emulator_server = pytest.importorskip("convai_emulator.server")
emulator_voice = pytest.importorskip("convai_emulator.voice")

CHARACTER = "c0ffee00-0000-4000-8000-000000000001"
CLIENT_READY = {"label": "rtvi-ai", "type": "client-ready", "id": "cr1",
                "data": {"version": "1.2.0", "about": {"library": "convai-bridge"}}}


def event_type(message: dict[str, Any]) -> str:
    data = message.get("data")
    if message.get("type") == "server-message" and isinstance(data, dict) and isinstance(data.get("type"), str):
        return data["type"]
    return str(message.get("type"))


def types(rec: Recorder) -> list[str]:
    return [event_type(message) for message, _ in rec.json]


@pytest.fixture
async def emulator() -> AsyncIterator[Any]:
    settings = emulator_realtime.RealtimeSettings(first_refresh_token_s=0.3, empty_room_timeout_s=5.0)
    config = emulator_config.EmulatorConfig()
    async with emulator_server.Emulator(config, [emulator_realtime.realtime_extension(settings)]) as emu:
        yield emu


async def _connect(emu: Any) -> ConnectResult:
    async with aiohttp.ClientSession() as http:
        return await connect_session(http, emu.live_url, emulator_config.DEV_API_KEY,
                                     {"character_id": CHARACTER, "transport": "livekit"}, timeout=10)


def _rms(frames: list[np.ndarray]) -> float:
    return float(np.sqrt(np.mean(np.concatenate(frames).astype(np.float64) ** 2))) if frames else 0.0


async def test_livekit_text_and_voice_turns(emulator: Any) -> None:
    result = await _connect(emulator)
    transport = LiveKitTransport(result.room_url, result.token)
    rec = Recorder(transport)
    try:
        await transport.connect(timeout=10)
        await transport.send_json(CLIENT_READY)
        await wait_for(lambda: "bot-ready" in types(rec), timeout=10, what="bot-ready")
        bot = next(sender for message, sender in rec.json if event_type(message) == "bot-ready")
        assert bot in transport.participants.values()

        before = len(rec.audio)
        await transport.send_json({"label": "rtvi-ai", "type": "user_text_message", "id": "t1",
                                   "data": {"text": "wave"}})
        await wait_for(lambda: "bot-turn-completed" in types(rec), timeout=20, what="a text turn")
        assert types(rec).index("bot-started-speaking") < types(rec).index("bot-turn-completed")
        spoken = [pcm for pcm, _, _ in rec.audio[before:]]
        assert max(_rms([pcm]) for pcm in spoken) > 500  # real speech came down the bot track
        await wait_for(lambda: transport.token_refreshes >= 1, timeout=5, what="refresh_token")

        speech = emulator_voice.synthesize("Hello there blacksmith, how are you today?",
                                           emulator_voice.VoiceSpec(), 48000)
        speech = np.concatenate([speech, np.zeros(48000, np.int16)])
        for start in range(0, len(speech) - 960, 960):
            transport.send_mic(speech[start:start + 960])
            await asyncio.sleep(0.02)
        await wait_for(lambda: "final-user-transcription" in types(rec), timeout=10, what="voice input")
        assert "user-started-speaking" in types(rec)
        assert transport.stats.mic_dropped == 0
    finally:
        await transport.close()


async def test_livekit_single_pc_and_server_side_disconnect(emulator: Any) -> None:
    result = await _connect(emulator)
    transport = LiveKitTransport(result.room_url, result.token, single_pc=True)
    rec = Recorder(transport)
    try:
        await transport.connect(timeout=10)
        assert transport.protocol_used == "v1"
        await transport.send_json(CLIENT_READY)
        await wait_for(lambda: "bot-ready" in types(rec), timeout=10, what="bot-ready")
        # A silent bot sends DTX comfort packets after a short hangover: a few frames, then one per 400 ms.
        await wait_for(lambda: len(rec.audio) >= 8, timeout=5, what="bot audio (silence) in v1")
        async with aiohttp.ClientSession() as http:
            await disconnect_session(http, emulator.live_url, result.session_id)
        await wait_for(lambda: len(rec.states) == 2, timeout=5, what="disconnected")
        assert rec.states[1][0] == "disconnected"
    finally:
        await transport.close()


async def test_livekit_bad_token(emulator: Any) -> None:
    result = await _connect(emulator)
    forged = result.token[:-4] + ("AAAA" if not result.token.endswith("AAAA") else "BBBB")
    with pytest.raises(TransportError) as info:
        await LiveKitTransport(result.room_url, forged).connect(timeout=5)
    assert info.value.code == "rtc_unauthorized" and forged not in str(info.value)


async def test_smallwebrtc_text_turn(emulator: Any) -> None:
    transport = SmallWebRTCTransport(f"{emulator.base_url}/api/offer", request_data={"character_id": CHARACTER})
    rec = Recorder(transport)
    try:
        await transport.connect(timeout=10)
        await transport.send_json(CLIENT_READY)
        await wait_for(lambda: "bot-ready" in types(rec), timeout=10, what="bot-ready")
        await transport.send_json({"label": "rtvi-ai", "type": "user_text_message", "id": "t2",
                                   "data": {"text": "hello"}})
        await wait_for(lambda: "bot-turn-completed" in types(rec), timeout=20, what="a text turn")
        assert max(_rms([pcm]) for pcm, _, _ in rec.audio) > 500
    finally:
        await transport.close()
