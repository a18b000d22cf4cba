"""Backend-neutral events: what the translate layer makes of any Convai shape.

Backends feed Convai's JSON (RTVI, REST, SSE) to a translator and hand the resulting events to their
session; the session alone assigns turn ids, clocks audio and writes protocol messages. So a new
Convai shape variant is a translator change, never a session or daemon change.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np


@dataclass(frozen=True)
class Ready:
    """The backend is connected; the character session id to resume with later."""

    character_session_id: str


@dataclass(frozen=True)
class TurnStart:
    source: str  # text | voice | trigger


@dataclass(frozen=True)
class UserTranscript:
    text: str
    final: bool


@dataclass(frozen=True)
class BotText:
    text: str


@dataclass(frozen=True)
class Word:
    text: str
    start_ms: int | None = None  # from the start of the reply's audio, when the server says
    end_ms: int | None = None


@dataclass(frozen=True)
class Subtitle:
    """Text as it is spoken (word- or sentence-timed), for on-screen subtitles."""

    text: str
    words: tuple[Word, ...] = ()


@dataclass(frozen=True)
class ReplyPhase:
    """The bot's LLM or TTS stage of a reply started or stopped (turn-end inference needs them)."""

    stage: str  # llm | tts
    started: bool


@dataclass(frozen=True)
class BotReply:
    text: str


@dataclass(frozen=True)
class BotSpeaking:
    started: bool


@dataclass(frozen=True)
class BotAudio:
    pcm: np.ndarray  # int16, shape (n,) or (n, channels)
    sample_rate: int
    channels: int


@dataclass(frozen=True)
class AudioEnd:
    """No more audio for the current turn: flush resampler and framer tails."""


@dataclass(frozen=True)
class Actions:
    actions: list[dict[str, str]]


@dataclass(frozen=True)
class Emotion:
    name: str
    scale: int


@dataclass(frozen=True)
class Visemes:
    weights: list[float]
    seconds: float | None = None  # position in the turn's audio when the backend knows it


@dataclass(frozen=True)
class Blendshapes:
    frames: list[list[float]]
    format: str
    fps: int
    first_frame: int | None = None  # index of frames[0] within the turn when known


@dataclass(frozen=True)
class LipsyncCancel:
    valid_through_frame: int | None
    fps: int | None = None


@dataclass(frozen=True)
class Narrative:
    section_id: str
    bt_code: str | None = None
    bt_constants: str | None = None


@dataclass(frozen=True)
class Moderation:
    passed: bool
    reason: str | None = None
    user_input: str | None = None


@dataclass(frozen=True)
class NoResponse:
    reason: str | None = None


@dataclass(frozen=True)
class TurnEnd:
    interrupted: bool = False
    aborted: bool = False
    reason: str | None = None


@dataclass(frozen=True)
class IdleWarning:
    remaining_s: int
    message: str | None = None


@dataclass(frozen=True)
class Metrics:
    kind: str
    data: Any


@dataclass(frozen=True)
class ServerAck:
    """Convai's server-response to a client message: resolves the matching request."""

    event_type: str
    ok: bool
    message: str | None = None
    extras: dict[str, Any] = field(default_factory=dict)
    request_id: str | None = None  # the id of the request it answers, when the server echoes it


@dataclass(frozen=True)
class BackendError:
    code: str
    message: str
    fatal: bool = False
    retryable: bool = False
    status: int | None = None


@dataclass(frozen=True)
class Passthrough:
    name: str
    data: Any = None


@dataclass(frozen=True)
class StateChange:
    """The backend connection is reconnecting or has resumed (same character session)."""

    state: str  # reconnecting | resumed
    attempt: int | None = None
    reason: str | None = None
    character_session_id: str | None = None
    resumed: bool | None = None  # on resumed: whether the conversation (character session) was kept


@dataclass(frozen=True)
class Closed:
    """The backend ended the session on its own (usage limit, kill-pipeline, idle timeout)."""

    reason: str
    message: str | None = None


Event = (
    Ready
    | TurnStart
    | UserTranscript
    | BotText
    | Subtitle
    | ReplyPhase
    | BotReply
    | BotSpeaking
    | BotAudio
    | AudioEnd
    | Actions
    | Emotion
    | Visemes
    | Blendshapes
    | LipsyncCancel
    | Narrative
    | Moderation
    | NoResponse
    | TurnEnd
    | IdleWarning
    | Metrics
    | ServerAck
    | BackendError
    | Passthrough
    | StateChange
    | Closed
)
