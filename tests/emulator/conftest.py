"""Fixtures: a real emulator on 127.0.0.1 (OS-assigned port) and an HTTP client session."""

from __future__ import annotations

from collections.abc import AsyncIterator

import aiohttp
import pytest

from convai_emulator.server import Emulator
from tests.emulator.emulator_support import make_config


@pytest.fixture
async def emulator() -> AsyncIterator[Emulator]:
    async with Emulator(make_config()) as emu:
        yield emu


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=15)) as session:
        yield session
