"""Measure the emulator's CPU per realtime session (not a test; run by hand).

    python tests/emulator_realtime/profile_sessions.py [--sessions 8] [--seconds 10] [--cprofile out.prof]

Starts the emulator in a child process (optionally under cProfile), joins N aiortc LiveKit clients
that publish a microphone, and reads the child's CPU time from /proc during two phases: idle
(silence both ways, VAD running) and talking (back-to-back text turns: speech, visemes, data).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import aiohttp

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(ROOT))

from emu_lk_client import LkClient  # noqa: E402

SERVER = """
import sys
sys.path.insert(0, {root!r})
from convai_emulator.config import EmulatorConfig
from convai_emulator.realtime import RealtimeSettings, realtime_extension
from convai_emulator.server import run_forever
run_forever(EmulatorConfig(port={port}), [realtime_extension(RealtimeSettings(viseme_fps={viseme_fps}))],
            ready=lambda emu: print(emu.base_url, flush=True))
"""


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sessions", type=int, default=8)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--cprofile", default="")
    parser.add_argument("--viseme-fps", type=int, default=100)
    args = parser.parse_args()
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    script = Path(tempfile.mkdtemp()) / "emulator_server.py"
    script.write_text(SERVER.format(root=str(ROOT), port=port, viseme_fps=args.viseme_fps))
    cmd = [sys.executable]
    if args.cprofile:
        cmd += ["-m", "cProfile", "-o", args.cprofile]
    cmd += [str(script)]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True)
    try:
        base = proc.stdout.readline().strip() if proc.stdout else ""
        assert base.startswith("http"), base
        print(json.dumps(asyncio.run(measure(proc.pid, base, args.sessions, args.seconds))))
    finally:
        proc.send_signal(2)
        proc.wait(timeout=20)


async def measure(pid: int, base: str, sessions: int, seconds: float) -> dict[str, float]:
    clients: list[LkClient] = []
    async with aiohttp.ClientSession() as http:
        for _ in range(sessions):
            resp = await http.post(f"{base}/connect", json={"character_id": "c0ffee00-0000-4000-8000-000000000001"},
                                   headers={"x-api-key": "convai-bridge-dev-key"})
            body = await resp.json()
            client = LkClient(body["room_url"], body["token"])
            await client.connect()
            await client.publish_mic()
            clients.append(client)
    await asyncio.sleep(2.0)
    c0, t0 = cpu_seconds(pid), time.monotonic()
    await asyncio.sleep(seconds)
    idle = (cpu_seconds(pid) - c0) / (time.monotonic() - t0)

    async def talk(client: LkClient, stop: float) -> int:
        turns = 0
        while time.monotonic() < stop:
            done = len(client.find("bot-turn-completed"))
            client.send_json({"type": "user_text_message", "data": {"text": "tell me about your forge"}})
            await client.wait_for(lambda c=client, d=done: len(c.find("bot-turn-completed")) > d, 30, "turn")
            turns += 1
        return turns

    c0, t0 = cpu_seconds(pid), time.monotonic()
    turns = await asyncio.gather(*(talk(c, t0 + seconds) for c in clients))
    talking = (cpu_seconds(pid) - c0) / (time.monotonic() - t0)
    frames = sum(len(c.audio) for c in clients)
    for client in clients:
        await client.close()
    return {
        "sessions": sessions,
        "idle_cpu_percent_total": round(idle * 100, 1),
        "idle_cpu_percent_per_session": round(idle * 100 / sessions, 2),
        "talking_cpu_percent_total": round(talking * 100, 1),
        "talking_cpu_percent_per_session": round(talking * 100 / sessions, 2),
        "turns": sum(turns), "client_audio_frames": frames,
    }


if __name__ == "__main__":
    main()
