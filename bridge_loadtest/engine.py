"""A lean asyncio engine client for load generation: one DEALER, many NPC sessions, receive-time stamps.

Unlike ``bridge.client`` (queues per session, for scripts and tests), this client hands each message
to its session's handler straight from the receive loop together with the moment it came off the
socket, so latencies measure the bridge and not the load generator's queueing. The protocol side
is the same: hello first, ids on requests, pings answered, pings sent when idle, a silent daemon
detected after ``client_timeout_ms``.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import time
from collections.abc import Callable, Iterable
from typing import Any

import zmq
import zmq.asyncio

import bridge
from bridge.wire.codec import Codec, Message, now_us
from bridge.wire.errors import ProtocolError

log = logging.getLogger(__name__)

Handler = Callable[[Message, float, int], None]  # (message, perf_counter at receipt, wall µs at receipt)


class RequestFailed(Exception):
    """A request answered with `error`, or not answered in time (code ``request_timeout``)."""

    def __init__(self, code: str, message: str = "", retryable: bool = False, fatal: bool = False) -> None:
        super().__init__(f"{code}: {message}" if message else code)
        self.code = code
        self.retryable = retryable
        self.fatal = fatal


class EngineClient:
    def __init__(self, endpoint: str, token: str, *, name: str = "convai-bridge-loadtest", index: int = 0) -> None:
        self.endpoint = endpoint
        self.token = token
        self.name = name
        self.index = index
        self.codec = Codec()
        self.ctx = zmq.asyncio.Context.instance()
        self.sock: zmq.asyncio.Socket | None = None
        self.welcome: Message | None = None
        self.lost: str | None = None  # why the connection is unusable
        self._ids = itertools.count(1)
        self._pending: dict[int, tuple[asyncio.Future[Message], Callable[[Message], None] | None]] = {}
        self._handlers: dict[str, Handler] = {}
        self._tasks: list[asyncio.Task[None]] = []
        self._last_sent = time.monotonic()
        self._last_received = time.monotonic()
        self.on_lost: Callable[[str], None] = lambda reason: None

    @property
    def limits(self) -> dict[str, int]:
        return dict(self.welcome["limits"]) if self.welcome else {}

    async def connect(self, timeout: float = 10.0) -> Message:
        sock = self.ctx.socket(zmq.DEALER)
        sock.setsockopt(zmq.LINGER, 0)
        sock.setsockopt(zmq.RCVHWM, 0)  # never drop what the daemon sends; the daemon bounds it
        sock.setsockopt(zmq.SNDHWM, 10000)
        sock.connect(self.endpoint)
        self.sock = sock
        loop = asyncio.get_running_loop()
        self._tasks.append(loop.create_task(self._recv_loop(), name=f"engine-{self.index}-recv"))
        self._tasks.append(loop.create_task(self._heartbeat_loop(), name=f"engine-{self.index}-heartbeat"))
        self.welcome = await self.request(
            "hello",
            timeout=timeout,
            protocol=self.codec.schema.version,
            token=self.token,
            client=self.name,
            client_version=bridge.__version__,
            engine="python",
        )
        return self.welcome

    async def close(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        self._tasks.clear()
        for fut, _ in self._pending.values():
            if not fut.done():
                fut.cancel()
        self._pending.clear()
        if self.sock is not None:
            self.sock.close(linger=0)
            self.sock = None

    # -- sending ----------------------------------------------------------------------------------
    async def send(self, msg_type: str, fields: dict[str, Any], frames: Iterable[bytes] = ()) -> None:
        if self.sock is None or self.lost:
            raise RequestFailed("connection_lost", self.lost or "not connected")
        parts = self.codec.encode(msg_type, {"ts": now_us(), **fields}, tuple(frames))
        await self.sock.send_multipart(parts, copy=False)
        self._last_sent = time.monotonic()

    async def request(
        self,
        msg_type: str,
        *,
        timeout: float = 10.0,
        frames: Iterable[bytes] = (),
        on_reply: Callable[[Message], None] | None = None,
        **fields: Any,
    ) -> Message:
        """Send a request and wait for its reply; ``on_reply`` runs inside the receive loop, before
        any later message is dispatched (so a session handler can be attached before its events)."""
        req_id = next(self._ids) & 0xFFFFFFFF
        fut: asyncio.Future[Message] = asyncio.get_running_loop().create_future()
        self._pending[req_id] = (fut, on_reply)
        try:
            await self.send(msg_type, {"id": req_id, **{k: v for k, v in fields.items() if v is not None}}, frames)
            reply = await asyncio.wait_for(fut, timeout)
        except TimeoutError as exc:
            raise RequestFailed("request_timeout", f"no reply to {msg_type} within {timeout:g} s", True) from exc
        finally:
            self._pending.pop(req_id, None)
        if reply.type == "error":
            raise RequestFailed(reply["code"], reply["message"], reply["retryable"], reply["fatal"])
        return reply

    # -- sessions ---------------------------------------------------------------------------------
    def attach(self, sid: str, handler: Handler) -> None:
        self._handlers[sid] = handler

    def detach(self, sid: str) -> None:
        self._handlers.pop(sid, None)

    # -- receiving --------------------------------------------------------------------------------
    async def _recv_loop(self) -> None:
        assert self.sock is not None
        while True:
            parts = await self.sock.recv_multipart()
            t = time.perf_counter()
            wall = time.time_ns() // 1000
            self._last_received = time.monotonic()
            try:
                msg = self.codec.decode(parts)
            except ProtocolError as err:
                log.warning("undecodable message from the daemon: %s", err)
                continue
            try:
                self._dispatch(msg, t, wall)
            except Exception:  # a measurement bug must not stop the client
                log.exception("handling %s failed", msg.type)

    def _dispatch(self, msg: Message, t: float, wall: int) -> None:
        if msg.type == "ping":
            asyncio.get_running_loop().create_task(self._send_quietly("pong", {"id": msg.id}))
            return
        if msg.id is not None and msg.type in ("ack", "error", "welcome", "pong"):
            entry = self._pending.pop(msg.id, None)
            if entry is not None:
                fut, on_reply = entry
                if on_reply is not None and msg.type != "error":
                    on_reply(msg)
                if not fut.done():
                    fut.set_result(msg)
                return
            if msg.type in ("ack", "pong"):
                return  # reply to a request that already timed out
        handler = self._handlers.get(msg.sid or "")
        if handler is not None:
            handler(msg, t, wall)
        elif msg.type == "error" and msg.get("fatal") and msg.sid is None:
            self._lose(f"daemon refused the connection: {msg['code']}")

    async def _send_quietly(self, msg_type: str, fields: dict[str, Any]) -> None:
        with contextlib.suppress(Exception):
            await self.send(msg_type, fields)

    async def _heartbeat_loop(self) -> None:
        while True:
            limits = self.limits
            period = limits.get("heartbeat_ms", 2000) / 1000
            timeout = limits.get("client_timeout_ms", 10000) / 1000
            await asyncio.sleep(period / 2)
            now = time.monotonic()
            if self.welcome is not None and now - self._last_received > timeout:
                self._lose(f"no message from the daemon for {timeout:g} s")
                return
            if self.welcome is not None and now - self._last_sent >= period:
                await self._send_quietly("ping", {"id": next(self._ids) & 0xFFFFFFFF})

    def _lose(self, reason: str) -> None:
        if self.lost:
            return
        self.lost = reason
        log.warning("client %d: %s", self.index, reason)
        for fut, _ in self._pending.values():
            if not fut.done():
                fut.set_exception(RequestFailed("connection_lost", reason, True))
        self.on_lost(reason)
