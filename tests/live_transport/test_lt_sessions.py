"""Live sessions against the emulator as Convai's clients meet them: the /connect body, session ids, idle timer.

Real daemon, real emulator (HTTP + LiveKit signalling + WebRTC on loopback); a recording proxy in
front of the emulator's ``/connect`` shows exactly what the daemon sent.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from bridge.client import BridgeClient
from bridge.daemon.router import Daemon
from tests.conftest import CHARACTER, daemon_config
from tests.live_transport.lt_proxy import ConnectProxy

emulator_server = pytest.importorskip("convai_emulator.server")
emulator_config = pytest.importorskip("convai_emulator.config")
emulator_realtime = pytest.importorskip("convai_emulator.realtime")

WEB_SDK_EMOTION = {"provider": "llm", "min_word_threshold": 3, "low_intensity_threshold": 0.33,
                   "high_intensity_threshold": 0.66}


@pytest.fixture
async def emu() -> AsyncIterator[Any]:
    settings = emulator_realtime.RealtimeSettings(idle_warning_s=2.0, idle_remaining_s=60)
    config = emulator_config.EmulatorConfig(host="127.0.0.1", port=0)
    async with emulator_server.Emulator(config, [emulator_realtime.realtime_extension(settings)]) as e:
        yield e


@pytest.fixture
async def proxy(emu: Any) -> AsyncIterator[ConnectProxy]:
    p = ConnectProxy(emu.live_url)
    await p.start()
    yield p
    await p.close()


@pytest.fixture
async def client(tmp_path: Path, emu: Any, proxy: ConnectProxy) -> AsyncIterator[BridgeClient]:
    d = Daemon(daemon_config(tmp_path, emu, live_url=proxy.url))
    await d.start()
    c = await BridgeClient.connect(d.endpoint, d.token)
    yield c
    await c.close()
    await d.stop()


async def test_connect_body_carries_web_sdk_fields(client: BridgeClient, proxy: ConnectProxy) -> None:
    npc = await client.open_session(CHARACTER, backend="live")
    body = proxy.connects[-1]
    assert body["llm_provider"] == "dynamic"
    assert body["emotion_config"] == WEB_SDK_EMOTION
    assert "character_session_id" not in body
    await npc.close()

    npc = await client.open_session(CHARACTER, backend="live", llm_provider="gemini-live",
                                    emotion_config={"provider": "nrclex"})
    body = proxy.connects[-1]
    assert body["llm_provider"] == "gemini-live"
    assert body["emotion_config"] == {**WEB_SDK_EMOTION, "provider": "nrclex"}
    await npc.close()

    npc = await client.open_session(CHARACTER, backend="live", emotion_config={})
    assert "emotion_config" not in proxy.connects[-1]  # an empty map turns emotions off
    await npc.close()


async def test_minus_one_means_no_session(client: BridgeClient, proxy: ConnectProxy) -> None:
    npc = await client.open_session(CHARACTER, backend="live", character_session_id="-1")
    assert len(proxy.connects) == 1 and "character_session_id" not in proxy.connects[0]
    assert npc.opened["resumed"] is False and npc.opened["character_session_id"] not in ("-1", "")


async def test_stale_session_falls_back_to_a_fresh_one_once(client: BridgeClient, proxy: ConnectProxy) -> None:
    first = await client.open_session(CHARACTER, backend="live")
    await first.collect_turn(await first.text("My name is Tamsin."), timeout=30)
    csid = first.character_session_id
    await first.close()
    again = await client.open_session(CHARACTER, backend="live", character_session_id=csid)
    assert proxy.connects[-1]["character_session_id"] == csid
    assert again.opened["resumed"] is True and again.character_session_id == csid
    events = await again.collect_turn(await again.text("What is my name?"), timeout=30)
    assert "Tamsin" in next(m for m in events if m.type == "bot_reply")["text"]
    await again.close()

    proxy.connects.clear()
    proxy.answers.clear()
    npc = await client.open_session(CHARACTER, backend="live", character_session_id="no-such-session")
    assert [b.get("character_session_id") for b in proxy.connects] == ["no-such-session", None]
    assert proxy.answers[0][0] in (400, 404) and proxy.answers[1][0] == 200
    assert npc.opened["resumed"] is False
    assert npc.character_session_id == proxy.answers[1][1]["character_session_id"]
    events = await npc.collect_turn(await npc.text("Hello there"), timeout=30)
    assert "bot_reply" in [m.type for m in events]


async def test_reset_idle_timer_keeps_the_session_from_idling(client: BridgeClient) -> None:
    """The emulator warns after 2 s of silence; reset_idle_timer (Convai's reset-idle-timer) renews it."""
    npc = await client.open_session(CHARACTER, backend="live")
    await npc.collect_turn(await npc.text("Hi"), timeout=30)  # the idle clock starts after the turn
    seen: list[str] = []
    end = time.monotonic() + 5.0
    while time.monotonic() < end:
        ack = await npc.request("reset_idle_timer")
        assert ack.type == "ack" and ack.get("result", {}).get("acknowledged", True) is not False
        await asyncio.sleep(0.6)
        while not npc.events.empty():
            seen.append(npc.events.get_nowait().type)
    assert "idle_warning" not in seen
    # The daemon does not renew the timer by itself: left alone, the session idles.
    warning = await npc.wait_for("idle_warning", timeout=10)
    assert warning["remaining_s"] == 60


async def test_stale_session_profile_400_falls_back_once(tmp_path: Path) -> None:
    """The emulator's stale_session profile answers as Unity expects: 400 Invalid character_session_id."""
    config = emulator_config.EmulatorConfig(host="127.0.0.1", port=0, profile="stale_session")
    async with emulator_server.Emulator(config) as emu:
        proxy = ConnectProxy(emu.live_url)
        await proxy.start()
        d = Daemon(daemon_config(tmp_path, emu, live_url=proxy.url))
        await d.start()
        c = await BridgeClient.connect(d.endpoint, d.token)
        try:
            npc = await c.open_session(CHARACTER, backend="live", character_session_id="expired-0001")
            assert proxy.answers[0] == (400, {"detail": "Invalid character_session_id"})
            assert [b.get("character_session_id") for b in proxy.connects] == ["expired-0001", None]
            assert npc.opened["resumed"] is False and npc.character_session_id
        finally:
            await c.close()
            await d.stop()
            await proxy.close()
