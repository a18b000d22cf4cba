"""The daemon against every emulator server profile: a text turn and a push-to-talk voice turn each.

Real emulator, real daemon, LiveKit signalling + WebRTC on 127.0.0.1. Each turn must be one complete
turn: turn_started → bot_text → audio_out and lip sync → turn_completed with bot_reply, all under
one turn id, whether the server sends bot-turn-completed (current, legacy) or not (websdk).
"""

from __future__ import annotations

from typing import Any

import aiohttp
import numpy as np
import pytest

from bridge.client import BridgeClient, NpcSession
from bridge.wire.codec import Message
from convai_emulator.profiles import PROFILES
from tests.conftest import CHARACTER

AUDIO = {"sample_rate": 24000, "channels": 1, "frame_ms": 20}
LIPSYNC = {"provider": "blendshapes", "format": "arkit", "fps": 60}


async def set_profile(emulator: Any, name: str) -> None:
    async with aiohttp.ClientSession() as http:
        response = await http.post(f"{emulator.base_url}/_emulator/profile", json={"profile": name})
        assert response.status == 200, await response.text()


def check_turn(events: list[Message], turn: int, source: str) -> None:
    seq = [m.type for m in events]
    done = events[-1]
    assert done.type == "turn_completed" and done["turn"] == turn and done["interrupted"] is False, [
        (m.type, m.get("turn"), m.get("text"), m.get("reason")) for m in events if m.type != "audio_out"
    ]
    assert seq.count("turn_completed") == 1
    reply = [m for m in events if m.type == "bot_reply"]
    assert len(reply) == 1 and reply[0]["turn"] == turn and reply[0]["text"]
    assert reply[0]["text"] == "".join(m["text"] for m in events if m.type == "bot_text" and m["turn"] == turn)
    assert "audio_out" in seq and "blendshapes" in seq, seq
    assert seq.index("bot_text") < seq.index("turn_completed")
    for m in events:
        if m.type in ("bot_text", "audio_out", "blendshapes", "bot_reply", "user_transcript", "bot_started_speaking"):
            assert m["turn"] == turn, (m.type, m["turn"], turn)
    assert not [m for m in events if m.type == "turn_started" and m["turn"] != turn]
    started = [m for m in events if m.type == "turn_started"]
    assert not started or started[0]["source"] == source
    shapes = [m for m in events if m.type == "blendshapes"]
    offsets = [m["offset"] for m in shapes]
    assert offsets == sorted(offsets) and offsets[0] >= 0


async def voice_turn(npc: NpcSession) -> tuple[int, list[Message]]:
    """Push-to-talk: speech streamed in real time, the key released while the server's VAD still hears it."""
    from convai_emulator.voice import VoiceSpec, synthesize_async

    speech = await synthesize_async("Hello there could you wave at me please", VoiceSpec("en-gb", 60, 170), 16000)
    await npc.stream_audio(speech, 16000, frame_ms=20)
    opened = await npc.wait_for("turn_started", timeout=15)  # the server's VAD opened the turn
    assert opened["source"] == "voice"
    turn = await npc.end_of_utterance()
    assert turn == opened["turn"], "one utterance is one turn, whichever side ends it"
    events = await npc.collect_turn(turn, timeout=40)
    return turn, events


@pytest.mark.parametrize("profile", sorted(PROFILES))
async def test_text_and_voice_turns_complete_under_every_profile(
    emulator: Any, client: BridgeClient, profile: str
) -> None:
    await set_profile(emulator, profile)
    npc = await client.open_session(
        CHARACTER, backend="live", audio=AUDIO, lipsync=LIPSYNC, open_timeout=60.0
    )
    turn = await npc.text("Hello! Could you wave at me?")
    events = await npc.collect_turn(turn, timeout=40)
    check_turn(events, turn, "text")

    turn, events = await voice_turn(npc)
    check_turn(events, turn, "voice")
    finals = [m for m in events if m.type == "user_transcript" and m["final"]]
    assert len(finals) == 1 and finals[0]["text"].strip()
    pcm = np.frombuffer(b"".join(m.frames[0] for m in events if m.type == "audio_out"), dtype="<i2")
    assert len(pcm) / AUDIO["sample_rate"] > 0.3
