"""A minimal aiortc LiveKit v0 (dual-PC) client for testing the emulator's signalling and bot."""

from __future__ import annotations

import asyncio
import contextlib
import fractions
import json
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import numpy as np
from aiortc import RTCConfiguration, RTCPeerConnection, RTCSessionDescription
from aiortc.mediastreams import MediaStreamError, MediaStreamTrack
from av.audio.frame import AudioFrame
from livekit.protocol import models, rtc


def event_type(message: dict[str, Any]) -> str:
    data = message.get("data")
    if message.get("type") == "server-message" and isinstance(data, dict) and isinstance(data.get("type"), str):
        return data["type"]
    return str(message.get("type"))


def payload(message: dict[str, Any]) -> dict[str, Any]:
    data = message.get("data")
    if message.get("type") == "server-message" and isinstance(data, dict):
        return {k: v for k, v in data.items() if k != "type"}
    if message.get("type") == "server-response" and "event_type" in message:
        return message
    return data if isinstance(data, dict) else {}


class PcmSource(MediaStreamTrack):
    """Plays queued 48 kHz mono PCM in real time (silence in between), like a microphone."""

    kind = "audio"

    def __init__(self) -> None:
        super().__init__()
        self._queue: list[np.ndarray] = []
        self._buffer = np.zeros(0, dtype=np.int16)
        self._pts = 0
        self._start: float | None = None

    def say(self, pcm: np.ndarray) -> None:
        self._buffer = np.concatenate([self._buffer, pcm.astype(np.int16)])

    async def recv(self) -> AudioFrame:
        if self.readyState != "live":
            raise MediaStreamError
        if self._start is None:
            self._start = time.monotonic()
        target = self._start + self._pts / 48000
        delay = target - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)
        chunk = self._buffer[:960]
        self._buffer = self._buffer[960:]
        if len(chunk) < 960:
            chunk = np.concatenate([chunk, np.zeros(960 - len(chunk), np.int16)])
        frame = AudioFrame.from_ndarray(chunk.reshape(1, -1), format="s16", layout="mono")
        frame.sample_rate = 48000
        frame.pts = self._pts
        frame.time_base = fractions.Fraction(1, 48000)
        self._pts += 960
        return frame


@dataclass
class Received:
    t: float
    message: dict[str, Any]
    sender: str


@dataclass
class LkClient:
    url: str  # ws://host:port
    token: str
    signals: list[rtc.SignalResponse] = field(default_factory=list)
    messages: list[Received] = field(default_factory=list)
    audio: list[tuple[float, np.ndarray]] = field(default_factory=list)
    track_owner: str = ""
    join: rtc.JoinResponse | None = None
    t0: float = field(default_factory=time.monotonic)

    async def connect(self, timeout: float = 10.0, publish_data: bool = True) -> None:
        self._session = aiohttp.ClientSession()
        self.ws = await self._session.ws_connect(
            f"{self.url}/rtc?access_token={self.token}&auto_subscribe=1&protocol=16&sdk=python",
            headers={"Authorization": f"Bearer {self.token}"})
        self.pub = RTCPeerConnection(RTCConfiguration(iceServers=[]))
        self.sub = RTCPeerConnection(RTCConfiguration(iceServers=[]))
        self.reliable = self.pub.createDataChannel("_reliable", ordered=True)
        self.pub.createDataChannel("_lossy", ordered=False, maxRetransmits=0)
        self._published = asyncio.get_running_loop().create_future()
        self._answers: dict[int, asyncio.Future[rtc.SessionDescription]] = {}

        @self.sub.on("datachannel")
        def _dc(channel: Any) -> None:
            channel.on("message", self._on_data)

        @self.sub.on("track")
        def _track(track: MediaStreamTrack) -> None:
            self.track_owner = track.id
            self._tasks.append(asyncio.ensure_future(self._read_audio(track)))

        self._tasks: list[asyncio.Task[Any]] = [asyncio.ensure_future(self._read_signals())]
        await self.wait_for(lambda: self.join is not None, timeout, "join")
        if publish_data:
            await self._negotiate_publisher()
        await self.wait_for(lambda: self.reliable.readyState == "open" or not publish_data, timeout, "pub data")

    def elapsed(self) -> float:
        return time.monotonic() - self.t0

    async def _read_signals(self) -> None:
        async for msg in self.ws:
            if msg.type != aiohttp.WSMsgType.BINARY:
                continue
            response = rtc.SignalResponse.FromString(msg.data)
            self.signals.append(response)
            kind = response.WhichOneof("message")
            if kind == "join":
                self.join = response.join
            elif kind == "offer":
                await self.sub.setRemoteDescription(RTCSessionDescription(response.offer.sdp, "offer"))
                await self.sub.setLocalDescription(await self.sub.createAnswer())
                await self.send(rtc.SignalRequest(answer=rtc.SessionDescription(
                    type="answer", sdp=self.sub.localDescription.sdp, id=response.offer.id)))
            elif kind == "answer":
                future = self._answers.pop(response.answer.id, None)
                if future is not None and not future.done():
                    future.set_result(response.answer)
            elif kind == "track_published" and not self._published.done():
                self._published.set_result(response.track_published)

    async def send(self, request: rtc.SignalRequest) -> None:
        await self.ws.send_bytes(request.SerializeToString())

    async def _negotiate_publisher(self) -> None:
        offer_id = len(self._answers) + 100 + int(time.monotonic() * 1000) % 1000
        future = asyncio.get_running_loop().create_future()
        self._answers[offer_id] = future
        await self.pub.setLocalDescription(await self.pub.createOffer())
        await self.send(rtc.SignalRequest(offer=rtc.SessionDescription(
            type="offer", sdp=self.pub.localDescription.sdp, id=offer_id)))
        answer = await asyncio.wait_for(future, 10)
        assert answer.id == offer_id
        await self.pub.setRemoteDescription(RTCSessionDescription(answer.sdp, "answer"))

    async def publish_mic(self) -> tuple[PcmSource, rtc.TrackPublishedResponse]:
        source = PcmSource()
        cid = str(uuid.uuid4())
        await self.send(rtc.SignalRequest(add_track=rtc.AddTrackRequest(
            cid=cid, name="microphone", type=models.TrackType.AUDIO, source=models.TrackSource.MICROPHONE)))
        published = await asyncio.wait_for(self._published, 10)
        assert published.cid == cid
        self.pub.addTransceiver(source, direction="sendonly")
        await self._negotiate_publisher()
        return source, published

    def _on_data(self, data: bytes) -> None:
        packet = models.DataPacket.FromString(data)
        if packet.WhichOneof("value") != "user":
            return
        text = packet.user.payload.decode()
        self.messages.append(Received(self.elapsed(), json.loads(text), packet.participant_identity))

    async def _read_audio(self, track: MediaStreamTrack) -> None:
        with contextlib.suppress(MediaStreamError):
            while True:
                frame = await track.recv()
                data = frame.to_ndarray().reshape(-1)
                if len(frame.layout.channels) == 2:
                    data = data[0::2]
                self.audio.append((self.elapsed(), data.astype(np.int16)))

    def send_json(self, message: dict[str, Any]) -> None:
        packet = models.DataPacket(kind=models.DataPacket.Kind.RELIABLE,
                                   user=models.UserPacket(payload=json.dumps(message).encode()))
        self.reliable.send(packet.SerializeToString())

    def types(self) -> list[str]:
        return [event_type(r.message) for r in self.messages]

    def find(self, type_: str) -> list[Received]:
        return [r for r in self.messages if event_type(r.message) == type_]

    async def wait_for(self, predicate: Callable[[], bool], timeout: float, what: str = "") -> None:
        deadline = time.monotonic() + timeout
        while not predicate():
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out waiting for {what}; got {self.types()[-30:]}")
            await asyncio.sleep(0.02)

    async def wait_type(self, type_: str, timeout: float = 10.0, count: int = 1) -> list[Received]:
        await self.wait_for(lambda: len(self.find(type_)) >= count, timeout, type_)
        return self.find(type_)

    async def close(self) -> None:
        with contextlib.suppress(Exception):
            await self.send(rtc.SignalRequest(leave=rtc.LeaveRequest(
                reason=models.DisconnectReason.CLIENT_INITIATED, action=rtc.LeaveRequest.Action.DISCONNECT)))
        for task in self._tasks:
            task.cancel()
        await self.pub.close()
        await self.sub.close()
        await self.ws.close()
        await self._session.close()
