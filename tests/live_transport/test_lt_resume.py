"""LiveKit signal resume: a lost signalling socket is reconnected as the same participant, media untouched.

Against the fake LiveKit server with ``resume`` on (it keeps the participant's peer connections
while its signalling socket is gone and answers ``reconnect=1&sid=`` with ``reconnect``), and off.
"""

from __future__ import annotations

import pytest

from bridge.backends.live.livekit import LiveKitTransport
from tests.live_transport.lt_fake_livekit import FakeLiveKit
from tests.live_transport.lt_recorder import Recorder, wait_for

CLIENT_READY = {"label": "rtvi-ai", "type": "client-ready", "id": "c1", "data": {"version": "2.2.0"}}


def _text(i: int) -> dict[str, object]:
    return {"label": "rtvi-ai", "type": "user_text_message", "id": f"u{i}", "data": {"text": f"hi {i}"}}


@pytest.mark.parametrize("single_pc", [False, True])
async def test_dropped_signalling_resumes_in_place(livekit: FakeLiveKit, single_pc: bool) -> None:
    livekit.resume = True
    transport = LiveKitTransport(livekit.url, livekit.token(), single_pc=single_pc)
    rec = Recorder(transport)
    try:
        await transport.connect(timeout=10)
        await transport.send_json(CLIENT_READY)
        await wait_for(lambda: len(rec.json) >= 1, what="bot-ready")
        session = livekit.sessions[-1]
        audio_before = len(rec.audio)

        session.drop_socket()
        await wait_for(lambda: [s for s, _ in rec.states][-1:] == ["resumed"], timeout=15, what="resumed")
        assert [s for s, _ in rec.states] == ["connected", "reconnecting", "resumed"]
        assert len(livekit.sessions) == 1 and session.resumes == 1  # the same participant, no new join
        assert livekit.reconnect_requests[0]["sid"] == session.sid
        assert transport.signal_resumes == 1 and transport.room_alive
        sync = session.sync_states[-1]
        assert [t.cid for t in sync.publish_tracks] and sync.offer.sdp and sync.answer.sdp
        assert ("PA_bot0001" in sync.offer.sdp) is not single_pc  # dual PC: the server's subscriber offer
        assert sync.subscription.track_sids == [] and not sync.subscription.subscribe  # auto-subscribe: no exceptions
        labels = {c.label for c in sync.data_channels}
        assert {"_reliable", "_lossy"} <= labels

        await transport.send_json(_text(2))  # data and media never stopped
        await wait_for(lambda: any(m.get("data", {}).get("echo", {}).get("id") == "u2" for m, _ in rec.json),
                       what="echo after resume")
        await wait_for(lambda: len(rec.audio) > audio_before + 50, what="bot audio after resume")
        assert transport.state == "connected"
    finally:
        await transport.close()


async def test_refused_resume_ends_the_transport_with_the_room_alive(livekit: FakeLiveKit) -> None:
    """The server answers the resume with leave(RECONNECT): the owner must re-join (the room is still up)."""
    transport = LiveKitTransport(livekit.url, livekit.token())
    rec = Recorder(transport)
    try:
        await transport.connect(timeout=10)
        livekit.sessions[-1].drop_socket()
        await wait_for(lambda: [s for s, _ in rec.states][-1:] == ["disconnected"], timeout=15, what="disconnected")
        assert [s for s, _ in rec.states] == ["connected", "reconnecting", "disconnected"]
        assert len(livekit.reconnect_requests) == 1
        assert transport.room_alive and transport.signal_resumes == 0
    finally:
        await transport.close()


async def test_server_leave_is_not_resumed(livekit: FakeLiveKit) -> None:
    livekit.resume = True
    transport = LiveKitTransport(livekit.url, livekit.token())
    rec = Recorder(transport)
    try:
        await transport.connect(timeout=10)
        await livekit.sessions[-1].send_leave()
        await wait_for(lambda: len(rec.states) == 2, what="disconnected")
        assert rec.states[1][0] == "disconnected"
        assert not livekit.reconnect_requests and not transport.room_alive
    finally:
        await transport.close()


async def test_server_ice_restart_after_resume_fails_the_media_path(livekit: FakeLiveKit) -> None:
    """LiveKit re-offers the subscriber with new ICE credentials after a resume; aiortc cannot follow."""
    livekit.resume = True
    livekit.ice_restart_on_resume = True
    transport = LiveKitTransport(livekit.url, livekit.token())
    rec = Recorder(transport)
    try:
        await transport.connect(timeout=10)
        livekit.sessions[-1].drop_socket()
        await wait_for(lambda: [s for s, _ in rec.states][-1:] == ["failed"], timeout=15, what="failed")
        assert [s for s, _ in rec.states] == ["connected", "reconnecting", "resumed", "failed"]
        assert "restarted ICE" in (rec.states[-1][1] or "")
        assert transport.room_alive  # the owner re-joins the same room
    finally:
        await transport.close()
