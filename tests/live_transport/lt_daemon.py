"""A real daemon with no Convai behind it, for tests whose bot is a self-hosted RTVI peer (transport sdp)."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from pathlib import Path
from types import SimpleNamespace

from bridge.client import BridgeClient
from bridge.daemon.router import Daemon
from tests.conftest import daemon_config


@contextlib.asynccontextmanager
async def daemon_client(tmp_path: Path) -> AsyncIterator[BridgeClient]:
    nowhere = SimpleNamespace(rest_url="http://127.0.0.1:9", live_url="http://127.0.0.1:9")
    d = Daemon(daemon_config(tmp_path, nowhere))
    await d.start()
    c = await BridgeClient.connect(d.endpoint, d.token)
    try:
        yield c
    finally:
        await c.close()
        await d.stop()
