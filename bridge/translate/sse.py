"""`/connect/stream` SSE lines → session events.

Each `data:` line is one JSON object: a `connection-started` with the character session id, then
RTVI-shaped bot events, then `connection-stoppped` (three p's, as Convai spells it; the correct
spelling is accepted too).
"""

from __future__ import annotations

import json
from typing import Any

from bridge.translate import events as ev

TERMINAL = ("connection-stoppped", "connection-stopped")


def parse_sse_lines(buffer: str) -> tuple[list[str], str]:
    """Split complete SSE events out of a text buffer; returns (data payloads, remainder)."""
    payloads = []
    buffer = buffer.replace("\r\n", "\n")
    while "\n\n" in buffer:
        block, buffer = buffer.split("\n\n", 1)
        data = [line[5:].lstrip(" ") for line in block.split("\n") if line.startswith("data:")]
        if data:
            payloads.append("\n".join(data))
    return payloads, buffer


def translate_sse(payload: str) -> tuple[list[ev.Event], bool]:
    """Events for one SSE payload, and whether it ends the stream."""
    try:
        obj: Any = json.loads(payload)
    except ValueError:
        return [ev.Passthrough("sse-unparsed", payload[:500])], False
    if not isinstance(obj, dict):
        return [ev.Passthrough("sse-unparsed", obj)], False
    kind = obj.get("type")
    data = obj.get("data") if isinstance(obj.get("data"), dict) else {}
    if kind == "connection-started":
        message = obj.get("message") if isinstance(obj.get("message"), dict) else {}
        csid = message.get("character_session_id")
        return ([ev.Ready(csid)] if isinstance(csid, str) and csid else []), False
    if kind in TERMINAL:
        return [], True
    if kind == "bot-llm-text":
        text = data.get("text")
        return ([ev.BotText(text)] if isinstance(text, str) and text else []), False
    if kind == "bot-transcription":
        text = data.get("text")
        return ([ev.BotReply(text)] if isinstance(text, str) else []), False
    if kind in ("bot-llm-started", "bot-llm-stopped"):
        return [], False
    if kind == "error":
        message = data.get("error") or obj.get("detail") or "stream error"
        return [ev.BackendError("convai_error", str(message), fatal=False)], False
    return [ev.Passthrough(str(kind), data or obj)], False
