"""Server profiles (convai_emulator.profiles) over real sockets: admin route, /connect, a LiveKit client."""

from __future__ import annotations

import uuid
from typing import Any

import aiohttp
import pytest
from conftest import BRAKKA, connect
from emu_lk_client import LkClient, payload

from convai_emulator.config import DEV_API_KEY, EmulatorConfig
from convai_emulator.realtime import RealtimeSettings, realtime_extension
from convai_emulator.roster import load_roster, parse_roster
from convai_emulator.server import Emulator

HEADERS = {"x-api-key": DEV_API_KEY}
NEUROSYNC = {"blendshape_provider": "neurosync",
             "blendshape_config": {"enable_chunking": True, "chunk_size": 10, "format": "arkit", "output_fps": 60}}


async def set_profile(emu: Emulator, **body: Any) -> tuple[int, dict[str, Any]]:
    async with aiohttp.ClientSession() as http:
        response = await http.post(f"{emu.base_url}/_emulator/profile", json=body)
        return response.status, await response.json()


async def joined(emu: Emulator, **fields: Any) -> tuple[dict[str, Any], LkClient]:
    body = await connect(emu, **fields)
    client = LkClient(body["room_url"], body["token"])
    await client.connect()
    return body, client


async def text_turn(client: LkClient, text: str = "wave", timeout: float = 20.0) -> None:
    before = len(client.find("bot-stopped-speaking"))
    client.send_json({"label": "rtvi-ai", "type": "user_text_message", "id": uuid.uuid4().hex, "data": {"text": text}})
    await client.wait_type("bot-stopped-speaking", timeout, count=before + 1)


async def test_admin_route_lists_and_sets_profiles(emulator: Emulator) -> None:
    status, snap = await set_profile(emulator, profile="nonsense")
    assert status == 400 and "unknown profile" in snap["detail"]
    status, snap = await set_profile(emulator, profile="slow_start", options={"bot_ready_delay_s": "x"})
    assert status == 400
    status, snap = await set_profile(emulator, profile="legacy", character_id="no-such-character")
    assert status == 400
    async with aiohttp.ClientSession() as http:
        snap = await (await http.get(f"{emulator.base_url}/_emulator/profile")).json()
    assert set(snap["profiles"]) == {"current", "websdk", "stale_session", "legacy", "slow_start"}
    assert snap["default"]["name"] == "current"
    status, snap = await set_profile(emulator, profile="slow_start", options={"bot_ready_delay_s": 1.5})
    assert status == 200 and snap["default"]["name"] == "slow_start"
    assert snap["default"]["bot_ready_delay_s"] == 1.5
    status, snap = await set_profile(emulator, profile="legacy", character_id=BRAKKA)
    assert snap["characters"][BRAKKA]["name"] == "legacy"
    status, snap = await set_profile(emulator, clear=True)
    assert snap["default"]["name"] == "current" and snap["characters"] == {}


async def test_current_profile_wraps_and_completes_turns(emulator: Emulator) -> None:
    _body, client = await joined(emulator)
    try:
        await text_turn(client)
        await client.wait_type("bot-turn-completed", 10)
        completed = client.find("bot-turn-completed")[0].message
        assert completed["type"] == "server-message"
        assert client.find("interaction-created")[0].message["type"] == "server-message"
        assert client.find("bot-ready")
    finally:
        await client.close()


async def test_stale_session_profile_rejects_unknown_character_session_id(emulator: Emulator) -> None:
    stale = str(uuid.uuid4())
    async with aiohttp.ClientSession() as http:
        url = f"{emulator.base_url}/connect"
        response = await http.post(url, json={"character_id": BRAKKA, "character_session_id": stale}, headers=HEADERS)
        assert response.status == 404  # current profile: the emulator's documented choice
        await set_profile(emulator, profile="stale_session")
        response = await http.post(url, json={"character_id": BRAKKA, "character_session_id": stale}, headers=HEADERS)
        assert response.status == 400
        assert await response.json() == {"detail": "Invalid character_session_id"}
        form = aiohttp.FormData({"character_id": BRAKKA, "text_input": "hi", "character_session_id": stale})
        response = await http.post(f"{emulator.base_url}/connect/stream", data=form, headers=HEADERS)
        assert response.status == 400 and (await response.json())["detail"] == "Invalid character_session_id"
        # Unity retries once without the id: that works, and the new id then resumes
        response = await http.post(url, json={"character_id": BRAKKA}, headers=HEADERS)
        assert response.status == 200
        known = (await response.json())["character_session_id"]
        response = await http.post(url, json={"character_id": BRAKKA, "character_session_id": known}, headers=HEADERS)
        assert response.status == 200 and (await response.json())["character_session_id"] == known


async def test_slow_start_delays_bot_ready_and_answers_client_ready_then(emulator: Emulator) -> None:
    await set_profile(emulator, profile="slow_start", options={"bot_ready_delay_s": 2.0})
    _body, client = await joined(emulator)
    try:
        opened = client.elapsed()
        await client.wait_type("interaction-created", 10)
        client.send_json({"label": "rtvi-ai", "type": "client-ready", "id": "cr-1",
                          "data": {"version": "1.2.0", "about": {"library": "ue_sdk"}}})
        # text works while the bot is not ready (the web SDK does not wait for bot-ready)
        client.send_json({"label": "rtvi-ai", "type": "user_text_message", "id": "t1", "data": {"text": "hi"}})
        await client.wait_type("bot-llm-started", 10)
        assert "bot-ready" not in client.types()
        ready = (await client.wait_type("bot-ready", 15))[0]
        assert ready.t - opened >= 1.8, ready.t - opened
        assert ready.message["id"] == "cr-1"
    finally:
        await client.close()


async def test_slow_start_default_is_twenty_seconds() -> None:
    from convai_emulator.profiles import get_profile

    assert get_profile("slow_start").bot_ready_delay_s == 20.0


async def test_websdk_profile(emulator: Emulator) -> None:
    await set_profile(emulator, profile="websdk", options={"bot_ready_delay_s": 1.0})
    _body, client = await joined(emulator, **NEUROSYNC)
    try:
        opened = client.elapsed()
        ready = (await client.wait_type("bot-ready", 10))[0]
        assert ready.t - opened >= 0.8
        await text_turn(client, "wave")
        await client.wait_type("blendshape-turn-stats", 10)
        await client.wait_for(lambda: client.elapsed() > client.find("blendshape-turn-stats")[0].t + 0.5, 5)
        types = client.types()
        assert "bot-turn-completed" not in types
        first_chunk = types.index("chunked-neurosync-blendshapes")
        assert first_chunk < types.index("bot-started-speaking")
        chunks = [payload(r.message) for r in client.find("chunked-neurosync-blendshapes")]
        assert all(c["fps"] == 90 for c in chunks)  # the web SDK's output_fps, whatever was requested
        assert [c["sequence"] for c in chunks] == list(range(len(chunks)))
        starts = [c["start_frame_index"] for c in chunks]
        sizes = [len(c["blendshapes"]) for c in chunks]
        assert starts == [sum(sizes[:i]) for i in range(len(sizes))]
        frame = chunks[0]["blendshapes"][0]
        assert isinstance(frame, dict) and len(frame) == 61 and "JawOpen" in frame and "EyeBlinkLeft" in frame
        stats = payload(client.find("blendshape-turn-stats")[0].message)["stats"]
        assert stats["fps"] == 90.0 and stats["total_blendshapes"] == sum(sizes)
    finally:
        await client.close()


async def test_legacy_profile_flat_shapes(emulator: Emulator) -> None:
    await set_profile(emulator, profile="legacy")
    _body, client = await joined(emulator)
    try:
        client.send_json({"label": "rtvi-ai", "type": "user_text_message", "id": "l1",
                          "data": {"text": "please wave"}})
        await client.wait_type("bot-turn-completed", 20)
        wrapped = [r.message for r in client.messages if r.message.get("type") == "server-message"]
        assert wrapped == [], wrapped[:3]
        ack = next(r.message for r in client.messages if r.message.get("id") == "l1")
        assert ack["type"] == "server-response" and ack["event_type"] == "user_text_message"
        created = client.find("interaction-created")[0].message
        assert created["data"]["interaction_id"]
        actions = client.find("action-response")
        assert actions and all(isinstance(a, str) for a in actions[0].message["data"]["actions"])
        emotion = client.find("bot-emotion")[0].message
        assert isinstance(emotion["data"]["emotion"], str)
        assert client.find("bot-turn-completed")[0].message["data"]["was_interrupted"] is False
        assert client.find("visemes")[0].message["type"] == "visemes"
    finally:
        await client.close()


async def test_roster_profile_per_character_and_connect_override(tmp_path: Any) -> None:
    import tomllib

    from convai_emulator.roster import DEFAULT_ROSTER_PATH

    data = tomllib.loads(DEFAULT_ROSTER_PATH.read_text())
    data["characters"][0]["profile"] = "websdk"
    parse_roster(data)  # valid
    bad = {**data, "characters": [{**data["characters"][0], "profile": "nope"}]}
    with pytest.raises(ValueError, match="profile must be one of"):
        parse_roster(bad)
    path = tmp_path / "roster.toml"
    path.write_text(_to_toml(data))
    assert load_roster(path).characters[0].profile == "websdk"
    settings = RealtimeSettings(first_refresh_token_s=0.5)
    async with Emulator(EmulatorConfig(roster_path=path), [realtime_extension(settings)]) as emu:
        _body, client = await joined(emu)
        try:
            await text_turn(client)
            await client.wait_for(lambda: client.elapsed() > client.find("bot-stopped-speaking")[-1].t + 1.0, 5)
            assert "bot-turn-completed" not in client.types()  # websdk, from the roster
        finally:
            await client.close()
        _body, client = await joined(emu, emulator_profile="current")  # per session wins
        try:
            await text_turn(client)
            await client.wait_type("bot-turn-completed", 10)
        finally:
            await client.close()
        async with aiohttp.ClientSession() as http:
            state = await (await http.get(f"{emu.base_url}/_emulator/state")).json()
        assert {s["profile"] for s in state["live_sessions"]} <= {"websdk", "current"}


async def test_cli_profile_flag_reaches_the_config() -> None:
    import argparse

    from convai_emulator.cli import add_arguments, config_from_args

    parser = argparse.ArgumentParser()
    add_arguments(parser)
    config = config_from_args(parser.parse_args(["--profile", "slow_start", "--bot-ready-delay", "3"]))
    assert config.profile == "slow_start" and dict(config.profile_options) == {"bot_ready_delay_s": 3.0}
    async with Emulator(config, [realtime_extension(RealtimeSettings())]) as emu:
        async with aiohttp.ClientSession() as http:
            snap = await (await http.get(f"{emu.base_url}/_emulator/profile")).json()
    assert snap["default"]["name"] == "slow_start" and snap["default"]["bot_ready_delay_s"] == 3.0
    with pytest.raises(SystemExit):
        parser.parse_args(["--profile", "bogus"])


def _to_toml(data: dict[str, Any]) -> str:
    """Just enough TOML writing for the shipped roster's structure (tables, arrays of tables, inline values)."""
    import json

    def value(v: Any) -> str:
        if isinstance(v, bool):
            return "true" if v else "false"
        if isinstance(v, int | float):
            return repr(v)
        if isinstance(v, str):
            return json.dumps(v)
        if isinstance(v, list):
            return "[" + ", ".join(value(i) for i in v) + "]"
        if isinstance(v, dict):
            return "{" + ", ".join(f"{k} = {value(i)}" for k, i in v.items()) + "}"
        raise TypeError(type(v))

    lines: list[str] = []

    def table(prefix: str, t: dict[str, Any], array: bool) -> None:
        lines.append(f"[[{prefix}]]" if array else f"[{prefix}]")
        nested: list[tuple[str, Any]] = []
        for k, v in t.items():
            if isinstance(v, list) and v and all(isinstance(i, dict) for i in v):
                nested.append((k, v))
            else:
                lines.append(f"{k} = {value(v)}")
        for k, items in nested:
            for item in items:
                table(f"{prefix}.{k}", item, True)

    for key, v in data.items():
        if isinstance(v, dict):
            table(key, v, False)
    for key, v in data.items():
        if isinstance(v, list):
            for item in v:
                table(key, item, True)
    return "\n".join(lines) + "\n"
