"""The daemon's front: one ROUTER socket, the handshake, heartbeats, per-client routing and limits.

Every inbound message is decoded and validated by the codec before anything acts on it; every
failure becomes an `error` with a stable code for that client only, and the loop keeps running.
Requests of one session run in order; sessions and clients never wait for each other.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import zmq
import zmq.asyncio

import bridge
from bridge.backends.base import Backend, BackendContext, OpenParams
from bridge.backends.errors import ConvaiHTTPError
from bridge.backends.registry import BACKENDS, backend_class
from bridge.config import Config
from bridge.daemon.connection_file import new_token, remove_connection_file, write_connection_file
from bridge.session import Session, validate_audio_format
from bridge.wire.codec import Codec, Message, now_us
from bridge.wire.errors import ProtocolError

log = logging.getLogger(__name__)

CAPABILITIES = ["audio_in", "audio_out", "lipsync", "actions", "emotion", "narrative", "resume"]


@dataclass
class ClientState:
    identity: bytes
    ready: bool = False
    name: str = ""
    last_seen: float = field(default_factory=time.monotonic)
    last_sent: float = field(default_factory=time.monotonic)
    sessions: set[str] = field(default_factory=set)


class Daemon:
    def __init__(self, config: Config, token: str | None = None) -> None:
        self.config = config
        self.token = token or new_token()
        self.instance_id = secrets.token_hex(8)
        self.codec = Codec(max_message_bytes=config.max_message_bytes)
        self.ctx = zmq.asyncio.Context.instance()
        self.sock: zmq.asyncio.Socket | None = None
        self.endpoint = config.endpoint
        self.clients: dict[bytes, ClientState] = {}
        self.sessions: dict[str, Session] = {}
        self._locks: dict[str, asyncio.Lock] = {}
        self._tasks: set[asyncio.Task[Any]] = set()
        self._ping_id = 0
        self.http: aiohttp.ClientSession | None = None
        self._stopped = asyncio.Event()
        self.on_event: Callable[[str, str, dict[str, Any]], None] | None = None  # observability hook

    # -- lifecycle -------------------------------------------------------------------------------
    async def start(self) -> str:
        if not self.config.allow_remote and not self.config.is_loopback_endpoint():
            raise ValueError(f"refusing to bind {self.config.endpoint}: not loopback (use --allow-remote)")
        sock = self.ctx.socket(zmq.ROUTER)
        sock.setsockopt(zmq.LINGER, 0)
        sock.setsockopt(zmq.MAXMSGSIZE, self.config.max_message_bytes + 4096)
        sock.setsockopt(zmq.SNDHWM, 10000)
        sock.setsockopt(zmq.RCVHWM, 10000)
        sock.setsockopt(zmq.ROUTER_HANDOVER, 1)
        if self.config.endpoint.endswith(":0"):
            port = sock.bind_to_random_port(self.config.endpoint.rsplit(":", 1)[0])
            self.endpoint = f"{self.config.endpoint.rsplit(':', 1)[0]}:{port}"
        else:
            sock.bind(self.config.endpoint)
            self.endpoint = sock.getsockopt_string(zmq.LAST_ENDPOINT)
        self.sock = sock
        self.http = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=None))
        write_connection_file(self.config.connection_file, self.endpoint, self.token, self.instance_id)
        self._spawn(self._recv_loop(), "recv")
        self._spawn(self._heartbeat_loop(), "heartbeat")
        log.info("daemon %s listening on %s", self.instance_id, self.endpoint)
        return self.endpoint

    async def stop(self) -> None:
        for sid in list(self.sessions):
            await self._close_session(sid, "shutdown")
        for task in list(self._tasks):
            task.cancel()
        for task in list(self._tasks):
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        if self.http:
            await self.http.close()
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
        if "ts" not in fields or fields["ts"] is None:
            fields = {**fields, "ts": now_us()}
        try:
            parts = self.codec.encode(msg_type, fields, frames)
        except ProtocolError:
            log.exception("daemon built an invalid %s message", msg_type)
            return
        client = self.clients.get(identity)
        if client:
            client.last_sent = time.monotonic()
        try:
            self.sock.send_multipart([identity, *parts], flags=zmq.NOBLOCK, copy=False)
        except zmq.Again:
            log.warning("client %s is not reading; dropped %s", identity.hex()[:8], msg_type)
        except zmq.ZMQError as exc:
            log.debug("send to %s failed: %s", identity.hex()[:8], exc)

    def send_error(self, identity: bytes, err: ProtocolError) -> None:
        self.send(identity, "error", err.fields())

    def _session_emit(self, session: Session, msg_type: str, fields: dict[str, Any], frames, ts) -> None:
        if ts is not None:
            fields["ts"] = ts
        self.send(session.owner, msg_type, fields, frames)
        if self.on_event:
            self.on_event(session.sid, msg_type, fields)

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
        spec = self.codec.schema.messages[msg.type]
        if spec.direction == "daemon":
            self.send_error(identity, ProtocolError("unknown_type", f"{msg.type} is a daemon message", msg.id))
            return
        if msg.type == "ping":
            self.send(identity, "pong", {"id": msg.id})
            return
        if msg.type == "pong":
            return
        if msg.type == "session_open":
            self._open_session(client, msg)
            return
        session = self.sessions.get(msg.sid or "")
        if session is None or session.owner != identity:
            self.send_error(identity, ProtocolError("unknown_session", f"no session {msg.sid!r}", msg.id, msg.sid))
            return
        if msg.type == "audio_in":
            if session.state != "ready":
                return  # mic audio before the backend is up is dropped, as a live mic would be
            try:
                session.audio_in(msg.header, msg.frames[0])
            except ProtocolError as err:
                self.send_error(identity, err)
            return
        self._spawn(self._session_request(session, msg), f"req-{msg.sid}-{msg.id}")

    def _hello(self, identity: bytes, msg: Message) -> None:
        proto = msg["protocol"]
        major = proto.split(".", 1)[0]
        if not major.isdigit() or int(major) != self.codec.schema.major:
            self.send_error(
                identity,
                ProtocolError(
                    "version_mismatch",
                    f"client speaks protocol {proto}, daemon speaks {self.codec.schema.version}",
                    msg.id,
                ),
            )
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

    # -- sessions --------------------------------------------------------------------------------
    def _open_session(self, client: ClientState, msg: Message) -> None:
        identity = client.identity
        if len(client.sessions) >= self.config.max_sessions:
            self.send_error(
                identity,
                ProtocolError("too_many_sessions", f"at most {self.config.max_sessions} sessions per client", msg.id),
            )
            return
        try:
            audio = validate_audio_format(msg.get("audio"))
            backend_name = msg.get("backend", "live")
            cls = backend_class(backend_name)
        except ProtocolError as err:
            err.req_id = msg.id
            self.send_error(identity, err)
            return
        sid = "s-" + secrets.token_hex(6)
        params = OpenParams(
            character_id=msg["character_id"],
            character_session_id=msg.get("character_session_id"),
            end_user_id=msg.get("end_user_id"),
            end_user_metadata=msg.get("end_user_metadata"),
            connection_type=msg.get("connection_type"),
            dynamic_info=msg.get("dynamic_info"),
            scene_description=msg.get("scene_description"),
            narrative_template_keys=msg.get("narrative_template_keys"),
            action_config=msg.get("action_config"),
            debug=bool(msg.get("debug", False)),
            voice=bool(msg.get("voice", True)),
            lipsync=msg.get("lipsync"),
            transport=msg.get("transport"),
            url=msg.get("url"),
        )
        holder: dict[str, Session] = {}
        assert self.http is not None
        ctx = BackendContext(self.config, self.http, lambda e: holder["s"].on_event(e), msg.get("label", ""))
        try:
            backend: Backend = cls(ctx, params)
        except ProtocolError as err:
            err.req_id = msg.id
            self.send_error(identity, err)
            return
        session = Session(
            sid,
            identity,
            backend,
            audio,
            self._session_emit,
            lead_ms=self.config.audio_lead_ms,
            max_audio_in_ms=self.config.max_audio_in_ms,
            lipsync=params.lipsync,
            label=msg.get("label", ""),
        )
        holder["s"] = session
        session.on_backend_closed = lambda reason, message: self._spawn(
            self._close_session(sid, reason, message), f"close-{sid}"
        )
        self.sessions[sid] = session
        self._locks[sid] = asyncio.Lock()
        client.sessions.add(sid)
        session.start_pump()
        self.send(identity, "ack", {"id": msg.id, "sid": sid})
        self._spawn(self._connect_session(session), f"open-{sid}")

    async def _connect_session(self, session: Session) -> None:
        backend = session.backend
        try:
            csid = await backend.open()
        except (ConvaiHTTPError, ProtocolError, Exception) as exc:
            err = to_protocol_error(exc, session.sid)
            err.fatal = True
            session.emit("error", err.fields())
            await self._close_session(session.sid, "error", err.message)
            return
        if session.state == "closed":
            return
        if csid:
            session.character_session_id = csid
        session.state = "ready"
        fields: dict[str, Any] = {
            "character_id": backend.params.character_id,
            "character_session_id": session.character_session_id,
            "backend": backend.name,
            "transport": backend.transport,
            "resumed": bool(backend.params.character_session_id)
            and backend.params.character_session_id == session.character_session_id,
            "audio": session.audio,
            "capabilities": [c for c in backend.capabilities if c != "lipsync_native"],
        }
        session.emit("session_opened", fields)

    async def _close_session(self, sid: str, reason: str, message: str | None = None) -> None:
        session = self.sessions.pop(sid, None)
        self._locks.pop(sid, None)
        if session is None:
            return
        client = self.clients.get(session.owner)
        if client:
            client.sessions.discard(sid)
        fields: dict[str, Any] = {"reason": reason}
        if message:
            fields["message"] = message
        if session.turn and not session.turn.completed:
            session.interrupt_local()
        await session.stop()
        if reason != "client_gone":
            session.emit("session_closed", fields)

    async def _session_request(self, session: Session, msg: Message) -> None:
        lock = self._locks.get(session.sid)
        if lock is None:
            self.send_error(session.owner, ProtocolError("unknown_session", "session closed", msg.id, msg.sid))
            return
        if msg.type == "interrupt":
            # Interrupt never queues behind other requests of the session.
            await self._run_request(session, msg)
            return
        async with lock:
            await self._run_request(session, msg)

    async def _run_request(self, session: Session, msg: Message) -> None:
        identity = session.owner
        try:
            if msg.type == "session_close":
                await self._close_session(session.sid, "client")
                self.send(identity, "ack", {"id": msg.id, "sid": session.sid})
                return
            if session.state != "ready":
                raise ProtocolError("session_not_ready", f"session is {session.state}")
            result, turn = await dispatch_request(session, msg)
            fields: dict[str, Any] = {"id": msg.id, "sid": session.sid}
            if turn is not None:
                fields["turn"] = turn
            if result:
                fields["result"] = result
            self.send(identity, "ack", fields)
        except Exception as exc:
            err = to_protocol_error(exc, session.sid)
            err.req_id = msg.id
            if err.code == "internal":
                log.exception("request %s failed", msg.type)
            self.send_error(identity, err)

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
                    for sid in list(client.sessions):
                        await self._close_session(sid, "client_gone")
                elif client.ready and now - client.last_sent >= period:
                    self._ping_id = (self._ping_id + 1) & 0xFFFFFFFF
                    self.send(identity, "ping", {"id": self._ping_id})


async def dispatch_request(session: Session, msg: Message) -> tuple[dict[str, Any] | None, int | None]:
    """Run one session request on its backend; returns (ack result, turn id)."""
    b = session.backend
    t = msg.type
    if t == "text":
        turn = session.new_turn("text")
        return await b.send_text(msg["text"]), turn
    if t == "end_of_utterance":
        turn = session.new_turn("voice")
        return await b.end_of_utterance(), turn
    if t == "trigger":
        turn = session.new_turn("trigger")
        return await b.trigger(msg["name"], msg.get("message")), turn
    if t == "interrupt":
        session.interrupt_local()
        return await b.interrupt(), None
    if t == "context_update":
        fields = {k: v for k, v in msg.header.items() if k not in ("v", "type", "id", "sid", "ts")}
        return await b.context_update(fields), None
    if t == "dynamic_info":
        return await b.dynamic_info(msg["info"]), None
    if t == "scene_update":
        return await b.scene_update(msg["scene"]), None
    if t == "template_keys":
        return await b.template_keys(msg["keys"]), None
    if t == "tts_toggle":
        return await b.tts_toggle(msg["enabled"]), None
    if t == "stt_toggle":
        return await b.stt_toggle(msg["muted"]), None
    raise ProtocolError("unknown_type", f"{t} is not a session request")


def to_protocol_error(exc: BaseException, sid: str | None) -> ProtocolError:
    if isinstance(exc, ProtocolError):
        exc.sid = exc.sid or sid
        return exc
    if isinstance(exc, ConvaiHTTPError):
        retry_ms = int(exc.retry_after * 1000) if exc.retry_after is not None else None
        where = f"Convai answered {exc.status}" if exc.status else "Convai request failed"
        return ProtocolError(exc.code, f"{where}: {exc.message}", sid=sid, status=exc.status, retry_after_ms=retry_ms)
    log.error("internal error", exc_info=exc)
    return ProtocolError("internal", f"{type(exc).__name__} in the daemon", sid=sid)
