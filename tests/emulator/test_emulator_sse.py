"""POST /connect/stream (SSE) over real HTTP."""

from __future__ import annotations

import time
from typing import Any

import aiohttp

from convai_emulator.server import Emulator
from tests.emulator.emulator_support import BLACKSMITH, GUARD, LIVE_HEADERS, make_config, read_sse


async def stream(http: aiohttp.ClientSession, emu: Emulator, text: str, **fields: str) -> tuple[int, Any]:
    form = aiohttp.FormData({"character_id": BLACKSMITH, "text_input": text, **fields}, default_to_multipart=True)
    async with http.post(f"{emu.live_url}/connect/stream", data=form, headers=LIVE_HEADERS) as resp:
        if resp.status != 200:
            return resp.status, await resp.json()
        assert resp.content_type == "text/event-stream"
        return resp.status, await read_sse(resp)


async def test_event_sequence(http: aiohttp.ClientSession, emulator: Emulator) -> None:
    status, events = await stream(http, emulator, "Tell me about your finest sword")
    assert status == 200
    types = [e["type"] for e in events]
    n_text = types.count("bot-llm-text")
    assert types == ["connection-started", "bot-llm-started", *["bot-llm-text"] * n_text, "bot-transcription",
                     "bot-llm-stopped", "connection-stoppped"]
    assert n_text > 3
    started = events[0]
    assert set(started) == {"type", "message"}
    assert started["message"]["transport"] == "sse"
    assert set(started["message"]) == {"session_id", "transport", "character_session_id"}
    assert events[1] == {"label": "rtvi-ai", "type": "bot-llm-started"}
    assert events[-2] == {"label": "rtvi-ai", "type": "bot-llm-stopped"}
    assert events[-1] == {"type": "connection-stoppped"}
    text = "".join(e["data"]["text"] for e in events if e["type"] == "bot-llm-text")
    assert text == events[-3]["data"]["text"] == "A good blade takes three days at the anvil and a lifetime to master."
    assert all(e.get("label") == "rtvi-ai" for e in events[1:-1])


async def test_context_across_requests(http: aiohttp.ClientSession, emulator: Emulator) -> None:
    _, events = await stream(http, emulator, "My name is Imogen")
    csid = events[0]["message"]["character_session_id"]
    _, events = await stream(http, emulator, "What is my name?", character_session_id=csid)
    assert events[0]["message"]["character_session_id"] == csid
    assert events[-3]["data"]["text"] == "Your name is Imogen."
    # the same character session can continue on /connect (Live API)
    async with http.post(f"{emulator.live_url}/connect", json={"character_id": BLACKSMITH,
                                                               "character_session_id": csid},
                         headers=LIVE_HEADERS) as resp:
        assert resp.status == 200 and (await resp.json())["character_session_id"] == csid


async def test_errors(http: aiohttp.ClientSession, emulator: Emulator) -> None:
    status, body = await stream(http, emulator, "hi", character_session_id="-1")
    assert status == 422 and body["detail"][0]["loc"] == ["body", "character_session_id"]
    status, body = await stream(http, emulator, "hi", character_session_id="00000000-0000-4000-8000-000000000009")
    assert (status, body) == (404, {"detail": "Character session not found"})
    _, events = await stream(http, emulator, "hello")
    csid = events[0]["message"]["character_session_id"]
    status, _ = await stream(http, emulator, "hello", character_session_id=csid, character_id=GUARD)
    assert status == 403
    status, body = await stream(http, emulator, "hi", character_id="nobody")
    assert (status, body) == (404, {"detail": "Character not found or doesn't belong to user"})
    async with http.post(f"{emulator.live_url}/connect/stream", data={"character_id": BLACKSMITH},
                         headers=LIVE_HEADERS) as resp:
        body = await resp.json()
        assert resp.status == 422
        assert body["detail"] == [{"type": "missing", "loc": ["body", "text_input"], "msg": "Field required",
                                   "input": None}]
    async with http.post(f"{emulator.live_url}/connect/stream",
                         data={"character_id": BLACKSMITH, "text_input": "hi"}) as resp:
        assert resp.status == 401
        assert await resp.json() == {"detail": "Authentication required: provide X-API-Key or API-AUTH-TOKEN"}


async def test_text_chunks_are_paced(http: aiohttp.ClientSession) -> None:
    async with Emulator(make_config(stream_delay_ms=25)) as emu:
        form = {"character_id": BLACKSMITH, "text_input": "Tell me about your finest sword"}
        async with http.post(f"{emu.live_url}/connect/stream", data=form, headers=LIVE_HEADERS) as resp:
            arrivals = []
            async for line in resp.content:
                if b'"bot-llm-text"' in line:
                    arrivals.append(time.monotonic())
    assert len(arrivals) > 5
    assert arrivals[-1] - arrivals[0] >= 0.025 * (len(arrivals) - 1) * 0.9
