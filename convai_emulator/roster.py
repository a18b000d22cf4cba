"""The emulator's characters, loaded from TOML (the shipped ``roster.toml`` or ``--roster FILE``).

A character is everything Convai would keep in its dashboard that the emulator needs: persona text
for ``/character/get``, a voice, and scripted behaviour (keyword-driven actions, emotions, topics and
narrative triggers) that ``brain.Conversation`` plays back deterministically. ``CharacterFlags``
select the shape variants the realtime bot emits; the HTTP side only stores them.
"""

from __future__ import annotations

import tomllib
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from convai_emulator.profiles import PROFILES
from convai_emulator.voice import VoiceSpec

DEFAULT_ROSTER_PATH = Path(__file__).with_name("roster.toml")
FIRST_CHARACTER_ID = "c0ffee00-0000-4000-8000-000000000001"


class RosterError(ValueError):
    """The roster file is malformed; the message names the offending entry."""


@dataclass(frozen=True)
class ActionRule:
    keywords: tuple[str, ...]
    steps: tuple[str, ...]
    target: str | None = None  # default target; may use {template} keys
    reply: str = "Okay."


@dataclass(frozen=True)
class EmotionRule:
    keywords: tuple[str, ...]
    emotion: str
    scale: int = 2


@dataclass(frozen=True)
class NarrativeTrigger:
    trigger_name: str
    narrative_section_id: str
    bt_code: str = ""
    bt_constants: str = ""
    reply: str = ""
    keywords: tuple[str, ...] = ()  # optional: the trigger also fires when the player says these


@dataclass(frozen=True)
class Topic:
    keywords: tuple[str, ...]
    reply: str


@dataclass(frozen=True)
class CharacterFlags:
    action_format: Literal["objects", "strings"] = "objects"
    server_response: Literal["flat", "wrapped", "both"] = "flat"
    duplicate_events: bool = False
    bot_ready: Literal["join", "client-ready", "both"] = "both"
    error_response: bool = False


@dataclass(frozen=True)
class Character:
    character_id: str
    name: str
    backstory: str = ""
    language_code: str = "en-US"
    voice_type: str = ""
    greeting: str = "Hello, {player_name}."
    moderation_reply: str = "Let's keep this civil."
    unheard_reply: str = "Sorry, I didn't catch that."
    fallbacks: tuple[str, ...] = ("I see. Tell me more about {echo}.",)
    voice: VoiceSpec = VoiceSpec()
    default_emotion: tuple[str, int] = ("neutral", 1)
    long_term_memory: bool = False
    flags: CharacterFlags = CharacterFlags()
    profile: str = ""  # a server profile for this character's sessions (convai_emulator.profiles); "": the run's
    actions: tuple[ActionRule, ...] = ()
    emotions: tuple[EmotionRule, ...] = ()
    triggers: tuple[NarrativeTrigger, ...] = ()
    topics: tuple[Topic, ...] = ()

    def trigger(self, trigger_name: str) -> NarrativeTrigger | None:
        wanted = trigger_name.strip().lower()
        return next((t for t in self.triggers if t.trigger_name.lower() == wanted), None)


@dataclass(frozen=True)
class Roster:
    characters: tuple[Character, ...]
    template_defaults: Mapping[str, str] = field(default_factory=dict)
    moderation_words: tuple[str, ...] = ()
    moderation_reason: str = "Inappropriate language"

    def get(self, character_id: str) -> Character | None:
        return next((c for c in self.characters if c.character_id == character_id), None)

    def __iter__(self) -> Iterator[Character]:
        return iter(self.characters)


def _strings(value: Any, where: str) -> tuple[str, ...]:
    if isinstance(value, str):
        return (value,)
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise RosterError(f"{where}: expected a string or a list of strings")
    return tuple(value)


def _table(value: Any, where: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise RosterError(f"{where}: expected a table")
    return value


def _build(cls: type, raw: Any, where: str, **converted: Any) -> Any:
    table = _table(raw, where)
    known = set(cls.__dataclass_fields__)
    unknown = set(table) - known
    if unknown:
        raise RosterError(f"{where}: unknown keys {sorted(unknown)}")
    try:
        return cls(**{**table, **converted})
    except TypeError as exc:
        raise RosterError(f"{where}: {exc}") from exc


def _rules(cls: type, raw: Any, where: str, string_lists: tuple[str, ...]) -> tuple[Any, ...]:
    if not isinstance(raw, list):
        raise RosterError(f"{where}: expected an array of tables")
    rules = []
    for i, item in enumerate(raw):
        table = _table(item, f"{where}[{i}]")
        lists = {k: _strings(table[k], f"{where}[{i}].{k}") for k in string_lists if k in table}
        rules.append(_build(cls, table, f"{where}[{i}]", **lists))
    return tuple(rules)


def _character(raw: Any, index: int) -> Character:
    table = _table(raw, f"characters[{index}]")
    where = f"character {table.get('character_id', index)!r}"
    if not isinstance(table.get("character_id"), str) or not isinstance(table.get("name"), str):
        raise RosterError(f"{where}: character_id and name are required strings")
    converted: dict[str, Any] = {
        "actions": _rules(ActionRule, table.get("actions", []), f"{where} actions", ("keywords", "steps")),
        "emotions": _rules(EmotionRule, table.get("emotions", []), f"{where} emotions", ("keywords",)),
        "triggers": _rules(NarrativeTrigger, table.get("triggers", []), f"{where} triggers", ("keywords",)),
        "topics": _rules(Topic, table.get("topics", []), f"{where} topics", ("keywords",)),
        "voice": _build(VoiceSpec, table.get("voice", {}), f"{where} voice"),
        "flags": _build(CharacterFlags, table.get("flags", {}), f"{where} flags"),
        "fallbacks": _strings(table.get("fallbacks", list(Character.fallbacks)), where),
    }
    emotion = _table(table.get("default_emotion", {"name": "neutral", "scale": 1}), f"{where} default_emotion")
    converted["default_emotion"] = (str(emotion.get("name", "neutral")), int(emotion.get("scale", 1)))
    character: Character = _build(Character, table, where, **converted)
    for rule in character.emotions:
        if not 1 <= rule.scale <= 3:
            raise RosterError(f"{where}: emotion scale must be 1..3")
    if character.flags.action_format not in ("objects", "strings"):
        raise RosterError(f"{where}: flags.action_format must be 'objects' or 'strings'")
    if character.flags.server_response not in ("flat", "wrapped", "both"):
        raise RosterError(f"{where}: flags.server_response must be 'flat', 'wrapped' or 'both'")
    if character.flags.bot_ready not in ("join", "client-ready", "both"):
        raise RosterError(f"{where}: flags.bot_ready must be 'join', 'client-ready' or 'both'")
    if character.profile and character.profile not in PROFILES:
        raise RosterError(f"{where}: profile must be one of {', '.join(PROFILES)}")
    if not character.fallbacks:
        raise RosterError(f"{where}: fallbacks must not be empty")
    return character


def parse_roster(data: Mapping[str, Any]) -> Roster:
    raw_characters = data.get("characters")
    if not isinstance(raw_characters, list) or not raw_characters:
        raise RosterError("the roster needs at least one [[characters]] entry")
    characters = tuple(_character(c, i) for i, c in enumerate(raw_characters))
    ids = [c.character_id for c in characters]
    if len(set(ids)) != len(ids):
        raise RosterError("duplicate character_id in the roster")
    defaults = _table(data.get("template_defaults", {}), "template_defaults")
    moderation = _table(data.get("moderation", {}), "moderation")
    return Roster(
        characters=characters,
        template_defaults={str(k): str(v) for k, v in defaults.items()},
        moderation_words=tuple(w.lower() for w in _strings(moderation.get("words", []), "moderation.words")),
        moderation_reason=str(moderation.get("reason", "Inappropriate language")),
    )


def load_roster(path: Path | str | None = None) -> Roster:
    """Load ``path`` (default: the shipped roster.toml)."""
    target = Path(path) if path is not None else DEFAULT_ROSTER_PATH
    try:
        with target.open("rb") as fh:
            data = tomllib.load(fh)
    except tomllib.TOMLDecodeError as exc:
        raise RosterError(f"{target}: {exc}") from exc
    return parse_roster(data)
