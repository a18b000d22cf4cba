"""The official LiveKit Python SDK (Rust/libwebrtc) joins the emulator's rooms and talks to the bot.

libwebrtc ignores loopback, so the check runs in a private network namespace (``unshare -n``) with
a veth pair carrying 127.0.0.2/32; see ``official_sdk_check.py``. Modes: ``single`` is the SDK
default (single PC on ``/rtc/v1``); ``fallback`` serves 404 on ``/rtc/v1`` so the SDK falls back to
dual-PC ``/rtc``, which is also what ``single_peer_connection=False`` uses. ``noisy`` publishes a
live, quiet microphone (steady low noise all the time): the bot must hear the speech mixed into it,
nothing else, and must not barge itself off while it talks.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).with_name("official_sdk_check.py")


def _skip_reason() -> str | None:
    if os.geteuid() != 0:
        return "needs root for `unshare -n` (a private network namespace for libwebrtc)"
    if shutil.which("unshare") is None or shutil.which("ip") is None:
        return "needs `unshare` (util-linux) and `ip` (iproute2)"
    try:
        import livekit.rtc  # noqa: F401
    except ImportError:
        return "the official `livekit` SDK is not installed"
    probe = subprocess.run(["unshare", "-n", "true"], capture_output=True, timeout=10, check=False)
    if probe.returncode != 0:
        return f"unshare -n is not permitted here: {probe.stderr.decode(errors='replace').strip()}"
    return None


def _check(*modes: str) -> tuple[list[dict], str, int]:
    proc = subprocess.run(
        ["unshare", "-n", sys.executable, str(SCRIPT), *modes],
        capture_output=True, timeout=150, check=False, cwd=SCRIPT.parents[2],
    )
    lines = [json.loads(line) for line in proc.stdout.decode().splitlines() if line.startswith("{")]
    report = "\n".join(json.dumps(r) for r in lines) + "\n" + proc.stderr.decode(errors="replace")[-2000:]
    return lines, report, proc.returncode


def test_official_livekit_sdk_joins_hears_and_is_heard() -> None:
    reason = _skip_reason()
    if reason:
        pytest.skip(reason)
    lines, report, returncode = _check("single", "fallback")
    assert [r["mode"] for r in lines] == ["single", "fallback"], report
    assert returncode == 0, report
    noisy_lines, noisy_report, returncode = _check("noisy")  # the noisy room, in a process of its own
    report += noisy_report
    lines += noisy_lines
    assert [r["mode"] for r in lines] == ["single", "fallback", "noisy"], report
    for result in lines:
        assert result["ok"], report
        assert result["subscribed_track"] == result["bot_track_sid"], report
        assert result["mic_frames_at_server"] > 20 and result["vad_heard"], report
    noisy = lines[2]
    assert noisy["vad_learned_room"], report  # the floor rose to the room before anyone spoke
    assert noisy["onsets_during_speech"] >= 1 and noisy["onsets_from_noise"] == 0, report  # speech yes, room no
    assert noisy["bot_interrupted_by_noise"] == 0 and noisy["turns_interrupted"] == 0, report
    assert returncode == 0, report
