"""Soak and fuzz: memory of the daemon over a long run with talking sessions, a slow consumer and floods.

A daemon process (front + workers) and an emulator process; 20 sessions keep talking, one extra
client stops reading while its sessions speak (a slow consumer), and bursts of mutated messages from
hostile clients arrive every so often. `soak_rss_growth_mb` is the daemon's resident memory (front
plus workers) at the end minus after warm-up: flat means bounded. The fuzz counts come from the same
run (bench.hostile).

Duration: 10 minutes; `--quick` (or CONVAI_BRIDGE_SOAK_S=seconds) for a short run.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import statistics
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

import msgpack
import zmq
import zmq.asyncio

from bench.hostile import CHARACTER, run_fuzz
from bench.processes import free_port, stack
from bridge.client import BridgeClient, BridgeError
from bridge.wire.codec import pack

SESSIONS = 20
SLOW_SESSIONS = 4
FUZZ_BURST = 2000
HI_FI = {"sample_rate": 192000, "channels": 2, "frame_ms": 20}


def _tree_rss_mb(pid: int) -> float:
    """Resident memory of a process and its children (the front and its workers)."""
    total = 0.0
    pids = [pid] + [int(p.name) for p in Path("/proc").iterdir() if p.name.isdigit() and _ppid(int(p.name)) == pid]
    for p in pids:
        with contextlib.suppress(OSError):
            for line in Path(f"/proc/{p}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1]) / 1024
    return total


def _ppid(pid: int) -> int:
    try:
        return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])
    except (OSError, IndexError, ValueError):
        return -1


def _dropped(metrics_port: int) -> float:
    with contextlib.suppress(OSError):
        text = urllib.request.urlopen(f"http://127.0.0.1:{metrics_port}/metrics", timeout=5).read().decode()
        return sum(
            float(line.rsplit(" ", 1)[1])
            for line in text.splitlines()
            if line.startswith("convai_bridge_dropped_messages_total{")
        )
    return -1.0


async def _talker(client: BridgeClient, stop: asyncio.Event, stats: dict[str, int]) -> None:
    npc = await client.open_session(CHARACTER, backend="interaction", open_timeout=60)
    while not stop.is_set():
        try:
            ack = await client.request("text", sid=npc.sid, text="Tell me something about the harbour.", timeout=60)
            while True:
                event = await asyncio.wait_for(npc.events.get(), 60)
                if event.type == "error" and not event["retryable"]:
                    raise BridgeError(event)
                if event.type == "turn_completed" and event.get("turn") == ack.get("turn"):
                    break
            stats["turns"] += 1
        except (BridgeError, TimeoutError):
            stats["failures"] += 1
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), 1.0)


async def _slow_consumer(endpoint: str, token: str, stop: asyncio.Event) -> None:
    """Opens sessions, asks for long answers in high-rate stereo, and never reads (only pings)."""
    ctx = zmq.asyncio.Context()
    sock = ctx.socket(zmq.DEALER)
    sock.setsockopt(zmq.LINGER, 0)
    sock.setsockopt(zmq.RCVHWM, 1)
    sock.setsockopt(zmq.RCVBUF, 4096)
    sock.connect(endpoint)
    try:
        await sock.send_multipart([pack({"v": 1, "type": "hello", "id": 1, "protocol": "1.1", "token": token,
                                         "client": "slow"})])  # fmt: skip
        sids: list[str] = []
        for i in range(SLOW_SESSIONS):
            await sock.send_multipart([pack({"v": 1, "type": "session_open", "id": 10 + i, "character_id": CHARACTER,
                                             "backend": "interaction", "audio": HI_FI})])  # fmt: skip
        while len(sids) < SLOW_SESSIONS:
            header = msgpack.unpackb((await asyncio.wait_for(sock.recv_multipart(), 60))[0], raw=False)
            if header.get("type") == "ack" and header.get("sid"):
                sids.append(header["sid"])
        await asyncio.sleep(3.0)
        req = 100
        while not stop.is_set():
            for sid in sids:
                req += 1
                text = "Tell me a very long story about ships, storms and the lighthouse keeper."
                await sock.send_multipart([pack({"v": 1, "type": "text", "id": req, "sid": sid, "text": text})])
            for _ in range(10):  # keeps its heartbeat, reads nothing
                req += 1
                await sock.send_multipart([pack({"v": 1, "type": "ping", "id": req})])
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), 1.0)
    finally:
        sock.close(0)
        ctx.destroy(linger=0)


async def _soak(endpoint: str, token: str, pid: int, metrics_port: int, seconds: float) -> dict[str, Any]:
    stop = asyncio.Event()
    stats = {"turns": 0, "failures": 0}
    clients = [await BridgeClient.connect(endpoint, token, timeout=60) for _ in range(4)]
    talkers = [asyncio.create_task(_talker(clients[i % 4], stop, stats)) for i in range(SESSIONS)]
    slow = asyncio.create_task(_slow_consumer(endpoint, token, stop))
    fuzz = {"messages": 0, "internal": 0, "unanswered": 0, "foreign": 0}
    samples: list[float] = []
    try:
        warmup = min(60.0, seconds / 4)
        await asyncio.sleep(warmup)
        baseline = _tree_rss_mb(pid)
        start = time.monotonic()
        next_fuzz = start
        seed = 1
        while (left := seconds - warmup - (time.monotonic() - start)) > 0:
            if time.monotonic() >= next_fuzz:
                report = await run_fuzz(endpoint, token, FUZZ_BURST, seed=seed, fuzzers=3, settle_s=20)
                seed += 1
                fuzz["messages"] += report.sent
                fuzz["internal"] += report.internal_errors
                fuzz["unanswered"] += report.unanswered
                fuzz["foreign"] += report.foreign
                next_fuzz = time.monotonic() + max(20.0, seconds / 10)
            samples.append(_tree_rss_mb(pid))
            await asyncio.sleep(min(5.0, max(0.1, left)))
        end = statistics.median(samples[-3:]) if samples else _tree_rss_mb(pid)
    finally:
        stop.set()
        for task in [*talkers, slow]:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(task, 90)
        for client in clients:
            await client.close()
    return {
        "soak_seconds": round(seconds),
        "soak_sessions": SESSIONS,
        "soak_rss_baseline_mb": round(baseline, 1),
        "soak_rss_peak_mb": round(max(samples or [end]), 1),
        "soak_rss_growth_mb": round(end - baseline, 1),
        "soak_turns": stats["turns"],
        "soak_turn_failures": stats["failures"],
        "slow_consumer_dropped_messages": _dropped(metrics_port),
        "fuzz_messages": fuzz["messages"],
        "fuzz_internal_errors": fuzz["internal"],
        "fuzz_unanswered": fuzz["unanswered"],
        "fuzz_foreign_messages": fuzz["foreign"],
    }


def run(quick: bool = False) -> dict[str, Any]:
    seconds = float(os.environ.get("CONVAI_BRIDGE_SOAK_S") or (60 if quick else 600))
    metrics_port = free_port()
    with tempfile.TemporaryDirectory() as tmp:
        cfg = Path(tmp) / "soak.toml"
        # The fuzz bursts measure handling, not the rate limit, so it is set high here.
        settings = {"max_requests_per_s": 100000, "max_session_requests_per_s": 100000, "max_sessions": 8}
        cfg.write_text("".join(f"{k} = {v}\n" for k, v in settings.items()))
        args = ("--workers", "2", "--metrics-port", str(metrics_port), "--config", str(cfg))
        with stack(args) as s:
            return asyncio.run(_soak(s.endpoint, s.token, s.daemon.pid, metrics_port, seconds))


if __name__ == "__main__":
    import json
    import sys

    print(json.dumps(run(quick="--quick" in sys.argv), indent=2))
