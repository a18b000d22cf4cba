"""`live` backend: Convai's Live API — `POST /connect`, then a WebRTC transport carrying RTVI + audio.

The backend owns the RTVI handshake (client-ready until bot-ready, text queued until then), maps
engine requests to Convai client messages and waits briefly for their `server-response`, gates the
always-on bot track into turns (audio flows to the session only while the bot speaks, plus a short
drain after it stops so the tail is not cut), and gets a lost connection back: LiveKit signal
resume in place, else the same room again with the current token, else a new `/connect` with the
same character_session_id (PROTOCOL.md §3.1). bot-ready is waited for patiently, never fatally.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from collections import deque
from typing import Any

import numpy as np

import bridge
from bridge.audio.frames import Framer
from bridge.audio.resample import StreamResampler
from bridge.backends.base import Backend, BackendContext, OpenParams
from bridge.backends.errors import ConvaiHTTPError
from bridge.backends.live.connect import connect_session, disconnect_session, is_stale_session, known_session_id
from bridge.backends.live.reply_end import ReplyEnd
from bridge.backends.live.transport import MIC_FRAME_SAMPLES, MIC_SAMPLE_RATE, TransportError
from bridge.backends.retry import with_retries
from bridge.translate import events as ev
from bridge.translate import rtvi
from bridge.translate.rtvi import Peer, RtviTranslator
from bridge.wire.errors import ProtocolError

log = logging.getLogger(__name__)

RTVI_VERSION = "1.2.0"
READY_GRACE_S = 45.0  # wait this long for bot-ready before carrying on without it (newer Unreal plugin: 45 s)
REJOIN_GRACE_S = 5.0  # the same room's bot is known to be up: do not hold requests long after a re-join
CLIENT_READY_RETRY_S = 1.0
CLIENT_READY_RETRY_MAX_S = 5.0
BOT_READY_LATE = "bot_ready_late"  # session_state reason prefix when the session proceeds without bot-ready
# The bot talking proves it is up even if its bot-ready was lost or never sent (web SDK servers).
BOT_ALIVE_TYPES = frozenset(
    {"bot-ready", "bot-started-speaking", "bot-llm-started", "bot-llm-text", "bot-tts-started", "bot-tts-text",
     "bot-transcription", "bot-output"}
)
ACK_TIMEOUT_S = 2.0
MIC_DRAIN_MAX_S = 1.0  # the mic queue holds at most 0.5 s
MIC_TAIL_S = 0.1  # the last packets' way to the server's jitter buffer
DRAIN_S = 0.3
PREROLL_FRAMES = 15
SILENCE_PEAK = 64
MAX_RESUME_ATTEMPTS = 3
MAX_QUEUED_BEFORE_READY = 8  # requests that may wait for bot-ready while the connection is re-established
QUEUED_LIFETIME_S = 30.0
# Events of a bot reply: dropped between an interrupt and the next user turn.
REPLY_EVENTS = (
    ev.BotText, ev.BotSpeaking, ev.BotAudio, ev.Actions, ev.Emotion, ev.Visemes, ev.Blendshapes, ev.TurnEnd
)


EMOTION_DEFAULTS: dict[str, Any] = {  # what Convai's web SDK 1.2.0 sends unless emotions are disabled
    "provider": "llm",
    "min_word_threshold": 3,
    "low_intensity_threshold": 0.33,
    "high_intensity_threshold": 0.66,
}


def connect_body(p: OpenParams, character_session_id: str | None = None) -> dict[str, Any]:
    """The `/connect` JSON for a session_open (Convai field names; only what the engine set).

    ``character_session_id`` overrides the one from session_open (a resume keeps the current one);
    ``"-1"`` and empty are "no session" and never sent, as in Convai's web SDK.
    """
    body: dict[str, Any] = {"character_id": p.character_id, "transport": "livekit"}
    body["connection_type"] = p.connection_type or "audio"
    for key in ("end_user_id", "end_user_metadata", "dynamic_info"):
        value = getattr(p, key)
        if value:
            body[key] = value
    csid = known_session_id(character_session_id if character_session_id is not None else p.character_session_id)
    if csid:
        body["character_session_id"] = csid
    if p.scene_description:
        body["scene_description"] = p.scene_description
    if p.narrative_template_keys:
        body["narrative_template_keys"] = p.narrative_template_keys
    if p.action_config:
        body["action_config"] = p.action_config
    if p.debug:
        body["debug"] = True
    body["default_tts_enabled"] = p.voice
    lipsync = p.lipsync or {}
    if lipsync.get("provider") == "blendshapes":
        body["blendshape_provider"] = "neurosync"
        body["blendshape_config"] = {
            "enable_chunking": True,
            "chunk_size": 10,
            "format": lipsync.get("format") or "mha",
            "frames_buffer_duration": 0,
            "output_fps": lipsync.get("fps") or 60,
        }
    elif lipsync.get("provider") == "visemes":
        body["blendshape_provider"] = "ovr"
    else:
        body["blendshape_provider"] = "none"  # as Convai's web SDK sends when lip sync is off
    body["llm_provider"] = p.extra.get("llm_provider") or "dynamic"
    emotion = p.extra.get("emotion_config")
    if emotion is None:
        body["emotion_config"] = dict(EMOTION_DEFAULTS)
    elif emotion:  # an empty map turns emotion analysis off (the web SDK's enableEmotion: false)
        body["emotion_config"] = {**EMOTION_DEFAULTS, **emotion}
    if p.audio_routing and p.audio_routing != "audio_only":
        body["audio_config"] = {"output": {"audio_routing": p.audio_routing, "max_chunk_duration_ms": 100}}
    body["invocation_metadata"] = {"source": "convai-bridge", "client_version": bridge.__version__}
    return body


def _drop_audio(pcm: np.ndarray, rate: int, channels: int) -> None:
    return None


class LiveBackend(Backend):
    name = "live"
    capabilities = (
        "audio_in",
        "audio_out",
        "text_stream",
        "lipsync",
        "lipsync_native",
        "interrupt",
        "triggers",
        "context",
        "tts_toggle",
        "stt_toggle",
        "reset_idle_timer",
    )

    def __init__(self, ctx: BackendContext, params: OpenParams) -> None:
        super().__init__(ctx, params)
        self.transport = params.transport or "livekit"
        if self.transport == "livekit" and not ctx.config.api_key:
            raise ProtocolError("convai_unauthorized", "the daemon has no Convai API key configured", fatal=True)
        lipsync = params.lipsync or {}
        self.translator = RtviTranslator((params.action_config or {}).get("actions"), lipsync.get("fps") or 60)
        self._rt: Any = None
        self._session_id: str | None = None
        self.character_session_id = known_session_id(params.character_session_id)
        self._ready = asyncio.Event()  # requests may go: the bot is there or the grace period is over
        self._bot_alive = asyncio.Event()  # bot-ready (or bot speech) seen on the current transport
        self._ready_late = False
        self._opened = False
        self._signal_resuming = False
        self._room_url: str | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._client_ready_id = ""
        self._acks: dict[str, deque[asyncio.Future[ev.ServerAck]]] = {}
        self._closing = False
        self._resuming: asyncio.Task[None] | None = None
        self._speaking = False
        self._drain_until = 0.0
        self._draining = False
        self._deferred: list[ev.Event] = []
        self._preroll: deque[tuple[np.ndarray, int, int]] = deque(maxlen=PREROLL_FRAMES)
        self._suppress = False
        self._muted = False
        self._mic_resampler: StreamResampler | None = None
        self._mic_key: tuple[int, int] | None = None
        self._mic_framer = Framer(MIC_FRAME_SAMPLES, 1)
        self.stats = {"reconnects": 0, "signal_resumes": 0, "room_rejoins": 0, "bot_frames": 0, "mic_frames": 0}
        self._waiting_for_ready = 0
        # Until bot-ready says otherwise the peer is Convai; /connect (LiveKit) always is.
        self.peer = Peer("convai")
        self._convai_seen = self.transport == "livekit"
        self._acks_by_id: dict[str, asyncio.Future[ev.ServerAck]] = {}
        self._tts_on = params.voice
        self.reply_end = ReplyEnd(self._reply_over, lambda: self._tts_on and self.params.voice)

    # -- lifecycle -------------------------------------------------------------------------------
    @property
    def _key(self) -> str:
        return self.ctx.config.api_key.reveal() or ""

    async def open(self) -> str:
        await self._join(first=True)
        self._opened = True
        return self.character_session_id or ""

    async def _join(self, first: bool) -> None:
        """``/connect`` (LiveKit) or the SDP offer, then the transport and the RTVI handshake."""
        cfg = self.ctx.config
        params = self.params
        body = connect_body(params, self.character_session_id or "")
        if self.transport == "sdp":
            from bridge.backends.live.sdp import SmallWebRTCTransport

            url = params.url or cfg.live_url.rstrip("/") + "/api/offer"
            rt: Any = SmallWebRTCTransport(url, request_data=body, http=self.ctx.http)
        else:
            from bridge.backends.live.livekit import LiveKitTransport

            result = await self._connect(body)
            self._session_id = result.session_id
            if result.character_session_id:
                self.character_session_id = result.character_session_id
            self._room_url = result.room_url
            rt = LiveKitTransport(result.room_url, result.token, http=self.ctx.http)
        try:
            await self._attach(rt)
        except ProtocolError:
            await self._disconnect_convai()
            raise

    async def _connect(self, body: dict[str, Any]) -> Any:
        """POST /connect; a refused (stale) character_session_id falls back to a fresh conversation once."""
        cfg = self.ctx.config

        def call(b: dict[str, Any]) -> Any:
            return with_retries(
                lambda: connect_session(self.ctx.http, cfg.live_url, self._key, b, cfg.request_timeout_s),
                max_retries=cfg.max_retries,
                base=cfg.retry_base_s,
                cap=cfg.retry_cap_s,
            )

        try:
            return await call(body)
        except ConvaiHTTPError as exc:
            if "character_session_id" not in body or not is_stale_session(exc):
                raise
            log.info("Convai refused the character_session_id (HTTP %s); starting a fresh conversation", exc.status)
        self.character_session_id = None
        fresh = {k: v for k, v in body.items() if k != "character_session_id"}
        return await call(fresh)

    async def _attach(self, rt: Any, grace: float | None = None, bots: set[str] | None = None) -> None:
        """Connect a new transport, make it current and run the handshake on it.

        With ``bots`` (an in-room re-join) the room must still hold one of those bot identities;
        until that is checked the bot's messages are held back, so a stranger's never reach the client.
        """
        held: list[tuple[dict[str, Any], str]] = []
        rt.on_json = self._on_json if bots is None else (lambda message, sender: held.append((message, sender)))
        rt.on_bot_audio = self._on_bot_audio if bots is None else _drop_audio
        rt.on_state = self._on_state
        self._ready.clear()
        self._bot_alive.clear()
        try:
            await rt.connect(timeout=self.ctx.config.request_timeout_s)
        except TransportError as exc:
            raise ProtocolError("transport_failed", f"WebRTC connection failed: {exc.message}", fatal=True) from exc
        if bots is not None:
            if not bots & set(rt.participants.values()):
                raise ProtocolError("transport_failed", "the character is no longer in the room")
            rt.on_json, rt.on_bot_audio = self._on_json, self._on_bot_audio
            for message, sender in held:
                self._on_json(message, sender)
        self._rt = rt
        await self._handshake(rt, READY_GRACE_S if grace is None else grace)

    async def _handshake(self, rt: Any, grace: float) -> None:
        """client-ready until bot-ready (or the bot speaks); never fatal while the room is up.

        Convai's web SDK does not wait for bot-ready at all; the newer Unreal plugin retries its
        handshake for 45 s and keeps the session when it gives up. Here: wait up to
        ``READY_GRACE_S`` (client-ready resent with back-off), then carry on without it, report
        ``session_state ready`` with a reason, and keep asking in the background.
        """
        loop = asyncio.get_running_loop()
        deadline = loop.time() + grace
        interval = CLIENT_READY_RETRY_S
        while not self._bot_alive.is_set():
            if self._rt is not rt or self._closing or getattr(rt, "state", "connected") != "connected":
                raise ProtocolError(
                    "transport_failed", "the connection ended before the character was ready", fatal=True
                )
            remaining = deadline - loop.time()
            if remaining <= 0:
                self._ready_late = True
                self._ready.set()
                self._spawn_late_ready(rt)
                # After open() returns, so the client sees session_opened first.
                loop.call_soon(
                    self.ctx.sink,
                    ev.StateChange(
                        "ready", None, f"{BOT_READY_LATE}: no bot-ready after {grace:g} s; requests go through"
                    ),
                )
                return
            with contextlib.suppress(ProtocolError, TransportError):
                await self._send_client_ready(rt)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._bot_alive.wait(), min(interval, remaining))
            interval = min(interval * 1.5, CLIENT_READY_RETRY_MAX_S)
        self._ready.set()

    async def _send_client_ready(self, rt: Any) -> None:
        self._client_ready_id = uuid.uuid4().hex
        about = {"library": "convai-bridge", "library_version": bridge.__version__, "platform": "daemon"}
        await rt.send_json(
            {"label": "rtvi-ai", "type": "client-ready", "id": self._client_ready_id,
             "data": {"version": RTVI_VERSION, "about": about}}
        )

    def _spawn_late_ready(self, rt: Any) -> None:
        async def keep_asking() -> None:
            while self._rt is rt and not self._closing and not self._bot_alive.is_set():
                with contextlib.suppress(ProtocolError, TransportError):
                    await self._send_client_ready(rt)
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._bot_alive.wait(), CLIENT_READY_RETRY_MAX_S)

        task = asyncio.get_running_loop().create_task(keep_asking(), name="live-late-ready")
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _bot_signal(self, kind: str) -> None:
        """bot-ready, or the bot speaking without it: the character is there."""
        if self._bot_alive.is_set():
            return
        self._bot_alive.set()
        self._ready.set()
        if self._ready_late:
            self._ready_late = False
            self.ctx.sink(ev.StateChange("ready", None, f"the character is ready ({kind})"))

    async def close(self) -> None:
        self._closing = True
        self.reply_end.close()
        if self._resuming:
            self._resuming.cancel()
        for task in list(self._tasks):
            task.cancel()
        rt, self._rt = self._rt, None
        if rt is not None:
            with contextlib.suppress(Exception):
                await rt.close()
        await self._disconnect_convai()

    async def _disconnect_convai(self) -> None:
        sid, self._session_id = self._session_id, None
        if sid and self.transport == "livekit":
            with contextlib.suppress(ConvaiHTTPError):
                await disconnect_session(self.ctx.http, self.ctx.config.live_url, sid)

    def _on_state(self, state: str, reason: str | None) -> None:
        """Transport states: an in-room signal resume is reported as is; a dead transport re-joins."""
        if state == "connected" or self._closing or not self._opened:
            return  # during open() the handshake notices a dead transport itself
        if state == "reconnecting":  # hold requests: the media path may be gone too
            self._ready.clear()
            self._signal_resuming = True
            self.ctx.sink(ev.StateChange("reconnecting", 1, reason))
            return
        if state == "resumed":
            self._ready.set()
            self._signal_resuming = False
            self.stats["reconnects"] += 1
            self.stats["signal_resumes"] += 1
            self.ctx.sink(ev.StateChange("resumed", 1, None, self.character_session_id, resumed=True))
            return
        log.info("live transport %s (%s); resuming", state, reason)
        if self._resuming is None or self._resuming.done():
            self._resuming = asyncio.get_running_loop().create_task(self._resume(reason or state))

    async def _resume(self, reason: str) -> None:
        """Get the conversation back: re-join the same room if it is still up, else re-/connect.

        The in-room re-join uses the current (refreshed) LiveKit token and needs no ``/connect``,
        so Convai's session and its context stay as they are. The fallback is a new ``/connect``
        with the same character_session_id (a stale id falls back to a fresh conversation once).
        """
        sink = self.ctx.sink
        old, self._rt = self._rt, None
        room_alive = bool(getattr(old, "room_alive", False)) and self._room_url is not None
        token = getattr(old, "token", None)
        bots = set(getattr(old, "participants", {}).values())
        if old is not None:
            with contextlib.suppress(Exception):
                await old.close()
        self._end_audio_now()
        if not self._waiting_for_ready:  # a held request's turn is still to come: it is sent after the re-join
            sink(ev.TurnEnd(interrupted=True, reason="connection lost"))
        before = self.character_session_id
        attempt = 1 if self._signal_resuming else 0  # a failed signal resume was attempt 1
        self._signal_resuming = False
        if room_alive and token and bots:
            attempt += 1
            sink(ev.StateChange("reconnecting", attempt, reason))
            try:
                await self._rejoin_room(token, bots)
            except (ProtocolError, TransportError) as exc:
                log.info("in-room re-join failed (%s); falling back to /connect", exc)
                reason = f"in-room re-join failed: {exc}"
            else:
                self.stats["reconnects"] += 1
                self.stats["room_rejoins"] += 1
                sink(ev.StateChange("resumed", attempt, None, self.character_session_id, resumed=True))
                return
        for _ in range(MAX_RESUME_ATTEMPTS):
            attempt += 1
            sink(ev.StateChange("reconnecting", attempt, reason))
            try:
                await self._disconnect_convai()
                await self._join(first=False)
            except (ProtocolError, ConvaiHTTPError, TransportError) as exc:
                log.warning("resume attempt %d failed: %s", attempt, exc)
                await asyncio.sleep(min(4.0, 0.5 * 2 ** (attempt - 1)))
                continue
            self.stats["reconnects"] += 1
            resumed = bool(before) and before == self.character_session_id
            sink(ev.StateChange("resumed", attempt, None, self.character_session_id, resumed=resumed))
            return
        sink(ev.BackendError("transport_failed", f"could not resume after {reason}", fatal=True, retryable=True))
        sink(ev.Closed("error", "connection lost"))

    async def _rejoin_room(self, token: str, bots: set[str]) -> None:
        """Join the same LiveKit room again (no /connect); the same bot must still be in it.

        A room whose character left is not that conversation any more (LiveKit re-creates rooms
        on join), so a room without one of the old bot identities counts as gone.
        """
        from bridge.backends.live.livekit import LiveKitTransport

        assert self._room_url is not None
        rt = LiveKitTransport(self._room_url, token, http=self.ctx.http)
        try:
            await self._attach(rt, REJOIN_GRACE_S, bots)
        except ProtocolError:
            if self._rt is rt:
                self._rt = None
            with contextlib.suppress(Exception):
                await rt.close()
            raise

    # -- inbound -----------------------------------------------------------------------------------
    def _on_json(self, message: dict[str, Any], sender: str) -> None:
        if not isinstance(message, dict):
            return
        kind = message.get("type")
        if kind == "bot-ready":
            self._peer_ready(message)
        if kind in BOT_ALIVE_TYPES:
            self._bot_signal(str(kind))
            if kind == "bot-ready":
                return
        for event in self.translator.translate(message):
            self._route(event)

    def _peer_ready(self, message: dict[str, Any]) -> None:
        """Speak the peer's dialect and advertise only what it serves (a stock RTVI bot has no Convai types)."""
        self.peer = rtvi.peer_from_bot_ready(message, self._convai_seen)
        self.capabilities = rtvi.capabilities_for(self.peer, LiveBackend.capabilities)
        if self.peer.dialect != "convai":
            log.info("peer %s speaks standard RTVI %s", self.peer.library, self.peer.version)

    def _resolve(self, event: ev.ServerAck) -> bool:
        """Hand a server-response / error-response to the request it answers: by id, else by event type."""
        fut = self._acks_by_id.pop(event.request_id, None) if event.request_id else None
        if fut is None and event.event_type != "error-response":
            waiters = self._acks.get(event.event_type)
            fut = waiters.popleft() if waiters else None
        if fut is None:
            return False
        if not fut.done():
            fut.set_result(event)
        return True

    def _reply_over(self) -> None:
        """No bot-turn-completed came after the reply stopped: end the turn as Convai's own clients do."""
        self._route(ev.TurnEnd(), tracked=False)

    def _route(self, event: ev.Event, tracked: bool = True) -> None:
        sink = self.ctx.sink
        if isinstance(event, ev.ServerAck):
            if event.extras.get("unsupported") and self.peer.dialect == "convai":
                return  # pipecat's RTVI layer inside Convai refusing a type Convai's router serves (§5)
            if self._resolve(event):
                return
            if not event.ok:
                sink(event)
            return
        if isinstance(event, ev.Ready):
            self._convai_seen = True
            if self.peer.dialect != "convai" and self._ready.is_set():
                self.peer = Peer("convai", self.peer.version, self.peer.library, self.peer.capabilities)
                self.capabilities = LiveBackend.capabilities
            self.character_session_id = event.character_session_id
        if isinstance(event, ev.BotAudio) and self.params.audio_routing != "data_only":
            return  # audio-data duplicates the media track unless the track is off
        if isinstance(event, ev.TurnStart | ev.UserTranscript):
            self._suppress = False  # a new user turn: the bot may speak again
        elif self._suppress and isinstance(event, REPLY_EVENTS):
            return  # leftovers of an interrupted reply
        if tracked and not self.reply_end.observe(event):
            return  # the end of a reply that was already ended or superseded
        if isinstance(event, ev.BotSpeaking):
            if event.started:
                self._speaking = True
                self._finish_drain()
                sink(event)
                while self._preroll:
                    pcm, rate, channels = self._preroll.popleft()
                    sink(ev.BotAudio(pcm, rate, channels))
                return
            self._speaking = False
            self._draining = True
            self._drain_until = time.monotonic() + DRAIN_S
            self._deferred.append(event)
            asyncio.get_running_loop().call_later(DRAIN_S, self._finish_drain)
            return
        if self._draining and not isinstance(event, ev.TurnStart | ev.UserTranscript):
            self._deferred.append(event)  # keep order behind the audio tail
            return
        if self._draining:
            self._finish_drain()
        sink(event)

    def _finish_drain(self) -> None:
        if not self._draining:
            return
        self._draining = False
        sink = self.ctx.sink
        sink(ev.AudioEnd())
        deferred, self._deferred = self._deferred, []
        for event in deferred:
            sink(event)

    def _end_audio_now(self) -> None:
        self._speaking = False
        self._preroll.clear()
        self._draining = False
        self._deferred.clear()

    def _on_bot_audio(self, pcm: np.ndarray, rate: int, channels: int) -> None:
        self.stats["bot_frames"] += 1
        if self._suppress or not self.params.voice or self.params.audio_routing == "data_only":
            return
        if self._speaking:
            self.ctx.sink(ev.BotAudio(pcm, rate, channels))
            return
        loud = pcm.size and int(np.abs(pcm).max()) > SILENCE_PEAK
        if self._draining and time.monotonic() < self._drain_until:
            if loud:
                self.ctx.sink(ev.BotAudio(pcm, rate, channels))
            return
        if loud:
            self._preroll.append((pcm, rate, channels))  # audio can beat bot-started-speaking
        else:
            self._preroll.clear()

    # -- outbound ----------------------------------------------------------------------------------
    async def _send(self, kind: str, data: dict[str, Any] | list[Any], msg_id: str | None = None) -> None:
        rt = self._rt
        if rt is None:
            raise ProtocolError("session_not_ready", "the live connection is being re-established")
        await rt.send_json({"label": "rtvi-ai", "type": kind, "id": msg_id or uuid.uuid4().hex, "data": data})

    async def _until_ready(self) -> None:
        """While re-joining, hold a few requests until bot-ready (as Convai's engine SDKs queue typed text)."""
        if self._rt is not None and self._ready.is_set():
            return
        if self._waiting_for_ready >= MAX_QUEUED_BEFORE_READY or self._closing:
            raise ProtocolError("session_not_ready", "the live connection is being re-established")
        self._waiting_for_ready += 1
        try:
            deadline = asyncio.get_running_loop().time() + QUEUED_LIFETIME_S
            while self._rt is None or not self._ready.is_set():
                remaining = deadline - asyncio.get_running_loop().time()
                if remaining <= 0 or self._closing:
                    raise ProtocolError("session_not_ready", "the live connection did not come back in time")
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._ready.wait(), min(remaining, 0.5))
        finally:
            self._waiting_for_ready -= 1

    async def _request(self, request: str, args: dict[str, Any]) -> dict[str, Any] | None:
        """Send an engine request in the peer's dialect and wait briefly for the answer.

        Convai answers with a server-response (matched by id or event type); a standard RTVI bot with
        `user-input`, `server-response` or `error-response` carrying the request's id. A request the peer
        has no message for fails at once with `unsupported` instead of being sent into the void.
        """
        await self._until_ready()
        capability = rtvi.CAPABILITY_OF.get(request)
        message = rtvi.outbound(self.peer, request, args)
        if message is None or (capability is not None and capability not in self.capabilities):
            raise ProtocolError("unsupported", f"the character's server ({self._peer_name()}) has no {request} request")
        kind, data = message
        msg_id = uuid.uuid4().hex
        loop = asyncio.get_running_loop()
        fut: asyncio.Future[ev.ServerAck] = loop.create_future()
        self._acks_by_id[msg_id] = fut
        event_type = rtvi.ack_type(self.peer, request)
        if event_type:
            self._acks.setdefault(event_type, deque()).append(fut)
        try:
            await self._send(kind, data, msg_id=msg_id)
            ack = await asyncio.wait_for(fut, ACK_TIMEOUT_S)
        except TimeoutError:
            return {"acknowledged": False}  # servers may omit acks: the message was sent
        finally:
            self._acks_by_id.pop(msg_id, None)
            waiters = self._acks.get(event_type or "")
            if waiters and fut in waiters:
                waiters.remove(fut)
        if not ack.ok:
            if ack.extras.get("unsupported"):
                raise ProtocolError("unsupported", f"the character's server refused {request}: {ack.message}")
            raise ProtocolError("convai_error", ack.message or f"{kind} was refused")
        result = {k: v for k, v in ack.extras.items() if k != "unsupported"}
        if ack.message:
            result["message"] = ack.message
        return result

    def _peer_name(self) -> str:
        if self.peer.dialect == "convai":
            return "Convai"
        return f"standard RTVI bot {self.peer.library or ''} {self.peer.version or ''}".strip()

    def _new_user_turn(self, supersedes: bool = True) -> None:
        self._suppress = False
        if supersedes:
            self.reply_end.user_request()

    async def send_text(self, text: str) -> dict[str, Any] | None:
        self._new_user_turn()
        return await self._request("text", {"text": text, "voice": self._tts_on and self.params.voice})

    def audio_in(self, pcm: np.ndarray, sample_rate: int, channels: int) -> None:
        rt = self._rt
        if rt is None or self._muted:
            return
        key = (sample_rate, channels)
        if self._mic_resampler is None or self._mic_key != key:
            self._mic_resampler = StreamResampler(sample_rate, MIC_SAMPLE_RATE, channels, 1)
            self._mic_key = key
        for frame in self._mic_framer.push(self._mic_resampler.process(pcm)):
            self.stats["mic_frames"] += 1
            rt.send_mic(frame.pcm.reshape(-1))

    async def end_of_utterance(self) -> dict[str, Any] | None:
        self._new_user_turn(supersedes=False)  # the server's VAD may already be answering this utterance
        if self._mic_resampler is not None and self._rt is not None:
            for frame in self._mic_framer.push(self._mic_resampler.flush()):
                self._rt.send_mic(frame.pcm.reshape(-1))
            tail = self._mic_framer.flush(pad=True)
            if tail is not None:
                self._rt.send_mic(tail.pcm.reshape(-1))
            self._mic_resampler = None
        if self.peer.dialect != "convai":
            return {"acknowledged": False, "message": "the bot ends utterances with its own VAD"}
        await self._mic_sent()
        return await self._request("end_of_utterance", {})

    async def _mic_sent(self) -> None:
        """Let the utterance's queued tail reach the server before the release: a release sent ahead of
        it would end the utterance early, and the tail would then open a second one (barge-in)."""
        queued = getattr(self._rt, "mic_queued", 0)
        frames = queued if isinstance(queued, int) else 0
        # The track sends one queued 20 ms frame per 20 ms, so the queue drains in real time.
        await asyncio.sleep(min(MIC_DRAIN_MAX_S, frames * MIC_FRAME_SAMPLES / MIC_SAMPLE_RATE) + MIC_TAIL_S)

    async def trigger(self, name: str | None, message: str | None) -> dict[str, Any] | None:
        if not name and not message:
            raise ProtocolError("missing_field", "a trigger needs a name or a message")
        if "triggers" not in self.capabilities:
            raise ProtocolError("unsupported", f"the character's server ({self._peer_name()}) has no trigger request")
        self._new_user_turn()
        return await self._request("trigger", {"name": name, "message": message})

    async def context_update(self, fields: dict[str, Any]) -> dict[str, Any] | None:
        return await self._request("context_update", fields)

    async def dynamic_info(self, info: dict[str, Any]) -> dict[str, Any] | None:
        return await self._request("dynamic_info", {"info": info})

    async def scene_update(self, scene: list[dict[str, Any]]) -> dict[str, Any] | None:
        return await self._request("scene_update", {"scene": scene})

    async def template_keys(self, keys: dict[str, str]) -> dict[str, Any] | None:
        return await self._request("template_keys", {"keys": keys})

    async def interrupt(self) -> dict[str, Any] | None:
        self._suppress = True
        self._end_audio_now()
        rt = self._rt
        if rt is not None and hasattr(rt, "clear_mic"):
            rt.clear_mic()
        self.reply_end.interrupted()
        if self.peer.dialect != "convai":
            return {"acknowledged": False, "message": "stopped locally; the bot has no interrupt request"}
        return await self._request("interrupt", {})

    async def tts_toggle(self, enabled: bool) -> dict[str, Any] | None:
        result = await self._request("tts_toggle", {"enabled": enabled})
        self._tts_on = enabled
        return result

    async def stt_toggle(self, muted: bool) -> dict[str, Any] | None:
        result = await self._request("stt_toggle", {"muted": muted})
        self._muted = muted
        return result

    async def reset_idle_timer(self) -> dict[str, Any] | None:
        """Convai's ``reset-idle-timer`` (data ``{}``), as Unity and the newer Unreal plugin send it.

        Sent only on request: the idle timeout is Convai's product feature and only the engine
        knows whether a player is still there (see PROTOCOL.md, idle timer).
        """
        return await self._request("reset_idle_timer", {})

