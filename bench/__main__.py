"""`make bench`: run every benchmark, print one table, write bench.json at the repository root.

Numbers are medians within one run (the machines are noisy); compare ratios, not absolutes.
`--quick` is a smoke run with fewer repetitions; `--only NAME` runs one group.
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import platform
import sys
import time
import traceback
from pathlib import Path

from rich.console import Console
from rich.table import Table

ROOT = Path(__file__).resolve().parents[1]
GROUPS = {
    "audio": ("bench.audio_bench", "resampler quality and speed (soxr vs scipy frame by frame)"),
    "bridge": ("bench.bridge_bench", "codec cost, bridge-added latency"),
    "live": ("bench.live_bench", "live CPU per session, connect time"),
    "load": ("bench.load_bench", "max real-time live sessions, memory, latency at N=50"),
    "turns": ("bench.turn_bench", "turn completion and first-text latency per emulator profile"),
    "reconnect": ("bench.reconnect_bench", "network blip to resumed: signal resume, in-room re-join"),
    "emulator": ("bench.emulator_bench", "emulator CPU per session (own aiortc path), speech recognition cost"),
    "soak": ("bench.soak_bench", "daemon memory over a soak with a slow consumer and fuzz bursts"),
    "echo": ("bench.echo_bench", "mic-path echo cancellation: ERLE, CPU per 10 ms frame"),
}
UNITS = {"_db": "dB", "_us": "µs", "_ms": "ms", "_pct": "%", "_mb": "MiB"}
TARGETS = {
    "resampler_snr_db": ">= 120",
    "resampler_us_per_frame": "<= 30",
    "live_cpu_pct_per_session": "<= 3",
    "max_live_sessions_realtime": ">= 100",
    "bridge_latency_p99_ms_at50": "<= 2",
    **{f"turn_completion_{p}": "= 1" for p in ("current", "websdk", "stale_session", "legacy", "slow_start")},
    "soak_rss_growth_mb": "<= 20",
    "fuzz_internal_errors": "== 0",
    "aec_erle_db": ">= 25",
}


def _unit(key: str) -> str:
    for suffix, unit in UNITS.items():
        if key.endswith(suffix) or suffix + "_" in key:
            return unit
    return ""


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--only", choices=sorted(GROUPS), action="append")
    parser.add_argument("--out", type=Path, default=ROOT / "bench.json")
    args = parser.parse_args(argv)
    console = Console()
    results: dict[str, object] = {}
    failures: dict[str, str] = {}
    timings: dict[str, float] = {}
    for name, (module, what) in GROUPS.items():
        if args.only and name not in args.only:
            continue
        console.print(f"[bold]{name}[/bold]: {what} …")
        start = time.perf_counter()
        try:
            mod = importlib.import_module(module)
            kwargs = {"quick": True} if args.quick and "quick" in mod.run.__code__.co_varnames else {}
            results.update(mod.run(**kwargs))
        except Exception as exc:  # report and continue: one broken group must not hide the others
            failures[name] = f"{type(exc).__name__}: {exc}"
            traceback.print_exc()
        timings[name] = time.perf_counter() - start
    table = Table(title="convai-bridge bench (medians of one run)")
    table.add_column("metric")
    table.add_column("value", justify="right")
    table.add_column("unit")
    table.add_column("target")
    for key in sorted(results):
        value = results[key]
        if isinstance(value, bool) or not isinstance(value, int | float):
            shown = str(value) if isinstance(value, bool | str) else f"({type(value).__name__}, see json)"
        elif abs(value) < 1000:
            shown = f"{value:.3g}"
        else:
            shown = f"{value:.0f}"
        table.add_row(key, shown, _unit(key), TARGETS.get(key, ""))
    console.print(table)
    for name, err in failures.items():
        console.print(f"[red]{name} failed:[/red] {err}")
    doc = {
        **results,
        "_meta": {
            "time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "python": sys.version.split()[0],
            "machine": platform.machine(),
            "cpus": os.cpu_count(),
            "quick": args.quick,
            "seconds": timings,
            "failures": failures,
        },
    }
    args.out.write_text(json.dumps(doc, indent=2) + "\n")
    console.print(f"wrote {args.out}")
    return 1 if failures else 0


if __name__ == "__main__":
    raise SystemExit(main())
