"""audio_out pacing and interrupt, for every kind of output format the schema allows, on every backend.

§5: frames go out in real time, at most `audio_lead_ms` ahead, so an interrupt takes effect within
that lead. The check models the client's jitter buffer from arrival times: it fills by each frame and
drains in real time; it must never hold more than the lead (or one frame, when a frame is longer).
Formats include frame sizes that are not whole samples (11025 Hz x 10 ms = 110.25) and ones that
only look fractional in floating point (22050 Hz x 20 ms = 441).
"""

from __future__ import annotations

import time

import pytest

from tests.spec_client.client import Msg, Npc, SpecClient
from tests.spec_client.conftest import CHARACTER

STACK = {"workers": 0}
SCHEDULING_TOLERANCE_S = 0.03
LONG = "Tell me a long story about the forge and the mountain and the old king."
FORMATS = [
    (8000, 1, 5),
    (11025, 1, 10),
    (11025, 2, 20),
    (16000, 1, 20),
    (22050, 1, 20),
    (22050, 2, 15),
    (24000, 1, 40),
    (44100, 2, 7),
    (48000, 1, 20),
    (48000, 2, 200),
    (96000, 1, 10),
    (192000, 2, 5),
]


def buffer_peak(frames: list[Msg]) -> float:
    """Most audio (seconds) a client that plays from the first frame on would have had buffered."""
    level, prev, peak = 0.0, None, 0.0
    for f in frames:
        if prev is not None:
            level = max(0.0, level - (f.at - prev))
        level += f["samples"] / f["sample_rate"]
        prev = f.at
        peak = max(peak, level)
    return peak


def speak_then_interrupt(client: SpecClient, npc: Npc, listen_s: float) -> tuple[int, list[Msg], Msg, list[Msg]]:
    """A long reply; listen for `listen_s` of real time after its first frame, then interrupt."""
    turn = npc.text(LONG)
    first = npc.next(lambda m: m.type == "audio_out" and m["turn"] == turn, timeout=45)
    frames = [first]
    while time.monotonic() - first.at < listen_s:
        msg = npc.next(timeout=15)
        assert msg.type != "turn_completed", "the reply ended before the interrupt"
        if msg.type == "audio_out":
            frames.append(msg)
    ack = npc.call("interrupt")
    rest = npc.collect_turn(turn, timeout=15)
    return turn, frames, ack, rest


@pytest.mark.parametrize("backend", ["interaction", "live"])
@pytest.mark.parametrize(("rate", "channels", "frame_ms"), FORMATS)
def test_audio_is_paced_within_the_lead_and_interrupt_cuts_it(
    spec_client: SpecClient, backend: str, rate: int, channels: int, frame_ms: int
) -> None:
    lead_s = spec_client.welcome["limits"]["audio_lead_ms"] / 1000  # type: ignore[index]
    audio = {"sample_rate": rate, "channels": channels, "frame_ms": frame_ms}
    npc = Npc(spec_client, CHARACTER, backend=backend, audio=audio)
    assert npc.opened["audio"] == audio
    turn, frames, ack, rest = speak_then_interrupt(spec_client, npc, listen_s=max(0.6, 3 * frame_ms / 1000))
    frames += [m for m in rest if m.type == "audio_out" and m.n < ack.n]
    bound = max(lead_s, frame_ms / 1000) + SCHEDULING_TOLERANCE_S
    assert buffer_peak(frames) <= bound, f"{buffer_peak(frames):.3f} s buffered at the client, bound {bound:.3f}"
    # Interrupt: nothing of the turn after its ack, the turn ends interrupted, lip sync is cancelled.
    late = [m for m in rest if m.type == "audio_out" and m.n > ack.n]
    assert late == [], f"{len(late)} frames after the interrupt's ack"
    done = rest[-1]
    assert done["interrupted"] is True
    assert any(m.type == "lipsync_cancel" and m["turn"] == turn for m in rest)
    # Stale output must neither continue the turn nor open a phantom one.
    time.sleep(0.5)
    after = [m for m in spec_client.history(npc.sid) if m.n > done.n]
    assert not [m for m in after if m.type in ("audio_out", "turn_started", "bot_text")], [m.header for m in after]
    npc.call("session_close")


@pytest.mark.parametrize("backend", ["interaction", "live"])
@pytest.mark.parametrize(("rate", "channels", "frame_ms"), [(11025, 1, 10), (44100, 2, 7), (48000, 1, 20)])
def test_a_whole_reply_is_paced_and_framed_as_documented(
    spec_client: SpecClient, backend: str, rate: int, channels: int, frame_ms: int
) -> None:
    lead_s = spec_client.welcome["limits"]["audio_lead_ms"] / 1000  # type: ignore[index]
    audio = {"sample_rate": rate, "channels": channels, "frame_ms": frame_ms}
    npc = Npc(spec_client, CHARACTER, backend=backend, audio=audio)
    turn = npc.text("Hello there!")
    events = npc.collect_turn(turn)
    frames = [m for m in events if m.type == "audio_out"]
    assert frames and events[-1]["interrupted"] is False
    assert buffer_peak(frames) <= max(lead_s, frame_ms / 1000) + SCHEDULING_TOLERANCE_S
    duration = sum(f["samples"] for f in frames) / rate
    assert frames[-1].at - frames[0].at >= duration - lead_s - SCHEDULING_TOLERANCE_S  # real time, not a burst
    # Frame sizes are checked by the conformance rules on every frame (§5); the last may be short.
    npc.call("session_close")


def test_stream_backend_interrupt_ends_the_turn(spec_client: SpecClient) -> None:
    npc = Npc(spec_client, CHARACTER, backend="stream")
    turn = npc.text(LONG)
    npc.next(lambda m: m.type == "bot_text" and m["turn"] == turn, timeout=30)
    ack = npc.call("interrupt")
    rest = npc.collect_turn(turn, timeout=15)
    done = rest[-1]
    if done.n > ack.n:  # the interrupt reached the daemon before the reply had ended
        assert done["interrupted"] is True
        assert not [m for m in rest if m.type == "bot_text" and m.n > ack.n]
    assert not [m for m in rest if m.type == "audio_out"]
    npc.call("session_close")
