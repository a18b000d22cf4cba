"""REST getResponse JSON → session events.

The reply arrives whole: text, an optional base64 WAV, and (when actions were requested) an
`actionSequence` of lines like "Move To cube". Emotion and narrative fields are not part of this
surface (see the reference's certainty table), so none are invented here.
"""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from bridge.audio.wav import decode_wav
from bridge.translate import events as ev


@dataclass
class RestReply:
    session_id: str | None
    events: list[ev.Event] = field(default_factory=list)
    audio: tuple[np.ndarray, int, int] | None = None


def parse_action_line(line: str, allowed: list[str] | None) -> dict[str, str]:
    """'Move To cube' → {name: 'Move To', target: 'cube'}, using the allowed names to split."""
    text = " ".join(line.split())
    for name in sorted(allowed or [], key=len, reverse=True):
        if text.lower() == name.lower():
            return {"name": name}
        if text.lower().startswith(name.lower() + " "):
            return {"name": name, "target": text[len(name) + 1 :]}
    return {"name": text}


def parse_actions(value: Any, allowed: list[str] | None) -> list[dict[str, str]]:
    if isinstance(value, str):
        lines = [ln.strip() for ln in value.replace(",", "\n").splitlines()]
        return [parse_action_line(ln, allowed) for ln in lines if ln]
    if isinstance(value, list):
        out = []
        for item in value:
            if isinstance(item, str) and item.strip():
                out.append(parse_action_line(item, allowed))
            elif isinstance(item, dict) and isinstance(item.get("name"), str):
                action = {"name": item["name"]}
                if isinstance(item.get("target"), str) and item["target"]:
                    action["target"] = item["target"]
                out.append(action)
        return out
    return []


def translate_reply(body: dict[str, Any], allowed_actions: list[str] | None, voice_input: bool) -> RestReply:
    session_id = body.get("sessionID")
    reply = RestReply(session_id=str(session_id) if session_id not in (None, "", "-1") else None)
    events = reply.events
    if session_id not in (None, "", "-1"):
        events.append(ev.Ready(str(session_id)))
    if voice_input:
        query = body.get("UserQuery") or body.get("userQuery")
        if isinstance(query, str):
            events.append(ev.UserTranscript(query, True))
    text = body.get("text") if isinstance(body.get("text"), str) else ""
    if text:
        events.append(ev.BotText(text))
        events.append(ev.BotReply(text))
    actions = parse_actions(body.get("actionSequence"), allowed_actions)
    if actions:
        events.append(ev.Actions(actions))
    audio_b64 = body.get("audio")
    if isinstance(audio_b64, str) and audio_b64:
        try:
            pcm, rate, channels = decode_wav(base64.b64decode(audio_b64, validate=True))
        except (binascii.Error, ValueError) as exc:
            events.append(ev.BackendError("convai_bad_response", f"reply audio is not a valid WAV: {exc}"))
        else:
            reply.audio = (pcm, rate, channels)
    return reply
