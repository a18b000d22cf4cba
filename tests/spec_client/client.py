"""A protocol client written from PROTOCOL.md alone: one DEALER, msgpack headers, binary frames.

Only pyzmq and msgpack. One I/O thread owns the socket (ZeroMQ sockets are not thread-safe): it
receives, stamps arrival times, answers the daemon's pings, sends pings when the client has been quiet
for heartbeat_ms (§4), and sends what the caller queues. Every received message goes through
:class:`Conformance`.
"""

from __future__ import annotations

import itertools
import json
import queue
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import msgpack
import zmq

from tests.spec_client.spec import Conformance

ENVELOPE_ORDER = ("v", "type", "id", "sid", "ts")


@dataclass
class Msg:
    header: dict[str, Any]
    frames: list[bytes]
    at: float  # time.monotonic() on arrival
    n: int = 0  # arrival order over the whole connection

    @property
    def type(self) -> str:
        return self.header["type"]

    def __getitem__(self, key: str) -> Any:
        return self.header[key]

    def get(self, key: str, default: Any = None) -> Any:
        return self.header.get(key, default)


class SpecError(Exception):
    def __init__(self, msg: Msg) -> None:
        super().__init__(f"{msg.get('code')}: {msg.get('message')}")
        self.msg = msg
        self.code = msg.get("code")


@dataclass
class Inbox:
    """Messages of one session (or of the connection, sid None), in arrival order."""

    items: list[Msg] = field(default_factory=list)
    read: int = 0


class SpecClient:
    def __init__(self, connection_file: Path, *, name: str = "spec-client", heartbeat_ms: int | None = None) -> None:
        info = json.loads(Path(connection_file).read_text(encoding="utf-8"))
        self.endpoint: str = info["endpoint"]
        self.token: str = info["token"]
        self.name = name
        self.conformance = Conformance()
        self.welcome: Msg | None = None
        self.pings_received = 0
        self.pings_sent = 0
        self._heartbeat_override = heartbeat_ms
        self._ids = itertools.count(1)
        self._ctx = zmq.Context()
        self._sock = self._ctx.socket(zmq.DEALER)
        self._sock.setsockopt(zmq.LINGER, 0)
        self._sock.connect(self.endpoint)
        self._wake_tx = self._ctx.socket(zmq.PAIR)
        self._wake_rx = self._ctx.socket(zmq.PAIR)
        addr = f"inproc://spec-wake-{id(self)}"
        self._wake_rx.bind(addr)
        self._wake_tx.connect(addr)
        self._outbox: queue.SimpleQueue[list[bytes]] = queue.SimpleQueue()
        self._cond = threading.Condition()
        self._inboxes: dict[str | None, Inbox] = {}
        self._replies: dict[int, Msg] = {}
        self._last_sent = time.monotonic()
        self._arrivals = 0
        self._stop = False
        self._thread = threading.Thread(target=self._run, name="spec-client-io", daemon=True)
        self._thread.start()

    # -- I/O thread -------------------------------------------------------------------------------
    def _run(self) -> None:
        poller = zmq.Poller()
        poller.register(self._sock, zmq.POLLIN)
        poller.register(self._wake_rx, zmq.POLLIN)
        while not self._stop:
            ready = dict(poller.poll(50))
            if self._wake_rx in ready:
                while self._wake_rx.poll(0):
                    self._wake_rx.recv()
            while True:
                try:
                    parts = self._outbox.get_nowait()
                except queue.Empty:
                    break
                self._sock.send_multipart(parts)
                self._last_sent = time.monotonic()
            if self._sock in ready:
                while self._sock.poll(0):
                    parts = self._sock.recv_multipart()
                    self._on_message(parts, time.monotonic())
            self._heartbeat()
        self._sock.close(0)
        self._wake_rx.close(0)

    def _on_message(self, parts: list[bytes], at: float) -> None:
        try:
            header = msgpack.unpackb(parts[0], raw=False, strict_map_key=False)
        except Exception as exc:  # noqa: BLE001 - any undecodable frame is a violation, not a crash
            self.conformance.violations.append(f"undecodable frame 0: {exc}")
            return
        self.conformance.received(header, parts[1:])
        if not isinstance(header, dict):
            return
        self._arrivals += 1
        msg = Msg(header, parts[1:], at, self._arrivals)
        if msg.type == "ping":
            self.pings_received += 1
            self._send_now(self._encode("pong", {"id": header.get("id")}))
            return
        with self._cond:
            if msg.type in ("ack", "error", "welcome", "pong") and isinstance(header.get("id"), int):
                self._replies[header["id"]] = msg
            else:
                self._inboxes.setdefault(header.get("sid"), Inbox()).items.append(msg)
            self._cond.notify_all()

    def _heartbeat(self) -> None:
        period = self.heartbeat_s
        if self.welcome is not None and time.monotonic() - self._last_sent >= period:
            req_id = next(self._ids) & 0xFFFFFFFF
            header = {"id": req_id}
            self.conformance.sent({"type": "ping", **header})
            self._send_now(self._encode("ping", header))
            self.pings_sent += 1

    def _send_now(self, parts: list[bytes]) -> None:
        self._sock.send_multipart(parts)
        self._last_sent = time.monotonic()

    @property
    def heartbeat_s(self) -> float:
        if self._heartbeat_override is not None:
            return self._heartbeat_override / 1000
        if self.welcome is None:
            return 2.0
        return self.welcome["limits"]["heartbeat_ms"] / 1000

    # -- encoding (§2: envelope keys first; optional fields omitted) -----------------------------------
    def _encode(self, msg_type: str, fields: dict[str, Any], frames: tuple[bytes, ...] = ()) -> list[bytes]:
        header: dict[str, Any] = {"v": self.conformance.major, "type": msg_type}
        for key in ENVELOPE_ORDER[2:]:
            if fields.get(key) is not None:
                header[key] = fields[key]
        header.update({k: v for k, v in fields.items() if k not in ENVELOPE_ORDER and v is not None})
        return [msgpack.packb(header, use_bin_type=True), *frames]

    # -- caller side --------------------------------------------------------------------------------
    def send(self, msg_type: str, frames: tuple[bytes, ...] = (), **fields: Any) -> None:
        fields.setdefault("ts", time.time_ns() // 1000)
        self.conformance.sent({"type": msg_type, **fields})
        self._outbox.put(self._encode(msg_type, fields, frames))
        self._wake_tx.send(b"")

    def request(self, msg_type: str, timeout: float = 15.0, frames: tuple[bytes, ...] = (), **fields: Any) -> Msg:
        req_id = next(self._ids) & 0xFFFFFFFF
        self.send(msg_type, frames, id=req_id, **fields)
        deadline = time.monotonic() + timeout
        with self._cond:
            while req_id not in self._replies:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise TimeoutError(f"no reply to {msg_type} #{req_id} within {timeout} s")
                self._cond.wait(remaining)
            return self._replies.pop(req_id)

    def call(self, msg_type: str, timeout: float = 15.0, **fields: Any) -> Msg:
        """A request that must succeed."""
        reply = self.request(msg_type, timeout, **fields)
        if reply.type == "error":
            raise SpecError(reply)
        return reply

    def hello(self) -> Msg:
        reply = self.request("hello", protocol=self.protocol_version(), token=self.token, client=self.name)
        if reply.type != "welcome":
            raise SpecError(reply)
        self.welcome = reply
        return reply

    def protocol_version(self) -> str:
        p = self.conformance.schema["protocol"]
        return f"{p['major']}.{p['minor']}"

    def next(self, sid: str | None, pred: Callable[[Msg], bool] = lambda m: True, timeout: float = 15.0) -> Msg:
        """The next unread message of ``sid`` matching ``pred`` (skipping, but keeping, the others)."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                box = self._inboxes.setdefault(sid, Inbox())
                while box.read < len(box.items):
                    msg = box.items[box.read]
                    box.read += 1
                    if pred(msg):
                        return msg
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise TimeoutError(f"nothing matching on {sid} within {timeout} s")
                self._cond.wait(remaining)

    def history(self, sid: str | None) -> list[Msg]:
        with self._cond:
            return list(self._inboxes.get(sid, Inbox()).items)

    def close(self) -> None:
        self._stop = True
        self._wake_tx.send(b"")
        self._thread.join(5)
        self._wake_tx.close(0)
        self._ctx.term()


class Npc:
    """One session as the spec describes it: open, turns, audio in, interrupt, close."""

    def __init__(self, client: SpecClient, character_id: str, **options: Any) -> None:
        self.client = client
        ack = client.call("session_open", timeout=30, character_id=character_id, **options)
        self.sid: str = ack["sid"]
        audio = {"sample_rate": 48000, "channels": 1, "frame_ms": 20, **options.get("audio", {})}
        client.conformance.opened(self.sid, audio)
        self.opened = client.next(self.sid, lambda m: m.type in ("session_opened", "session_closed"), 45)
        if self.opened.type != "session_opened":
            raise RuntimeError(f"session did not open: {[m.header for m in client.history(self.sid)]}")
        self._mic_seq = 0

    def call(self, msg_type: str, timeout: float = 15.0, **fields: Any) -> Msg:
        return self.client.call(msg_type, timeout, sid=self.sid, **fields)

    def text(self, text: str) -> int:
        return self.call("text", text=text)["turn"]

    def send_audio(self, pcm: bytes, rate: int, channels: int = 1) -> None:
        self._mic_seq += 1
        samples = len(pcm) // (2 * channels)
        self.client.send(
            "audio_in", (pcm,), sid=self.sid, seq=self._mic_seq, sample_rate=rate, channels=channels, samples=samples
        )

    def next(self, pred: Callable[[Msg], bool] = lambda m: True, timeout: float = 15.0) -> Msg:
        return self.client.next(self.sid, pred, timeout)

    def collect_turn(self, turn: int, timeout: float = 45.0) -> list[Msg]:
        """Every message of the session up to and including turn_completed of ``turn``."""
        out: list[Msg] = []
        deadline = time.monotonic() + timeout
        while True:
            msg = self.next(timeout=max(0.01, deadline - time.monotonic()))
            out.append(msg)
            if msg.type == "turn_completed" and msg["turn"] == turn:
                return out
            if msg.type == "session_closed":
                raise RuntimeError(f"session closed during turn {turn}: {msg.header}")
