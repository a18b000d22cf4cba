"""Shared fixtures: a real emulator on loopback, a real daemon bound to a free port, real clients."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from bridge.client import BridgeClient
from bridge.config import Config, Secret
from bridge.daemon.router import Daemon

CHARACTER = "c0ffee00-0000-4000-8000-000000000001"


@pytest.fixture
async def emulator() -> AsyncIterator[object]:
    from convai_emulator.server import Emulator, EmulatorConfig

    async with Emulator(EmulatorConfig(host="127.0.0.1", port=0)) as emu:
        yield emu


def daemon_config(tmp_path: Path, emu: object, **overrides: object) -> Config:
    from convai_emulator.server import DEV_API_KEY

    cfg = Config(
        endpoint="tcp://127.0.0.1:0",
        connection_file=tmp_path / "connection.json",
        api_key=Secret(DEV_API_KEY),
        rest_url=emu.rest_url,  # type: ignore[attr-defined]
        live_url=emu.live_url,  # type: ignore[attr-defined]
        request_timeout_s=5.0,
        retry_base_s=0.05,
        retry_cap_s=0.2,
    )
    for key, value in overrides.items():
        setattr(cfg, key, value)
    return cfg


@pytest.fixture
async def daemon(tmp_path: Path, emulator: object) -> AsyncIterator[Daemon]:
    d = Daemon(daemon_config(tmp_path, emulator))
    await d.start()
    yield d
    await d.stop()


@pytest.fixture
async def client(daemon: Daemon) -> AsyncIterator[BridgeClient]:
    c = await BridgeClient.connect(daemon.endpoint, daemon.token)
    yield c
    await c.close()
