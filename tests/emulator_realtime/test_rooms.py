"""Rooms with more than one participant: roster updates, data relay, leaving."""

from __future__ import annotations

from conftest import connect
from emu_lk_client import LkClient
from livekit.protocol import models

from convai_emulator.realtime import REALTIME
from convai_emulator.server import Emulator


async def test_second_participant_sees_update_and_relayed_data(emulator: Emulator) -> None:
    body = await connect(emulator)
    first = LkClient(body["room_url"], body["token"])
    await first.connect()
    other_token = emulator.app[REALTIME].tokens.mint("observer", body["room_name"], name="Observer")
    second = LkClient(body["room_url"], other_token)
    await second.connect()
    try:
        assert second.join is not None
        identities = {p.identity for p in second.join.other_participants}
        assert first.join is not None and first.join.participant.identity in identities
        await first.wait_for(lambda: any(
            s.WhichOneof("message") == "update" and any(p.identity == "observer" for p in s.update.participants)
            for s in first.signals), 5, "update")
        second.send_json({"type": "app-note", "data": {"hello": 1}})  # not addressed to the bot only
        await first.wait_for(lambda: any(r.sender == "observer" for r in first.messages), 5, "relay")
        await second.close()
        await first.wait_for(lambda: any(
            s.WhichOneof("message") == "update" and any(
                p.identity == "observer" and p.state == models.ParticipantInfo.State.DISCONNECTED
                for p in s.update.participants) for s in first.signals), 5, "left")
    finally:
        await first.close()


async def test_kill_pipeline_ends_room_and_session(emulator: Emulator) -> None:
    from convai_emulator.state import LIVE_SESSIONS

    body = await connect(emulator)
    client = LkClient(body["room_url"], body["token"])
    await client.connect()
    try:
        client.send_json({"label": "rtvi-ai", "type": "kill-pipeline", "id": "k1", "data": {}})
        await client.wait_for(lambda: any(s.WhichOneof("message") == "leave" for s in client.signals), 5, "leave")
        ack = next(r.message for r in client.messages if r.message.get("id") == "k1")
        assert ack["extras"]["room_name"] == body["room_name"]
        await client.wait_for(lambda: emulator.app[LIVE_SESSIONS].get(body["session_id"]) is None, 5, "session end")
    finally:
        await client.close()
