"""Load-test the bridge: scripted NPCs speaking protocol v1 to a daemon over ZeroMQ, with latency percentiles.

Target, by default: an emulator and a daemon this command starts as two child processes (so the
daemon's CPU is measured apart from the load generator's); ``--emulator-process embedded`` runs
``convai-bridge serve --emulator`` instead. ``--connection-file`` uses a running daemon (refused
unless its command line shows the emulator, or ``--allow-real``). ``--real --allow-real`` starts a
daemon against real Convai, after a cost warning. Exit status: 0 when every session opened and no
error or failed turn was seen, 1 otherwise, 2 for bad arguments or a target that could not start.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import importlib.util
import math
import os
import sys
import time
from pathlib import Path
from typing import Any

from rich.console import Console

from bridge_loadtest.npc import NpcOptions
from bridge_loadtest.procstat import ProcessSampler
from bridge_loadtest.progress import Progress
from bridge_loadtest.report import print_summary, write_csv, write_json, write_report
from bridge_loadtest.runner import LoadOptions, run_load
from bridge_loadtest.script import ScriptError, load_script
from bridge_loadtest.stats import RunStats
from bridge_loadtest.target import LocalStack, Target, TargetError, cost_warning, existing_target, split_args

REAL_COUNTDOWN_S = 5


def add_arguments(p: argparse.ArgumentParser) -> None:
    load = p.add_argument_group("load")
    load.add_argument("--npcs", type=int, default=20, help="simulated NPCs (sessions) (default %(default)s)")
    load.add_argument("--duration", type=float, default=60.0, help="seconds of load (default %(default)s)")
    load.add_argument("--ramp-up", type=float, default=None,
                      help="seconds over which NPCs start (default min(10, duration/4))")
    load.add_argument("--backend", default="live", choices=["live", "interaction", "stream"])
    load.add_argument("--clients", type=int, default=1,
                      help="engine clients (DEALER connections) the NPCs are spread over (default %(default)s)")
    load.add_argument("--script", type=Path, help="conversation script (TOML); default: the shipped one")
    load.add_argument("--seed", type=int, default=0, help="seed for think times (default %(default)s)")
    audio = p.add_argument_group("audio")
    audio.add_argument("--audio-rate", type=int, default=48000, help="audio_out sample rate (default %(default)s)")
    audio.add_argument("--frame-ms", type=int, default=20, help="audio_out frame size (default %(default)s)")
    audio.add_argument("--lipsync", choices=["none", "visemes"], default="none")
    audio.add_argument("--prebuffer-ms", type=float, default=0.0,
                       help="client jitter buffer: playback starts this long after a turn's first frame "
                            "(default 0: at the first frame)")
    bounds = p.add_argument_group("bounds")
    bounds.add_argument("--turn-timeout", type=float, default=30.0, help="seconds per turn (default %(default)s)")
    bounds.add_argument("--open-timeout", type=float, default=30.0, help="seconds to session_opened")
    bounds.add_argument("--open-retries", type=int, default=2, help="retries of a failed session open / reopen")
    bounds.add_argument("--grace", type=float, default=15.0,
                        help="seconds running turns may take after --duration (default %(default)s)")
    target = p.add_argument_group("target")
    target.add_argument("--connection-file", type=Path, help="use the running daemon this file describes")
    target.add_argument("--emulator-process", choices=["separate", "embedded"], default="separate",
                        help="emulator in its own process (default) or inside the daemon (serve --emulator)")
    target.add_argument("--daemon-workers", type=int, default=None,
                        help="worker processes of the daemon started here (default: the daemon's own default)")
    target.add_argument("--daemon-args", default="", help="extra arguments for the daemon started here, e.g. "
                        "'--workers 2'")
    target.add_argument("--real", action="store_true", help="start a daemon against real Convai (needs --allow-real)")
    target.add_argument("--allow-real", action="store_true",
                        help="consent to load real Convai (costs money), or a daemon whose upstream is unknown")
    target.add_argument("--workdir", type=Path, help="keep the started processes' logs here")
    out = p.add_argument_group("output")
    out.add_argument("--json", type=Path, help="write percentiles (ms), counts, errors, underruns as JSON")
    out.add_argument("--csv", type=Path, help="write one row per turn")
    out.add_argument("--report", type=Path, help="write plots: FILE.png, or FILE.html (plots + tables)")
    out.add_argument("--quiet", action="store_true", help="no live progress display")


def options_from(args: argparse.Namespace) -> LoadOptions:
    ramp = args.ramp_up if args.ramp_up is not None else min(10.0, args.duration / 4)
    opts = LoadOptions(
        npcs=args.npcs,
        duration_s=args.duration,
        ramp_up_s=ramp,
        clients=args.clients,
        grace_s=args.grace,
        script=load_script(args.script),
        npc=NpcOptions(
            backend=args.backend,
            audio={"sample_rate": args.audio_rate, "channels": 1, "frame_ms": args.frame_ms},
            lipsync=args.lipsync,
            prebuffer_ms=args.prebuffer_ms,
            turn_timeout_s=args.turn_timeout,
            open_timeout_s=args.open_timeout,
            open_retries=max(0, min(10, args.open_retries)),
            seed=args.seed,
        ),
    )
    opts.validate()
    if not 0 < args.turn_timeout <= 600 or not 0 < args.open_timeout <= 600:
        raise ValueError("timeouts must be in (0, 600] s")
    if not 0 <= args.prebuffer_ms <= 5000:
        raise ValueError("prebuffer must be 0..5000 ms")
    return opts


def meta_for(args: argparse.Namespace, opts: LoadOptions, target: Target, extra: dict[str, Any]) -> dict[str, Any]:
    return {
        "npcs": opts.npcs,
        "duration_s": opts.duration_s,
        "ramp_up_s": opts.ramp_up_s,
        "backend": opts.npc.backend,
        "clients": extra.get("clients", opts.clients),
        "script": opts.script.source,
        "target": {"kind": target.kind, "description": target.description, "endpoint": target.endpoint},
        "options": {
            "prebuffer_ms": opts.npc.prebuffer_ms,
            "audio": opts.npc.audio,
            "lipsync": opts.npc.lipsync,
            "turn_timeout_s": opts.npc.turn_timeout_s,
            "open_timeout_s": opts.npc.open_timeout_s,
            "open_retries": opts.npc.open_retries,
            "grace_s": opts.grace_s,
            "seed": opts.npc.seed,
        },
        **{k: v for k, v in extra.items() if k != "clients"},
    }


def execute(
    opts: LoadOptions, target: Target, *, console: Console, quiet: bool = False
) -> tuple[RunStats, dict[str, Any]]:
    """Run the load against ``target``; returns the stats and the run's metadata (processes, notes)."""
    load_before = round(os.getloadavg()[0], 2) if hasattr(os, "getloadavg") else None
    sampler = ProcessSampler({**target.pids(), "loadtest": os.getpid()}, alone=("loadtest",))
    with Progress(console, opts.npcs, enabled=not quiet) as progress:
        stats, state = asyncio.run(run_load(target.endpoint, target.token, opts, on_tick=progress.tick,
                                            sampler=sampler))
    extra = {
        "elapsed_s": round(state.elapsed_s, 2),
        "clients": state.clients,
        "processes": sampler.summary(),
        "notes": state.notes,
        "host": {"cpu_count": os.cpu_count(), "load_avg_1m_before": load_before},
    }
    return stats, extra


def run(args: argparse.Namespace) -> int:
    out = Console()
    err = Console(stderr=True)
    try:
        opts = options_from(args)
    except (ScriptError, ValueError) as exc:
        err.print(f"convai-bridge loadtest: {exc}", highlight=False)
        return 2
    for path in (args.json, args.csv, args.report):
        if path is not None and not path.parent.exists():
            err.print(f"convai-bridge loadtest: no such directory {path.parent}")
            return 2
    if args.report is not None and importlib.util.find_spec("matplotlib") is None:
        err.print("convai-bridge loadtest: --report needs matplotlib: pip install 'convai-bridge[loadtest]'")
        return 2
    if args.report is not None and args.report.suffix.lower() not in (".png", ".html"):
        err.print("convai-bridge loadtest: --report must end in .png or .html")
        return 2
    if args.real and args.connection_file:
        err.print("convai-bridge loadtest: --real and --connection-file exclude each other")
        return 2
    if args.real and not args.allow_real:
        err.print("convai-bridge loadtest: --real needs --allow-real (real Convai costs money)")
        return 2

    stack: contextlib.AbstractContextManager[Target]
    try:
        if args.connection_file is not None:
            stack = contextlib.nullcontext(existing_target(args.connection_file, allow_real=args.allow_real))
        else:
            stack = LocalStack(
                emulator=args.emulator_process,
                max_sessions=max(64, math.ceil(opts.npcs / opts.clients)),
                workers=args.daemon_workers,
                daemon_args=split_args(args.daemon_args),
                workdir=args.workdir,
                real=args.real,
                allow_real=args.allow_real,
            )
    except TargetError as exc:
        err.print(f"convai-bridge loadtest: {exc}", highlight=False)
        return 2

    if args.real or (args.connection_file is not None and args.allow_real):
        err.print(cost_warning(opts.npcs, opts.duration_s, opts.npc.backend), style="bold red", highlight=False)
        for left in range(REAL_COUNTDOWN_S, 0, -1):
            err.print(f"starting in {left} s…", highlight=False)
            time.sleep(1)

    try:
        with stack as target:
            err.print(f"target: {target.description}; {opts.npcs} NPCs on '{opts.npc.backend}' for "
                      f"{opts.duration_s:g} s (ramp-up {opts.ramp_up_s:g} s)", highlight=False)
            stats, extra = execute(opts, target, console=err, quiet=args.quiet)
    except TargetError as exc:
        err.print(f"convai-bridge loadtest: {exc}", highlight=False)
        return 2
    except ConnectionError as exc:
        err.print(f"convai-bridge loadtest: {exc}", highlight=False)
        return 2
    except KeyboardInterrupt:
        err.print("interrupted")
        return 130

    meta = meta_for(args, opts, target, extra)
    print_summary(out, stats, meta)
    for note in extra["notes"]:
        err.print(f"note: {note}", highlight=False)
    if args.json:
        write_json(args.json, stats, meta)
    if args.csv:
        write_csv(args.csv, stats)
    if args.report:
        write_report(args.report, stats, meta)
    ok = stats.sessions_failed == 0 and stats.turns_failed == 0 and not stats.errors and stats.sessions_opened > 0
    return 0 if ok else 1


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="convai-bridge loadtest", description=__doc__)
    add_arguments(parser)
    return run(parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
