"""Fixtures for the live transport tests: fake LiveKit and SmallWebRTC servers on 127.0.0.1:0."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from tests.live_transport.lt_fake_livekit import FakeLiveKit
from tests.live_transport.lt_fake_smallwebrtc import FakeSmallWebRTC


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
