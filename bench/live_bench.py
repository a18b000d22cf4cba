"""Live transport benchmark: daemon-side CPU per WebRTC session and connect latency.

The LiveKit-compatible server and its bots run in a *separate process*, so the CPU measured here
is only the client (daemon) side per session: LiveKit signalling, two aiortc peer connections,
Opus encode of steady mic speech (espeak-ng via the emulator's voice; a tone without it), Opus
decode of the bot's audio, and the RTVI traffic.

Servers: the transport tests' fake LiveKit (``tests/live_transport/lt_fake_livekit.py``), whose
bot streams a steady tone and says nothing; and the emulator (``convai_emulator`` with its
realtime extension), where each session is a real ``POST /connect`` and the bot is kept talking
with back-to-back text turns, so RTVI traffic (visemes, text) comes with the audio.

``measure()`` returns, for one server: ``live_cpu_pct_per_session`` (process CPU, user+system,
all threads, divided by wall time and by the number of sessions, in % of one core, averaged over
the steady window), ``live_connect_ms`` (median ``transport.connect()``: signalling, ICE, DTLS,
data channel open, mic published; sessions connected one after another), ``live_open_ms`` (the
same plus the ``POST /connect`` before it) and context: frames per second each way, RTVI messages
per second, mic frames dropped, the server process' CPU, the 1-minute load average (a loaded
2-core machine inflates every number) and ``live_realtime_ok``. ``run()`` (what ``make bench``
calls) combines a fake-server run and an emulator run; see its docstring.

Usage: ``python bench/live_bench.py [--server emulator|fake] [--sessions 8] [--seconds 10]
[--profile out.prof] [--naive]`` (``--naive``: aiortc as shipped, for comparison).
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

import aiohttp
import numpy as np

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bridge.backends.live.connect import connect_session  # noqa: E402
from bridge.backends.live.livekit import LiveKitTransport  # noqa: E402

CHARACTER = "c0ffee00-0000-4000-8000-000000000001"
RATE = 48000
FRAME = 960


def _cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _emulator_available() -> bool:
    try:
        import convai_emulator.realtime  # noqa: F401
        import convai_emulator.server  # noqa: F401
    except ImportError:
        return False
    return True


async def _serve_emulator(port_file: Path) -> None:
    """``--serve-emulator``: the emulator with its realtime side, until SIGTERM."""
    import signal

    from convai_emulator.config import EmulatorConfig
    from convai_emulator.realtime import register
    from convai_emulator.server import Emulator

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    async with Emulator(EmulatorConfig(voice_engine="synthetic"), [register]) as emu:
        port_file.write_text(emu.base_url)
        await stop.wait()


class _Server:
    """The server process (emulator, else the tests' fake LiveKit): started on a free port."""

    def __init__(self, prefer_emulator: bool = True) -> None:
        self.proc: subprocess.Popen[bytes] | None = None
        self.url = ""
        self.kind = "emulator" if prefer_emulator and _emulator_available() else "fake"

    def start(self, timeout: float = 30.0) -> None:
        with tempfile.TemporaryDirectory() as tmp:
            port_file = Path(tmp) / "url"
            env = dict(os.environ, PYTHONPATH=str(ROOT))
            if self.kind == "emulator":
                cmd = [sys.executable, str(Path(__file__).resolve()), "--serve-emulator", str(port_file)]
            else:
                cmd = [sys.executable, "-m", "tests.live_transport.lt_fake_livekit", "--port-file", str(port_file)]
            self.proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
            deadline = time.monotonic() + timeout
            while not port_file.exists() or not port_file.read_text():
                if self.proc.poll() is not None or time.monotonic() > deadline:
                    err = self.proc.stderr.read().decode(errors="replace") if self.proc.stderr else ""
                    self.stop()
                    raise RuntimeError(f"benchmark server did not start: {err[-2000:]}")
                time.sleep(0.05)
            self.url = port_file.read_text().strip()

    async def join(self, http: aiohttp.ClientSession, index: int) -> tuple[str, str]:
        """Room URL and token for one session."""
        if self.kind == "emulator":
            from convai_emulator.config import DEV_API_KEY

            result = await connect_session(http, self.url, DEV_API_KEY, {"character_id": CHARACTER}, timeout=15)
            return result.room_url, result.token
        from tests.live_transport.lt_fake_livekit import FakeLiveKit

        return self.url, FakeLiveKit.token(f"bench{index}")

    def cpu_seconds(self) -> float:
        """The server process' CPU time so far (context for the client number)."""
        if self.proc is None:
            return 0.0
        try:
            fields = Path(f"/proc/{self.proc.pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            return 0.0
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=5)
        self.proc = None


class _Talker:
    """Keeps the emulator's bot talking: a long text turn, and another when it completes."""

    PROMPT = "Tell me the whole story of the dragon attack on the village, every detail of it please."

    def __init__(self, transport: LiveKitTransport) -> None:
        self.transport = transport
        self.turns = 0
        self.pending: asyncio.Task[None] | None = None

    def on_json(self, message: dict[str, Any], sender: str) -> None:
        data = message.get("data")
        kind = data.get("type") if message.get("type") == "server-message" and isinstance(data, dict) else None
        if (kind or message.get("type")) == "bot-turn-completed":
            self.ask()

    def ask(self) -> None:
        self.turns += 1
        message = {
            "label": "rtvi-ai",
            "type": "user_text_message",
            "id": f"t{self.turns}",
            "data": {"text": self.PROMPT},
        }
        self.pending = asyncio.ensure_future(self.transport.send_json(message))
        self.pending.add_done_callback(lambda task: task.cancelled() or task.exception())


def _mic_signal() -> np.ndarray:
    """Speech when the emulator's voice is importable (Opus' cost depends on the content; a pure
    tone is cheaper to encode than speech), else a 1 kHz tone."""
    try:
        from convai_emulator.voice import VoiceSpec, synthesize

        speech = synthesize(_Talker.PROMPT, VoiceSpec(), RATE)
        if len(speech) >= RATE:
            return speech.astype(np.int16)
    except Exception:  # noqa: BLE001 - any failure: fall back to the tone
        pass
    t = np.arange(RATE) / RATE
    return (6000 * np.sin(2 * np.pi * 1000 * t)).astype(np.int16)


async def _feed_mic(transports: list[LiveKitTransport], stop: asyncio.Event) -> None:
    """One ticker feeds every session a 20 ms frame of looping speech, as the daemon's audio path would."""
    pcm = _mic_signal()
    frames = [pcm[i * FRAME : (i + 1) * FRAME] for i in range(len(pcm) // FRAME)]
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


async def _measure(
    server: _Server, sessions: int, seconds: float, warmup: float, profile: cProfile.Profile | None
) -> dict[str, Any]:
    transports: list[LiveKitTransport] = []
    talkers: list[_Talker] = []
    connect_ms: list[float] = []
    open_ms: list[float] = []
    audio_frames = [0] * sessions
    http = aiohttp.ClientSession()
    try:
        for i in range(sessions):
            opened = time.perf_counter()
            room_url, token = await server.join(http, i)
            transport = LiveKitTransport(room_url, token)

            def count(pcm: np.ndarray, rate: int, channels: int, i: int = i) -> None:
                audio_frames[i] += 1

            transport.on_bot_audio = count
            talker = _Talker(transport)
            transport.on_json = talker.on_json
            started = time.perf_counter()
            await transport.connect(timeout=15)
            connect_ms.append((time.perf_counter() - started) * 1000)
            open_ms.append((time.perf_counter() - opened) * 1000)
            transports.append(transport)
            talkers.append(talker)
        if server.kind == "emulator":
            for talker in talkers:
                talker.ask()
        stop = asyncio.Event()
        feeder = asyncio.ensure_future(_feed_mic(transports, stop))
        await asyncio.sleep(warmup)
        frames_before = sum(audio_frames)
        json_before = sum(t.stats.json_in for t in transports)
        sent_before = sum(t.stats.mic_frames_sent + t.stats.mic_silence_frames for t in transports)
        cpu0, server0, wall0 = _cpu_seconds(), server.cpu_seconds(), time.perf_counter()
        if profile is not None:
            profile.enable()
        await asyncio.sleep(seconds)
        if profile is not None:
            profile.disable()
        cpu1, server1, wall1 = _cpu_seconds(), server.cpu_seconds(), time.perf_counter()
        stop.set()
        await feeder
        wall = wall1 - wall0
        received = sum(audio_frames) - frames_before
        json_in = sum(t.stats.json_in for t in transports) - json_before
        sent = sum(t.stats.mic_frames_sent + t.stats.mic_silence_frames for t in transports) - sent_before
        return {
            "live_cpu_pct_per_session": round(100 * (cpu1 - cpu0) / wall / sessions, 2),
            "live_connect_ms": round(statistics.median(connect_ms), 1),
            "live_open_ms": round(statistics.median(open_ms), 1),
            "live_sessions": sessions,
            "live_window_s": round(wall, 2),
            "live_bot_fps_per_session": round(received / wall / sessions, 1),
            "live_mic_fps_per_session": round(sent / wall / sessions, 1),
            "live_mic_dropped": sum(t.stats.mic_dropped for t in transports),
            "live_bot_turns": sum(t.turns for t in talkers),
            "live_rtvi_msgs_per_s_per_session": round(json_in / wall / sessions, 1),
            "live_server_cpu_pct": round(100 * (server1 - server0) / wall, 1),
            # 1 when both directions kept ~50 frames/s; otherwise the machine was too busy and the
            # CPU figure is low only because less audio was processed
            "live_realtime_ok": int(received / wall / sessions >= 45 and sent / wall / sessions >= 45),
            "live_loadavg_1m": round(os.getloadavg()[0], 2),
        }
    finally:
        for transport in transports:
            with contextlib.suppress(Exception):
                await transport.close()
        await http.close()


def _use_naive_aiortc() -> None:
    """Baseline for comparison: aiortc as it ships (raw frames, its encoder/decoder threads, no hooks).

    Must run before the first transport is created in this process.
    """
    from fractions import Fraction

    from av import AudioFrame

    from bridge.backends.live import fastaudio
    from bridge.backends.live.media import MicTrack

    if fastaudio.installed():
        raise RuntimeError("--naive needs a fresh process (the audio hooks are already installed)")
    os.environ["BRIDGE_AIORTC_HOOKS"] = "0"

    def raw_frame(self: MicTrack) -> AudioFrame:
        queue = self._queue
        if queue:
            pcm = queue.popleft()
            self._stats.mic_frames_sent += 1
        else:
            pcm = self._silence
            self._stats.mic_silence_frames += 1
        frame = AudioFrame.from_ndarray(pcm.reshape(1, -1), format="s16", layout="mono")
        frame.sample_rate, frame.pts, frame.time_base = RATE, self._pts, Fraction(1, RATE)
        return frame

    MicTrack._next_packet = raw_frame  # type: ignore[method-assign,assignment]


def run(quick: bool = False) -> dict[str, float]:
    """For ``make bench``: numbers only, from two 8-session runs.

    * ``live_cpu_pct_per_session`` / ``live_connect_ms``: the target metric, steady audio both
      ways — the fake LiveKit's bot streams a tone, the daemon side streams speech.
    * ``live_cpu_pct_per_session_talking`` / ``live_open_ms``: the emulator (when importable), a
      Convai-like bot kept talking, so the figure adds its RTVI traffic (visemes and text, about
      50-100 messages a second per session) to the audio.
    """
    seconds, warmup = (4.0, 1.0) if quick else (10.0, 2.0)
    audio = measure(seconds=seconds, warmup=warmup, prefer_emulator=False)
    keys = ("live_cpu_pct_per_session", "live_connect_ms", "live_sessions", "live_mic_dropped")
    result: dict[str, float] = {key: audio[key] for key in keys}
    ok = audio["live_realtime_ok"]
    if _emulator_available():
        talking = measure(seconds=seconds, warmup=warmup, prefer_emulator=True)
        result["live_cpu_pct_per_session_talking"] = talking["live_cpu_pct_per_session"]
        result["live_open_ms"] = talking["live_open_ms"]
        result["live_rtvi_msgs_per_s_per_session"] = talking["live_rtvi_msgs_per_s_per_session"]
        ok = min(ok, talking["live_realtime_ok"])
    result["live_realtime_ok"] = ok
    result["live_loadavg_1m"] = round(os.getloadavg()[0], 2)
    if not ok:
        print("live bench: sessions fell behind real time; the machine is too busy for valid CPU figures",
              file=sys.stderr)
    return result


def measure(
    sessions: int = 8,
    seconds: float = 10.0,
    warmup: float = 2.0,
    profile_path: str | None = None,
    prefer_emulator: bool = True,
    naive: bool = False,
) -> dict[str, Any]:
    """Start the server process, measure ``sessions`` steady sessions, return numbers and labels."""
    if naive:
        _use_naive_aiortc()
    server = _Server(prefer_emulator)
    server.start()
    profile = cProfile.Profile() if profile_path else None
    try:
        result = asyncio.run(_measure(server, sessions, seconds, warmup, profile))
    finally:
        server.stop()
    if profile is not None and profile_path:
        profile.dump_stats(profile_path)
    result["live_server"] = server.kind
    if naive:
        result["live_client"] = "naive aiortc (baseline)"
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sessions", type=int, default=8)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--warmup", type=float, default=2.0)
    parser.add_argument(
        "--server",
        choices=("emulator", "fake"),
        default="emulator",
        help="the emulator (falls back to the fake when not importable) or the tests' fake LiveKit",
    )
    parser.add_argument("--profile", help="write a cProfile of the steady window here")
    parser.add_argument("--naive", action="store_true", help="baseline: aiortc as shipped, without our audio path")
    parser.add_argument("--serve-emulator", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve_emulator:
        asyncio.run(_serve_emulator(args.serve_emulator))
        return
    result = measure(
        args.sessions,
        args.seconds,
        args.warmup,
        args.profile,
        prefer_emulator=args.server == "emulator",
        naive=args.naive,
    )
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
