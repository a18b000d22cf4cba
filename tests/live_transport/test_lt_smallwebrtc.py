"""SmallWebRTCTransport against the fake pipecat-style bot."""

from __future__ import annotations

import asyncio

import numpy as np
import pytest

from bridge.backends.live.sdp import SmallWebRTCTransport
from bridge.backends.live.transport import RealtimeTransport, TransportError
from tests.live_transport.lt_fake_smallwebrtc import FakeSmallWebRTC
from tests.live_transport.lt_recorder import Recorder, wait_for
from tests.live_transport.lt_tone import dominant_frequency, tone_frames


async def test_round_trip_data_and_audio(smallwebrtc: FakeSmallWebRTC) -> None:
    transport = SmallWebRTCTransport(smallwebrtc.url, request_data={"character_id": "abc"})
    assert isinstance(transport, RealtimeTransport)
    rec = Recorder(transport)
    try:
        await transport.connect(timeout=10)
        assert rec.states == [("connected", None)]
        body = smallwebrtc.bodies[0]
        assert body["type"] == "offer" and body["pc_id"] is None and body["restart_pc"] is False
        assert body["request_data"] == {"character_id": "abc"}
        assert transport.pc_id in smallwebrtc.peers
        peer = smallwebrtc.peers[transport.pc_id]

        await transport.send_json({"label": "rtvi-ai", "type": "client-ready", "id": "r1", "data": {}})
        await wait_for(lambda: rec.types() == ["bot-ready"], what="bot-ready")
        assert rec.json[0] == ({"label": "rtvi-ai", "type": "bot-ready", "id": "r1", "data": {}}, "bot")
        assert peer.raw[0].startswith('{"label":"rtvi-ai"')  # one JSON text frame per message

        for frame in tone_frames(700, 60):
            transport.send_mic(frame)
            await asyncio.sleep(0.02)
        await wait_for(lambda: len(peer.mic) >= 40, what="mic at the bot")
        assert abs(dominant_frequency(np.concatenate(list(peer.mic)[-25:])) - 700) < 10
        assert len(rec.audio) >= 40
        assert abs(dominant_frequency(rec.bot_pcm()) - smallwebrtc.tone_hz) < 10
        assert peer.pings == 0  # no keep-alive unless asked for (pipecat parks messages otherwise)
    finally:
        await transport.close()


async def test_signalling_messages_are_handled_not_forwarded(smallwebrtc: FakeSmallWebRTC) -> None:
    transport = SmallWebRTCTransport(smallwebrtc.url)
    rec = Recorder(transport)
    try:
        await transport.connect(timeout=10)
        peer = smallwebrtc.peers[transport.pc_id or ""]
        peer.ask_renegotiate()
        await wait_for(lambda: peer.offers == 2, what="a second offer")
        assert smallwebrtc.bodies[1]["pc_id"] == transport.pc_id
        peer.peer_left()
        await wait_for(lambda: len(rec.states) == 2, what="disconnected")
        assert rec.states[1][0] == "disconnected" and "peerLeft" in (rec.states[1][1] or "")
        assert rec.json == []
    finally:
        await transport.close()


async def test_keepalive_pings_when_enabled(smallwebrtc: FakeSmallWebRTC) -> None:
    transport = SmallWebRTCTransport(smallwebrtc.url, keepalive_interval=0.1)
    try:
        await transport.connect(timeout=10)
        peer = smallwebrtc.peers[transport.pc_id or ""]
        await wait_for(lambda: peer.pings >= 3, what="three pings")
        assert all(raw.startswith("ping: ") for raw in peer.raw)
    finally:
        await transport.close()


async def test_refused_offer_maps_to_transport_error(smallwebrtc: FakeSmallWebRTC) -> None:
    smallwebrtc.fail_status = 404
    transport = SmallWebRTCTransport(smallwebrtc.url, headers={"Authorization": "Bearer sekrit-bot-key"})
    with pytest.raises(TransportError) as info:
        await transport.connect(timeout=5)
    assert info.value.code == "rtc_rejected" and not info.value.retryable
    assert "404" in info.value.message and "Character not found" in info.value.message
    assert "sekrit-bot-key" not in str(info.value)
    smallwebrtc.fail_status = 401
    with pytest.raises(TransportError) as info:
        await SmallWebRTCTransport(smallwebrtc.url).connect(timeout=5)
    assert info.value.code == "rtc_unauthorized"
