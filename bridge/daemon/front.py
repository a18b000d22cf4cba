"""The multi-process daemon: one front ROUTER for engine clients, sessions on worker processes.

aiortc costs CPU per session and a Python process uses one core, so sessions live in worker
processes (each an ordinary single-process daemon on a private IPC endpoint). The front handshakes
with clients, places each new session on the least-loaded worker, and relays messages both ways,
rewriting only the envelope: a session keeps its public sid for its whole life, and request ids are
mapped per worker link so the front can make requests of its own on the same link.

When a worker dies, the front tells the affected clients (`session_state reconnecting`), restarts
the worker, and reopens each session on a live worker with its character_session_id, so the
conversation resumes under the same sid (`session_state resumed`).
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import logging
import os
import secrets
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import msgpack
import zmq
import zmq.asyncio

from bridge.backends.registry import backend_class
from bridge.config import Config
from bridge.daemon.endpoint import ClientState, EngineEndpoint, wake_reader
from bridge.daemon.metrics import BridgeMetrics
from bridge.daemon.offer_url import check_offer_url
from bridge.session import validate_audio_format
from bridge.wire.codec import Message, now_us, pack
from bridge.wire.errors import ProtocolError

log = logging.getLogger(__name__)

MAX_RESTARTS = 20
WORKER_START_TIMEOUT_S = 30.0
LINK_TIMEOUT_S = 10.0
TURN_REQUESTS = ("text", "end_of_utterance", "trigger")
SETTINGS = (
    "rest_url",
    "live_url",
    "max_message_bytes",
    "max_sessions",
    "heartbeat_ms",
    "client_timeout_ms",
    "max_audio_in_ms",
    "audio_lead_ms",
    "audio_prebuffer_ms",
    "request_timeout_s",
    "max_retries",
    "retry_base_s",
    "retry_cap_s",
    "log_level",
    "allowed_url_hosts",
    "allow_any_url",
    "aec_stream_delay_ms",
    "aec_max_reference_ms",
    "aec_reference_timeout_ms",
)


@dataclass
class Worker:
    index: int
    endpoint: str
    token: str
    proc: asyncio.subprocess.Process | None = None
    alive: bool = False
    sessions: set[str] = field(default_factory=set)
    restarts: int = 0

    @property
    def name(self) -> str:
        return f"w{self.index}"


@dataclass
class Route:
    """One public session: who owns it, where it runs, and how to reopen it."""

    sid: str
    owner: bytes
    worker: Worker
    open_fields: dict[str, Any]
    backend: str
    worker_sid: str | None = None
    character_session_id: str | None = None
    reopening: bool = False
    close_reason: str | None = None  # overrides the worker's session_closed reason


@dataclass
class _Pending:
    client_id: int | None  # None: the front's own request
    route: Route | None = None
    future: asyncio.Future[dict[str, Any]] | None = None
    started: float | None = None  # turn requests: for the turn-latency metric
    deadline: float = float("inf")  # client requests: answered worker_failed if the worker is silent past it


class Link:
    """The front's DEALER to one worker on behalf of one client (the worker sees it as that client)."""

    def __init__(self, front: Front, owner: bytes, worker: Worker) -> None:
        self.front = front
        self.owner = owner
        self.worker = worker
        self.sock = front.ctx.socket(zmq.DEALER)
        self.sock.setsockopt(zmq.LINGER, 500)
        self.sock.setsockopt(zmq.SNDHWM, 10000)
        self.sock.setsockopt(zmq.RCVHWM, 10000)
        self.sock.connect(worker.endpoint)
        self._tx = zmq.Socket.shadow(self.sock.underlying)  # non-blocking relays skip asyncio bookkeeping
        self.ids = itertools.count(1)
        self.pending: dict[int, _Pending] = {}
        self.sids: dict[str, str] = {}  # worker sid -> public sid
        self.task: asyncio.Task[None] | None = None

    async def open(self) -> None:
        self.task = asyncio.get_running_loop().create_task(self._recv_loop(), name=f"link-{self.worker.name}")
        await self.call(
            "hello",
            {"protocol": self.front.codec.schema.version, "token": self.worker.token, "client": "convai-bridge-front"},
        )

    def close(self) -> None:
        if self.task:
            self.task.cancel()
        self.sock.close()

    def expire(self, now: float) -> None:
        """Answer the client's requests the worker left unanswered past their deadline."""
        for link_id in [k for k, p in self.pending.items() if p.client_id is not None and p.deadline < now]:
            pending = self.pending.pop(link_id)
            sid = pending.route.sid if pending.route else None
            err = ProtocolError("worker_failed", "the daemon worker did not answer in time", pending.client_id, sid)
            self.front.send_error(self.owner, err)

    def _next_id(self) -> int:
        return next(self.ids) & 0xFFFFFFFF

    async def call(self, msg_type: str, fields: dict[str, Any], route: Route | None = None) -> dict[str, Any]:
        """The front's own request on this link; returns the reply header (raises ProtocolError on error)."""
        link_id = self._next_id()
        fut: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self.pending[link_id] = _Pending(None, route, fut)
        header = {"v": self.front.codec.schema.major, "type": msg_type, "id": link_id, **fields}
        await self.sock.send_multipart([pack(header)])
        try:
            reply = await asyncio.wait_for(fut, LINK_TIMEOUT_S)
        finally:
            self.pending.pop(link_id, None)
        if reply.get("type") == "error":
            raise ProtocolError(
                reply.get("code", "internal"), reply.get("message", "worker refused"), fatal=reply.get("fatal")
            )
        return reply

    def forward(self, msg: Message, route: Route | None) -> None:
        """A validated client message, re-addressed for the worker."""
        header = dict(msg.header)
        if msg.id is not None and self.front.codec.schema.messages[msg.type].kind != "request":
            del header["id"]  # nothing answers a stream message: an id would only leave a pending entry
        elif msg.id is not None:
            link_id = self._next_id()
            started = time.monotonic() if msg.type in TURN_REQUESTS else None
            deadline = time.monotonic() + self.front.pending_timeout_s
            self.pending[link_id] = _Pending(msg.id, route, started=started, deadline=deadline)
            header["id"] = link_id
        if route is not None and route.worker_sid is not None:
            header["sid"] = route.worker_sid
        try:
            self._tx.send_multipart([pack(header), *msg.frames], flags=zmq.NOBLOCK)
            wake_reader(self.sock)
        except zmq.ZMQError as exc:
            self.pending.pop(header.get("id", -1), None)
            raise ProtocolError("worker_failed", f"daemon worker unreachable: {exc}", msg.id, msg.sid) from exc

    async def _recv_loop(self) -> None:
        while True:
            parts = await self.sock.recv_multipart(copy=True)
            try:
                self._from_worker(parts)
            except Exception:
                log.exception("failed to relay a worker message")

    def _from_worker(self, parts: list[bytes]) -> None:
        header = msgpack.unpackb(parts[0], raw=False)
        kind = header.get("type")
        if kind == "ping":
            self.sock.send_multipart([pack({"v": header["v"], "type": "pong", "id": header["id"]})])
            return
        link_id = header.get("id")
        pending = self.pending.pop(link_id, None) if link_id is not None else None
        wsid = header.get("sid")
        if pending is not None and kind == "ack" and pending.route is not None and wsid:
            pending.route.worker_sid = wsid
            self.sids[wsid] = pending.route.sid
        if pending is not None and pending.client_id is None:
            if pending.future is not None and not pending.future.done():
                pending.future.set_result(header)
            return
        if pending is not None:
            header["id"] = pending.client_id
            metrics = self.front.metrics
            if metrics is not None and pending.started is not None and pending.route is not None and "turn" in header:
                metrics.turn_requested(pending.route.sid, header["turn"], pending.started)
            if kind == "error" and pending.route is not None and pending.route.worker_sid is None:
                self.front.drop_route(pending.route.sid)  # the open itself failed
        sid = self.sids.get(wsid) if wsid else None
        if wsid and sid is None:
            return  # a session the front no longer knows (closed or reopened elsewhere)
        route = self.front.routes.get(sid) if sid else None
        if sid is not None:
            header["sid"] = sid
        if route is not None:
            if not self.front.observe(route, header):
                return
        self.front.deliver(self.owner, header, parts[1:])


class Front(EngineEndpoint):
    def __init__(
        self, config: Config, workers: int, token: str | None = None, metrics: BridgeMetrics | None = None
    ) -> None:
        super().__init__(config, token, metrics)
        self.workers: list[Worker] = []
        self.worker_count = max(1, workers)
        self.routes: dict[str, Route] = {}
        self.links: dict[tuple[bytes, int], Link] = {}
        self._link_locks: dict[tuple[bytes, int], asyncio.Lock] = {}
        self._dir = Path(tempfile.mkdtemp(prefix="convai-bridge-"))
        self._closing = False
        # A worker answers every request within its own Convai timeouts and retries; past that it is stuck.
        self.pending_timeout_s = config.request_timeout_s * (config.max_retries + 1) + LINK_TIMEOUT_S

    # -- workers ---------------------------------------------------------------------------------
    async def on_start(self) -> None:
        os.chmod(self._dir, 0o700)
        self.workers = [
            Worker(i, f"ipc://{self._dir}/w{i}.sock", secrets.token_hex(16)) for i in range(self.worker_count)
        ]
        await asyncio.gather(*(self._spawn_worker(w) for w in self.workers))
        for w in self.workers:
            self._spawn(self._supervise(w), f"supervise-{w.name}")
        self._spawn(self._load_loop(), "worker-load")

    async def _spawn_worker(self, worker: Worker) -> None:
        settings: dict[str, Any] = {k: getattr(self.config, k) for k in SETTINGS}
        # The front enforces the per-client limits; a worker's only client is the front, which reads
        # eagerly and must never be throttled by a second copy of the same limits.
        settings["max_requests_per_s"] = 100 * self.config.max_requests_per_s
        settings["max_audio_in_per_s"] = 100 * self.config.max_audio_in_per_s
        settings["max_session_requests_per_s"] = 100 * self.config.max_session_requests_per_s
        settings["client_send_hwm"] = max(10000, self.config.client_send_hwm)
        env = dict(os.environ)
        if self.config.api_key:
            env["CONVAI_API_KEY"] = self.config.api_key.reveal() or ""
        proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "bridge.daemon.worker",
            "--endpoint",
            worker.endpoint,
            "--connection-file",
            str(self._dir / f"{worker.name}.json"),
            "--settings",
            json.dumps(settings),
            "--log-level",
            self.config.log_level.upper(),
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            env=env,
        )
        assert proc.stdin is not None and proc.stdout is not None
        proc.stdin.write(worker.token.encode() + b"\n")
        await proc.stdin.drain()
        proc.stdin.close()
        line = await asyncio.wait_for(proc.stdout.readline(), WORKER_START_TIMEOUT_S)
        if not line.startswith(b"READY"):
            raise RuntimeError(f"worker {worker.name} failed to start")
        worker.proc = proc
        worker.alive = True

    async def _supervise(self, worker: Worker) -> None:
        while not self._closing:
            assert worker.proc is not None
            code = await worker.proc.wait()
            if self._closing:
                return
            worker.alive = False
            log.error(
                "worker %s exited with %s; restarting and moving %d session(s)", worker.name, code, len(worker.sessions)
            )
            await self._worker_failed(worker)
            if worker.restarts >= MAX_RESTARTS:
                log.error("worker %s restarted too often; leaving it down", worker.name)
                return
            worker.restarts += 1
            if self.metrics:
                self.metrics.worker_restarts.inc()
            try:
                await self._spawn_worker(worker)
            except (RuntimeError, TimeoutError, OSError) as exc:
                log.error("could not restart %s: %s", worker.name, exc)
                return

    async def _worker_failed(self, worker: Worker) -> None:
        for key in [k for k in self.links if k[1] == worker.index]:
            link = self.links.pop(key)
            for pending in link.pending.values():
                if pending.client_id is not None:
                    err = ProtocolError(
                        "worker_failed",
                        "the daemon worker handling this request crashed",
                        pending.client_id,
                        pending.route.sid if pending.route else None,
                    )
                    self.send_error(link.owner, err)
                elif pending.future is not None and not pending.future.done():
                    pending.future.set_result({"type": "error", "code": "worker_failed", "message": "worker died"})
            link.close()
        routes = [r for r in self.routes.values() if r.worker is worker]
        worker.sessions.clear()
        for route in routes:
            self._spawn(self._reopen(route, "daemon worker crashed"), f"reopen-{route.sid}")

    def _pick_worker(self, exclude: Worker | None = None) -> Worker | None:
        live = [w for w in self.workers if w.alive and w is not exclude] or [w for w in self.workers if w.alive]
        return min(live, key=lambda w: len(w.sessions)) if live else None

    async def _load_loop(self) -> None:
        while True:
            await asyncio.sleep(2.0)
            now = time.monotonic()
            for link in list(self.links.values()):
                link.expire(now)
            if self.metrics:
                for w in self.workers:
                    self.metrics.worker_load(w.name, len(w.sessions), w.proc.pid if w.proc and w.alive else None)

    async def on_stop(self) -> None:
        self._closing = True
        for link in self.links.values():
            link.close()
        self.links.clear()
        for w in self.workers:
            if w.proc and w.proc.returncode is None:
                w.proc.terminate()
        for w in self.workers:
            if w.proc:
                try:
                    await asyncio.wait_for(w.proc.wait(), 10)
                except TimeoutError:
                    w.proc.kill()
        with contextlib.suppress(OSError):
            for path in self._dir.iterdir():
                path.unlink()
            self._dir.rmdir()

    # -- links -----------------------------------------------------------------------------------
    async def link(self, owner: bytes, worker: Worker) -> Link:
        key = (owner, worker.index)
        lock = self._link_locks.setdefault(key, asyncio.Lock())
        async with lock:
            link = self.links.get(key)
            if link is None:
                link = Link(self, owner, worker)
                try:
                    await link.open()
                except Exception:
                    link.close()
                    raise
                self.links[key] = link
            return link

    # -- client side -----------------------------------------------------------------------------
    def session_owner(self, sid: str) -> bytes | None:
        route = self.routes.get(sid)
        return route.owner if route is not None else None

    def on_request(self, client: ClientState, msg: Message) -> None:
        if msg.type == "session_open":
            self._spawn(self._open(client, msg), f"open-{msg.id}")
            return
        route = self.routes.get(msg.sid or "")
        if route is None or route.owner != client.identity:
            self.send_error(
                client.identity, ProtocolError("unknown_session", f"no session {msg.sid!r}", msg.id, msg.sid)
            )
            return
        link = self.links.get((client.identity, route.worker.index))
        if link is None or route.reopening or route.worker_sid is None:
            if msg.type not in ("audio_in", "audio_reference"):
                text = "the session is moving to another daemon worker"
                self.send_error(client.identity, ProtocolError("session_not_ready", text, msg.id, msg.sid))
            return
        try:
            link.forward(msg, route)
        except ProtocolError as err:
            self.send_error(client.identity, err)
        if msg.type == "session_close":
            route.worker.sessions.discard(route.sid)

    async def _open(self, client: ClientState, msg: Message) -> None:
        identity = client.identity
        if not self.check_session_limit(client, msg):
            return
        try:
            validate_audio_format(msg.get("audio"))
            check_offer_url(msg.get("url"), self.config)
            backend = msg.get("backend", "live")
            backend_class(backend)
        except ProtocolError as err:
            err.req_id = msg.id
            self.send_error(identity, err)
            return
        worker = self._pick_worker()
        if worker is None:
            self.send_error(identity, ProtocolError("worker_failed", "no daemon worker is running", msg.id))
            return
        sid = "s-" + secrets.token_hex(6)
        fields = {k: v for k, v in msg.header.items() if k not in ("v", "type", "id", "sid", "ts")}
        route = Route(sid, identity, worker, fields, backend)
        self.routes[sid] = route
        client.sessions.add(sid)
        worker.sessions.add(sid)
        if self.metrics is not None:
            self.metrics.session_opening(sid, backend)
        try:
            link = await self.link(identity, worker)
            link.forward(msg, route)
        except (ProtocolError, TimeoutError, zmq.ZMQError) as exc:
            self.drop_route(sid)
            err = exc if isinstance(exc, ProtocolError) else ProtocolError("worker_failed", str(exc))
            err.req_id = msg.id
            self.send_error(identity, err)

    def drop_route(self, sid: str) -> None:
        route = self.routes.pop(sid, None)
        if self.metrics is not None:
            self.metrics.session_closed(sid)
        if route is None:
            return
        route.worker.sessions.discard(sid)
        client = self.clients.get(route.owner)
        if client:
            client.sessions.discard(sid)

    async def client_gone(self, client: ClientState) -> None:
        async def close(sid: str) -> None:
            route = self.routes.get(sid)
            if route is None:
                return
            route.close_reason = "client_gone"  # the worker closes it as an ordinary session_close
            link = self.links.get((client.identity, route.worker.index))
            if link is not None and route.worker_sid:
                with contextlib.suppress(Exception):
                    await link.call("session_close", {"sid": route.worker_sid})
            self.drop_route(sid)

        await asyncio.gather(*(close(sid) for sid in list(client.sessions)))
        for key in [k for k in self.links if k[0] == client.identity]:
            self.links.pop(key).close()
        for key in [k for k in self._link_locks if k[0] == client.identity]:
            del self._link_locks[key]

    # -- worker side -----------------------------------------------------------------------------
    def observe(self, route: Route, header: dict[str, Any]) -> bool:
        """Track session facts from its events; False swallows the message."""
        kind = header.get("type")
        if kind == "session_opened":
            route.character_session_id = header.get("character_session_id") or route.character_session_id
            if route.reopening:
                route.reopening = False
                fields = {"sid": route.sid, "state": "resumed", "reason": "moved to another daemon worker"}
                if route.character_session_id:
                    fields["character_session_id"] = route.character_session_id
                self.send(route.owner, "session_state", fields)
                return False
        elif kind == "session_state" and header.get("character_session_id"):
            route.character_session_id = header["character_session_id"]
        elif kind == "session_closed":
            if route.reopening:
                return False
            if route.close_reason:
                header["reason"] = route.close_reason
            self.drop_route(route.sid)
        return True

    def deliver(self, owner: bytes, header: dict[str, Any], frames: list[bytes]) -> None:
        if self.metrics is not None:
            self.metrics.event(header.get("type", ""), header)
        self.send_parts(owner, [pack(header), *frames], header.get("type", "message"))

    async def _reopen(self, route: Route, reason: str) -> None:
        route.reopening = True
        route.worker_sid = None
        self.send(
            route.owner, "session_state", {"sid": route.sid, "state": "reconnecting", "attempt": 1, "reason": reason}
        )
        for attempt in range(1, 4):
            worker = self._pick_worker()
            if worker is None:
                await asyncio.sleep(0.5 * attempt)
                continue
            fields = dict(route.open_fields)
            if route.character_session_id:
                fields["character_session_id"] = route.character_session_id
            try:
                link = await self.link(route.owner, worker)
                route.worker = worker
                worker.sessions.add(route.sid)
                await link.call("session_open", fields, route)
                return  # session_opened from the new worker turns into session_state resumed
            except (ProtocolError, TimeoutError, zmq.ZMQError) as exc:
                worker.sessions.discard(route.sid)
                log.warning("reopening %s on %s failed: %s", route.sid, worker.name, exc)
                await asyncio.sleep(0.5 * attempt)
        route.reopening = False
        self.send(
            route.owner,
            "error",
            {
                "sid": route.sid,
                "code": "worker_failed",
                "fatal": True,
                "retryable": True,
                "message": "the session could not be moved off a crashed worker",
            },
        )
        self.send(route.owner, "session_closed", {"sid": route.sid, "reason": "error", "ts": now_us()})
        self.drop_route(route.sid)
