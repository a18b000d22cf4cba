"""The emulator's conversation engine, shared by REST, SSE and the realtime bot.

Deterministic by design: a reply depends only on the character, the conversation so far and the
input, so tests can assert exact texts and a load test sees stable sizes. It plays back the roster's
scripted behaviour (actions, emotions, topics, narrative triggers), remembers what the player said
("my name is X" → "what is my name"; "what did I say"; "remember that ..."), substitutes narrative
template keys, answers from dynamic info and scene objects, honours ``action_config`` (actions only
from the allowed list, targets only from its objects/characters) and moderates a small word list.
"""

from __future__ import annotations

import hashlib
import re
import time
import uuid
from collections import OrderedDict, deque
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any, Literal

from convai_emulator.roster import ActionRule, Character, Roster

HISTORY_TURNS = 200  # remembered turns per conversation (the first user message is kept separately)
MAX_DYNAMIC_CHARS = 200_000  # ~50k tokens, Convai's combined context budget


@dataclass(frozen=True)
class SceneObject:
    name: str
    description: str = ""


@dataclass(frozen=True)
class ActionConfig:
    """Authoritative affordances: allowed action names and the only valid targets."""

    actions: tuple[str, ...] = ()
    objects: tuple[SceneObject, ...] = ()
    characters: tuple[SceneObject, ...] = ()  # description holds the bio
    current_attention_object: str | None = None

    @property
    def targets(self) -> tuple[str, ...]:
        return tuple(o.name for o in self.objects) + tuple(c.name for c in self.characters)

    @classmethod
    def from_payload(cls, payload: Mapping[str, Any]) -> ActionConfig:
        """From a (validated) Live API ``action_config``; tolerant of W12's camelCase attention key."""
        actions = []
        for item in payload.get("actions") or ():
            name = item.get("value") if isinstance(item, Mapping) else item
            if isinstance(name, str) and name.strip():
                actions.append(name.strip())
        objects = tuple(SceneObject(str(o.get("name", "")), str(o.get("description", "") or ""))
                        for o in payload.get("objects") or () if isinstance(o, Mapping) and o.get("name"))
        characters = tuple(SceneObject(str(c.get("name", "")), str(c.get("bio", "") or ""))
                           for c in payload.get("characters") or () if isinstance(c, Mapping) and c.get("name"))
        attention = payload.get("current_attention_object") or payload.get("currentAttentionObject")
        if isinstance(attention, Mapping):
            attention = attention.get("name")
        return cls(tuple(actions), objects, characters, str(attention) if attention else None)

    def merged(self, other: ActionConfig, present: Iterable[str]) -> ActionConfig:
        """``other`` overrides only the keys that were present in its payload (context-update)."""
        keys = set(present)
        return ActionConfig(
            actions=other.actions if "actions" in keys else self.actions,
            objects=other.objects if "objects" in keys else self.objects,
            characters=other.characters if "characters" in keys else self.characters,
            current_attention_object=(other.current_attention_object
                                      if keys & {"current_attention_object", "currentAttentionObject"}
                                      else self.current_attention_object),
        )


@dataclass(frozen=True)
class Action:
    name: str
    target: str | None = None

    def to_object(self) -> dict[str, str]:
        """2026 Live API shape: ``{"name", "target"}``, target omitted when there is none."""
        return {"name": self.name, "target": self.target} if self.target else {"name": self.name}

    def to_string(self) -> str:
        """Older Live API / REST shape: ``"Move To cube"``."""
        return f"{self.name} {self.target}" if self.target else self.name


@dataclass(frozen=True)
class Emotion:
    name: str
    scale: int  # 1..3


@dataclass(frozen=True)
class NarrativeSection:
    narrative_section_id: str
    bt_code: str = ""
    bt_constants: str = ""

    def to_payload(self) -> dict[str, str]:
        return {"bt_code": self.bt_code, "bt_constants": self.bt_constants,
                "narrative_section_id": self.narrative_section_id}


@dataclass(frozen=True)
class Moderation:
    result: bool  # True = passed (Convai docs)
    user_input: str
    reason: str | None = None


@dataclass(frozen=True)
class WordTiming:
    word: str
    start_s: float
    end_s: float


_TOKEN = re.compile(r"\s*[\w']+|\s*[^\w\s]+|\s+")
_SENTENCE = re.compile(r"[^.!?]+(?:[.!?]+|$)")


def llm_chunks(text: str) -> tuple[str, ...]:
    """Split text like an LLM token stream: leading-space words, long words in 3-4 char pieces."""
    out: list[str] = []
    for match in _TOKEN.finditer(text):
        token = match.group()
        core = token.lstrip()
        lead = token[: len(token) - len(core)]
        if len(core) > 7 and core[0].isalnum():
            out.append(lead + core[:4])
            rest = core[4:]
            while rest:
                out.append(rest[:3])
                rest = rest[3:]
        else:
            out.append(token)
    return tuple(out)


def split_sentences(text: str) -> tuple[str, ...]:
    return tuple(s.strip() for s in _SENTENCE.findall(text) if s.strip())


def word_timings(text: str, duration_s: float) -> tuple[WordTiming, ...]:
    """Spread words over ``duration_s`` by length, with room for pauses after punctuation."""
    words = text.split()
    if not words or duration_s <= 0:
        return ()
    weights = [len(w) + 1 + (4 if w[-1] in ".!?" else 2 if w[-1] in ",;:" else 0) for w in words]
    scale = duration_s / sum(weights)
    timings, t = [], 0.0
    for word, weight in zip(words, weights, strict=True):
        spoken = (len(word) + 1) * scale
        timings.append(WordTiming(word, round(t, 4), round(t + spoken, 4)))
        t += weight * scale
    return tuple(timings)


@dataclass(frozen=True)
class Reply:
    text: str
    chunks: tuple[str, ...]
    sentences: tuple[str, ...]
    emotion: Emotion
    actions: tuple[Action, ...]
    narrative: NarrativeSection | None
    moderation: Moderation
    user_text: str
    interaction_id: str
    turn: int

    def action_payload(self, action_format: Literal["objects", "strings"] = "objects") -> list[Any]:
        if action_format == "strings":
            return [a.to_string() for a in self.actions]
        return [a.to_object() for a in self.actions]

    def word_timings(self, duration_s: float) -> tuple[WordTiming, ...]:
        return word_timings(self.text, duration_s)


@lru_cache(maxsize=8192)
def _phrase(phrase: str) -> re.Pattern[str]:
    return re.compile(r"(?<!\w)" + re.escape(phrase.lower()) + r"(?!\w)")


def _find(phrase: str, lower: str) -> int:
    match = _phrase(phrase).search(lower) if phrase else None
    return match.start() if match else -1


def _first(keywords: Iterable[str], lower: str) -> int:
    hits = [p for p in (_find(k, lower) for k in keywords) if p >= 0]
    return min(hits) if hits else -1


def _digest(*parts: object) -> int:
    return int.from_bytes(hashlib.sha256("|".join(map(str, parts)).encode()).digest()[:8], "big")


_NAME = [re.compile(r"\bmy name is ([A-Za-z][\w'-]*)", re.I), re.compile(r"\bcall me ([A-Za-z][\w'-]*)", re.I),
         re.compile(r"\b(?:[Ii] am|[Ii]'m) ([A-Z][\w'-]*)")]
_NOT_NAMES = {"Fine", "Good", "Ok", "Okay", "Here", "Sorry", "Not", "Just", "So", "Very", "Back", "Ready"}
_REMEMBER = re.compile(r"\bremember (?:that )?(.+)", re.I)
_LIKE = re.compile(r"\bi (?:really )?(?:like|love) (.+)", re.I)
_ASK_NAME = re.compile(r"\bwhat(?:'s| is) my name\b|\bwho am i\b|\b(?:know|remember) my name\b")
_ASK_FIRST = re.compile(r"\bwhat did i say first\b|\bwhat was my first (?:message|question)\b|"
                        r"\bwhat did i say at (?:the )?(?:start|beginning)\b")
_ASK_SAID = re.compile(r"\bwhat did i (?:just )?say\b|\bwhat was my (?:last|previous) (?:message|question)\b|"
                       r"\brepeat what i said\b")
_ASK_NOTES = re.compile(r"\bwhat did i ask you to remember\b|\bwhat should you remember\b")
_ASK_LIKES = re.compile(r"\bwhat do i (?:like|love)\b")
_ASK_REPEAT = re.compile(r"\bwhat did you (?:just )?say\b|\brepeat that\b|\bsay that again\b")
_ASK_NEWS = re.compile(r"\bwhat'?s new\b|\bany news\b|\bwhat do you know\b|\bwhat(?:'s| is) happening\b|"
                       r"\brumou?rs?\b|\bnews\b")
_ASK_SCENE = re.compile(r"\bwhat (?:do|can) you see\b|\blook around\b|\bwhat(?:'s| is) (?:around|here)\b")
_ASK_DESCRIBE = re.compile(r"\b(?:describe|tell me about|what is) (?:the |that |this )?([\w' -]+)")
_GREETING = re.compile(r"^(?:hello|hi|hey|greetings|good (?:morning|evening|afternoon)|howdy)\b")
_PRONOUN = re.compile(r"\b(?:it|this|that|there)\b")
_TEMPLATE = re.compile(r"\{(\w+)\}")


def _clip(text: str, words: int = 6) -> str:
    parts = text.split()
    clipped = " ".join(parts[:words]) + ("..." if len(parts) > words else "")
    return clipped.rstrip(".!?,;: ")


@dataclass
class Turn:
    user_text: str | None  # None for greetings and triggers
    bot_text: str
    source: Literal["text", "event", "greeting", "trigger"] = "text"


@dataclass
class Conversation:
    """One character_session_id: what was said, template keys, context, scene and affordances."""

    character: Character
    character_session_id: str
    roster: Roster
    template_keys: dict[str, str] = field(default_factory=dict)
    dynamic_info: str = ""
    static_info: str = ""
    scene: tuple[SceneObject, ...] = ()
    action_config: ActionConfig | None = None
    narrative_section_id: str | None = None
    history: deque[Turn] = field(default_factory=lambda: deque(maxlen=HISTORY_TURNS))
    facts: dict[str, str] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    first_user_text: str | None = None
    turns: int = 0
    created_at: float = field(default_factory=time.time)
    last_used: float = field(default_factory=time.time)

    # --- state updates --------------------------------------------------------------------------
    def update_template_keys(self, keys: Mapping[str, str]) -> None:
        self.template_keys.update({str(k): str(v) for k, v in keys.items()})

    def set_dynamic_info(self, text: str, mode: Literal["replace", "append", "reset"] = "replace") -> str:
        if mode == "reset":
            self.dynamic_info = ""
        elif mode == "append" and self.dynamic_info:
            self.dynamic_info = f"{self.dynamic_info} {text}"[-MAX_DYNAMIC_CHARS:]
        else:
            self.dynamic_info = text[-MAX_DYNAMIC_CHARS:]
        return self.context_text()

    def context_text(self) -> str:
        return " ".join(p for p in (self.static_info, self.dynamic_info) if p)

    def set_scene(self, objects: Iterable[SceneObject]) -> None:
        self.scene = tuple(objects)

    # --- templates --------------------------------------------------------------------------------
    def template_value(self, key: str) -> str | None:
        if key in self.template_keys:
            return self.template_keys[key]
        if key == "player_name" and "name" in self.facts:
            return self.facts["name"]
        return self.roster.template_defaults.get(key)

    def fill(self, template: str, **extra: str | None) -> str:
        """Substitute ``{key}`` once (values are not rescanned); unknown keys stay literal."""
        def value(match: re.Match[str]) -> str:
            key = match.group(1)
            found = extra.get(key) if key in extra else self.template_value(key)
            return found if found is not None else match.group(0)
        return _TEMPLATE.sub(value, template)

    # --- replies ------------------------------------------------------------------------------------
    def greet(self) -> Reply:
        text = self.fill(self.character.greeting)
        self.history.append(Turn(None, text, "greeting"))
        return self._reply(text, "", Moderation(True, ""), self._default_emotion(), (), None)

    def trigger(self, trigger_name: str | None, trigger_message: str | None = None) -> Reply | None:
        """Narrative trigger: a known name changes section; a bare message is an injected event."""
        rule = self.character.trigger(trigger_name) if trigger_name else None
        if rule is not None:
            self.narrative_section_id = rule.narrative_section_id
            text = self.fill(rule.reply) if rule.reply else ""
            self.history.append(Turn(None, text, "trigger"))
            section = NarrativeSection(rule.narrative_section_id, rule.bt_code, rule.bt_constants)
            return self._reply(text, trigger_message or "", Moderation(True, trigger_message or ""),
                               self._default_emotion(), (), section)
        if trigger_message and trigger_message.strip():
            return self.respond(trigger_message, source="event")
        return None

    def respond(self, text: str, *, action_config: ActionConfig | None = None,
                source: Literal["text", "event"] = "text") -> Reply:
        text = " ".join(text.split())
        lower = text.lower()
        moderation = self._moderate(text)
        actions: tuple[Action, ...] = ()
        narrative: NarrativeSection | None = None
        emotion = self._emotion(lower)
        if not moderation.result:
            parts = [self.fill(self.character.moderation_reply)]
            emotion = Emotion("anger", 1)
        elif not text:
            parts = [self.fill(self.character.unheard_reply)]
        else:
            parts = self._learn(text)
            parts += self._recall(lower)
            for rule in self.character.triggers:
                if rule.keywords and _first(rule.keywords, lower) >= 0:
                    self.narrative_section_id = rule.narrative_section_id
                    narrative = NarrativeSection(rule.narrative_section_id, rule.bt_code, rule.bt_constants)
                    parts.append(self.fill(rule.reply))
                    break
            action_parts, actions = self._actions(lower, action_config or self.action_config)
            parts += action_parts
            parts += [self.fill(t.reply) for t in self.character.topics if _first(t.keywords, lower) >= 0][:2]
            if not parts and _GREETING.search(lower):
                parts.append(self.fill(self.character.greeting))
            if not parts:
                options = self.character.fallbacks
                choice = options[_digest(self.character.character_id, lower, self.turns) % len(options)]
                echo = _clip(text)
                if choice.startswith("{echo}"):
                    echo = echo[:1].upper() + echo[1:]
                elif not re.match(r"I\b|[A-Z]{2}", echo):
                    echo = echo[:1].lower() + echo[1:]
                parts.append(self.fill(choice, echo=echo))
        reply_text = " ".join(p.strip() for p in parts if p.strip())
        if source == "text" and text:
            if self.first_user_text is None:
                self.first_user_text = text
        self.history.append(Turn(text if source == "text" else None, reply_text, source))
        return self._reply(reply_text, text, moderation, emotion, actions, narrative)

    # --- internals -------------------------------------------------------------------------------
    def _reply(self, text: str, user_text: str, moderation: Moderation, emotion: Emotion,
               actions: tuple[Action, ...], narrative: NarrativeSection | None) -> Reply:
        self.turns += 1
        self.last_used = time.time()
        interaction = f"int_{_digest(self.character_session_id, self.turns):016x}"[:16]
        return Reply(text, llm_chunks(text), split_sentences(text), emotion, actions, narrative, moderation,
                     user_text, interaction, self.turns)

    def _default_emotion(self) -> Emotion:
        name, scale = self.character.default_emotion
        return Emotion(name, max(1, min(3, scale)))

    def _emotion(self, lower: str) -> Emotion:
        best: tuple[int, Emotion] | None = None
        for rule in self.character.emotions:
            pos = _first(rule.keywords, lower)
            if pos >= 0 and (best is None or pos < best[0]):
                best = (pos, Emotion(rule.emotion, rule.scale))
        return best[1] if best else self._default_emotion()

    def _moderate(self, text: str) -> Moderation:
        lower = text.lower()
        if _first(self.roster.moderation_words, lower) >= 0:
            return Moderation(False, text, self.roster.moderation_reason)
        return Moderation(True, text, None)

    def _previous_user_texts(self) -> list[str]:
        return [t.user_text for t in self.history if t.user_text]

    def _learn(self, text: str) -> list[str]:
        parts: list[str] = []
        for pattern in _NAME:
            match = pattern.search(text)
            if match and match.group(1).capitalize() not in _NOT_NAMES:
                self.facts["name"] = match.group(1).rstrip("'-")
                parts.append(f"Nice to meet you, {self.facts['name']}.")
                break
        if (match := _REMEMBER.search(text)) and not _ASK_NOTES.search(text.lower()):
            note = match.group(1).strip().rstrip(".!?")
            self.notes = (self.notes + [note])[-20:]
            parts.append("I'll remember that.")
        if match := _LIKE.search(text):
            self.facts["likes"] = match.group(1).strip().rstrip(".!?")
            parts.append(f"{self.facts['likes'][:1].upper()}{self.facts['likes'][1:]}, good to know.")
        return parts

    def _recall(self, lower: str) -> list[str]:
        parts: list[str] = []
        said = self._previous_user_texts()
        if _ASK_NAME.search(lower):
            name = self.facts.get("name")
            parts.append(f"Your name is {name}." if name else "You haven't told me your name yet.")
        if _ASK_FIRST.search(lower):
            parts.append(f'First you said: "{self.first_user_text}".' if self.first_user_text
                         else "This is the first thing you've said to me.")
        elif _ASK_SAID.search(lower):
            parts.append(f'You said: "{said[-1]}".' if said else "You haven't said anything before this.")
        if _ASK_NOTES.search(lower):
            parts.append("You asked me to remember: " + "; ".join(self.notes) + "." if self.notes
                         else "You haven't asked me to remember anything.")
        if _ASK_LIKES.search(lower):
            likes = self.facts.get("likes")
            parts.append(f"You like {likes}." if likes else "You haven't told me what you like.")
        if _ASK_REPEAT.search(lower):
            bot = [t.bot_text for t in self.history if t.bot_text]
            parts.append(f"I said: {bot[-1]}" if bot else "I haven't said anything yet.")
        if _ASK_NEWS.search(lower):
            context = self.context_text()
            parts.append(f"Word is: {context}" if context else self.fill("Nothing new, {player_name}."))
        objects = self._visible_objects()
        if _ASK_SCENE.search(lower):
            names = [o.name for o in objects]
            if not names:
                parts.append("Nothing out of the ordinary.")
            else:
                listed = names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1]
                parts.append(f"I can see {listed}.")
        elif match := _ASK_DESCRIBE.search(lower):
            subject = match.group(1)
            for obj in objects:
                if _find(obj.name, subject) >= 0 and obj.description:
                    parts.append(f"The {obj.name}: {obj.description}")
                    break
        return parts

    def _visible_objects(self) -> list[SceneObject]:
        seen: dict[str, SceneObject] = {}
        for obj in (*self.scene, *(self.action_config.objects if self.action_config else ())):
            seen.setdefault(obj.name.lower(), obj)
        return list(seen.values())

    def _actions(self, lower: str, config: ActionConfig | None) -> tuple[list[str], tuple[Action, ...]]:
        planned: list[tuple[int, ActionRule | None, str]] = []
        for rule in self.character.actions:
            pos = _first(rule.keywords, lower)
            if pos >= 0:
                planned.append((pos, rule, rule.steps[0]))
        if config is not None:
            for name in config.actions:
                pos = _find(name, lower)
                if pos >= 0 and not any(name.lower() in (s.lower() for s in (r.steps if r else (n,)))
                                        for _, r, n in planned):
                    planned.append((pos, None, name))
        planned.sort(key=lambda p: p[0])
        if not planned:
            return [], ()

        candidates = list(config.targets) if config is not None else [o.name for o in self._visible_objects()]
        mentioned = [(p, name) for name in candidates if (p := _find(name, lower)) >= 0]
        target_in_text = min(mentioned)[1] if mentioned else None
        if target_in_text is None and config and config.current_attention_object and _PRONOUN.search(lower):
            target_in_text = config.current_attention_object

        parts: list[str] = []
        actions: list[Action] = []
        for _, rule, name in planned:
            steps = rule.steps if rule else (name,)
            if config is not None:
                allowed = {a.lower(): a for a in config.actions}
                steps = tuple(allowed[s.lower()] for s in steps if s.lower() in allowed)
                if not steps:
                    continue  # not an affordance of this scene: no action, no promise
            wanted = target_in_text or (self.fill(rule.target) if rule and rule.target else None)
            target = wanted
            if wanted and config is not None:
                canonical = {t.lower(): t for t in config.targets}
                target = canonical.get(wanted.lower())
                if target is None and wanted != target_in_text and rule and rule.target:
                    parts.append(f"I don't see any {wanted} here.")
                    continue
            actions.extend(Action(step, target) for step in steps)
            if rule is not None:
                parts.append(self.fill(rule.reply, target=target or wanted))
            else:
                parts.append(f"Okay, {name.lower()}{' ' + target if target else ''}.")
        unique = tuple(dict.fromkeys(actions))
        return parts, unique


class SessionNotFound(LookupError):
    """A character_session_id the store does not know."""


class SessionForbidden(PermissionError):
    """A character_session_id that belongs to another character."""


class ConversationStore:
    """Conversations by character_session_id, least recently used evicted beyond ``max_conversations``."""

    def __init__(self, roster: Roster, max_conversations: int = 50_000) -> None:
        self.roster = roster
        self.max_conversations = max_conversations
        self._items: OrderedDict[str, Conversation] = OrderedDict()

    def __len__(self) -> int:
        return len(self._items)

    def create(self, character: Character, character_session_id: str | None = None) -> Conversation:
        csid = character_session_id or str(uuid.uuid4())
        conversation = Conversation(character, csid, self.roster)
        self._items[csid] = conversation
        self._items.move_to_end(csid)
        while len(self._items) > self.max_conversations:
            self._items.popitem(last=False)
        return conversation

    def get(self, character_session_id: str) -> Conversation | None:
        conversation = self._items.get(character_session_id)
        if conversation is not None:
            self._items.move_to_end(character_session_id)
        return conversation

    def resume(self, character: Character, character_session_id: str) -> Conversation:
        """Live API semantics: unknown id → SessionNotFound, other character's id → SessionForbidden."""
        conversation = self.get(character_session_id)
        if conversation is None:
            raise SessionNotFound(character_session_id)
        if conversation.character.character_id != character.character_id:
            raise SessionForbidden(character_session_id)
        return conversation

    def snapshot(self) -> list[dict[str, Any]]:
        return [{"character_session_id": c.character_session_id, "character_id": c.character.character_id,
                 "turns": c.turns, "narrative_section_id": c.narrative_section_id}
                for c in self._items.values()]

