"""connect_session / disconnect_session against a real aiohttp server returning Convai's bodies."""

from __future__ import annotations

import asyncio
import json
import socket
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from bridge.backends.errors import ConvaiHTTPError, error_from_response, parse_retry_after
from bridge.backends.live.connect import ConnectResult, connect_session, disconnect_session

API_KEY = "test-key-0123456789abcdef"
OK_BODY = {
    "session_id": "a1b2c3d4-e29b-41d4-a716-446655440000",
    "request_trace_id": "req_abc123def456",
    "character_session_id": "f7a8b9c0-e29b-41d4-a716-446655440001",
    "room_url": "wss://convai-technologies-lfslae7c.livekit.cloud",
    "room_name": "conversation-room-xyz",
    "token": "lk-jwt-token",
    "end_user_id": None,
    "end_user_metadata": None,
}
VALIDATION_422 = {
    "detail": [
        {"type": "value_error", "loc": ["body", "transport"], "msg": "Value error, Invalid transport: sse",
         "input": "sse", "ctx": {"error": {}}}
    ]
}


class Script:
    """What the fake /connect answers next: (status, body, headers)."""

    def __init__(self) -> None:
        self.status = 200
        self.body: Any = OK_BODY
        self.headers: dict[str, str] = {}
        self.delay = 0.0
        self.requests: list[tuple[dict[str, str], Any, dict[str, str]]] = []


@pytest.fixture
async def fake_live() -> AsyncIterator[tuple[str, Script]]:
    script = Script()

    async def connect(request: web.Request) -> web.Response:
        script.requests.append((dict(request.headers), await request.json(), dict(request.query)))
        if script.delay:
            await asyncio.sleep(script.delay)
        text = script.body if isinstance(script.body, str) else json.dumps(script.body)
        return web.Response(status=script.status, text=text, headers=script.headers, content_type="application/json")

    async def disconnect(request: web.Request) -> web.Response:
        script.requests.append((dict(request.headers), None, dict(request.query)))
        if request.query.get("session_id", "").count("-") != 4:
            return web.json_response({"detail": "Invalid session ID format"}, status=400)
        return web.json_response({"status": "success", "message": "Session disconnected successfully"})

    app = web.Application()
    app.router.add_post("/connect", connect)
    app.router.add_post("/disconnect", disconnect)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    try:
        yield f"http://127.0.0.1:{port}/", script
    finally:
        await runner.cleanup()


async def _call(url: str, timeout: float = 5.0) -> ConnectResult:
    async with aiohttp.ClientSession() as http:
        return await connect_session(http, url, API_KEY, {"character_id": "c1", "transport": "livekit"}, timeout)


async def test_success_parses_the_answer(fake_live: tuple[str, Script]) -> None:
    url, script = fake_live
    result = await _call(url)
    assert result.session_id == OK_BODY["session_id"]
    assert result.room_url == OK_BODY["room_url"] and result.token == "lk-jwt-token"
    assert result.room_name == "conversation-room-xyz"
    assert result.character_session_id == OK_BODY["character_session_id"]
    assert "lk-jwt-token" not in repr(result)
    headers, body, _ = script.requests[0]
    assert headers["X-API-Key"] == API_KEY
    assert body == {"character_id": "c1", "transport": "livekit"}


CASES = [
    (400, {"detail": "Missing end_user_id. end_user_id is required when the character has Long Term Memory."},
     "convai_bad_request", False, "Missing end_user_id"),
    (401, {"detail": "Invalid API key"}, "convai_unauthorized", False, "Invalid API key"),
    (403, {"detail": "Realtime access denied"}, "convai_forbidden", False, "Realtime access denied"),
    (404, {"detail": "Character not found or doesn't belong to user"}, "convai_not_found", False,
     "Character not found"),
    (409, {"detail": "Shared session conflict"}, "convai_conflict", False, "conflict"),
    (422, VALIDATION_422, "convai_validation", False, "transport: Value error, Invalid transport: sse"),
    (429, {"detail": "Concurrency limit reached"}, "convai_rate_limited", True, "Concurrency limit"),
    (500, {"detail": "Internal server error"}, "convai_server_error", True, "Internal server error"),
    (503, {"detail": "Database unavailable"}, "convai_server_error", True, "Database unavailable"),
    (502, "<html>Bad gateway</html>", "convai_server_error", True, "Bad gateway"),
]


@pytest.mark.parametrize(("status", "body", "code", "retryable", "text"), CASES)
async def test_error_statuses_map_to_stable_codes(
    fake_live: tuple[str, Script], status: int, body: Any, code: str, retryable: bool, text: str
) -> None:
    url, script = fake_live
    script.status, script.body = status, body
    with pytest.raises(ConvaiHTTPError) as info:
        await _call(url)
    err = info.value
    assert (err.status, err.code, err.retryable) == (status, code, retryable)
    assert text in err.message


async def test_rate_limit_honours_retry_after(fake_live: tuple[str, Script]) -> None:
    url, script = fake_live
    script.status, script.body, script.headers = 429, {"detail": "speaker_limit"}, {"Retry-After": "7"}
    with pytest.raises(ConvaiHTTPError) as info:
        await _call(url)
    assert info.value.retry_after == 7.0 and info.value.retryable


async def test_message_order_is_message_then_error_then_detail(fake_live: tuple[str, Script]) -> None:
    url, script = fake_live
    script.status = 400
    script.body = {"detail": "d", "error": "e", "message": "m", "error_code": "bad_request"}
    with pytest.raises(ConvaiHTTPError) as info:
        await _call(url)
    assert info.value.message == "m" and info.value.server_code == "bad_request"
    script.body = {"detail": "d", "error": "e"}
    with pytest.raises(ConvaiHTTPError) as info:
        await _call(url)
    assert info.value.message == "e"


async def test_api_key_never_appears_in_errors(fake_live: tuple[str, Script]) -> None:
    url, script = fake_live
    script.status, script.body = 401, {"detail": f"Invalid API key {API_KEY}"}
    with pytest.raises(ConvaiHTTPError) as info:
        await _call(url)
    assert API_KEY not in str(info.value) and API_KEY not in json.dumps(info.value.to_dict())


async def test_timeout_and_unreachable(fake_live: tuple[str, Script]) -> None:
    url, script = fake_live
    script.delay = 2.0
    with pytest.raises(ConvaiHTTPError) as info:
        await _call(url, timeout=0.3)
    assert (info.value.status, info.value.code, info.value.retryable) == (None, "convai_timeout", True)

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    with pytest.raises(ConvaiHTTPError) as info:
        await _call(f"http://127.0.0.1:{port}")
    assert (info.value.status, info.value.code, info.value.retryable) == (None, "convai_unreachable", True)


async def test_malformed_success_is_bad_response(fake_live: tuple[str, Script]) -> None:
    url, script = fake_live
    script.body = {"session_id": "s"}
    with pytest.raises(ConvaiHTTPError) as info:
        await _call(url)
    assert info.value.code == "convai_bad_response" and "room_url" in info.value.message
    script.body = "not json"
    with pytest.raises(ConvaiHTTPError) as info:
        await _call(url)
    assert info.value.code == "convai_bad_response"


async def test_disconnect(fake_live: tuple[str, Script]) -> None:
    url, script = fake_live
    async with aiohttp.ClientSession() as http:
        await disconnect_session(http, url, OK_BODY["session_id"])
        headers, _, query = script.requests[-1]
        assert query == {"session_id": OK_BODY["session_id"]}
        assert "X-API-Key" not in headers  # /disconnect needs no auth; the key is not spread around
        with pytest.raises(ConvaiHTTPError) as info:
            await disconnect_session(http, url, "nope")
        assert info.value.code == "convai_bad_request" and info.value.message == "Invalid session ID format"


def test_retry_after_formats() -> None:
    assert parse_retry_after("3") == 3.0
    assert parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT", now=1445412470.0) == 10.0
    assert parse_retry_after("soon") is None
    assert parse_retry_after(None) is None
    err = error_from_response(404, '{"detail": {"message": "gone", "error_code": "session_not_found"}}')
    assert err.message == "gone" and err.server_code == "session_not_found"
