"""The protocol's rules as PROTOCOL.md states them, checked on every message a client receives.

Written from PROTOCOL.md and schema.json alone (no bridge import): a violation here means the daemon
broke the spec, or the spec does not say what the daemon does.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Any

SCHEMA_PATH = Path(__file__).resolve().parents[2] / "protocol" / "schema.json"
REPLIES = ("ack", "error", "welcome", "pong")
# Events PROTOCOL.md allows after turn_completed of their turn (§3 "Turns": late actions/emotion).
AFTER_COMPLETION = ("actions", "emotion", "narrative", "moderation")
VISEMES = 15


def load_schema() -> dict[str, Any]:
    return json.loads(SCHEMA_PATH.read_text(encoding="utf-8"))


def frame_lengths(rate: int, frame_ms: int, count: int) -> list[int]:
    """§5: frame k of a turn starts at floor(k * rate * frame_ms / 1000) samples."""
    size = Fraction(rate * frame_ms, 1000)
    return [int(size * (k + 1)) - int(size * k) for k in range(count)]


@dataclass
class _Turn:
    started_at: int  # index of the message that opened it
    completed: bool = False
    speaking: bool = False
    spoke: bool = False
    frames: int = 0
    samples: int = 0
    short_frame: bool = False
    last_ts: int | None = None
    last_viseme: int = -1


@dataclass
class _Session:
    audio: dict[str, int] | None = None
    turns: dict[int, _Turn] = field(default_factory=dict)
    last_turn: int = 0
    last_seq: int | None = None
    closed: bool = False


class Conformance:
    """Feed it every received message (header, frames); it collects rule violations as strings."""

    def __init__(self, schema: dict[str, Any] | None = None) -> None:
        self.schema = schema or load_schema()
        self.major = self.schema["protocol"]["major"]
        self.violations: list[str] = []
        self.sessions: dict[str, _Session] = {}
        self.outstanding: dict[int, str] = {}  # request id -> request type
        self.answered: set[int] = set()
        self.count = 0

    # -- what the client sent -----------------------------------------------------------------------
    def sent(self, header: dict[str, Any]) -> None:
        if header["type"] in REPLIES:
            return
        req_id = header.get("id")
        if req_id is not None:
            if req_id in self.outstanding or req_id in self.answered:
                self.violations.append(f"client reused request id {req_id}")
            self.outstanding[req_id] = header["type"]

    def opened(self, sid: str, audio: dict[str, int]) -> None:
        self.sessions.setdefault(sid, _Session()).audio = audio

    # -- what the daemon sent -----------------------------------------------------------------------
    def received(self, header: Any, frames: list[bytes]) -> None:
        self.count += 1
        where = f"#{self.count}"
        if not isinstance(header, dict):
            self._bad(where, f"frame 0 is not a map: {type(header).__name__}")
            return
        msg_type = header.get("type")
        where = f"#{self.count} {msg_type}"
        if header.get("v") != self.major:
            self._bad(where, f"v is {header.get('v')!r}, expected {self.major}")
        spec = self.schema["messages"].get(msg_type)
        if spec is None:
            self._bad(where, "type not in the schema")
            return
        if spec["direction"] not in ("daemon", "both"):
            self._bad(where, "a client→daemon type sent by the daemon")
        self._envelope(where, header, spec)
        self._fields(where, header, spec["fields"])
        declared = spec.get("frames", [])
        if len(frames) != len(declared):
            self._bad(where, f"{len(frames)} binary frames, schema declares {len(declared)}")
        self._reply(where, msg_type, header)
        sid = header.get("sid")
        if isinstance(sid, str) and spec["kind"] == "event":
            self._event(where, msg_type, header, frames, sid)

    def _bad(self, where: str, what: str) -> None:
        self.violations.append(f"{where}: {what}")

    def _envelope(self, where: str, header: dict[str, Any], spec: dict[str, Any]) -> None:
        for key in ("id", "ts"):
            if key in header and (not isinstance(header[key], int) or isinstance(header[key], bool)):
                self._bad(where, f"{key} is not an int")
        if "id" in header and isinstance(header["id"], int) and not 0 <= header["id"] <= 0xFFFFFFFF:
            self._bad(where, "id outside uint32")
        if spec["sid"] == "required" and not isinstance(header.get("sid"), str):
            self._bad(where, "sid missing")
        if spec["sid"] == "none" and "sid" in header:
            self._bad(where, "sid present on a connection-level message")
        names = {f["name"] for f in self.schema["envelope"]} | {f["name"] for f in spec["fields"]}
        for key, value in header.items():
            if value is None and key in names:
                self._bad(where, f"{key} is nil (optional fields are omitted, never nil)")

    def _fields(self, where: str, obj: dict[str, Any], fields: list[dict[str, Any]]) -> None:
        for f in fields:
            name = f["name"]
            if name not in obj:
                if f.get("required"):
                    self._bad(where, f"required field {name} missing")
                continue
            problem = self._type_problem(obj[name], f["type"], f.get("enum"))
            if problem:
                self._bad(where, f"{name}: {problem}")

    def _type_problem(self, value: Any, typ: str, enum: str | None = None) -> str | None:
        if typ == "any":
            return None
        if typ == "int":
            ok = isinstance(value, int) and not isinstance(value, bool)
        elif typ == "float":
            ok = isinstance(value, int | float) and not isinstance(value, bool)
        elif typ == "bool":
            ok = isinstance(value, bool)
        elif typ == "str":
            ok = isinstance(value, str)
            if ok and enum is not None and value not in self.schema["enums"][enum]:
                return f"{value!r} not in enum {enum}"
        elif typ == "map":
            ok = isinstance(value, dict)
        elif typ.startswith("list<"):
            if not isinstance(value, list):
                return "not a list"
            inner = typ[5:-1]
            return next((p for p in (self._type_problem(v, inner) for v in value) if p), None)
        elif typ.startswith("map<"):
            if not isinstance(value, dict):
                return "not a map"
            inner = typ[4:-1]
            return next((p for p in (self._type_problem(v, inner) for v in value.values()) if p), None)
        elif typ in self.schema["types"]:
            if not isinstance(value, dict):
                return f"not a {typ} map"
            sub = Conformance.__new__(Conformance)
            sub.schema, sub.violations = self.schema, []
            sub._fields(typ, value, self.schema["types"][typ])
            return "; ".join(sub.violations) or None
        else:
            return f"unknown schema type {typ}"
        return None if ok else f"{value!r} is not {typ}"

    def _reply(self, where: str, msg_type: str, header: dict[str, Any]) -> None:
        req_id = header.get("id")
        if msg_type not in REPLIES:
            if msg_type == "ping" and req_id is None:
                self._bad(where, "ping without id")
            return
        if req_id is None:
            if msg_type != "error":
                self._bad(where, "reply without id")
            return
        if req_id in self.answered:
            self._bad(where, f"second reply to request {req_id}")
            return
        request = self.outstanding.pop(req_id, None)
        if request is None:
            self._bad(where, f"reply to request id {req_id} the client never sent")
            return
        self.answered.add(req_id)
        expected = self.schema["messages"][request].get("reply")
        if msg_type != "error" and msg_type != expected:
            self._bad(where, f"{request} answered with {msg_type}, spec says {expected}")
        if msg_type == "welcome":
            major = str(header.get("protocol", "")).split(".")[0]
            if major != str(self.major):
                self._bad(where, f"welcome.protocol {header.get('protocol')!r} is not major {self.major}")
        sid = header.get("sid")
        if msg_type == "ack" and request in ("text", "end_of_utterance", "trigger"):
            turn = header.get("turn")
            session = self.sessions.get(sid or "")
            if not isinstance(turn, int):
                self._bad(where, f"ack of {request} without turn")
            elif session is not None and turn not in session.turns:
                self._bad(where, f"ack of {request} for turn {turn} before its turn_started (§3)")

    def _event(self, where: str, msg_type: str, h: dict[str, Any], frames: list[bytes], sid: str) -> None:
        s = self.sessions.setdefault(sid, _Session())
        if s.closed and msg_type != "error":
            self._bad(where, "event after session_closed")
        if msg_type == "session_opened":
            if s.audio is not None and h.get("audio") != s.audio:
                self._bad(where, f"audio {h.get('audio')} differs from the requested {s.audio}")
            s.audio = h.get("audio")
        elif msg_type == "session_closed":
            s.closed = True
            for turn_id, turn in s.turns.items():
                if not turn.completed:
                    self._bad(where, f"session closed with turn {turn_id} never completed")
        turn_id = h.get("turn")
        if msg_type == "turn_started":
            if isinstance(turn_id, int) and turn_id <= s.last_turn:
                self._bad(where, f"turn {turn_id} not above the previous turn {s.last_turn}")
            for prev_id, prev in s.turns.items():
                if not prev.completed:
                    self._bad(where, f"turn {turn_id} started while turn {prev_id} is not completed")
            s.last_turn = max(s.last_turn, turn_id if isinstance(turn_id, int) else 0)
            s.turns[turn_id] = _Turn(self.count)
            return
        if not isinstance(turn_id, int):
            return
        turn = s.turns.get(turn_id)
        if turn is None:
            self._bad(where, f"turn {turn_id} has no turn_started")
            return
        ts = h.get("ts")
        if isinstance(ts, int):
            if turn.last_ts is not None and ts < turn.last_ts:
                self._bad(where, f"ts went back {turn.last_ts - ts} µs within turn {turn_id}")
            turn.last_ts = ts if turn.last_ts is None else max(ts, turn.last_ts)
        if turn.completed and msg_type not in AFTER_COMPLETION:
            self._bad(where, f"after turn_completed of turn {turn_id}")
        if msg_type == "turn_completed":
            turn.completed = True
            if turn.speaking:
                self._bad(where, "turn completed between bot_started_speaking and bot_stopped_speaking")
        elif msg_type == "bot_started_speaking":
            if turn.speaking:
                self._bad(where, "bot_started_speaking twice")
            turn.speaking = turn.spoke = True
        elif msg_type == "bot_stopped_speaking":
            if not turn.speaking:
                self._bad(where, "bot_stopped_speaking without bot_started_speaking")
            turn.speaking = False
        elif msg_type == "audio_out":
            self._audio(where, h, frames, s, turn)
        elif msg_type == "visemes":
            weights = h.get("weights")
            if not isinstance(weights, list) or len(weights) != VISEMES:
                self._bad(where, f"visemes carries {len(weights) if isinstance(weights, list) else '?'} weights")
            offset = h.get("offset")
            if isinstance(offset, int):
                if offset < turn.last_viseme:
                    self._bad(where, "viseme offsets went back")
                turn.last_viseme = offset
        elif msg_type == "blendshapes":
            want = h.get("count", 0) * h.get("width", 0) * 4
            if frames and len(frames[0]) != want:
                self._bad(where, f"blendshape payload {len(frames[0])} bytes, count*width*4 = {want}")

    def _audio(self, where: str, h: dict[str, Any], frames: list[bytes], s: _Session, turn: _Turn) -> None:
        if not turn.speaking:
            self._bad(where, "audio_out outside bot_started/stopped_speaking")
        seq = h.get("seq")
        if s.last_seq is not None and seq != s.last_seq + 1:
            self._bad(where, f"seq {seq} after {s.last_seq}")
        s.last_seq = seq
        samples, channels, rate = h.get("samples", 0), h.get("channels", 0), h.get("sample_rate", 0)
        if frames and len(frames[0]) != samples * channels * 2:
            self._bad(where, f"payload {len(frames[0])} bytes for {samples} samples x {channels} ch")
        if h.get("offset") != turn.samples:
            self._bad(where, f"offset {h.get('offset')}, expected {turn.samples} (sum of the turn's samples)")
        if s.audio is not None:
            if (rate, channels) != (s.audio["sample_rate"], s.audio["channels"]):
                self._bad(where, f"format {rate}/{channels} differs from the session's {s.audio}")
            want = frame_lengths(s.audio["sample_rate"], s.audio["frame_ms"], turn.frames + 1)[-1]
            if turn.short_frame:
                self._bad(where, "audio after the turn's short (final) frame")
            if samples < want:
                turn.short_frame = True  # §5: only the last frame of a turn may be shorter
                if samples <= 0:
                    self._bad(where, "empty audio_out")
            elif samples > want:
                self._bad(where, f"frame {turn.frames} has {samples} samples, §5 says {want}")
        turn.frames += 1
        turn.samples += samples
