"""RTVI message construction with Convai's shape variants as switches.

Convai's shipped clients disagree on several message shapes (convai-apis.md §16 "Conflicting").
The emulator can emit each variant so the daemon's tolerance is exercised; :class:`ShapeOptions`
holds the switches and :class:`Envelope` is the single place that turns an event into JSON.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, fields, replace
from typing import Any, Literal

LABEL = "rtvi-ai"

ServerResponseShape = Literal["flat", "wrapped", "both"]
Placement = Literal["top", "wrapped"]
TurnCompleted = Literal["top", "wrapped", "none"]
BotReadyTiming = Literal["join", "client-ready", "both"]
ActionFormat = Literal["objects", "strings"]
UnknownEventType = Literal["unknown-message-type", "echo"]

# Convai custom client types the server's router accepts (DR client-message-errors.md).
SUPPORTED_TYPES: tuple[str, ...] = (
    "user_text_message",
    "trigger-message",
    "update-template-keys",
    "update-scene-metadata",
    "update-dynamic-info",
    "context-update",
    "tts-toggle",
    "stt-toggle",
    "kill-pipeline",
    "interrupt-bot",
    "force-user-stopped-speaking",
    "reset-idle-timer",
    "usage-toggle",
)


@dataclass(frozen=True)
class ShapeOptions:
    """Which variant of each disputed shape the bot emits.

    * ``duplicate_events``: also emit the other placement of events that clients read in both forms
      (speaking events, ``bot-turn-completed``, ``final-user-transcription``, ``bot-emotion``,
      ``action-response``, ``server-response``), so receivers must dedupe.
    * ``action_format``: ``action-response.actions`` as ``[{name,target}]`` or ``["Name target"]``.
    * ``server_response``: flat top-level ack (docs), wrapped in ``server-message`` (UE/Unity) or both.
    * ``speaking_events``: ``bot-started/stopped-speaking`` top-level (pipecat, SDKs) or wrapped (docs).
    * ``turn_completed``: ``bot-turn-completed`` wrapped (docs) or top-level (UE/Unity registration).
    * ``bot_ready``: send ``bot-ready`` on join, on ``client-ready``, or both.
    * ``error_response``: also answer labelled Convai custom messages with pipecat's
      ``error-response "Unsupported type <t>"`` (what a real session shows ~3 times).
    * ``unknown_event_type``: ``event_type`` of the ack for an unknown type (docs vs draft).
    * ``empty_data``: payload-less events carry ``"data": {}`` (docs) instead of no ``data`` (pipecat).
    * ``custom_events``: Convai's custom events wrapped in ``server-message`` (current) or at the top
      level with the payload in ``data`` (legacy flat shapes, ``legacy`` profile).
    * ``turn_completed`` may also be ``"none"``: the web-SDK-era server sent no ``bot-turn-completed``.
    """

    duplicate_events: bool = False
    action_format: ActionFormat = "objects"
    server_response: ServerResponseShape = "flat"
    speaking_events: Placement = "top"
    turn_completed: TurnCompleted = "wrapped"
    bot_ready: BotReadyTiming = "both"
    error_response: bool = False
    unknown_event_type: UnknownEventType = "unknown-message-type"
    empty_data: bool = False
    custom_events: Placement = "wrapped"

    def merged(self, overrides: Mapping[str, Any] | None) -> ShapeOptions:
        """Apply known keys from a roster entry or a per-session mapping; unknown keys are ignored."""
        if not overrides:
            return self
        names = {f.name for f in fields(self)}
        picked = {k: v for k, v in overrides.items() if k in names}
        return replace(self, **picked) if picked else self


def dumps(message: Mapping[str, Any]) -> str:
    return json.dumps(message, separators=(",", ":"), ensure_ascii=False)


class Envelope:
    """Builds the JSON objects the bot sends, honouring :class:`ShapeOptions`."""

    def __init__(self, shapes: ShapeOptions) -> None:
        self.shapes = shapes

    def top(self, type_: str, data: Mapping[str, Any] | None = None, id_: str | None = None) -> dict[str, Any]:
        message: dict[str, Any] = {"label": LABEL, "type": type_}
        if id_ is not None:
            message["id"] = id_
        if data is not None:
            message["data"] = dict(data)
        elif self.shapes.empty_data:
            message["data"] = {}
        return message

    @staticmethod
    def wrapped(inner_type: str, payload: Mapping[str, Any] | None = None) -> dict[str, Any]:
        data: dict[str, Any] = {"type": inner_type}
        if payload:
            data.update(payload)
        return {"label": LABEL, "type": "server-message", "data": data}

    def custom(self, inner_type: str, payload: Mapping[str, Any] | None = None) -> dict[str, Any]:
        """A Convai custom event in this session's placement (wrapped, or top level when legacy)."""
        if self.shapes.custom_events == "top":
            return self.top(inner_type, payload or {})
        return self.wrapped(inner_type, payload)

    def event(
        self, type_: str, payload: Mapping[str, Any] | None, placement: Placement, duplicable: bool = True
    ) -> list[dict[str, Any]]:
        """One event in its chosen placement, plus the other placement when duplicating."""
        out: list[dict[str, Any]] = []
        if placement == "wrapped" and self.shapes.custom_events == "top":
            placement = "top"
        placements: list[Placement] = [placement]
        if duplicable and self.shapes.duplicate_events:
            placements.append("wrapped" if placement == "top" else "top")
        for where in placements:
            if where == "top":
                out.append(self.top(type_, payload if payload else None))
            else:
                out.append(self.wrapped(type_, payload))
        return out

    def speaking(self, type_: str, payload: Mapping[str, Any]) -> list[dict[str, Any]]:
        """Top level as pipecat sends it (no data); wrapped as the docs show it (inner label + ids)."""
        placements: list[Placement] = [self.shapes.speaking_events]
        if self.shapes.duplicate_events:
            placements.append("wrapped" if placements[0] == "top" else "top")
        return [self.top(type_) if where == "top" else self.wrapped(type_, {"label": LABEL, **payload})
                for where in placements]

    def turn_completed(self, payload: Mapping[str, Any]) -> list[dict[str, Any]]:
        if self.shapes.turn_completed == "none":
            return []
        return self.event("bot-turn-completed", payload, self.shapes.turn_completed)

    def actions(self, actions: list[tuple[str, str | None]]) -> list[dict[str, Any]]:
        if self.shapes.action_format == "strings":
            listed: list[Any] = [f"{name} {target}" if target else name for name, target in actions]
        else:
            listed = [{"name": name, "target": target} if target else {"name": name} for name, target in actions]
        return self.event("action-response", {"actions": listed}, "wrapped")

    def server_response(
        self,
        event_type: str,
        status: str = "success",
        message: str = "",
        extras: Mapping[str, Any] | None = None,
        request_id: str | None = None,
    ) -> list[dict[str, Any]]:
        body: dict[str, Any] = {"type": "server-response", "event_type": event_type, "status": status}
        if message:
            body["message"] = message
        if extras:
            body["extras"] = dict(extras)
        shape = self.shapes.server_response
        if self.shapes.duplicate_events:
            shape = "both"
        out: list[dict[str, Any]] = []
        if shape in ("flat", "both"):
            flat = dict(body)
            if request_id is not None:
                flat["id"] = request_id
            out.append(flat)
        if shape in ("wrapped", "both"):
            out.append(self.wrapped("server-response", {k: v for k, v in body.items() if k != "type"}))
        return out
