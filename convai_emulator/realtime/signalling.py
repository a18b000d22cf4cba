"""LiveKit-compatible signalling: ``/rtc`` (dual PC), ``/rtc/v1`` (single PC) and ``/validate``.

Binary protobuf ``SignalRequest`` / ``SignalResponse`` frames over a WebSocket, as the LiveKit SDKs
speak them (livekit-signalling.md §2-8). Each participant gets a subscriber PC offered by the server
(bot audio + ``_reliable`` / ``_lossy``) and a publisher PC answered by the server (mic + the
client's data channels); in single-PC mode one client-offered PC carries both.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import dataclasses
import gzip
import json
import logging
import time
from collections import defaultdict
from collections.abc import Callable
from typing import Any

import numpy as np
from aiohttp import WSMsgType, web
from aiortc import (
    RTCConfiguration,
    RTCDataChannel,
    RTCIceCandidate,
    RTCPeerConnection,
    RTCRtpSender,
    RTCSessionDescription,
)
from aiortc.mediastreams import MediaStreamError, MediaStreamTrack
from aiortc.sdp import candidate_from_sdp
from google.protobuf import json_format
from livekit.protocol import models, rtc

from .channels import ChannelSender
from .rooms import Room, RoomRegistry, make_sid
from .settings import RealtimeSettings
from .tokens import Grant, TokenAuthority, TokenError

log = logging.getLogger(__name__)

SERVER_VERSION = "1.9.0"
PROTOCOL_VERSION = 16
PUBLISHER = rtc.SignalTarget.PUBLISHER
SUBSCRIBER = rtc.SignalTarget.SUBSCRIBER


def request_token(request: web.Request) -> str:
    """``Authorization: Bearer`` wins over the ``access_token`` query (as LiveKit's auth.go)."""
    header = request.headers.get("Authorization", "")
    if header.startswith("Bearer "):
        return header[len("Bearer "):].strip()
    return request.query.get("access_token", "")


def parse_candidate(init_json: str) -> RTCIceCandidate | None:
    """``candidateInit`` is RTCIceCandidateInit JSON; TCP and end-of-candidates yield None."""
    try:
        init = json.loads(init_json)
    except ValueError:
        return None
    line = init.get("candidate") if isinstance(init, dict) else None
    if not isinstance(line, str) or not line.strip():
        return None
    if line.startswith("candidate:"):
        line = line[len("candidate:"):]
    try:
        candidate = candidate_from_sdp(line)
    except (AssertionError, ValueError, IndexError):
        return None
    if candidate.protocol.lower() != "udp":
        return None  # aioice only pairs UDP
    candidate.sdpMid = init.get("sdpMid")
    index = init.get("sdpMLineIndex")
    candidate.sdpMLineIndex = index if isinstance(index, int) else None
    if candidate.sdpMid is None and candidate.sdpMLineIndex is None:
        candidate.sdpMLineIndex = 0
    return candidate


def opus_only() -> list[Any]:
    return [c for c in RTCRtpSender.getCapabilities("audio").codecs if c.mimeType.lower() == "audio/opus"]


def decode_join_request(raw: str) -> rtc.JoinRequest:
    """``join_request`` = URL-safe base64 (padding optional) of a possibly gzipped WrappedJoinRequest."""
    data = base64.urlsafe_b64decode(raw + "=" * (-len(raw) % 4))
    wrapped = rtc.WrappedJoinRequest.FromString(data)
    payload = wrapped.join_request
    if wrapped.compression == rtc.WrappedJoinRequest.Compression.GZIP:
        payload = gzip.decompress(payload)
    return rtc.JoinRequest.FromString(payload)


class Participant:
    """One client connection in a room."""

    def __init__(self, room: Room, ws: web.WebSocketResponse, grant: Grant, settings: RealtimeSettings,
                 tokens: TokenAuthority, single_pc: bool) -> None:
        self.room = room
        self.ws = ws
        self.grant = grant
        self.settings = settings
        self.tokens = tokens
        self.single_pc = single_pc
        self.sid = make_sid("PA_")
        self.identity = grant.identity
        self.joined = time.time()
        self.tracks: dict[str, models.TrackInfo] = {}  # by cid
        self.pub_pc: RTCPeerConnection | None = None
        self.sub_pc: RTCPeerConnection | None = None
        self._pending: dict[int, list[RTCIceCandidate]] = defaultdict(list)
        self._send_lock = asyncio.Lock()
        self._pub_lock = asyncio.Lock()
        self._bot_data = ChannelSender(on_open=self.room.bot.on_channel_open)
        self._tasks: set[asyncio.Task[Any]] = set()
        self._bot_track_attached = False
        self._closing = False
        self._left = False  # left for good (leave request, failed pc, server disconnect): no resume
        self._linger: asyncio.Task[None] | None = None
        self._refresher: asyncio.Task[None] | None = None
        self.resumes = 0
        self.mic_frames = 0
        self.on_gone: Callable[[Participant], None] | None = None

    # --- RoomMember -------------------------------------------------------------------------
    def info(self) -> models.ParticipantInfo:
        return models.ParticipantInfo(
            sid=self.sid, identity=self.identity, name=self.grant.name, metadata=self.grant.metadata,
            state=models.ParticipantInfo.State.ACTIVE, tracks=list(self.tracks.values()),
            joined_at=int(self.joined), joined_at_ms=int(self.joined * 1000),
            kind=models.ParticipantInfo.Kind.STANDARD, is_publisher=bool(self.tracks),
            permission=models.ParticipantPermission(
                can_subscribe=self.grant.can_subscribe, can_publish=self.grant.can_publish,
                can_publish_data=self.grant.can_publish_data),
        )

    def send_data(self, packet: bytes) -> None:
        self._bot_data.send(packet)

    async def send_signal(self, response: rtc.SignalResponse) -> None:
        if self.ws.closed:
            return
        async with self._send_lock:
            with contextlib.suppress(ConnectionError, RuntimeError):
                await self.ws.send_bytes(response.SerializeToString())

    async def disconnect(self, reason: int) -> None:
        if self._closing:
            return
        self._left = True
        await self.send_signal(rtc.SignalResponse(leave=rtc.LeaveRequest(
            can_reconnect=False, reason=reason, action=rtc.LeaveRequest.Action.DISCONNECT)))
        await self.ws.close()
        if self._linger is not None:  # signal already gone: nobody reads the socket, clean up here
            await self.cleanup()

    @property
    def lingering(self) -> bool:
        """Signalling dropped without a leave: the participant (and its media) waits for a resume."""
        return self._linger is not None and not self._closing

    # --- lifecycle --------------------------------------------------------------------------
    def _spawn(self, coro: Any) -> None:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _join_response(self) -> rtc.SignalResponse:
        s = self.settings
        return rtc.SignalResponse(join=rtc.JoinResponse(
            room=self.room.room_info(),
            participant=self.info(),
            other_participants=self.room.others(self),
            server_version=SERVER_VERSION,
            server_region="local",
            ice_servers=[],
            subscriber_primary=not self.single_pc,
            ping_interval=max(1, s.ping_interval_s),
            ping_timeout=max(2, s.ping_timeout_s),
            fast_publish=True,
            enabled_publish_codecs=[models.Codec(mime="audio/opus")],
            server_info=models.ServerInfo(
                edition=models.ServerInfo.Edition.Standard, version=SERVER_VERSION, protocol=PROTOCOL_VERSION,
                region="local", node_id="convai-emulator"),
        ))

    async def run(self, join_request: rtc.JoinRequest | None) -> None:
        await self.send_signal(self._join_response())
        await self.room.add(self)
        if self.single_pc:
            if join_request is not None and join_request.HasField("publisher_offer"):
                await self._on_offer(join_request.publisher_offer)
        else:
            await self._offer_subscriber()
        await self._serve_signals()

    async def resume(self, ws: web.WebSocketResponse) -> None:
        """LiveKit signal resume (``reconnect=1&sid=``, livekit-signalling.md §2): the same participant,
        room membership and peer connections continue on a new signalling socket, announced with a
        ``reconnect`` response instead of ``join``. Media never stopped, so a client that cannot
        restart ICE (aiortc) just keeps its connections; an offer it sends is answered as usual."""
        if self._linger is not None:
            self._linger.cancel()
            self._linger = None
        old, self.ws = self.ws, ws
        if not old.closed:
            await old.close()
        self.resumes += 1
        await self.send_signal(rtc.SignalResponse(reconnect=rtc.ReconnectResponse(
            ice_servers=[], client_configuration=models.ClientConfiguration())))
        await self._serve_signals()

    async def _serve_signals(self) -> None:
        if self._refresher is None or self._refresher.done():
            self._refresher = asyncio.ensure_future(self._refresh_tokens())
            self._tasks.add(self._refresher)
            self._refresher.add_done_callback(self._tasks.discard)
        ws = self.ws
        try:
            async for msg in ws:
                if msg.type == WSMsgType.BINARY:
                    try:
                        request = rtc.SignalRequest.FromString(msg.data)
                    except Exception:
                        log.warning("undecodable signal request (%d bytes)", len(msg.data))
                        continue
                    await self._on_request(request)
                elif msg.type == WSMsgType.TEXT:  # JSON SignalRequest, tolerated like the JS client does
                    try:
                        request = json_format.Parse(msg.data, rtc.SignalRequest())
                    except json_format.ParseError:
                        continue
                    await self._on_request(request)
                elif msg.type in (WSMsgType.ERROR, WSMsgType.CLOSE):
                    break
        finally:
            if ws is self.ws:  # (a resume replaced the socket: the new one carries on)
                if self._left or self.settings.resume_window_s <= 0 or self._closing:
                    await self.cleanup()
                else:
                    self._linger = asyncio.ensure_future(self._expire(self.settings.resume_window_s))

    async def _expire(self, window: float) -> None:
        await asyncio.sleep(window)
        self._linger = None
        await self.cleanup()

    async def cleanup(self) -> None:
        if self._closing:
            return
        self._closing = True
        if self._linger is not None and self._linger is not asyncio.current_task():
            self._linger.cancel()
        self._linger = None
        if self.on_gone is not None:
            self.on_gone(self)
        for task in list(self._tasks):
            task.cancel()
        await self.room.remove(self)
        for pc in (self.pub_pc, self.sub_pc):
            if pc is not None:
                with contextlib.suppress(Exception):
                    await pc.close()
        if not self.ws.closed:
            await self.ws.close()

    async def _refresh_tokens(self) -> None:
        delay = self.settings.first_refresh_token_s
        while not self.ws.closed:
            await asyncio.sleep(delay)
            await self.send_signal(rtc.SignalResponse(refresh_token=self.tokens.refresh(self.grant)))
            delay = self.settings.refresh_token_interval_s

    # --- requests ---------------------------------------------------------------------------
    async def _on_request(self, request: rtc.SignalRequest) -> None:
        kind = request.WhichOneof("message")
        if kind == "offer":
            await self._on_offer(request.offer)
        elif kind == "answer":
            await self._on_answer(request.answer)
        elif kind == "trickle":
            await self._on_trickle(request.trickle)
        elif kind == "add_track":
            await self._on_add_track(request.add_track)
        elif kind == "ping_req":
            await self.send_signal(rtc.SignalResponse(pong_resp=rtc.Pong(
                last_ping_timestamp=request.ping_req.timestamp, timestamp=int(time.time() * 1000))))
        elif kind == "ping":
            await self.send_signal(rtc.SignalResponse(pong=int(time.time() * 1000)))
        elif kind == "leave":
            self._left = True
            await self.ws.close()
        elif kind == "mute":
            for info in self.tracks.values():
                if info.sid == request.mute.sid:
                    info.muted = request.mute.muted
            await self.room.broadcast_update(self.info(), exclude=self)
        elif kind == "update_metadata":
            if request.update_metadata.metadata:
                self.grant = dataclasses.replace(self.grant, metadata=request.update_metadata.metadata)
            await self.room.broadcast_update(self.info(), exclude=self)
        else:
            log.debug("ignored signal request %s", kind)

    def _new_pc(self) -> RTCPeerConnection:
        return RTCPeerConnection(RTCConfiguration(iceServers=[]))

    async def _offer_subscriber(self) -> None:
        pc = self.sub_pc = self._new_pc()
        track = self.room.speaker.new_track(self.room.bot_track_sid)
        transceiver = pc.addTransceiver(track, direction="sendonly")
        transceiver.setCodecPreferences(opus_only())
        transceiver.sender._stream_id = self.room.stream_id  # msid "PA_bot|TR_bot": SDKs map tracks by it
        self._bot_data.attach(pc.createDataChannel("_reliable", ordered=True))
        pc.createDataChannel("_lossy", ordered=False, maxRetransmits=0)
        self._watch(pc, "subscriber")
        await pc.setLocalDescription(await pc.createOffer())
        await self.send_signal(rtc.SignalResponse(offer=rtc.SessionDescription(
            type="offer", sdp=pc.localDescription.sdp, id=1)))

    def _watch(self, pc: RTCPeerConnection, role: str) -> None:
        @pc.on("connectionstatechange")
        def _state() -> None:
            log.debug("%s %s pc: %s", self.identity, role, pc.connectionState)
            if pc.connectionState == "failed":
                self._left = True
                if self.lingering:
                    self._spawn(self.cleanup())
                else:
                    self._spawn(self.ws.close())

    def _publisher_pc(self) -> RTCPeerConnection:
        if self.pub_pc is not None:
            return self.pub_pc
        pc = self.pub_pc = self._new_pc()
        self._watch(pc, "publisher")

        @pc.on("datachannel")
        def _channel(channel: RTCDataChannel) -> None:
            if self.single_pc and channel.label == "_reliable":
                self._bot_data.attach(channel)
            channel.on("message", self._on_client_data)

        @pc.on("track")
        def _track(track: MediaStreamTrack) -> None:
            if track.kind == "audio":
                self._spawn(self._consume_mic(track))

        return pc

    async def _on_offer(self, offer: rtc.SessionDescription) -> None:
        async with self._pub_lock:
            pc = self._publisher_pc()
            await pc.setRemoteDescription(RTCSessionDescription(sdp=offer.sdp, type="offer"))
            mid_map: dict[str, str] = {}
            if self.single_pc:
                mid_map = self._attach_bot_single_pc(pc)
            await self._flush_candidates(PUBLISHER, pc)
            await pc.setLocalDescription(await pc.createAnswer())
            await self.send_signal(rtc.SignalResponse(answer=rtc.SessionDescription(
                type="answer", sdp=pc.localDescription.sdp, id=offer.id, mid_to_track_id=mid_map)))

    def _attach_bot_single_pc(self, pc: RTCPeerConnection) -> dict[str, str]:
        """Put the bot's audio on the first audio section the client offered to receive on."""
        for transceiver in pc.getTransceivers():
            if transceiver.kind != "audio" or transceiver.mid is None:
                continue
            if self._bot_track_attached and transceiver.sender.track is not None:
                return {transceiver.mid: self.room.bot_track_sid}
            if (not self._bot_track_attached and transceiver.sender.track is None
                    and getattr(transceiver, "_offerDirection", None) in ("sendonly", "sendrecv")):
                track = self.room.speaker.new_track(self.room.bot_track_sid)
                transceiver.sender.replaceTrack(track)
                transceiver.sender._stream_id = self.room.stream_id
                transceiver.direction = "sendonly" if transceiver.direction == "recvonly" else "sendrecv"
                self._bot_track_attached = True
                return {transceiver.mid: self.room.bot_track_sid}
        return {}

    async def _on_answer(self, answer: rtc.SessionDescription) -> None:
        if self.sub_pc is None:
            return
        await self.sub_pc.setRemoteDescription(RTCSessionDescription(sdp=answer.sdp, type="answer"))
        await self._flush_candidates(SUBSCRIBER, self.sub_pc)

    async def _on_trickle(self, trickle: rtc.TrickleRequest) -> None:
        candidate = parse_candidate(trickle.candidateInit)
        if candidate is None:
            return
        target = PUBLISHER if self.single_pc else trickle.target
        pc = self.pub_pc if target == PUBLISHER else self.sub_pc
        if pc is None or pc.remoteDescription is None:
            self._pending[target].append(candidate)
            return
        with contextlib.suppress(Exception):
            await pc.addIceCandidate(candidate)

    async def _flush_candidates(self, target: int, pc: RTCPeerConnection) -> None:
        for candidate in self._pending.pop(target, []):
            with contextlib.suppress(Exception):
                await pc.addIceCandidate(candidate)

    async def _on_add_track(self, request: rtc.AddTrackRequest) -> None:
        info = models.TrackInfo(
            sid=make_sid("TR_"), type=request.type, name=request.name or "microphone", muted=request.muted,
            source=request.source or models.TrackSource.MICROPHONE, disable_dtx=request.disable_dtx,
            disable_red=request.disable_red, stereo=request.stereo, mime_type="audio/opus",
            stream=request.stream, encryption=request.encryption,
        )
        self.tracks[request.cid] = info
        await self.send_signal(rtc.SignalResponse(track_published=rtc.TrackPublishedResponse(
            cid=request.cid, track=info)))
        await self.room.broadcast_update(self.info(), exclude=self)

    # --- media and data in ------------------------------------------------------------------
    def _on_client_data(self, message: bytes | str) -> None:
        if isinstance(message, str):  # not LiveKit framing; accept raw JSON as a courtesy
            self.room.bot.handle_payload(message, self.identity)
            return
        try:
            packet = models.DataPacket.FromString(message)
        except Exception:
            return
        self.room.on_client_data(self, packet)

    async def _consume_mic(self, track: MediaStreamTrack) -> None:
        bot = self.room.bot
        while True:
            try:
                frame = await track.recv()
            except MediaStreamError:
                return
            self.mic_frames += 1
            samples = np.frombuffer(frame.planes[0], dtype=np.int16)[: frame.samples * len(frame.layout.channels)]
            bot.feed_mic(samples, frame.samples / frame.sample_rate,
                         channels=len(frame.layout.channels), rate=frame.sample_rate)


def _unauthorized(reason: str) -> web.Response:
    return web.json_response({"error": "unauthorized", "detail": reason}, status=401)


class SignallingServer:
    """The aiohttp handlers; registered by :func:`convai_emulator.realtime.register`."""

    def __init__(self, registry: RoomRegistry, tokens: TokenAuthority, settings: RealtimeSettings) -> None:
        self.registry = registry
        self.tokens = tokens
        self.settings = settings
        self.participants: set[Participant] = set()

    def add_routes(self, app: web.Application) -> None:
        app.router.add_get("/rtc", self.rtc_v0)
        app.router.add_get("/rtc/validate", self.validate)
        if self.settings.single_pc:
            app.router.add_get("/rtc/v1", self.rtc_v1)
            app.router.add_get("/rtc/v1/validate", self.validate)
        else:  # clients fall back to /rtc only on a 404 (livekit-signalling.md §2.1)
            app.router.add_get("/rtc/v1", self.not_found)
            app.router.add_get("/rtc/v1/validate", self.not_found)

    async def not_found(self, _request: web.Request) -> web.Response:
        return web.json_response({"error": "not found"}, status=404)

    async def validate(self, request: web.Request) -> web.Response:
        try:
            self.tokens.verify(request_token(request))
        except TokenError as exc:
            return _unauthorized(str(exc))
        return web.Response(text="success")

    async def rtc_v0(self, request: web.Request) -> web.StreamResponse:
        return await self._serve(request, single_pc=False)

    async def rtc_v1(self, request: web.Request) -> web.StreamResponse:
        return await self._serve(request, single_pc=True)

    async def _serve(self, request: web.Request, single_pc: bool) -> web.StreamResponse:
        try:
            grant = self.tokens.verify(request_token(request))
        except TokenError as exc:
            return _unauthorized(str(exc))
        join_request: rtc.JoinRequest | None = None
        if single_pc and request.query.get("join_request"):
            try:
                join_request = decode_join_request(request.query["join_request"])
            except Exception:
                return web.json_response({"error": "bad join_request"}, status=400)
        reconnect = request.query.get("reconnect") in ("1", "true")
        sid = request.query.get("sid", "")
        if join_request is not None and join_request.reconnect:
            reconnect, sid = True, join_request.participant_sid or sid
        ws = web.WebSocketResponse(max_msg_size=16 << 20)
        await ws.prepare(request)
        same = [p for p in self.participants if p.room.name == grant.room and p.identity == grant.identity
                and not p._closing]
        if reconnect:
            target = next((p for p in same if not sid or p.sid == sid), None)
            if target is None:  # nothing to resume (gone, or never here): the client must join afresh
                with contextlib.suppress(ConnectionError, RuntimeError):
                    await ws.send_bytes(rtc.SignalResponse(leave=rtc.LeaveRequest(
                        can_reconnect=True, reason=models.DisconnectReason.STATE_MISMATCH,
                        action=rtc.LeaveRequest.Action.RECONNECT)).SerializeToString())
                await ws.close()
                return ws
            await target.resume(ws)
            return ws
        for ghost in same:  # a fresh join replaces an old connection of the same identity (LiveKit)
            await ghost.disconnect(models.DisconnectReason.DUPLICATE_IDENTITY)
        room = self.registry.get_or_create(grant.room)
        participant = Participant(room, ws, grant, self.settings, self.tokens, single_pc)
        self.participants.add(participant)
        participant.on_gone = self.participants.discard
        try:
            await participant.run(join_request)
        finally:
            if not participant.lingering:
                self.participants.discard(participant)
        return ws

    async def close(self) -> None:
        for participant in list(self.participants):
            with contextlib.suppress(Exception):
                await participant.disconnect(models.DisconnectReason.SERVER_SHUTDOWN)
