"""A small LiveKit-compatible server with one aiortc bot per connection, for transport tests.

Speaks the signalling subset in the reference (v0 dual-PC ``/rtc``, v1 single-PC ``/rtc/v1``,
``/validate``), checks LiveKit JWTs, and gives every client a bot that streams a sine tone on an
Opus track, answers RTVI ``client-ready`` with ``bot-ready`` and echoes every other message inside a
``server-message``. Candidates are trickled separately from the SDP, as the real server does.
Fault switches (set on the server object between tests): ``no_pong``, ``refuse_join``,
``silent`` (never join), ``early_trickle``, ``v1`` (False → 404 on ``/rtc/v1``), ``resume``
(a dropped signalling socket keeps the participant's peer connections for ``resume_window_s`` and
``reconnect=1&sid=`` resumes it with a ``reconnect`` answer; otherwise such a request gets a leave),
``ice_restart_on_resume`` (then re-offer the subscriber with new ICE credentials, as LiveKit does).
``drop_socket()`` / ``send_leave()`` act on live sessions.

Run standalone (for benchmarks): ``python -m tests.live_transport.lt_fake_livekit --port-file PATH``.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import collections
import contextlib
import json
import logging
import re
import time
from pathlib import Path
from typing import Any

import numpy as np
from aiohttp import web
from aiortc import RTCConfiguration, RTCDataChannel, RTCPeerConnection, RTCSessionDescription
from aiortc.mediastreams import MediaStreamError, MediaStreamTrack
from livekit import api
from livekit.protocol import models, rtc

from bridge.backends.live.ice import loopback_candidates
from tests.live_transport.lt_tone import ToneTrack, to_mono

log = logging.getLogger("lt_fake_livekit")

API_KEY = "devkey"
API_SECRET = "fake-livekit-test-secret-0123456789abcdef"
BOT_SID = "PA_bot0001"
BOT_IDENTITY = "bot"
BOT_TRACK_SID = "TR_bottone1"


def split_candidates(sdp: str) -> tuple[str, list[str]]:
    """Remove candidate lines from an SDP; return it and the candidates as candidateInit JSON."""
    lines = sdp.splitlines()
    kept: list[str] = []
    inits: list[str] = []
    mid: str | None = None
    mline = -1
    pending: list[str] = []

    def flush() -> None:
        for cand in pending:
            inits.append(json.dumps({"candidate": cand, "sdpMid": mid, "sdpMLineIndex": mline}))
        pending.clear()

    for line in lines:
        if line.startswith("m="):
            flush()
            mline += 1
            mid = None
        if line.startswith("a=mid:"):
            mid = line[len("a=mid:") :]
        if line.startswith("a=candidate:"):
            pending.append(line[2:])
            continue
        if line.startswith("a=end-of-candidates"):
            continue
        kept.append(line)
    flush()
    return "\r\n".join(kept) + "\r\n", inits


class FakeSession:
    def __init__(self, server: FakeLiveKit, ws: web.WebSocketResponse, identity: str, single: bool) -> None:
        self.server = server
        self.ws = ws
        self.identity = identity
        self.single = single
        self.sid = f"PA_client{len(server.sessions):04d}"
        self.sub: RTCPeerConnection | None = None
        self.pub: RTCPeerConnection | None = None
        self.bot_channel: RTCDataChannel | None = None
        self.received: list[dict[str, Any]] = []
        self.received_topics: list[str] = []
        self.mic = collections.deque(maxlen=server.keep_mic_frames)
        self.mic_frames = 0
        self.mic_published: list[str] = []
        self.pings = 0
        self.left = asyncio.Event()
        self.tasks: list[asyncio.Task[Any]] = []
        self.tone = ToneTrack(server.tone_hz, track_id=BOT_TRACK_SID)
        self.request_transport: asyncio.BaseTransport | None = None
        self.resumes = 0
        self.sync_states: list[rtc.SyncState] = []
        self.ws_ended = asyncio.Event()
        self.resumed = asyncio.Event()

    async def send(self, response: rtc.SignalResponse) -> None:
        if not self.ws.closed:
            await self.ws.send_bytes(response.SerializeToString())

    def bot_info(self) -> models.ParticipantInfo:
        return models.ParticipantInfo(
            sid=BOT_SID,
            identity=BOT_IDENTITY,
            state=models.ParticipantInfo.State.ACTIVE,
            is_publisher=True,
            tracks=[
                models.TrackInfo(
                    sid=BOT_TRACK_SID, type=models.TrackType.AUDIO, source=models.TrackSource.MICROPHONE,
                    name="bot-voice", mime_type="audio/opus",
                )
            ],
        )

    async def run(self) -> None:
        if self.server.silent:  # accept the socket, never join
            async for _ in self.ws:
                pass
            return
        if self.server.refuse_join:
            await self.send(rtc.SignalResponse(leave=rtc.LeaveRequest(reason=models.DisconnectReason.JOIN_FAILURE)))
            await self.ws.close()
            return
        join = rtc.JoinResponse(
            room=models.Room(sid="RM_fake0001", name="room1"),
            participant=models.ParticipantInfo(
                sid=self.sid, identity=self.identity, state=models.ParticipantInfo.State.JOINED
            ),
            other_participants=[self.bot_info()],
            server_version="1.9.0",
            server_info=models.ServerInfo(version="1.9.0", protocol=16),
            subscriber_primary=not self.single,
            ping_interval=self.server.ping_interval,
            ping_timeout=self.server.ping_timeout,
        )
        await self.send(rtc.SignalResponse(join=join))
        if not self.single:
            await self.offer_subscriber()
        try:
            while True:
                async for msg in self.ws:
                    if msg.type.name == "BINARY":
                        await self.handle(rtc.SignalRequest.FromString(msg.data))
                self.ws_ended.set()
                if not self.server.resume or self.left.is_set():
                    break
                self.resumed.clear()
                try:  # keep the peer connections a while: the client may resume the signalling
                    await asyncio.wait_for(self.resumed.wait(), self.server.resume_window_s)
                except TimeoutError:
                    break
        finally:
            self.ws_ended.set()
            await self.cleanup()

    async def resume_on(self, ws: web.WebSocketResponse, transport: asyncio.BaseTransport | None) -> None:
        """A ``reconnect=1`` socket for this participant: answer ``reconnect`` and read it from run()."""
        self.ws, self.request_transport = ws, transport
        self.ws_ended = asyncio.Event()
        self.resumes += 1
        await self.send(rtc.SignalResponse(reconnect=rtc.ReconnectResponse()))
        self.resumed.set()
        if self.server.ice_restart_on_resume and self.sub is not None and self.sub.localDescription is not None:
            # as LiveKit's ResumeParticipant does: a subscriber re-offer with new ICE credentials
            sdp = re.sub(r"a=ice-ufrag:\S+", "a=ice-ufrag:rstr", self.sub.localDescription.sdp)
            sdp = re.sub(r"a=ice-pwd:\S+", "a=ice-pwd:restartedpassword0123456789", sdp)
            await self.send(rtc.SignalResponse(offer=rtc.SessionDescription(type="offer", sdp=sdp, id=2)))
        await self.ws_ended.wait()

    async def trickle(self, inits: list[str], target: int) -> None:
        for init in inits:
            await self.send(rtc.SignalResponse(trickle=rtc.TrickleRequest(candidateInit=init, target=target)))

    async def offer_subscriber(self) -> None:
        pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
        self.sub = pc
        self.bot_channel = pc.createDataChannel("_reliable", ordered=True)
        lossy = pc.createDataChannel("_lossy", ordered=False, maxRetransmits=0)
        for channel in (self.bot_channel, lossy):
            channel.on("message", self.on_data)
        transceiver = pc.addTransceiver(self.tone, direction="sendonly")
        transceiver.sender._stream_id = f"{BOT_SID}|{BOT_TRACK_SID}"
        await pc.setLocalDescription(await pc.createOffer())
        sdp, inits = split_candidates(pc.localDescription.sdp)
        offer = rtc.SignalResponse(offer=rtc.SessionDescription(type="offer", sdp=sdp, id=1))
        if self.server.early_trickle:  # candidates before the offer: the client must queue them
            await self.trickle(inits, rtc.SignalTarget.SUBSCRIBER)
            await self.send(offer)
        else:
            await self.send(offer)
            await self.trickle(inits, rtc.SignalTarget.SUBSCRIBER)

    def watch_pc(self, pc: RTCPeerConnection) -> None:
        @pc.on("datachannel")
        def _channel(channel: RTCDataChannel) -> None:
            channel.on("message", self.on_data)
            if self.single and channel.label == "_reliable":
                self.bot_channel = channel

        @pc.on("track")
        def _track(track: MediaStreamTrack) -> None:
            if track.kind == "audio":
                self.tasks.append(asyncio.ensure_future(self.consume_mic(track)))

    async def consume_mic(self, track: MediaStreamTrack) -> None:
        try:
            while True:
                frame = await track.recv()
                self.mic_frames += 1
                if self.mic.maxlen:
                    pcm = np.frombuffer(frame.planes[0], np.int16, count=frame.samples * frame.layout.nb_channels)
                    self.mic.append(to_mono(pcm, frame.layout.nb_channels))
        except MediaStreamError:
            return

    async def handle(self, req: rtc.SignalRequest) -> None:
        kind = req.WhichOneof("message")
        if kind == "answer" and self.sub is not None:
            await self.sub.setRemoteDescription(RTCSessionDescription(sdp=req.answer.sdp, type="answer"))
        elif kind == "offer":
            await self.answer_publisher(req.offer)
        elif kind == "add_track":
            sid = f"TR_mic{len(self.mic_published):04d}"
            self.mic_published.append(sid)
            add = req.add_track
            info = models.TrackInfo(sid=sid, type=add.type, source=add.source, name=add.name)
            published = rtc.TrackPublishedResponse(cid=add.cid, track=info)
            await self.send(rtc.SignalResponse(track_published=published))
        elif kind == "ping_req":
            self.pings += 1
            if not self.server.no_pong:
                pong = rtc.Pong(last_ping_timestamp=req.ping_req.timestamp, timestamp=int(time.time() * 1000))
                await self.send(rtc.SignalResponse(pong_resp=pong))
        elif kind == "leave":
            self.left.set()
            await self.ws.close()
        elif kind == "sync_state":
            self.sync_states.append(req.sync_state)

    async def answer_publisher(self, offer: rtc.SessionDescription) -> None:
        if self.pub is None:
            self.pub = RTCPeerConnection(RTCConfiguration(iceServers=[]))
            self.watch_pc(self.pub)
        pc = self.pub
        await pc.setRemoteDescription(RTCSessionDescription(sdp=offer.sdp, type="offer"))
        mid_map: dict[str, str] = {}
        if self.single:
            for transceiver in pc.getTransceivers():
                # aiortc stores the offer direction reversed (local view): remote recvonly → "sendonly"
                wants = getattr(transceiver, "_offerDirection", None) in ("sendonly", "sendrecv")
                if transceiver.kind == "audio" and wants and not mid_map:
                    if transceiver.sender.track is None:
                        transceiver.sender.replaceTrack(self.tone)
                        transceiver.sender._stream_id = f"{BOT_SID}|{BOT_TRACK_SID}"
                    transceiver.direction = "sendonly"
                    mid_map[transceiver.mid] = BOT_TRACK_SID
        await pc.setLocalDescription(await pc.createAnswer())
        sdp, inits = split_candidates(pc.localDescription.sdp)
        answer = rtc.SessionDescription(type="answer", sdp=sdp, id=offer.id, mid_to_track_id=mid_map)
        await self.send(rtc.SignalResponse(answer=answer))
        await self.trickle(inits, rtc.SignalTarget.PUBLISHER)

    def on_data(self, data: bytes | str) -> None:
        packet = models.DataPacket.FromString(data if isinstance(data, bytes) else data.encode())
        if packet.WhichOneof("value") != "user":
            return
        self.received_topics.append(packet.user.topic)
        message = json.loads(packet.user.payload)
        self.received.append(message)
        if message.get("type") == "client-ready":
            ready = {"label": "rtvi-ai", "type": "bot-ready", "id": message.get("id", ""), "data": {"version": "2.2.0"}}
            self.bot_send(ready)
        else:
            self.bot_send({"label": "rtvi-ai", "type": "server-message", "data": {"echo": message}})

    def bot_send(self, message: dict[str, Any]) -> None:
        channel = self.bot_channel
        if channel is None or channel.readyState != "open":
            log.warning("bot channel not open; dropping %s", message.get("type"))
            return
        packet = models.DataPacket(
            kind=models.DataPacket.Kind.RELIABLE,
            participant_identity=BOT_IDENTITY,
            participant_sid=BOT_SID,
            user=models.UserPacket(payload=json.dumps(message).encode()),
        )
        channel.send(packet.SerializeToString())

    async def send_leave(self) -> None:
        leave = rtc.LeaveRequest(reason=models.DisconnectReason.ROOM_DELETED, action=rtc.LeaveRequest.Action.DISCONNECT)
        await self.send(rtc.SignalResponse(leave=leave))

    async def bot_leaves(self) -> None:
        info = self.bot_info()
        info.state = models.ParticipantInfo.State.DISCONNECTED
        await self.send(rtc.SignalResponse(update=rtc.ParticipantUpdate(participants=[info])))

    def drop_socket(self) -> None:
        """Cut the TCP connection without a WebSocket close frame."""
        if self.request_transport is not None:
            self.request_transport.close()

    async def cleanup(self) -> None:
        for task in self.tasks:
            task.cancel()
        self.tone.stop()
        for pc in (self.sub, self.pub):
            if pc is not None:
                with contextlib.suppress(Exception):
                    await pc.close()


class FakeLiveKit:
    def __init__(
        self,
        *,
        tone_hz: float = 440.0,
        ping_interval: int = 5,
        ping_timeout: int = 15,
        keep_mic_frames: int = 250,
        v1: bool = True,
    ) -> None:
        self.tone_hz = tone_hz
        self.ping_interval = ping_interval
        self.ping_timeout = ping_timeout
        self.keep_mic_frames = keep_mic_frames
        self.v1 = v1
        self.no_pong = False
        self.refuse_join = False
        self.silent = False
        self.early_trickle = False
        self.resume = False
        self.ice_restart_on_resume = False
        self.resume_window_s = 5.0
        self.reconnect_requests: list[dict[str, str]] = []
        self.sessions: list[FakeSession] = []
        self.paths: list[str] = []
        self.auth_seen: list[str] = []
        self.url = ""
        self._runner: web.AppRunner | None = None
        self.app = web.Application()
        self.app.router.add_get("/rtc", self._rtc_v0)
        self.app.router.add_get("/rtc/v1", self._rtc_v1)
        self.app.router.add_get("/rtc/validate", self._validate)
        self.app.router.add_get("/rtc/v1/validate", self._validate_v1)

    @staticmethod
    def token(identity: str = "daemon", room: str = "room1", secret: str = API_SECRET) -> str:
        grants = api.VideoGrants(room_join=True, room=room, can_publish=True, can_subscribe=True, can_publish_data=True)
        return api.AccessToken(API_KEY, secret).with_identity(identity).with_grants(grants).to_jwt()

    def _identity(self, request: web.Request) -> str | None:
        header = request.headers.get("Authorization", "")
        token = header[len("Bearer ") :] if header.startswith("Bearer ") else request.query.get("access_token", "")
        self.auth_seen.append("bearer" if header.startswith("Bearer ") else "query" if token else "none")
        try:
            return api.TokenVerifier(API_KEY, API_SECRET).verify(token).identity
        except Exception:
            return None

    async def _validate(self, request: web.Request) -> web.Response:
        if self._identity(request) is None:
            return web.Response(status=401, text="invalid token: signature verification failed")
        return web.Response(text="success")

    async def _validate_v1(self, request: web.Request) -> web.Response:
        if not self.v1:
            return web.Response(status=404, text="404: Not Found")
        return await self._validate(request)

    async def _rtc_v0(self, request: web.Request) -> web.StreamResponse:
        return await self._rtc(request, single=False)

    async def _rtc_v1(self, request: web.Request) -> web.StreamResponse:
        if not self.v1:
            return web.Response(status=404, text="404: Not Found")
        wrapped = rtc.WrappedJoinRequest.FromString(base64.urlsafe_b64decode(request.query["join_request"] + "=="))
        join = rtc.JoinRequest.FromString(wrapped.join_request)  # must parse
        resume = {"reconnect": "1", "sid": join.participant_sid} if join.reconnect else None
        return await self._rtc(request, single=True, resume=resume)

    async def _rtc(
        self, request: web.Request, *, single: bool, resume: dict[str, str] | None = None
    ) -> web.StreamResponse:
        self.paths.append(request.path)
        identity = self._identity(request)
        if identity is None:
            return web.Response(status=401, text="invalid token")
        ws = web.WebSocketResponse(max_msg_size=0)
        await ws.prepare(request)
        resume = resume or (dict(request.query) if request.query.get("reconnect") == "1" else None)
        if resume is not None:
            self.reconnect_requests.append(resume)
            known = [s for s in self.sessions if s.sid == resume.get("sid") and not s.left.is_set()]
            if self.resume and known and known[0].ws.closed:
                await known[0].resume_on(ws, request.transport)
            else:
                leave = rtc.LeaveRequest(reason=models.DisconnectReason.STATE_MISMATCH,
                                         action=rtc.LeaveRequest.Action.RECONNECT)
                await ws.send_bytes(rtc.SignalResponse(leave=leave).SerializeToString())
                await ws.close()
            return ws
        session = FakeSession(self, ws, identity, single)
        session.request_transport = request.transport
        self.sessions.append(session)
        with loopback_candidates():
            await session.run()
        return ws

    async def start(self, port: int = 0) -> str:
        self._runner = web.AppRunner(self.app, handle_signals=False)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", port)
        await site.start()
        sockets = site._server.sockets  # type: ignore[union-attr]
        self.url = f"ws://127.0.0.1:{sockets[0].getsockname()[1]}"
        return self.url

    async def stop(self) -> None:
        for session in self.sessions:
            with contextlib.suppress(Exception):
                await session.ws.close()
            await session.cleanup()
        if self._runner is not None:
            await self._runner.cleanup()


async def _serve(port_file: Path, keep_mic_frames: int) -> None:
    server = FakeLiveKit(keep_mic_frames=keep_mic_frames, ping_interval=5, ping_timeout=15)
    url = await server.start()
    port_file.write_text(url)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    import signal

    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    await server.stop()


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--port-file", type=Path, required=True)
    parser.add_argument("--keep-mic-frames", type=int, default=0)
    args = parser.parse_args()
    asyncio.run(_serve(args.port_file, args.keep_mic_frames))
