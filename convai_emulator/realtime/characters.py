"""Adapts the emulator's ``brain.Conversation`` and ``voice.Synthesizer`` to the bot's :class:`Persona`."""

from __future__ import annotations

import dataclasses
import itertools
from collections.abc import Hashable, Mapping, Sequence
from typing import Any

import numpy as np

from convai_emulator.brain import ActionConfig, Conversation, Reply, SceneObject
from convai_emulator.roster import Character
from convai_emulator.voice import Synthesizer

from .opus import SAMPLE_RATE
from .persona import NarrativeStep, TurnPlan, UpdateResult
from .shapes import ShapeOptions

MAX_TOKENS, STATIC_MAX_TOKENS, RUNTIME_MAX_TOKENS = 50_000, 20_000, 30_000


def estimate_tokens(text: str) -> int:
    """Rough token estimate (~4 characters per token), the scale Convai's budgets are stated in."""
    return (len(text) + 3) // 4


def shapes_for(character: Character, base: ShapeOptions | None = None) -> ShapeOptions:
    """The roster's per-character shape flags as :class:`ShapeOptions`."""
    # Every flag whose name is a ShapeOptions field applies, so new roster flags need no change here.
    return (base or ShapeOptions()).merged(dataclasses.asdict(character.flags))


def plan_from_reply(reply: Reply, moderated: bool) -> TurnPlan:
    text = reply.text.strip()
    return TurnPlan(
        text=text,
        chunks=reply.chunks,
        emotion=(reply.emotion.name, reply.emotion.scale),
        actions=[(a.name, a.target) for a in reply.actions],
        narrative=NarrativeStep(reply.narrative.bt_code, reply.narrative.bt_constants,
                                reply.narrative.narrative_section_id) if reply.narrative else None,
        moderation_passed=reply.moderation.result if moderated else None,
        moderation_reason=reply.moderation.reason if moderated else None,
        no_response_reason=None if text else "abstain",
        extras={"user_input": reply.moderation.user_input or reply.user_text},
    )


class ConversationPersona:
    """A character's conversation as the realtime bot sees it."""

    _update_ids = itertools.count(1)

    def __init__(self, conversation: Conversation, synthesizer: Synthesizer) -> None:
        self.conversation = conversation
        self.synthesizer = synthesizer
        self.revision = 0

    @property
    def character_id(self) -> str:
        return self.conversation.character.character_id

    @property
    def character_name(self) -> str:
        return self.conversation.character.name

    @property
    def character_session_id(self) -> str:
        return self.conversation.character_session_id

    def respond(self, text: str, message_id: str | None = None) -> TurnPlan:
        return plan_from_reply(self.conversation.respond(text), moderated=True)

    def trigger(self, trigger_name: str | None, trigger_message: str | None) -> TurnPlan | None:
        reply = self.conversation.trigger(trigger_name, trigger_message)
        return plan_from_reply(reply, moderated=False) if reply is not None else None

    def update_template_keys(self, keys: Mapping[str, str]) -> UpdateResult:
        self.conversation.update_template_keys(keys)
        return UpdateResult(message="Template keys updated", extras={"template_keys": dict(keys)})

    def update_dynamic_info(self, text: str) -> UpdateResult:
        self.conversation.set_dynamic_info(text, "replace")
        return UpdateResult(message="Dynamic info updated", extras=self._context_extras(text))

    def context_update(self, data: Mapping[str, Any]) -> UpdateResult:
        mode = data.get("mode", "append")
        if mode not in ("append", "replace", "reset"):
            return UpdateResult("error", f"Invalid mode: {mode}")
        text = data.get("text", "")
        if not isinstance(text, str):
            return UpdateResult("error", "text must be a string")
        run_llm = str(data.get("run_llm", "auto")).lower()
        conv = self.conversation
        before = conv.context_text()
        conv.set_dynamic_info(text, mode)
        config = data.get("action_config")
        present = set(config) if isinstance(config, Mapping) else set()
        if isinstance(config, Mapping) or "current_attention_object" in data:
            update = ActionConfig.from_payload({**(config or {}), **(
                {"current_attention_object": data["current_attention_object"]}
                if "current_attention_object" in data else {})})
            if "current_attention_object" in data:
                present.add("current_attention_object")
            conv.action_config = (conv.action_config or ActionConfig()).merged(update, present)
        content = conv.context_text()
        extras = dict(self._context_extras(content))
        extras["duplicate"] = content == before and mode != "reset"
        plan = None
        if run_llm == "true" and text.strip():
            plan = plan_from_reply(conv.respond(text, source="event"), moderated=False)
        message = f"Context updated successfully ({mode} mode, run_llm={run_llm})"
        return UpdateResult(message=message, extras=extras, plan=plan)

    def _context_extras(self, content: str) -> dict[str, Any]:
        self.revision += 1
        static = estimate_tokens(self.conversation.static_info)
        runtime = estimate_tokens(self.conversation.dynamic_info)
        total = static + runtime
        return {
            "token_count": total, "static_token_count": static, "runtime_token_count": runtime,
            "max_tokens": MAX_TOKENS, "static_max_tokens": STATIC_MAX_TOKENS,
            "runtime_max_tokens": RUNTIME_MAX_TOKENS, "remaining_tokens": max(0, MAX_TOKENS - total),
            "content": self.conversation.context_text(), "update_id": f"ctx-{next(self._update_ids)}",
            "revision": self.revision,
        }

    def update_scene_metadata(self, items: Sequence[Mapping[str, Any]]) -> UpdateResult:
        objects = [SceneObject(str(i.get("name", "")), str(i.get("description", "") or ""))
                   for i in items if i.get("name")]
        self.conversation.set_scene(objects)
        return UpdateResult(message="Scene metadata updated", extras={"count": len(objects)})

    def voice_key(self) -> Hashable:
        return self.conversation.character.voice

    async def speech(self, text: str) -> np.ndarray:
        return await self.synthesizer.pcm(text, self.conversation.character.voice, SAMPLE_RATE)
