"""Direct SDP offer/answer to a pipecat SmallWebRTC-style bot (no LiveKit in between).

Signalling is one HTTP exchange: ``POST {offer_url}`` with ``{sdp, type: "offer", pc_id,
restart_pc, request_data}`` answers ``{sdp, type: "answer", pc_id}``. Media is one peer connection:
audio transceiver 0 is ``sendrecv`` (mic up, bot voice down) and one client-created ordered data
channel (``"chat"``, as pipecat's JS client names it) carries RTVI JSON as text frames.

Details from pipecat's SmallWebRTC transport (reference: rtvi-smallwebrtc.md §5-8):

* **Trickle ICE.** aiortc gathers every candidate before ``setLocalDescription`` returns, so the
  offer already carries them; ``PATCH {offer_url}`` would have nothing to add and is not used.
* **Signalling messages** share the data channel as ``{"type": "signalling", "message": {...}}``:
  ``peerLeft`` ends the transport (``on_state("disconnected")``); ``renegotiate`` makes the client
  offer again on the same ``pc_id``. They never reach ``on_json``.
* **Keep-alive.** pipecat counts a peer that has pinged once as gone 3 s after its last
  ``"ping: <ms>"`` and then silently parks its messages and stops its audio. Never pinging is
  safe, so the default is no pings; ``keepalive_interval`` (e.g. 1.0, like the JS client) pings for
  the whole session once enabled.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from typing import Any

import aiohttp
import numpy as np
from aiortc import RTCDataChannel, RTCIceServer, RTCPeerConnection, RTCSessionDescription
from aiortc.mediastreams import MediaStreamTrack
from aiortc.rtcconfiguration import RTCBundlePolicy

from bridge.backends.errors import scrub
from bridge.backends.live import fastaudio
from bridge.backends.live.ice import is_loopback_url, rtc_configuration
from bridge.backends.live.media import MicTrack, deliver_frames
from bridge.backends.live.transport import PC_CLOSE_TIMEOUT_S, TransportBase, TransportError

log = logging.getLogger(__name__)

CHANNEL_LABEL = "chat"
BOT_SENDER = "bot"
OFFER_TIMEOUT_S = 15.0


class SmallWebRTCTransport(TransportBase):
    """One peer connection to a SmallWebRTC bot: RTVI on a data channel, audio both ways.

    ``request_data`` is passed to the bot with the first offer (pipecat's ``request_data``);
    ``headers`` go on the offer POST (e.g. an ``Authorization`` for a hosted bot).
    """

    def __init__(
        self,
        offer_url: str,
        *,
        request_data: dict[str, Any] | None = None,
        headers: dict[str, str] | None = None,
        keepalive_interval: float | None = None,
        ice_servers: list[RTCIceServer] | None = None,
        loopback: bool | None = None,
        mic_queue_frames: int = 25,
        http: aiohttp.ClientSession | None = None,
    ) -> None:
        secrets = tuple(v for v in (headers or {}).values() if v)
        super().__init__(loopback=is_loopback_url(offer_url) if loopback is None else loopback, secrets=secrets)
        fastaudio.install()
        self._offer_url = offer_url
        self._request_data = request_data
        self._headers = dict(headers or {})
        self._keepalive = keepalive_interval
        self._ice_servers = list(ice_servers or [])
        self._http = http
        self._own_http = http is None
        self._mic = MicTrack(self.stats, max_frames=mic_queue_frames)
        self._pc: RTCPeerConnection | None = None
        self._channel: RTCDataChannel | None = None
        self._channel_open = asyncio.Event()
        self._connected = asyncio.Event()
        self._negotiate_lock = asyncio.Lock()
        self.pc_id: str | None = None

    # ------------------------------------------------------------------ public API

    async def send_json(self, message: dict[str, Any]) -> None:
        self._check_usable()
        if not self._channel_open.is_set():
            await self._until(self._channel_open.wait())
        channel = self._channel
        if channel is None or channel.readyState != "open":
            raise TransportError("rtc_closed", "the data channel is closed", True)
        channel.send(json.dumps(message, separators=(",", ":")))
        self.stats.json_out += 1

    def send_mic(self, pcm: np.ndarray) -> None:
        self._mic.push(pcm)

    def clear_mic(self) -> None:
        self._mic.clear()

    @property
    def mic_queued(self) -> int:
        return self._mic.queued

    # ------------------------------------------------------------------ connecting

    async def _connect_inner(self) -> None:
        if self._http is None:
            self._http = aiohttp.ClientSession()
        config = rtc_configuration(self._ice_servers)
        config.bundlePolicy = RTCBundlePolicy.MAX_BUNDLE
        pc = self._pc = RTCPeerConnection(config)
        pc.addTransceiver(self._mic, direction="sendrecv")  # index 0: mic up, bot voice down
        # Channels after the transceiver: aiortc's MAX_BUNDLE needs the first transceiver's transport.
        channel = self._channel = pc.createDataChannel(CHANNEL_LABEL, ordered=True)
        channel.on("open", self._channel_open.set)
        channel.on("message", self._on_message)

        @pc.on("track")
        def _track(track: MediaStreamTrack) -> None:
            receiver = next((t.receiver for t in pc.getTransceivers() if t.receiver.track is track), None)
            deliver = self._emit_audio if track.kind == "audio" else _discard_audio
            reader = deliver_frames(receiver, track, deliver, "bot")
            if reader is not None:
                self._spawn(reader, "bot-audio")

        @pc.on("connectionstatechange")
        def _changed() -> None:
            state = pc.connectionState
            log.debug("SmallWebRTC pc %s", state)
            if state == "connected":
                self._connected.set()
            elif state == "failed":
                self._die("failed", "ICE/DTLS failed")
            elif state == "closed" and not self._closing:
                self._die("disconnected", "the peer connection closed")

        await self._negotiate(first=True)
        await self._until(asyncio.gather(self._connected.wait(), self._channel_open.wait()))
        if self._keepalive:
            self._spawn(self._ping_loop(self._keepalive), "keepalive")

    async def _negotiate(self, *, first: bool = False) -> None:
        assert self._pc is not None and self._http is not None
        async with self._negotiate_lock:
            pc = self._pc
            await pc.setLocalDescription(await pc.createOffer())
            body: dict[str, Any] = {
                "sdp": pc.localDescription.sdp,
                "type": "offer",
                "pc_id": self.pc_id,
                "restart_pc": False,
            }
            if first and self._request_data is not None:
                body["request_data"] = self._request_data
            answer = await self._post_offer(body)
            self.pc_id = answer.get("pc_id") or self.pc_id
            await pc.setRemoteDescription(RTCSessionDescription(sdp=answer["sdp"], type="answer"))

    async def _post_offer(self, body: dict[str, Any]) -> dict[str, Any]:
        assert self._http is not None
        try:
            async with asyncio.timeout(OFFER_TIMEOUT_S):
                async with self._http.post(self._offer_url, json=body, headers=self._headers) as resp:
                    text = await resp.text(errors="replace")
                    status = resp.status
        except TimeoutError:
            raise TransportError("rtc_timeout", f"no answer to the offer within {OFFER_TIMEOUT_S:g} s", True) from None
        except (aiohttp.ClientError, OSError) as exc:
            message = scrub(f"cannot reach the bot: {type(exc).__name__}: {exc}", self._secrets)
            raise TransportError("rtc_unreachable", message, True) from None
        if status >= 300:
            detail = _detail(text)
            suffix = f" ({detail})" if detail else ""
            message = scrub(f"the bot refused the offer: HTTP {status}{suffix}", self._secrets)
            if status in (401, 403):
                raise TransportError("rtc_unauthorized", message, False)
            raise TransportError("rtc_rejected", message, status >= 500 or status == 429)
        try:
            answer = json.loads(text)
        except ValueError:
            raise TransportError("rtc_protocol_error", "the offer answer is not JSON", True) from None
        if not isinstance(answer, dict) or not isinstance(answer.get("sdp"), str):
            raise TransportError("rtc_protocol_error", "the offer answer has no sdp", True)
        return answer

    # ------------------------------------------------------------------ data channel

    def _on_message(self, data: bytes | str) -> None:
        if isinstance(data, bytes):
            data = data.decode("utf-8", errors="replace")
        try:
            message = json.loads(data)
        except ValueError:
            self.stats.json_bad += 1
            return
        if not isinstance(message, dict):
            self.stats.json_bad += 1
            return
        if message.get("type") == "signalling":
            self._on_signalling(message.get("message"))
            return
        self._emit_json(message, BOT_SENDER)

    def _on_signalling(self, message: Any) -> None:
        kind = message.get("type") if isinstance(message, dict) else None
        if kind == "peerLeft":
            self._die("disconnected", "the bot left (peerLeft)")
        elif kind == "renegotiate":
            self._spawn(self._negotiate(), "renegotiate")
        else:
            log.debug("ignoring SmallWebRTC signalling %r", kind)

    async def _ping_loop(self, interval: float) -> None:
        while True:
            channel = self._channel
            if channel is not None and channel.readyState == "open":
                channel.send(f"ping: {int(time.time() * 1000)}")
            await asyncio.sleep(interval)

    # ------------------------------------------------------------------ teardown

    async def _shutdown(self, *, goodbye: bool) -> None:
        self._mic.stop()
        await self._cancel_tasks()
        if self._pc is not None:
            with contextlib.suppress(Exception):
                async with asyncio.timeout(PC_CLOSE_TIMEOUT_S):
                    await self._pc.close()
        if self._own_http and self._http is not None:
            await self._http.close()
            self._http = None


def _discard_audio(pcm: np.ndarray, sample_rate: int, channels: int) -> None:
    return None


def _detail(text: str) -> str:
    """FastAPI's ``{"detail": ...}`` text, or the start of the body."""
    try:
        body = json.loads(text)
    except ValueError:
        return text.strip()[:160]
    if isinstance(body, dict) and isinstance(body.get("detail"), str):
        return body["detail"][:160]
    return text.strip()[:160]
