"""LiveKitTransport against the fake LiveKit server: signalling, data, audio, failure modes."""

from __future__ import annotations

import asyncio
import socket

import numpy as np
import pytest

from bridge.backends.live.livekit import LiveKitTransport
from bridge.backends.live.transport import RealtimeTransport, TransportError
from tests.live_transport.lt_fake_livekit import BOT_IDENTITY, FakeLiveKit
from tests.live_transport.lt_recorder import Recorder, wait_for
from tests.live_transport.lt_tone import dominant_frequency, tone_frames

MIC_HZ = 1000.0


async def _feed_tone(transport: LiveKitTransport, seconds: float, freq: float = MIC_HZ) -> None:
    for frame in tone_frames(freq, int(seconds * 50)):
        transport.send_mic(frame)
        await asyncio.sleep(0.02)


async def _exercise(server: FakeLiveKit, transport: LiveKitTransport) -> Recorder:
    """Connect, do an RTVI round trip, stream mic for a second; checks common to v0 and v1."""
    assert isinstance(transport, RealtimeTransport)
    rec = Recorder(transport)
    await transport.connect(timeout=10)
    assert rec.states == [("connected", None)]
    await transport.send_json({"label": "rtvi-ai", "type": "client-ready", "id": "c1", "data": {"version": "2.2.0"}})
    await transport.send_json({"label": "rtvi-ai", "type": "user_text_message", "id": "u1", "data": {"text": "hi"}})
    await wait_for(lambda: len(rec.json) >= 2, what="two bot messages")
    (ready, ready_from), (echo, _) = rec.json[:2]
    assert ready == {"label": "rtvi-ai", "type": "bot-ready", "id": "c1", "data": {"version": "2.2.0"}}
    assert ready_from == BOT_IDENTITY
    assert echo["data"]["echo"]["data"] == {"text": "hi"}
    session = server.sessions[-1]
    assert [m["type"] for m in session.received] == ["client-ready", "user_text_message"]
    assert set(session.received_topics) == {""}  # RTVI goes without a topic

    await _feed_tone(transport, 1.2)
    await wait_for(lambda: len(session.mic) >= 40, what="mic frames at the bot")
    mic = np.concatenate(list(session.mic)[-25:])
    assert abs(dominant_frequency(mic) - MIC_HZ) < 10
    assert len(rec.audio) >= 40
    pcm, rate, channels = rec.audio[-1]
    assert (rate, channels, pcm.dtype, pcm.size) == (48000, 1, np.int16, 960)
    assert abs(dominant_frequency(rec.bot_pcm()) - server.tone_hz) < 10
    assert transport.stats.mic_dropped == 0
    assert transport.stats.mic_frames_sent >= 55
    return rec


async def test_dual_pc_round_trip(livekit: FakeLiveKit) -> None:
    transport = LiveKitTransport(livekit.url, livekit.token())
    try:
        await _exercise(livekit, transport)
        assert transport.protocol_used == "v0"
        assert livekit.paths == ["/rtc"]
        assert livekit.auth_seen[-1] == "bearer"
        assert transport.participants == {"PA_bot0001": BOT_IDENTITY}
        session = livekit.sessions[-1]
        assert session.mic_published == ["TR_mic0000"]
    finally:
        await transport.close()
    await wait_for(lambda: livekit.sessions[-1].left.is_set(), what="leave at the server")


async def test_message_bursts_arrive_whole_with_fewer_acks(livekit: FakeLiveKit) -> None:
    transport = LiveKitTransport(livekit.url, livekit.token())
    rec = Recorder(transport)
    try:
        await transport.connect(timeout=10)
        bot = livekit.sessions[-1]
        for n in range(60):
            bot.bot_send({"label": "rtvi-ai", "type": "server-message", "data": {"type": "visemes", "n": n}})
            if n % 3 == 2:
                await asyncio.sleep(0.01)
        await wait_for(lambda: len(rec.json) == 60, what="60 messages")
        assert [message["data"]["n"] for message, _ in rec.json] == list(range(60))
        sack = transport._sub.pc._RTCPeerConnection__sctp._bridge_sack  # type: ignore[union-attr]
        assert sack.deferred > 0 and sack.immediate < 60  # not one SACK per packet any more
    finally:
        await transport.close()


async def test_single_pc_round_trip(livekit: FakeLiveKit) -> None:
    transport = LiveKitTransport(livekit.url, livekit.token(), single_pc=True, bot_identity=BOT_IDENTITY)
    try:
        await _exercise(livekit, transport)
        assert transport.protocol_used == "v1"
        assert livekit.paths == ["/rtc/v1"]
    finally:
        await transport.close()


async def test_single_pc_falls_back_to_dual_pc_on_404(livekit: FakeLiveKit) -> None:
    livekit.v1 = False
    transport = LiveKitTransport(livekit.url, livekit.token(), single_pc=True)
    try:
        await transport.connect(timeout=10)
        assert transport.protocol_used == "v0"
        assert livekit.paths == ["/rtc"]
    finally:
        await transport.close()


async def test_candidates_trickled_before_the_offer_are_queued(livekit: FakeLiveKit) -> None:
    livekit.early_trickle = True
    transport = LiveKitTransport(livekit.url, livekit.token())
    rec = Recorder(transport)
    try:
        await transport.connect(timeout=10)
        await wait_for(lambda: len(rec.audio) >= 10, what="bot audio over the subscriber PC")
    finally:
        await transport.close()


async def test_audio_of_other_participants_is_not_delivered(livekit: FakeLiveKit) -> None:
    transport = LiveKitTransport(livekit.url, livekit.token(), bot_identity="someone-else")
    rec = Recorder(transport)
    try:
        await transport.connect(timeout=10)
        await asyncio.sleep(0.5)
        assert rec.audio == []
    finally:
        await transport.close()


async def test_bad_token_is_unauthorized(livekit: FakeLiveKit) -> None:
    bad = FakeLiveKit.token(secret="not-the-secret-of-this-server-0123456789")
    transport = LiveKitTransport(livekit.url, bad)
    with pytest.raises(TransportError) as info:
        await transport.connect(timeout=10)
    assert info.value.code == "rtc_unauthorized"
    assert info.value.retryable is False
    assert "invalid token" in info.value.message  # the /validate explanation
    assert bad not in str(info.value)
    assert transport.state == "failed"


async def test_unreachable_server() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    transport = LiveKitTransport(f"ws://127.0.0.1:{port}", "tok-secret-value")
    with pytest.raises(TransportError) as info:
        await transport.connect(timeout=5)
    assert info.value.code == "rtc_unreachable"
    assert info.value.retryable
    assert "tok-secret-value" not in str(info.value)


async def test_join_refused(livekit: FakeLiveKit) -> None:
    livekit.refuse_join = True
    with pytest.raises(TransportError) as info:
        await LiveKitTransport(livekit.url, livekit.token()).connect(timeout=5)
    assert info.value.code == "rtc_join_refused"
    assert "JOIN_FAILURE" in info.value.message


async def test_connect_times_out_without_join(livekit: FakeLiveKit) -> None:
    livekit.silent = True
    transport = LiveKitTransport(livekit.url, livekit.token())
    with pytest.raises(TransportError) as info:
        await transport.connect(timeout=0.5)
    assert info.value.code == "rtc_timeout"
    assert info.value.retryable


async def test_ping_timeout_is_detected() -> None:
    server = FakeLiveKit(ping_interval=1, ping_timeout=2)
    await server.start()
    transport = LiveKitTransport(server.url, server.token())
    rec = Recorder(transport)
    try:
        await transport.connect(timeout=10)
        await wait_for(lambda: server.sessions[-1].pings >= 1, timeout=3, what="a ping")
        assert rec.states == [("connected", None)]  # pongs keep it alive
        server.no_pong = True
        await wait_for(lambda: rec.states[-1][0] == "disconnected", timeout=10, what="the ping timeout")
        # a lost signalling socket is first resumed in place; this server refuses that
        assert [s for s, _ in rec.states] == ["connected", "reconnecting", "disconnected"]
        state, reason = rec.states[1]
        assert reason is not None and "pong" in reason
        assert transport.state == "disconnected"
        with pytest.raises(TransportError) as info:
            await transport.send_json({"type": "x"})
        assert info.value.code == "rtc_closed"
    finally:
        await transport.close()
        await server.stop()


async def test_server_dropping_the_socket_disconnects(livekit: FakeLiveKit) -> None:
    transport = LiveKitTransport(livekit.url, livekit.token())
    rec = Recorder(transport)
    try:
        await transport.connect(timeout=10)
        livekit.sessions[-1].drop_socket()
        await wait_for(lambda: rec.states[-1][0] == "disconnected", timeout=10, what="disconnected state")
        assert [s for s, _ in rec.states] == ["connected", "reconnecting", "disconnected"]  # resume refused
    finally:
        await transport.close()
    assert len(rec.states) == 3  # close() after death reports nothing more


async def test_server_leave_disconnects_with_reason(livekit: FakeLiveKit) -> None:
    transport = LiveKitTransport(livekit.url, livekit.token())
    rec = Recorder(transport)
    try:
        await transport.connect(timeout=10)
        await livekit.sessions[-1].send_leave()
        await wait_for(lambda: len(rec.states) == 2, what="disconnected state")
        state, reason = rec.states[1]
        assert state == "disconnected" and reason is not None and "ROOM_DELETED" in reason
        # close() while the background teardown runs joins it instead of racing it
        await asyncio.wait_for(transport.close(), 3)
        assert transport.state == "closed"
    finally:
        await transport.close()


async def test_bot_leaving_the_room_ends_the_session(livekit: FakeLiveKit) -> None:
    transport = LiveKitTransport(livekit.url, livekit.token())
    rec = Recorder(transport)
    try:
        await transport.connect(timeout=10)
        await livekit.sessions[-1].bot_leaves()
        await wait_for(lambda: len(rec.states) == 2, what="disconnected state")
        assert rec.states[1] == ("disconnected", f"the bot left the room ({BOT_IDENTITY})")
        assert transport.participants == {}
    finally:
        await transport.close()


async def test_close_is_quiet_and_idempotent(livekit: FakeLiveKit) -> None:
    transport = LiveKitTransport(livekit.url, livekit.token())
    rec = Recorder(transport)
    await transport.connect(timeout=10)
    await transport.close()
    await transport.close()
    assert rec.states == [("connected", None)]
    assert transport.state == "closed"
    with pytest.raises(TransportError):
        await transport.send_json({"type": "x"})
    with pytest.raises(TransportError) as info:
        await transport.connect(timeout=1)
    assert info.value.code == "rtc_closed"


def test_mic_queue_is_bounded_and_counts_drops() -> None:
    transport = LiveKitTransport("ws://127.0.0.1:9", "t", mic_queue_frames=5)
    frames = tone_frames(440, 30)
    for frame in frames:
        transport.send_mic(frame)
    assert transport.mic_queued == 5
    assert transport.stats.mic_dropped == 25
    with pytest.raises(ValueError):
        transport.send_mic(np.zeros(480, dtype=np.int16))
    with pytest.raises(ValueError):
        transport.send_mic(np.zeros(960, dtype=np.float32))
    transport.clear_mic()
    assert transport.mic_queued == 0
