"""The engine-facing socket: one ROUTER, the handshake, heartbeats, limits and error replies.

Shared by the single-process daemon and the multi-process front, which differ only in where
sessions live. Every inbound message is decoded and validated by the codec before anything acts on
it; every failure becomes an `error` with a stable code for that client only, and the loop keeps
running.

A client is bound to the connection that said hello (its ZAP tag, see bridge.daemon.peers), not to
a routing id, which any peer may claim. Until hello succeeds a connection has no state at all, and
each message is read frame by frame within `max_message_bytes`, never assembled past it.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import secrets
import time
from abc import ABC, abstractmethod
from collections.abc import Awaitable
from dataclasses import dataclass, field
from typing import Any

import msgpack
import zmq
import zmq.asyncio

import bridge
from bridge.backends.registry import BACKENDS
from bridge.config import Config
from bridge.daemon.connection_file import new_token, remove_connection_file, write_connection_file
from bridge.daemon.limits import TokenBucket, bucket
from bridge.daemon.metrics import BridgeMetrics
from bridge.daemon.peers import ConnectionTagger, connection_tag, seed_generated_ids
from bridge.wire.codec import Codec, Message, now_us
from bridge.wire.errors import ProtocolError

log = logging.getLogger(__name__)

ZAP_DOMAIN = "convai-bridge"
CAPABILITIES = ["audio_in", "audio_out", "lipsync", "actions", "emotion", "narrative", "resume", "audio_reference"]
SLOW_AUDIO_PAUSE_S = 0.5
UNAUTHENTICATED_REPLIES_PER_S = 200  # shared by every connection that has not said hello
MAX_FRAMES = 8  # header + binary frames kept per message; no message type declares more than one frame


@dataclass
class ClientState:
    """One authenticated client. It outlives a connection only through an explicit resume (§4)."""

    identity: bytes  # the daemon's own key for this client (owner of its sessions), never a routing id
    route_id: bytes | None = None  # ZeroMQ routing id of its current connection; None while detached
    conn: str | None = None  # the ZAP tag of that connection
    name: str = ""
    gone: bool = False
    last_seen: float = field(default_factory=time.monotonic)
    last_sent: float = field(default_factory=time.monotonic)
    sessions: set[str] = field(default_factory=set)
    requests: TokenBucket = field(default_factory=lambda: bucket(200))
    audio_in: dict[str, TokenBucket] = field(default_factory=dict)  # per owned session
    session_requests: dict[str, TokenBucket] = field(default_factory=dict)  # per owned session
    dropped_out: int = 0  # output dropped since the last slow_consumer report
    audio_paused_until: float = 0.0  # after a full queue, audio waits so control messages get through
    last_out_report: float = 0.0
    last_in_report: float = 0.0

    @property
    def tag(self) -> str:
        return self.identity.decode()


def wake_reader(sock: zmq.asyncio.Socket | None) -> None:
    """After a send on a shadow socket, let the asyncio reader see input the send may have absorbed.

    ZMQ_FD is edge-triggered and any socket operation can consume the edge; pyzmq's own send does
    exactly this check, which this replicates without allocating a future per message.
    """
    schedule = getattr(sock, "_schedule_remaining_events", None)
    if schedule is not None and getattr(sock, "_recv_futures", None):
        schedule()


def _reply_id(value: object) -> int | None:
    """A request id that can be echoed (uint32, not a bool); anything else is answered without one."""
    if isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= 0xFFFFFFFF:
        return value
    return None


class EngineEndpoint(ABC):
    def __init__(self, config: Config, token: str | None = None, metrics: BridgeMetrics | None = None) -> None:
        self.config = config
        self.metrics = metrics
        self.token = token or new_token()
        self.instance_id = secrets.token_hex(8)
        self.codec = Codec(max_message_bytes=config.max_message_bytes)
        # A context of its own: the ZAP handler is per context, and one process may run several endpoints.
        self.ctx = zmq.asyncio.Context()
        self.sock: zmq.asyncio.Socket | None = None
        self._tx: zmq.Socket | None = None
        self._tagger: ConnectionTagger | None = None
        self.endpoint = config.endpoint
        self.clients: dict[bytes, ClientState] = {}  # by ClientState.identity
        self._by_conn: dict[str, ClientState] = {}
        self._by_route: dict[bytes, ClientState] = {}
        self._keys = itertools.count(1)
        self._tasks: set[asyncio.Task[Any]] = set()
        self._ping_id = 0
        self._unauthenticated = bucket(UNAUTHENTICATED_REPLIES_PER_S)
        self._stopped = asyncio.Event()

    # -- subclass hooks --------------------------------------------------------------------------
    @abstractmethod
    def on_request(self, client: ClientState, msg: Message) -> None:
        """A validated client message other than hello/ping/pong."""

    @abstractmethod
    async def client_gone(self, client: ClientState) -> None:
        """The client stopped answering heartbeats: release what it owned."""

    @abstractmethod
    def session_owner(self, sid: str) -> bytes | None:
        """The ClientState.identity owning a live session (for resume), or None."""

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
        seed_generated_ids()
        self._tagger = ConnectionTagger(self.ctx, ZAP_DOMAIN)
        self._spawn(self._tagger.run(), "zap")
        sock = self.ctx.socket(zmq.ROUTER)
        sock.setsockopt(zmq.LINGER, 0)
        sock.setsockopt(zmq.MAXMSGSIZE, self.config.max_message_bytes + 4096)  # per frame; the total is ours
        sock.setsockopt(zmq.SNDHWM, self.config.client_send_hwm)  # per client: the bound on its backlog
        sock.setsockopt(zmq.RCVHWM, 1000)
        sock.setsockopt(zmq.ROUTER_MANDATORY, 1)  # a send to a vanished peer fails instead of vanishing
        sock.setsockopt_string(zmq.ZAP_DOMAIN, ZAP_DOMAIN)
        sock.setsockopt(zmq.ZAP_ENFORCE_DOMAIN, 1)  # no connection without a tag
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
        if self._tagger:
            self._tagger.close()
        self.ctx.destroy(linger=0)
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

    # -- connections -----------------------------------------------------------------------------
    def _attach(self, client: ClientState, route_id: bytes, conn: str) -> None:
        client.route_id, client.conn = route_id, conn
        client.last_seen = time.monotonic()
        self._by_conn[conn] = client
        self._by_route[route_id] = client
        self._count_clients()

    def _detach(self, client: ClientState, why: str) -> None:
        """The client's connection is gone: nothing more is sent to its routing id."""
        if client.conn is not None and self._by_conn.get(client.conn) is client:
            del self._by_conn[client.conn]
        if client.route_id is not None and self._by_route.get(client.route_id) is client:
            del self._by_route[client.route_id]
        if client.route_id is not None:
            log.info(
                "client %s detached (%s); %d session(s) kept until it resumes or times out",
                client.tag,
                why,
                len(client.sessions),
            )
        client.route_id = client.conn = None
        self._count_clients()

    def _count_clients(self) -> None:
        if self.metrics is not None:
            self.metrics.clients.set(sum(1 for c in self.clients.values() if c.route_id is not None))

    # -- sending ---------------------------------------------------------------------------------
    def send(self, identity: bytes, msg_type: str, fields: dict[str, Any], frames: tuple[bytes, ...] = ()) -> None:
        """Send to a client by its ClientState.identity (dropped while it has no connection)."""
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
        """Hand already-encoded frames to the client's socket without blocking.

        A client's queue is bounded (`client_send_hwm`); when it is full the message is dropped and
        counted, audio is held back for a moment so control messages get through, and the client
        hears `slow_consumer` (at most once a second) as soon as its queue has room.
        """
        client = self.clients.get(identity)
        if self._tx is None or client is None or client.route_id is None:
            return
        now = time.monotonic()
        if what == "audio_out" and now < client.audio_paused_until:
            self._dropped(client, what)
            return
        if client.dropped_out and now - client.last_out_report >= 1.0:
            self._report_slow(client, now)
        client.last_sent = now
        try:
            self._tx.send_multipart([client.route_id, *parts], flags=zmq.NOBLOCK)  # copying small frames is cheaper
            wake_reader(self.sock)
        except zmq.Again:
            client.audio_paused_until = now + SLOW_AUDIO_PAUSE_S
            self._dropped(client, what)
        except zmq.ZMQError as exc:
            if exc.errno == zmq.EHOSTUNREACH:
                self._detach(client, "its connection closed")
            else:
                log.debug("send to %s failed: %s", client.tag, exc)

    def _dropped(self, client: ClientState, what: str) -> None:
        client.dropped_out += 1
        if self.metrics is not None:
            self.metrics.dropped.labels(what, "slow_consumer").inc()
        if client.dropped_out == 1:
            log.warning("client %s is not reading fast enough; dropping its output", client.tag)

    def _report_slow(self, client: ClientState, now: float) -> None:
        assert self._tx is not None and client.route_id is not None
        text = f"{client.dropped_out} message(s) for this client were dropped: it did not read fast enough"
        err = ProtocolError("slow_consumer", text)
        try:
            parts = self.codec.encode("error", {**err.fields(), "ts": now_us()})
            self._tx.send_multipart([client.route_id, *parts], flags=zmq.NOBLOCK)
        except (zmq.ZMQError, ProtocolError):
            return
        if self.metrics is not None:
            self.metrics.event("error", err.fields())
        client.dropped_out = 0
        client.last_out_report = now

    def send_to_peer(self, route_id: bytes, msg_type: str, fields: dict[str, Any]) -> None:
        """A reply to a connection that has no client state (before or instead of a welcome)."""
        if self._tx is None:
            return
        try:
            parts = self.codec.encode(msg_type, {**fields, "ts": now_us()})
            self._tx.send_multipart([route_id, *parts], flags=zmq.NOBLOCK)
            wake_reader(self.sock)
        except (ProtocolError, zmq.ZMQError) as exc:
            log.debug("reply to an unauthenticated peer failed: %s", exc)

    def send_error(self, identity: bytes, err: ProtocolError) -> None:
        err.req_id = _reply_id(err.req_id)
        client = self.clients.get(identity)
        if err.sid is not None and (client is None or err.sid not in client.sessions):
            err.sid = None  # never name a session this client does not own, not even to echo it
        self.send(identity, "error", err.fields())

    def _reply_error(self, client: ClientState | None, route_id: bytes, err: ProtocolError) -> None:
        err.req_id = _reply_id(err.req_id)
        if client is not None:
            self.send_error(client.identity, err)
        elif self._unauthenticated.take():  # past the shared budget, unauthenticated noise goes unanswered
            err.sid = None
            self.send_to_peer(route_id, "error", err.fields())

    # -- receiving -------------------------------------------------------------------------------
    async def _recv_loop(self) -> None:
        assert self.sock is not None
        while True:
            first = await self.sock.recv(copy=False)
            try:
                body, total, refused = self._read_rest(first)
                self._handle_raw(first, body, total, refused)
            except Exception:  # never let one message kill the loop
                log.exception("unexpected failure handling a message")

    def _read_rest(self, first: zmq.Frame) -> tuple[list[bytes], int, bool]:
        """The message's frames after the routing id, read one by one within the size and count budget.

        Past the budget the rest is read and dropped, never assembled; the header is kept if it fit,
        so the refusal can carry the request id.
        """
        assert self._tx is not None
        budget = self.config.max_message_bytes
        frames: list[bytes] = []
        total = 0
        refused = False
        more = first.more
        while more:
            frame = self._tx.recv(copy=False, flags=zmq.NOBLOCK)  # the rest of a multipart is already here
            more = frame.more
            total += len(frame)
            if refused or total > budget or len(frames) >= MAX_FRAMES:
                refused = True
                continue
            frames.append(frame.bytes)
        return frames, total, refused

    def _handle_raw(self, first: zmq.Frame, body: list[bytes], total: int, refused: bool) -> None:
        route_id = first.bytes
        conn = connection_tag(first)
        if conn is None:
            return  # not through the ZAP handler: cannot happen with ZAP_ENFORCE_DOMAIN
        client = self._by_conn.get(conn)
        holder = self._by_route.get(route_id)
        if holder is not None and holder is not client:
            # libzmq hands a routing id to a new connection only once the old one is gone.
            self._detach(holder, "another connection now has its routing id")
        if not body:
            return
        if client is not None:
            client.last_seen = time.monotonic()
        if refused:
            self._refuse_large(client, route_id, body, total)
            return
        try:
            msg = self.codec.decode(body)
        except ProtocolError as err:
            self._reply_error(client, route_id, err)
            return
        try:
            self._handle(client, route_id, conn, msg)
        except Exception:
            log.exception("unexpected failure handling %s", msg.type)
            err = ProtocolError("internal", "the daemon failed to handle this message", msg.id, msg.sid)
            self._reply_error(client, route_id, err)

    def _refuse_large(self, client: ClientState | None, route_id: bytes, body: list[bytes], total: int) -> None:
        req_id = sid = None
        if body:
            with contextlib.suppress(Exception):
                header = msgpack.unpackb(body[0], raw=False)
                if isinstance(header, dict):
                    req_id = _reply_id(header.get("id"))
                    sid = header.get("sid") if isinstance(header.get("sid"), str) else None
        limit = self.config.max_message_bytes
        if total > limit:
            err = ProtocolError("message_too_large", f"message of {total} bytes exceeds {limit}", req_id, sid)
        else:
            err = ProtocolError("bad_message", f"more than {MAX_FRAMES} frames in one message", req_id, sid)
        self._reply_error(client, route_id, err)

    def _handle(self, client: ClientState | None, route_id: bytes, conn: str, msg: Message) -> None:
        if msg.id is not None and _reply_id(msg.id) is None:
            err = ProtocolError("invalid_field", f"{msg.type}: 'id' must be a uint32", sid=msg.sid)
            self._reply_error(client, route_id, err)
            return
        if msg.type == "hello":
            self._hello(client, route_id, conn, msg)
            return
        if client is None:
            self._reply_error(None, route_id, ProtocolError("not_ready", "send hello first", msg.id, msg.sid))
            return
        identity = client.identity
        if not self._admit(client, msg):
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

    def _admit(self, client: ClientState, msg: Message) -> bool:
        """Per-client and per-session rate limits; over them a message is dropped (requests are answered)."""
        if msg.type == "pong":
            return True
        now = time.monotonic()
        owned = msg.sid if msg.sid in client.sessions else None
        cfg = self.config
        if owned is not None and msg.type == "audio_in":
            limiters = [self._session_bucket(client.audio_in, owned, cfg.max_audio_in_per_s)]
            what = "audio_in for this session"
        elif owned is not None:
            limiters = [
                client.requests,
                self._session_bucket(client.session_requests, owned, cfg.max_session_requests_per_s),
            ]
            what = "requests for this session"
        else:
            limiters = [client.requests]
            what = "requests from this client"
        limiter = next((b for b in limiters if not b.take(now)), None)
        if limiter is None:
            return True
        if self.metrics is not None:
            self.metrics.dropped.labels(msg.type, "rate_limited").inc()
        req_id = _reply_id(msg.id)
        if req_id is None:
            if now - client.last_in_report < 1.0:
                return False
            client.last_in_report = now
        err = ProtocolError(
            "rate_limited", f"{what} over the daemon's limit; dropped", req_id, owned,
            retry_after_ms=limiter.retry_after_ms(),
        )  # fmt: skip
        self.send_error(client.identity, err)
        return False

    @staticmethod
    def _session_bucket(buckets: dict[str, TokenBucket], sid: str, rate: int) -> TokenBucket:
        limiter = buckets.get(sid)
        if limiter is None:
            limiter = buckets[sid] = bucket(rate)
        return limiter

    def _hello(self, client: ClientState | None, route_id: bytes, conn: str, msg: Message) -> None:
        proto = msg["protocol"]
        major = proto.split(".", 1)[0]
        if not major.isdigit() or int(major) != self.codec.schema.major:
            text = f"client speaks protocol {proto}, daemon speaks {self.codec.schema.version}"
            self._reply_error(client, route_id, ProtocolError("version_mismatch", text, msg.id))
            return
        if not secrets.compare_digest(msg["token"].encode(), self.token.encode()):
            err = ProtocolError("unauthorized", "token does not match the connection file", msg.id)
            self._reply_error(client, route_id, err)
            return
        resumed: list[str] | None = None
        if client is None:
            client = self._resume(msg.get("resume") or [], route_id, conn)
            if client is not None:
                resumed = sorted(client.sessions)
            else:
                client = ClientState(f"k{next(self._keys)}".encode())
                client.requests = bucket(self.config.max_requests_per_s)
                self.clients[client.identity] = client
                self._attach(client, route_id, conn)
        client.name = msg["client"]
        cfg = self.config
        fields: dict[str, Any] = {
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
        }
        if resumed is not None:
            fields["resumed"] = resumed
        self.send(client.identity, "welcome", fields)

    def _resume(self, sids: list[str], route_id: bytes, conn: str) -> ClientState | None:
        """Move the client state that owns one of `sids` to this (authenticated) connection."""
        for sid in sids:
            owner = self.session_owner(sid)
            client = self.clients.get(owner) if owner is not None else None
            if client is None or client.gone:
                continue
            if client.route_id is not None:
                self._detach(client, "resumed on a new connection")
            self._attach(client, route_id, conn)
            log.info("client %s resumed %d session(s) on a new connection", client.tag, len(client.sessions))
            return client
        return None

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
            for client in list(self.clients.values()):
                if client.gone:
                    continue
                for buckets in (client.audio_in, client.session_requests):
                    for sid in [sid for sid in buckets if sid not in client.sessions]:
                        del buckets[sid]
                if now - client.last_seen > timeout:
                    self._begin_reap(client)
                elif client.route_id is not None and now - client.last_sent >= period:
                    self._ping_id = (self._ping_id + 1) & 0xFFFFFFFF
                    self.send(client.identity, "ping", {"id": self._ping_id})

    def _begin_reap(self, client: ClientState) -> None:
        """A silent client: its sessions close in a task of their own, so one slow close delays no other."""
        log.info("client %s timed out; closing %d session(s)", client.tag, len(client.sessions))
        client.gone = True
        # New messages from its connection start over unauthenticated; its routing id still gets
        # the session_closed events, in case it is only silent.
        if client.conn is not None and self._by_conn.get(client.conn) is client:
            del self._by_conn[client.conn]
        if client.route_id is not None and self._by_route.get(client.route_id) is client:
            del self._by_route[client.route_id]
        self._spawn(self._reap(client), f"reap-{client.tag}")

    async def _reap(self, client: ClientState) -> None:
        try:
            await self.client_gone(client)
        finally:
            self.clients.pop(client.identity, None)
            client.route_id = client.conn = None
            self._count_clients()
