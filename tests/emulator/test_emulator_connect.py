"""Live API HTTP side: /connect, /disconnect, /healthz, FastAPI-style errors, the session registry."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import aiohttp
import jwt
from aiohttp import web
from livekit.api import TokenVerifier

from convai_emulator.config import DEV_API_KEY
from convai_emulator.http import LIVE_SESSIONS, LIVEKIT
from convai_emulator.live_sessions import LiveSession
from convai_emulator.server import Emulator
from convai_emulator.tokens import verify_token
from tests.emulator.emulator_support import (
    BLACKSMITH,
    GUARD,
    INNKEEPER,
    LIVE_HEADERS,
    SECOND_KEY,
    make_config,
)

RESPONSE_KEYS = ["session_id", "request_trace_id", "character_session_id", "room_url", "room_name", "token",
                 "end_user_id", "end_user_metadata"]


async def connect(http: aiohttp.ClientSession, emu: Emulator, body: Any,
                  headers: dict[str, str] | None = None) -> tuple[int, Any]:
    async with http.post(f"{emu.live_url}/connect", json=body,
                         headers=LIVE_HEADERS if headers is None else headers) as resp:
        return resp.status, await resp.json()


async def test_connect_response_and_token(http: aiohttp.ClientSession, emulator: Emulator) -> None:
    status, body = await connect(http, emulator, {"character_id": BLACKSMITH},
                                 headers={"x-api-key": DEV_API_KEY})
    assert status == 200 and list(body) == RESPONSE_KEYS
    assert body["room_url"] == f"ws://127.0.0.1:{emulator.port}"
    assert body["end_user_id"] is None and body["end_user_metadata"] is None
    assert body["request_trace_id"].startswith("req_")
    credentials = emulator.app[LIVEKIT]
    claims = TokenVerifier(credentials.api_key, credentials.api_secret).verify(body["token"])
    assert claims.video.room == body["room_name"] and claims.video.room_join
    assert claims.video.can_publish and claims.video.can_subscribe and claims.video.can_publish_data
    raw = verify_token(credentials, body["token"])
    assert raw["iss"] == credentials.api_key and raw["sub"] and raw["exp"] > raw["nbf"]
    try:
        jwt.decode(body["token"], "wrong-secret" * 3, algorithms=["HS256"])
        raise AssertionError("a token must not verify with another secret")
    except jwt.InvalidSignatureError:
        pass

    session = emulator.app[LIVE_SESSIONS].get(body["session_id"])
    assert session is not None and session.character.character_id == BLACKSMITH
    assert session.character_session_id == body["character_session_id"]
    assert session.request["transport"] == "livekit" and session.request["llm_provider"] == "dynamic"
    assert emulator.app[LIVE_SESSIONS].by_room(body["room_name"]) is session


async def test_connect_with_w12_body(http: aiohttp.ClientSession, emulator: Emulator) -> None:
    body = {
        "character_id": BLACKSMITH, "end_user_id": "  player-1  ", "end_user_metadata": {"name": "Alice"},
        "transport": "livekit", "connection_type": "audio", "blendshape_provider": "none",
        "blendshape_config": {"enable_chunking": True, "chunk_size": 10, "format": "mha",
                              "frames_buffer_duration": 0, "output_fps": 90},
        "llm_provider": "dynamic",
        "emotion_config": {"provider": "llm", "min_word_threshold": 3, "low_intensity_threshold": 0.33,
                           "high_intensity_threshold": 0.66},
        "default_tts_enabled": True,
        "action_config": {"actions": ["Move To", "Pick Up"], "characters": [], "objects": [{"name": "Torch"}],
                          "currentAttentionObject": "Torch"},
        "narrative_template_keys": {"player_name": "Alice"},
        "dynamic_info": {"text": "It is raining."},
        "audio_config": {"output": {"audio_routing": "both", "max_chunk_duration_ms": 95}},
    }
    status, resp = await connect(http, emulator, body)
    assert status == 200
    assert resp["end_user_id"] == "player-1" and resp["end_user_metadata"] == {"name": "Alice"}
    session = emulator.app[LIVE_SESSIONS].get(resp["session_id"])
    assert session is not None and session.audio_chunk_ms == 100
    assert session.audio_output["audio_routing"] == "both" and session.audio_output["add_wav_header"] is False
    reply = session.conversation.respond("grab it")
    assert [a.to_object() for a in reply.actions] == [{"name": "Move To", "target": "Torch"},
                                                      {"name": "Pick Up", "target": "Torch"}]
    assert session.conversation.greet().text == "Welcome to my forge, Alice! Mind the sparks."
    assert session.conversation.respond("any news").text == "Word is: It is raining."


async def test_validation_errors(http: aiohttp.ClientSession, emulator: Emulator) -> None:
    status, body = await connect(http, emulator, {"character_id": BLACKSMITH, "transport": "sse"})
    assert status == 422 and body == {"detail": [{
        "type": "value_error", "loc": ["body", "transport"], "msg": "Value error, Invalid transport: sse",
        "input": "sse", "ctx": {"error": {}}}]}
    status, body = await connect(http, emulator, {})
    assert status == 422 and body["detail"][0]["type"] == "missing"
    assert body["detail"][0]["loc"] == ["body", "character_id"] and body["detail"][0]["msg"] == "Field required"
    for bad, expected in ((5, "greater_than_equal"), (1001, "less_than_equal"), ("x", "int_parsing")):
        status, body = await connect(http, emulator, {
            "character_id": BLACKSMITH, "audio_config": {"output": {"max_chunk_duration_ms": bad}}})
        assert status == 422 and body["detail"][0]["type"] == expected
        assert body["detail"][0]["loc"] == ["body", "audio_config", "output", "max_chunk_duration_ms"]
    status, body = await connect(http, emulator, {"character_id": BLACKSMITH, "connection_type": "hologram",
                                                  "debug": "maybe", "shared_session_key": "no spaces!"})
    assert status == 422  # every error is reported, in field order
    assert [e["type"] for e in body["detail"]] == ["literal_error", "string_pattern_mismatch", "bool_parsing"]
    literal = next(e for e in body["detail"] if e["type"] == "literal_error")
    assert literal["msg"] == "Input should be 'audio' or 'video'"
    status, body = await connect(http, emulator, [1, 2])
    assert status == 422 and body["detail"][0]["type"] == "model_attributes_type"
    async with http.post(f"{emulator.live_url}/connect", data=b"{not json", headers={
            **LIVE_HEADERS, "Content-Type": "application/json"}) as resp:
        body = await resp.json()
        assert resp.status == 422 and body["detail"][0]["type"] == "json_invalid"


async def test_semantic_errors(http: aiohttp.ClientSession, emulator: Emulator) -> None:
    status, body = await connect(http, emulator, {"character_id": BLACKSMITH, "transport": "websocket",
                                                  "audio_config": {"output": {"audio_routing": "data_only"}}})
    assert (status, body) == (400, {"detail": "audio_config is only supported with LiveKit transport, but "
                                              "transport is set to 'websocket'"})
    status, body = await connect(http, emulator, {"character_id": "11111111-1111-4111-8111-111111111111"})
    assert (status, body) == (404, {"detail": "Character not found or doesn't belong to user"})
    status, body = await connect(http, emulator, {"character_id": INNKEEPER})
    assert status == 400 and body["detail"].startswith("Missing end_user_id. end_user_id is required when")
    status, body = await connect(http, emulator, {"character_id": INNKEEPER, "end_user_id": "  "})
    assert status == 400
    status, body = await connect(http, emulator, {"character_id": INNKEEPER, "end_user_id": "u1"})
    assert status == 200
    status, body = await connect(http, emulator, {"character_id": BLACKSMITH,
                                                  "character_session_id": str(uuid.uuid4())})
    assert status == 404
    _, first = await connect(http, emulator, {"character_id": BLACKSMITH})
    status, body = await connect(http, emulator, {"character_id": GUARD,
                                                  "character_session_id": first["character_session_id"]})
    assert status == 403


async def test_auth(http: aiohttp.ClientSession, emulator: Emulator) -> None:
    status, body = await connect(http, emulator, {"character_id": BLACKSMITH}, headers={})
    assert (status, body) == (401, {"detail": "Authentication required: provide X-API-Key or API-AUTH-TOKEN"})
    status, body = await connect(http, emulator, {"character_id": BLACKSMITH}, headers={"X-API-Key": "nope"})
    assert (status, body) == (401, {"detail": "Invalid API key"})
    # 401 comes before body validation
    status, _ = await connect(http, emulator, {"transport": "sse"}, headers={"X-API-Key": "nope"})
    assert status == 401
    _, live = await connect(http, emulator, {"character_id": BLACKSMITH})
    status, _ = await connect(http, emulator, {"character_id": BLACKSMITH},
                              headers={"API-AUTH-TOKEN": live["session_id"]})
    assert status == 200


async def test_transports(http: aiohttp.ClientSession, emulator: Emulator) -> None:
    status, body = await connect(http, emulator, {"character_id": BLACKSMITH, "transport": "internal"})
    assert status == 200 and body["room_url"].startswith("ws://")
    status, body = await connect(http, emulator, {"character_id": BLACKSMITH, "transport": "websocket"})
    assert status == 200 and body["token"] == "" and body["room_name"] is None
    assert body["room_url"] == f"ws://127.0.0.1:{emulator.port}/chat?session_id={body['session_id']}"
    status, body = await connect(http, emulator, {"character_id": BLACKSMITH, "transport": "daily"})
    assert status == 400


async def test_concurrency_cap_and_disconnect(http: aiohttp.ClientSession, emulator: Emulator) -> None:
    ids = []
    for _ in range(3):
        status, body = await connect(http, emulator, {"character_id": BLACKSMITH})
        assert status == 200
        ids.append(body["session_id"])
    status, body = await connect(http, emulator, {"character_id": BLACKSMITH})
    assert status == 429 and "Concurrency limit" in body["detail"]
    status, _ = await connect(http, emulator, {"character_id": BLACKSMITH}, headers={"X-API-Key": SECOND_KEY})
    assert status == 200  # the cap is per API key

    async with http.post(f"{emulator.live_url}/disconnect", params={"session_id": ids[0]}) as resp:
        assert resp.status == 200
        assert await resp.json() == {"status": "success", "message": "Session disconnected successfully"}
    assert emulator.app[LIVE_SESSIONS].get(ids[0]) is None
    status, _ = await connect(http, emulator, {"character_id": BLACKSMITH})
    assert status == 200


async def test_disconnect_forms_and_listeners(http: aiohttp.ClientSession) -> None:
    ended: list[tuple[str, str]] = []
    started: list[str] = []

    def extension(app: web.Application) -> None:
        async def on_end(session: LiveSession, reason: str) -> None:
            ended.append((session.session_id, reason))

        app[LIVE_SESSIONS].on_start(lambda s, _r: started.append(s.session_id))
        app[LIVE_SESSIONS].on_end(on_end)

    async with Emulator(make_config(), extensions=[extension]) as emu:
        status, body = await connect(http, emu, {"character_id": BLACKSMITH})
        assert started == [body["session_id"]]
        url = f"{emu.live_url}/disconnect"
        async with http.post(url, params={"session_id": body["session_id"]}) as resp:
            assert resp.status == 200
        assert ended == [(body["session_id"], "disconnect")]
        async with http.post(url, params={"session_id": str(uuid.uuid4())}) as resp:
            assert resp.status == 200  # any well-formed UUID
        async with http.post(url, params={"session_id": "not-a-uuid"}) as resp:
            assert resp.status == 400 and await resp.json() == {"detail": "Invalid session ID format"}
        async with http.post(url) as resp:
            body = await resp.json()
            assert resp.status == 422 and body["detail"][0]["loc"] == ["query", "session_id"]
        status, live = await connect(http, emu, {"character_id": BLACKSMITH})
    # shutting the emulator down ends the remaining sessions and tells the listeners
    assert ended[-1] == (live["session_id"], "shutdown")


async def test_idle_sessions_are_reaped(http: aiohttp.ClientSession) -> None:
    ended: list[str] = []

    def extension(app: web.Application) -> None:
        app[LIVE_SESSIONS].on_end(lambda s, reason: ended.append(reason))

    async with Emulator(make_config(live_session_idle_s=0.3), extensions=[extension]) as emu:
        status, body = await connect(http, emu, {"character_id": BLACKSMITH})
        assert status == 200
        for _ in range(40):
            if ended:
                break
            await asyncio.sleep(0.1)
        assert ended == ["idle"] and emu.app[LIVE_SESSIONS].get(body["session_id"]) is None


async def test_misc_routes(http: aiohttp.ClientSession, emulator: Emulator) -> None:
    async with http.get(f"{emulator.live_url}/healthz") as resp:
        assert resp.status == 200
    async with http.get(f"{emulator.live_url}/no/such/path") as resp:
        assert resp.status == 404 and await resp.json() == {"detail": "Not Found"}
    async with http.get(f"{emulator.live_url}/connect") as resp:
        assert resp.status == 405 and await resp.json() == {"detail": "Method Not Allowed"}
    async with http.get(f"{emulator.live_url}/_emulator/state") as resp:
        state = await resp.json()
    assert state["requests"]["GET /healthz"] == 1
    assert state["statuses"]["GET /healthz"] == {"200": 1}
