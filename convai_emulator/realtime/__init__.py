"""The emulator's realtime side: a LiveKit-compatible server with a Convai bot, and a direct SDP bot.

``register(app)`` is an extension for ``convai_emulator.http.create_app``: it serves ``/rtc``,
``/rtc/v1``, their ``/validate`` endpoints, ``/api/offer`` and ``/bots/{character_id}/api/offer``,
and installs a room provider so ``POST /connect`` opens a room whose bot speaks as the session's
character with the session's settings. ``realtime_extension(settings)`` does the same with
non-default settings.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime
import ipaddress
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from convai_emulator.live_sessions import LiveSession, RoomGrant
from convai_emulator.profiles import ProfileError
from convai_emulator.roster import Character
from convai_emulator.state import (
    ADDRESS,
    CONFIG,
    CONVERSATIONS,
    LIVE_SESSIONS,
    LIVEKIT,
    PROFILES,
    ROOM_PROVIDER,
    ROSTER,
    STT,
    SYNTH,
)

from .bot import BotConfig, BotSession
from .characters import ConversationPersona, shapes_for
from .direct import DirectServer, UnknownCharacter
from .loopback import enable_loopback_candidates
from .rooms import Room, RoomRegistry, SessionBinding
from .settings import RealtimeSettings
from .shapes import ShapeOptions
from .signalling import SignallingServer
from .tokens import TokenAuthority

__all__ = [
    "REALTIME", "BotConfig", "BotSession", "EmulatorRoomProvider", "Realtime", "RealtimeSettings", "Room",
    "ShapeOptions", "enable_loopback_candidates", "realtime_extension", "register",
]


@dataclass
class Realtime:
    """Live state of the realtime side, at ``app[REALTIME]`` (tests and admin read it)."""

    settings: RealtimeSettings
    tokens: TokenAuthority
    rooms: RoomRegistry
    signalling: SignallingServer
    direct: DirectServer


REALTIME = web.AppKey("convai_emulator_realtime", Realtime)


def _ws_base(http_base: str) -> str:
    base = http_base.rstrip("/")
    if base.startswith("https://"):
        return "wss://" + base[len("https://"):]
    if base.startswith("http://"):
        return "ws://" + base[len("http://"):]
    return base


class EmulatorRoomProvider:
    """``/connect`` → a room on this server with the session's character as its bot."""

    def __init__(self, app: web.Application, realtime: Realtime) -> None:
        self.app = app
        self.realtime = realtime

    def binding(self, session: LiveSession) -> SessionBinding:
        settings = self.realtime.settings
        base = BotConfig(shapes=shapes_for(session.character), idle_warning_s=settings.idle_warning_s,
                         idle_remaining_s=settings.idle_remaining_s, llm_chunk_delay_s=settings.llm_chunk_delay_s,
                         viseme_fps=settings.viseme_fps)
        profile = session.profile
        config = BotConfig.from_connect({**session.request, "session_id": session.session_id},
                                        base.with_profile(profile)).forced_by(profile)
        return SessionBinding(ConversationPersona(session.conversation, self.app[SYNTH]), config,
                              session_id=session.session_id, bot_identity=session.bot_identity,
                              bot_name=session.character.name, recognizer=self.app[STT])

    async def create_room(self, session: LiveSession) -> RoomGrant:
        room_name = f"convai-{session.session_id}"
        self.realtime.rooms.create(room_name, self.binding(session))
        name = (session.end_user_metadata or {}).get("name") or session.user_identity
        token = self.realtime.tokens.mint(session.user_identity, room_name, name=str(name),
                                          metadata={"session_id": session.session_id},
                                          ttl=None)
        config = self.app[CONFIG]
        base = config.public_url or self.app[ADDRESS].base_url or session.origin
        return RoomGrant(_ws_base(base), room_name, token)


def _default_bindings(app: web.Application, settings: RealtimeSettings
                      ) -> Callable[[str | None, Mapping[str, Any]], SessionBinding]:
    """Bots for rooms and peers that no ``/connect`` created: a fresh conversation per bot."""

    def make(character_id: str | None, fields: Mapping[str, Any]) -> SessionBinding:
        session_id = fields.get("session_id")
        session = app[LIVE_SESSIONS].get(session_id) if isinstance(session_id, str) else None
        if session is not None and (character_id is None or character_id == session.character.character_id):
            return EmulatorRoomProvider(app, app[REALTIME]).binding(session)
        roster = app[ROSTER]
        character: Character | None = roster.get(character_id) if character_id else next(iter(roster), None)
        if character is None:
            raise UnknownCharacter(character_id or "")
        conversation = app[CONVERSATIONS].create(character)
        try:
            profile = app[PROFILES].resolve(character.character_id, character.profile, fields)
        except ProfileError as exc:
            raise UnknownCharacter(str(exc)) from exc
        base = BotConfig(shapes=shapes_for(character), idle_warning_s=settings.idle_warning_s,
                         idle_remaining_s=settings.idle_remaining_s, llm_chunk_delay_s=settings.llm_chunk_delay_s,
                         viseme_fps=settings.viseme_fps).with_profile(profile)
        config = BotConfig.from_connect(fields, base).forced_by(profile)
        return SessionBinding(ConversationPersona(conversation, app[SYNTH]), config, bot_name=character.name,
                              recognizer=app[STT])

    return make


def _loopback_host(host: str) -> bool:
    if host == "localhost":
        return True
    with contextlib.suppress(ValueError):
        return ipaddress.ip_address(host).is_loopback
    return False


def realtime_extension(settings: RealtimeSettings | None = None) -> Callable[[web.Application], None]:
    chosen = settings or RealtimeSettings()

    def extension(app: web.Application) -> None:
        install(app, chosen)

    return extension


def register(app: web.Application) -> None:
    """Extension for ``create_app``: the realtime routes and the room provider, default settings."""
    install(app, RealtimeSettings())


def install(app: web.Application, settings: RealtimeSettings) -> Realtime:
    # A loopback-bound emulator offers only 127.0.0.1 candidates; otherwise loopback is added.
    enable_loopback_candidates(only=_loopback_host(app[CONFIG].host))
    credentials = app[LIVEKIT]
    tokens = TokenAuthority(credentials.api_key, credentials.api_secret,
                            ttl=datetime.timedelta(seconds=app[CONFIG].token_ttl_s))
    bindings = _default_bindings(app, settings)
    rooms = RoomRegistry(lambda _name: bindings(None, {}), settings.empty_room_timeout_s)
    realtime = Realtime(settings, tokens, rooms, SignallingServer(rooms, tokens, settings),
                        DirectServer(bindings, settings))
    app[REALTIME] = realtime
    app[ROOM_PROVIDER] = EmulatorRoomProvider(app, realtime)
    realtime.signalling.add_routes(app)
    realtime.direct.add_routes(app)

    async def session_ended(session: LiveSession, _reason: str) -> None:
        room = rooms.by_session(session.session_id)
        if room is not None:
            await room.close()

    app[LIVE_SESSIONS].on_end(session_ended)

    async def room_closed(room: Room) -> None:  # the bot ended it (kill-pipeline) or it sat empty
        if room.session_id:
            await app[LIVE_SESSIONS].end(room.session_id, "room_closed")

    rooms.closed_listeners.append(room_closed)

    async def shutdown(_app: web.Application) -> None:
        await realtime.signalling.close()
        await realtime.direct.close()
        await rooms.close_all()

    app.on_shutdown.append(shutdown)

    async def prewarm_stt(_app: web.Application) -> None:  # load a decoder before the first utterance
        recognizer = app[STT]
        if recognizer is not None and app[CONFIG].prewarm_audio:
            asyncio.get_running_loop().run_in_executor(None, recognizer.prewarm)

    app.on_startup.append(prewarm_stt)
    return realtime
