"""A small synchronous engine client for gevent (Locust): one green DEALER, receive-time stamps.

Locust users are greenlets, so this client blocks only its greenlet: ``zmq.green`` sockets, one
receive greenlet per client dispatching to session handlers (the same ``SessionProbe.on_message``
the asyncio load tester uses), and a heartbeat greenlet. Needs gevent (installed with Locust).
"""

from __future__ import annotations

import itertools
import logging
import time
from collections.abc import Callable, Iterable
from typing import Any

import gevent
import gevent.event
import zmq.green as zmq

import bridge
from bridge.wire.codec import Codec, Message, now_us
from bridge.wire.errors import ProtocolError
from bridge_loadtest.engine import Handler, RequestFailed

log = logging.getLogger(__name__)


class GreenClient:
    def __init__(self, endpoint: str, token: str, *, name: str = "convai-bridge-locust") -> None:
        self.endpoint = endpoint
        self.token = token
        self.name = name
        self.codec = Codec()
        self.ctx = zmq.Context.instance()
        self.sock: Any = None
        self.welcome: Message | None = None
        self.lost: str | None = None
        self._ids = itertools.count(1)
        self._pending: dict[int, tuple[gevent.event.AsyncResult, Callable[[Message], None] | None]] = {}
        self._handlers: dict[str, Handler] = {}
        self._greenlets: list[gevent.Greenlet] = []
        self._last_sent = time.monotonic()
        self._last_received = time.monotonic()

    @property
    def limits(self) -> dict[str, int]:
        return dict(self.welcome["limits"]) if self.welcome else {}

    def connect(self, timeout: float = 10.0) -> Message:
        sock = self.ctx.socket(zmq.DEALER)
        sock.setsockopt(zmq.LINGER, 0)
        sock.setsockopt(zmq.RCVHWM, 0)
        sock.connect(self.endpoint)
        self.sock = sock
        self._greenlets = [gevent.spawn(self._recv_loop), gevent.spawn(self._heartbeat_loop)]
        self.welcome = self.request(
            "hello",
            timeout=timeout,
            protocol=self.codec.schema.version,
            token=self.token,
            client=self.name,
            client_version=bridge.__version__,
            engine="python",
        )
        return self.welcome

    def close(self) -> None:
        gevent.killall(self._greenlets, block=True, timeout=2)
        self._greenlets = []
        for result, _ in self._pending.values():
            if not result.ready():
                result.set_exception(RequestFailed("connection_lost", "client closed"))
        self._pending.clear()
        if self.sock is not None:
            self.sock.close(linger=0)
            self.sock = None

    def send(self, msg_type: str, fields: dict[str, Any], frames: Iterable[bytes] = ()) -> None:
        if self.sock is None or self.lost:
            raise RequestFailed("connection_lost", self.lost or "not connected")
        self.sock.send_multipart(self.codec.encode(msg_type, {"ts": now_us(), **fields}, tuple(frames)))
        self._last_sent = time.monotonic()

    def request(
        self,
        msg_type: str,
        *,
        timeout: float = 10.0,
        frames: Iterable[bytes] = (),
        on_reply: Callable[[Message], None] | None = None,
        **fields: Any,
    ) -> Message:
        req_id = next(self._ids) & 0xFFFFFFFF
        result: gevent.event.AsyncResult = gevent.event.AsyncResult()
        self._pending[req_id] = (result, on_reply)
        try:
            self.send(msg_type, {"id": req_id, **{k: v for k, v in fields.items() if v is not None}}, frames)
            reply: Message = result.get(timeout=timeout)
        except gevent.Timeout as exc:
            raise RequestFailed("request_timeout", f"no reply to {msg_type} within {timeout:g} s", True) from exc
        finally:
            self._pending.pop(req_id, None)
        if reply.type == "error":
            raise RequestFailed(reply["code"], reply["message"], reply["retryable"], reply["fatal"])
        return reply

    def attach(self, sid: str, handler: Handler) -> None:
        self._handlers[sid] = handler

    def detach(self, sid: str) -> None:
        self._handlers.pop(sid, None)

    def _recv_loop(self) -> None:
        while self.sock is not None:
            parts = self.sock.recv_multipart()
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
            except Exception:
                log.exception("handling %s failed", msg.type)

    def _dispatch(self, msg: Message, t: float, wall: int) -> None:
        if msg.type == "ping":
            self._send_quietly("pong", {"id": msg.id})
            return
        if msg.id is not None and msg.type in ("ack", "error", "welcome", "pong"):
            entry = self._pending.pop(msg.id, None)
            if entry is not None:
                result, on_reply = entry
                if on_reply is not None and msg.type != "error":
                    on_reply(msg)
                result.set(msg)
                return
            if msg.type in ("ack", "pong"):
                return
        handler = self._handlers.get(msg.sid or "")
        if handler is not None:
            handler(msg, t, wall)

    def _send_quietly(self, msg_type: str, fields: dict[str, Any]) -> None:
        try:
            self.send(msg_type, fields)
        except Exception:  # heartbeats are best effort
            pass

    def _heartbeat_loop(self) -> None:
        while self.sock is not None:
            limits = self.limits
            period = limits.get("heartbeat_ms", 2000) / 1000
            timeout = limits.get("client_timeout_ms", 10000) / 1000
            gevent.sleep(period / 2)
            now = time.monotonic()
            if self.welcome is not None and now - self._last_received > timeout:
                self.lost = f"no message from the daemon for {timeout:g} s"
                for result, _ in list(self._pending.values()):
                    if not result.ready():
                        result.set_exception(RequestFailed("connection_lost", self.lost, True))
                return
            if self.welcome is not None and now - self._last_sent >= period:
                self._send_quietly("ping", {"id": next(self._ids) & 0xFFFFFFFF})
