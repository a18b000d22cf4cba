"""A pipecat SmallWebRTC-style bot for transport tests: ``POST/PATCH /api/offer``, tone out, echo.

Each offer gets an aiortc peer whose audio transceiver 0 answers ``sendrecv`` with a sine tone;
``client-ready`` gets ``bot-ready``, anything else comes back inside ``server-message``; the plain
``ping: …`` keep-alives are counted. ``peer_left()`` and ``ask_renegotiate()`` send pipecat's
signalling messages; ``fail_status`` makes the next offers fail with a FastAPI-style body.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import json
import uuid
from typing import Any

import numpy as np
from aiohttp import web
from aiortc import RTCConfiguration, RTCDataChannel, RTCPeerConnection, RTCSessionDescription
from aiortc.mediastreams import MediaStreamError, MediaStreamTrack

from bridge.backends.live.ice import loopback_candidates
from tests.live_transport.lt_tone import ToneTrack, to_mono


class FakePeer:
    def __init__(self, tone_hz: float) -> None:
        self.pc_id = f"SmallWebRTCConnection#0-{uuid.uuid4().hex}"
        self.pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
        self.tone = ToneTrack(tone_hz)
        self.channel: RTCDataChannel | None = None
        self.received: list[dict[str, Any]] = []
        self.raw: list[str] = []
        self.pings = 0
        self.offers = 0
        self.mic: collections.deque[np.ndarray] = collections.deque(maxlen=250)
        self.mic_frames = 0
        self.tasks: list[asyncio.Task[Any]] = []
        self.attached = False

        @self.pc.on("datachannel")
        def _channel(channel: RTCDataChannel) -> None:
            self.channel = channel
            channel.on("message", self.on_message)

        @self.pc.on("track")
        def _track(track: MediaStreamTrack) -> None:
            self.tasks.append(asyncio.ensure_future(self.consume(track)))

    async def consume(self, track: MediaStreamTrack) -> None:
        with contextlib.suppress(MediaStreamError):
            while True:
                frame = await track.recv()
                self.mic_frames += 1
                pcm = np.frombuffer(frame.planes[0], np.int16, count=frame.samples * frame.layout.nb_channels)
                self.mic.append(to_mono(pcm, frame.layout.nb_channels))

    async def answer(self, sdp: str) -> str:
        self.offers += 1
        await self.pc.setRemoteDescription(RTCSessionDescription(sdp=sdp, type="offer"))
        if not self.attached:
            audio = next(t for t in self.pc.getTransceivers() if t.kind == "audio")
            audio.sender.replaceTrack(self.tone)
            audio.direction = "sendrecv"
            self.attached = True
        await self.pc.setLocalDescription(await self.pc.createAnswer())
        return self.pc.localDescription.sdp

    def on_message(self, data: bytes | str) -> None:
        text = data.decode() if isinstance(data, bytes) else data
        self.raw.append(text)
        if text.startswith("ping"):
            self.pings += 1
            return
        message = json.loads(text)
        self.received.append(message)
        if message.get("type") == "client-ready":
            self.send({"label": "rtvi-ai", "type": "bot-ready", "id": message.get("id", ""), "data": {}})
        else:
            self.send({"label": "rtvi-ai", "type": "server-message", "data": {"echo": message}})

    def send(self, message: dict[str, Any]) -> None:
        if self.channel is not None and self.channel.readyState == "open":
            self.channel.send(json.dumps(message))

    def peer_left(self) -> None:
        self.send({"type": "signalling", "message": {"type": "peerLeft"}})

    def ask_renegotiate(self) -> None:
        self.send({"type": "signalling", "message": {"type": "renegotiate"}})

    async def close(self) -> None:
        for task in self.tasks:
            task.cancel()
        self.tone.stop()
        await self.pc.close()


class FakeSmallWebRTC:
    def __init__(self, tone_hz: float = 523.0) -> None:
        self.tone_hz = tone_hz
        self.peers: dict[str, FakePeer] = {}
        self.bodies: list[dict[str, Any]] = []
        self.fail_status: int | None = None
        self.url = ""
        self.app = web.Application()
        self.app.router.add_post("/api/offer", self.offer)
        self.app.router.add_patch("/api/offer", self.patch)
        self._runner: web.AppRunner | None = None

    async def offer(self, request: web.Request) -> web.Response:
        body = await request.json()
        self.bodies.append(body)
        if self.fail_status is not None:
            return web.json_response({"detail": "Character not found or doesn't belong to user"},
                                     status=self.fail_status)
        peer = self.peers.get(body.get("pc_id") or "")
        if peer is None:
            peer = FakePeer(self.tone_hz)
        with loopback_candidates():
            sdp = await peer.answer(body["sdp"])
        self.peers[peer.pc_id] = peer
        return web.json_response({"sdp": sdp, "type": "answer", "pc_id": peer.pc_id})

    async def patch(self, request: web.Request) -> web.Response:
        body = await request.json()
        if body.get("pc_id") not in self.peers:
            return web.json_response({"detail": "Peer connection not found"}, status=404)
        return web.json_response({"status": "success"})

    async def start(self) -> str:
        self._runner = web.AppRunner(self.app, handle_signals=False)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        self.url = f"http://127.0.0.1:{port}/api/offer"
        return self.url

    async def stop(self) -> None:
        for peer in self.peers.values():
            await peer.close()
        if self._runner is not None:
            await self._runner.cleanup()
