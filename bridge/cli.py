"""`convai-bridge` verbs: serve, emulator, chat, demo (and loadtest when available)."""

from __future__ import annotations

import argparse
import asyncio
import importlib
import logging
import sys
from pathlib import Path

import bridge


def _serve_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--endpoint", help="ZeroMQ endpoint to bind (default tcp://127.0.0.1:7300)")
    p.add_argument("--connection-file", type=Path, help="where to write endpoint + token (0600)")
    p.add_argument(
        "--config",
        type=Path,
        help="TOML config file (default: $CONVAI_BRIDGE_CONFIG, else config.toml in the config dir; PROTOCOL.md 1)",
    )
    p.add_argument("--rest-url", help="Convai REST host (default https://api.convai.com)")
    p.add_argument("--live-url", help="Convai Live host (default https://live.convai.com)")
    p.add_argument("--allow-remote", action="store_true", help="allow binding a non-loopback endpoint")
    p.add_argument("--max-sessions", type=int, help="sessions per client")
    p.add_argument("--emulator", action="store_true", help="start an embedded Convai emulator and use it")
    p.add_argument("--emulator-profile", default=None, metavar="NAME",
                   help="server profile of the embedded emulator (current, websdk, stale_session, legacy, slow_start)")
    p.add_argument(
        "--workers",
        type=int,
        default=None,
        help="worker processes for sessions (default: one per core; 0 runs sessions in the daemon process)",
    )
    p.add_argument("--metrics-port", type=int, default=None, help="Prometheus metrics on 127.0.0.1:PORT (0: off)")
    p.add_argument("--log-level", default=None, help="DEBUG, INFO, WARNING")


def _config_from(args: argparse.Namespace):
    from bridge.config import load_config

    return load_config(
        {
            "endpoint": args.endpoint,
            "connection_file": args.connection_file,
            "rest_url": args.rest_url,
            "live_url": args.live_url,
            "allow_remote": args.allow_remote or None,
            "max_sessions": args.max_sessions,
            "log_level": args.log_level,
            "workers": args.workers,
            "metrics_port": args.metrics_port,
        },
        file=args.config,
    )


def cmd_serve(args: argparse.Namespace) -> int:
    from bridge.daemon.run import serve

    config = _config_from(args)
    logging.basicConfig(level=config.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("aioice").setLevel(max(logging.WARNING, logging.getLogger().level))
    if not args.emulator and not config.api_key:
        print("warning: no Convai API key (set CONVAI_API_KEY or api_key in the config file)", file=sys.stderr)
    emulator_options = {"profile": args.emulator_profile} if args.emulator_profile else None
    return asyncio.run(serve(config, with_emulator=args.emulator, emulator_options=emulator_options))


_EXTRAS = {"bridge_loadtest.cli": "loadtest", "convai_emulator.cli": "emulator"}


def _unavailable(name: str, module: str, exc: ImportError):
    """A verb whose optional dependencies are missing still shows up, and says what to install."""

    def run(_args: argparse.Namespace) -> int:
        extra = _EXTRAS.get(module)
        hint = f"; install it with: pip install 'convai-bridge[{extra}]'" if extra else ""
        print(f"convai-bridge {name}: unavailable ({exc.name or exc}: {exc}){hint}", file=sys.stderr)
        return 2

    return run


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="convai-bridge", description=bridge.__doc__)
    parser.add_argument("--version", action="version", version=f"convai-bridge {bridge.__version__}")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("serve", help="run the daemon", description="Run the bridge daemon (ZeroMQ ROUTER).")
    _serve_args(p)
    p.set_defaults(func=cmd_serve)

    for name, module, help_text in (
        ("emulator", "convai_emulator.cli", "run the Convai-compatible emulator"),
        ("chat", "bridge.chat", "chat with a character through the daemon"),
        ("demo", "bridge.demo", "emulator + daemon + a scripted two-NPC conversation"),
        ("loadtest", "bridge_loadtest.cli", "simulated engine clients against the daemon"),
    ):
        try:
            mod = importlib.import_module(module)
        except ImportError as exc:
            p = sub.add_parser(name, help=f"{help_text} (unavailable: {exc.name or exc})", add_help=False)
            p.set_defaults(func=_unavailable(name, module, exc), unavailable=True)
            continue
        p = sub.add_parser(name, help=help_text, description=(mod.__doc__ or help_text).strip().splitlines()[0])
        mod.add_arguments(p)
        p.set_defaults(func=mod.run)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args, unknown = parser.parse_known_args(argv)
    if unknown and not getattr(args, "unavailable", False):
        parser.error(f"unrecognized arguments: {' '.join(unknown)}")
    return int(args.func(args) or 0)


if __name__ == "__main__":
    raise SystemExit(main())
