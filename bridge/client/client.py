"""An asyncio client of the local protocol: what the tests, the demo, the chat and the load tester use.

It is a reference for engine client authors too: one DEALER, the handshake, ids on requests,
per-session event queues, heartbeats answered and sent.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np
import zmq
import zmq.asyncio

import bridge
from bridge.config import default_connection_file
from bridge.daemon.connection_file import read_connection_file
from bridge.wire.codec import Codec, Message, now_us
from bridge.wire.errors import ProtocolError

log = logging.getLogger(__name__)


class BridgeError(Exception):
    """An `error` message from the daemon."""

    def __init__(self, msg: Message) -> None:
        self.code: str = msg["code"]
        self.message: str = msg["message"]
        self.retryable: bool = msg["retryable"]
        self.fatal: bool = msg["fatal"]
        self.status: int | None = msg.get("status")
        self.msg = msg
        super().__init__(f"{self.code}: {self.message}")


class BridgeClient:
    def __init__(self, endpoint: str, token: str, *, name: str = "convai-bridge-py", timeout: float = 10.0) -> None:
        self.endpoint = endpoint
        self.token = token
        self.name = name
        self.timeout = timeout
        self.codec = Codec()
        self.ctx = zmq.asyncio.Context.instance()
        self.sock: zmq.asyncio.Socket | None = None
        self.welcome: Message | None = None
        self._ids = itertools.count(1)
        self._pending: dict[int, asyncio.Future[Message]] = {}
        self._sessions: dict[str, NpcSession] = {}
        self._orphans: asyncio.Queue[Message] = asyncio.Queue()
        # Events that beat their session's registration (session_opened can follow the ack in the same
        # batch, before open_session resumes): kept per sid until the session exists.
        self._early: dict[str, list[Message]] = {}
        self._tasks: list[asyncio.Task[None]] = []
        self._last_sent = time.monotonic()
        self.last_received = time.monotonic()

    @classmethod
    async def connect(
        cls,
        endpoint: str | None = None,
        token: str | None = None,
        *,
        connection_file: Path | str | None = None,
        name: str = "convai-bridge-py",
        timeout: float = 10.0,
    ) -> BridgeClient:
        if endpoint is None or token is None:
            info = read_connection_file(Path(connection_file or default_connection_file()))
            endpoint = endpoint or info["endpoint"]
            token = token or info["token"]
        client = cls(endpoint, token, name=name, timeout=timeout)
        await client.open()
        return client

    async def open(self) -> None:
        sock = self.ctx.socket(zmq.DEALER)
        sock.setsockopt(zmq.LINGER, 0)
        sock.setsockopt(zmq.RCVHWM, 100000)
        sock.connect(self.endpoint)
        self.sock = sock
        self._tasks.append(asyncio.get_running_loop().create_task(self._recv_loop()))
        self._tasks.append(asyncio.get_running_loop().create_task(self._heartbeat_loop()))
        self.welcome = await self.request(
            "hello",
            protocol=self.codec.schema.version,
            token=self.token,
            client=self.name,
            client_version=bridge.__version__,
            engine="python",
        )

    async def close(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        if self.sock is not None:
            self.sock.close(linger=0)
            self.sock = None

    async def __aenter__(self) -> BridgeClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    # -- raw I/O ---------------------------------------------------------------------------------
    async def send_raw(self, parts: list[bytes]) -> None:
        assert self.sock is not None
        await self.sock.send_multipart(parts)
        self._last_sent = time.monotonic()

    async def send(self, msg_type: str, fields: dict[str, Any], frames: Iterable[bytes] = ()) -> None:
        await self.send_raw(self.codec.encode(msg_type, {"ts": now_us(), **fields}, tuple(frames)))

    async def request(
        self, msg_type: str, *, frames: Iterable[bytes] = (), timeout: float | None = None, **fields: Any
    ) -> Message:
        req_id = next(self._ids) & 0xFFFFFFFF
        fut: asyncio.Future[Message] = asyncio.get_running_loop().create_future()
        self._pending[req_id] = fut
        try:
            await self.send(msg_type, {"id": req_id, **fields}, frames)
            reply = await asyncio.wait_for(fut, timeout or self.timeout)
        finally:
            self._pending.pop(req_id, None)
        if reply.type == "error":
            raise BridgeError(reply)
        return reply

    async def _recv_loop(self) -> None:
        assert self.sock is not None
        while True:
            parts = await self.sock.recv_multipart()
            self.last_received = time.monotonic()
            received = now_us()
            try:
                msg = self.codec.decode(parts)
                msg.received_us = received
            except ProtocolError as err:
                log.warning("undecodable message from the daemon: %s", err)
                continue
            if msg.type == "ping":
                await self.send("pong", {"id": msg.id})
                continue
            if msg.type in ("ack", "error", "welcome", "pong") and msg.id is not None and msg.id in self._pending:
                fut = self._pending.pop(msg.id)
                if not fut.done():
                    fut.set_result(msg)
                continue
            session = self._sessions.get(msg.sid or "")
            if session is not None:
                session.events.put_nowait(msg)
            elif msg.sid and len(self._early) < 1000:
                self._early.setdefault(msg.sid, []).append(msg)
            else:
                self._orphans.put_nowait(msg)

    async def _heartbeat_loop(self) -> None:
        while True:
            period = 2.0
            if self.welcome is not None:
                period = self.welcome["limits"]["heartbeat_ms"] / 1000
            await asyncio.sleep(period / 2)
            if self.welcome is not None and time.monotonic() - self._last_sent >= period:
                with contextlib.suppress(Exception):
                    await self.send("ping", {"id": next(self._ids) & 0xFFFFFFFF})

    async def next_orphan(self, timeout: float = 5.0) -> Message:
        return await asyncio.wait_for(self._orphans.get(), timeout)

    # -- sessions --------------------------------------------------------------------------------
    async def open_session(self, character_id: str, *, wait_ready: bool = True, **options: Any) -> NpcSession:
        ack = await self.request("session_open", character_id=character_id, **options)
        session = NpcSession(self, ack.sid or "")
        self._sessions[session.sid] = session
        for early in self._early.pop(session.sid, []):
            session.events.put_nowait(early)
        if wait_ready:
            opened = await session.wait_for("session_opened", timeout=options.get("open_timeout", 30.0))
            session.opened = opened
        return session


class NpcSession:
    def __init__(self, client: BridgeClient, sid: str) -> None:
        self.client = client
        self.sid = sid
        self.events: asyncio.Queue[Message] = asyncio.Queue()
        self.opened: Message | None = None
        self._mic_seq = 0

    @property
    def character_session_id(self) -> str | None:
        return self.opened.get("character_session_id") if self.opened else None

    async def request(self, msg_type: str, **fields: Any) -> Message:
        return await self.client.request(msg_type, sid=self.sid, **fields)

    async def text(self, text: str) -> int:
        return (await self.request("text", text=text))["turn"]

    async def trigger(self, name: str, message: str | None = None) -> int:
        return (await self.request("trigger", name=name, message=message))["turn"]

    async def end_of_utterance(self) -> int:
        return (await self.request("end_of_utterance"))["turn"]

    async def interrupt(self) -> Message:
        return await self.request("interrupt")

    async def close(self) -> Message:
        return await self.request("session_close")

    async def send_audio(self, pcm: np.ndarray, sample_rate: int, channels: int = 1) -> None:
        pcm = np.ascontiguousarray(pcm, dtype="<i2")
        samples = pcm.shape[0] if pcm.ndim == 1 else pcm.shape[0]
        if pcm.ndim == 1 and channels > 1:
            samples = pcm.shape[0] // channels
        self._mic_seq += 1
        await self.client.send(
            "audio_in",
            {
                "sid": self.sid,
                "seq": self._mic_seq,
                "sample_rate": sample_rate,
                "channels": channels,
                "samples": samples,
            },
            (pcm.tobytes(),),
        )

    async def stream_audio(self, pcm: np.ndarray, sample_rate: int, frame_ms: int = 20, realtime: bool = True) -> None:
        """Send mono PCM as microphone frames, paced like a real microphone."""
        step = sample_rate * frame_ms // 1000
        start = time.monotonic()
        for i, pos in enumerate(range(0, pcm.shape[0], step)):
            await self.send_audio(pcm[pos : pos + step], sample_rate, 1)
            if realtime:
                delay = start + (i + 1) * frame_ms / 1000 - time.monotonic()
                if delay > 0:
                    await asyncio.sleep(delay)

    async def next_event(self, timeout: float = 10.0) -> Message:
        return await asyncio.wait_for(self.events.get(), timeout)

    async def wait_for(self, *types: str, timeout: float = 10.0) -> Message:
        """Skip events until one of `types` arrives; a fatal error for this session raises."""
        deadline = time.monotonic() + timeout
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError(f"no {'/'.join(types)} within {timeout} s")
            msg = await asyncio.wait_for(self.events.get(), remaining)
            if msg.type in types:
                return msg
            if msg.type == "error" and msg["fatal"] and "error" not in types:
                raise BridgeError(msg)

    async def collect_turn(self, turn: int, timeout: float = 30.0) -> list[Message]:
        """Every event up to and including turn_completed of `turn`."""
        out: list[Message] = []
        deadline = time.monotonic() + timeout
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError(f"turn {turn} did not complete within {timeout} s; got {[m.type for m in out]}")
            msg = await asyncio.wait_for(self.events.get(), remaining)
            out.append(msg)
            if msg.type == "turn_completed" and msg["turn"] == turn:
                return out
            if msg.type == "error" and msg["fatal"]:
                raise BridgeError(msg)
