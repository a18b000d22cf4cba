"""A worker process: an ordinary in-process daemon on a private IPC endpoint, driven by the front.

Its only client is the front (which holds the worker's token); sessions, backends and WebRTC run
here, so each worker uses its own core. Settings arrive as JSON on the command line, the API key only
through the environment (never argv, which other users can read in the process list).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import signal
import sys
from pathlib import Path

from bridge.config import Config, Secret

STOP_TIMEOUT_S = 8.0


async def _main(settings: dict[str, object], endpoint: str, token: str, connection_file: Path) -> None:
    from bridge.daemon.router import Daemon

    config = Config(**{k: v for k, v in settings.items() if k in Config.__dataclass_fields__})  # type: ignore[arg-type]
    config.endpoint = endpoint
    config.connection_file = connection_file
    config.api_key = Secret(os.environ.get("CONVAI_API_KEY"))
    daemon = Daemon(config, token=token)
    await daemon.start()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    watcher = loop.create_task(_watch_parent(os.getppid(), stop))
    print("READY", flush=True)
    try:
        await stop.wait()
    finally:
        watcher.cancel()
        try:
            await asyncio.wait_for(daemon.stop(), STOP_TIMEOUT_S)
        except TimeoutError:
            logging.getLogger(__name__).warning("worker stop timed out; exiting anyway")


async def _watch_parent(parent: int, stop: asyncio.Event) -> None:
    """A worker never outlives its front: if the front dies (even by SIGKILL), the worker is re-parented."""
    while not stop.is_set():
        if os.getppid() != parent:
            logging.getLogger(__name__).warning("front process %d is gone; worker exiting", parent)
            stop.set()
            return
        await asyncio.sleep(0.5)


def _die_with_parent() -> None:
    """Linux: have the kernel send SIGTERM when the front dies (the polling watcher covers other OSes)."""
    if sys.platform.startswith("linux"):
        try:
            import ctypes

            libc = ctypes.CDLL("libc.so.6", use_errno=True)
            libc.prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
        except OSError:
            pass


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--endpoint", required=True)
    parser.add_argument("--connection-file", type=Path, required=True)
    parser.add_argument("--settings", required=True, help="JSON of Config fields (no secrets)")
    parser.add_argument("--log-level", default="WARNING")
    args = parser.parse_args(argv)
    logging.basicConfig(level=args.log_level, format="%(asctime)s worker %(levelname)s %(name)s: %(message)s")
    logging.getLogger("aioice").setLevel(max(logging.WARNING, logging.getLogger().level))
    _die_with_parent()
    token = input()  # the front writes the token on stdin: not in argv, not in the environment
    asyncio.run(_main(json.loads(args.settings), args.endpoint, token, args.connection_file))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
