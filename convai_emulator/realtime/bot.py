"""The Convai bot participant's behaviour on the data channel, independent of the transport.

It plays Convai's turn sequences (convai-apis.md §8) for text, voice and trigger turns, acks every
client message (§7.2), honours interrupts and barge-in, and drives lip sync, ``audio-data`` and the
speaking events from the speaker's 20 ms clock. The transport hands it inbound JSON, microphone
samples and a channel-open signal, and gives it one callable to send JSON text.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
import uuid
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any

import numpy as np

from convai_emulator.profiles import ServerProfile
from convai_emulator.stt import SpeechRecognizer

from .clips import SHARED_CLIPS, Clip, ClipCache, ClipOptions, build_clip
from .listening import Listener
from .opus import FRAME_SECONDS
from .persona import Persona, TurnPlan, UpdateResult
from .playout import Speaker, Utterance
from .shapes import LABEL, SUPPORTED_TYPES, Envelope, ShapeOptions, dumps
from .vad import AdaptiveVad, VadEvent, VadParams, frame_dbfs

log = logging.getLogger(__name__)

SERVER_RTVI_VERSION = "1.0.0"
INTERRUPT_DEBOUNCE_S = 0.3
NEUROSYNC_LEAD_TICKS = 25  # blendshape chunks go out up to 0.5 s ahead of their audio
PARTIAL_EVERY_S = 0.5
RELEASE_TAIL_MAX_S = 1.0  # after force-user-stopped-speaking, in-flight audio still counts this long
RELEASE_TAIL_QUIET_S = 0.1  # ... or until this much of it is quiet
RECOGNIZED_PARTIAL_EVERY_S = 1.0  # recognised partials re-decode the utterance so far: less often


@dataclass
class BotConfig:
    """Per-session behaviour, mostly from the ``/connect`` request (or the offer's request data)."""

    shapes: ShapeOptions = field(default_factory=ShapeOptions)
    blendshape_provider: str = "not_provided"
    blendshape_format: str = "mha"
    blendshape_fps: int = 60
    blendshape_chunk: int = 10
    visemes: bool = True
    viseme_fps: int = 100  # one frame per message; UE assumes 100 fps
    debug: bool = False
    audio_routing: str = "audio_only"
    audio_chunk_ms: int = 100
    audio_wav_header: bool = False
    audio_sample_rate: int | None = None
    tts_enabled: bool = True
    stt_enabled: bool = True
    vad: VadParams = field(default_factory=VadParams)
    idle_warning_s: float | None = 300.0
    idle_remaining_s: int = 300
    llm_chunk_delay_s: float = 0.02
    session_id: str = ""
    # server profile (convai_emulator.profiles): what the shapes alone cannot say
    profile_name: str = "current"
    bot_ready_delay_s: float = 0.0
    lipsync_first: bool = False
    blendshape_meta: bool = False
    named_frames: bool = False

    @property
    def neurosync(self) -> bool:
        return self.blendshape_provider == "neurosync"

    @classmethod
    def from_connect(cls, fields_: Mapping[str, Any], base: BotConfig | None = None) -> BotConfig:
        """Read the Convai ``/connect`` fields that change what the bot sends."""
        cfg = base or cls()
        changes: dict[str, Any] = {}
        provider = fields_.get("blendshape_provider")
        if isinstance(provider, str):
            changes["blendshape_provider"] = provider.lower()
        bs = fields_.get("blendshape_config")
        if isinstance(bs, Mapping):
            if isinstance(bs.get("format"), str):
                changes["blendshape_format"] = "arkit" if bs["format"].lower() == "arkit" else "mha"
            if isinstance(bs.get("output_fps"), int) and 1 <= bs["output_fps"] <= 240:
                changes["blendshape_fps"] = bs["output_fps"]
            if isinstance(bs.get("chunk_size"), int) and bs["chunk_size"] >= 1:
                changes["blendshape_chunk"] = bs["chunk_size"]
        if isinstance(fields_.get("debug"), bool):
            changes["debug"] = fields_["debug"]
        if isinstance(fields_.get("default_tts_enabled"), bool):
            changes["tts_enabled"] = fields_["default_tts_enabled"]
        if isinstance(fields_.get("default_stt_enabled"), bool):
            changes["stt_enabled"] = fields_["default_stt_enabled"]
        audio = fields_.get("audio_config")
        output = audio.get("output") if isinstance(audio, Mapping) else None
        if isinstance(output, Mapping):
            if output.get("audio_routing") in ("audio_only", "data_only", "both"):
                changes["audio_routing"] = output["audio_routing"]
            if isinstance(output.get("max_chunk_duration_ms"), int):
                changes["audio_chunk_ms"] = output["max_chunk_duration_ms"]
            if isinstance(output.get("add_wav_header"), bool):
                changes["audio_wav_header"] = output["add_wav_header"]
            rate = output.get("sample_rate")
            if isinstance(rate, int) and 8000 <= rate <= 48000:
                changes["audio_sample_rate"] = rate
        if "vad_params" in fields_:
            changes["vad"] = VadParams.from_connect(fields_["vad_params"])
        shapes = fields_.get("emulator_shapes")
        if isinstance(shapes, Mapping):
            changes["shapes"] = cfg.shapes.merged(shapes)
        if isinstance(fields_.get("session_id"), str):
            changes["session_id"] = fields_["session_id"]
        return replace(cfg, **changes)

    def with_profile(self, profile: ServerProfile) -> BotConfig:
        """The profile's shapes on top of the roster's flags; call before ``from_connect``."""
        return replace(self, shapes=self.shapes.merged(profile.shapes), profile_name=profile.name,
                       bot_ready_delay_s=profile.bot_ready_delay_s, lipsync_first=profile.lipsync_first,
                       blendshape_meta=profile.blendshape_meta, named_frames=profile.named_frames)

    def forced_by(self, profile: ServerProfile) -> BotConfig:
        """What the profile forces regardless of the request (call after ``from_connect``)."""
        if profile.blendshape_fps is not None:
            return replace(self, blendshape_fps=profile.blendshape_fps)
        return self

    def clip_options(self) -> ClipOptions:
        return ClipOptions(
            # "none" is how Convai's web SDK says lip sync is off; the documented default still sends visemes.
            visemes=self.visemes and not self.neurosync and self.blendshape_provider != "none",
            viseme_fps=self.viseme_fps,
            neurosync_format=self.blendshape_format if self.neurosync else None,
            neurosync_fps=self.blendshape_fps,
            neurosync_chunk=self.blendshape_chunk,
            audio_data=self.audio_routing in ("data_only", "both"),
            audio_chunk_ms=self.audio_chunk_ms,
            audio_wav_header=self.audio_wav_header,
            audio_rate=self.audio_sample_rate,
            custom_top=self.shapes.custom_events == "top",
            named_frames=self.named_frames,
        )


Handled = tuple[UpdateResult, Callable[[], None] | None]


def _now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


@dataclass
class _Turn:
    response_id: str
    task: asyncio.Task[None] | None = None
    llm_open: bool = False
    tts_open: bool = False
    speaking: bool = False
    blendshape_sequence: int = 0
    blendshape_frames_sent: int = 0
    frames_played: int = 0
    clip: Clip | None = None
    utterance: Utterance | None = None
    closed: bool = False


class BotSession:
    """One character's side of one conversation."""

    def __init__(
        self,
        persona: Persona,
        config: BotConfig,
        send: Callable[[str], None],
        speaker: Speaker,
        *,
        on_close_request: Callable[[str], Awaitable[None] | None] | None = None,
        clip_cache: ClipCache | None = None,
        participant_identity: str = "",
        recognizer: SpeechRecognizer | None = None,
    ) -> None:
        self.persona = persona
        self.config = config
        self.env = Envelope(config.shapes)
        self._send = send
        self.speaker = speaker
        self._on_close_request = on_close_request
        self._clips = clip_cache or SHARED_CLIPS
        self.participant_identity = participant_identity
        self.room_name = ""  # set by the LiveKit room hosting this bot
        self.user_id = ""
        self.interaction_id = f"int_{uuid.uuid4().hex[:12]}"
        self._turn: _Turn | None = None
        self._turn_counter = 0
        self._greeted = False
        self._bot_ready_sent = 0
        self._last_interrupt = 0.0
        self._vad = AdaptiveVad(config.vad)
        # speech recognition of voice turns (stt.py); None: transcripts are measurements
        pre_roll = config.vad.pre_roll_ms / 1000 + config.vad.start_secs
        self._listener = Listener(recognizer, pre_roll) if recognizer is not None else None
        self._utterance = 0
        self._tail_timer: asyncio.TimerHandle | None = None
        self._tail_quiet = 0.0
        self._tail_seconds = 0.0
        self._vad_partial_at = 0.0
        self._last_activity = time.monotonic()
        self._idle_task: asyncio.Task[None] | None = None
        self._idle_warned = False
        self._warned_at = 0.0
        self._closed = False
        self._ready_at = 0.0  # monotonic time bot-ready is due (0: not delayed, or already sent)
        self._ready_task: asyncio.Task[None] | None = None
        self._ready_waiting: list[tuple[str, str | None]] = []
        self.messages_in = 0
        self.messages_out = 0

    @property
    def vad(self) -> AdaptiveVad:
        """The server VAD (read-only use: a check waits until it has learned the room's noise floor)."""
        return self._vad

    # --- plumbing ---------------------------------------------------------------------------
    def _emit(self, message: Mapping[str, Any] | str) -> None:
        if self._closed:
            return
        self.messages_out += 1
        self._send(message if isinstance(message, str) else dumps(message))

    def _emit_all(self, messages: list[dict[str, Any]]) -> None:
        for message in messages:
            self._emit(message)

    def start(self) -> None:
        if self.config.idle_warning_s and self._idle_task is None:
            self._idle_task = asyncio.get_running_loop().create_task(self._idle_loop(), name="bot-idle")

    async def close(self) -> None:
        if self._closed:
            return
        await self.interrupt(announce=False)
        self._closed = True
        if self._tail_timer is not None:
            self._tail_timer.cancel()
            self._tail_timer = None
        if self._ready_task is not None:
            self._ready_task.cancel()
        if self._idle_task is not None:
            self._idle_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._idle_task

    def on_channel_open(self) -> None:
        """The first data path to a client is up: greet it (once per session)."""
        if self._greeted:
            return
        self._greeted = True
        self._emit(self.env.custom("interaction-created", {
            "interaction_id": self.interaction_id,
            "character_session_id": self.persona.character_session_id,
        }))
        delay = self.config.bot_ready_delay_s
        if delay > 0:  # websdk / slow_start profiles: the agent is up only later (§19 bot-ready)
            self._ready_at = time.monotonic() + delay
            self._ready_task = asyncio.get_running_loop().create_task(self._late_bot_ready(delay), name="bot-ready")
        elif self.config.shapes.bot_ready in ("join", "both"):
            self._bot_ready("", None)

    async def _late_bot_ready(self, delay: float) -> None:
        await asyncio.sleep(delay)
        self._ready_at = 0.0
        waiting, self._ready_waiting = self._ready_waiting, []
        if waiting:  # client-ready arrived meanwhile: answer each with its own id
            for request_id, version in waiting:
                self._bot_ready(request_id, version)
        elif self.config.shapes.bot_ready in ("join", "both"):
            self._bot_ready("", None)

    def _bot_ready(self, request_id: str, client_version: str | None) -> None:
        version = SERVER_RTVI_VERSION
        if client_version:
            major = client_version.split(".", 1)[0]
            if major in ("1", "2"):
                version = client_version
            else:
                self._emit(self.env.top("error-response", {
                    "error": f"RTVI version {client_version} is not compatible with server protocol "
                             f"{SERVER_RTVI_VERSION}. Compatibility issues may occur."}, request_id))
        about = {
            "library": "convai-bridge-emulator",
            "character_id": self.persona.character_id,
            "character_session_id": self.persona.character_session_id,
            "participant_identity": self.participant_identity,
        }
        self._bot_ready_sent += 1
        self._emit(self.env.top("bot-ready", {"version": version, "about": about}, request_id))

    # --- inbound ----------------------------------------------------------------------------
    def handle_payload(self, raw: bytes | str, sender: str = "") -> None:
        """One data-channel message from a client (any of Convai's envelope variants)."""
        if self._closed:
            return
        self.messages_in += 1
        if sender:
            self.user_id = sender
        try:
            message = json.loads(raw)
        except (ValueError, UnicodeDecodeError):
            self._emit_all(self.env.server_response(
                "parse-error", "error", "Failed to parse message: invalid JSON or UTF-8 encoding"))
            return
        if not isinstance(message, dict) or not isinstance(message.get("type"), str):
            self._emit_all(self.env.server_response(
                "validation-error", "error", "Message missing required 'type' field",
                {"received_message": message if isinstance(message, dict) else str(message)[:200]}))
            return
        self._touch()
        type_: str = message["type"]
        request_id = message.get("id") if isinstance(message.get("id"), str) else None
        data = message.get("data")
        labelled = message.get("label") == LABEL
        if type_ == "client-message":
            inner = data if isinstance(data, Mapping) else {}
            inner_type = inner.get("t")
            if not isinstance(inner_type, str):
                self._emit(self.env.top("error-response", {"error": "client-message needs a string 't'"},
                                        request_id or ""))
                return
            self._dispatch(inner_type, inner.get("d"), request_id, labelled=False, wrapper=True)
            return
        self._dispatch(type_, data, request_id, labelled=labelled, wrapper=False)

    def _ack(self, type_: str, result: UpdateResult, request_id: str | None, wrapper: bool) -> None:
        if wrapper:  # pipecat's reply shape for client-message, carrying Convai's ack fields
            body: dict[str, Any] = {"event_type": type_, "status": result.status}
            if result.message:
                body["message"] = result.message
            if result.extras:
                body["extras"] = dict(result.extras)
            self._emit(self.env.top("server-response", {"t": type_, "d": body}, request_id or ""))
            return
        self._emit_all(self.env.server_response(type_, result.status, result.message, result.extras, request_id))

    def _dispatch(self, type_: str, data: Any, request_id: str | None, *, labelled: bool, wrapper: bool) -> None:
        payload: Mapping[str, Any] = data if isinstance(data, Mapping) else {}
        if type_ == "client-ready":
            version = payload.get("version")
            client_version = version if isinstance(version, str) else None
            if self._ready_at:  # not up yet: answered when the delay is over
                self._ready_waiting.append((request_id or "", client_version))
                return
            if self.config.shapes.bot_ready in ("client-ready", "both") or not self._bot_ready_sent:
                self._bot_ready(request_id or "", client_version)
            return
        if type_ == "disconnect-bot":
            self._request_close("disconnect-bot")
            return
        if type_ == "send-text":  # pipecat RTVI text input: same turn as user_text_message
            content = payload.get("content")
            if not isinstance(content, str):
                self._emit(self.env.top("error-response", {
                    "error": "Invalid message: SendTextData content Field required"}, request_id or ""))
                return
            self._start_text_turn(content, request_id)
            return
        handler = self._handlers().get(type_)
        if handler is None:
            event_type = type_ if self.config.shapes.unknown_event_type == "echo" else "unknown-message-type"
            self._ack(event_type, UpdateResult("error", f"Unknown message type: {type_}",
                                               {"supported_types": list(SUPPORTED_TYPES)}), request_id, wrapper)
            if labelled and self.config.shapes.error_response:
                self._emit(self.env.top("error-response", {"error": f"Unsupported type {type_}"}, request_id or ""))
            return
        if labelled and self.config.shapes.error_response:
            self._emit(self.env.top("error-response", {"error": f"Unsupported type {type_}"}, request_id or ""))
        result, after = handler(data, request_id)
        self._ack(type_, result, request_id, wrapper)
        if after is not None:
            after()

    def _handlers(self) -> dict[str, Callable[[Any, str | None], Handled]]:
        return {
            "user_text_message": self._on_user_text,
            "trigger-message": self._on_trigger,
            "update-template-keys": self._on_template_keys,
            "update-dynamic-info": self._on_dynamic_info,
            "context-update": self._on_context_update,
            "update-scene-metadata": self._on_scene_metadata,
            "tts-toggle": self._on_tts_toggle,
            "stt-toggle": self._on_stt_toggle,
            "interrupt-bot": self._on_interrupt,
            "force-user-stopped-speaking": self._on_force_stop,
            "reset-idle-timer": self._on_reset_idle,
            "kill-pipeline": self._on_kill,
            "usage-toggle": self._on_usage_toggle,
        }

    # --- handlers: each returns the ack and an optional follow-up run after the ack --------
    def _on_user_text(self, data: Any, request_id: str | None) -> Handled:
        text = data.get("text") if isinstance(data, Mapping) else None
        if not isinstance(text, str) or not text.strip():
            return UpdateResult("error", "No text provided"), None
        message_id = data.get("message_id") if isinstance(data.get("message_id"), str) else request_id
        stripped = text.strip()
        return UpdateResult(extras={"text": stripped}), lambda: self._start_text_turn(stripped, message_id)

    def _on_trigger(self, data: Any, request_id: str | None) -> Handled:
        payload = data if isinstance(data, Mapping) else {}
        name = payload.get("trigger_name") if isinstance(payload.get("trigger_name"), str) else None
        text = payload.get("trigger_message") if isinstance(payload.get("trigger_message"), str) else None
        if not name and not text:
            return UpdateResult("error", "trigger_name or trigger_message is required"), None
        plan = self.persona.trigger(name, text)
        extras = {"trigger_name": name or "", "has_speak_tag": False}
        if plan is None:
            return UpdateResult(message="Trigger message processed without response", extras=extras), None
        return UpdateResult(extras=extras), lambda: self._start_turn(plan, user_text=None, message_id=None)

    def _on_template_keys(self, data: Any, _id: str | None) -> Handled:
        keys = data.get("template_keys") if isinstance(data, Mapping) else None
        if not isinstance(keys, Mapping):
            return UpdateResult("error", "template_keys must be an object"), None
        return self.persona.update_template_keys({str(k): str(v) for k, v in keys.items()}), None

    def _on_dynamic_info(self, data: Any, _id: str | None) -> Handled:
        info = data.get("dynamic_info") if isinstance(data, Mapping) else None
        text = info.get("text") if isinstance(info, Mapping) else None
        if not isinstance(text, str) or not text:
            return UpdateResult("error", "No text provided in dynamic info"), None
        return self.persona.update_dynamic_info(text), None

    def _on_context_update(self, data: Any, _id: str | None) -> Handled:
        if not isinstance(data, Mapping):
            return UpdateResult("error", "context-update needs an object"), None
        result = self.persona.context_update(data)
        plan = result.plan
        if plan is not None:
            return result, lambda: self._start_turn(plan, user_text=None, message_id=None)
        return result, None

    def _on_scene_metadata(self, data: Any, _id: str | None) -> Handled:
        items: Any = data
        if isinstance(data, Mapping):
            items = data.get("scene_metadata", data.get("metadata"))
        if not isinstance(items, list) or not all(isinstance(i, Mapping) for i in items):
            return UpdateResult("error", "scene metadata must be a list of {name, description}"), None
        return self.persona.update_scene_metadata(items), None

    def _on_tts_toggle(self, data: Any, _id: str | None) -> Handled:
        enabled = data.get("enabled") if isinstance(data, Mapping) else None
        if not isinstance(enabled, bool):
            return UpdateResult("error", "enabled must be a boolean"), None
        self.config.tts_enabled = enabled
        return UpdateResult(message=f"TTS {'enabled' if enabled else 'disabled'}", extras={"enabled": enabled}), None

    def _on_stt_toggle(self, data: Any, _id: str | None) -> Handled:
        muted = data.get("muted") if isinstance(data, Mapping) else None
        if not isinstance(muted, bool):
            return UpdateResult("error", "muted must be a boolean"), None
        self.config.stt_enabled = not muted
        if muted and self._vad.speaking:
            self._vad.force_stop()
            if self._listener is not None:
                self._listener.abandon()
        return UpdateResult(message=f"STT {'muted' if muted else 'unmuted'}", extras={"muted": muted}), None

    def _on_interrupt(self, _data: Any, _id: str | None) -> Handled:
        now = time.monotonic()
        if now - self._last_interrupt < INTERRUPT_DEBOUNCE_S:
            return UpdateResult(message="Bot interrupt debounced (duplicate within window)"), None
        self._last_interrupt = now
        was_active = self._turn is not None
        return UpdateResult(message="Bot interrupted" if was_active else "Nothing to interrupt"), (
            lambda: self._cut_turn(announce=True))

    def _on_force_stop(self, _data: Any, _id: str | None) -> Handled:
        if self._vad.speaking:
            return UpdateResult(message="User speech ended"), lambda: self._end_utterance("force_stopped")
        return UpdateResult(message="User was not speaking"), None

    def _on_reset_idle(self, _data: Any, _id: str | None) -> Handled:
        self._touch()
        return UpdateResult(), None

    def _on_kill(self, _data: Any, _id: str | None) -> Handled:
        return UpdateResult(extras={"room_name": self.room_name}), lambda: self._request_close("kill-pipeline")

    def _on_usage_toggle(self, data: Any, _id: str | None) -> Handled:
        enabled = bool(data.get("enabled")) if isinstance(data, Mapping) else False
        return UpdateResult(extras={"enabled": enabled}), None

    # --- idle -------------------------------------------------------------------------------
    def _touch(self) -> None:
        self._last_activity = time.monotonic()
        self._idle_warned = False

    async def _idle_loop(self) -> None:
        limit = float(self.config.idle_warning_s or 0)
        while not self._closed:
            wait = self._last_activity + limit - time.monotonic()
            if wait > 0:
                await asyncio.sleep(min(wait, 1.0))
                continue
            if not self._idle_warned and self._turn is None:
                self._idle_warned = True
                self._warned_at = time.monotonic()
                remaining = self.config.idle_remaining_s
                minutes = max(1, round(remaining / 60))
                self._emit(self.env.custom("user-idle-warning", {
                    "remaining_seconds": remaining,
                    "message": f"You've been idle. You will be disconnected in {minutes} minutes."}))
            elif self._idle_warned and time.monotonic() - self._warned_at >= self.config.idle_remaining_s:
                # convai-apis.md §7.3: the warning's countdown ran out without reset-idle-timer (or any
                # other client message): the server ends the session
                self._emit(self.env.custom("session-ending", {"reason": "idle_timeout"}))
                self._request_close("idle_timeout")
                return
            await asyncio.sleep(min(limit, 1.0))

    # --- microphone -------------------------------------------------------------------------
    def feed_mic(self, samples: np.ndarray, seconds: float = FRAME_SECONDS, *, channels: int = 1,
                 rate: int = 48_000) -> None:
        """16-bit microphone samples (``channels`` interleaved at ``rate``) for server-side VAD and STT."""
        if self._closed or not self.config.stt_enabled:
            return
        mono = samples[::channels] if channels > 1 else samples
        if self._tail_timer is not None:  # the tail of a push-to-talk utterance (see _end_utterance)
            self._tail_frame(mono, rate, seconds)
            return
        event = self._vad.feed(mono, seconds)
        listener = self._listener
        if listener is not None:
            listener.frame(mono, rate, seconds)
        if event is VadEvent.STARTED:
            self._touch()
            self._utterance += 1
            self._vad_partial_at = self._vad.speech_seconds
            if listener is not None:
                listener.start()
            self._cut_turn(announce=True)  # barge-in
            self._emit(self.env.custom("vad-stt-started", {
                "timestamp": _now_iso(), "pre_roll_ms": self.config.vad.pre_roll_ms}))
            self._emit(self.env.top("user-started-speaking"))
        elif event is VadEvent.STOPPED:
            self._end_utterance("hangover_elapsed", already_stopped=True)
        elif event is VadEvent.DISCARDED:  # steady noise, not speech: close the events, no turn
            if listener is not None:
                listener.abandon()
            self._emit(self.env.custom("vad-stt-stopped", {
                "timestamp": _now_iso(), "reason": "noise", "audio_duration_ms": 0}))
            self._emit(self.env.top("user-stopped-speaking"))
        elif self._vad.speaking and self._vad.speech_seconds - self._vad_partial_at >= (
                PARTIAL_EVERY_S if listener is None else RECOGNIZED_PARTIAL_EVERY_S):
            self._vad_partial_at = self._vad.speech_seconds
            partial = listener.partial() if listener is not None else None
            if listener is None:
                self._emit_partial(self._transcript(self._vad.speech_seconds, final=False))
            elif partial is not None:
                utterance = self._utterance
                partial.add_done_callback(lambda f: self._recognized_partial(f, utterance))

    def _emit_partial(self, text: str) -> None:
        self._emit(self.env.top("user-transcription", {
            "text": text, "user_id": self.user_id, "timestamp": _now_iso(), "final": False}))

    def _recognized_partial(self, future: asyncio.Future[str], utterance: int) -> None:
        if future.cancelled() or future.exception() is not None:
            return
        text = future.result()
        if text and utterance == self._utterance and self._vad.speaking:
            self._emit_partial(text)

    @staticmethod
    def _transcript(seconds: float, final: bool) -> str:
        """Without a recognizer (or when it heard no words) the transcript is what was measured."""
        if final:
            return f"(voice input, {seconds:.1f} seconds)"
        return f"(voice input, {seconds:.1f} seconds so far)"

    def _end_utterance(self, reason: str, already_stopped: bool = False) -> None:
        if not already_stopped:
            self._vad.force_stop()
        seconds = self._vad.speech_seconds
        self._emit(self.env.custom("vad-stt-stopped", {
            "timestamp": _now_iso(), "reason": reason, "audio_duration_ms": round(seconds * 1000)}))
        if reason == "force_stopped":
            # Push-to-talk release: the client's last audio is still in flight (its mic track plays out
            # in real time, the release travels on the data channel). That tail belongs to this
            # utterance: it is recognised with it and never opens a new one (which would barge in on
            # the reply). The tail ends at the first quiet frames, or after RELEASE_TAIL_MAX_S.
            self._tail_quiet = 0.0
            self._tail_seconds = seconds
            self._tail_timer = asyncio.get_running_loop().call_later(RELEASE_TAIL_MAX_S, self._finish_tail)
            if self._listener is None:
                self._voice_turn(self._transcript(seconds, final=True))
            return
        self._finish_utterance(seconds)

    def _tail_frame(self, mono: np.ndarray, rate: int, seconds: float) -> None:
        if self._listener is not None:
            self._listener.frame(mono, rate, seconds)
        if frame_dbfs(mono) > self._vad.threshold_dbfs:
            self._tail_quiet = 0.0
            self._tail_seconds += seconds
        else:
            self._tail_quiet += seconds
            if self._tail_quiet >= RELEASE_TAIL_QUIET_S:
                self._finish_tail()

    def _finish_tail(self) -> None:
        timer, self._tail_timer = self._tail_timer, None
        if timer is None:
            return
        timer.cancel()
        if self._listener is not None and not self._closed:
            self._finish_utterance(self._tail_seconds)

    def _finish_utterance(self, seconds: float) -> None:
        final = self._listener.finish() if self._listener is not None else None
        if final is None:
            self._voice_turn(self._transcript(seconds, final=True))
            return

        async def recognized() -> None:
            try:
                text = await final
            except Exception:
                log.exception("speech recognition failed")
                text = ""
            if not self._closed:
                self._voice_turn(text or self._transcript(seconds, final=True))

        self._spawn(recognized())

    def _voice_turn(self, text: str) -> None:
        self._user_final(text, None)
        self._start_turn(self.persona.respond(text), user_text=None, message_id=None)

    def _user_final(self, text: str, message_id: str | None) -> None:
        self._emit(self.env.top("user-transcription", {
            "text": text, "user_id": self.user_id, "timestamp": _now_iso(), "final": True}))
        final = {"text": text}
        if self.user_id:
            final["participant_id"] = self.user_id
        if message_id:
            final["message_id"] = message_id
        self._emit_all(self.env.event("final-user-transcription", final, "wrapped"))
        self._emit(self.env.top("user-stopped-speaking"))

    # --- turns ------------------------------------------------------------------------------
    def _start_text_turn(self, text: str, message_id: str | None) -> None:
        self._cut_turn(announce=True)
        self._emit(self.env.top("user-started-speaking"))
        self._user_final(text, message_id)
        self._start_turn(self.persona.respond(text, message_id), user_text=text, message_id=message_id)

    def _start_turn(self, plan: TurnPlan, *, user_text: str | None, message_id: str | None) -> None:
        self._cut_turn(announce=True)
        self._turn_counter += 1
        turn = _Turn(response_id=f"{self.config.session_id or self.interaction_id}:r{self._turn_counter}")
        self._turn = turn
        turn.task = asyncio.get_running_loop().create_task(self._run_turn(turn, plan),
                                                           name=f"bot-turn-{self._turn_counter}")

    def _spawn(self, coro: Awaitable[None]) -> None:
        task = asyncio.ensure_future(coro)
        task.add_done_callback(lambda t: t.cancelled() or t.exception() and log.error(
            "bot task failed", exc_info=t.exception()))

    def _cut_turn(self, announce: bool) -> bool:
        """End the current turn synchronously, so its closing events precede anything new."""
        turn = self._turn
        if turn is None:
            return False
        self._turn = None
        if announce:
            self._emit(self.env.top("bot-interrupted"))
        if turn.utterance is not None:
            self.speaker.cancel(turn.utterance)
        self._close_interrupted(turn)
        if turn.task is not None:
            turn.task.cancel()
        return True

    async def interrupt(self, announce: bool = True) -> None:
        """Stop the current turn now: audio stops on the next tick, the turn is closed as interrupted."""
        turn = self._turn
        if self._cut_turn(announce) and turn is not None and turn.task is not None:
            with contextlib.suppress(asyncio.CancelledError):
                await turn.task

    async def _run_turn(self, turn: _Turn, plan: TurnPlan) -> None:
        try:
            await self._stage(turn, plan)
        except asyncio.CancelledError:
            if not turn.closed:
                self._close_interrupted(turn)
            raise
        except Exception:
            log.exception("turn failed")
            self._emit(self.env.top("error", {"error": "internal error while responding", "fatal": False}))
            self._emit_all(self.env.turn_completed({"was_interrupted": False, "was_aborted": True,
                                                    "error_reason": "internal_error",
                                                    "response_id": turn.response_id}))
        finally:
            if self._turn is turn:
                self._turn = None

    async def _stage(self, turn: _Turn, plan: TurnPlan) -> None:
        cfg = self.config
        started = time.monotonic()
        if plan.moderation_passed is not None:
            self._emit(self.env.custom("moderation-response", {
                "result": plan.moderation_passed, "user_input": plan.extras.get("user_input", ""),
                "reason": plan.moderation_reason}))
        if plan.no_response_reason:
            if plan.narrative is not None:
                self._emit(self._behavior_tree(plan))
            self._emit(self.env.custom("llm-no-response", {"reason": plan.no_response_reason}))
            self._emit_all(self.env.turn_completed({"was_interrupted": False, "response_id": turn.response_id}))
            return
        chunks = plan.text_chunks()
        turn.llm_open = True
        self._emit(self.env.top("bot-llm-started"))
        for i, chunk in enumerate(chunks):
            if i == 0 and cfg.debug:
                self._metric("ttfb", "EmulatorLLM#0", time.monotonic() - started)
            self._emit(self.env.top("bot-llm-text", {"text": chunk}))
            if cfg.llm_chunk_delay_s:
                await asyncio.sleep(cfg.llm_chunk_delay_s)
        self._emit(self.env.top("bot-llm-stopped"))
        turn.llm_open = False
        if cfg.debug:
            self._metric("processing", "EmulatorLLM#0", time.monotonic() - started)
        if plan.narrative is not None:
            self._emit(self._behavior_tree(plan))
        if plan.actions:
            self._emit_all(self.env.actions(list(plan.actions)))
        if plan.emotion is not None:
            name, scale = plan.emotion
            self._emit_all(self.env.event("bot-emotion", {"emotion": name, "scale": int(scale)}, "wrapped"))
        if cfg.tts_enabled and plan.text.strip():
            await self._speak(turn, plan.text, started)
        self._emit_all(self.env.turn_completed({"was_interrupted": False, "response_id": turn.response_id}))

    def _behavior_tree(self, plan: TurnPlan) -> dict[str, Any]:
        step = plan.narrative
        assert step is not None
        return self.env.custom("behavior-tree-response", {
            "bt_code": step.bt_code, "bt_constants": step.bt_constants,
            "narrative_section_id": step.narrative_section_id})

    def _metric(self, kind: str, processor: str, seconds: float) -> None:
        self._emit(self.env.top("metrics", {kind: [{
            "processor": processor, "model": "convai-emulator", "value": round(seconds, 4)}]}))

    async def clip_for(self, text: str) -> Clip:
        options = self.config.clip_options()
        key = (text, self.persona.voice_key(), options)
        clip = self._clips.get(key)
        if clip is None:
            pcm = await self.persona.speech(text)
            clip = await asyncio.get_running_loop().run_in_executor(None, build_clip, pcm, text, options)
            self._clips.put(key, clip)
        return clip

    async def _speak(self, turn: _Turn, text: str, started: float) -> None:
        cfg = self.config
        turn.tts_open = True
        self._emit(self.env.top("bot-tts-started"))
        clip = await self.clip_for(text)
        turn.clip = clip
        if cfg.debug:
            self._metric("ttfb", "EmulatorTTS#0", time.monotonic() - started)
        ids = {"response_id": turn.response_id}
        words = clip.words
        next_word = 0
        next_chunk = 0
        next_audio = 0
        speaking_payload = dict(ids)

        def on_frame(tick: int) -> None:
            nonlocal next_word, next_chunk, next_audio
            turn.frames_played = tick + 1
            if tick == 0:
                turn.speaking = True
                self._emit_all(self.env.speaking("bot-started-speaking", speaking_payload))
            for message in clip.visemes[tick]:
                self._emit(message)
            while next_audio < len(clip.audio_data) and clip.audio_data[next_audio][0] <= tick:
                self._emit(clip.audio_data[next_audio][1])
                next_audio += 1
            while (next_chunk < len(clip.blendshape_chunks)
                   and clip.blendshape_chunks[next_chunk][0] <= tick + NEUROSYNC_LEAD_TICKS):
                _, count, frames_json = clip.blendshape_chunks[next_chunk]
                self._emit(self._blendshape_chunk(turn, frames_json, count))
                next_chunk += 1
            while next_word < len(words) and words[next_word][0] <= tick:
                self._emit(self.env.top("bot-tts-text", {"text": words[next_word][1]}))
                next_word += 1

        if cfg.lipsync_first:  # websdk: the lead-in's chunks precede bot-started-speaking (§19 Lip sync)
            while next_chunk < len(clip.blendshape_chunks) and clip.blendshape_chunks[next_chunk][0] <= \
                    NEUROSYNC_LEAD_TICKS:
                self._emit(self._blendshape_chunk(turn, clip.blendshape_chunks[next_chunk][2],
                                                  clip.blendshape_chunks[next_chunk][1]))
                next_chunk += 1
        audible = cfg.audio_routing in ("audio_only", "both")
        turn.utterance = Utterance(clip.packets, on_frame, audible)
        done = self.speaker.play(turn.utterance)
        try:
            await asyncio.shield(done)
        except asyncio.CancelledError:
            self.speaker.cancel(turn.utterance)
            raise
        turn.speaking = False
        self._emit_all(self.env.speaking("bot-stopped-speaking", speaking_payload))
        self._emit(self.env.top("bot-tts-stopped"))
        turn.tts_open = False
        if cfg.neurosync:
            self._emit(self.env.custom("blendshape-turn-stats", {"stats": {
                "total_blendshapes": clip.blendshape_frames,
                "total_audio_bytes": clip.pcm_samples * 2,
                "total_turn_duration_ms": round((time.monotonic() - started) * 1000, 1),
                "total_audio_duration_ms": round(clip.duration_ms, 1),
                "fps": float(cfg.blendshape_fps),
                "was_interrupted": False,
                "response_id": turn.response_id}}))

    def _blendshape_chunk(self, turn: _Turn, frames_json: str, count: int) -> str:
        """Frames are pre-serialised per clip; the per-turn fields are spliced around them."""
        cfg = self.config
        sequence = turn.blendshape_sequence
        turn.blendshape_sequence += 1
        meta: dict[str, Any] = {"format": cfg.blendshape_format, "sequence": sequence,
                                "response_id": turn.response_id, "neurosync_turn_id": self._turn_counter}
        if cfg.blendshape_meta:  # Unity reads these from each payload (§19 Lip sync)
            meta["fps"] = cfg.blendshape_fps
            meta["start_frame_index"] = turn.blendshape_frames_sent
        turn.blendshape_frames_sent += count
        tail = dumps(meta)[1:-1]
        if cfg.shapes.custom_events == "top":
            head = dumps({"label": LABEL, "type": "chunked-neurosync-blendshapes"})[:-1]
            return f'{head},"data":{{"blendshapes":{frames_json},{tail}}}}}'
        head = dumps({"label": LABEL, "type": "server-message"})[:-1]
        return f'{head},"data":{{"type":"chunked-neurosync-blendshapes","blendshapes":{frames_json},{tail}}}}}'

    def _close_interrupted(self, turn: _Turn) -> None:
        turn.closed = True
        ids = {"response_id": turn.response_id}
        if turn.speaking:
            self._emit_all(self.env.speaking("bot-stopped-speaking", ids))
        if self.config.neurosync and turn.blendshape_sequence:
            played = turn.frames_played * 20 * self.config.blendshape_fps // 1000
            self._emit(self.env.custom("neurosync-blendshapes-cancel", {
                "response_id": turn.response_id, "neurosync_turn_id": self._turn_counter,
                "sequence": turn.blendshape_sequence,
                "valid_through_frame_index": max(0, played - 1) if played else None,
                "reason": "interruption"}))
        if turn.tts_open:
            self._emit(self.env.top("bot-tts-stopped"))
        if turn.llm_open:
            self._emit(self.env.top("bot-llm-stopped"))
        self._emit_all(self.env.turn_completed({"was_interrupted": True, **ids}))

    def _request_close(self, reason: str) -> None:
        if self._on_close_request is None:
            return
        result = self._on_close_request(reason)
        if asyncio.iscoroutine(result):
            self._spawn(result)
