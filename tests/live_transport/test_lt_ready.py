"""bot-ready patience: a character that is slow to say bot-ready never fails the session while the room is up.

Real daemon against the emulator's ``slow_start`` and ``websdk`` profiles (bot-ready only after
``bot_ready_delay_s``), over LiveKit signalling + WebRTC on loopback.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from bridge.backends.live import backend as live_backend
from bridge.client import BridgeClient
from bridge.daemon.router import Daemon
from tests.conftest import CHARACTER, daemon_config

emulator_server = pytest.importorskip("convai_emulator.server")
emulator_config = pytest.importorskip("convai_emulator.config")


async def _daemon_client(tmp_path: Path, profile: str, delay: float) -> AsyncIterator[BridgeClient]:
    config = emulator_config.EmulatorConfig(host="127.0.0.1", port=0, profile=profile,
                                            profile_options={"bot_ready_delay_s": delay})
    async with emulator_server.Emulator(config) as emu:
        d = Daemon(daemon_config(tmp_path, emu, request_timeout_s=10.0))
        await d.start()
        c = await BridgeClient.connect(d.endpoint, d.token)
        try:
            yield c
        finally:
            await c.close()
            await d.stop()


@pytest.fixture
async def slow(tmp_path: Path, request: pytest.FixtureRequest) -> AsyncIterator[BridgeClient]:
    profile, delay = request.param
    async for c in _daemon_client(tmp_path, profile, delay):
        yield c


@pytest.mark.parametrize("slow", [("slow_start", 12.0), ("websdk", 12.0)], indirect=True)
async def test_late_bot_ready_is_waited_for(slow: BridgeClient) -> None:
    """bot-ready 12 s late (the daemon used to give up fatally after 10 s): the session opens and talks."""
    started = time.monotonic()
    npc = await slow.open_session(CHARACTER, backend="live", wait_ready=False)
    opened = await npc.wait_for("session_opened", timeout=40)
    assert time.monotonic() - started >= 11  # it waited for bot-ready rather than opening blind
    assert opened["resumed"] is False
    await npc.text("Hello there")
    reply = await npc.wait_for("bot_text", timeout=30)  # the websdk profile has no bot-turn-completed
    assert reply["text"]


@pytest.mark.parametrize("slow", [("slow_start", 6.0)], indirect=True)
async def test_session_opens_without_bot_ready_after_the_grace_period(
    slow: BridgeClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    """After the grace period the session opens anyway, says so, and reports bot-ready when it comes."""
    monkeypatch.setattr(live_backend, "READY_GRACE_S", 1.5)
    npc = await slow.open_session(CHARACTER, backend="live", wait_ready=False)
    await npc.wait_for("session_opened", timeout=20)
    late = await npc.wait_for("session_state", timeout=5)
    assert late["state"] == "ready" and late["reason"].startswith(live_backend.BOT_READY_LATE)
    ack = await npc.request("tts_toggle", enabled=True)  # requests go through meanwhile
    assert ack.type == "ack"
    ready = await npc.wait_for("session_state", timeout=20)
    assert ready["state"] == "ready" and "bot-ready" in ready["reason"]
    await npc.text("Hello there")
    assert (await npc.wait_for("bot_reply", timeout=30))["text"]
