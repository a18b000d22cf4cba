"""The aiortc hooks, ICE configuration and SDP helpers."""

from __future__ import annotations

import asyncio
import fractions
import json
import queue

import aioice.ice
import aiortc.rtp
import numpy as np
import pytest
from aiortc import RTCIceServer, RTCPeerConnection
from av import AudioFrame

from bridge.backends.live import fastaudio
from bridge.backends.live.ice import (
    enable_loopback_candidates,
    is_loopback_url,
    loopback_candidates,
    rtc_configuration,
    select_ice_servers,
)
from bridge.backends.live.livekit import parse_candidate_init, signal_url
from bridge.backends.live.media import MicOpusEncoder
from bridge.backends.live.sdpinfo import media_msids
from tests.live_transport.lt_tone import dominant_frequency, tone_frames


def _frame(pcm: np.ndarray, layout: str) -> AudioFrame:
    frame = AudioFrame.from_ndarray(pcm.reshape(1, -1), format="s16", layout=layout)
    frame.sample_rate = 48000
    return frame


def test_audio_level_matches_aiortc_exactly() -> None:
    rng = np.random.default_rng(1)
    cases = [np.zeros(960, np.int16), np.full(960, 32767, np.int16), np.full(960, -32768, np.int16)]
    for scale in (1, 3, 30, 300, 3000, 30000):
        cases.append(np.clip(rng.normal(0, scale, 960), -32768, 32767).astype(np.int16))
    for pcm in cases:
        mono = _frame(pcm, "mono")
        stereo = _frame(np.repeat(pcm, 2), "stereo")
        for frame in (mono, stereo):
            assert fastaudio.compute_audio_level_dbov(frame) == fastaudio.original_compute_audio_level_dbov(frame)


def test_hooks_install_once_and_only_on_the_checked_version() -> None:
    first = fastaudio.install()
    assert fastaudio.install() == first
    assert first == {"audio_level": True, "inline_decode": True, "delayed_sack": True}  # aiortc 1.16 is pinned
    assert aiortc.rtp.compute_audio_level_dbov is fastaudio.compute_audio_level_dbov


async def test_inline_decoding_only_inside_the_scope() -> None:
    fastaudio.install()
    outside = RTCPeerConnection(rtc_configuration())
    with fastaudio.fast_receive():
        inside = RTCPeerConnection(rtc_configuration())
        inside_receiver = inside.addTransceiver("audio", direction="recvonly").receiver
    outside_receiver = outside.addTransceiver("audio", direction="recvonly").receiver
    try:
        assert isinstance(inside_receiver._RTCRtpReceiver__decoder_queue, fastaudio.InlineAudioDecoder)
        assert isinstance(outside_receiver._RTCRtpReceiver__decoder_queue, queue.Queue)
    finally:
        await inside.close()
        await outside.close()


def test_mic_encoder_round_trips_through_the_mono_decoder() -> None:
    encoder = MicOpusEncoder()
    decoder = fastaudio.MonoOpusDecoder()

    class Encoded:
        def __init__(self, data: bytes, timestamp: int) -> None:
            self.data, self.timestamp = data, timestamp

    out = []
    for i, frame in enumerate(tone_frames(880, 50)):
        packets = encoder.encode(frame, i * 960)
        assert len(packets) == 1
        assert packets[0].pts == i * 960 and packets[0].time_base == fractions.Fraction(1, 48000)
        for decoded in decoder.decode(Encoded(bytes(packets[0]), i * 960)):
            assert decoded.layout.name == "mono" and decoded.sample_rate == 48000
            out.append(np.frombuffer(decoded.planes[0], np.int16, count=decoded.samples))
    assert abs(dominant_frequency(np.concatenate(out[-25:])) - 880) < 10


def test_rtc_configuration_never_uses_default_stun() -> None:
    config = rtc_configuration()
    assert config.iceServers == []  # None would make aiortc use stun.l.google.com
    relay = rtc_configuration([RTCIceServer("turn:t.example:3478", "u", "p")], relay_only=True)
    assert relay.iceTransportPolicy.value == "relay"


def test_select_ice_servers_picks_one_stun_and_the_preferred_turn() -> None:
    servers = [
        RTCIceServer(urls=["turns:t.example:443?transport=tcp", "turn:t.example:3478?transport=udp"], username="u",
                     credential="p"),
        RTCIceServer(urls=["stun:s1.example:3478", "stun:s2.example:3478", "bogus:x"]),
    ]
    chosen = select_ice_servers(servers)
    assert [s.urls for s in chosen] == ["stun:s1.example:3478", "turn:t.example:3478?transport=udp"]
    assert chosen[1].username == "u" and chosen[1].credential == "p"
    tcp = select_ice_servers(servers, prefer_tcp_turn=True)
    assert tcp[1].urls == "turns:t.example:443?transport=tcp"
    assert select_ice_servers([]) == []


async def test_loopback_candidates_are_scoped() -> None:
    def addresses() -> list[str]:
        return aioice.ice.get_host_addresses(use_ipv4=True, use_ipv6=False)

    base = addresses()  # aioice's own list, unless another module patched it process-wide
    with loopback_candidates():
        assert addresses() == ["127.0.0.1"]

        async def in_task() -> list[str]:
            return addresses()

        assert await asyncio.ensure_future(in_task()) == ["127.0.0.1"]  # tasks inherit the scope
    assert addresses() == base
    enable_loopback_candidates()
    try:
        assert addresses() == ["127.0.0.1"]
    finally:
        enable_loopback_candidates(False)
    assert addresses() == base


def test_is_loopback_url() -> None:
    assert is_loopback_url("ws://127.0.0.1:7880")
    assert is_loopback_url("http://localhost:8080/api/offer")
    assert is_loopback_url("ws://[::1]:7880")
    assert not is_loopback_url("wss://convai-technologies-lfslae7c.livekit.cloud")
    assert not is_loopback_url("http://192.0.2.2:80")


def test_signal_url() -> None:
    assert signal_url("wss://x.livekit.cloud", "/rtc") == "wss://x.livekit.cloud/rtc"
    assert signal_url("https://x.example/base/", "/rtc/v1") == "wss://x.example/base/rtc/v1"
    assert signal_url("http://127.0.0.1:1", "/rtc") == "ws://127.0.0.1:1/rtc"


def test_parse_candidate_init() -> None:
    init = json.dumps({"candidate": "candidate:1 1 udp 2130706431 127.0.0.1 5000 typ host", "sdpMid": "0",
                       "sdpMLineIndex": 0})
    candidate, end = parse_candidate_init(init)
    assert not end and candidate is not None
    assert (candidate.ip, candidate.port, candidate.sdpMid, candidate.sdpMLineIndex) == ("127.0.0.1", 5000, "0", 0)
    assert parse_candidate_init(json.dumps({"candidate": "", "sdpMid": "0"})) == (None, True)
    with pytest.raises(ValueError):
        parse_candidate_init("not json")


def test_media_msids() -> None:
    sdp = "\r\n".join([
        "v=0", "m=audio 9 UDP/TLS/RTP/SAVPF 111", "a=mid:0", "a=msid:PA_bot|TR_x TR_x",
        "m=application 9 UDP/DTLS/SCTP webrtc-datachannel", "a=mid:1",
        "m=audio 9 UDP/TLS/RTP/SAVPF 111", "a=mid:2", "a=ssrc:1 msid:PA_b|TR_y TR_y",
    ])
    assert media_msids(sdp) == {"0": ("PA_bot|TR_x", "TR_x"), "2": ("PA_b|TR_y", "TR_y")}


async def test_mic_track_paces_frames_and_reuses_settled_silence() -> None:
    from bridge.backends.live.media import MicTrack
    from bridge.backends.live.transport import TransportStats

    class Encoded:
        def __init__(self, data: bytes, timestamp: int) -> None:
            self.data, self.timestamp = data, timestamp

    stats = TransportStats()
    track = MicTrack(stats)
    decoder = fastaudio.MonoOpusDecoder()
    loop = asyncio.get_running_loop()
    started = loop.time()
    packets = [await track.recv() for _ in range(12)]  # nothing queued: silence
    for frame in tone_frames(600, 20):
        track.push(frame)
    packets += [await track.recv() for _ in range(20)]
    elapsed = loop.time() - started
    assert 0.55 < elapsed < 0.9  # 32 frames of 20 ms, paced in real time (the first is immediate)
    assert [p.pts for p in packets] == [i * 960 for i in range(32)]
    assert stats.mic_silence_frames == 12 and stats.mic_frames_sent == 20
    assert bytes(packets[10]) == bytes(packets[11])  # settled silence is resent, not re-encoded
    pcm = []
    for packet in packets:
        for frame in decoder.decode(Encoded(bytes(packet), packet.pts)):
            pcm.append(np.frombuffer(frame.planes[0], np.int16, count=frame.samples))
    silence, speech = np.concatenate(pcm[:12]), np.concatenate(pcm[-15:])
    assert np.abs(silence).max() < 50
    assert abs(dominant_frequency(speech) - 600) < 10
    track.stop()


def test_mic_track_trims_a_persistent_backlog_but_not_a_burst() -> None:
    from bridge.backends.live.media import MicTrack
    from bridge.backends.live.transport import TransportStats

    stats = TransportStats()
    track = MicTrack(stats, max_frames=50)
    frames = tone_frames(300, 50)
    for frame in frames[:5]:  # a 100 ms burst drains without loss
        track.push(frame)
    for _ in range(50):  # one trim window; _next_packet is recv() without the real-time sleep
        track._next_packet()
    assert stats.mic_trimmed == 0 and stats.mic_frames_sent == 5
    for frame in frames[:12]:  # then a standing 12-frame backlog, topped up as it drains
        track.push(frame)
    for i in range(150):
        track._next_packet()
        track.push(frames[i % len(frames)])
    # window 2 began with an empty queue; windows 3 and 4 saw the backlog throughout
    assert stats.mic_trimmed == 2
    assert track.queued == 10
    assert stats.mic_dropped == 0
    track.stop()
