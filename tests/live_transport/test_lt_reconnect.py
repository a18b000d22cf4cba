"""Network blips on a live session: the daemon keeps the room (no new /connect) and the conversation.

Real daemon and emulator; the daemon reaches the emulator's LiveKit signalling through a TCP relay
(:class:`tests.live_transport.lt_proxy.TcpRelay`) that a test cuts like a dropped network path, and
its ``/connect`` through a recording proxy, so the number of ``/connect`` calls is known.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from bridge.client import BridgeClient, NpcSession
from bridge.daemon.router import Daemon
from tests.conftest import CHARACTER, daemon_config
from tests.live_transport.lt_proxy import ConnectProxy

emulator_server = pytest.importorskip("convai_emulator.server")
emulator_config = pytest.importorskip("convai_emulator.config")


@dataclass
class Rig:
    emu: Any
    proxy: ConnectProxy
    daemon: Daemon
    client: BridgeClient

    def backend(self, npc: NpcSession) -> Any:
        return self.daemon.sessions[npc.sid].backend

    async def live_sessions(self) -> list[dict[str, Any]]:
        async with aiohttp.ClientSession() as http:
            async with http.get(self.emu.base_url + "/_emulator/state") as resp:
                return list((await resp.json())["live_sessions"])


async def _rig(tmp_path: Path, **emu_options: Any) -> AsyncIterator[Rig]:
    config = emulator_config.EmulatorConfig(host="127.0.0.1", port=0, **emu_options)
    async with emulator_server.Emulator(config) as emu:
        proxy = ConnectProxy(emu.live_url)
        await proxy.start(relay_signalling=True)
        d = Daemon(daemon_config(tmp_path, emu, live_url=proxy.url))
        await d.start()
        c = await BridgeClient.connect(d.endpoint, d.token)
        try:
            yield Rig(emu, proxy, d, c)
        finally:
            await c.close()
            await d.stop()
            await proxy.close()


@pytest.fixture
async def rig(tmp_path: Path) -> AsyncIterator[Rig]:
    async for r in _rig(tmp_path):
        yield r


async def _states_until_resumed(npc: NpcSession, timeout: float = 40) -> list[Any]:
    states = []
    while True:
        msg = await npc.wait_for("session_state", timeout=timeout)
        states.append(msg)
        if msg["state"] == "resumed":
            return states


async def _introduce(npc: NpcSession) -> None:
    events = await npc.collect_turn(await npc.text("My name is Tamsin."), timeout=30)
    assert "bot_reply" in [m.type for m in events]


async def _remembers(npc: NpcSession) -> None:
    events = await npc.collect_turn(await npc.text("What is my name?"), timeout=30)
    assert "Tamsin" in next(m for m in events if m.type == "bot_reply")["text"]


def _room_of(rig: Rig) -> Any:
    realtime = pytest.importorskip("convai_emulator.realtime")
    return rig.emu.app[realtime.REALTIME].rooms.by_session(rig.proxy.answers[0][1]["session_id"])


async def test_signalling_blip_keeps_the_room_and_the_conversation(rig: Rig) -> None:
    npc = await rig.client.open_session(CHARACTER, backend="live")
    await _introduce(npc)
    before = await rig.live_sessions()
    assert rig.proxy.relay is not None

    assert rig.proxy.relay.cut() >= 1  # the signalling WebSocket dies mid-conversation
    states = await _states_until_resumed(npc)
    assert [s["state"] for s in states][0] == "reconnecting"
    assert states[-1]["resumed"] is True and states[-1]["character_session_id"] == npc.character_session_id

    assert len(rig.proxy.connects) == 1 and rig.proxy.disconnects == 0  # no new /connect
    after = await rig.live_sessions()
    assert [s["session_id"] for s in after] == [s["session_id"] for s in before]  # the same Convai session
    stats = rig.backend(npc).stats
    assert (stats["signal_resumes"], stats["room_rejoins"]) == (1, 0)  # resumed in place
    room = _room_of(rig)
    users = [m for m in room.members.values() if getattr(m, "resumes", None) is not None]
    assert len(users) == 1 and users[0].resumes == 1  # the same participant, on a new socket
    await _remembers(npc)


async def test_room_gone_falls_back_to_connect_with_the_same_session(rig: Rig) -> None:
    """The in-room resume cannot work (the Convai session ended meanwhile): re-/connect, same character_session_id."""
    npc = await rig.client.open_session(CHARACTER, backend="live")
    await _introduce(npc)
    csid = npc.character_session_id
    relay = rig.proxy.relay
    assert relay is not None
    relay.refuse = True
    relay.cut()
    session_id = rig.proxy.answers[0][1]["session_id"]
    async with aiohttp.ClientSession() as http:  # Convai ends the session while the network is down
        async with http.post(rig.emu.live_url + "/disconnect", params={"session_id": session_id}) as resp:
            assert resp.status == 200
    relay.refuse = False

    states = await _states_until_resumed(npc)
    assert states[-1]["resumed"] is True and states[-1]["character_session_id"] == csid
    assert [b.get("character_session_id") for b in rig.proxy.connects] == [None, csid]
    await _remembers(npc)


async def test_stale_session_on_reconnect_falls_back_to_a_fresh_one(tmp_path: Path) -> None:
    """The re-/connect finds its character_session_id expired (stale_session: 400): fresh conversation, said so."""
    async for rig in _rig(tmp_path, profile="stale_session", max_conversations=1):
        npc = await rig.client.open_session(CHARACTER, backend="live")
        await _introduce(npc)
        csid = npc.character_session_id
        other = await rig.client.open_session(CHARACTER, backend="live")  # evicts npc's conversation
        await other.close()
        relay = rig.proxy.relay
        assert relay is not None
        relay.refuse = True
        relay.cut()
        async with aiohttp.ClientSession() as http:
            await http.post(rig.emu.live_url + "/disconnect",
                            params={"session_id": rig.proxy.answers[0][1]["session_id"]})
        relay.refuse = False

        states = await _states_until_resumed(npc)
        assert states[-1]["resumed"] is False
        assert states[-1]["character_session_id"] not in (None, csid)
        assert (400, {"detail": "Invalid character_session_id"}) in rig.proxy.answers
        assert rig.proxy.connects[-2].get("character_session_id") == csid
        assert "character_session_id" not in rig.proxy.connects[-1]
        events = await npc.collect_turn(await npc.text("Hello again"), timeout=30)
        assert "bot_reply" in [m.type for m in events]


async def test_media_path_failure_rejoins_the_same_room(rig: Rig) -> None:
    """The peer connections die while signalling is up (aiortc has no ICE restart): same room, no /connect."""
    npc = await rig.client.open_session(CHARACTER, backend="live")
    await _introduce(npc)
    room = _room_of(rig)
    users = [m for m in room.members.values() if getattr(m, "pub_pc", None) is not None]
    assert len(users) == 1
    for pc in (users[0].pub_pc, users[0].sub_pc):
        if pc is not None:
            await pc.close()  # the server side of the media path goes away

    states = await _states_until_resumed(npc)
    assert states[0]["state"] == "reconnecting" and states[-1]["resumed"] is True
    assert len(rig.proxy.connects) == 1 and rig.proxy.disconnects == 0
    assert rig.backend(npc).stats["room_rejoins"] == 1
    assert room.members and not room.closed  # the same room carries on
    await _remembers(npc)
