"""Real-socket middlemen for live-session tests: a recording ``/connect`` proxy and a cuttable TCP relay.

``ConnectProxy`` sits where the daemon expects Convai's Live API: it forwards ``POST /connect`` and
``POST /disconnect`` to the emulator unchanged, keeps every request body and answer, and can point
the answer's ``room_url`` at a :class:`TcpRelay`, so a test can cut the daemon's signalling
WebSocket like a network blip would (media stays on its own UDP path).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import aiohttp
from aiohttp import web


class TcpRelay:
    """Forwards TCP connections from a loopback port to ``target``; ``cut()`` severs the live ones."""

    def __init__(self, host: str, port: int) -> None:
        self.target = (host, port)
        self.port = 0
        self.accepted = 0
        self.refuse = False
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if self.refuse:
            writer.close()
            return
        self.accepted += 1
        try:
            up_reader, up_writer = await asyncio.open_connection(*self.target)
        except OSError:
            writer.close()
            return
        self._writers.update((writer, up_writer))

        async def pipe(src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
            with contextlib.suppress(ConnectionError, OSError, asyncio.CancelledError):
                while data := await src.read(65536):
                    dst.write(data)
                    await dst.drain()
            with contextlib.suppress(Exception):
                dst.close()

        await asyncio.gather(pipe(reader, up_writer), pipe(up_reader, writer))
        self._writers.discard(writer)
        self._writers.discard(up_writer)

    def cut(self) -> int:
        """Abort every relayed connection (both directions, no close handshake); returns how many."""
        writers, self._writers = list(self._writers), set()
        for w in writers:
            transport = w.transport
            with contextlib.suppress(Exception):
                transport.abort()
        return len(writers) // 2

    async def close(self) -> None:
        self.cut()
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()


class ConnectProxy:
    """A recording stand-in for Convai's Live API base URL in front of the emulator."""

    def __init__(self, upstream: str) -> None:
        self.upstream = upstream.rstrip("/")
        self.connects: list[dict[str, Any]] = []  # request bodies
        self.answers: list[tuple[int, Any]] = []
        self.disconnects = 0
        self.relay: TcpRelay | None = None
        self._runner: web.AppRunner | None = None
        self._http: aiohttp.ClientSession | None = None
        self.url = ""

    async def start(self, *, relay_signalling: bool = False) -> None:
        self._http = aiohttp.ClientSession()
        if relay_signalling:
            parts = urlsplit(self.upstream)
            self.relay = TcpRelay(parts.hostname or "127.0.0.1", parts.port or 80)
            await self.relay.start()
        app = web.Application()
        app.router.add_post("/connect", self._connect)
        app.router.add_post("/disconnect", self._disconnect)
        self._runner = web.AppRunner(app)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        port = self._runner.addresses[0][1]
        self.url = f"http://127.0.0.1:{port}"

    async def _connect(self, request: web.Request) -> web.Response:
        raw = await request.read()
        self.connects.append(json.loads(raw))
        assert self._http is not None
        headers = {k: v for k, v in request.headers.items() if k.lower() in ("x-api-key", "content-type")}
        async with self._http.post(self.upstream + "/connect", data=raw, headers=headers) as resp:
            text = await resp.text()
            status = resp.status
        body: Any = json.loads(text) if text else None
        if status == 200 and self.relay is not None and isinstance(body, dict):
            parts = urlsplit(body["room_url"])
            body["room_url"] = urlunsplit((parts.scheme, f"127.0.0.1:{self.relay.port}", parts.path, "", ""))
            text = json.dumps(body)
        self.answers.append((status, body))
        return web.Response(status=status, text=text, content_type="application/json")

    async def _disconnect(self, request: web.Request) -> web.Response:
        self.disconnects += 1
        assert self._http is not None
        async with self._http.post(self.upstream + "/disconnect", params=request.query) as resp:
            return web.Response(status=resp.status, text=await resp.text(), content_type="application/json")

    async def close(self) -> None:
        if self.relay is not None:
            await self.relay.close()
        if self._runner is not None:
            await self._runner.cleanup()
        if self._http is not None:
            await self._http.close()
