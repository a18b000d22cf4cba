"""Fixtures: an emulator with the realtime extension on 127.0.0.1:0, /connect helpers, a bot harness."""

from __future__ import annotations

import asyncio
import json
import sys
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import aiohttp
import pytest

sys.path.insert(0, str(Path(__file__).parent))

from emu_lk_client import event_type  # noqa: E402

from convai_emulator.brain import ConversationStore  # noqa: E402
from convai_emulator.config import DEV_API_KEY, EmulatorConfig  # noqa: E402
from convai_emulator.realtime import RealtimeSettings, realtime_extension  # noqa: E402
from convai_emulator.realtime.bot import BotConfig, BotSession  # noqa: E402
from convai_emulator.realtime.characters import ConversationPersona, shapes_for  # noqa: E402
from convai_emulator.realtime.playout import Speaker  # noqa: E402
from convai_emulator.realtime.shapes import ShapeOptions  # noqa: E402
from convai_emulator.roster import load_roster  # noqa: E402
from convai_emulator.server import Emulator  # noqa: E402
from convai_emulator.voice import Synthesizer  # noqa: E402

BRAKKA = "c0ffee00-0000-4000-8000-000000000001"


@pytest.fixture
async def emulator() -> AsyncIterator[Emulator]:
    settings = RealtimeSettings(first_refresh_token_s=0.5, empty_room_timeout_s=5.0)
    async with Emulator(EmulatorConfig(), [realtime_extension(settings)]) as emu:
        yield emu


async def connect(emu: Emulator, **fields: Any) -> dict[str, Any]:
    body = {"character_id": BRAKKA, **fields}
    async with aiohttp.ClientSession() as http:
        response = await http.post(f"{emu.base_url}/connect", json=body, headers={"x-api-key": DEV_API_KEY})
        assert response.status == 200, await response.text()
        return await response.json()


class BotHarness:
    """A BotSession wired to a list, for wire-shape tests without WebRTC."""

    def __init__(self, config: BotConfig, character_id: str = BRAKKA) -> None:
        roster = load_roster()
        character = roster.get(character_id)
        assert character is not None
        self.conversation = ConversationStore(roster).create(character)
        self.persona = ConversationPersona(self.conversation, Synthesizer("synthetic"))
        self.sent: list[dict[str, Any]] = []
        self.speaker = Speaker()
        self.closed_with: list[str] = []
        self.bot = BotSession(self.persona, config, lambda text: self.sent.append(json.loads(text)), self.speaker,
                              on_close_request=self.closed_with.append, participant_identity="bot")
        self.bot.user_id = "PA_user"

    @classmethod
    def with_shapes(cls, **shapes: Any) -> BotHarness:
        return cls(BotConfig(shapes=ShapeOptions(**shapes), llm_chunk_delay_s=0.0))

    def send(self, message: dict[str, Any] | str) -> None:
        self.bot.handle_payload(message if isinstance(message, str) else json.dumps(message), "PA_user")

    def types(self) -> list[str]:
        return [event_type(m) for m in self.sent]

    def of(self, type_: str) -> list[dict[str, Any]]:
        return [m for m in self.sent if event_type(m) == type_]

    async def wait(self, predicate: Callable[[], bool], timeout: float = 10.0, what: str = "") -> None:
        deadline = time.monotonic() + timeout
        while not predicate():
            assert time.monotonic() < deadline, f"timed out waiting for {what}: {self.types()[-20:]}"
            await asyncio.sleep(0.01)

    async def wait_type(self, type_: str, count: int = 1, timeout: float = 10.0) -> None:
        await self.wait(lambda: len(self.of(type_)) >= count, timeout, type_)

    async def close(self) -> None:
        await self.bot.close()
        await self.speaker.close()


@pytest.fixture
async def harness_factory() -> AsyncIterator[Callable[..., BotHarness]]:
    made: list[BotHarness] = []

    def make(config: BotConfig | None = None, **shapes: Any) -> BotHarness:
        h = BotHarness(config) if config is not None else BotHarness.with_shapes(**shapes)
        made.append(h)
        return h

    yield make
    for h in made:
        await h.close()


__all__ = ["BRAKKA", "BotHarness", "connect", "shapes_for"]
