"""Live API sessions end to end: daemon ⇄ emulator over real LiveKit signalling + WebRTC on loopback."""

from __future__ import annotations

import asyncio

import numpy as np
import pytest

from bridge.audio.analysis import dominant_frequency
from bridge.client import BridgeClient, BridgeError, NpcSession
from bridge.daemon.router import Daemon
from bridge.wire.codec import Message
from tests.conftest import CHARACTER

GUARD = "c0ffee00-0000-4000-8000-000000000002"
MERCHANT = "c0ffee00-0000-4000-8000-000000000003"
ACTIONS = {"actions": ["Move To", "Pick Up", "Wave"], "objects": [{"name": "cube", "description": "a red cube"}]}


def types(events: list[Message]) -> list[str]:
    return [m.type for m in events]


async def open_live(client: BridgeClient, transport: str = "livekit", **kw: object) -> NpcSession:
    return await client.open_session(CHARACTER, backend="live", transport=transport, action_config=ACTIONS, **kw)


@pytest.mark.parametrize("transport", ["livekit", "sdp"])
async def test_text_turn_over_each_transport(client: BridgeClient, transport: str) -> None:
    npc = await open_live(
        client, transport, audio={"sample_rate": 24000, "channels": 1, "frame_ms": 20}, lipsync={"provider": "visemes"}
    )
    assert npc.opened["backend"] == "live" and npc.opened["transport"] == transport
    assert npc.opened["character_session_id"]
    turn = await npc.text("Could you grab the cube?")
    events = await npc.collect_turn(turn, timeout=30)
    seq = types(events)
    assert seq.index("bot_text") < seq.index("bot_started_speaking") < seq.index("audio_out")
    assert seq.index("audio_out") < seq.index("bot_stopped_speaking") < seq.index("turn_completed")
    chunks = "".join(m["text"] for m in events if m.type == "bot_text")
    assert next(m for m in events if m.type == "bot_reply")["text"] == chunks
    actions = next(m for m in events if m.type == "actions")["actions"]
    assert {"name": "Move To", "target": "cube"} in actions
    assert any(m.type == "emotion" for m in events)
    frames = [m for m in events if m.type == "audio_out"]
    assert all(f["samples"] == 480 and f["sample_rate"] == 24000 and f["turn"] == turn for f in frames[:-1])
    pcm = np.frombuffer(b"".join(f.frames[0] for f in frames), dtype="<i2").astype(float)
    assert len(pcm) / 24000 > 0.5 and np.sqrt(np.mean(pcm**2)) > 300
    visemes = [m for m in events if m.type == "visemes"]
    total = sum(f["samples"] for f in frames)
    assert visemes and all(v["offset"] < total + 24000 for v in visemes)
    assert [v["offset"] for v in visemes] == sorted(v["offset"] for v in visemes)


async def test_every_session_request_is_acked(client: BridgeClient) -> None:
    npc = await open_live(client)
    for msg_type, fields in [
        ("context_update", {"text": "The forge is cold.", "mode": "append", "run_llm": "false"}),
        ("dynamic_info", {"info": {"text": "The player carries a sword."}}),
        ("scene_update", {"scene": [{"name": "anvil", "description": "iron"}]}),
        ("template_keys", {"keys": {"player_name": "Ada"}}),
        ("tts_toggle", {"enabled": True}),
        ("stt_toggle", {"muted": False}),
    ]:
        ack = await npc.request(msg_type, **fields)
        assert ack.type == "ack", msg_type
        assert ack.get("result", {}).get("acknowledged", True) is not False, (msg_type, ack.header)


async def test_trigger_changes_narrative_section(client: BridgeClient) -> None:
    npc = await open_live(client)
    from convai_emulator.roster import load_roster

    triggers = next(c for c in load_roster().characters if c.character_id == CHARACTER).triggers
    turn = await npc.trigger(triggers[0].trigger_name, "The player walks in")
    events = await npc.collect_turn(turn, timeout=30)
    narrative = [m for m in events if m.type == "narrative"]
    assert narrative and narrative[0]["section_id"]
    assert "bot_reply" in types(events)


async def test_voice_turn_mic_audio_reaches_server_vad(client: BridgeClient) -> None:
    from convai_emulator.voice import VoiceSpec, synthesize_async

    npc = await open_live(client)
    speech = await synthesize_async("Hello there, could you wave at me?", VoiceSpec("en-gb", 60, 170), 16000)
    silence = np.zeros(16000 // 2, dtype=np.int16)
    await npc.stream_audio(np.concatenate([speech, silence]), 16000, frame_ms=20)
    started = await npc.wait_for("turn_started", timeout=15)
    assert started["source"] == "voice"
    transcript = await npc.wait_for("user_transcript", timeout=15)
    assert transcript["turn"] == started["turn"]
    events = await npc.collect_turn(started["turn"], timeout=30)
    assert "audio_out" in types(events)


async def test_push_to_talk_release_ends_the_utterance(client: BridgeClient) -> None:
    npc = await open_live(client)
    rate = 44100
    t = np.arange(int(rate * 1.0)) / rate
    tone = (0.4 * 32767 * np.sin(2 * np.pi * 220 * t)).astype(np.int16)
    stereo = np.repeat(tone[:, None], 2, axis=1).reshape(-1)
    await npc.send_audio(stereo[: 2 * 4410], rate, 2)  # odd frame sizes and stereo are fine
    for pos in range(4410, len(tone), 1323):
        await npc.send_audio(stereo[2 * pos : 2 * (pos + 1323)], rate, 2)
        await asyncio.sleep(0.03)
    turn = await npc.end_of_utterance()
    events = await npc.collect_turn(turn, timeout=30)
    assert any(m.type == "user_transcript" and m["final"] for m in events)


async def test_interrupt_flushes_audio_and_next_turn_is_clean(client: BridgeClient) -> None:
    npc = await open_live(client)
    turn = await npc.text("Tell me everything about the dragon attack on the northern gate last winter.")
    await npc.wait_for("audio_out", timeout=30)
    await npc.interrupt()
    events = await npc.collect_turn(turn, timeout=5)
    assert events[-1]["interrupted"] is True
    await asyncio.sleep(0.5)
    leftovers = []
    while not npc.events.empty():
        leftovers.append(npc.events.get_nowait())
    assert not [m for m in leftovers if m.get("turn") == turn and m.type in ("audio_out", "bot_text")]
    assert not [m for m in leftovers if m.type == "turn_started"], "stale output must not open a new turn"
    t2 = await npc.text("Hello again.")
    events = await npc.collect_turn(t2, timeout=30)
    assert events[-1]["interrupted"] is False and "audio_out" in types(events)


async def test_resume_after_dropped_signalling_keeps_context(client: BridgeClient, emulator: object) -> None:
    from convai_emulator.realtime import REALTIME

    npc = await open_live(client)
    t1 = await npc.text("My name is Tamsin.")
    await npc.collect_turn(t1, timeout=30)
    csid = npc.opened["character_session_id"]
    rooms = emulator.app[REALTIME].rooms  # type: ignore[attr-defined]
    members = [m for r in list(rooms.rooms.values()) for m in r.members.values()]
    assert members
    for member in members:
        await member.ws.close()  # the server drops the signalling socket
    state = await npc.wait_for("session_state", timeout=15)
    assert state["state"] == "reconnecting"
    # Typed while the connection is down: held until the character is ready again, then answered.
    t2 = await npc.text("What is my name?")
    events = await npc.collect_turn(t2, timeout=30)
    states = [m for m in events if m.type == "session_state"]
    assert states and states[-1]["state"] == "resumed" and states[-1]["character_session_id"] == csid
    assert "Tamsin" in next(m for m in events if m.type == "bot_reply")["text"]


async def test_connect_errors_map_to_protocol_errors(client: BridgeClient) -> None:
    with pytest.raises(BridgeError) as info:
        await client.open_session("00000000-0000-4000-8000-00000000dead", backend="live")
    assert info.value.code == "convai_not_found" and info.value.status == 404 and info.value.fatal
    # A stale character_session_id falls back to a fresh conversation: tests/live_transport/test_lt_sessions.py


async def test_two_live_npcs_at_once(client: BridgeClient) -> None:
    a = await open_live(client)
    b = await client.open_session(GUARD, backend="live")
    ta, tb = await asyncio.gather(a.text("Hello, I am Ann."), b.text("Hello, I am Bob."))
    ea, eb = await asyncio.gather(a.collect_turn(ta, 30), b.collect_turn(tb, 30))
    assert "Ann" in next(m for m in ea if m.type == "bot_reply")["text"]
    assert "Bob" in next(m for m in eb if m.type == "bot_reply")["text"]
    assert all(m.sid == a.sid for m in ea) and all(m.sid == b.sid for m in eb)


async def test_tone_frequency_survives_bot_audio_path(daemon: Daemon, client: BridgeClient) -> None:
    """Bot audio goes Opus → decode → soxr → frames: a spoken reply keeps its pitch band."""
    npc = await open_live(client, audio={"sample_rate": 16000, "channels": 1, "frame_ms": 10})
    turn = await npc.text("Hello!")
    events = await npc.collect_turn(turn, timeout=30)
    frames = [m for m in events if m.type == "audio_out"]
    assert all(f["samples"] == 160 for f in frames[:-1])
    pcm = np.frombuffer(b"".join(f.frames[0] for f in frames), dtype="<i2")
    assert 60 < dominant_frequency(pcm, 16000) < 4000


async def test_audio_over_the_data_channel(client: BridgeClient) -> None:
    """audio_routing=data_only: Convai sends base64 PCM `audio-data` chunks instead of the media track."""
    npc = await open_live(
        client, audio_routing="data_only", audio={"sample_rate": 16000, "channels": 1, "frame_ms": 20}
    )
    turn = await npc.text("Hello there!")
    events = await npc.collect_turn(turn, timeout=30)
    frames = [m for m in events if m.type == "audio_out"]
    pcm = np.frombuffer(b"".join(f.frames[0] for f in frames), dtype="<i2").astype(float)
    assert len(pcm) / 16000 > 0.5 and np.sqrt(np.mean(pcm**2)) > 300
    assert [f["offset"] for f in frames] == [sum(f["samples"] for f in frames[:i]) for i in range(len(frames))]


@pytest.mark.parametrize("character", [GUARD, MERCHANT])
async def test_shape_variants_are_normalised(client: BridgeClient, character: str) -> None:
    """Emulator flags: the guard sends string actions, wrapped server-responses and every event in two shapes;
    the merchant sends server-responses flat and wrapped plus pipecat's error-response noise."""
    npc = await client.open_session(
        character,
        backend="live",
        action_config={"actions": ["Draw Sword", "Move To", "Follow"], "objects": [{"name": "gate"}]},
    )
    ack = await npc.request("tts_toggle", enabled=True)
    assert ack.get("result", {}).get("acknowledged", True) is not False  # the wrapped server-response resolved it
    for text in ("Hello, I am Bo.", "Help! A dragon is attacking the gate!"):
        turn = await npc.text(text)
        events = await npc.collect_turn(turn, timeout=30)
        seq = types(events)
        assert "error" not in seq
        assert seq.count("bot_started_speaking") == 1 and seq.count("bot_stopped_speaking") == 1
        assert seq.count("turn_completed") == 1
        assert len([m for m in events if m.type == "user_transcript" and m["final"]]) == 1
        for m in events:
            if m.type == "actions":
                assert all(isinstance(a["name"], str) and a["name"] for a in m["actions"])
