"""A LiveKit room client on aiortc + aiohttp, carrying Convai's Live API session.

Convai's ``/connect`` returns a LiveKit ``room_url`` and participant ``token``; the character's bot
is another participant in that room. This client speaks just enough of LiveKit's signalling
protocol (protobuf ``SignalRequest``/``SignalResponse`` over a WebSocket) for one conversation:

* **v0, dual peer connection** (``/rtc``, the default): the server offers a *subscriber* PC that
  carries the bot's audio track and the server-created ``_reliable``/``_lossy`` data channels; the
  client offers a *publisher* PC with its own ``_reliable``/``_lossy`` channels and the mic track.
* **v1, single peer connection** (``/rtc/v1``, ``single_pc=True``): one PC that the client always
  offers, with recvonly audio sections the server fills (``mid_to_track_id`` names the tracks).
  The ``join_request`` carries no ``publisher_offer``: the first offer follows the join as a plain
  ``offer`` (as the JS client may do), because the ICE servers are only known from the join.
  A 404 on ``/rtc/v1`` falls back to v0, as the official SDKs do.

RTVI JSON travels as ``DataPacket{user{payload}}`` on ``_reliable`` with no topic, both ways; any
topic is accepted inbound. The mic track is announced with ``add_track`` and added as a *send-only*
transceiver (``addTrack`` would hijack a recvonly section in v1). ICE never uses aiortc's default
public STUN server; loopback candidates are used automatically when the room URL is a loopback
address (see :mod:`bridge.backends.live.ice`).

**Signal resume.** When only the signalling WebSocket is lost (dropped socket, missing pongs, or a
server ``leave`` with action ``RESUME``) while the peer connections are still up, the transport
reconnects the WebSocket as the same participant (``reconnect=1&sid=PA_…``, v1: ``JoinRequest.reconnect``),
expects the server's ``reconnect`` answer and sends ``sync_state``, reporting ``reconnecting`` then
``resumed``; media and data keep flowing meanwhile. aiortc cannot restart ICE, so a failed media
path, or a server offer that restarts ICE (the LiveKit server does so on the subscriber after each
resume), ends the transport as ``failed`` instead, and the owner re-joins (see :mod:`bridge.backends.live.transport`
for the contract). ``room_alive`` tells the owner whether re-joining the same room can work: it is
False after a server ``leave`` (other than resume/reconnect), a refused token or the bot leaving.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import logging
import time
from collections.abc import Awaitable
from typing import Any
from urllib.parse import urlencode, urlsplit, urlunsplit

import aiohttp
import numpy as np
from aiortc import RTCDataChannel, RTCIceServer, RTCPeerConnection, RTCSessionDescription
from aiortc.mediastreams import MediaStreamTrack
from aiortc.rtcconfiguration import RTCBundlePolicy
from aiortc.sdp import candidate_from_sdp
from livekit.protocol import models, rtc

import bridge
from bridge.backends.errors import scrub
from bridge.backends.live import fastaudio
from bridge.backends.live.ice import is_loopback_url, rtc_configuration, select_ice_servers
from bridge.backends.live.media import MicTrack, deliver_frames
from bridge.backends.live.sdpinfo import media_msids
from bridge.backends.live.transport import PC_CLOSE_TIMEOUT_S, TransportBase, TransportError

log = logging.getLogger(__name__)

PROTOCOL_VERSION = 16
RELIABLE_LABEL = "_reliable"
LOSSY_LABEL = "_lossy"
PUBLISHER = rtc.SignalTarget.PUBLISHER
SUBSCRIBER = rtc.SignalTarget.SUBSCRIBER
SIGNAL_RESUME_ATTEMPTS = 3
SIGNAL_RESUME_TIMEOUT_S = 5.0  # per attempt: WebSocket upgrade plus the server's ``reconnect`` answer


def signal_url(room_url: str, path: str) -> str:
    """``http(s)``/``ws(s)`` room URL → WebSocket URL with ``path`` appended (no query)."""
    parts = urlsplit(room_url)
    scheme = {"http": "ws", "https": "wss"}.get(parts.scheme, parts.scheme)
    if scheme not in ("ws", "wss"):
        raise TransportError("rtc_rejected", f"unsupported room URL scheme {parts.scheme!r}", False)
    return urlunsplit((scheme, parts.netloc, parts.path.rstrip("/") + path, "", ""))


def _validate_url(ws_url: str) -> str:
    parts = urlsplit(ws_url)
    scheme = {"ws": "http", "wss": "https"}[parts.scheme]
    return urlunsplit((scheme, parts.netloc, parts.path + "/validate", "", ""))


def parse_candidate_init(candidate_init: str) -> tuple[Any | None, bool]:
    """A trickled ``RTCIceCandidateInit`` JSON → (aiortc candidate or None, end-of-candidates)."""
    init = json.loads(candidate_init)
    line = (init.get("candidate") or "").strip()
    if not line:
        return None, True
    if line.startswith("candidate:"):
        line = line[len("candidate:") :]
    candidate = candidate_from_sdp(line)
    candidate.sdpMid = init.get("sdpMid")
    index = init.get("sdpMLineIndex")
    candidate.sdpMLineIndex = int(index) if index is not None else None
    if candidate.sdpMid is None and candidate.sdpMLineIndex is None:
        candidate.sdpMLineIndex = 0
    return candidate, False


class _Peer:
    """One RTCPeerConnection plus the trickle candidates that arrived before its remote SDP."""

    def __init__(self, name: str, pc: RTCPeerConnection) -> None:
        self.name = name
        self.pc = pc
        self.pending: list[Any] = []
        self.pending_end = False
        self.remote_set = False
        self.connected = asyncio.Event()

    async def add_candidate(self, candidate: Any, end: bool) -> None:
        if not self.remote_set:
            if end:
                self.pending_end = True
            else:
                self.pending.append(candidate)
            return
        if end:
            await self.pc.addIceCandidate(None)
        elif candidate.protocol.lower() == "udp":  # aioice never pairs TCP candidates
            await self.pc.addIceCandidate(candidate)

    async def set_remote(self, sdp: str, kind: str) -> None:
        await self.pc.setRemoteDescription(RTCSessionDescription(sdp=sdp, type=kind))
        self.remote_set = True
        pending, self.pending = self.pending, []
        for candidate in pending:
            await self.add_candidate(candidate, False)
        if self.pending_end:
            self.pending_end = False
            await self.pc.addIceCandidate(None)


class LiveKitTransport(TransportBase):
    """One participant in a LiveKit room talking RTVI to the bot participant.

    ``bot_identity`` restricts bot audio to that participant's tracks (default: any remote audio).
    ``ice_servers`` overrides the servers from the join; ``relay_only`` forces TURN like Convai's
    web SDK; ``loopback`` (default: when the room URL is loopback) offers 127.0.0.1 candidates.
    """

    def __init__(
        self,
        room_url: str,
        token: str,
        *,
        single_pc: bool = False,
        publish_mic: bool = True,
        bot_identity: str | None = None,
        ice_servers: list[RTCIceServer] | None = None,
        relay_only: bool = False,
        prefer_tcp_turn: bool = False,
        loopback: bool | None = None,
        mic_queue_frames: int = 25,
        http: aiohttp.ClientSession | None = None,
    ) -> None:
        super().__init__(loopback=is_loopback_url(room_url) if loopback is None else loopback, secrets=(token,))
        fastaudio.install()
        self._room_url = room_url
        self._token = token
        self._single_pc = single_pc
        self._publish_mic = publish_mic
        self._bot_identity = bot_identity
        self._ice_override = ice_servers
        self._relay_only = relay_only
        self._prefer_tcp_turn = prefer_tcp_turn
        self._http = http
        self._own_http = http is None
        self._mic = MicTrack(self.stats, max_frames=mic_queue_frames)
        self._ws: aiohttp.ClientWebSocketResponse | None = None
        self._join: rtc.JoinResponse | None = None
        self._participants: dict[str, models.ParticipantInfo] = {}
        self._track_owner: dict[str, str] = {}
        self._sub: _Peer | None = None  # v0 only
        self._pub: _Peer | None = None  # the v1 single PC lives here too
        self._reliable: RTCDataChannel | None = None
        self._lossy: RTCDataChannel | None = None
        self._reliable_open = asyncio.Event()
        self._mid_to_track: dict[str, str] = {}
        self._remote_msids: dict[str, tuple[str, str]] = {}
        self._published: dict[str, asyncio.Future[models.TrackInfo]] = {}
        self._answer_waiter: asyncio.Future[None] | None = None
        self._offer_id = 0
        self._negotiate_lock = asyncio.Lock()
        self._send_seq = 0
        self._seen_seq: dict[str, int] = {}
        self._last_pong = 0.0
        self._rtt_ms = 0
        self.protocol_used: str | None = None
        self.token_refreshes = 0
        self.signal_resumes = 0
        self.room_alive = True
        self._published_tracks: dict[str, models.TrackInfo] = {}
        self._sub_channels: list[RTCDataChannel] = []
        self._signal_lost = asyncio.Event()
        self._lost_reason = ""

    # ------------------------------------------------------------------ public API

    @property
    def token(self) -> str:
        """The current participant token (replaced when the server sends ``refresh_token``)."""
        return self._token

    @property
    def identity(self) -> str | None:
        return self._join.participant.identity if self._join else None

    @property
    def participants(self) -> dict[str, str]:
        """Remote participants in the room, SID → identity."""
        return {sid: info.identity for sid, info in self._participants.items()}

    @property
    def mic_queued(self) -> int:
        return self._mic.queued

    async def send_json(self, message: dict[str, Any]) -> None:
        self._check_usable()
        if not self._reliable_open.is_set():
            await self._until(self._reliable_open.wait())
        channel = self._reliable
        if channel is None or channel.readyState != "open":
            raise TransportError("rtc_closed", "the reliable data channel is closed", True)
        self._send_seq += 1
        packet = models.DataPacket(
            kind=models.DataPacket.Kind.RELIABLE,
            participant_identity=self.identity or "",
            user=models.UserPacket(payload=json.dumps(message, separators=(",", ":")).encode()),
            sequence=self._send_seq,
            participant_sid=self._join.participant.sid if self._join else "",
        )
        channel.send(packet.SerializeToString())
        self.stats.json_out += 1

    def send_mic(self, pcm: np.ndarray) -> None:
        self._mic.push(pcm)

    def clear_mic(self) -> None:
        """Drop queued, not yet sent mic frames (e.g. when the user cancels a turn)."""
        self._mic.clear()

    # ------------------------------------------------------------------ connecting

    async def _connect_inner(self) -> None:
        if self._http is None:
            self._http = aiohttp.ClientSession()
        if self._single_pc:
            try:
                await self._open_signal("/rtc/v1", single=True)
                self.protocol_used = "v1"
            except TransportError as exc:
                if exc.code != "rtc_not_found":
                    raise
                log.info("LiveKit server has no /rtc/v1; falling back to dual-PC /rtc")
                self._single_pc = False
        if not self._single_pc:
            await self._open_signal("/rtc", single=False)
            self.protocol_used = "v0"
        join = await self._first_message()
        self._join = join
        for info in join.other_participants:
            self._remember_participant(info)
        self._make_peers(join)
        self._last_pong = time.monotonic()
        self._spawn(self._read_signal(), "signal-reader")
        if join.ping_interval > 0:
            self._spawn(self._ping_loop(join.ping_interval, join.ping_timeout or 3 * join.ping_interval), "ping")
        if self._publish_mic:
            await self._announce_mic()
        assert self._pub is not None
        if self._single_pc:
            self._pub.pc.addTransceiver("audio", direction="recvonly")
        self._open_channels()
        await self._negotiate_publisher()
        waits: list[Awaitable[Any]] = [self._pub.connected.wait(), self._reliable_open.wait()]
        if self._sub is not None and join.subscriber_primary:
            waits.append(self._sub.connected.wait())
        await self._until(asyncio.gather(*waits))

    async def _open_signal(self, path: str, *, single: bool, reconnect_reason: int | None = None) -> None:
        assert self._http is not None
        url = signal_url(self._room_url, path)
        params = {
            "access_token": self._token,
            "auto_subscribe": "1",
            "sdk": "python",
            "version": bridge.__version__,
            "protocol": str(PROTOCOL_VERSION),
            "adaptive_stream": "0",
        }
        if reconnect_reason is not None and self._join is not None:
            params.update(reconnect="1", sid=self._join.participant.sid, reconnect_reason=str(reconnect_reason))
        if single:
            params = {"access_token": self._token, "join_request": self._wrapped_join_request(reconnect_reason)}
        headers = {"Authorization": f"Bearer {self._token}"}
        try:
            self._ws = await self._http.ws_connect(
                url + "?" + urlencode(params), headers=headers, autoping=True, max_msg_size=0
            )
        except aiohttp.WSServerHandshakeError as exc:
            reason = await self._validate_reason(url)
            raise self._handshake_error(exc.status, reason) from None
        except (aiohttp.ClientError, OSError) as exc:
            message = scrub(f"cannot reach the LiveKit server: {type(exc).__name__}: {exc}", self._secrets)
            raise TransportError("rtc_unreachable", message, True) from None

    def _wrapped_join_request(self, reconnect_reason: int | None = None) -> str:
        request = rtc.JoinRequest(
            client_info=models.ClientInfo(
                sdk=models.ClientInfo.SDK.PYTHON, version=bridge.__version__, protocol=PROTOCOL_VERSION
            ),
            connection_settings=rtc.ConnectionSettings(auto_subscribe=True),
        )
        if reconnect_reason is not None and self._join is not None:
            request.reconnect = True
            request.reconnect_reason = reconnect_reason  # type: ignore[assignment]
            request.participant_sid = self._join.participant.sid
        wrapped = rtc.WrappedJoinRequest(
            compression=rtc.WrappedJoinRequest.Compression.NONE, join_request=request.SerializeToString()
        )
        return base64.urlsafe_b64encode(wrapped.SerializeToString()).decode()

    async def _validate_reason(self, ws_url: str) -> str:
        """LiveKit explains a refused upgrade only on ``GET …/validate``; fetch that text."""
        assert self._http is not None
        try:
            async with asyncio.timeout(3):
                async with self._http.get(
                    _validate_url(ws_url), headers={"Authorization": f"Bearer {self._token}"}
                ) as resp:
                    text = (await resp.text(errors="replace")).strip()
        except (aiohttp.ClientError, OSError, TimeoutError):
            return ""
        return scrub(text[:200], self._secrets)

    @staticmethod
    def _handshake_error(status: int, reason: str) -> TransportError:
        detail = f" ({reason})" if reason else ""
        if status in (401, 403):
            return TransportError("rtc_unauthorized", f"LiveKit refused the token: HTTP {status}{detail}", False)
        if status == 404:
            return TransportError("rtc_not_found", f"LiveKit signalling path not found: HTTP 404{detail}", False)
        retryable = status >= 500 or status == 429
        return TransportError("rtc_rejected", f"LiveKit refused the connection: HTTP {status}{detail}", retryable)

    async def _first_message(self) -> rtc.JoinResponse:
        assert self._ws is not None
        msg = await self._ws.receive()
        if msg.type != aiohttp.WSMsgType.BINARY:
            raise TransportError("rtc_protocol_error", f"expected a binary join, got {msg.type.name}", True)
        response = rtc.SignalResponse.FromString(msg.data)
        kind = response.WhichOneof("message")
        if kind == "leave":
            reason = models.DisconnectReason.Name(response.leave.reason)
            raise TransportError("rtc_join_refused", f"the server refused the join ({reason})", True)
        if kind != "join":
            raise TransportError("rtc_protocol_error", f"first signal message was {kind}, not join", True)
        return response.join

    def _make_peers(self, join: rtc.JoinResponse) -> None:
        if self._ice_override is not None:
            servers = list(self._ice_override)
        else:
            servers = select_ice_servers(
                (RTCIceServer(urls=list(s.urls), username=s.username or None, credential=s.credential or None)
                 for s in join.ice_servers),
                prefer_tcp_turn=self._prefer_tcp_turn,
            )
        config = rtc_configuration(servers, relay_only=self._relay_only)
        config.bundlePolicy = RTCBundlePolicy.MAX_BUNDLE
        pub = _Peer("publisher", RTCPeerConnection(config))
        self._pub = pub
        self._watch_pc(pub)
        pub.pc.on("track", self._on_track)
        if not self._single_pc:
            sub = _Peer("subscriber", RTCPeerConnection(rtc_configuration(servers, relay_only=self._relay_only)))
            self._sub = sub
            self._watch_pc(sub)
            sub.pc.on("datachannel", self._on_sub_channel)
            sub.pc.on("track", self._on_track)

    def _open_channels(self) -> None:
        """Create the publisher's data channels; after the transceivers, see MAX_BUNDLE below.

        aiortc 1.16 with ``MAX_BUNDLE`` stops the shared transport when the SCTP transport was
        created before the first transceiver, so channels come last.
        """
        assert self._pub is not None
        self._reliable = self._pub.pc.createDataChannel(RELIABLE_LABEL, ordered=True)
        self._lossy = self._pub.pc.createDataChannel(LOSSY_LABEL, ordered=False, maxRetransmits=0)
        self._watch_channel(self._reliable)
        self._watch_channel(self._lossy)

        @self._reliable.on("open")
        def _on_open() -> None:
            self._reliable_open.set()

    def _watch_pc(self, peer: _Peer) -> None:
        @peer.pc.on("connectionstatechange")
        def _changed() -> None:
            state = peer.pc.connectionState
            log.debug("%s pc %s", peer.name, state)
            if state == "connected":
                peer.connected.set()
            elif state == "failed":
                self._die("failed", f"ICE/DTLS failed on the {peer.name} connection")
            elif state == "closed" and not self._closing:
                self._die("disconnected", f"the {peer.name} connection closed")

    def _on_sub_channel(self, channel: RTCDataChannel) -> None:
        self._sub_channels.append(channel)
        self._watch_channel(channel)

    def _watch_channel(self, channel: RTCDataChannel) -> None:
        if channel.label not in (RELIABLE_LABEL, LOSSY_LABEL):
            return  # e.g. the real server's "_data_track": not DataPackets

        @channel.on("message")
        def _message(data: bytes | str) -> None:
            self._on_data(data)

    async def _announce_mic(self) -> None:
        loop = asyncio.get_running_loop()
        cid = self._mic.id
        waiter: asyncio.Future[models.TrackInfo] = loop.create_future()
        self._published[cid] = waiter
        await self._send(
            rtc.SignalRequest(
                add_track=rtc.AddTrackRequest(
                    cid=cid,
                    name="microphone",
                    type=models.TrackType.AUDIO,
                    source=models.TrackSource.MICROPHONE,
                    disable_dtx=True,
                    disable_red=True,
                )
            )
        )
        info = await self._until(waiter)
        self._published_tracks[cid] = info
        log.debug("mic published as %s", info.sid)
        assert self._pub is not None
        self._pub.pc.addTransceiver(self._mic, direction="sendonly")

    async def _negotiate_publisher(self) -> None:
        assert self._pub is not None
        async with self._negotiate_lock:
            pc = self._pub.pc
            await pc.setLocalDescription(await pc.createOffer())
            self._offer_id += 1
            self._answer_waiter = asyncio.get_running_loop().create_future()
            await self._send(
                rtc.SignalRequest(
                    offer=rtc.SessionDescription(type="offer", sdp=pc.localDescription.sdp, id=self._offer_id)
                )
            )
            await self._until(self._answer_waiter)

    # ------------------------------------------------------------------ signalling loop

    async def _read_signal(self) -> None:
        """Read signalling until the session ends; a lost socket is resumed in place when possible."""
        while True:
            reason, why = await self._read_socket()
            if self._closing:
                return
            if not await self._resume_signal(reason, why):
                self._die("disconnected", reason)
                return

    async def _read_socket(self) -> tuple[str, int]:
        """Handle one WebSocket's messages until it ends or is given up; returns why (text, ReconnectReason)."""
        ws = self._ws
        assert ws is not None
        self._signal_lost.clear()
        reader = asyncio.ensure_future(self._read_messages(ws))
        lost = asyncio.ensure_future(self._signal_lost.wait())
        try:
            await asyncio.wait({reader, lost}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in (reader, lost):
                if not task.done():
                    task.cancel()
                    with contextlib.suppress(asyncio.CancelledError):
                        await task
        if self._signal_lost.is_set() or reader.cancelled():
            return self._lost_reason, models.ReconnectReason.RR_SIGNAL_DISCONNECTED
        return reader.result(), models.ReconnectReason.RR_SIGNAL_DISCONNECTED

    async def _read_messages(self, ws: aiohttp.ClientWebSocketResponse) -> str:
        try:
            async for msg in ws:
                if msg.type == aiohttp.WSMsgType.BINARY:
                    await self._handle(rtc.SignalResponse.FromString(msg.data))
                elif msg.type == aiohttp.WSMsgType.TEXT:
                    log.debug("ignoring a text signal frame")
                elif msg.type == aiohttp.WSMsgType.ERROR:
                    return f"signalling error: {ws.exception()}"
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            log.warning("LiveKit signalling failed: %s", scrub(str(exc), self._secrets), exc_info=True)
            return scrub(f"signalling failed: {type(exc).__name__}: {exc}", self._secrets)
        return "the signalling connection closed"

    def _peers_up(self) -> bool:
        peers = [p for p in (self._pub, self._sub) if p is not None]
        return bool(peers) and all(p.pc.connectionState == "connected" for p in peers)

    async def _resume_signal(self, reason: str, why: int) -> bool:
        """Reconnect the signalling socket as the same participant; False when that cannot work.

        Media and data channels ride on the peer connections, which stay as they are; the server
        learns the client's state again from ``sync_state`` (as LiveKit's SDKs send it on resume).
        """
        if self._join is None or not self.room_alive or not self._peers_up():
            return False
        self._call_state("reconnecting", reason)
        old = self._ws
        if old is not None and not old.closed:
            with contextlib.suppress(Exception):
                async with asyncio.timeout(1):
                    await old.close()
        path = "/rtc/v1" if self._single_pc else "/rtc"
        for attempt in range(SIGNAL_RESUME_ATTEMPTS):
            if self._closing or not self._peers_up():
                return False
            if attempt:
                await asyncio.sleep(min(2.0, 0.3 * 2**attempt))
            try:
                async with asyncio.timeout(SIGNAL_RESUME_TIMEOUT_S):
                    await self._open_signal(path, single=self._single_pc, reconnect_reason=why)
                    accepted = await self._first_resume_message()
            except TimeoutError:
                log.info("signal resume attempt %d timed out", attempt + 1)
                continue
            except TransportError as exc:
                log.info("signal resume attempt %d failed: %s", attempt + 1, exc.message)
                if not exc.retryable:
                    return False
                continue
            if not accepted or not self._peers_up():
                return False
            await self._send(rtc.SignalRequest(sync_state=self._sync_state()))
            self._last_pong = time.monotonic()
            self.signal_resumes += 1
            log.info("LiveKit signalling resumed (attempt %d)", attempt + 1)
            self._call_state("resumed", None)
            return True
        return False

    async def _first_resume_message(self) -> bool:
        """The server's first answer on a resumed socket: ``reconnect`` (or any ordinary message) = ok."""
        assert self._ws is not None
        msg = await self._ws.receive()
        if msg.type != aiohttp.WSMsgType.BINARY:
            raise TransportError("rtc_protocol_error", f"resume answered with {msg.type.name}", True)
        response = rtc.SignalResponse.FromString(msg.data)
        kind = response.WhichOneof("message")
        if kind == "reconnect":
            return True
        if kind in ("leave", "join"):  # the server forgot this participant: a resume cannot work
            log.info("LiveKit refused the signal resume (%s)", kind)
            self.room_alive = kind == "join" or response.leave.action == rtc.LeaveRequest.Action.RECONNECT
            return False
        await self._handle(response)  # older servers just carry on
        return True

    def _sync_state(self) -> rtc.SyncState:
        """What the server needs to pick this participant up again after a resume.

        The SDP pair is the subscriber's (server offer, our answer) in dual-PC mode and the
        publisher's (our offer, server answer) in single-PC mode; auto-subscribe is on, so the
        subscription lists the exceptions (none). ``datachannel_receive_states`` tells the server
        the last reliable sequence seen per sender, so nothing is delivered twice.
        """
        state = rtc.SyncState(
            subscription=rtc.UpdateSubscription(track_sids=[], subscribe=False),
            publish_tracks=[rtc.TrackPublishedResponse(cid=cid, track=info)
                            for cid, info in self._published_tracks.items()],
            datachannel_receive_states=[rtc.DataChannelReceiveState(publisher_sid=sid, last_seq=seq)
                                        for sid, seq in self._seen_seq.items()],
        )
        primary = self._sub if self._sub is not None else self._pub
        if primary is not None:
            ours, theirs = primary.pc.localDescription, primary.pc.remoteDescription
            # dual PC: the server offered the subscriber; single PC: we offered the publisher
            answer, offer = (ours, theirs) if primary is self._sub else (theirs, ours)
            if answer is not None:
                state.answer.CopyFrom(rtc.SessionDescription(type="answer", sdp=answer.sdp))
            if offer is not None:
                state.offer.CopyFrom(rtc.SessionDescription(type="offer", sdp=offer.sdp))
        for channel, target in [(self._reliable, PUBLISHER), (self._lossy, PUBLISHER)] + [
            (c, SUBSCRIBER) for c in self._sub_channels
        ]:
            if channel is not None and channel.id is not None:
                state.data_channels.append(rtc.DataChannelInfo(label=channel.label, id=channel.id, target=target))
        return state

    def _lose_signal(self, reason: str) -> None:
        """Give up on the current socket (it looks dead): the reader resumes on a new one."""
        self._lost_reason = reason
        self._signal_lost.set()

    async def _handle(self, response: rtc.SignalResponse) -> None:
        kind = response.WhichOneof("message")
        if kind == "offer":
            await self._on_offer(response.offer)
        elif kind == "answer":
            await self._on_answer(response.answer)
        elif kind == "trickle":
            await self._on_trickle(response.trickle)
        elif kind == "pong_resp":
            self._last_pong = time.monotonic()
            self._rtt_ms = max(0, int(time.time() * 1000) - response.pong_resp.last_ping_timestamp)
        elif kind == "pong":
            self._last_pong = time.monotonic()
        elif kind == "update":
            for info in response.update.participants:
                self._remember_participant(info)
        elif kind == "track_published":
            waiter = self._published.pop(response.track_published.cid, None)
            if waiter is not None and not waiter.done():
                waiter.set_result(response.track_published.track)
        elif kind == "refresh_token":
            if response.refresh_token not in self._secrets:
                self._secrets = (*self._secrets, response.refresh_token)
            self._token = response.refresh_token
            self.token_refreshes += 1
        elif kind == "leave":
            leave = response.leave
            reason = models.DisconnectReason.Name(leave.reason)
            action = rtc.LeaveRequest.Action.Name(leave.action)
            if leave.action == rtc.LeaveRequest.Action.RESUME:
                self._lose_signal(f"the server asked to resume ({reason})")
                return
            self.room_alive = leave.action == rtc.LeaveRequest.Action.RECONNECT
            self._die("disconnected", f"the server ended the session ({reason}, {action})")
        elif kind == "media_sections_requirement" and self._single_pc:
            assert self._pub is not None
            for _ in range(response.media_sections_requirement.num_audios):
                self._pub.pc.addTransceiver("audio", direction="recvonly")
            self._spawn(self._negotiate_publisher(), "renegotiate")
        else:
            log.debug("ignoring LiveKit %s", kind)

    async def _on_offer(self, offer: rtc.SessionDescription) -> None:
        if self._sub is None:
            log.debug("ignoring a server offer in single-PC mode")
            return
        pc = self._sub.pc
        current = pc.remoteDescription
        if current is not None and _ice_ufrags(offer.sdp) - _ice_ufrags(current.sdp):
            # LiveKit restarts ICE on the subscriber after every resume; aiortc cannot follow (the
            # old pair would go silent), so the media path counts as failed and the owner re-joins.
            self._die("failed", "the server restarted ICE on the subscriber connection (aiortc cannot)")
            return
        self._remote_msids.update(media_msids(offer.sdp))
        await self._sub.set_remote(offer.sdp, "offer")
        await pc.setLocalDescription(await pc.createAnswer())
        await self._send(
            rtc.SignalRequest(answer=rtc.SessionDescription(type="answer", sdp=pc.localDescription.sdp, id=offer.id))
        )

    async def _on_answer(self, answer: rtc.SessionDescription) -> None:
        assert self._pub is not None
        self._mid_to_track.update(answer.mid_to_track_id)
        self._remote_msids.update(media_msids(answer.sdp))
        await self._pub.set_remote(answer.sdp, "answer")
        if self._answer_waiter is not None and not self._answer_waiter.done():
            self._answer_waiter.set_result(None)

    async def _on_trickle(self, trickle: rtc.TrickleRequest) -> None:
        try:
            candidate, end = parse_candidate_init(trickle.candidateInit)
        except (ValueError, AssertionError, KeyError, IndexError):
            log.debug("ignoring a malformed trickle candidate")
            return
        end = end or trickle.final
        peer = self._sub if trickle.target == SUBSCRIBER and self._sub is not None else self._pub
        if peer is not None and (candidate is not None or end):
            await peer.add_candidate(candidate, end)

    async def _ping_loop(self, interval: int, timeout: int) -> None:
        while True:
            await asyncio.sleep(min(interval, timeout / 2))
            if self._signal_lost.is_set():
                continue  # the reader is resuming the socket
            if time.monotonic() - self._last_pong > timeout:
                self._lose_signal(f"no pong from the LiveKit server for {timeout} s")
                continue
            with contextlib.suppress(ConnectionError, RuntimeError, TransportError):
                await self._send(
                    rtc.SignalRequest(ping_req=rtc.Ping(timestamp=int(time.time() * 1000), rtt=self._rtt_ms))
                )

    # ------------------------------------------------------------------ media and data

    def _remember_participant(self, info: models.ParticipantInfo) -> None:
        if info.sid == (self._join.participant.sid if self._join else None):
            return
        if info.state == models.ParticipantInfo.State.DISCONNECTED:
            gone = self._participants.pop(info.sid, None)
            bot_left = info.identity == self._bot_identity if self._bot_identity else not self._participants
            if gone is not None and bot_left and self._state == "connected":
                # Convai's character is a participant: without it the session is over.
                self.room_alive = False
                self._die("disconnected", f"the bot left the room ({info.identity})")
            return
        self._participants[info.sid] = info
        for track in info.tracks:
            self._track_owner[track.sid] = info.sid

    def _owner_of(self, track: MediaStreamTrack, mid: str | None) -> str | None:
        """Identity of the participant publishing a remote track (msid ``PA_x|TR_y`` or v1 map)."""
        track_sid = self._mid_to_track.get(mid or "") if self._single_pc else None
        participant_sid = None
        if mid is not None and mid in self._remote_msids:
            stream, msid_track = self._remote_msids[mid]
            participant_sid, _, packed_track = stream.partition("|")
            track_sid = track_sid or packed_track or msid_track
        participant_sid = self._track_owner.get(track_sid or "", participant_sid)
        info = self._participants.get(participant_sid or "")
        return info.identity if info else None

    def _on_track(self, track: MediaStreamTrack) -> None:
        mid, receiver = None, None
        for peer in (self._sub, self._pub):
            if peer is None:
                continue
            for transceiver in peer.pc.getTransceivers():
                if transceiver.receiver.track is track:
                    mid, receiver = transceiver.mid, transceiver.receiver
        owner = self._owner_of(track, mid)
        wanted = track.kind == "audio" and (self._bot_identity is None or owner == self._bot_identity)
        log.debug("remote %s track mid=%s owner=%s wanted=%s", track.kind, mid, owner, wanted)
        deliver = self._emit_audio if wanted else _discard_audio
        reader = deliver_frames(receiver, track, deliver, f"{owner}/{mid}")
        if reader is not None:  # every remote track must be drained, wanted or not
            self._spawn(reader, f"track-{mid}")

    def _on_data(self, data: bytes | str) -> None:
        if isinstance(data, str):
            data = data.encode()
        try:
            packet = models.DataPacket.FromString(data)
        except Exception:
            self.stats.json_bad += 1
            return
        if packet.WhichOneof("value") != "user":
            return
        user = packet.user
        sid = packet.participant_sid or user.participant_sid
        if packet.sequence > 0 and sid:
            if packet.sequence <= self._seen_seq.get(sid, 0):
                return
            self._seen_seq[sid] = packet.sequence
        sender = packet.participant_identity or user.participant_identity
        if not sender and sid in self._participants:
            sender = self._participants[sid].identity
        try:
            message = json.loads(user.payload)
        except ValueError:
            self.stats.json_bad += 1
            return
        if not isinstance(message, dict):
            self.stats.json_bad += 1
            return
        self._emit_json(message, sender)

    # ------------------------------------------------------------------ plumbing

    async def _send(self, request: rtc.SignalRequest) -> None:
        ws = self._ws
        if ws is None or ws.closed:
            raise TransportError("rtc_closed", "the signalling connection is closed", True)
        await ws.send_bytes(request.SerializeToString())

    async def _shutdown(self, *, goodbye: bool) -> None:
        ws = self._ws
        if goodbye and ws is not None and not ws.closed:
            leave = rtc.LeaveRequest(
                can_reconnect=False,
                reason=models.DisconnectReason.CLIENT_INITIATED,
                action=rtc.LeaveRequest.Action.DISCONNECT,
            )
            with contextlib.suppress(Exception):
                async with asyncio.timeout(1):
                    await ws.send_bytes(rtc.SignalRequest(leave=leave).SerializeToString())
        self._mic.stop()
        await self._cancel_tasks()
        for peer in (self._pub, self._sub):
            if peer is not None:
                with contextlib.suppress(Exception):
                    async with asyncio.timeout(PC_CLOSE_TIMEOUT_S):
                        await peer.pc.close()
        if ws is not None:
            with contextlib.suppress(Exception):
                await ws.close()
        if self._own_http and self._http is not None:
            await self._http.close()
            self._http = None


def _discard_audio(pcm: np.ndarray, sample_rate: int, channels: int) -> None:
    return None


def _ice_ufrags(sdp: str) -> set[str]:
    """The ``a=ice-ufrag`` values of an SDP: new ones in a re-offer mean an ICE restart."""
    return {line.strip()[len("a=ice-ufrag:") :] for line in sdp.splitlines() if line.strip().startswith("a=ice-ufrag:")}

