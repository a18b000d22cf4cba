"""The load tester's measuring parts without a daemon: histogram, jitter-buffer model, probe, script, reports."""

from __future__ import annotations

import argparse
import csv
import json
import os
from pathlib import Path

import numpy as np
import pytest

from bridge.wire.codec import Codec, Message
from bridge_loadtest import cli
from bridge_loadtest.playout import PlayoutModel
from bridge_loadtest.probe import SessionProbe
from bridge_loadtest.report import write_csv, write_json, write_report
from bridge_loadtest.script import ScriptError, load_script, parse_script
from bridge_loadtest.stats import Histogram, RunStats, TurnRecord
from bridge_loadtest.target import TargetError, existing_target, runs_emulator

CODEC = Codec()


def msg(msg_type: str, frames: tuple[bytes, ...] = (), **fields: object) -> Message:
    """A message exactly as the client would decode it off the wire."""
    return CODEC.decode(CODEC.encode(msg_type, dict(fields), frames))


# -- histogram --------------------------------------------------------------------------------------
def test_histogram_percentiles_match_numpy_within_resolution() -> None:
    rng = np.random.default_rng(7)
    values = rng.lognormal(mean=1.0, sigma=1.2, size=20000)
    h = Histogram()
    for v in values:
        h.record(float(v))
    for q in (50, 90, 99):
        assert h.percentile(q) == pytest.approx(np.percentile(values, q), rel=0.02)
    assert h.max == pytest.approx(values.max()) and h.count == len(values)
    assert h.percentile(100) == pytest.approx(values.max())


def test_histogram_empty_zero_and_merge() -> None:
    h = Histogram()
    assert h.percentile(50) is None and h.summary()["p99"] is None
    h.record(0.0)
    assert h.percentile(50) == 0.0
    other = Histogram()
    other.record(10.0)
    h.merge(other)
    assert h.count == 2 and h.max == 10.0 and h.percentile(100) == pytest.approx(10.0, rel=0.01)


# -- jitter buffer ---------------------------------------------------------------------------------
def test_playout_on_time_frames_never_underrun() -> None:
    model = PlayoutModel()
    for i in range(100):
        assert model.frame(1.0 + i * 0.02, 0.02) is None
    assert model.underruns == 0


def test_playout_late_frame_is_one_underrun_and_reanchors() -> None:
    model = PlayoutModel()
    model.frame(0.0, 0.02)
    model.frame(0.02, 0.02)
    gap = model.frame(0.07, 0.02)  # deadline 0.04: 30 ms late
    assert gap == pytest.approx(0.03)
    # playback resumed at 0.07: the following frames on the new clock are on time
    assert model.frame(0.09, 0.02) is None and model.frame(0.11, 0.02) is None
    assert model.underruns == 1 and model.gap_max_s == pytest.approx(0.03)


def test_playout_prebuffer_absorbs_jitter() -> None:
    arrivals = [0.0, 0.025, 0.035, 0.065, 0.08, 0.105]  # up to 5 ms late against a 20 ms clock
    strict, buffered = PlayoutModel(0.0), PlayoutModel(0.01)
    for t in arrivals:
        strict.frame(t, 0.02)
        buffered.frame(t, 0.02)
    assert strict.underruns > 0 and buffered.underruns == 0
    with pytest.raises(ValueError):
        PlayoutModel(-1)


# -- probe -----------------------------------------------------------------------------------------
def test_probe_tracks_a_turn_from_wire_messages() -> None:
    errors: list[str] = []
    bridge: list[tuple[float, bool]] = []
    woken: list[int] = []
    probe = SessionProbe(
        on_error=lambda code, t: errors.append(code),
        on_bridge=lambda t, ms, audio: bridge.append((ms, audio)),
        notify=lambda: woken.append(1),
    )
    sid = "s-1"
    now = 1_000_000_000
    probe.on_message(msg("session_opened", sid=sid, ts=now, character_id="c", backend="live", resumed=False,
                         audio={"sample_rate": 48000, "channels": 1, "frame_ms": 20}, capabilities=[]), 1.0, now)
    assert probe.opened is not None and probe.usable
    probe.on_message(msg("turn_started", sid=sid, ts=now, turn=1, source="text"), 1.1, now)
    probe.on_message(msg("bot_text", sid=sid, ts=now - 1500, turn=1, text="Hi"), 1.2, now)
    pcm = bytes(960 * 2)
    for i in range(3):
        probe.on_message(msg("audio_out", (pcm,), sid=sid, ts=now, turn=1, seq=i + 1, offset=960 * i,
                             sample_rate=48000, channels=1, samples=960), 1.3 + i * 0.02, now)
    probe.on_message(msg("audio_out", (pcm,), sid=sid, ts=now, turn=1, seq=5, offset=2880, sample_rate=48000,
                         channels=1, samples=960), 1.5, now)  # seq 4 missing, and late
    probe.on_message(msg("turn_completed", sid=sid, ts=now, turn=1, interrupted=False), 1.6, now)
    st = probe.turns[1]
    assert st.done and st.first_text_t == 1.2 and st.first_audio_t == 1.3
    assert st.frames == 4 and st.audio_s == pytest.approx(0.08)
    assert st.seq_gaps == 1 and st.playout.underruns == 1
    assert st.bridge_max_ms == pytest.approx(1.5)
    assert (1.5, False) in bridge and any(audio for _, audio in bridge)
    assert not errors and woken


def test_probe_fatal_error_and_reconnect_fail_open_turns() -> None:
    errors: list[str] = []
    probe = SessionProbe(on_error=lambda code, t: errors.append(code))
    probe.turn(3)
    probe.on_message(msg("session_state", sid="s", ts=1, state="reconnecting", attempt=1), 1.0, 2)
    assert probe.turns[3].error == "session_reconnecting" and not probe.usable
    probe.on_message(msg("session_state", sid="s", ts=1, state="resumed"), 1.1, 2)
    assert probe.usable
    probe.turn(4)
    probe.on_message(msg("error", sid="s", code="transport_failed", message="x", retryable=True, fatal=True), 2, 3)
    assert probe.turns[4].error == "transport_failed" and probe.fatal == "transport_failed"
    assert errors == ["session_reconnecting", "transport_failed"]


def test_probe_voice_turn_lookup_and_bounded_state() -> None:
    probe = SessionProbe()
    probe.on_message(msg("turn_started", sid="s", turn=1, source="voice"), 5.0, 0)
    assert probe.voice_turn_after(4.0) == 1 and probe.voice_turn_after(6.0) is None
    for turn in range(2, 200):
        probe.turn(turn)
    assert len(probe.turns) <= 32


# -- scripts ---------------------------------------------------------------------------------------
def test_default_script_loads_and_covers_every_turn_kind() -> None:
    script = load_script()
    kinds = {t.kind for t in script.turns}
    assert kinds == {"text", "voice", "trigger"}
    assert any(t.interrupt_after_ms for t in script.turns)
    assert script.voice_mode("live") == "vad" and script.voice_mode("interaction") == "ptt"


@pytest.mark.parametrize(
    "data, fragment",
    [
        ({}, "at least one turn"),
        ({"turns": [{"kind": "dance"}]}, "kind"),
        ({"turns": [{"kind": "text"}]}, "needs text"),
        ({"turns": [{"kind": "trigger"}]}, "needs name"),
        ({"turns": [{"kind": "voice", "wav": "/nonexistent.wav"}]}, "no such file"),
        ({"turns": [{"kind": "text", "text": "x", "interrupt_after_ms": -1}]}, "interrupt_after_ms"),
        ({"turns": [{"kind": "text", "text": "x"}], "think_time_s": [3, 1]}, "think_time_s"),
        ({"turns": [{"kind": "text", "text": "x"}], "bogus": 1}, "unknown keys"),
    ],
)
def test_bad_scripts_are_refused(data: dict, fragment: str) -> None:
    with pytest.raises(ScriptError, match=fragment):
        parse_script(data)


def test_script_wav_path_is_relative_to_the_script(tmp_path: Path) -> None:
    from bridge.audio.wav import write_wav_file
    from bridge_loadtest.speech import load_utterance

    write_wav_file(tmp_path / "hi.wav", np.zeros(16000, dtype=np.int16), 16000, 1)
    (tmp_path / "s.toml").write_text('[[turns]]\nkind = "voice"\nwav = "hi.wav"\n')
    script = load_script(tmp_path / "s.toml")
    utt = load_utterance(script.turns[0])
    assert utt.rate == 16000 and utt.duration_s == pytest.approx(1.0) and len(utt.frames(20)) == 50


# -- reports ---------------------------------------------------------------------------------------
def _stats() -> RunStats:
    stats = RunStats()
    stats.started_at = 0.0
    for i in range(30):
        rec = TurnRecord(npc=i % 3, client=0, kind="text", turn=i, start_s=i * 0.5, first_text_ms=100.0 + i,
                         first_audio_ms=300.0 + i, turn_ms=2000.0, audio_ms=1500.0, frames=75, bridge_ms_max=0.5)
        stats.add_turn(rec, i * 0.5)
        stats.bridge_sample(i * 0.5, 0.3 + i / 100, False)
    stats.add_turn(TurnRecord(npc=0, client=0, kind="voice", turn=99, start_s=15.0, error="turn_timeout"), 15.0)
    stats.error("turn_timeout", 15.0)
    return stats


def test_reports_json_csv_png_html(tmp_path: Path) -> None:
    stats, meta = _stats(), {"npcs": 3, "backend": "live", "duration_s": 15, "target": {"description": "unit"}}
    write_json(tmp_path / "r.json", stats, meta)
    data = json.loads((tmp_path / "r.json").read_text())
    assert data["latency_ms"]["first_text"]["p50"] == pytest.approx(114.5, rel=0.02)
    assert data["turns"]["total"] == 31 and data["turns"]["failed"] == 1
    assert data["errors"] == {"turn_timeout": 1} and data["realtime"] is False
    write_csv(tmp_path / "r.csv", stats)
    rows = list(csv.DictReader((tmp_path / "r.csv").open()))
    assert len(rows) == 31 and rows[-1]["error"] == "turn_timeout"
    write_report(tmp_path / "r.png", stats, meta)
    assert (tmp_path / "r.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    write_report(tmp_path / "r.html", stats, meta)
    page = (tmp_path / "r.html").read_text()
    assert "data:image/png;base64," in page and "turn_timeout" in page


# -- refusing real Convai --------------------------------------------------------------------------
def _args(**kw: object) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    cli.add_arguments(parser)
    argv: list[str] = ["--quiet"]
    for key, value in kw.items():
        flag = "--" + key.replace("_", "-")
        argv += [flag] if value is True else [flag, str(value)]
    return parser.parse_args(argv)


def test_real_convai_needs_allow_real() -> None:
    assert cli.run(_args(real=True)) == 2


def test_unverifiable_daemon_needs_allow_real(tmp_path: Path) -> None:
    conn = tmp_path / "connection.json"
    conn.write_text(json.dumps({"endpoint": "tcp://127.0.0.1:1", "token": "t", "pid": os.getpid()}))
    assert runs_emulator(os.getpid()) is False  # this pytest process is no emulator daemon
    with pytest.raises(TargetError, match="--allow-real"):
        existing_target(conn, allow_real=False)
    assert cli.run(_args(connection_file=conn)) == 2
    assert existing_target(conn, allow_real=True).kind == "real"


def test_bad_arguments_exit_2(tmp_path: Path) -> None:
    assert cli.run(_args(npcs=0)) == 2
    assert cli.run(_args(report=tmp_path / "r.svg")) == 2
    assert cli.run(_args(script=tmp_path / "missing.toml")) == 2
