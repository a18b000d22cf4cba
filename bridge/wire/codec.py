"""Encode and decode protocol messages, validated against the schema.

Encoding is canonical (envelope keys, then fields in schema order; optional fields omitted; ints in
their smallest msgpack form; floats as float64) so every implementation produces the same bytes and
the golden vectors can be compared byte for byte.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

import msgpack

from bridge.wire.errors import ProtocolError
from bridge.wire.schema import Field, MessageSpec, Schema, load_schema

FRAME_BYTES_PER_ITEM = {"pcm_s16le": 2, "f32le": 4}
MAX_DEPTH = 16


@dataclass
class Message:
    """A decoded message: its header map (canonical order) and raw binary frames."""

    type: str
    header: dict[str, Any]
    frames: list[bytes] = field(default_factory=list)
    received_us: int = 0  # set by receivers: when the bytes came off the socket (for latency)

    @property
    def id(self) -> int | None:
        return self.header.get("id")

    @property
    def sid(self) -> str | None:
        return self.header.get("sid")

    def __getitem__(self, key: str) -> Any:
        return self.header[key]

    def get(self, key: str, default: Any = None) -> Any:
        return self.header.get(key, default)


def now_us() -> int:
    return time.time_ns() // 1000


class Codec:
    """Stateless apart from the schema; one instance can be shared."""

    def __init__(self, schema: Schema | None = None, max_message_bytes: int = 1 << 20) -> None:
        self.schema = schema or load_schema()
        self.max_message_bytes = max_message_bytes

    # -- encoding -------------------------------------------------------------------------------
    def build(self, msg_type: str, fields: dict[str, Any], frames: list[bytes] | tuple[bytes, ...] = ()) -> Message:
        """Validate and put a message in canonical order (raises ProtocolError)."""
        spec = self._spec(msg_type, fields.get("id"), fields.get("sid"))
        header = self._canonical(spec, {"v": self.schema.major, **fields, "type": msg_type})
        frames = list(frames)
        self._check_frames(spec, header, frames)
        return Message(msg_type, header, frames)

    def encode(
        self, msg_type: str, fields: dict[str, Any], frames: list[bytes] | tuple[bytes, ...] = ()
    ) -> list[bytes]:
        msg = self.build(msg_type, fields, frames)
        return [pack(msg.header), *msg.frames]

    def encode_message(self, msg: Message) -> list[bytes]:
        return [pack(msg.header), *msg.frames]

    # -- decoding -------------------------------------------------------------------------------
    def decode(self, parts: list[bytes]) -> Message:
        """Parse and validate a multipart message (raises ProtocolError with a stable code)."""
        if not parts:
            raise ProtocolError("bad_message", "empty message")
        total = sum(len(p) for p in parts)
        if total > self.max_message_bytes:
            raise ProtocolError("message_too_large", f"message of {total} bytes exceeds {self.max_message_bytes}")
        try:
            header = msgpack.unpackb(parts[0], raw=False, strict_map_key=True)
        except Exception as exc:  # msgpack raises several unrelated types
            raise ProtocolError("bad_message", f"header is not valid msgpack: {type(exc).__name__}") from exc
        if not isinstance(header, dict):
            raise ProtocolError("bad_message", "header must be a msgpack map")
        req_id = header.get("id") if isinstance(header.get("id"), int) else None
        sid = header.get("sid") if isinstance(header.get("sid"), str) else None
        version = header.get("v")
        if not isinstance(version, int) or isinstance(version, bool):
            raise ProtocolError("missing_field", "envelope field 'v' (protocol major) is required", req_id, sid)
        if version != self.schema.major:
            raise ProtocolError(
                "version_mismatch",
                f"message is protocol v{version}, this side speaks v{self.schema.major}",
                req_id,
                sid,
            )
        msg_type = header.get("type")
        if not isinstance(msg_type, str):
            raise ProtocolError("missing_field", "envelope field 'type' is required", req_id, sid)
        spec = self._spec(msg_type, req_id, sid)
        canon = self._canonical(spec, header)
        frames = list(parts[1:])
        self._check_frames(spec, canon, frames)
        return Message(msg_type, canon, frames)

    # -- validation -----------------------------------------------------------------------------
    def _spec(self, msg_type: str, req_id: Any, sid: Any) -> MessageSpec:
        spec = self.schema.messages.get(msg_type)
        if spec is None:
            raise ProtocolError(
                "unknown_type",
                f"unknown message type {msg_type!r}",
                req_id if isinstance(req_id, int) else None,
                sid if isinstance(sid, str) else None,
            )
        return spec

    def _canonical(self, spec: MessageSpec, src: dict[str, Any]) -> dict[str, Any]:
        req_id = src.get("id") if isinstance(src.get("id"), int) else None
        sid = src.get("sid") if isinstance(src.get("sid"), str) else None
        out: dict[str, Any] = {}

        def fail(code: str, text: str) -> ProtocolError:
            return ProtocolError(code, f"{spec.name}: {text}", req_id, sid)

        for f in self.schema.envelope:
            if f.name in src and src[f.name] is not None:
                out[f.name] = self._value(f, src[f.name], f.name, fail, 0)
        if spec.kind in ("request", "reply") and spec.name != "error" and "id" not in out:
            raise fail("missing_field", "'id' is required")
        if spec.sid == "required" and "sid" not in out:
            raise fail("missing_field", "'sid' is required")
        if spec.sid == "none" and "sid" in out:
            del out["sid"]
        for f in spec.fields:
            value = src.get(f.name)
            if value is None:
                if f.required:
                    raise fail("missing_field", f"'{f.name}' is required")
                continue
            out[f.name] = self._value(f, value, f.name, fail, 0)
        return out

    def _value(self, f: Field, value: Any, path: str, fail: Any, depth: int) -> Any:
        return self._typed(f.type, f.enum, value, path, fail, depth)

    def _typed(self, t: str, enum: tuple[str, ...] | None, value: Any, path: str, fail: Any, depth: int) -> Any:
        if depth > MAX_DEPTH:
            raise fail("invalid_field", f"'{path}' nests too deeply")
        if t == "str":
            if not isinstance(value, str):
                raise fail("invalid_field", f"'{path}' must be a string")
            if enum is not None and value not in enum:
                raise fail("invalid_field", f"'{path}' must be one of {', '.join(enum)}")
            return value
        if t == "int":
            if not isinstance(value, int) or isinstance(value, bool):
                raise fail("invalid_field", f"'{path}' must be an integer")
            return value
        if t == "float":
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise fail("invalid_field", f"'{path}' must be a number")
            return float(value)
        if t == "bool":
            if not isinstance(value, bool):
                raise fail("invalid_field", f"'{path}' must be a boolean")
            return value
        if t == "any":
            self._check_any(value, path, fail, depth)
            return value
        if t == "map":
            if not isinstance(value, dict) or not all(isinstance(k, str) for k in value):
                raise fail("invalid_field", f"'{path}' must be a map with string keys")
            self._check_any(value, path, fail, depth)
            return value
        if t == "map<str>":
            if not isinstance(value, dict) or not all(
                isinstance(k, str) and isinstance(v, str) for k, v in value.items()
            ):
                raise fail("invalid_field", f"'{path}' must be a map of strings to strings")
            return value
        if t.startswith("list<"):
            inner = t[5:-1]
            if not isinstance(value, list | tuple):
                raise fail("invalid_field", f"'{path}' must be an array")
            return [self._typed(inner, None, v, f"{path}[{i}]", fail, depth + 1) for i, v in enumerate(value)]
        struct = self.schema.types.get(t)
        if struct is None:
            raise fail("internal", f"schema type {t!r} unknown")
        if not isinstance(value, dict):
            raise fail("invalid_field", f"'{path}' must be a map ({t})")
        out = {}
        for sf in struct:
            sv = value.get(sf.name)
            if sv is None:
                if sf.required:
                    raise fail("missing_field", f"'{path}.{sf.name}' is required")
                continue
            out[sf.name] = self._typed(sf.type, sf.enum, sv, f"{path}.{sf.name}", fail, depth + 1)
        return out

    def _check_any(self, value: Any, path: str, fail: Any, depth: int) -> None:
        if depth > MAX_DEPTH:
            raise fail("invalid_field", f"'{path}' nests too deeply")
        if isinstance(value, dict):
            for k, v in value.items():
                if not isinstance(k, str):
                    raise fail("invalid_field", f"'{path}' map keys must be strings")
                self._check_any(v, path, fail, depth + 1)
        elif isinstance(value, list | tuple):
            for v in value:
                self._check_any(v, path, fail, depth + 1)
        elif not (value is None or isinstance(value, str | int | float | bool | bytes)):
            raise fail("invalid_field", f"'{path}' holds an unsupported value")

    def _check_frames(self, spec: MessageSpec, header: dict[str, Any], frames: list[bytes]) -> None:
        req_id, sid = header.get("id"), header.get("sid")
        if len(frames) != len(spec.frames):
            raise ProtocolError(
                "bad_message",
                f"{spec.name}: expected {len(spec.frames)} binary frame(s), got {len(frames)}",
                req_id,
                sid,
            )
        for kind, data in zip(spec.frames, frames, strict=True):
            if kind == "pcm_s16le":
                expected = header["samples"] * header["channels"] * 2
            else:
                expected = header["width"] * header["count"] * FRAME_BYTES_PER_ITEM[kind]
            if len(data) != expected:
                raise ProtocolError(
                    "invalid_field",
                    f"{spec.name}: binary frame has {len(data)} bytes, header declares {expected}",
                    req_id,
                    sid,
                )


def pack(header: dict[str, Any]) -> bytes:
    return msgpack.packb(header, use_bin_type=True)
