"""Convai Live API / RTVI data-channel messages → session events.

The only module that knows the live message shapes. It accepts all three envelopes (top-level
RTVI, `server-message`-wrapped Convai events, flat `server-response`), drops the second copy of a
message that arrives in two shapes, reads both `action-response` formats, and passes unknown types
through as `Passthrough` so nothing is dropped silently. Types it ignores on purpose are listed in
IGNORED with the reason.

It also knows the other direction: which peer a `bot-ready` describes (Convai's router, or a stock
pipecat/RTVI bot that only speaks standard RTVI), the client message each engine request becomes for
that peer (`outbound`), and so which capabilities a session really has (`capabilities_for`).
"""

from __future__ import annotations

import base64
import binascii
import json
import time
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from bridge.audio.wav import decode_wav
from bridge.translate import events as ev
from bridge.translate.blendshape_names import INDEX as BLENDSHAPE_INDEX
from bridge.translate.rest import parse_actions

VISEME_FPS = 100  # Convai sends one viseme frame per message; clients (UE) play them at 100 fps
VISEME_KEYS = ("sil", "pp", "ff", "th", "dd", "kk", "ch", "ss", "nn", "rr", "aa", "e", "ih", "oh", "ou")

# Known types with nothing for the engine: why each is ignored.
IGNORED = {
    "bot-ready": "handled by the backend's handshake",
    "user-stopped-speaking": "the utterance end is implied by the final transcript",
    "vad-stt-stopped": "as user-stopped-speaking",
    "vad-user-stopped-speaking": "as user-stopped-speaking",
    "user-llm-text": "duplicate of the final user transcript",
    "user-audio-level": "per-frame level, too chatty to forward",
    "bot-audio-level": "per-frame level, too chatty to forward",
    "bot-tts-audio": "audio arrives on the media track",
    "reset-idle-timer": "acknowledged by server-response",
    "llm-raw-text": "RTVI 2.2 copy of bot-llm-text, only sent to 2.2 clients",
    "tts-raw-text": "RTVI 2.2 copy of bot-tts-text, only sent to 2.2 clients",
    "stt-raw-text": "RTVI 2.2 copy of the user transcript, only sent to 2.2 clients",
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
# Ids of Convai's bot-ready `about` (multi-character docs, the emulator); a stock pipecat bot sends
# {library: "pipecat-ai", library_version} and, from RTVI 2.2, top-level `capabilities`.
CONVAI_ABOUT_KEYS = ("character_session_id", "character_id", "room_session_id", "membership_id")
# Engine request → (Convai client message type, capability the session advertises for it).
CONVAI_REQUESTS = {
    "text": "user_text_message",
    "trigger": "trigger-message",
    "end_of_utterance": "force-user-stopped-speaking",
    "interrupt": "interrupt-bot",
    "context_update": "context-update",
    "dynamic_info": "update-dynamic-info",
    "scene_update": "update-scene-metadata",
    "template_keys": "update-template-keys",
    "tts_toggle": "tts-toggle",
    "stt_toggle": "stt-toggle",
    "reset_idle_timer": "reset-idle-timer",
}
CAPABILITY_OF = {
    "trigger": "triggers",
    "context_update": "context",
    "dynamic_info": "context",
    "scene_update": "context",
    "template_keys": "context",
    "tts_toggle": "tts_toggle",
    "stt_toggle": "stt_toggle",
    "interrupt": "interrupt",
}


@dataclass(frozen=True)
class Peer:
    """What answered `client-ready`: Convai's router (`convai`) or a standard RTVI bot (`rtvi`)."""

    dialect: str = "convai"
    version: str | None = None
    library: str | None = None
    capabilities: dict[str, Any] = field(default_factory=dict)  # RTVI 2.2 bot-ready capabilities


def peer_from_bot_ready(message: dict[str, Any], convai_seen: bool) -> Peer:
    """Classify the peer from its bot-ready (and whether a Convai-only event such as interaction-created came)."""
    data = message.get("data") if isinstance(message.get("data"), dict) else {}
    about = data.get("about") if isinstance(data.get("about"), dict) else {}
    caps = data.get("capabilities") if isinstance(data.get("capabilities"), dict) else {}
    version = data.get("version") if isinstance(data.get("version"), str) else None
    library = about.get("library") if isinstance(about.get("library"), str) else None
    convai = convai_seen or any(about.get(k) for k in CONVAI_ABOUT_KEYS)
    return Peer("convai" if convai else "rtvi", version, library, caps)


def capabilities_for(peer: Peer, full: tuple[str, ...]) -> tuple[str, ...]:
    """The backend's capabilities that this peer really serves (RTVI 2.2 bots say what media they take)."""
    if peer.dialect == "convai":
        return full
    keep = {"audio_in", "audio_out", "text_stream", "lipsync", "interrupt"}  # interrupt: the daemon cuts locally
    for media in ("audio_in", "audio_out"):
        if peer.capabilities and not peer.capabilities.get(media, True):
            keep.discard(media)
    if "audio_out" not in keep:
        keep.discard("lipsync")
    return tuple(c for c in full if c in keep)


def outbound(peer: Peer, request: str, args: dict[str, Any]) -> tuple[str, Any] | None:
    """(message type, data) for an engine request on this peer; None when the peer has no such message.

    Shapes follow what Convai's own clients send: text as Unity/UE do (`message_id` echoes the id),
    a trigger with only the fields that are set (web SDK), scene metadata as a bare array (newest Unity
    and the UE plugin; older Unity sent {metadata: [...]}, the docs {scene_metadata: [...]}).
    """
    if peer.dialect != "convai":
        if request == "text":
            options = {"run_immediately": True, "audio_response": bool(args.get("voice", True))}
            return "send-text", {"content": args["text"], "options": options}
        return None
    kind = CONVAI_REQUESTS.get(request)
    if kind is None:
        return None
    if request == "text":
        data: Any = {"text": args["text"]}
        if args.get("message_id"):
            data["message_id"] = args["message_id"]
    elif request == "trigger":
        data = {}
        if args.get("name"):
            data["trigger_name"] = args["name"]
        if args.get("message"):
            data["trigger_message"] = args["message"]
    elif request == "dynamic_info":
        data = {"dynamic_info": args["info"]}
    elif request == "scene_update":
        data = list(args["scene"])
    elif request == "template_keys":
        data = {"template_keys": args["keys"]}
    elif request == "tts_toggle":
        data = {"enabled": bool(args["enabled"])}
    elif request == "stt_toggle":
        data = {"muted": bool(args["muted"])}
    elif request == "context_update":
        data = dict(args)
    else:
        data = {}
    return kind, data


def ack_type(peer: Peer, request: str) -> str | None:
    """The `event_type` of the Convai server-response answering `request` (None: answered by id only)."""
    return CONVAI_REQUESTS.get(request) if peer.dialect == "convai" else None


def client_ready(version: str, library_version: str) -> tuple[str, dict[str, Any]]:
    about = {"library": "convai-bridge", "library_version": library_version, "platform": "daemon"}
    return "client-ready", {"version": version, "about": about}


REQUEST_ID = "_request_id"  # payload key for the id a server echoes; not part of deduplication


def demux(message: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    """(event type, payload) for any of the three envelope shapes."""
    kind = message.get("type")
    data = message.get("data")
    if kind == "server-message" and isinstance(data, dict) and isinstance(data.get("type"), str):
        payload = {k: v for k, v in data.items() if k not in ("type", "label")}
        return data["type"], payload
    request_id = message.get("id") if isinstance(message.get("id"), str) and message.get("id") else None
    if kind == "server-response":
        if isinstance(data, dict) and ("event_type" in data or "status" in data or "t" in data):
            payload = dict(data)
        else:
            payload = {k: v for k, v in message.items() if k not in ("type", "label", "id")}
        if request_id:
            payload[REQUEST_ID] = request_id
        return "server-response", payload
    if isinstance(data, dict):
        payload = dict(data)
        if request_id and kind == "error-response":
            payload[REQUEST_ID] = request_id
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
        self._reply_texts: set[str] = set()  # which text streams this reply has used (llm, transcription, output)
        self._outputs: set[str] = set()

    def _new_reply(self) -> None:
        """A user turn began or the reply ended: lip-sync clocks and text sources start over."""
        self._blend_frames = 0
        self._viseme_frames = 0
        self._reply_texts.clear()
        self._outputs.clear()

    def _duplicate(self, kind: str, payload: dict[str, Any], wrapped: bool, now: float) -> bool:
        key = kind + json.dumps({k: v for k, v in payload.items() if k != REQUEST_ID}, sort_keys=True, default=str)
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
            out = handler(self, p, now)
            if kind in REPLY_BOUNDARIES:
                self._new_reply()
            return out
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

    def user_input(self, p: dict[str, Any], now: float) -> list[ev.Event]:
        """RTVI 1.x/2.x `user-input`: a transcript, or the echo of a `send-text` (answers it by msg_id)."""
        text = p.get("text")
        out: list[ev.Event] = []
        if isinstance(p.get("msg_id"), str):
            out.append(ev.ServerAck("send-text", True, request_id=p["msg_id"]))
        if p.get("input_type") == "backchannel" or not isinstance(text, str) or not text:
            return out
        if p.get("final", True):
            return self._final_transcript(text, now) + out
        return [ev.UserTranscript(text, False), *out]

    def bot_text(self, p: dict[str, Any], now: float, source: str) -> list[ev.Event]:
        """One reply's text from its first source: bot-llm-text, else bot-transcription, else bot-output.

        Convai sends bot-llm-text and, on voice turns, bot-transcription sentences of the same text;
        a bot may send only the sentence-level kind (RTVI 2.x bots only bot-output), which must not be lost.
        """
        text = p.get("text")
        if not isinstance(text, str) or not text:
            return []
        rank = ("llm", "transcription", "output")
        if any(s in self._reply_texts for s in rank[: rank.index(source)]):
            return []
        if source == "output":
            key = str(p.get("segment_id") or text)
            if key in self._outputs:
                return []
            self._outputs.add(key)
        if source != "llm" and "llm" not in self._reply_texts and self._reply_texts - {source}:
            return []
        self._reply_texts.add(source)
        return [ev.BotText(text)]

    def subtitle(self, p: dict[str, Any], now: float) -> list[ev.Event]:
        """bot-tts-text: the words being spoken now. Word timings are kept when the payload carries them
        (`words: [{text|word, start_ms|start, end_ms|end}]`, seconds for start/end)."""
        text = p.get("text")
        words: list[ev.Word] = []
        raw = p.get("words")
        if isinstance(raw, list):
            for w in raw:
                if not isinstance(w, dict):
                    continue
                word = w.get("text", w.get("word"))
                if not isinstance(word, str):
                    continue
                words.append(ev.Word(word, _ms(w, "start"), _ms(w, "end")))
        if not isinstance(text, str) or not text:
            text = " ".join(w.text for w in words)
        return [ev.Subtitle(text, tuple(words))] if text else []

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
        """NeuroSync frames, indexed within the reply: the payload's `start_frame_index` when present
        (Unity reads it), else a count of the reply's frames so far, restarted when `sequence` is 0.
        Frames are float lists or named objects ({"JawOpen": 0.4, ...}, which Unity also accepts)."""
        raw = p.get("blendshapes")
        if isinstance(raw, dict) or (isinstance(raw, list) and raw and not isinstance(raw[0], list | dict)):
            raw = [raw]
        if not isinstance(raw, list) or not raw:
            return []
        fmt = p.get("format") if p.get("format") in ("arkit", "mha") else None
        if fmt is None:
            first_raw = raw[0]
            size = len(first_raw) if isinstance(first_raw, list | dict) else 0
            named_arkit = isinstance(first_raw, dict) and any(k in BLENDSHAPE_INDEX["arkit"] for k in first_raw)
            fmt = "arkit" if named_arkit or (isinstance(first_raw, list) and size < 100) else "mha"
        frames: list[list[float]] = []
        for f in raw:
            try:
                if isinstance(f, list) and f:
                    frames.append([float(x) for x in f])
                elif isinstance(f, dict) and f:
                    frames.append(_named_frame(f, fmt))
            except (TypeError, ValueError):
                continue
        if not frames:
            return []
        fps = _positive_int(p.get("fps")) or self.blendshape_fps
        if p.get("sequence") == 0:
            self._blend_frames = 0
        start = p.get("start_frame_index")
        first = start if isinstance(start, int) and start >= 0 else self._blend_frames
        self._blend_frames = first + len(frames)
        self._blend_fps = fps
        return [ev.Blendshapes(frames, fmt, fps, first)]

    def blend_cancel(self, p: dict[str, Any], now: float) -> list[ev.Event]:
        index = p.get("valid_through_frame_index")
        fps = _positive_int(p.get("fps")) or getattr(self, "_blend_fps", self.blendshape_fps)
        return [ev.LipsyncCancel(index if isinstance(index, int) else None, fps)]

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
        request_id = p.get(REQUEST_ID)
        if "t" in p and "event_type" not in p:  # standard RTVI server-response {t, d} to a client-message
            d = p.get("d")
            if isinstance(d, dict) and "event_type" in d:  # Convai's ack carried inside (WebSocket transport)
                return self.server_response({**d, REQUEST_ID: request_id}, now)
            return [ev.ServerAck(str(p.get("t")), True, None, d if isinstance(d, dict) else {"d": d}, request_id)]
        status = str(p.get("status", "success"))
        extras = p.get("extras") if isinstance(p.get("extras"), dict) else {}
        message = p.get("message") if isinstance(p.get("message"), str) else None
        return [ev.ServerAck(str(p.get("event_type", "")), status != "error", message, extras, request_id)]

    def error(self, p: dict[str, Any], now: float) -> list[ev.Event]:
        """RTVI `error {error, fatal}`: fatal only when the server says so (Unity treats a missing flag as
        non-fatal; pipecat always sets it)."""
        text = p.get("error") or p.get("message") or "character service error"
        return [ev.BackendError("convai_error", str(text), fatal=p.get("fatal") is True)]

    def error_response(self, p: dict[str, Any], now: float) -> list[ev.Event]:
        """`error-response {error}` answers one request (same id). "Unsupported type <t>" marks a request the
        peer's RTVI processor does not know: noise on Convai, whose router still serves the type
        (convai-apis.md §5), but a refusal from a stock RTVI bot; the backend tells the two apart."""
        text = str(p.get("error") or "request refused")
        request_id = p.get(REQUEST_ID)
        extras = {"unsupported": True} if text.startswith("Unsupported type") else {}
        return [ev.ServerAck("error-response", False, text, extras, request_id)]

    def usage_limit(self, p: dict[str, Any], now: float) -> list[ev.Event]:
        message = str(p.get("message") or f"usage limit reached ({p.get('quota_type', 'quota')})")
        return [ev.BackendError("usage_limit", message, fatal=True), ev.Closed("usage_limit", message)]

    def metrics(self, p: dict[str, Any], now: float) -> list[ev.Event]:
        """RTVI metrics group measurements by kind (pipecat: ttfb, processing, tokens, characters); one
        protocol event per kind. A payload that is not a map of lists is passed on whole as custom."""
        if p and all(isinstance(data, list) for data in p.values()):
            return [ev.Metrics(str(kind), data) for kind, data in p.items()]
        return [ev.Metrics("custom", p)]


def _ms(w: dict[str, Any], key: str) -> int | None:
    value = w.get(f"{key}_ms")
    if isinstance(value, int | float) and not isinstance(value, bool):
        return int(value)
    value = w.get(key, w.get(f"{key}_time"))
    if isinstance(value, int | float) and not isinstance(value, bool):
        return int(round(value * 1000))
    return None


def _positive_int(value: Any) -> int | None:
    if isinstance(value, int | float) and not isinstance(value, bool) and value > 0:
        return int(round(value))
    return None


def _named_frame(frame: dict[str, Any], fmt: str) -> list[float]:
    index = BLENDSHAPE_INDEX[fmt]
    out = [0.0] * len(index)
    for name, value in frame.items():
        i = index.get(name)
        if i is None:
            i = index.get(name[:1].upper() + name[1:]) if isinstance(name, str) and name else None
        if i is not None:
            out[i] = float(value)
    return out


_HANDLERS: dict[str, Any] = {
    "user-started-speaking": lambda self, p, now: [ev.TurnStart("voice")],
    "vad-user-started-speaking": lambda self, p, now: [ev.TurnStart("voice")],
    "vad-stt-started": lambda self, p, now: [ev.TurnStart("voice")],
    "user-transcription": RtviTranslator.user_transcription,
    "final-user-transcription": RtviTranslator.final_user_transcription,
    "user-input": RtviTranslator.user_input,
    "bot-llm-text": lambda self, p, now: self.bot_text(p, now, "llm"),
    "bot-transcription": lambda self, p, now: self.bot_text(p, now, "transcription"),
    "bot-output": lambda self, p, now: self.bot_text(p, now, "output"),
    "bot-tts-text": RtviTranslator.subtitle,
    "bot-llm-started": lambda self, p, now: [ev.ReplyPhase("llm", True)],
    "bot-llm-stopped": lambda self, p, now: [ev.ReplyPhase("llm", False)],
    "bot-tts-started": lambda self, p, now: [ev.ReplyPhase("tts", True)],
    "bot-tts-stopped": lambda self, p, now: [ev.ReplyPhase("tts", False)],
    "bot-started-speaking": lambda self, p, now: [ev.BotSpeaking(True)],
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

# Types after which the next bot output belongs to a new reply (lip-sync frame counters, text sources).
REPLY_BOUNDARIES = {
    "user-started-speaking",
    "vad-user-started-speaking",
    "vad-stt-started",
    "final-user-transcription",
    "bot-turn-completed",
    "bot-interrupted",
}
