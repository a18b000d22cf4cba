"""What Convai's own clients send, over real sockets: web-SDK /connect body, Unity/UE message shapes, idle."""

from __future__ import annotations

import aiohttp
from conftest import BRAKKA
from emu_lk_client import LkClient, event_type, payload

from convai_emulator.config import DEV_API_KEY, EmulatorConfig
from convai_emulator.realtime import RealtimeSettings, realtime_extension
from convai_emulator.server import Emulator
from convai_emulator.state import LIVE_SESSIONS

# convai-apis.md §2.1: exactly what @convai/web-sdk 1.2.0 sends (lip sync off, emotion on)
WEB_SDK_BODY = {
    "character_id": BRAKKA, "transport": "livekit", "connection_type": "audio", "blendshape_provider": "none",
    "blendshape_config": {"enable_chunking": True, "chunk_size": 10, "format": "mha", "frames_buffer_duration": 0,
                          "output_fps": 90},
    "llm_provider": "dynamic",
    "emotion_config": {"provider": "llm", "min_word_threshold": 3, "low_intensity_threshold": 0.33,
                       "high_intensity_threshold": 0.66},
    "default_tts_enabled": True, "end_user_id": "player-1", "end_user_metadata": {"name": "Alice"},
}


async def join(emu: Emulator, body: dict) -> tuple[dict, LkClient]:
    async with aiohttp.ClientSession() as http:
        response = await http.post(f"{emu.base_url}/connect", json=body,
                                   headers={"x-api-key": DEV_API_KEY, "Content-Type": "application/json"})
        assert response.status == 200, await response.text()
        connected = await response.json()
    client = LkClient(connected["room_url"], connected["token"])
    await client.connect()
    return connected, client


async def test_web_sdk_connect_body_and_messages(emulator: Emulator) -> None:
    connected, client = await join(emulator, WEB_SDK_BODY)
    try:
        assert connected["end_user_metadata"] == {"name": "Alice"}
        session = emulator.app[LIVE_SESSIONS].get(connected["session_id"])
        assert session is not None and session.request["emotion_config"]["provider"] == "llm"
        # web SDK trigger with only a message (no trigger_name), no label, participant_sid extra
        client.send_json({"type": "trigger-message",
                          "data": {"trigger_message": "The player walks into the forge", "participant_sid": "PA_x"}})
        await client.wait_type("bot-turn-completed", 20)
        ack = next(r.message for r in client.messages if r.message.get("event_type") == "trigger-message")
        assert ack["status"] == "success"
        assert client.find("bot-llm-text")
        # word-timed bot-tts-text: one per spoken word, all between started and stopped speaking
        types = client.types()
        start, stop = types.index("bot-started-speaking"), types.index("bot-stopped-speaking")
        words = [payload(r.message)["text"] for r in client.find("bot-tts-text")]
        spoken = "".join(payload(r.message)["text"] for r in client.find("bot-llm-text")).split()
        assert words == spoken
        assert all(start < i < stop for i, t in enumerate(types) if t == "bot-tts-text")
    finally:
        await client.close()


async def test_unity_scene_metadata_bare_array_and_reset_idle_timer(emulator: Emulator) -> None:
    _connected, client = await join(emulator, {"character_id": BRAKKA})
    try:
        for i, data in enumerate(([{"name": "anvil", "description": "heavy"}],  # newest Unity: bare array
                                  {"metadata": [{"name": "torch", "description": "lit"}]},  # older Unity
                                  {"scene_metadata": [{"name": "bellows", "description": ""}]})):  # docs
            client.send_json({"label": "rtvi-ai", "type": "update-scene-metadata", "id": f"s{i}", "data": data})
        client.send_json({"label": "rtvi-ai", "type": "reset-idle-timer", "id": "idle1", "data": {}})
        await client.wait_for(lambda: any(r.message.get("id") == "idle1" for r in client.messages), 10, "ack")
        acks = {r.message["id"]: r.message for r in client.messages if r.message.get("type") == "server-response"}
        assert [acks[f"s{i}"]["status"] for i in range(3)] == ["success"] * 3
        assert [acks[f"s{i}"]["extras"]["count"] for i in range(3)] == [1, 1, 1]
        idle = acks["idle1"]  # convai-apis.md §6: ack event_type reset-idle-timer, status success
        assert idle["event_type"] == "reset-idle-timer" and idle["status"] == "success"
    finally:
        await client.close()


async def test_idle_warning_then_session_ending() -> None:
    settings = RealtimeSettings(first_refresh_token_s=0.5, idle_warning_s=1.0, idle_remaining_s=2)
    async with Emulator(EmulatorConfig(), [realtime_extension(settings)]) as emu:
        connected, client = await join(emu, {"character_id": BRAKKA})
        try:
            await client.wait_type("user-idle-warning", 10)
            client.send_json({"label": "rtvi-ai", "type": "reset-idle-timer", "id": "keep", "data": {}})
            warned = len(client.find("user-idle-warning"))
            await client.wait_type("user-idle-warning", 10, count=warned + 1)  # reset: a new countdown
            assert "session-ending" not in client.types()[: client.types().index("user-idle-warning") + 1]
            ending = (await client.wait_type("session-ending", 10))[0]
            assert payload(ending.message) == {"reason": "idle_timeout"}
            warning_t = client.find("user-idle-warning")[-1].t
            assert ending.t - warning_t >= 1.8
            await client.wait_for(lambda: any(s.WhichOneof("message") == "leave" for s in client.signals), 10,
                                  "leave")
            await client.wait_for(lambda: emu.app[LIVE_SESSIONS].get(connected["session_id"]) is None, 10,
                                  "session ended")
            assert [event_type(r.message) for r in client.messages].count("session-ending") == 1
        finally:
            await client.close()
