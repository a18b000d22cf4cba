"""Direct SDP transport: pipecat SmallWebRTC-style ``POST/PATCH /api/offer`` with the same bot.

Convai's ``/connect`` never returns an SDP endpoint (convai-apis.md §16), so this is what a
pipecat-style bot URL looks like on the emulator: ``/api/offer`` (default character, or
``request_data.character_id`` / ``request_data.session_id``) and ``/bots/{character_id}/api/offer``.
One peer connection per ``pc_id``: audio both ways and one client-created data channel carrying
RTVI JSON text (rtvi-smallwebrtc.md §5-8).
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import logging
import time
import uuid
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np
from aiohttp import web
from aiortc import RTCConfiguration, RTCDataChannel, RTCPeerConnection, RTCSessionDescription
from aiortc.mediastreams import MediaStreamError, MediaStreamTrack
from aiortc.sdp import candidate_from_sdp

from .bot import BotSession
from .channels import ChannelSender
from .playout import Speaker
from .rooms import SessionBinding
from .settings import RealtimeSettings

log = logging.getLogger(__name__)

PEER_LEFT = json.dumps({"type": "signalling", "message": {"type": "peerLeft"}})


class UnknownCharacter(LookupError):
    pass


BindingFactory = Callable[[str | None, Mapping[str, Any]], SessionBinding]


class DirectPeer:
    """One client peer connection and the bot session behind it (which outlives ``restart_pc``)."""

    _counter = itertools.count()

    def __init__(self, binding: SessionBinding, settings: RealtimeSettings,
                 on_closed: Callable[[DirectPeer], None]) -> None:
        self.settings = settings
        self.speaker = Speaker()
        self._channel = ChannelSender(on_open=self._channel_opened)
        self.bot = BotSession(binding.persona, binding.config, self._channel.send, self.speaker,
                              on_close_request=self._bot_close_request,
                              participant_identity=binding.bot_identity or "bot", recognizer=binding.recognizer)
        self.bot.user_id = ""  # pipecat's SmallWebRTC reports user_id "" (rtvi-smallwebrtc.md §4.2)
        self._on_closed = on_closed
        self.pc: RTCPeerConnection | None = None
        self.pc_id = ""
        self._bot_track_attached = False
        self._tasks: set[asyncio.Task[Any]] = set()
        self._last_ping: float | None = None
        self._parked: list[str] = []
        self.closed = False
        self.mic_frames = 0
        self.bot.start()

    def _channel_opened(self) -> None:
        self.bot.on_channel_open()

    def new_pc(self) -> RTCPeerConnection:
        self.pc_id = f"EmulatorConnection#{next(self._counter)}-{uuid.uuid4().hex}"
        self._bot_track_attached = False
        pc = self.pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))

        @pc.on("datachannel")
        def _channel(channel: RTCDataChannel) -> None:
            self._channel.attach(channel)
            channel.on("message", self._on_message)

        @pc.on("track")
        def _track(track: MediaStreamTrack) -> None:
            if track.kind == "audio":
                self._spawn(self._consume_mic(track))

        @pc.on("connectionstatechange")
        def _state() -> None:
            if pc is self.pc and pc.connectionState in ("failed", "closed"):
                self._spawn(self.close())

        return pc

    async def replace_pc(self) -> None:
        """``restart_pc``: drop the old pc, keep the conversation, answer on a fresh pc."""
        old = self.pc
        self.pc = None
        if old is not None:
            with contextlib.suppress(Exception):
                await old.close()
        self.new_pc()

    async def negotiate(self, sdp: str) -> str:
        pc = self.pc or self.new_pc()
        await pc.setRemoteDescription(RTCSessionDescription(sdp=sdp, type="offer"))
        if not self._bot_track_attached:
            audio = next((t for t in pc.getTransceivers() if t.kind == "audio"), None)
            if audio is not None:  # transceiver 0 carries mic in and bot voice out
                audio.sender.replaceTrack(self.speaker.new_track())
                audio.direction = "sendrecv"
                self._bot_track_attached = True
        await pc.setLocalDescription(await pc.createAnswer())
        return pc.localDescription.sdp

    async def add_candidates(self, candidates: list[Any]) -> None:
        if self.pc is None:
            return
        for item in candidates:
            if not isinstance(item, Mapping):
                continue
            line = item.get("candidate")
            if not isinstance(line, str) or not line.strip():
                continue  # end-of-candidates marker
            if line.startswith("candidate:"):
                line = line[len("candidate:"):]
            try:
                candidate = candidate_from_sdp(line)
            except (AssertionError, ValueError, IndexError):
                continue
            if candidate.protocol.lower() != "udp":
                continue
            candidate.sdpMid = item.get("sdp_mid", item.get("sdpMid"))
            index = item.get("sdp_mline_index", item.get("sdpMLineIndex"))
            candidate.sdpMLineIndex = index if isinstance(index, int) else None
            if candidate.sdpMid is None and candidate.sdpMLineIndex is None:
                candidate.sdpMLineIndex = 0
            with contextlib.suppress(Exception):
                await self.pc.addIceCandidate(candidate)

    # --- data channel -----------------------------------------------------------------------
    def _keepalive_lapsed(self) -> bool:
        return self._last_ping is not None and time.monotonic() - self._last_ping > self.settings.keepalive_grace_s

    def _on_message(self, message: bytes | str) -> None:
        if isinstance(message, bytes):
            try:
                message = message.decode("utf-8")
            except UnicodeDecodeError:
                return
        if message.startswith("ping"):
            self._last_ping = time.monotonic()
            parked, self._parked = self._parked, []
            for item in parked:
                self.bot.handle_payload(item)
            return
        try:
            parsed = json.loads(message)
        except ValueError:
            log.debug("direct peer: dropped non-JSON message")
            return  # pipecat logs and drops
        if not isinstance(parsed, dict) or "type" not in parsed:
            return
        if parsed["type"] == "signalling":
            return  # trackStatus etc.: nothing to do for an audio-only bot
        if self._keepalive_lapsed():
            # pipecat: after pinging once, a peer silent for 3 s is "disconnected" and app
            # messages are parked until it pings again (rtvi-smallwebrtc.md §8).
            self._parked.append(message)
            return
        self.bot.handle_payload(message)

    async def _consume_mic(self, track: MediaStreamTrack) -> None:
        while True:
            try:
                frame = await track.recv()
            except MediaStreamError:
                return
            self.mic_frames += 1
            samples = np.frombuffer(frame.planes[0], dtype=np.int16)[: frame.samples * len(frame.layout.channels)]
            self.bot.feed_mic(samples, frame.samples / frame.sample_rate,
                              channels=len(frame.layout.channels), rate=frame.sample_rate)

    # --- lifetime ---------------------------------------------------------------------------
    def _spawn(self, coro: Any) -> None:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def say_goodbye(self) -> None:
        self._channel.send(PEER_LEFT)

    async def _bot_close_request(self, _reason: str) -> None:
        self.say_goodbye()
        await asyncio.sleep(0.5)
        await self.close()

    async def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        await self.bot.close()
        await self.speaker.close()
        if self.pc is not None:
            with contextlib.suppress(Exception):
                await self.pc.close()
        self._on_closed(self)
        for task in list(self._tasks):
            if task is not asyncio.current_task():
                task.cancel()


def _detail(status: int, detail: str) -> web.Response:
    return web.json_response({"detail": detail}, status=status)


class DirectServer:
    def __init__(self, bindings: BindingFactory, settings: RealtimeSettings) -> None:
        self.bindings = bindings
        self.settings = settings
        self.peers: dict[str, DirectPeer] = {}

    def add_routes(self, app: web.Application) -> None:
        app.router.add_post("/api/offer", self.offer)
        app.router.add_patch("/api/offer", self.patch)
        app.router.add_post("/bots/{character_id}/api/offer", self.offer)
        app.router.add_patch("/bots/{character_id}/api/offer", self.patch)

    async def offer(self, request: web.Request) -> web.Response:
        try:
            body = await request.json()
        except ValueError:
            return _detail(400, "Invalid JSON body")
        if not isinstance(body, dict) or not isinstance(body.get("sdp"), str) or body.get("type") != "offer":
            return _detail(422, "Body must be {sdp, type: 'offer', pc_id?, restart_pc?}")
        pc_id = body.get("pc_id")
        peer = self.peers.get(pc_id) if isinstance(pc_id, str) else None
        is_new = peer is None
        if peer is not None and body.get("restart_pc"):
            self.peers.pop(peer.pc_id, None)
            await peer.replace_pc()
        elif peer is None:
            request_data = body.get("request_data", body.get("requestData")) or {}
            if not isinstance(request_data, Mapping):
                return _detail(422, "request_data must be an object")
            character_id = request.match_info.get("character_id") or request_data.get("character_id")
            try:
                binding = self.bindings(character_id if isinstance(character_id, str) else None, request_data)
            except UnknownCharacter:
                return _detail(404, "Character not found or doesn't belong to user")
            peer = DirectPeer(binding, self.settings, self._forget)
            peer.new_pc()
        try:
            sdp = await peer.negotiate(body["sdp"])
        except Exception as exc:
            log.warning("direct offer failed: %s", exc)
            if is_new:
                await peer.close()
            return _detail(400, f"Could not answer the offer: {exc}")
        self.peers[peer.pc_id] = peer
        return web.json_response({"sdp": sdp, "type": "answer", "pc_id": peer.pc_id})

    async def patch(self, request: web.Request) -> web.Response:
        try:
            body = await request.json()
        except ValueError:
            return _detail(400, "Invalid JSON body")
        peer = self.peers.get(body.get("pc_id")) if isinstance(body, dict) else None
        if peer is None:
            return _detail(404, "Peer connection not found")
        candidates = body.get("candidates")
        await peer.add_candidates(candidates if isinstance(candidates, list) else [])
        return web.json_response({"status": "success"})

    def _forget(self, peer: DirectPeer) -> None:
        if self.peers.get(peer.pc_id) is peer:
            del self.peers[peer.pc_id]

    async def close(self) -> None:
        for peer in list(self.peers.values()):
            peer.say_goodbye()
            await peer.close()
