"""The character lookup (`POST /character/get`) at open is optional: only a bad key makes it fatal."""

from __future__ import annotations

import aiohttp
import pytest

from bridge.client import BridgeClient, BridgeError
from tests.conftest import CHARACTER


async def fault(emulator: object, body: dict) -> None:
    async with aiohttp.ClientSession() as http:
        async with http.post(emulator.rest_url + "/_emulator/faults", json=body) as resp:  # type: ignore[attr-defined]
            assert resp.status == 200, await resp.text()


async def lookups(emulator: object, status: int) -> int:
    async with aiohttp.ClientSession() as http:
        async with http.get(emulator.rest_url + "/_emulator/state") as resp:  # type: ignore[attr-defined]
            stats = await resp.json()
    return int(stats["statuses"].get("POST /character/get", {}).get(str(status), 0))


@pytest.mark.parametrize("backend", ["interaction", "stream"])
@pytest.mark.parametrize("status", [404, 500])
async def test_failed_character_lookup_does_not_prevent_the_conversation(
    client: BridgeClient, emulator: object, backend: str, status: int
) -> None:
    await fault(emulator, {"status": status, "paths": ["/character/get"]})
    npc = await client.open_session(CHARACTER, backend=backend, voice=False)
    assert npc.opened["backend"] == backend
    assert await lookups(emulator, status) >= 1  # the lookup was made and failed, the session opened regardless
    turn = await npc.text("Hello! My name is Ada.")
    events = await npc.collect_turn(turn, timeout=30)
    assert not any(m.type == "error" for m in events)
    assert next(m for m in events if m.type == "bot_reply")["text"]
    assert events[-1]["interrupted"] is False and "aborted" not in events[-1].header


async def test_lookup_refused_for_the_key_still_fails_the_open(client: BridgeClient, emulator: object) -> None:
    await fault(emulator, {"status": 401, "paths": ["/character/get"]})
    with pytest.raises(BridgeError) as info:
        await client.open_session(CHARACTER, backend="interaction")
    assert info.value.code == "convai_unauthorized" and info.value.fatal
