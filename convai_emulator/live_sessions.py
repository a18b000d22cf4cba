"""Live API sessions created by ``POST /connect`` and the seam to the realtime side.

``LiveSessionRegistry`` is what other emulator modules read: a session carries every validated
``/connect`` field, the character and its ``Conversation``. Listeners registered with ``on_start`` /
``on_end`` learn when sessions appear and end (``/disconnect``, idle reaping, shutdown), so a realtime
room can be set up and torn down. ``RoomProvider`` decides what ``room_url``/``room_name``/``token``
a LiveKit session gets; the default mints a LiveKit-style token for this very server.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import math
import time
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, Protocol

from convai_emulator.brain import Conversation
from convai_emulator.profiles import PROFILES, ServerProfile
from convai_emulator.roster import Character
from convai_emulator.tokens import LiveKitCredentials, mint_token

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class RoomGrant:
    room_url: str
    room_name: str | None
    token: str


@dataclass(eq=False)
class LiveSession:
    session_id: str
    character: Character
    conversation: Conversation
    transport: str  # normalised: "livekit" | "daily" | "websocket"
    connection_type: str
    request: dict[str, Any]  # the validated /connect body, defaults filled in
    key_id: str  # fingerprint of the API key that created it (never the key itself)
    request_trace_id: str
    user_identity: str
    bot_identity: str
    origin: str  # scheme://host:port the /connect request reached
    end_user_id: str | None = None
    end_user_metadata: dict[str, Any] | None = None
    room_url: str | None = None
    room_name: str | None = None
    token: str | None = field(default=None, repr=False)
    created_at: float = field(default_factory=time.time)
    last_activity: float = field(default_factory=time.monotonic)
    profile: ServerProfile = field(default_factory=lambda: PROFILES["current"])
    ended: bool = False
    end_reason: str | None = None

    @property
    def character_session_id(self) -> str:
        return self.conversation.character_session_id

    @property
    def audio_output(self) -> dict[str, Any] | None:
        """``audio_config.output`` with defaults, or None when audio goes only over the media track."""
        config = self.request.get("audio_config")
        return config.get("output") if isinstance(config, dict) else None

    @property
    def audio_chunk_ms(self) -> int:
        """``max_chunk_duration_ms`` rounded up to 10 ms, as Convai does (95 → 100, 45 → 50)."""
        output = self.audio_output or {}
        return int(math.ceil(int(output.get("max_chunk_duration_ms", 100)) / 10.0) * 10)

    def touch(self) -> None:
        self.last_activity = time.monotonic()

    def summary(self) -> dict[str, Any]:
        return {"session_id": self.session_id, "character_id": self.character.character_id,
                "character_session_id": self.character_session_id, "transport": self.transport,
                "room_name": self.room_name, "user_identity": self.user_identity,
                "bot_identity": self.bot_identity, "end_user_id": self.end_user_id,
                "profile": self.profile.name, "created_at": self.created_at}


class RoomProvider(Protocol):
    async def create_room(self, session: LiveSession) -> RoomGrant: ...


Listener = Callable[[LiveSession, str], Awaitable[None] | None]


class LiveKitRoomProvider:
    """Rooms on this server: ``room_url`` = ws:// base of the emulator, token = LiveKit JWT."""

    def __init__(self, credentials: LiveKitCredentials, base_url: Callable[[LiveSession], str],
                 ttl_s: int = 6 * 3600) -> None:
        self.credentials = credentials
        self.base_url = base_url
        self.ttl_s = ttl_s

    async def create_room(self, session: LiveSession) -> RoomGrant:
        room = f"convai-{session.session_id}"
        name = (session.end_user_metadata or {}).get("name") if session.end_user_metadata else None
        token = mint_token(self.credentials, session.user_identity, room, name=name or session.user_identity,
                           ttl_s=self.ttl_s)
        http_base = self.base_url(session).rstrip("/")
        ws_base = "wss://" + http_base[8:] if http_base.startswith("https://") else (
            "ws://" + http_base[7:] if http_base.startswith("http://") else http_base)
        return RoomGrant(ws_base, room, token)


class LiveSessionRegistry:
    """Active sessions by id. ``on_start`` listeners are awaited before ``/connect`` answers, so a room
    can be ready when the client joins; realtime code should call ``session.touch()`` on activity,
    or the session is ended as idle after ``EmulatorConfig.live_session_idle_s``."""

    def __init__(self) -> None:
        self._sessions: dict[str, LiveSession] = {}
        self._start_listeners: list[Listener] = []
        self._end_listeners: list[Listener] = []

    def __len__(self) -> int:
        return len(self._sessions)

    def __iter__(self) -> Iterator[LiveSession]:
        return iter(list(self._sessions.values()))

    def on_start(self, listener: Listener) -> None:
        self._start_listeners.append(listener)

    def on_end(self, listener: Listener) -> None:
        """``listener(session, reason)``; may be async. Reasons: disconnect, idle, shutdown, or the caller's."""
        self._end_listeners.append(listener)

    def get(self, session_id: str) -> LiveSession | None:
        return self._sessions.get(session_id)

    def by_room(self, room_name: str) -> LiveSession | None:
        return next((s for s in self._sessions.values() if s.room_name == room_name), None)

    def active_count(self, key_id: str) -> int:
        return sum(1 for s in self._sessions.values() if s.key_id == key_id)

    async def add(self, session: LiveSession) -> None:
        self._sessions[session.session_id] = session
        await self._notify(self._start_listeners, session, "connect")

    async def end(self, session_id: str, reason: str = "disconnect") -> LiveSession | None:
        session = self._sessions.pop(session_id, None)
        if session is None:
            return None
        session.ended = True
        session.end_reason = reason
        await self._notify(self._end_listeners, session, reason)
        return session

    async def end_all(self, reason: str = "shutdown") -> None:
        for session_id in list(self._sessions):
            await self.end(session_id, reason)

    async def reap_idle(self, max_idle_s: float) -> int:
        cutoff = time.monotonic() - max_idle_s
        stale = [s.session_id for s in self._sessions.values() if s.last_activity < cutoff]
        for session_id in stale:
            await self.end(session_id, "idle")
        return len(stale)

    @staticmethod
    async def _notify(listeners: list[Listener], session: LiveSession, reason: str) -> None:
        for listener in list(listeners):
            try:
                result = listener(session, reason)
                if inspect.isawaitable(result):
                    await result
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("live session listener failed for %s", session.session_id)
