"""Server profiles: named behaviour sets, each reproducing one server that Convai's own clients accept.

The emulator's default behaviour is the current Convai Live API as the docs describe it. Real
servers have differed over time, and the published clients tolerate those differences; a profile
switches the emulator to one of them so a client (the daemon) can be tested against each. Sources
are convai-apis.md sections (§19 corrects the earlier ones):

=============  ===================================================================  ==================
name           behaviour                                                           reference
=============  ===================================================================  ==================
current        custom events wrapped in ``server-message``; wrapped                 §4, §7.3, §8.1
               ``bot-turn-completed``; ``bot-ready`` on join and on ``client-ready``
websdk         no ``bot-turn-completed``; ``bot-ready`` a few seconds late;         §19 bot-ready,
               blendshape chunks before ``bot-started-speaking``; blendshapes at    Turn end, Lip sync;
               90 fps with ``fps``/``start_frame_index``/``sequence`` in each       §2.1 output_fps
               chunk and frames as ``{name: value}`` objects
stale_session  an unknown or expired ``character_session_id`` on ``/connect`` (and  §19 Stale session ids
               ``/connect/stream``) → 400 ``{"detail":"Invalid character_session_id"}``
legacy         flat shapes: Convai custom events at the top level (``data`` holds   §4 shape C, §16
               the payload), flat ``server-response``, string ``action-response``,  Conflicting, §11
               top-level speaking events and ``bot-turn-completed``
slow_start     ``bot-ready`` only 20 s after the data channel opens (configurable:  §19 bot-ready
               ``bot_ready_delay_s``); ``client-ready`` is answered then
=============  ===================================================================  ==================

Selection, most specific first: a ``/connect`` body's ``emulator_profile``; a runtime override for
the character (``POST /_emulator/profile`` with ``character_id``); the roster entry's ``profile``; the
runtime default (``POST /_emulator/profile``); the run's ``--profile``. This module has no realtime
dependencies: the HTTP side applies ``stale_session`` and the bot reads the rest.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

DEFAULT_PROFILE = "current"
# §19: Unity expects this exact body (also "invalid uuid" / "invalid session id" wording) and retries
# once without the id.
MSG_INVALID_SESSION = "Invalid character_session_id"


class ProfileError(ValueError):
    """An unknown profile name or a bad option; the message is fit for an HTTP 400 or the CLI."""


def _frozen(mapping: Mapping[str, Any] | None = None) -> Mapping[str, Any]:
    return MappingProxyType(dict(mapping or {}))


@dataclass(frozen=True)
class ServerProfile:
    """One server behaviour set. ``shapes`` are :class:`ShapeOptions` overrides for the bot."""

    name: str
    summary: str
    reference: str
    shapes: Mapping[str, Any] = field(default_factory=_frozen)
    bot_ready_delay_s: float = 0.0  # after the data channel opens; client-ready waits for it too
    lipsync_first: bool = False  # blendshape chunks of the lead-in go out before bot-started-speaking
    blendshape_fps: int | None = None  # forced NeuroSync output fps (None: the request's output_fps)
    blendshape_meta: bool = False  # each chunk carries fps and start_frame_index (sequence always)
    named_frames: bool = False  # frames as {blendshape name: value} objects instead of arrays
    stale_session_400: bool = False  # unknown character_session_id → 400 Invalid character_session_id

    # options a caller may override (admin route, /connect, CLI); the rest define the profile
    TUNABLE = ("bot_ready_delay_s", "lipsync_first", "blendshape_fps", "blendshape_meta", "named_frames",
               "stale_session_400")

    def with_options(self, options: Mapping[str, Any] | None) -> ServerProfile:
        if not options:
            return self
        changes: dict[str, Any] = {}
        for key, value in options.items():
            if key not in self.TUNABLE:
                raise ProfileError(f"unknown profile option {key!r}; known: {', '.join(self.TUNABLE)}")
            if key == "bot_ready_delay_s":
                if not isinstance(value, int | float) or isinstance(value, bool) or not 0 <= value <= 600:
                    raise ProfileError("bot_ready_delay_s must be a number of seconds in 0..600")
                value = float(value)
            elif key == "blendshape_fps":
                if value is not None and (not isinstance(value, int) or isinstance(value, bool)
                                          or not 1 <= value <= 240):
                    raise ProfileError("blendshape_fps must be null or an integer in 1..240")
            elif not isinstance(value, bool):
                raise ProfileError(f"{key} must be a boolean")
            changes[key] = value
        return dataclasses.replace(self, **changes)

    def describe(self) -> dict[str, Any]:
        out = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}
        out["shapes"] = dict(self.shapes)
        return out


PROFILES: Mapping[str, ServerProfile] = MappingProxyType({p.name: p for p in (
    ServerProfile(
        "current", "current Convai: custom events wrapped in server-message, bot-turn-completed sent",
        "convai-apis.md §4, §7.3, §8.1"),
    ServerProfile(
        "websdk", "web-SDK era: no bot-turn-completed, late bot-ready, blendshapes first at 90 fps with "
        "fps/start_frame_index/sequence and named frames",
        "convai-apis.md §19 (bot-ready, Turn end, Lip sync), §2.1 output_fps",
        shapes=_frozen({"turn_completed": "none"}), bot_ready_delay_s=3.0, lipsync_first=True,
        blendshape_fps=90, blendshape_meta=True, named_frames=True),
    ServerProfile(
        "stale_session", "unknown/expired character_session_id → 400 {\"detail\":\"Invalid character_session_id\"}",
        "convai-apis.md §19 (Stale session ids)", stale_session_400=True),
    ServerProfile(
        "legacy", "legacy flat shapes: custom events top-level, flat server-response, string actions",
        "convai-apis.md §4 (shape C), §16 Conflicting, §11",
        shapes=_frozen({"custom_events": "top", "server_response": "flat", "action_format": "strings",
                        "speaking_events": "top", "turn_completed": "top"})),
    ServerProfile(
        "slow_start", "bot-ready only after 20 s (bot_ready_delay_s)", "convai-apis.md §19 (bot-ready)",
        bot_ready_delay_s=20.0),
)})


def get_profile(name: str, options: Mapping[str, Any] | None = None) -> ServerProfile:
    profile = PROFILES.get(name)
    if profile is None:
        raise ProfileError(f"unknown profile {name!r}; known: {', '.join(PROFILES)}")
    return profile.with_options(options)


@dataclass
class ProfileSelection:
    """The run's and the runtime choices; ``resolve`` picks the profile for one session."""

    default: ServerProfile = field(default_factory=lambda: PROFILES[DEFAULT_PROFILE])
    per_character: dict[str, ServerProfile] = field(default_factory=dict)

    def resolve(self, character_id: str, roster_profile: str = "",
                request: Mapping[str, Any] | None = None) -> ServerProfile:
        """Raises ProfileError for a bad per-session ``emulator_profile`` (the caller answers 422)."""
        requested = (request or {}).get("emulator_profile")
        if requested is not None:
            if isinstance(requested, str):
                return get_profile(requested)
            if isinstance(requested, Mapping) and isinstance(requested.get("name"), str):
                return get_profile(requested["name"], requested.get("options"))
            raise ProfileError("emulator_profile must be a name or {\"name\", \"options\"}")
        if character_id in self.per_character:
            return self.per_character[character_id]
        if roster_profile:
            return get_profile(roster_profile)
        return self.default

    def configure(self, body: Mapping[str, Any], known_characters: set[str]) -> None:
        """Apply an admin request: ``{"profile", "options"?, "character_id"?}`` and/or ``{"clear": true}``."""
        if body.get("clear") is True:
            self.default = PROFILES[DEFAULT_PROFILE]
            self.per_character.clear()
        name = body.get("profile")
        if name is None:
            if body.get("clear") is not True:
                raise ProfileError("body needs \"profile\" (a name) or \"clear\": true")
            return
        if not isinstance(name, str):
            raise ProfileError("profile must be a string")
        options = body.get("options")
        if options is not None and not isinstance(options, Mapping):
            raise ProfileError("options must be an object")
        profile = get_profile(name, options)
        character_id = body.get("character_id")
        if character_id is None:
            self.default = profile
            return
        if not isinstance(character_id, str) or character_id not in known_characters:
            raise ProfileError(f"unknown character_id {character_id!r}")
        self.per_character[character_id] = profile

    def snapshot(self) -> dict[str, Any]:
        return {
            "default": self.default.describe(),
            "characters": {cid: p.describe() for cid, p in self.per_character.items()},
            "profiles": {name: {"summary": p.summary, "reference": p.reference} for name, p in PROFILES.items()},
        }
