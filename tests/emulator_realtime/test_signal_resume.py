"""LiveKit signal resume: ``reconnect=1&sid=`` continues the same participant and peer connections."""

from __future__ import annotations

import asyncio

import aiohttp
from conftest import connect
from emu_lk_client import LkClient
from livekit.protocol import rtc

from convai_emulator.realtime import REALTIME
from convai_emulator.server import Emulator


async def drop_signalling(client: LkClient) -> None:
    """The signalling socket dies (no leave request); the peer connections stay up."""
    for task in client._tasks[:1]:
        task.cancel()
    await client.ws.close()


async def reopen(client: LkClient, query: str) -> None:
    client.ws = await client._session.ws_connect(
        f"{client.url}/rtc?access_token={client.token}&auto_subscribe=1&protocol=16&sdk=python&{query}")
    client._tasks[0] = asyncio.ensure_future(client._read_signals())


async def test_resume_keeps_participant_pcs_and_conversation(emulator: Emulator) -> None:
    body = await connect(emulator)
    client = LkClient(body["room_url"], body["token"])
    await client.connect()
    try:
        assert client.join is not None
        sid = client.join.participant.sid
        client.send_json({"label": "rtvi-ai", "type": "user_text_message", "id": "r1",
                          "data": {"text": "My name is Ada."}})
        await client.wait_type("bot-turn-completed", 20)
        await drop_signalling(client)
        room = emulator.app[REALTIME].rooms.rooms[body["room_name"]]
        await asyncio.sleep(0.5)
        assert sid in room.members, "the participant waits for a resume"
        joins_before = sum(1 for s in client.signals if s.WhichOneof("message") == "join")
        await reopen(client, f"reconnect=1&sid={sid}&reconnect_reason=1")
        await client.wait_for(lambda: any(s.WhichOneof("message") == "reconnect" for s in client.signals), 10,
                              "reconnect response")
        assert sum(1 for s in client.signals if s.WhichOneof("message") == "join") == joins_before
        participant = next(p for p in emulator.app[REALTIME].signalling.participants if p.sid == sid)
        assert participant.resumes == 1
        # the old data channel and pcs carry on: the same conversation answers
        done = len(client.find("bot-turn-completed"))
        client.send_json({"label": "rtvi-ai", "type": "user_text_message", "id": "r2",
                          "data": {"text": "What is my name?"}})
        await client.wait_type("bot-turn-completed", 20, count=done + 1)
        texts = "".join(str((r.message.get("data") or {}).get("text", "")) for r in client.messages
                        if r.message.get("type") == "bot-llm-text")
        assert "Ada" in texts
        # signalling works on the new socket
        await client.send(rtc.SignalRequest(ping_req=rtc.Ping(timestamp=123)))
        await client.wait_for(lambda: any(s.WhichOneof("message") == "pong_resp" for s in client.signals), 5, "pong")
    finally:
        await client.close()


async def test_resume_of_an_unknown_participant_asks_for_a_full_reconnect(emulator: Emulator) -> None:
    body = await connect(emulator)
    async with aiohttp.ClientSession() as http:
        ws = await http.ws_connect(f"{body['room_url']}/rtc?access_token={body['token']}&reconnect=1&sid=PA_nobody")
        msg = await ws.receive(timeout=10)
        response = rtc.SignalResponse.FromString(msg.data)
        assert response.WhichOneof("message") == "leave"
        assert response.leave.action == rtc.LeaveRequest.Action.RECONNECT
        await ws.close()


async def test_explicit_leave_is_not_resumable(emulator: Emulator) -> None:
    body = await connect(emulator)
    client = LkClient(body["room_url"], body["token"])
    await client.connect()
    assert client.join is not None
    sid = client.join.participant.sid
    room = emulator.app[REALTIME].rooms.rooms[body["room_name"]]
    await client.close()  # sends leave
    await client.wait_for(lambda: sid not in room.members, 5, "gone")
