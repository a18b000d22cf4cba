"""When a bot reply is over, with or without Convai's `bot-turn-completed`.

Convai's web SDK and Unreal plugin end a turn on `bot-stopped-speaking` / `bot-llm-stopped` and never
read `bot-turn-completed` (convai-apis.md §19), and stock RTVI bots never send it. So a reply also
ends once its LLM, TTS and speaking have all stopped and stayed stopped for a grace period; a
`bot-turn-completed` that comes later for the same reply is swallowed, so no turn completes twice.
End events of a reply the user already superseded (a new text or trigger) are dropped too, so they
cannot complete the new turn.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from bridge.translate import events as ev

SPOKEN_GRACE_S = 1.0  # after the last stop of a reply that spoke
SILENT_GRACE_S = 2.5  # a reply with text only may still get TTS (synthesis can lag the LLM)

_REPLY_START = (ev.BotText, ev.Actions, ev.Emotion, ev.BotReply, ev.NoResponse)


class ReplyEnd:
    def __init__(self, on_end: Callable[[], None], expect_speech: Callable[[], bool]) -> None:
        self._on_end = on_end
        self._expect_speech = expect_speech
        self.active = False  # a reply is under way
        self.llm = self.tts = self.speaking = False
        self.spoke = False
        self.inferred = False  # the current reply was ended here; its late bot-turn-completed is swallowed
        self.stale = False  # the user superseded the reply: its end events belong to a finished turn
        self._timer: asyncio.TimerHandle | None = None
        self.inferred_ends = 0

    def _reset(self) -> None:
        self._cancel()
        self.active = self.llm = self.tts = self.speaking = self.spoke = False

    def _cancel(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def user_request(self) -> None:
        """A new text/trigger turn: what is left of the previous reply must not end it."""
        self._reset()
        self.stale = True
        self.inferred = False

    def interrupted(self) -> None:
        self._reset()
        self.inferred = False

    def observe(self, e: ev.Event) -> bool:
        """Track one routed event; False means drop it."""
        if isinstance(e, ev.TurnEnd):
            if self.stale or self.inferred:
                return False
            self._reset()
            return True
        if isinstance(e, ev.TurnStart | ev.UserTranscript):
            self.stale = False
            if isinstance(e, ev.TurnStart):
                self._reset()
                self.inferred = False
            return True
        started = isinstance(e, _REPLY_START) or (isinstance(e, ev.ReplyPhase | ev.BotSpeaking) and e.started)
        if started:
            self._start()
        if isinstance(e, ev.ReplyPhase):
            if e.stage == "llm":
                self.llm = e.started
            else:
                self.tts = e.started
        elif isinstance(e, ev.BotSpeaking):
            self.speaking = e.started
            self.spoke = self.spoke or e.started
        elif isinstance(e, ev.BotAudio):
            self.spoke = True
        if self.stale and isinstance(e, ev.ReplyPhase | ev.BotSpeaking) and not e.started:
            return False  # the superseded reply winding down
        self._arm()
        return True

    def _start(self) -> None:
        if self.stale or self.inferred:
            self.stale = False
            self.inferred = False
            self._reset()
        self.active = True
        self._cancel()

    def _arm(self) -> None:
        self._cancel()
        if not self.active or self.llm or self.tts or self.speaking:
            return
        grace = SPOKEN_GRACE_S if self.spoke or not self._expect_speech() else SILENT_GRACE_S
        self._timer = asyncio.get_running_loop().call_later(grace, self._fire)

    def _fire(self) -> None:
        self._timer = None
        if not self.active or self.llm or self.tts or self.speaking:
            return
        self._reset()
        self.inferred = True
        self.inferred_ends += 1
        self._on_end()

    def close(self) -> None:
        self._cancel()
