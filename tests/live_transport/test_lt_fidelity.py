"""Server behaviour Convai's own clients accept, reproduced by a scripted RTVI bot over real WebRTC.

The daemon runs for real (ZeroMQ client ⇄ daemon ⇄ aiortc ⇄ bot on 127.0.0.1); only the bot's
replies are scripted, because the emulator does not produce these variants. Each test names the
client whose behaviour it relies on (convai-apis.md §19).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from bridge.client import BridgeClient, BridgeError, NpcSession
from bridge.wire.codec import Message
from tests.conftest import CHARACTER
from tests.live_transport.lt_daemon import daemon_client
from tests.live_transport.lt_scripted_bot import ScriptedBot, Step, top, user_text, wrapped

AUDIO = {"sample_rate": 24000, "channels": 1, "frame_ms": 20}


@pytest.fixture
async def client(tmp_path: Path) -> AsyncIterator[BridgeClient]:
    async with daemon_client(tmp_path) as c:
        yield c


async def start_bot(script: Any, about: dict[str, Any] | None = None) -> ScriptedBot:
    bot = ScriptedBot(script, about)
    await bot.start()
    return bot


async def open_npc(client: BridgeClient, bot: ScriptedBot, **kw: Any) -> NpcSession:
    return await client.open_session(CHARACTER, backend="live", transport="sdp", url=bot.url, audio=AUDIO, **kw)


def spoken_reply(words: list[str], *, completed: bool, speak_s: float = 0.6) -> list[Step]:
    """A Convai-style text turn: user echo, LLM chunks, one speaking segment; bot-turn-completed optional."""
    steps: list[Step] = [
        top("user-started-speaking"),
        wrapped("final-user-transcription", text="hello"),
        top("bot-llm-started"),
        *[top("bot-llm-text", {"text": w}) for w in words],
        top("bot-llm-stopped"),
        top("bot-tts-started"),
        top("bot-started-speaking"),
        ("speak", speak_s),
        top("bot-stopped-speaking"),
        top("bot-tts-stopped"),
    ]
    if completed:
        steps.append(wrapped("bot-turn-completed", was_interrupted=False))
    return steps


def ack(message: dict[str, Any], event_type: str, **extras: Any) -> dict[str, Any]:
    body: dict[str, Any] = {"type": "server-response", "event_type": event_type, "status": "success"}
    if extras:
        body["extras"] = extras
    return body | {"id": message.get("id")}


def kinds(events: list[Message]) -> list[str]:
    return [m.type for m in events]


def assert_complete(events: list[Message], turn: int, text: str) -> None:
    seq = kinds(events)
    done = events[-1]
    assert done.type == "turn_completed" and done["turn"] == turn and done["interrupted"] is False
    assert next(m for m in events if m.type == "bot_reply")["text"] == text
    assert seq.index("bot_started_speaking") < seq.index("audio_out") < seq.index("bot_stopped_speaking")
    assert all(m["turn"] == turn for m in events if m.type in ("bot_text", "audio_out", "bot_reply"))


async def test_turn_completes_without_bot_turn_completed(client: BridgeClient) -> None:
    """Web SDK 1.2.0 / UE 4.0.0-beta.3 end a turn on bot-stopped-speaking; they never read bot-turn-completed."""
    bot = await start_bot(lambda m: spoken_reply(["Hello", " there."], completed=False) if user_text(m) else None)
    try:
        npc = await open_npc(client, bot)
        turn = await npc.text("Hi!")
        events = await npc.collect_turn(turn, timeout=20)
        assert_complete(events, turn, "Hello there.")
        await asyncio.sleep(2.0)
        assert npc.events.empty(), "nothing after turn_completed"
    finally:
        await bot.stop()


async def test_late_bot_turn_completed_neither_doubles_nor_ends_the_next_turn(client: BridgeClient) -> None:
    """Unity 4.x reads bot-turn-completed; it may come after the daemon already ended the turn."""
    replies = iter([
        [*spoken_reply(["First."], completed=False), ("sleep", 2.5), wrapped("bot-turn-completed")],
        [("sleep", 3.5), *spoken_reply(["Second."], completed=True)],
    ])
    bot = await start_bot(lambda m: next(replies) if user_text(m) else None)
    try:
        npc = await open_npc(client, bot)
        t1 = await npc.text("one")
        e1 = await npc.collect_turn(t1, timeout=20)
        assert_complete(e1, t1, "First.")
        t2 = await npc.text("two")  # reply 1's late bot-turn-completed arrives while turn 2 waits
        e2 = await npc.collect_turn(t2, timeout=20)
        assert_complete(e2, t2, "Second.")
        assert kinds(e1 + e2).count("turn_completed") == 2
        assert not [m for m in e2 if m.type == "turn_completed" and m["turn"] == t1]
    finally:
        await bot.stop()


async def test_server_turn_completed_completes_once(client: BridgeClient) -> None:
    bot = await start_bot(lambda m: spoken_reply(["Once."], completed=True) if user_text(m) else None)
    try:
        npc = await open_npc(client, bot)
        turn = await npc.text("Hi")
        started = time.monotonic()
        events = await npc.collect_turn(turn, timeout=20)
        assert_complete(events, turn, "Once.")
        assert time.monotonic() - started < 15
        await asyncio.sleep(2.0)
        assert npc.events.empty()
    finally:
        await bot.stop()


def blendshape_chunk(seq: int, n: int, **extra: Any) -> dict[str, Any]:
    frames = [[round(0.01 * (seq * n + i), 4)] * 61 for i in range(n)]
    return wrapped("chunked-neurosync-blendshapes", blendshapes=frames, format="arkit", sequence=seq, **extra)


async def test_lip_sync_clock_spans_segments_and_honours_payload(client: BridgeClient) -> None:
    """Unity reads fps / start_frame_index / sequence per payload; chunks may beat bot-started-speaking (web SDK
    buffers from the user message on). Two speaking segments of one reply share one clock."""
    steps: list[Step] = [
        top("user-started-speaking"),
        wrapped("final-user-transcription", text="hi"),
        top("bot-llm-started"),
        top("bot-llm-text", {"text": "Two parts."}),
        blendshape_chunk(0, 15, fps=30),  # before bot-started-speaking
        top("bot-tts-started"),
        top("bot-started-speaking"),
        ("speak", 0.5),
        top("bot-stopped-speaking"),
        ("sleep", 0.6),
        top("bot-started-speaking"),
        blendshape_chunk(1, 15, fps=30),  # no start index: continues the reply's count (15)
        blendshape_chunk(2, 15, fps=30, start_frame_index=30),
        ("speak", 0.5),
        top("bot-stopped-speaking"),
        top("bot-llm-stopped"),
        top("bot-tts-stopped"),
        wrapped("bot-turn-completed", was_interrupted=False),
    ]
    bot = await start_bot(lambda m: steps if user_text(m) else None)
    try:
        npc = await open_npc(client, bot, lipsync={"provider": "blendshapes", "format": "arkit", "fps": 60})
        turn = await npc.text("Hi")
        events = await npc.collect_turn(turn, timeout=20)
        shapes = [m for m in events if m.type == "blendshapes"]
        assert [m["turn"] for m in shapes] == [turn] * 3
        assert all(m["fps"] == 30 for m in shapes)
        rate = AUDIO["sample_rate"]
        assert [m["offset"] for m in shapes] == [0, 15 * rate // 30, 30 * rate // 30]
        assert kinds(events).count("bot_started_speaking") == 2
    finally:
        await bot.stop()


async def test_outbound_shapes_and_inbound_variants(client: BridgeClient) -> None:
    """update-scene-metadata as a bare array (newest Unity, UE); a trigger with only a message (web SDK omits
    empty fields); an RTVI error without `fatal` is not fatal (Unity); text only in bot-transcription is
    kept; bot-tts-text becomes `subtitle`."""

    def script(m: dict[str, Any]) -> list[Step] | None:
        kind = m.get("type")
        if kind == "update-scene-metadata":
            return [ack(m, kind)]
        if kind == "trigger-message":
            return [ack(m, kind), top("error", {"error": "narrative service slow"}),
                    top("bot-llm-started"), top("bot-transcription", {"text": "Welcome, traveller."}),
                    top("bot-llm-stopped"), top("bot-tts-started"), top("bot-started-speaking"),
                    top("bot-tts-text", {"text": "Welcome,"}), ("speak", 0.3),
                    top("bot-tts-text", {"text": "traveller."}),
                    ("speak", 0.3), top("bot-stopped-speaking"), top("bot-tts-stopped"),
                    wrapped("bot-turn-completed", was_interrupted=False)]
        return None

    bot = await start_bot(script)
    try:
        npc = await open_npc(client, bot)
        scene = [{"name": "anvil", "description": "iron"}]
        reply = await npc.request("scene_update", scene=scene)
        assert reply.type == "ack" and reply.get("result", {}).get("acknowledged", True) is not False
        turn = await npc.request("trigger", message="The player walks in")
        events = await npc.collect_turn(turn["turn"], timeout=20)
        sent = {m["type"]: m for m in bot.received()}
        assert sent["update-scene-metadata"]["data"] == scene
        assert sent["trigger-message"]["data"] == {"trigger_message": "The player walks in"}
        errors = [m for m in events if m.type == "error"]
        assert errors and errors[0]["fatal"] is False
        assert next(m for m in events if m.type == "bot_reply")["text"] == "Welcome, traveller."
        subs = [m for m in events if m.type == "subtitle"]
        assert [s["text"] for s in subs] == ["Welcome,", "traveller."] and all(s["turn"] == turn["turn"] for s in subs)
        assert events[-1]["interrupted"] is False
    finally:
        await bot.stop()


PIPECAT_ABOUT = {"library": "pipecat-ai", "library_version": "1.14.0"}


async def test_stock_rtvi_bot_gets_standard_rtvi_and_clear_refusals(client: BridgeClient) -> None:
    """A bot whose bot-ready is pipecat's own: text goes as send-text, Convai-only requests fail at once."""

    def script(m: dict[str, Any]) -> list[Step] | None:
        if m.get("type") == "send-text" and m["data"]["content"] == "refuse":
            return [top("error-response", {"error": "Exception processing message: no"}, id=m["id"])]
        if m.get("type") == "send-text":
            echo = top("user-input", {"text": m["data"]["content"], "input_type": "chat", "final": True,
                                      "msg_id": m["id"]})
            return [top("bot-interrupted"), echo, top("bot-llm-started"), top("bot-llm-text", {"text": "Echo."}),
                    top("bot-tts-started"), top("bot-started-speaking"), ("speak", 0.4), top("bot-llm-stopped"),
                    top("bot-tts-stopped"), ("speak", 0.2), top("bot-stopped-speaking")]
        return [top("error-response", {"error": f"Unsupported type {m.get('type')}"}, id=m.get("id"))]

    bot = await start_bot(script, about=PIPECAT_ABOUT)
    try:
        npc = await open_npc(client, bot)
        caps = set(npc.opened["capabilities"])
        assert {"audio_out", "text_stream"} <= caps and not caps & {"triggers", "context", "tts_toggle"}
        turn = await npc.text("Hello")
        events = await npc.collect_turn(turn, timeout=20)
        assert_complete(events, turn, "Echo.")
        started = time.monotonic()
        with pytest.raises(BridgeError) as info:
            await npc.trigger("greeting", "hi")
        assert info.value.code == "unsupported" and time.monotonic() - started < 1.0
        started = time.monotonic()
        with pytest.raises(BridgeError) as info:  # the bot's error-response answers the request
            await npc.text("refuse")
        assert info.value.code == "convai_error" and "no" in str(info.value) and time.monotonic() - started < 1.5
        types_sent = [m["type"] for m in bot.received()]
        assert "send-text" in types_sent and "user_text_message" not in types_sent
        assert "trigger-message" not in types_sent
    finally:
        await bot.stop()
