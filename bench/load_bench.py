"""Load benchmark: how many live NPC sessions this machine bridges in real time, memory per session, latency at 50.

Each step starts a fresh emulator + daemon (child processes, the daemon with its default worker
processes) and runs N scripted NPCs (the shipped conversation: text, voice, trigger and interrupted
turns) on the ``live`` backend through ``bridge_loadtest`` over ZeroMQ, all on this machine's cores.

A step is *real-time* when every session opened, no error and no failed turn occurred, and no NPC's
bot audio underran a client jitter buffer holding ``PREBUFFER_MS`` (``bridge_loadtest.playout``:
playback starts that long after a turn's first frame, then runs on the audio clock).
``max_live_sessions_realtime`` is the largest real-time N of an upward search (steps, then one
bisection between the last pass and the first failure) within ``BUDGET_S``.

Latency figures come from a run at N = 50 (reused from the search when it ran there);
``realtime_at50`` says whether that run was real-time. ``mem_mb_per_session`` is the slope of the
daemon's RSS growth (front + workers, peak minus idle) over N across the steps, i.e. the marginal
memory of a session without the fixed cost of a worker's first session (its imports); with a
single step it is that step's growth divided by N.

``run(quick=True)`` is a smoke run (small N, short steps; latency measured at ``latency_sessions``).
Usage: ``python bench/load_bench.py [--quick]``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bridge_loadtest.npc import NpcOptions  # noqa: E402
from bridge_loadtest.procstat import ProcessSampler  # noqa: E402
from bridge_loadtest.runner import LoadOptions, run_load  # noqa: E402
from bridge_loadtest.script import load_script  # noqa: E402
from bridge_loadtest.stats import RunStats  # noqa: E402
from bridge_loadtest.target import LocalStack  # noqa: E402

PREBUFFER_MS = 60.0
NPCS_PER_CLIENT = 25
BUDGET_S = 240.0
FULL = {"steps": (10, 25, 50, 75, 100, 125, 150, 200), "duration_s": 20.0, "ramp_s": 5.0, "latency_n": 50}
QUICK = {"steps": (4, 8), "duration_s": 8.0, "ramp_s": 2.0, "latency_n": 8}


def _step(n: int, duration_s: float, ramp_s: float) -> dict[str, Any]:
    """One load run of ``n`` NPCs on a fresh emulator + daemon."""
    opts = LoadOptions(
        npcs=n,
        duration_s=duration_s,
        ramp_up_s=ramp_s,
        clients=max(1, math.ceil(n / NPCS_PER_CLIENT)),
        grace_s=10.0,
        script=load_script(),
        npc=NpcOptions(backend="live", prebuffer_ms=PREBUFFER_MS),
    )
    started = time.perf_counter()
    with LocalStack(max_sessions=max(64, NPCS_PER_CLIENT)) as target:
        sampler = ProcessSampler({**target.pids(), "loadtest": os.getpid()}, alone=("loadtest",))

        async def go() -> RunStats:
            stop = asyncio.Event()

            async def sample() -> None:
                while not stop.is_set():
                    await asyncio.to_thread(sampler.sample)
                    try:
                        await asyncio.wait_for(stop.wait(), 1.0)
                    except TimeoutError:
                        pass

            sampling = asyncio.create_task(sample())
            try:
                stats, _ = await run_load(target.endpoint, target.token, opts)
            finally:
                stop.set()
                await sampling
            return stats

        stats = asyncio.run(go())
    procs = sampler.summary()
    daemon = procs.get("daemon", {})
    base, peak = daemon.get("rss_mb_baseline"), daemon.get("rss_mb_peak")
    lat = stats.percentiles_ms()
    return {
        "n": n,
        "realtime": stats.realtime_ok() and stats.sessions_failed == 0 and stats.sessions_opened == n,
        "sessions_opened": stats.sessions_opened,
        "turns": stats.turns_total,
        "turns_failed": stats.turns_failed,
        "errors": dict(stats.errors),
        "underruns": stats.underruns,
        "underruns_upstream": stats.underruns_upstream,
        "audio_s": round(stats.audio_s, 1),
        "first_text_ms": lat["first_text"],
        "first_audio_ms": lat["first_audio"],
        "bridge_ms": lat["bridge"],
        "generator_lag_p99_ms": lat["generator_lag"]["p99"],
        "cpu_pct": {name: p.get("cpu_pct_mean") for name, p in procs.items()},
        "daemon_rss_mb": {"idle": base, "peak": peak},
        "mem_mb_per_session": round((peak - base) / n, 2) if base is not None and peak is not None else None,
        "wall_s": round(time.perf_counter() - started, 1),
    }


def _search(
    steps: tuple[int, ...], duration_s: float, ramp_s: float, budget_s: float, log: list[dict[str, Any]]
) -> tuple[int, bool]:
    """Upward search with one bisection; returns (largest real-time N, whether the budget cut it short)."""
    t0 = time.perf_counter()
    best, failed_at, last_wall = 0, None, 0.0

    def affordable(n: int) -> bool:
        estimate = max(last_wall, duration_s + 15.0) * (1.0 + n / 400)
        return time.perf_counter() - t0 + estimate <= budget_s

    for n in steps:
        if not affordable(n):
            return best, True
        result = _step(n, duration_s, ramp_s)
        log.append(result)
        last_wall = result["wall_s"]
        if not result["realtime"]:
            failed_at = n
            break
        best = n
    if failed_at is None:
        return best, False
    mid = (best + failed_at) // 2
    if best < mid < failed_at and affordable(mid):
        result = _step(mid, duration_s, ramp_s)
        log.append(result)
        if result["realtime"]:
            best = mid
    return best, False


def _mem_per_session(log: list[dict[str, Any]], fallback: float | None) -> float | None:
    """Slope of daemon RSS growth over N across the steps: the marginal memory of one more session,
    without the one-off growth every run has (workers importing aiortc on their first session)."""
    pts = [
        (r["n"], r["daemon_rss_mb"]["peak"] - r["daemon_rss_mb"]["idle"])
        for r in log
        if r["daemon_rss_mb"]["peak"] is not None and r["daemon_rss_mb"]["idle"] is not None
    ]
    ns = {n for n, _ in pts}
    if len(ns) < 2:
        return fallback
    mean_n = sum(n for n, _ in pts) / len(pts)
    mean_m = sum(m for _, m in pts) / len(pts)
    var = sum((n - mean_n) ** 2 for n, _ in pts)
    return round(sum((n - mean_n) * (m - mean_m) for n, m in pts) / var, 2)


def run(quick: bool = False) -> dict[str, Any]:
    """Flat figures for bench.json plus ``steps`` (one dict per load run); about 4 minutes, 1 if quick."""
    cfg = QUICK if quick else FULL
    budget = 60.0 if quick else BUDGET_S
    load_before = os.getloadavg()[0] if hasattr(os, "getloadavg") else None
    log: list[dict[str, Any]] = []
    best, capped = _search(cfg["steps"], cfg["duration_s"], cfg["ramp_s"], budget, log)
    at = next((r for r in log if r["n"] == cfg["latency_n"]), None)
    if at is None:
        at = _step(cfg["latency_n"], cfg["duration_s"], cfg["ramp_s"])
        log.append(at)
    return {
        "max_live_sessions_realtime": best,
        "mem_mb_per_session": _mem_per_session(log, at["mem_mb_per_session"]),
        "latency_first_text_p50_ms": at["first_text_ms"]["p50"],
        "latency_first_text_p99_ms": at["first_text_ms"]["p99"],
        "latency_first_audio_p50_ms": at["first_audio_ms"]["p50"],
        "latency_first_audio_p99_ms": at["first_audio_ms"]["p99"],
        "bridge_latency_p50_ms_at50": at["bridge_ms"]["p50"],
        "bridge_latency_p99_ms_at50": at["bridge_ms"]["p99"],
        "realtime_at50": at["realtime"],
        "latency_sessions": at["n"],
        "prebuffer_ms": PREBUFFER_MS,
        "search_capped_by_budget": capped,
        "cpu_count": os.cpu_count(),
        # Other work on the machine skews every figure here; a 1-minute load average well above 0 before
        # the run means the numbers were taken on a busy host.
        "host_load_avg_1m_before": None if load_before is None else round(load_before, 2),
        "quick": quick,
        "steps": log,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    print(json.dumps(run(quick=args.quick), indent=2))


if __name__ == "__main__":
    main()
