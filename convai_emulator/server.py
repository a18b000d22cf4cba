"""Running the emulator: an async context manager for tests and embedding, and a blocking runner."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from collections.abc import Callable, Sequence
from types import TracebackType

from aiohttp import web

from convai_emulator.config import DEFAULT_CLI_PORT, DEV_API_KEY, EmulatorConfig
from convai_emulator.http import create_app
from convai_emulator.state import ADDRESS

__all__ = ["DEFAULT_CLI_PORT", "DEV_API_KEY", "Emulator", "EmulatorConfig", "run_forever"]

log = logging.getLogger(__name__)


def default_extensions() -> list[Callable[[web.Application], None]]:
    """The realtime side (LiveKit-compatible rooms, direct SDP) is part of the emulator by default."""
    from convai_emulator.realtime import register

    return [register]


class Emulator:
    """``async with Emulator(config) as emu:`` serves both Convai hosts on ``emu.rest_url``.

    The REST gateway and the realtime service share one port, so ``rest_url == live_url``; both are
    given because a client configures them separately.
    """

    def __init__(self, config: EmulatorConfig | None = None,
                 extensions: Sequence[Callable[[web.Application], None]] | None = None) -> None:
        self.config = config or EmulatorConfig()
        self.app = create_app(self.config, default_extensions() if extensions is None else extensions)
        self._runner: web.AppRunner | None = None
        self.host = self.config.host
        self.port = self.config.port

    @property
    def base_url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    @property
    def rest_url(self) -> str:
        return self.base_url

    @property
    def live_url(self) -> str:
        return self.base_url

    @property
    def ws_url(self) -> str:
        return "ws://" + self.base_url[len("http://"):]

    async def start(self) -> None:
        runner = web.AppRunner(self.app, access_log=logging.getLogger("aiohttp.access")
                               if self.config.access_log else None,
                               shutdown_timeout=self.config.shutdown_timeout_s)
        await runner.setup()
        site = web.TCPSite(runner, self.config.host, self.config.port)
        try:
            await site.start()
        except BaseException:
            await runner.cleanup()
            raise
        self._runner = runner
        address = runner.addresses[0]
        self.host, self.port = str(address[0]), int(address[1])
        # A wildcard bind is no address to hand out; room URLs then follow the Host each client used.
        if self.host not in ("0.0.0.0", "::"):
            self.app[ADDRESS].base_url = self.base_url

    async def stop(self) -> None:
        if self._runner is not None:
            runner, self._runner = self._runner, None
            await runner.cleanup()

    async def __aenter__(self) -> Emulator:
        await self.start()
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                        tb: TracebackType | None) -> None:
        await self.stop()


async def serve(config: EmulatorConfig, extensions: Sequence[Callable[[web.Application], None]] | None = None,
                ready: Callable[[Emulator], None] | None = None) -> None:
    """Serve until SIGINT/SIGTERM."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(sig, stop.set)
    async with Emulator(config, extensions) as emulator:
        if ready is not None:
            ready(emulator)
        await stop.wait()


def run_forever(config: EmulatorConfig, extensions: Sequence[Callable[[web.Application], None]] | None = None,
                ready: Callable[[Emulator], None] | None = None) -> None:
    asyncio.run(serve(config, extensions, ready))
