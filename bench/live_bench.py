"""Live transport benchmark: daemon-side CPU per WebRTC session and connect latency.

The LiveKit-compatible server and its bots run in a *separate process*, so the CPU measured here
is only the client (daemon) side: LiveKit signalling, two aiortc peer connections, Opus encode of
a steady mic tone and Opus decode of the bot's steady tone, per session.

Server choice: the emulator's realtime server (``bridge.emulator.realtime``) when it is importable
and serves ``/rtc``; otherwise the transport tests' fake server
(``tests/live_transport/lt_fake_livekit.py``). ``run()`` reports which one in ``server``.

``run()`` returns ``live_cpu_pct_per_session`` (process CPU, user+system, all threads, divided by
wall time and by the number of sessions, in % of one core, averaged over the steady window) and
``live_connect_ms`` (median ``connect()`` time, sessions connected one after another).

Usage: ``python bench/live_bench.py [--sessions 8] [--seconds 10] [--profile out.prof]``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import cProfile
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
FAKE_SERVER = ROOT / "tests" / "live_transport" / "lt_fake_livekit.py"
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bridge.backends.live.livekit import LiveKitTransport  # noqa: E402

RATE = 48000
FRAME = 960


def _cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


class _Server:
    """The server process: started on a free port, stopped with SIGTERM."""

    def __init__(self) -> None:
        self.proc: subprocess.Popen[bytes] | None = None
        self.url = ""
        self.token = ""
        self.kind = ""

    def start(self, timeout: float = 20.0) -> None:
        with tempfile.TemporaryDirectory() as tmp:
            port_file = Path(tmp) / "url"
            env = dict(os.environ, PYTHONPATH=str(ROOT))
            self.proc = subprocess.Popen(
                [sys.executable, str(FAKE_SERVER), "--port-file", str(port_file)],
                env=env,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.PIPE,
            )
            deadline = time.monotonic() + timeout
            while not port_file.exists() or not port_file.read_text():
                if self.proc.poll() is not None or time.monotonic() > deadline:
                    err = self.proc.stderr.read().decode(errors="replace") if self.proc.stderr else ""
                    self.stop()
                    raise RuntimeError(f"benchmark server did not start: {err[-2000:]}")
                time.sleep(0.05)
            self.url = port_file.read_text().strip()
        sys.path.insert(0, str(FAKE_SERVER.parent))
        from lt_fake_livekit import FakeLiveKit

        self.token = FakeLiveKit.token("bench")
        self.kind = "tests/live_transport fake LiveKit"

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=5)
        self.proc = None


async def _feed_mic(transports: list[LiveKitTransport], stop: asyncio.Event) -> None:
    """One ticker feeds every session a 20 ms 1 kHz tone frame, as the daemon's audio path would."""
    t = np.arange(RATE) / RATE
    second = (6000 * np.sin(2 * np.pi * 1000 * t)).astype(np.int16)
    frames = [second[i * FRAME : (i + 1) * FRAME] for i in range(RATE // FRAME)]
    loop = asyncio.get_running_loop()
    start = loop.time()
    n = 0
    while not stop.is_set():
        for transport in transports:
            transport.send_mic(frames[n % len(frames)])
        n += 1
        delay = start + n * FRAME / RATE - loop.time()
        if delay > 0:
            await asyncio.sleep(delay)


async def _measure(url: str, token: str, sessions: int, seconds: float, warmup: float,
                   profile: cProfile.Profile | None) -> dict[str, Any]:
    transports: list[LiveKitTransport] = []
    connect_ms: list[float] = []
    audio_frames = [0] * sessions
    try:
        for i in range(sessions):
            transport = LiveKitTransport(url, token)

            def count(pcm: np.ndarray, rate: int, channels: int, i: int = i) -> None:
                audio_frames[i] += 1

            transport.on_bot_audio = count
            started = time.perf_counter()
            await transport.connect(timeout=15)
            connect_ms.append((time.perf_counter() - started) * 1000)
            transports.append(transport)
        stop = asyncio.Event()
        feeder = asyncio.ensure_future(_feed_mic(transports, stop))
        await asyncio.sleep(warmup)
        frames_before = sum(audio_frames)
        sent_before = sum(t.stats.mic_frames_sent + t.stats.mic_silence_frames for t in transports)
        cpu0, wall0 = _cpu_seconds(), time.perf_counter()
        if profile is not None:
            profile.enable()
        await asyncio.sleep(seconds)
        if profile is not None:
            profile.disable()
        cpu1, wall1 = _cpu_seconds(), time.perf_counter()
        stop.set()
        await feeder
        wall = wall1 - wall0
        received = sum(audio_frames) - frames_before
        sent = sum(t.stats.mic_frames_sent + t.stats.mic_silence_frames for t in transports) - sent_before
        return {
            "live_cpu_pct_per_session": round(100 * (cpu1 - cpu0) / wall / sessions, 2),
            "live_connect_ms": round(statistics.median(connect_ms), 1),
            "live_sessions": sessions,
            "live_window_s": round(wall, 2),
            "live_bot_fps_per_session": round(received / wall / sessions, 1),
            "live_mic_fps_per_session": round(sent / wall / sessions, 1),
            "live_mic_dropped": sum(t.stats.mic_dropped for t in transports),
        }
    finally:
        for transport in transports:
            with contextlib.suppress(Exception):
                await transport.close()


def run(sessions: int = 8, seconds: float = 10.0, warmup: float = 2.0, profile_path: str | None = None) -> dict:
    """Start the server process, measure ``sessions`` steady sessions, return the numbers."""
    server = _Server()
    server.start()
    profile = cProfile.Profile() if profile_path else None
    try:
        result = asyncio.run(_measure(server.url, server.token, sessions, seconds, warmup, profile))
    finally:
        server.stop()
    if profile is not None and profile_path:
        profile.dump_stats(profile_path)
    result["live_server"] = server.kind
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sessions", type=int, default=8)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--warmup", type=float, default=2.0)
    parser.add_argument("--profile", help="write a cProfile of the steady window here")
    args = parser.parse_args()
    print(json.dumps(run(args.sessions, args.seconds, args.warmup, args.profile), indent=2))


if __name__ == "__main__":
    main()
