"""``convai-bridge emulator``: run the Convai-compatible emulator (wired into bridge/cli.py)."""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from convai_emulator.config import DEFAULT_CLI_PORT, DEV_API_KEY, EmulatorConfig
from convai_emulator.faults import FaultRule, FaultSpecError
from convai_emulator.profiles import DEFAULT_PROFILE, PROFILES, ProfileError, get_profile
from convai_emulator.roster import RosterError, load_roster
from convai_emulator.server import Emulator, run_forever


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default: %(default)s)")
    parser.add_argument("--port", type=int, default=DEFAULT_CLI_PORT,
                        help="port to bind, 0 = any (default: %(default)s)")
    parser.add_argument("--api-key", default=None,
                        help="API key clients must send (default: the public development key)")
    parser.add_argument("--roster", type=Path, default=None, help="character roster TOML replacing the shipped one")
    parser.add_argument("--latency-ms", type=int, default=0, help="added latency on every request")
    parser.add_argument("--fault", action="append", default=[], metavar="SPEC",
                        help="fault rule, e.g. status=429,count=2,paths=/character/getResponse or "
                             "drop_stream_after=2 or status=500,probability=0.1 (repeatable)")
    parser.add_argument("--fault-seed", type=int, default=0, help="seed for probabilistic faults")
    parser.add_argument("--max-sessions", type=int, default=256,
                        help="concurrent live sessions per API key before /connect answers 429")
    parser.add_argument("--stream-delay-ms", type=float, default=15.0, help="pause between SSE text chunks")
    parser.add_argument("--voice", choices=("auto", "espeak", "synthetic"), default="auto",
                        help="speech engine: espeak-ng when installed (auto) or the synthetic voice")
    parser.add_argument("--public-url", default=None,
                        help="base URL advertised in room_url when clients reach the emulator through another name")
    parser.add_argument("--access-log", action="store_true", help="log every request")
    parser.add_argument("--profile", default=DEFAULT_PROFILE, choices=tuple(PROFILES),
                        help="server behaviour set for every session (default: %(default)s; a roster entry's "
                             "profile or POST /_emulator/profile overrides it)")
    parser.add_argument("--no-speech-recognition", action="store_true",
                        help="transcribe voice turns as '(voice input, N.N seconds)' instead of pocketsphinx "
                             "(saves CPU under load)")
    parser.add_argument("--bot-ready-delay", type=float, default=None, metavar="S",
                        help="seconds until bot-ready (overrides the profile's, e.g. slow_start's 20)")


def config_from_args(args: argparse.Namespace) -> EmulatorConfig:
    """Raises ValueError (FaultSpecError/RosterError) with a message fit for the user."""
    faults = [FaultRule.from_spec(spec) for spec in args.fault]
    if args.latency_ms:
        faults.insert(0, FaultRule(latency_ms=args.latency_ms))
    if args.roster is not None:
        load_roster(args.roster)  # fail early, with the file's error
    options = {"bot_ready_delay_s": args.bot_ready_delay} if args.bot_ready_delay is not None else {}
    get_profile(args.profile, options)  # fail early on a bad option
    return EmulatorConfig(
        host=args.host, port=args.port, api_key=args.api_key or DEV_API_KEY, roster_path=args.roster,
        faults=tuple(faults), fault_seed=args.fault_seed, max_sessions_per_key=args.max_sessions,
        stream_delay_ms=args.stream_delay_ms, voice_engine=args.voice, public_url=args.public_url,
        access_log=args.access_log, prewarm_audio=True, profile=args.profile, profile_options=options,
        speech_recognition=not args.no_speech_recognition,
    )


def run(args: argparse.Namespace) -> int:
    try:
        config = config_from_args(args)
    except (FaultSpecError, RosterError, ProfileError, OSError) as exc:
        print(f"convai-bridge emulator: {exc}", file=sys.stderr)
        return 2
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")

    def ready(emulator: Emulator) -> None:
        print(f"Convai emulator listening on {emulator.base_url}")
        print(f"  REST gateway: {emulator.rest_url}/character/getResponse")
        print(f"  Live API:     {emulator.live_url}/connect   (SSE: /connect/stream)")
        if args.api_key:
            print("  API key: the one given with --api-key")
        else:
            print(f"  API key: development key {DEV_API_KEY!r} (public; pass --api-key to choose your own)")
        if config.profile != DEFAULT_PROFILE or config.profile_options:
            print(f"  server profile: {config.profile} {dict(config.profile_options) or ''}".rstrip())
        if config.faults:
            print(f"  faults: {len(config.faults)} rule(s) active")
        sys.stdout.flush()

    try:
        run_forever(config, ready=ready)
    except OSError as exc:
        print(f"convai-bridge emulator: cannot listen on {args.host}:{args.port}: {exc}", file=sys.stderr)
        return 1
    return 0


def main(argv: list[str] | None = None) -> int:
    """Standalone entry (``python -m convai_emulator.cli``) until bridge/cli.py wires the verb."""
    parser = argparse.ArgumentParser(prog="convai-bridge emulator", description=__doc__)
    add_arguments(parser)
    return run(parser.parse_args(argv))


if __name__ == "__main__":
    raise SystemExit(main())
