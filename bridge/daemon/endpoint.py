"""The engine-facing socket: one ROUTER, the handshake, heartbeats, limits and error replies.

Shared by the single-process daemon and the multi-process front, which differ only in where
sessions live. Every inbound message is decoded and validated by the codec before anything acts on
it; every failure becomes an `error` with a stable code for that client only, and the loop keeps
running.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
import time
from abc import ABC, abstractmethod
from collections.abc import Awaitable
from dataclasses import dataclass, field
from typing import Any

import zmq
import zmq.asyncio

import bridge
from bridge.backends.registry import BACKENDS
from bridge.config import Config
from bridge.daemon.connection_file import new_token, remove_connection_file, write_connection_file
from bridge.daemon.metrics import BridgeMetrics
from bridge.wire.codec import Codec, Message, now_us
from bridge.wire.errors import ProtocolError

log = logging.getLogger(__name__)

CAPABILITIES = ["audio_in", "audio_out", "lipsync", "actions", "emotion", "narrative", "resume", "audio_reference"]


@dataclass
class ClientState:
    identity: bytes
    ready: bool = False
    name: str = ""
    last_seen: float = field(default_factory=time.monotonic)
    last_sent: float = field(default_factory=time.monotonic)
    sessions: set[str] = field(default_factory=set)


def wake_reader(sock: zmq.asyncio.Socket | None) -> None:
    """After a send on a shadow socket, let the asyncio reader see input the send may have absorbed.

    ZMQ_FD is edge-triggered and any socket operation can consume the edge; pyzmq's own send does
    exactly this check, which this replicates without allocating a future per message.
    """
    schedule = getattr(sock, "_schedule_remaining_events", None)
    if schedule is not None and getattr(sock, "_recv_futures", None):
        schedule()


class EngineEndpoint(ABC):
    def __init__(self, config: Config, token: str | None = None, metrics: BridgeMetrics | None = None) -> None:
        self.config = config
        self.metrics = metrics
        self.token = token or new_token()
        self.instance_id = secrets.token_hex(8)
        self.codec = Codec(max_message_bytes=config.max_message_bytes)
        self.ctx = zmq.asyncio.Context.instance()
        self.sock: zmq.asyncio.Socket | None = None
        self._tx: zmq.Socket | None = None
        self.endpoint = config.endpoint
        self.clients: dict[bytes, ClientState] = {}
        self._tasks: set[asyncio.Task[Any]] = set()
        self._ping_id = 0
        self._stopped = asyncio.Event()

    # -- subclass hooks --------------------------------------------------------------------------
    @abstractmethod
    def on_request(self, client: ClientState, msg: Message) -> None:
        """A validated client message other than hello/ping/pong."""

    @abstractmethod
    async def client_gone(self, client: ClientState) -> None:
        """The client stopped answering heartbeats: release what it owned."""

    @abstractmethod
    async def on_start(self) -> None:
        """Resources needed before the first client message (HTTP session, workers)."""

    @abstractmethod
    async def on_stop(self) -> None:
        """Close sessions and release resources; the socket closes after this."""

    # -- lifecycle -------------------------------------------------------------------------------
    async def start(self) -> str:
        if not self.config.allow_remote and not self.config.is_loopback_endpoint():
            raise ValueError(f"refusing to bind {self.config.endpoint}: not loopback (use --allow-remote)")
        sock = self.ctx.socket(zmq.ROUTER)
        sock.setsockopt(zmq.LINGER, 0)
        sock.setsockopt(zmq.MAXMSGSIZE, self.config.max_message_bytes + 4096)
        sock.setsockopt(zmq.SNDHWM, 10000)
        sock.setsockopt(zmq.RCVHWM, 10000)
        if self.config.endpoint.endswith(":0"):
            port = sock.bind_to_random_port(self.config.endpoint.rsplit(":", 1)[0])
            self.endpoint = f"{self.config.endpoint.rsplit(':', 1)[0]}:{port}"
        else:
            sock.bind(self.config.endpoint)
            self.endpoint = sock.getsockopt_string(zmq.LAST_ENDPOINT)
        self.sock = sock
        # Sends are non-blocking: a plain (shadow) socket skips the asyncio future bookkeeping that
        # would otherwise cost more than the send itself for every audio frame.
        self._tx = zmq.Socket.shadow(sock.underlying)
        await self.on_start()
        write_connection_file(self.config.connection_file, self.endpoint, self.token, self.instance_id)
        self._spawn(self._recv_loop(), "recv")
        self._spawn(self._heartbeat_loop(), "heartbeat")
        log.info("%s %s listening on %s", type(self).__name__.lower(), self.instance_id, self.endpoint)
        return self.endpoint

    async def stop(self) -> None:
        await self.on_stop()
        for task in list(self._tasks):
            task.cancel()
        for task in list(self._tasks):
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        if self.sock:
            self.sock.close(linger=0)
        remove_connection_file(self.config.connection_file, self.instance_id)
        self._stopped.set()

    async def wait_stopped(self) -> None:
        await self._stopped.wait()

    def _spawn(self, coro: Awaitable[Any], name: str) -> asyncio.Task[Any]:
        task = asyncio.get_running_loop().create_task(coro, name=name)  # type: ignore[arg-type]
        self._tasks.add(task)
        task.add_done_callback(self._task_done)
        return task

    def _task_done(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("task %s failed", task.get_name(), exc_info=task.exception())

    # -- sending ---------------------------------------------------------------------------------
    def send(self, identity: bytes, msg_type: str, fields: dict[str, Any], frames: tuple[bytes, ...] = ()) -> None:
        if self.sock is None:
            return
        if fields.get("ts") is None:
            fields = {**fields, "ts": now_us()}
        try:
            parts = self.codec.encode(msg_type, fields, frames)
        except ProtocolError:
            log.exception("daemon built an invalid %s message", msg_type)
            return
        if self.metrics is not None:
            self.metrics.event(msg_type, fields)
        self.send_parts(identity, parts, msg_type)

    def send_parts(self, identity: bytes, parts: list[Any], what: str = "message") -> None:
        """Hand already-encoded frames to the client's socket without blocking."""
        if self._tx is None:
            return
        client = self.clients.get(identity)
        if client:
            client.last_sent = time.monotonic()
        try:
            self._tx.send_multipart([identity, *parts], flags=zmq.NOBLOCK)  # copying small frames is cheaper
            wake_reader(self.sock)
        except zmq.Again:
            log.warning("client %s is not reading; dropped %s", identity.hex()[:8], what)
        except zmq.ZMQError as exc:
            log.debug("send to %s failed: %s", identity.hex()[:8], exc)

    def send_error(self, identity: bytes, err: ProtocolError) -> None:
        self.send(identity, "error", err.fields())

    # -- receiving -------------------------------------------------------------------------------
    async def _recv_loop(self) -> None:
        assert self.sock is not None
        while True:
            parts = await self.sock.recv_multipart(copy=True)
            if len(parts) < 2:
                continue
            identity, body = parts[0], parts[1:]
            try:
                self._handle(identity, body)
            except Exception:  # never let one message kill the loop
                log.exception("unexpected failure handling a message")
                self.send_error(identity, ProtocolError("internal", "the daemon failed to handle this message"))

    def _handle(self, identity: bytes, body: list[bytes]) -> None:
        client = self.clients.get(identity)
        if client is not None:
            client.last_seen = time.monotonic()
        try:
            msg = self.codec.decode(body)
        except ProtocolError as err:
            self.send_error(identity, err)
            return
        if msg.type == "hello":
            self._hello(identity, msg)
            return
        if client is None or not client.ready:
            self.send_error(identity, ProtocolError("not_ready", "send hello first", msg.id, msg.sid))
            return
        if self.codec.schema.messages[msg.type].direction == "daemon":
            self.send_error(identity, ProtocolError("unknown_type", f"{msg.type} is a daemon message", msg.id))
            return
        if msg.type == "ping":
            self.send(identity, "pong", {"id": msg.id})
            return
        if msg.type == "pong":
            return
        if self.metrics is not None:
            self.metrics.request(msg.type, msg.sid)
        self.on_request(client, msg)

    def _hello(self, identity: bytes, msg: Message) -> None:
        proto = msg["protocol"]
        major = proto.split(".", 1)[0]
        if not major.isdigit() or int(major) != self.codec.schema.major:
            text = f"client speaks protocol {proto}, daemon speaks {self.codec.schema.version}"
            self.send_error(identity, ProtocolError("version_mismatch", text, msg.id))
            return
        if not secrets.compare_digest(msg["token"].encode(), self.token.encode()):
            self.send_error(identity, ProtocolError("unauthorized", "token does not match the connection file", msg.id))
            return
        client = self.clients.setdefault(identity, ClientState(identity))
        client.ready = True
        client.name = msg["client"]
        cfg = self.config
        self.send(
            identity,
            "welcome",
            {
                "id": msg.id,
                "protocol": self.codec.schema.version,
                "daemon_version": bridge.__version__,
                "instance_id": self.instance_id,
                "backends": list(BACKENDS),
                "capabilities": CAPABILITIES,
                "limits": {
                    "max_message_bytes": cfg.max_message_bytes,
                    "max_sessions": cfg.max_sessions,
                    "heartbeat_ms": cfg.heartbeat_ms,
                    "client_timeout_ms": cfg.client_timeout_ms,
                    "max_audio_in_ms": cfg.max_audio_in_ms,
                    "audio_lead_ms": cfg.audio_lead_ms,
                },
            },
        )
        if self.metrics is not None:
            self.metrics.clients.set(sum(1 for c in self.clients.values() if c.ready))

    def check_session_limit(self, client: ClientState, msg: Message) -> bool:
        if len(client.sessions) < self.config.max_sessions:
            return True
        text = f"at most {self.config.max_sessions} sessions per client"
        self.send_error(client.identity, ProtocolError("too_many_sessions", text, msg.id))
        return False

    # -- heartbeats ------------------------------------------------------------------------------
    async def _heartbeat_loop(self) -> None:
        period = self.config.heartbeat_ms / 1000
        timeout = self.config.client_timeout_ms / 1000
        while True:
            await asyncio.sleep(period / 2)
            now = time.monotonic()
            for identity, client in list(self.clients.items()):
                if now - client.last_seen > timeout:
                    log.info("client %s timed out; closing %d session(s)", identity.hex()[:8], len(client.sessions))
                    del self.clients[identity]
                    await self.client_gone(client)
                    if self.metrics is not None:
                        self.metrics.clients.set(sum(1 for c in self.clients.values() if c.ready))
                elif client.ready and now - client.last_sent >= period:
                    self._ping_id = (self._ping_id + 1) & 0xFFFFFFFF
                    self.send(identity, "ping", {"id": self._ping_id})
