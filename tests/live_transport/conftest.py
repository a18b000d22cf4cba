"""Fixtures for the live transport tests: fake LiveKit and SmallWebRTC servers on 127.0.0.1:0."""

from __future__ import annotations

import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

from lt_fake_livekit import FakeLiveKit  # noqa: E402
from lt_fake_smallwebrtc import FakeSmallWebRTC  # noqa: E402


@pytest.fixture
async def livekit() -> AsyncIterator[FakeLiveKit]:
    server = FakeLiveKit()
    await server.start()
    try:
        yield server
    finally:
        await server.stop()


@pytest.fixture
async def smallwebrtc() -> AsyncIterator[FakeSmallWebRTC]:
    server = FakeSmallWebRTC()
    await server.start()
    try:
        yield server
    finally:
        await server.stop()
