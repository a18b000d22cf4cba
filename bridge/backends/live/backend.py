"""`live` backend: Convai's Live API — `POST /connect`, then a WebRTC transport carrying RTVI + audio.

The backend owns the RTVI handshake (client-ready until bot-ready, text queued until then), maps
engine requests to Convai client messages and waits briefly for their `server-response`, gates the
always-on bot track into turns (audio flows to the session only while the bot speaks, plus a short
drain after it stops so the tail is not cut), and re-joins with the same character_session_id when
the transport dies.
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
from bridge.backends.live.connect import connect_session, disconnect_session
from bridge.backends.live.reply_end import ReplyEnd
from bridge.backends.live.transport import MIC_FRAME_SAMPLES, MIC_SAMPLE_RATE, TransportError
from bridge.backends.retry import with_retries
from bridge.translate import events as ev
from bridge.translate import rtvi
from bridge.translate.rtvi import Peer, RtviTranslator
from bridge.wire.errors import ProtocolError

log = logging.getLogger(__name__)

RTVI_VERSION = "1.2.0"
READY_TIMEOUT_S = 10.0
CLIENT_READY_RETRY_S = 1.0
ACK_TIMEOUT_S = 2.0
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


def connect_body(p: OpenParams) -> dict[str, Any]:
    """The `/connect` JSON for a session_open (Convai field names; only what the engine set)."""
    body: dict[str, Any] = {"character_id": p.character_id, "transport": "livekit"}
    body["connection_type"] = p.connection_type or "audio"
    for key in ("character_session_id", "end_user_id", "end_user_metadata", "dynamic_info"):
        value = getattr(p, key)
        if value:
            body[key] = value
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
    if p.audio_routing and p.audio_routing != "audio_only":
        body["audio_config"] = {"output": {"audio_routing": p.audio_routing, "max_chunk_duration_ms": 100}}
    body["invocation_metadata"] = {"source": "convai-bridge", "client_version": bridge.__version__}
    return body


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
        self._ready = asyncio.Event()
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
        self.stats = {"reconnects": 0, "bot_frames": 0, "mic_frames": 0}
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
        return self.character_session_id or ""

    async def _join(self, first: bool) -> None:
        cfg = self.ctx.config
        params = self.params
        if self.transport == "sdp":
            from bridge.backends.live.sdp import SmallWebRTCTransport

            url = params.url or cfg.live_url.rstrip("/") + "/api/offer"
            body = connect_body(params)
            if self.character_session_id:
                body["character_session_id"] = self.character_session_id
            rt = SmallWebRTCTransport(url, request_data=body, http=self.ctx.http)
        else:
            from bridge.backends.live.livekit import LiveKitTransport

            body = connect_body(params)
            if self.character_session_id:
                body["character_session_id"] = self.character_session_id
            result = await with_retries(
                lambda: connect_session(self.ctx.http, cfg.live_url, self._key, body, cfg.request_timeout_s),
                max_retries=cfg.max_retries,
                base=cfg.retry_base_s,
                cap=cfg.retry_cap_s,
            )
            self._session_id = result.session_id
            if result.character_session_id:
                self.character_session_id = result.character_session_id
            rt = LiveKitTransport(result.room_url, result.token, http=self.ctx.http)
        rt.on_json = self._on_json
        rt.on_bot_audio = self._on_bot_audio
        rt.on_state = self._on_state
        self._ready.clear()
        try:
            await rt.connect(timeout=cfg.request_timeout_s)
        except TransportError as exc:
            await self._disconnect_convai()
            raise ProtocolError("transport_failed", f"WebRTC connection failed: {exc.message}", fatal=True) from exc
        self._rt = rt
        await self._handshake()

    async def _handshake(self) -> None:
        """client-ready until bot-ready (a server may also send bot-ready unprompted)."""
        deadline = time.monotonic() + READY_TIMEOUT_S
        while not self._ready.is_set():
            self._client_ready_id = uuid.uuid4().hex
            await self._send(
                "client-ready",
                {
                    "version": RTVI_VERSION,
                    "about": {"library": "convai-bridge", "library_version": bridge.__version__, "platform": "daemon"},
                },
                msg_id=self._client_ready_id,
            )
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise ProtocolError("transport_failed", "the character never sent bot-ready", fatal=True)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._ready.wait(), min(CLIENT_READY_RETRY_S, remaining))

    async def close(self) -> None:
        self._closing = True
        self.reply_end.close()
        if self._resuming:
            self._resuming.cancel()
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
        if state == "connected" or self._closing:
            return
        log.info("live transport %s (%s); resuming", state, reason)
        if self._resuming is None or self._resuming.done():
            self._resuming = asyncio.get_running_loop().create_task(self._resume(reason or state))

    async def _resume(self, reason: str) -> None:
        """Re-join with the same character_session_id so Convai keeps the conversation's context."""
        sink = self.ctx.sink
        old, self._rt = self._rt, None
        if old is not None:
            with contextlib.suppress(Exception):
                await old.close()
        self._end_audio_now()
        sink(ev.TurnEnd(interrupted=True, reason="connection lost"))
        for attempt in range(1, MAX_RESUME_ATTEMPTS + 1):
            sink(ev.StateChange("reconnecting", attempt, reason))
            try:
                await self._disconnect_convai()
                await self._join(first=False)
            except (ProtocolError, ConvaiHTTPError, TransportError) as exc:
                log.warning("resume attempt %d failed: %s", attempt, exc)
                await asyncio.sleep(min(4.0, 0.5 * 2 ** (attempt - 1)))
                continue
            self.stats["reconnects"] += 1
            sink(ev.StateChange("resumed", attempt, None, self.character_session_id))
            return
        sink(ev.BackendError("transport_failed", f"could not resume after {reason}", fatal=True, retryable=True))
        sink(ev.Closed("error", "connection lost"))

    # -- inbound -----------------------------------------------------------------------------------
    def _on_json(self, message: dict[str, Any], sender: str) -> None:
        if not isinstance(message, dict):
            return
        if message.get("type") == "bot-ready":
            self._peer_ready(message)
            self._ready.set()
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
        return await self._request("end_of_utterance", {})

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

