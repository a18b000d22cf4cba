"""What every Convai surface implements for a session.

A backend talks to Convai and reports translated events through `sink`; it never touches the engine
socket. Requests it cannot serve raise ProtocolError("unsupported"), so the client gets a clear
answer instead of silence.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import numpy as np

from bridge.config import Config
from bridge.translate.events import Event
from bridge.wire.errors import ProtocolError

Sink = Callable[[Event], None]


@dataclass
class OpenParams:
    """session_open fields the backend forwards to Convai (protocol names)."""

    character_id: str
    character_session_id: str | None = None
    end_user_id: str | None = None
    end_user_metadata: dict[str, Any] | None = None
    connection_type: str | None = None
    dynamic_info: dict[str, Any] | None = None
    scene_description: list[dict[str, Any]] | None = None
    narrative_template_keys: dict[str, str] | None = None
    action_config: dict[str, Any] | None = None
    debug: bool = False
    voice: bool = True
    lipsync: dict[str, Any] | None = None
    transport: str | None = None
    url: str | None = None
    audio_routing: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass
class BackendContext:
    config: Config
    http: aiohttp.ClientSession
    sink: Sink
    label: str = ""


class Backend(ABC):
    name: str = ""
    capabilities: tuple[str, ...] = ()
    transport: str | None = None

    def __init__(self, ctx: BackendContext, params: OpenParams) -> None:
        self.ctx = ctx
        self.params = params
        self.character_session_id: str | None = params.character_session_id

    @abstractmethod
    async def open(self) -> str:
        """Connect; return the character_session_id."""

    @abstractmethod
    async def close(self) -> None: ...

    async def send_text(self, text: str) -> dict[str, Any] | None:
        raise self._unsupported("text")

    def audio_in(self, pcm: np.ndarray, sample_rate: int, channels: int) -> None:
        raise self._unsupported("audio_in")

    async def end_of_utterance(self) -> dict[str, Any] | None:
        raise self._unsupported("end_of_utterance")

    async def trigger(self, name: str, message: str | None) -> dict[str, Any] | None:
        raise self._unsupported("trigger")

    async def context_update(self, fields: dict[str, Any]) -> dict[str, Any] | None:
        raise self._unsupported("context_update")

    async def dynamic_info(self, info: dict[str, Any]) -> dict[str, Any] | None:
        raise self._unsupported("dynamic_info")

    async def scene_update(self, scene: list[dict[str, Any]]) -> dict[str, Any] | None:
        raise self._unsupported("scene_update")

    async def template_keys(self, keys: dict[str, str]) -> dict[str, Any] | None:
        raise self._unsupported("template_keys")

    async def interrupt(self) -> dict[str, Any] | None:
        raise self._unsupported("interrupt")

    async def tts_toggle(self, enabled: bool) -> dict[str, Any] | None:
        raise self._unsupported("tts_toggle")

    async def stt_toggle(self, muted: bool) -> dict[str, Any] | None:
        raise self._unsupported("stt_toggle")

    async def reset_idle_timer(self) -> dict[str, Any] | None:
        raise self._unsupported("reset_idle_timer")

    def _unsupported(self, what: str) -> ProtocolError:
        return ProtocolError("unsupported", f"the {self.name} backend does not support {what}")
