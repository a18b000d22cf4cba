"""REST (`interaction`) and SSE (`stream`) sessions end to end: daemon ⇄ emulator over real sockets."""

from __future__ import annotations

import asyncio

import aiohttp
import numpy as np
import pytest

from bridge.audio.analysis import dominant_frequency
from bridge.client import BridgeClient, BridgeError
from bridge.daemon.router import Daemon
from bridge.wire.codec import Message
from tests.conftest import CHARACTER


def types(events: list[Message]) -> list[str]:
    return [m.type for m in events]


def audio_of(events: list[Message]) -> tuple[np.ndarray, list[Message]]:
    frames = [m for m in events if m.type == "audio_out"]
    pcm = b"".join(m.frames[0] for m in frames)
    return np.frombuffer(pcm, dtype="<i2"), frames


async def admin(emulator: object, body: dict) -> None:
    async with aiohttp.ClientSession() as http:
        async with http.post(emulator.rest_url + "/_emulator/faults", json=body) as resp:  # type: ignore[attr-defined]
            assert resp.status == 200, await resp.text()


async def test_rest_text_turn_streams_paced_audio_in_client_format(client: BridgeClient) -> None:
    npc = await client.open_session(
        CHARACTER, backend="interaction", audio={"sample_rate": 44100, "channels": 2, "frame_ms": 20}
    )
    assert npc.opened["backend"] == "interaction"
    assert "audio_out" in npc.opened["capabilities"]
    turn = await npc.text("Hello! My name is Ada.")
    events = await npc.collect_turn(turn, timeout=30)
    seq = types(events)
    assert seq[0] == "turn_started"
    assert seq.index("bot_text") < seq.index("bot_started_speaking") < seq.index("audio_out")
    assert seq[-2:] == ["bot_stopped_speaking", "turn_completed"]
    assert events[-1]["interrupted"] is False
    reply = next(m for m in events if m.type == "bot_reply")["text"]
    assert reply
    pcm, frames = audio_of(events)
    assert all(f["sample_rate"] == 44100 and f["channels"] == 2 and f["turn"] == turn for f in frames)
    assert all(f["samples"] == 882 for f in frames[:-1]) and 0 < frames[-1]["samples"] <= 882
    offsets = [f["offset"] for f in frames]
    assert offsets == [sum(f["samples"] for f in frames[:i]) for i in range(len(frames))]
    assert [f["seq"] for f in frames] == list(range(frames[0]["seq"], frames[0]["seq"] + len(frames)))
    stereo = pcm.reshape(-1, 2)
    assert np.array_equal(stereo[:, 0], stereo[:, 1])
    assert np.sqrt(np.mean(stereo[:, 0].astype(float) ** 2)) > 300  # speech, not silence
    # Paced: the audio took roughly real time to arrive (lead is 100 ms).
    duration = len(stereo) / 44100
    spread = (frames[-1]["ts"] - frames[0]["ts"]) / 1e6
    assert duration > 0.3
    first_arrival = frames[0]
    assert first_arrival is not None and spread >= 0


async def test_rest_keeps_context_across_turns_and_resumes_by_session_id(client: BridgeClient) -> None:
    npc = await client.open_session(CHARACTER, backend="interaction", voice=False)
    assert npc.opened.get("character_session_id") is None  # REST assigns it on the first turn
    t1 = await npc.text("My name is Zebulon.")
    first = await npc.collect_turn(t1)
    state = [m for m in first if m.type == "session_state"]
    assert state and state[0]["state"] == "ready"
    csid = state[0]["character_session_id"]
    t2 = await npc.text("What is my name?")
    events = await npc.collect_turn(t2)
    assert "Zebulon" in next(m for m in events if m.type == "bot_reply")["text"]
    assert not any(m.type == "audio_out" for m in events)  # voice=False
    # Resume: a new session with the saved character_session_id still knows the name.
    npc2 = await client.open_session(CHARACTER, backend="interaction", voice=False, character_session_id=csid)
    assert npc2.opened["character_session_id"] == csid and npc2.opened["resumed"] is True
    t3 = await npc2.text("Do you remember my name?")
    events = await npc2.collect_turn(t3)
    assert "Zebulon" in next(m for m in events if m.type == "bot_reply")["text"]


async def test_rest_voice_turn_from_microphone_frames(client: BridgeClient) -> None:
    npc = await client.open_session(
        CHARACTER, backend="interaction", audio={"sample_rate": 16000, "channels": 1, "frame_ms": 20}
    )
    rate = 22050  # an odd microphone rate: resampled to 16 kHz for the WAV
    t = np.arange(int(rate * 0.6)) / rate
    tone = (0.3 * 32767 * np.sin(2 * np.pi * 300 * t)).astype(np.int16)
    await npc.stream_audio(tone, rate, frame_ms=10, realtime=False)
    turn = await npc.end_of_utterance()
    events = await npc.collect_turn(turn, timeout=30)
    assert any(m.type == "user_transcript" and m["final"] for m in events)
    pcm, frames = audio_of(events)
    assert frames and all(f["sample_rate"] == 16000 for f in frames)


async def test_rest_actions_are_parsed_from_the_action_sequence(client: BridgeClient) -> None:
    npc = await client.open_session(
        CHARACTER,
        backend="interaction",
        voice=False,
        action_config={
            "actions": ["Move To", "Pick Up", "Wave"],
            "objects": [{"name": "cube", "description": "a red cube"}],
        },
    )
    turn = await npc.text("Please grab the cube.")
    events = await npc.collect_turn(turn)
    actions = [m for m in events if m.type == "actions"]
    assert actions, types(events)
    got = actions[0]["actions"]
    assert {"name": "Move To", "target": "cube"} in got
    assert {a["name"] for a in got} <= {"Move To", "Pick Up", "Wave"}


async def test_rest_interrupt_flushes_audio_and_completes_turn(client: BridgeClient) -> None:
    npc = await client.open_session(CHARACTER, backend="interaction")
    turn = await npc.text("Tell me a long story about the forge and the mountain and the old king.")
    await npc.wait_for("audio_out", timeout=30)
    await npc.interrupt()
    events = await npc.collect_turn(turn, timeout=15)
    assert events[-1]["interrupted"] is True
    assert "lipsync_cancel" in types(events)
    await asyncio.sleep(0.3)
    late = [m for m in list(npc.events._queue) if m.type == "audio_out" and m["turn"] == turn]  # type: ignore[attr-defined]
    assert late == []
    t2 = await npc.text("Are you still there?")
    assert t2 == turn + 1
    assert (await npc.collect_turn(t2))[-1]["interrupted"] is False


async def test_rest_visemes_from_envelope_share_the_audio_clock(client: BridgeClient) -> None:
    npc = await client.open_session(
        CHARACTER,
        backend="interaction",
        lipsync={"provider": "visemes", "fps": 50},
        audio={"sample_rate": 24000, "channels": 1, "frame_ms": 20},
    )
    turn = await npc.text("Hello there!")
    events = await npc.collect_turn(turn, timeout=30)
    visemes = [m for m in events if m.type == "visemes"]
    _, frames = audio_of(events)
    assert visemes and frames
    total = sum(f["samples"] for f in frames)
    assert all(0 <= v["offset"] <= total and len(v["weights"]) == 15 for v in visemes)
    assert [v["offset"] for v in visemes] == sorted(v["offset"] for v in visemes)
    assert max(max(v["weights"][1:]) for v in visemes) > 0.2  # the mouth opens during speech


async def test_sse_stream_turns_keep_context(client: BridgeClient) -> None:
    npc = await client.open_session(CHARACTER, backend="stream")
    assert "text_stream" in npc.opened["capabilities"]
    t1 = await npc.text("My name is Quill.")
    events = await npc.collect_turn(t1)
    chunks = [m["text"] for m in events if m.type == "bot_text"]
    reply = next(m for m in events if m.type == "bot_reply")["text"]
    assert len(chunks) >= 2 and "".join(chunks).strip() == reply.strip()
    state = [m for m in events if m.type == "session_state"]
    assert state and state[0]["character_session_id"]
    t2 = await npc.text("What is my name?")
    events = await npc.collect_turn(t2)
    assert "Quill" in next(m for m in events if m.type == "bot_reply")["text"]


async def test_stream_backend_refuses_audio_features(client: BridgeClient) -> None:
    npc = await client.open_session(CHARACTER, backend="stream")
    with pytest.raises(BridgeError) as info:
        await npc.end_of_utterance()
    assert info.value.code == "unsupported"
    with pytest.raises(BridgeError) as info:
        await npc.trigger("greeting")
    assert info.value.code == "unsupported"


async def test_unknown_character_opens_and_its_turn_fails_with_not_found(client: BridgeClient) -> None:
    # The character lookup at open is optional; getResponse is what reports the unknown character.
    npc = await client.open_session("00000000-0000-4000-8000-00000000dead", backend="interaction")
    turn = await npc.text("Hello?")
    events = await npc.collect_turn(turn, timeout=15)
    err = next(m for m in events if m.type == "error")
    assert err["code"] == "convai_not_found" and err["status"] == 404
    assert events[-1]["aborted"] is True


async def test_bad_api_key_is_unauthorized_and_key_never_leaks(tmp_path, emulator) -> None:
    from bridge.config import Secret
    from tests.conftest import daemon_config

    secret = "sk-very-secret-key-123456"
    d = Daemon(daemon_config(tmp_path, emulator, api_key=Secret(secret)))
    await d.start()
    c = await BridgeClient.connect(d.endpoint, d.token)
    try:
        with pytest.raises(BridgeError) as info:
            await c.open_session(CHARACTER, backend="interaction")
        assert info.value.code == "convai_unauthorized" and info.value.status == 401
        assert secret not in info.value.message
    finally:
        await c.close()
        await d.stop()


@pytest.mark.parametrize(
    ("fault", "code", "retryable"),
    [
        ({"status": 429, "count": 10, "paths": ["/character/getResponse"]}, "convai_rate_limited", True),
        ({"status": 500, "count": 10, "paths": ["/character/getResponse"]}, "convai_server_error", True),
        ({"status": 400, "count": 1, "paths": ["/character/getResponse"]}, "convai_bad_request", False),
    ],
)
async def test_rest_errors_become_protocol_errors_and_session_survives(
    client: BridgeClient, emulator: object, fault: dict, code: str, retryable: bool
) -> None:
    npc = await client.open_session(CHARACTER, backend="interaction", voice=False)
    await admin(emulator, fault)
    turn = await npc.text("Hello?")
    events = await npc.collect_turn(turn, timeout=15)
    err = next(m for m in events if m.type == "error")
    assert (err["code"], err["retryable"], err["fatal"]) == (code, retryable, False)
    assert events[-1]["aborted"] is True
    await admin(emulator, {"clear": True})
    t2 = await npc.text("Hello again")
    assert (await npc.collect_turn(t2))[-1].get("aborted") is None


async def test_rest_transient_429_is_retried_transparently(client: BridgeClient, emulator: object) -> None:
    npc = await client.open_session(CHARACTER, backend="interaction", voice=False)
    await admin(emulator, {"status": 429, "count": 2, "paths": ["/character/getResponse"]})
    turn = await npc.text("Hello?")
    events = await npc.collect_turn(turn, timeout=15)
    assert "error" not in types(events) and "bot_reply" in types(events)


async def test_sse_dropped_stream_is_reported(client: BridgeClient, emulator: object) -> None:
    npc = await client.open_session(CHARACTER, backend="stream")
    await admin(emulator, {"drop_stream_after": 2})
    turn = await npc.text("Tell me about your day in detail please.")
    events = await npc.collect_turn(turn, timeout=15)
    err = next(m for m in events if m.type == "error")
    assert err["code"] == "convai_stream_dropped" and err["retryable"] is True
    assert events[-1]["aborted"] is True


async def test_rest_timeout_is_reported(tmp_path, emulator) -> None:
    from tests.conftest import daemon_config

    d = Daemon(daemon_config(tmp_path, emulator, request_timeout_s=0.5, max_retries=1))
    await d.start()
    c = await BridgeClient.connect(d.endpoint, d.token)
    try:
        npc = await c.open_session(CHARACTER, backend="interaction", voice=False)
        await admin(emulator, {"latency_ms": 2000, "paths": ["/character/getResponse"]})
        turn = await npc.text("Anyone home?")
        events = await npc.collect_turn(turn, timeout=15)
        err = next(m for m in events if m.type == "error")
        assert err["code"] == "convai_timeout" and err["retryable"] is True
    finally:
        await admin(emulator, {"clear": True})
        await c.close()
        await d.stop()


async def test_two_npcs_on_one_connection_run_concurrently(client: BridgeClient) -> None:
    a = await client.open_session(CHARACTER, backend="interaction", label="a")
    b = await client.open_session(CHARACTER, backend="interaction", label="b")
    ta, tb = await asyncio.gather(a.text("Hello from A, I am Ann."), b.text("Hello from B, I am Bob."))
    ea, eb = await asyncio.gather(a.collect_turn(ta, 30), b.collect_turn(tb, 30))
    assert all(m.sid == a.sid for m in ea) and all(m.sid == b.sid for m in eb)
    fa = [m for m in ea if m.type == "audio_out"]
    fb = [m for m in eb if m.type == "audio_out"]
    assert fa and fb
    # Interleaved in time: B's audio was not held back until A finished.
    assert fb[0]["ts"] < fa[-1]["ts"] or fa[0]["ts"] < fb[-1]["ts"]


async def test_audio_overflow_is_reported_not_fatal(client: BridgeClient) -> None:
    npc = await client.open_session(CHARACTER, backend="interaction")
    chunk = np.zeros(16000, dtype=np.int16)  # 1 s per message, sent instantly
    for _ in range(4):
        await npc.send_audio(chunk, 16000)
    err = await npc.wait_for("error", timeout=10)
    assert err["code"] == "audio_overflow" and err["retryable"] and not err["fatal"]


async def test_audio_in_with_inconsistent_frame_is_rejected(client: BridgeClient) -> None:
    npc = await client.open_session(CHARACTER, backend="interaction")
    header = client.codec.encode(
        "audio_in", {"sid": npc.sid, "seq": 1, "sample_rate": 16000, "channels": 1, "samples": 2}, (b"\0" * 4,)
    )[0]
    await client.send_raw([header, b"\0" * 3])  # 3 bytes where 2 samples need 4
    err = await npc.wait_for("error", timeout=10)
    assert err["code"] == "invalid_field" and not err["fatal"]


async def test_close_session_then_requests_fail(client: BridgeClient) -> None:
    npc = await client.open_session(CHARACTER, backend="interaction")
    await npc.close()
    closed = await npc.wait_for("session_closed")
    assert closed["reason"] == "client"
    with pytest.raises(BridgeError) as info:
        await npc.text("hello?")
    assert info.value.code == "unknown_session"


async def test_dominant_frequency_helper_sanity() -> None:
    rate = 16000
    t = np.arange(rate) / rate
    assert abs(dominant_frequency((1000 * np.sin(2 * np.pi * 440 * t)).astype(np.int16), rate) - 440) < 5
