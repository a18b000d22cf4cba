"""Run the daemon until a signal arrives, optionally with an embedded emulator as its Convai.

With `--emulator` nothing leaves the machine: the emulator binds loopback on a free port and the
daemon's REST and live URLs point at it, with the emulator's development key.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
from typing import Any

from bridge.config import Config, Secret
from bridge.daemon.endpoint import EngineEndpoint
from bridge.daemon.front import Front
from bridge.daemon.metrics import BridgeMetrics
from bridge.daemon.router import Daemon

log = logging.getLogger(__name__)


async def serve(config: Config, *, with_emulator: bool = False, emulator_options: dict[str, Any] | None = None) -> int:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError):
            loop.add_signal_handler(sig, stop.set)
    async with contextlib.AsyncExitStack() as stack:
        if with_emulator:
            from convai_emulator.server import Emulator, EmulatorConfig

            emu_cfg = EmulatorConfig(host="127.0.0.1", port=0, **(emulator_options or {}))
            emu = await stack.enter_async_context(Emulator(emu_cfg))
            config.rest_url = emu.rest_url
            config.live_url = emu.live_url
            config.api_key = Secret(emu_cfg.api_key)
            log.info("embedded emulator at %s", emu.rest_url)
        metrics = BridgeMetrics()
        if config.metrics_port:
            metrics.serve(config.metrics_port)
        daemon: EngineEndpoint
        workers = (os.cpu_count() or 1) if config.workers < 0 else config.workers
        if workers > 0:
            daemon = Front(config, workers, metrics=metrics)
        else:
            daemon = Daemon(config, metrics=metrics)
        endpoint = await daemon.start()
        print(f"connection file: {config.connection_file}", flush=True)
        print(f"READY {endpoint}", flush=True)
        try:
            await stop.wait()
        finally:
            await daemon.stop()
    return 0
