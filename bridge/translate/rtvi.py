"""Convai Live API / RTVI data-channel messages → session events.

The only module that knows the live message shapes. It accepts all three envelopes (top-level
RTVI, `server-message`-wrapped Convai events, flat `server-response`), drops the second copy of a
message that arrives in two shapes, reads both `action-response` formats, and passes unknown types
through as `Passthrough` so nothing is dropped silently. Types it ignores on purpose are listed in
IGNORED with the reason.
"""

from __future__ import annotations

import base64
import binascii
import json
import time
from collections import OrderedDict
from typing import Any

import numpy as np

from bridge.audio.wav import decode_wav
from bridge.translate import events as ev
from bridge.translate.rest import parse_actions

VISEME_FPS = 100  # Convai sends one viseme frame per message; clients (UE) play them at 100 fps
VISEME_KEYS = ("sil", "pp", "ff", "th", "dd", "kk", "ch", "ss", "nn", "rr", "aa", "e", "ih", "oh", "ou")

# Known types with nothing for the engine: why each is ignored.
IGNORED = {
    "bot-ready": "handled by the backend's handshake",
    "user-stopped-speaking": "the utterance end is implied by the final transcript",
    "vad-stt-stopped": "as user-stopped-speaking",
    "vad-user-stopped-speaking": "as user-stopped-speaking",
    "bot-llm-started": "bot_text chunks carry the content",
    "bot-llm-stopped": "bot_reply is sent at turn end",
    "bot-tts-started": "bot_started_speaking marks the audio",
    "bot-tts-stopped": "bot_stopped_speaking marks the audio",
    "bot-tts-text": "word-level duplicate of bot_text",
    "bot-transcription": "sentence-level duplicate of bot_text",
    "bot-output": "duplicate of bot_text (RTVI 1.x/2.x aggregation)",
    "user-llm-text": "duplicate of the final user transcript",
    "user-audio-level": "per-frame level, too chatty to forward",
    "bot-audio-level": "per-frame level, too chatty to forward",
    "bot-tts-audio": "audio arrives on the media track",
    "reset-idle-timer": "acknowledged by server-response",
}

# Types that may arrive both top-level and wrapped: the copy in the other shape within the window is dropped.
# Same-shape repeats are real events (two replies can start within a second) and are kept.
DEDUPED = {
    "bot-started-speaking",
    "bot-stopped-speaking",
    "bot-turn-completed",
    "final-user-transcription",
    "server-response",
    "action-response",
    "bot-emotion",
    "user-transcription",
    "user-started-speaking",
}
DEDUP_WINDOW_S = 0.5


def demux(message: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    """(event type, payload) for any of the three envelope shapes."""
    kind = message.get("type")
    data = message.get("data")
    if kind == "server-message" and isinstance(data, dict) and isinstance(data.get("type"), str):
        payload = {k: v for k, v in data.items() if k not in ("type", "label")}
        return data["type"], payload
    if kind == "server-response":
        if isinstance(data, dict) and ("event_type" in data or "status" in data):
            return "server-response", data
        return "server-response", {k: v for k, v in message.items() if k not in ("type", "label", "id")}
    if isinstance(data, dict):
        payload = dict(data)
        for key in ("response_id", "was_interrupted", "was_aborted", "error_reason", "epoch", "sequence"):
            if key in message and key not in payload:
                payload[key] = message[key]
        return str(kind), payload
    # Flat top-level shapes (bot-turn-completed, bot-started-speaking with ids at the root).
    return str(kind), {k: v for k, v in message.items() if k not in ("type", "label", "id", "data")}


class RtviTranslator:
    """Stateful per session: deduplication window, blendshape frame counter, allowed action names."""

    def __init__(self, allowed_actions: list[str] | None = None, blendshape_fps: int = 60) -> None:
        self.allowed_actions = allowed_actions
        self.blendshape_fps = blendshape_fps
        self._recent: OrderedDict[str, tuple[float, bool]] = OrderedDict()
        self._last_final: tuple[str, float] | None = None
        self._blend_frames = 0
        self._viseme_frames = 0

    def _duplicate(self, kind: str, payload: dict[str, Any], wrapped: bool, now: float) -> bool:
        key = kind + json.dumps(payload, sort_keys=True, default=str)
        while self._recent and next(iter(self._recent.values()))[0] < now - DEDUP_WINDOW_S:
            self._recent.popitem(last=False)
        seen = self._recent.get(key)
        if seen is not None and seen[1] != wrapped:
            del self._recent[key]
            return True
        self._recent[key] = (now, wrapped)
        self._recent.move_to_end(key)
        return False

    def translate(self, message: dict[str, Any]) -> list[ev.Event]:
        kind, p = demux(message)
        now = time.monotonic()
        wrapped = message.get("type") == "server-message"
        if kind in DEDUPED and self._duplicate(kind, p, wrapped, now):
            return []
        handler = _HANDLERS.get(kind)
        if handler is not None:
            return handler(self, p, now)
        if kind in IGNORED:
            return []
        return [ev.Passthrough(kind, p or None)]

    # -- handlers ---------------------------------------------------------------------------------
    def _final_transcript(self, text: str, now: float) -> list[ev.Event]:
        # user-transcription{final} and final-user-transcription repeat each other.
        if self._last_final and self._last_final[0] == text and now - self._last_final[1] < 3.0:
            return []
        self._last_final = (text, now)
        return [ev.UserTranscript(text, True)]

    def user_transcription(self, p: dict[str, Any], now: float) -> list[ev.Event]:
        text = p.get("text")
        if not isinstance(text, str):
            return []
        if p.get("final"):
            return self._final_transcript(text, now)
        return [ev.UserTranscript(text, False)]

    def final_user_transcription(self, p: dict[str, Any], now: float) -> list[ev.Event]:
        text = p.get("text")
        return self._final_transcript(text, now) if isinstance(text, str) else []

    def bot_started(self, p: dict[str, Any], now: float) -> list[ev.Event]:
        self._blend_frames = 0
        self._viseme_frames = 0
        return [ev.BotSpeaking(True)]

    def actions(self, p: dict[str, Any], now: float) -> list[ev.Event]:
        raw = p.get("actions")
        if raw is None and isinstance(p.get("result"), list | str):  # RTVI 1.0-era action-response
            raw = p["result"]
        return [ev.Actions(parse_actions(raw, self.allowed_actions))] if raw is not None else []

    def emotion(self, p: dict[str, Any], now: float) -> list[ev.Event]:
        name = p.get("emotion")
        if not isinstance(name, str) or not name:
            return []
        try:
            scale = int(float(p.get("scale", 2)))
        except (TypeError, ValueError):
            scale = 2
        return [ev.Emotion(name, min(3, max(1, scale)))]

    def visemes(self, p: dict[str, Any], now: float) -> list[ev.Event]:
        raw = p.get("visemes")
        if not isinstance(raw, dict):
            return []
        lower = {str(k).lower(): v for k, v in raw.items()}
        weights = [float(lower.get(k, 0.0) or 0.0) for k in VISEME_KEYS]
        # Frames carry no time: frame k of a reply plays k/100 s after the audio starts.
        seconds = self._viseme_frames / VISEME_FPS
        self._viseme_frames += 1
        return [ev.Visemes(weights, seconds)]

    def blendshapes(self, p: dict[str, Any], now: float) -> list[ev.Event]:
        raw = p.get("blendshapes")
        if not isinstance(raw, list) or not raw:
            return []
        frames = raw if isinstance(raw[0], list) else [raw]
        frames = [[float(x) for x in f] for f in frames if isinstance(f, list) and f]
        if not frames:
            return []
        fmt = p.get("format") if p.get("format") in ("arkit", "mha") else ("arkit" if len(frames[0]) < 100 else "mha")
        first = self._blend_frames
        self._blend_frames += len(frames)
        return [ev.Blendshapes(frames, fmt, self.blendshape_fps, first)]

    def blend_cancel(self, p: dict[str, Any], now: float) -> list[ev.Event]:
        index = p.get("valid_through_frame_index")
        return [ev.LipsyncCancel(index if isinstance(index, int) else None, self.blendshape_fps)]

    def turn_completed(self, p: dict[str, Any], now: float) -> list[ev.Event]:
        reason = p.get("error_reason")
        return [
            ev.TurnEnd(
                interrupted=bool(p.get("was_interrupted")),
                aborted=bool(p.get("was_aborted")),
                reason=reason if isinstance(reason, str) else None,
            )
        ]

    def audio_data(self, p: dict[str, Any], now: float) -> list[ev.Event]:
        try:
            raw = base64.b64decode(p.get("audio", ""), validate=True)
        except (binascii.Error, TypeError, ValueError):
            return [ev.BackendError("convai_bad_response", "audio-data carried invalid base64")]
        rate = int(p.get("sample_rate") or 24000)
        channels = int(p.get("channels") or 1)
        if p.get("includes_wav_header") or raw[:4] == b"RIFF":
            try:
                pcm, rate, channels = decode_wav(raw)
            except ValueError as exc:
                return [ev.BackendError("convai_bad_response", f"audio-data WAV chunk: {exc}")]
            return [ev.BotAudio(pcm, rate, channels)]
        if len(raw) % (2 * channels):
            return [ev.BackendError("convai_bad_response", "audio-data chunk is not whole 16-bit samples")]
        return [ev.BotAudio(np.frombuffer(raw, dtype="<i2").copy(), rate, channels)]

    def server_response(self, p: dict[str, Any], now: float) -> list[ev.Event]:
        if "t" in p and "event_type" not in p:  # standard RTVI server-response {t, d}
            return [ev.Passthrough("server-response", p)]
        status = str(p.get("status", "success"))
        extras = p.get("extras") if isinstance(p.get("extras"), dict) else {}
        message = p.get("message") if isinstance(p.get("message"), str) else None
        return [ev.ServerAck(str(p.get("event_type", "")), status != "error", message, extras)]

    def error(self, p: dict[str, Any], now: float) -> list[ev.Event]:
        text = p.get("error") or p.get("message") or "character service error"
        fatal = p.get("fatal")
        return [ev.BackendError("convai_error", str(text), fatal=True if fatal is None else bool(fatal))]

    def error_response(self, p: dict[str, Any], now: float) -> list[ev.Event]:
        text = str(p.get("error") or "request refused")
        if text.startswith("Unsupported type"):
            # pipecat's RTVI processor answers Convai's own message types this way while Convai's router
            # handles them: not an error for the engine (convai-apis.md §5).
            return []
        return [ev.ServerAck("error-response", False, text)]

    def usage_limit(self, p: dict[str, Any], now: float) -> list[ev.Event]:
        message = str(p.get("message") or f"usage limit reached ({p.get('quota_type', 'quota')})")
        return [ev.BackendError("usage_limit", message, fatal=True), ev.Closed("usage_limit", message)]

    def metrics(self, p: dict[str, Any], now: float) -> list[ev.Event]:
        if len(p) == 1:
            ((kind, data),) = p.items()
            return [ev.Metrics(str(kind), data)]
        return [ev.Metrics("custom", p)]


def _text(cls: type) -> Any:
    def handler(self: RtviTranslator, p: dict[str, Any], now: float) -> list[ev.Event]:
        text = p.get("text")
        return [cls(text)] if isinstance(text, str) and text else []

    return handler


_HANDLERS: dict[str, Any] = {
    "user-started-speaking": lambda self, p, now: [ev.TurnStart("voice")],
    "vad-user-started-speaking": lambda self, p, now: [ev.TurnStart("voice")],
    "vad-stt-started": lambda self, p, now: [ev.TurnStart("voice")],
    "user-transcription": RtviTranslator.user_transcription,
    "final-user-transcription": RtviTranslator.final_user_transcription,
    "bot-llm-text": _text(ev.BotText),
    "bot-started-speaking": RtviTranslator.bot_started,
    "bot-stopped-speaking": lambda self, p, now: [ev.BotSpeaking(False)],
    "action-response": RtviTranslator.actions,
    "bot-emotion": RtviTranslator.emotion,
    "behavior-tree-response": lambda self, p, now: [
        ev.Narrative(
            str(p.get("narrative_section_id") or ""),
            p.get("bt_code") if isinstance(p.get("bt_code"), str) else None,
            p.get("bt_constants") if isinstance(p.get("bt_constants"), str) else None,
        )
    ],
    "moderation-response": lambda self, p, now: [
        ev.Moderation(
            bool(p.get("result", True)),
            p.get("reason") if isinstance(p.get("reason"), str) else None,
            p.get("user_input") if isinstance(p.get("user_input"), str) else None,
        )
    ],
    "visemes": RtviTranslator.visemes,
    "neurosync-blendshapes": RtviTranslator.blendshapes,
    "chunked-neurosync-blendshapes": RtviTranslator.blendshapes,
    "neurosync-blendshapes-cancel": RtviTranslator.blend_cancel,
    "blendshape-turn-stats": lambda self, p, now: [ev.Metrics("blendshape_stats", p.get("stats", p))],
    "bot-turn-completed": RtviTranslator.turn_completed,
    "bot-interrupted": lambda self, p, now: [ev.TurnEnd(interrupted=True)],
    "audio-data": RtviTranslator.audio_data,
    "user-idle-warning": lambda self, p, now: [
        ev.IdleWarning(int(p.get("remaining_seconds") or 0), p.get("message") if p.get("message") else None)
    ],
    "session-ending": lambda self, p, now: [
        ev.Closed("idle" if p.get("reason") == "idle_timeout" else "backend", str(p.get("reason") or ""))
    ],
    "llm-no-response": lambda self, p, now: [
        ev.NoResponse(p.get("reason") if isinstance(p.get("reason"), str) else None)
    ],
    "usage-limit-reached": RtviTranslator.usage_limit,
    "metrics": RtviTranslator.metrics,
    "error": RtviTranslator.error,
    "error-response": RtviTranslator.error_response,
    "server-response": RtviTranslator.server_response,
    "interaction-created": lambda self, p, now: (
        [ev.Ready(p["character_session_id"])] if isinstance(p.get("character_session_id"), str) else []
    ),
}
