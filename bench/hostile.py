"""Hostile engine clients: seeded mutations of every client message, sent while a good client talks.

Used by the fuzz test (bounded, in CI) and by the soak benchmark. A run reports what a hostile or
buggy client could provoke: `internal` errors, requests left unanswered, messages about sessions the
receiver does not own, and turns the well-behaved client lost.
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import logging
import random
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import msgpack
import zmq
import zmq.asyncio

from bridge.wire.codec import pack
from bridge.wire.schema import load_schema

CHARACTER = "c0ffee00-0000-4000-8000-000000000001"
# client messages the daemon may legitimately leave unanswered: pong and the streams (audio_in, audio_reference)
NO_REPLY = ("pong", *(name for name, spec in load_schema().messages.items() if spec.kind == "stream"))
ODD_VALUES: list[Any] = [
    None, True, False, 0, -1, 1, 7, 2**31, 2**32, 2**63 - 1, -(2**63), 1.5, float("nan"), float("inf"),
    "", "x", "x" * 3000, "\u0000\ud7ff", "s-000000000000", [], [1, "a", None], [[[[[]]]]], {}, {"a": 1},
    {"name": 3}, b"\x00\x01", {"sample_rate": 7, "channels": 9, "frame_ms": 0},
]  # fmt: skip


def _deep(n: int) -> Any:
    value: Any = "leaf"
    for _ in range(n):
        value = {"k": [value]}
    return value


@dataclass
class FuzzReport:
    sent: int = 0
    replies: int = 0
    internal_errors: int = 0
    unanswered: int = 0
    foreign: int = 0  # messages naming a session the receiver does not own
    good_turns: int = 0
    good_failures: int = 0
    codes: dict[str, int] = field(default_factory=dict)
    samples: list[str] = field(default_factory=list)
    progress: asyncio.Event = field(default_factory=asyncio.Event)  # set on every reply and good turn


async def _until(done: Callable[[], bool], progress: asyncio.Event, timeout: float) -> None:
    """Wait (at most `timeout`) until `done()`, re-checking whenever something arrives."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not done() and (left := deadline - loop.time()) > 0:
        progress.clear()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(progress.wait(), min(left, 0.5))


class Mutator:
    """Seeded: the same seed gives the same messages."""

    def __init__(self, seed: int, allow_live: bool = False) -> None:
        self.rng = random.Random(seed)
        self.schema = load_schema()
        self.allow_live = allow_live
        self.client_types = [n for n, s in self.schema.messages.items() if s.direction in ("client", "both")]
        self.daemon_types = [n for n, s in self.schema.messages.items() if s.direction == "daemon"]

    def message(self, req_id: int, own: list[str], foreign: list[str], token: str) -> tuple[list[bytes], bool]:
        """One mutated message and whether it carries `req_id` as a well-formed request id."""
        rng = self.rng
        roll = rng.random()
        if roll < 0.04:
            return [rng.choice([b"", b"\xc1", b"\x93\x01\x02", msgpack.packb([1, 2]), rng.randbytes(40)])], False
        name = rng.choice(self.daemon_types if roll < 0.08 else self.client_types)
        spec = self.schema.messages[name]
        header: dict[Any, Any] = copy.deepcopy(spec.example or {"v": 1, "type": name})
        frames = [bytes.fromhex(h) for h in spec.example_frames]
        header["id"] = req_id
        if "sid" in header or spec.sid != "none":
            pool = own + foreign + ["s-" + rng.randbytes(6).hex()]
            header["sid"] = rng.choice(pool) if pool else "s-nothing"
        if name == "hello":
            header["token"] = token if rng.random() < 0.5 else rng.choice(["", "x", token[:-1]])
        for _ in range(rng.choice([0, 1, 1, 2, 3])):
            self._mutate(header, frames)
        if header.get("type") == "session_open" and not self.allow_live:
            if header.get("backend") in (None, "live"):  # odd values stay: they must be refused
                header["backend"] = rng.choice(["stream", "interaction"])
            header.setdefault("character_id", CHARACTER)
        well_formed = header.get("id") == req_id and header.get("type") not in NO_REPLY
        try:
            head = msgpack.packb(header, use_bin_type=True)
        except (TypeError, ValueError, OverflowError):
            return [pack({"v": 1, "type": "ping", "id": req_id})], True
        return [head, *frames], well_formed

    def _mutate(self, header: dict[Any, Any], frames: list[bytes]) -> None:
        rng = self.rng
        kind = rng.randrange(9)
        keys = list(header)
        if kind == 0 and keys:  # drop a field
            header.pop(rng.choice(keys), None)
        elif kind == 1 and keys:  # a field gets an odd value
            header[rng.choice(keys)] = copy.deepcopy(rng.choice(ODD_VALUES))
        elif kind == 2:  # nested odd values
            for value in header.values():
                if isinstance(value, dict) and value:
                    value[rng.choice(list(value))] = copy.deepcopy(rng.choice(ODD_VALUES))
                    break
        elif kind == 3:  # unknown or extra fields
            header[rng.choice(["extra", "zz", "limits", "frames", "audio"])] = copy.deepcopy(rng.choice(ODD_VALUES))
        elif kind == 4:  # the envelope
            header[rng.choice(["v", "type", "id", "sid", "ts"])] = copy.deepcopy(rng.choice(ODD_VALUES))
        elif kind == 5:  # frame count
            if frames and rng.random() < 0.5:
                frames.pop()
            else:
                frames.append(rng.randbytes(rng.choice([0, 1, 2, 960, 4000])))
        elif kind == 6 and frames:  # frame length
            frames[0] = frames[0][: rng.randrange(len(frames[0]) + 1)] + rng.randbytes(rng.choice([0, 1, 3]))
        elif kind == 7:  # deep nesting
            header[rng.choice(keys or ["x"])] = _deep(rng.choice([3, 17, 40]))
        else:  # numbers at the edges
            for key in ("samples", "sample_rate", "channels", "seq", "scale", "offset", "id"):
                if key in header:
                    header[key] = rng.choice([0, -1, 2**31, 2**40, 1.5, True])
                    break


class _Peer:
    def __init__(self, ctx: zmq.asyncio.Context, endpoint: str) -> None:
        self.sock = ctx.socket(zmq.DEALER)
        self.sock.setsockopt(zmq.LINGER, 0)
        self.sock.setsockopt(zmq.RCVHWM, 100000)
        self.sock.connect(endpoint)
        self.own: set[str] = set()
        self.open_ids: set[int] = set()
        self.waiting: set[int] = set()
        self.seen_sids: list[str] = []

    def close(self) -> None:
        self.sock.close(0)


class _ErrorLogs(logging.Handler):
    """Counts tracebacks logged by the daemon (in-process runs)."""

    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.count = 0
        self.samples: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        if record.exc_info and record.name.startswith("bridge"):
            self.count += 1
            if len(self.samples) < 5:
                self.samples.append(f"{record.getMessage()}: {record.exc_info[1]!r}")


async def _good_client(endpoint: str, token: str, stop: asyncio.Event, report: FuzzReport) -> None:
    from bridge.client import BridgeClient, BridgeError

    client = await BridgeClient.connect(endpoint, token, timeout=30)
    try:
        npc = await client.open_session(CHARACTER, backend="stream")
        while not stop.is_set():
            try:
                ack = await client.request("text", sid=npc.sid, text="hello there", timeout=30)
                while True:
                    event = await asyncio.wait_for(npc.events.get(), 30)
                    if event.type == "error":
                        raise BridgeError(event)
                    if event.type == "turn_completed" and event.get("turn") == ack.get("turn"):
                        break
                report.good_turns += 1
                report.progress.set()
            except (BridgeError, TimeoutError) as exc:
                report.good_failures += 1
                report.samples.append(f"good client: {exc!r}")
        with contextlib.suppress(asyncio.QueueEmpty):
            while True:
                orphan = client._orphans.get_nowait()
                if orphan.sid and orphan.sid != npc.sid:
                    report.foreign += 1
    finally:
        await client.close()


async def run_fuzz(
    endpoint: str,
    token: str,
    messages: int,
    *,
    seed: int = 1,
    fuzzers: int = 3,
    allow_live: bool = False,
    settle_s: float = 30.0,
) -> FuzzReport:
    """Send `messages` mutated messages from `fuzzers` DEALERs; bounded by the message count and `settle_s`."""
    report = FuzzReport()
    logs = _ErrorLogs()
    logging.getLogger("bridge").addHandler(logs)
    ctx = zmq.asyncio.Context()
    peers = [_Peer(ctx, endpoint) for _ in range(fuzzers)]
    stop = asyncio.Event()
    good = asyncio.create_task(_good_client(endpoint, token, stop, report))
    await _until(lambda: report.good_turns > 0 or good.done(), report.progress, 60)  # talking before the storm

    async def receive(peer: _Peer) -> None:
        while True:
            parts = await peer.sock.recv_multipart()
            try:
                header = msgpack.unpackb(parts[0], raw=False)
            except Exception:
                report.samples.append("undecodable reply")
                continue
            report.replies += 1
            report.progress.set()
            kind, rid, sid = header.get("type"), header.get("id"), header.get("sid")
            if kind == "error":
                code = str(header.get("code"))
                report.codes[code] = report.codes.get(code, 0) + 1
                if code == "internal":
                    report.internal_errors += 1
                    if len(report.samples) < 20:
                        report.samples.append(f"internal: {header.get('message')}")
            if kind == "ping":
                await peer.sock.send_multipart([pack({"v": 1, "type": "pong", "id": rid})])
            if kind == "ack" and rid in peer.open_ids and sid:
                peer.own.add(sid)
            if isinstance(sid, str):
                peer.seen_sids.append(f"{sid} {kind} {rid} {header.get('code', '')}")
            if kind in ("ack", "error", "welcome", "pong"):
                peer.waiting.discard(rid)

    readers = [asyncio.create_task(receive(p)) for p in peers]
    mutators = [Mutator(seed * 1000 + i, allow_live) for i in range(fuzzers)]
    try:
        for peer in peers:  # start authenticated, so most messages get past the handshake
            await peer.sock.send_multipart(
                [pack({"v": 1, "type": "hello", "id": 1, "protocol": "1.1", "token": token, "client": "fuzz"})]
            )
        next_id = 100
        for n in range(messages):
            k = n % fuzzers
            peer, mutator = peers[k], mutators[k]
            foreign = [s for i, p in enumerate(peers) if i != k for s in p.own]
            parts, tracked = mutator.message(next_id, sorted(peer.own), foreign, token)
            if tracked:
                peer.waiting.add(next_id)
            with contextlib.suppress(Exception):
                sent = msgpack.unpackb(parts[0], raw=False)
                if sent.get("type") == "session_open" and isinstance(sent.get("id"), int):
                    peer.open_ids.add(sent["id"])  # whatever id the mutation left: its ack names an own sid
            next_id += 1
            await peer.sock.send_multipart(parts)
            report.sent += 1
            if n % 50 == 49:
                await asyncio.sleep(0.005)  # let replies flow; a flood is a different test
        turns = report.good_turns  # then: every request answered, and the good client still gets a turn through
        await _until(lambda: not any(p.waiting for p in peers) and report.good_turns > turns, report.progress, settle_s)
    finally:
        stop.set()
        with contextlib.suppress(Exception):
            await asyncio.wait_for(good, 60)
        for task in readers:
            task.cancel()
        for peer in peers:
            peer.close()
        ctx.destroy(linger=0)
        logging.getLogger("bridge").removeHandler(logs)
    report.unanswered = sum(len(p.waiting) for p in peers)
    foreign_seen = [seen for p in peers for seen in p.seen_sids if seen.split()[0] not in p.own]
    report.foreign += len(foreign_seen)
    report.samples += [f"foreign: {seen}" for seen in foreign_seen[:5]]
    report.internal_errors += logs.count
    report.samples += logs.samples
    return report
