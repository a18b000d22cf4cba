"""What the realtime bot needs from a character: replies, state updates and a voice.

The bot is written against :class:`Persona` so the realtime side stays independent of how replies
are produced; :mod:`.characters` adapts the emulator's ``brain.Conversation`` and ``voice``
modules to it.
"""

from __future__ import annotations

from collections.abc import Hashable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np


@dataclass(frozen=True)
class NarrativeStep:
    bt_code: str
    bt_constants: str
    narrative_section_id: str


@dataclass(frozen=True)
class TurnPlan:
    """One bot reply, already decided; the bot only stages it on the wire.

    ``moderation_passed`` is None when the turn was not moderated; ``no_response_reason`` set means
    the character abstains (``llm-no-response``) and nothing else is sent.
    """

    text: str
    chunks: Sequence[str] = ()
    emotion: tuple[str, int] | None = None
    actions: Sequence[tuple[str, str | None]] = ()
    narrative: NarrativeStep | None = None
    moderation_passed: bool | None = None
    moderation_reason: str | None = None
    no_response_reason: str | None = None
    extras: Mapping[str, Any] = field(default_factory=dict)

    def text_chunks(self) -> list[str]:
        return list(self.chunks) if self.chunks else _split_words(self.text)


def _split_words(text: str) -> list[str]:
    words = text.split(" ")
    return [w if i == 0 else " " + w for i, w in enumerate(words) if w or i == 0]


@dataclass(frozen=True)
class UpdateResult:
    """Outcome of a state-changing client message, reported in its ``server-response``."""

    status: str = "success"
    message: str = ""
    extras: Mapping[str, Any] = field(default_factory=dict)
    plan: TurnPlan | None = None  # a reply to stage (e.g. context-update with run_llm)


class Persona(Protocol):
    character_id: str
    character_name: str
    character_session_id: str

    def respond(self, text: str, message_id: str | None = None) -> TurnPlan: ...

    def trigger(self, trigger_name: str | None, trigger_message: str | None) -> TurnPlan | None: ...

    def update_template_keys(self, keys: Mapping[str, str]) -> UpdateResult: ...

    def update_dynamic_info(self, text: str) -> UpdateResult: ...

    def context_update(self, data: Mapping[str, Any]) -> UpdateResult: ...

    def update_scene_metadata(self, items: Sequence[Mapping[str, Any]]) -> UpdateResult: ...

    def voice_key(self) -> Hashable: ...

    async def speech(self, text: str) -> np.ndarray:
        """48 kHz mono int16 PCM of ``text``."""
        ...
