"""Full conversations by a client written from PROTOCOL.md alone, through the real daemon and emulator.

Every message the client receives is checked against the spec's rules (tests.spec_client.spec); the
daemon runs sessions in its own process, with short heartbeats so idling past the timeout is quick
"""

from __future__ import annotations

import array
import math
import time

import pytest

from tests.spec_client.client import Msg, Npc, SpecClient
from tests.spec_client.conftest import CHARACTER

STACK = {"workers": 0, "settings": {"heartbeat_ms": 300, "client_timeout_ms": 1500}}
ACTIONS = {"actions": ["Move To", "Pick Up", "Wave"], "objects": [{"name": "cube", "description": "a red cube"}]}


def tone(rate: int, seconds: float, freq: float = 220.0) -> bytes:
    n = int(rate * seconds)
    return array.array("h", (int(12000 * math.sin(2 * math.pi * freq * i / rate)) for i in range(n))).tobytes()


def talk(npc: Npc, rate: int = 16000, seconds: float = 1.0, frame_ms: int = 20) -> None:
    """Push-to-talk: microphone frames in real time, as a game sends them."""
    pcm = tone(rate, seconds)
    step = rate * frame_ms // 1000 * 2
    start = time.monotonic()
    for i, pos in enumerate(range(0, len(pcm), step)):
        npc.send_audio(pcm[pos : pos + step], rate)
        time.sleep(max(0.0, start + (i + 1) * frame_ms / 1000 - time.monotonic()))


def kinds(events: list[Msg]) -> list[str]:
    return [m.type for m in events]


def reply_of(events: list[Msg]) -> str:
    return next(m for m in events if m.type == "bot_reply")["text"]


@pytest.mark.parametrize("backend", ["interaction", "stream", "live"])
def test_full_conversation(spec_client: SpecClient, backend: str) -> None:
    options = {"action_config": ACTIONS} if backend == "live" else {}
    npc = Npc(spec_client, CHARACTER, backend=backend, **options)
    caps = npc.opened["capabilities"]

    # Text turns keep context; the turn's events are complete and in order.
    t1 = npc.text("Hello! My name is Ada.")
    first = npc.collect_turn(t1)
    assert kinds(first)[0] == "turn_started" and first[0]["source"] == "text"
    assert reply_of(first) and first[-1]["interrupted"] is False
    if "audio_out" in caps:
        seq = kinds(first)
        assert seq.index("bot_started_speaking") < seq.index("audio_out") < seq.index("bot_stopped_speaking")
    t2 = npc.text("What is my name?")
    assert t2 > t1
    assert "Ada" in reply_of(npc.collect_turn(t2))

    # A voice turn: microphone frames, then end_of_utterance.
    if "audio_in" in caps:
        talk(npc)
        t3 = npc.call("end_of_utterance", timeout=30)["turn"]
        voice = npc.collect_turn(t3)
        assert any(m.type == "user_transcript" and m["final"] for m in voice), kinds(voice)
        assert voice[-1]["interrupted"] is False
        assert len([m for m in spec_client.history(npc.sid) if m.type == "turn_started" and m["turn"] == t3]) == 1
    else:
        reply = spec_client.request("end_of_utterance", sid=npc.sid)
        assert reply.type == "error" and reply["code"] == "unsupported" and reply["fatal"] is False

    # Interrupt a long reply.
    t4 = npc.text("Tell me a long story about the forge and the mountain and the old king.")
    npc.next(lambda m: m.get("turn") == t4 and m.type in ("audio_out", "bot_text"), timeout=30)
    ack = npc.call("interrupt")
    cut = npc.collect_turn(t4)
    if cut[-1].n > ack.n:
        assert cut[-1]["interrupted"] is True
        assert not [m for m in cut if m.type in ("audio_out", "bot_text") and m.n > ack.n]

    # Quiet for longer than client_timeout_ms: the client's heartbeats keep the session.
    limits = spec_client.welcome["limits"]  # type: ignore[index]
    time.sleep(limits["client_timeout_ms"] / 1000 * 1.5)
    assert spec_client.pings_sent >= 2
    t5 = npc.text("Are you still there?")
    assert t5 > t4 and npc.collect_turn(t5)[-1]["interrupted"] is False

    if "triggers" in caps:
        t6 = npc.call("trigger", name="greeting", message="The player walks in")["turn"]
        assert npc.collect_turn(t6)[-1]["turn"] == t6
    close = npc.call("session_close")
    assert close["sid"] == npc.sid
    closed = npc.next(lambda m: m.type == "session_closed")
    assert closed["reason"] == "client"

