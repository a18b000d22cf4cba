"""Load protocol/schema.json, the one machine-readable description of the local wire.

Everything else (codec, vectors, PROTOCOL.md tables) derives from this file, so a protocol change is
a schema change first.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

_PACKAGED = Path(__file__).with_name("schema.json")
_REPO = Path(__file__).resolve().parents[2] / "protocol" / "schema.json"


@dataclass(frozen=True)
class Field:
    name: str
    type: str
    required: bool = False
    enum: tuple[str, ...] | None = None
    doc: str = ""


@dataclass(frozen=True)
class MessageSpec:
    name: str
    direction: str  # client | daemon | both
    kind: str  # request | reply | event | stream
    sid: str  # none | optional | required
    fields: tuple[Field, ...]
    frames: tuple[str, ...] = ()
    reply: str | None = None
    doc: str = ""
    example: dict[str, Any] = field(default_factory=dict)
    example_frames: tuple[str, ...] = ()


@dataclass(frozen=True)
class Schema:
    major: int
    minor: int
    version: str
    envelope: tuple[Field, ...]
    types: dict[str, tuple[Field, ...]]
    messages: dict[str, MessageSpec]
    errors: dict[str, dict[str, Any]]
    enums: dict[str, tuple[str, ...]]
    raw: dict[str, Any]


def schema_path() -> Path:
    return _PACKAGED if _PACKAGED.exists() else _REPO


def _fields(items: list[dict[str, Any]], enums: dict[str, tuple[str, ...]]) -> tuple[Field, ...]:
    out = []
    for item in items:
        enum = item.get("enum")
        out.append(
            Field(
                name=item["name"],
                type=item["type"],
                required=bool(item.get("required", False)),
                enum=enums[enum] if isinstance(enum, str) else None,
                doc=item.get("doc", ""),
            )
        )
    return tuple(out)


@cache
def load_schema(path: str | None = None) -> Schema:
    raw = json.loads(Path(path or schema_path()).read_text(encoding="utf-8"))
    enums = {k: tuple(v) for k, v in raw["enums"].items()}
    types = {k: _fields(v, enums) for k, v in raw["types"].items()}
    messages = {
        name: MessageSpec(
            name=name,
            direction=m["direction"],
            kind=m["kind"],
            sid=m["sid"],
            fields=_fields(m["fields"], enums),
            frames=tuple(m.get("frames", ())),
            reply=m.get("reply"),
            doc=m.get("doc", ""),
            example=m.get("example", {}),
            example_frames=tuple(m.get("example_frames", ())),
        )
        for name, m in raw["messages"].items()
    }
    proto = raw["protocol"]
    return Schema(
        major=proto["major"],
        minor=proto["minor"],
        version=proto["version"],
        envelope=_fields(raw["envelope"], enums),
        types=types,
        messages=messages,
        errors=raw["errors"],
        enums=enums,
        raw=raw,
    )
