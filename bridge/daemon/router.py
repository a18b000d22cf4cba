"""The single-process daemon: sessions, their backends and WebRTC live in this process.

Used directly for `--workers 0`, by tests and the demo, and as the body of every worker process when
the front (bridge.daemon.front) spreads sessions over cores. Requests of one session run in order;
sessions and clients never wait for each other.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
import time
from typing import Any

import aiohttp

from bridge.audio.echo import EchoCanceller, EchoSettings
from bridge.backends.base import Backend, BackendContext, OpenParams
from bridge.backends.errors import ConvaiHTTPError
from bridge.backends.registry import backend_class
from bridge.config import Config
from bridge.daemon.endpoint import ClientState, EngineEndpoint
from bridge.daemon.metrics import BridgeMetrics
from bridge.daemon.offer_url import check_offer_url
from bridge.session import Session, validate_audio_format
from bridge.wire.codec import Message
from bridge.wire.errors import ProtocolError

log = logging.getLogger(__name__)


class Daemon(EngineEndpoint):
    def __init__(self, config: Config, token: str | None = None, metrics: BridgeMetrics | None = None) -> None:
        super().__init__(config, token, metrics)
        self.sessions: dict[str, Session] = {}
        self._locks: dict[str, asyncio.Lock] = {}
        self.http: aiohttp.ClientSession | None = None

    async def on_start(self) -> None:
        self.http = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=None))

    async def on_stop(self) -> None:
        # Concurrently and bounded: a dead Convai must not hold up shutdown by N × the HTTP timeout.
        closing = [self._close_session(sid, "shutdown") for sid in list(self.sessions)]
        if closing:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(asyncio.gather(*closing, return_exceptions=True), 5.0)
        if self.http:
            await self.http.close()

    async def client_gone(self, client: ClientState) -> None:
        closing = [self._close_session(sid, "client_gone") for sid in list(client.sessions)]
        await asyncio.gather(*closing, return_exceptions=True)

    def session_owner(self, sid: str) -> bytes | None:
        session = self.sessions.get(sid)
        return session.owner if session is not None else None

    def on_request(self, client: ClientState, msg: Message) -> None:
        identity = client.identity
        if msg.type == "session_open":
            self._open_session(client, msg)
            return
        session = self.sessions.get(msg.sid or "")
        if session is None or session.owner != identity:
            self.send_error(identity, ProtocolError("unknown_session", f"no session {msg.sid!r}", msg.id, msg.sid))
            return
        if msg.type in ("audio_in", "audio_reference"):
            if session.state != "ready":
                return  # mic audio before the backend is up is dropped, as a live mic would be
            try:
                if msg.type == "audio_in":
                    session.audio_in(msg.header, msg.frames[0])
                else:
                    session.audio_reference(msg.header, msg.frames[0])
            except ProtocolError as err:
                self.send_error(identity, err)
            return
        self._spawn(self._session_request(session, msg), f"req-{msg.sid}-{msg.id}")

    def _session_emit(self, session: Session, msg_type: str, fields: dict[str, Any], frames, ts) -> None:
        if ts is not None:
            fields["ts"] = ts
        self.send(session.owner, msg_type, fields, frames)

    # -- sessions --------------------------------------------------------------------------------
    def _open_session(self, client: ClientState, msg: Message) -> None:
        identity = client.identity
        if not self.check_session_limit(client, msg):
            return
        try:
            audio = validate_audio_format(msg.get("audio"))
            check_offer_url(msg.get("url"), self.config)
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
            audio_routing=msg.get("audio_routing"),
            extra={k: msg.get(k) for k in ("llm_provider", "emotion_config") if msg.get(k) is not None},
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
            prebuffer_ms=self.config.audio_prebuffer_ms,
            lipsync=params.lipsync,
            label=msg.get("label", ""),
            echo=self._echo_canceller(backend_name, msg),
        )
        holder["s"] = session
        session.on_backend_closed = lambda reason, message: self._spawn(
            self._close_session(sid, reason, message), f"close-{sid}"
        )
        self.sessions[sid] = session
        self._locks[sid] = asyncio.Lock()
        if self.metrics is not None:
            self.metrics.session_opening(sid, backend_name)
        client.sessions.add(sid)
        session.start_pump()
        self.send(identity, "ack", {"id": msg.id, "sid": sid})
        self._spawn(self._connect_session(session), f"open-{sid}")

    def _echo_canceller(self, backend_name: str, msg: Message) -> EchoCanceller | None:
        cfg = self.config
        settings = EchoSettings.for_session(
            backend_name,
            msg.header,
            stream_delay_ms=cfg.aec_stream_delay_ms,
            max_reference_ms=cfg.aec_max_reference_ms,
            reference_timeout_ms=cfg.aec_reference_timeout_ms,
        )
        return EchoCanceller(settings) if settings.enabled else None

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
        if self.metrics is not None:
            self.metrics.session_closed(sid)
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
        session.emit("session_closed", fields)  # a timed-out client may only be silent, not gone

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
            started = time.monotonic()
            if self.metrics is not None and msg.type in ("text", "end_of_utterance", "trigger"):
                # The turn id exists before the backend call returns; its first output may beat the ack.
                self.metrics.turn_requested(session.sid, session._turn_seq + 1, started)
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
        return await b.trigger(msg.get("name"), msg.get("message")), turn
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
    if t == "reset_idle_timer":
        return await b.reset_idle_timer(), None
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
