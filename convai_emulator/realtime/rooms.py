"""Rooms of the emulator's LiveKit-compatible server: participants, one Convai bot, data relay.

A room is created by ``/connect`` (through :class:`EmulatorRoomProvider`) with the session's
character and settings, or on demand when a valid token names an unknown room. It closes when its
Convai session is disconnected, when the bot ends the pipeline, or after it stays empty.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
import string
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Protocol

from livekit.protocol import models, rtc

from convai_emulator.stt import SpeechRecognizer

from .bot import BotConfig, BotSession
from .persona import Persona
from .playout import Speaker

log = logging.getLogger(__name__)

_ALPHABET = string.ascii_letters + string.digits


def make_sid(prefix: str) -> str:
    """LiveKit-style ids: the official SDK rejects (aborts on) ids without these prefixes."""
    return prefix + "".join(secrets.choice(_ALPHABET) for _ in range(12))


@dataclass
class SessionBinding:
    """What the bot of a room needs: who it is and how it behaves."""

    persona: Persona
    config: BotConfig
    session_id: str = ""
    bot_identity: str = ""
    bot_name: str = ""
    recognizer: SpeechRecognizer | None = None  # speech recognition for voice turns (None: measurements)


class RoomMember(Protocol):
    sid: str
    identity: str

    def info(self) -> models.ParticipantInfo: ...

    def send_data(self, packet: bytes) -> None: ...

    async def send_signal(self, response: rtc.SignalResponse) -> None: ...

    async def disconnect(self, reason: int) -> None: ...


class Room:
    def __init__(self, name: str, binding: SessionBinding, *, empty_timeout_s: float,
                 on_closed: Callable[[Room], None]) -> None:
        self.name = name
        self.sid = make_sid("RM_")
        self.created = time.time()
        self.binding = binding
        self.session_id = binding.session_id
        self.bot_identity = binding.bot_identity or f"character-{binding.persona.character_id}"
        self.bot_name = binding.bot_name or binding.persona.character_name
        self.bot_sid = make_sid("PA_")
        self.bot_track_sid = make_sid("TR_")
        self.bot_joined_ms = int(self.created * 1000)
        self.empty_timeout_s = empty_timeout_s
        self.speaker = Speaker()
        self.bot = BotSession(binding.persona, binding.config, self._bot_send, self.speaker,
                              on_close_request=self._bot_close_request,
                              participant_identity=self.bot_identity, recognizer=binding.recognizer)
        self.bot.room_name = name
        self.members: dict[str, RoomMember] = {}
        self._on_closed = on_closed
        self._empty_task: asyncio.Task[None] | None = None
        self.closed = False
        self.bot.start()
        self._arm_empty_timer()

    # --- descriptions -----------------------------------------------------------------------
    def room_info(self) -> models.Room:
        return models.Room(
            sid=self.sid, name=self.name, empty_timeout=int(self.empty_timeout_s), departure_timeout=20,
            max_participants=0, creation_time=int(self.created), creation_time_ms=int(self.created * 1000),
            enabled_codecs=[models.Codec(mime="audio/opus")], num_participants=len(self.members) + 1,
            num_publishers=1 + sum(1 for m in self.members.values() if m.info().tracks),
        )

    def bot_track(self) -> models.TrackInfo:
        return models.TrackInfo(
            sid=self.bot_track_sid, type=models.TrackType.AUDIO, name="agent-audio",
            source=models.TrackSource.MICROPHONE, mime_type="audio/opus", stream=f"{self.bot_sid}|{self.bot_track_sid}",
        )

    def bot_info(self) -> models.ParticipantInfo:
        return models.ParticipantInfo(
            sid=self.bot_sid, identity=self.bot_identity, name=self.bot_name,
            state=models.ParticipantInfo.State.ACTIVE, tracks=[self.bot_track()],
            joined_at=self.bot_joined_ms // 1000, joined_at_ms=self.bot_joined_ms,
            kind=models.ParticipantInfo.Kind.AGENT, is_publisher=True,
            permission=models.ParticipantPermission(can_subscribe=True, can_publish=True, can_publish_data=True),
            attributes={"lk.agent.state": "listening", "character_id": self.binding.persona.character_id},
        )

    def others(self, member: RoomMember) -> list[models.ParticipantInfo]:
        return [self.bot_info()] + [m.info() for m in self.members.values() if m is not member]

    @property
    def stream_id(self) -> str:
        return f"{self.bot_sid}|{self.bot_track_sid}"

    # --- membership -------------------------------------------------------------------------
    async def add(self, member: RoomMember) -> None:
        for other in list(self.members.values()):
            if other.identity == member.identity:
                await other.disconnect(models.DisconnectReason.DUPLICATE_IDENTITY)
                self.members.pop(other.sid, None)
        self.members[member.sid] = member
        if self._empty_task is not None:
            self._empty_task.cancel()
            self._empty_task = None
        await self.broadcast_update(member.info(), exclude=member)

    async def remove(self, member: RoomMember) -> None:
        if self.members.pop(member.sid, None) is None:
            return
        gone = member.info()
        gone.state = models.ParticipantInfo.State.DISCONNECTED
        await self.broadcast_update(gone, exclude=member)
        if not self.members:
            self._arm_empty_timer()

    async def broadcast_update(self, info: models.ParticipantInfo, exclude: RoomMember | None = None) -> None:
        update = rtc.SignalResponse(update=rtc.ParticipantUpdate(participants=[info]))
        for other in list(self.members.values()):
            if other is not exclude:
                with contextlib.suppress(Exception):
                    await other.send_signal(update)

    def _arm_empty_timer(self) -> None:
        if self.closed or self.empty_timeout_s <= 0:
            return
        self._empty_task = asyncio.get_running_loop().create_task(self._close_when_empty())

    async def _close_when_empty(self) -> None:
        await asyncio.sleep(self.empty_timeout_s)
        if not self.members:
            await self.close()

    # --- data -------------------------------------------------------------------------------
    def _bot_send(self, text: str) -> None:
        packet = models.DataPacket(
            kind=models.DataPacket.Kind.RELIABLE, participant_identity=self.bot_identity,
            user=models.UserPacket(payload=text.encode("utf-8"), participant_identity=self.bot_identity),
        ).SerializeToString()
        for member in self.members.values():
            member.send_data(packet)

    def relay(self, sender: RoomMember, packet: models.DataPacket) -> None:
        """Forward a participant's data to the other participants it is addressed to."""
        if not self.members or len(self.members) < 2:
            return
        packet.participant_identity = sender.identity
        targets = set(packet.destination_identities)
        raw = packet.SerializeToString()
        for member in self.members.values():
            if member is not sender and (not targets or member.identity in targets):
                member.send_data(raw)

    def on_client_data(self, sender: RoomMember, packet: models.DataPacket) -> None:
        if packet.WhichOneof("value") != "user":
            return
        targets = set(packet.destination_identities) | set(packet.user.destination_identities)
        if not targets or self.bot_identity in targets:
            self.bot.handle_payload(packet.user.payload, sender.identity)
        self.relay(sender, packet)

    # --- lifetime ---------------------------------------------------------------------------
    async def _bot_close_request(self, reason: str) -> None:
        log.info("room %s: bot ends the session (%s)", self.name, reason)
        await asyncio.sleep(0.2)  # let the ack leave first
        await self.close(models.DisconnectReason.ROOM_CLOSED)

    async def close(self, reason: int = models.DisconnectReason.ROOM_DELETED) -> None:
        if self.closed:
            return
        self.closed = True
        if self._empty_task is not None and self._empty_task is not asyncio.current_task():
            self._empty_task.cancel()
        for member in list(self.members.values()):
            with contextlib.suppress(Exception):
                await member.disconnect(reason)
        self.members.clear()
        await self.bot.close()
        await self.speaker.close()
        self._on_closed(self)


class RoomRegistry:
    """Rooms by name; ``default_binding`` makes the bot for rooms nobody created via ``/connect``."""

    def __init__(self, default_binding: Callable[[str], SessionBinding], empty_timeout_s: float = 30.0) -> None:
        self.rooms: dict[str, Room] = {}
        self.closed_listeners: list[Callable[[Room], Awaitable[None]]] = []
        self.default_binding = default_binding
        self.empty_timeout_s = empty_timeout_s

    def create(self, name: str, binding: SessionBinding) -> Room:
        existing = self.rooms.get(name)
        if existing is not None and not existing.closed:
            raise ValueError(f"room {name!r} exists")
        room = Room(name, binding, empty_timeout_s=self.empty_timeout_s, on_closed=self._forget)
        self.rooms[name] = room
        return room

    def get_or_create(self, name: str) -> Room:
        room = self.rooms.get(name)
        if room is None or room.closed:
            room = self.create(name, self.default_binding(name))
        return room

    def by_session(self, session_id: str) -> Room | None:
        return next((r for r in self.rooms.values() if r.session_id == session_id and not r.closed), None)

    def _forget(self, room: Room) -> None:
        if self.rooms.get(room.name) is room:
            del self.rooms[room.name]
        for listener in self.closed_listeners:
            task = asyncio.ensure_future(listener(room))
            task.add_done_callback(lambda t: t.cancelled() or t.exception() and log.error(
                "room listener failed", exc_info=t.exception()))

    async def close_all(self) -> None:
        for room in list(self.rooms.values()):
            await room.close(models.DisconnectReason.SERVER_SHUTDOWN)
