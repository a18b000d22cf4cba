"""Who is on the other end of the engine socket: one daemon-assigned tag per ZeroMQ connection.

A ROUTER names peers by routing id, and a peer may choose its own: an id says nothing about which
connection a message came from. So every connection passes through a ZAP handler (RFC 27) that
allows it and gives it a fresh `User-Id`, which libzmq attaches to every message that connection
delivers. The daemon binds a client's handshake to that tag, never to the routing id: a new
connection that claims an old routing id starts unauthenticated, with nothing of its predecessor's.

libzmq names a peer that chose no id `0x00` + a 32-bit counter, and aborts the process when a
generated id collides with one a peer chose. The counter starts at libc `rand()`, which nothing
seeds, so every process hands out the same ids (`0x006b8b4567`, then `…68`): seeding `rand()` from
the OS before the ROUTER exists makes them unguessable, so no peer can claim the next one.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import itertools
import logging
import secrets
import sys

import zmq
import zmq.asyncio

log = logging.getLogger(__name__)

ZAP_ENDPOINT = "inproc://zeromq.zap.01"


def seed_generated_ids() -> bool:
    """Seed the libc PRNG libzmq draws a ROUTER's first generated routing id from (best effort)."""
    names = ["ucrtbase", "msvcrt"] if sys.platform == "win32" else [ctypes.util.find_library("c") or ""]
    for name in names:
        try:
            libc = ctypes.CDLL(name or None)
            libc.srand(ctypes.c_uint(secrets.randbits(32)))
            return True
        except (OSError, AttributeError):
            continue
    log.warning("could not seed libc rand(): ZeroMQ's generated routing ids stay predictable")
    return False


def connection_tag(frame: zmq.Frame) -> str | None:
    """The ZAP User-Id of the connection a received frame came from (None: not tagged)."""
    try:
        tag = frame.get("User-Id")
    except zmq.ZMQError:
        return None
    return tag if isinstance(tag, str) and tag else None


class ConnectionTagger:
    """The context's ZAP handler: allows every connection in `domain` and tags it uniquely.

    Tags are never reused within one tagger, so no two connections ever share one.
    """

    def __init__(self, ctx: zmq.asyncio.Context, domain: str) -> None:
        self.domain = domain.encode()
        self.sock = ctx.socket(zmq.REP)
        self.sock.setsockopt(zmq.LINGER, 0)
        self.sock.bind(ZAP_ENDPOINT)
        self._serial = itertools.count(1)
        self.connections = 0

    async def run(self) -> None:
        while True:
            request = await self.sock.recv_multipart()
            reply = self._answer(request)
            await self.sock.send_multipart(reply)

    def _answer(self, request: list[bytes]) -> list[bytes]:
        if len(request) < 6 or request[0] != b"1.0":
            return [b"1.0", request[1] if len(request) > 1 else b"", b"400", b"bad ZAP request", b"", b""]
        request_id, domain = request[1], request[2]
        if domain != self.domain:
            return [b"1.0", request_id, b"400", b"unknown domain", b"", b""]
        self.connections += 1
        tag = f"c{next(self._serial)}"
        return [b"1.0", request_id, b"200", b"OK", tag.encode(), b""]

    def close(self) -> None:
        self.sock.close(linger=0)
