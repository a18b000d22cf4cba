"""Issue 14: a local process without the token can neither take over a client nor crash the daemon.

Every case runs against the real daemon on real sockets: an in-process daemon where the test needs
to look inside (a victim's routing id), a subprocess daemon where an abort must not take pytest down.
"""

from __future__ import annotations

import asyncio
import ctypes
import json
import os
import signal
from collections.abc import AsyncIterator
from pathlib import Path

import msgpack
import pytest
import zmq
import zmq.asyncio
from aiohttp import web

from bridge.backends.errors import error_from_response
from bridge.client import BridgeClient, BridgeError
from bridge.config import Secret
from bridge.daemon.front import Front
from bridge.daemon.router import Daemon
from bridge.wire.codec import pack
from tests.conftest import CHARACTER, daemon_config
from tests.daemon.test_cli import EXE, ROOT, free_port


def unseeded_generated_ids(sockets: int = 6, each: int = 8) -> list[bytes]:
    """The routing ids libzmq hands out when nothing seeds rand(): each ROUTER-like socket (ROUTER,
    REP) starts its counter at `rand() | rand() << 31`, so the n-th such socket starts at the n-th pair."""
    libc = ctypes.CDLL(None)
    libc.srand(1)  # glibc's state before any srand()
    draws = [libc.rand() for _ in range(2 * sockets)]
    libc.srand(int.from_bytes(os.urandom(4), "big"))
    out = []
    for n in range(sockets):
        start = (draws[2 * n] | (draws[2 * n + 1] << 31)) & 0xFFFFFFFF
        out += [b"\x00" + ((start + k) & 0xFFFFFFFF).to_bytes(4, "big") for k in range(each)]
    return out


class Peer:
    """A DEALER that may claim any routing id and sends raw frames."""

    def __init__(self, endpoint: str, routing_id: bytes | None = None) -> None:
        self.sock = zmq.asyncio.Context.instance().socket(zmq.DEALER)
        self.sock.setsockopt(zmq.LINGER, 0)
        self.sock.setsockopt(zmq.RECONNECT_IVL, 20)
        if routing_id is not None:
            self.sock.setsockopt(zmq.ROUTING_ID, routing_id)
        self.sock.connect(endpoint)

    async def send(self, header: dict, *frames: bytes) -> None:
        await self.sock.send_multipart([pack(header), *frames])

    async def recv(self, timeout: float = 10.0) -> dict:
        parts = await asyncio.wait_for(self.sock.recv_multipart(), timeout)
        return msgpack.unpackb(parts[0], raw=False)

    async def recv_type(self, msg_type: str, timeout: float = 10.0) -> dict:
        while True:
            msg = await self.recv(timeout)
            if msg["type"] == msg_type:
                return msg

    async def drain(self, seconds: float) -> list[dict]:
        """Everything that arrives within `seconds`."""
        out: list[dict] = []
        loop = asyncio.get_running_loop()
        deadline = loop.time() + seconds
        while (left := deadline - loop.time()) > 0:
            try:
                out.append(await self.recv(left))
            except TimeoutError:
                break
        return out

    async def hello(self, token: str, **extra: object) -> dict:
        await self.send({"v": 1, "type": "hello", "id": 1, "protocol": "1.1", "token": token, "client": "t", **extra})
        return await self.recv()

    def close(self) -> None:
        self.sock.close(0)


def routing_id_of(daemon: Daemon) -> bytes:
    (client,) = [c for c in daemon.clients.values() if c.route_id is not None]
    assert client.route_id is not None
    return client.route_id


# -- hijack ---------------------------------------------------------------------------------------
async def test_a_peer_claiming_a_departed_clients_routing_id_gets_nothing_of_it(daemon: Daemon) -> None:
    victim = Peer(daemon.endpoint)
    await victim.hello(daemon.token)
    await victim.send({"v": 1, "type": "session_open", "id": 2, "character_id": CHARACTER, "backend": "interaction"})
    sid = (await victim.recv_type("ack"))["sid"]
    await victim.recv_type("session_opened")
    await victim.send({"v": 1, "type": "text", "id": 3, "sid": sid, "text": "My name is Ada. Tell me a long story."})
    await victim.recv_type("audio_out", timeout=20)  # the turn is streaming
    stolen = routing_id_of(daemon)
    victim.close()  # the client reconnects (PROTOCOL.md §4): its id is free to claim
    # Only once the daemon has seen that connection close is the id free: before that, libzmq's ROUTER
    # ignores a second connection with the same id (no handover), and the thief would hear nothing.
    for _ in range(100):
        if all(c.route_id != stolen for c in daemon.clients.values()):
            break
        await asyncio.sleep(0.05)
    assert all(c.route_id != stolen for c in daemon.clients.values()), "the daemon never saw the close"

    thief = Peer(daemon.endpoint, routing_id=stolen)
    try:
        await thief.send({"v": 1, "type": "ping", "id": 10})
        await thief.send({"v": 1, "type": "text", "id": 11, "sid": sid, "text": "What is my name?"})
        await thief.send({"v": 1, "type": "session_open", "id": 12, "character_id": CHARACTER, "backend": "stream"})
        got = await thief.drain(2.0)
        assert got, "the thief's requests were not answered at all"
        assert all(m["type"] == "error" and m["code"] == "not_ready" for m in got), got
        assert not any(m.get("sid") == sid and m.get("id") != 11 for m in got)  # only the echo of its own request
        assert sid in daemon.sessions  # kept for a resume, not handed over
        assert daemon.sessions[sid].owner not in {c.identity for c in daemon.clients.values() if c.route_id == stolen}
    finally:
        thief.close()


async def test_a_new_connection_with_the_token_needs_an_explicit_resume(daemon: Daemon) -> None:
    first = Peer(daemon.endpoint)
    await first.hello(daemon.token)
    await first.send({"v": 1, "type": "session_open", "id": 2, "character_id": CHARACTER, "backend": "interaction"})
    sid = (await first.recv_type("ack"))["sid"]
    await first.recv_type("session_opened")
    first.close()

    other = Peer(daemon.endpoint)
    second = Peer(daemon.endpoint)
    try:
        welcome = await other.hello(daemon.token)
        assert "resumed" not in welcome
        await other.send({"v": 1, "type": "text", "id": 5, "sid": sid, "text": "hi"})
        assert (await other.recv_type("error"))["code"] == "unknown_session"

        welcome = await second.hello(daemon.token, resume=[sid, "s-000000000000"])
        assert welcome["resumed"] == [sid]
        await second.send({"v": 1, "type": "text", "id": 6, "sid": sid, "text": "What is my name?"})
        ack = await second.recv_type("ack")
        assert ack["id"] == 6 and ack["sid"] == sid
        reply = await second.recv_type("bot_reply", timeout=20)
        assert reply["sid"] == sid
        assert not [m for m in await other.drain(0.5) if m.get("sid") == sid]
    finally:
        other.close()
        second.close()


async def test_resume_needs_the_token(daemon: Daemon) -> None:
    owner = Peer(daemon.endpoint)
    await owner.hello(daemon.token)
    await owner.send({"v": 1, "type": "session_open", "id": 2, "character_id": CHARACTER, "backend": "stream"})
    sid = (await owner.recv_type("ack"))["sid"]
    intruder = Peer(daemon.endpoint)
    try:
        reply = await intruder.hello("not-the-token", resume=[sid])
        assert reply["code"] == "unauthorized"
        await owner.send({"v": 1, "type": "ping", "id": 9})
        assert (await owner.recv_type("pong"))["id"] == 9  # still the owner's
        assert daemon.sessions[sid].owner in daemon.clients
    finally:
        owner.close()
        intruder.close()


# -- crash and memory: a subprocess daemon -------------------------------------------------------
@pytest.fixture(params=[0, 1], ids=["workers0", "workers1"])
async def served(
    request: pytest.FixtureRequest, tmp_path: Path
) -> AsyncIterator[tuple[asyncio.subprocess.Process, str, str]]:
    endpoint = f"tcp://127.0.0.1:{free_port()}"
    conn = tmp_path / "connection.json"
    proc = await asyncio.create_subprocess_exec(
        *EXE, "serve", "--workers", str(request.param), "--endpoint", endpoint,  # no Convai needed
        "--connection-file", str(conn), "--metrics-port", "0", "--log-level", "ERROR",
        "--config", str(tmp_path / "none.toml"),
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.DEVNULL, cwd=ROOT,
    )  # fmt: skip
    assert proc.stdout is not None
    while True:
        line = (await asyncio.wait_for(proc.stdout.readline(), 60)).decode()
        assert line, "daemon exited before READY"
        if line.startswith("READY"):
            break
    token = json.loads(conn.read_text())["token"]
    yield proc, endpoint, token
    if proc.returncode is None:
        proc.send_signal(signal.SIGTERM)
        await asyncio.wait_for(proc.wait(), 30)


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise AssertionError("no VmRSS")


async def test_claimed_generated_ids_cannot_crash_the_daemon(served) -> None:
    proc, endpoint, token = served
    squatters = []
    for k, routing_id in enumerate(unseeded_generated_ids()):  # what libzmq would hand out next
        peer = Peer(endpoint, routing_id=routing_id)
        await peer.send({"v": 1, "type": "ping", "id": k})
        squatters.append(peer)
    try:
        for peer in squatters[:4]:
            assert (await peer.recv_type("error"))["code"] == "not_ready"
        for _ in range(4):  # ordinary clients, each given a generated id
            client = await BridgeClient.connect(endpoint, token, timeout=20)
            try:
                assert (await client.request("ping")).type == "pong"
            finally:
                await client.close()
        assert proc.returncode is None
    finally:
        for peer in squatters:
            peer.close()
    await asyncio.sleep(0.3)
    assert proc.returncode is None, f"daemon died with {proc.returncode}"


async def test_a_huge_multipart_before_hello_is_refused_and_not_kept(served) -> None:
    proc, endpoint, token = served
    assert proc.pid is not None
    before = rss_mb(proc.pid)
    peer = Peer(endpoint)
    try:
        frame = b"\x00" * (1 << 20)
        header = pack({"v": 1, "type": "text", "id": 77, "sid": "s-x", "text": "a"})
        await peer.sock.send_multipart([header, *[frame] * 120])
        reply = await peer.recv_type("error", timeout=30)
        assert (reply["code"], reply.get("id")) == ("message_too_large", 77)
        for _ in range(100):  # bounded: the memory goes back once the message is dropped
            if rss_mb(proc.pid) < before + 40:
                break
            await asyncio.sleep(0.1)
        assert rss_mb(proc.pid) < before + 40, (before, rss_mb(proc.pid))
        assert (await peer.hello(token))["type"] == "welcome"  # the connection still works
    finally:
        peer.close()
    assert proc.returncode is None


# -- silent clients (issue 9, bug 5) ----------------------------------------------------------------
@pytest.mark.parametrize("workers", [0, 1])
async def test_a_silent_clients_sessions_close_as_client_gone(tmp_path: Path, workers: int) -> None:
    (tmp_path / "fast.toml").write_text("heartbeat_ms = 200\nclient_timeout_ms = 1200\n")
    endpoint = f"tcp://127.0.0.1:{free_port()}"
    conn = tmp_path / "connection.json"
    proc = await asyncio.create_subprocess_exec(
        *EXE, "serve", "--emulator", "--workers", str(workers), "--endpoint", endpoint,
        "--connection-file", str(conn), "--metrics-port", "0", "--log-level", "WARNING",
        "--config", str(tmp_path / "fast.toml"),
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.DEVNULL, cwd=ROOT,
    )  # fmt: skip
    assert proc.stdout is not None
    peer = None
    try:
        while not (line := (await asyncio.wait_for(proc.stdout.readline(), 60)).decode()).startswith("READY"):
            assert line, "daemon exited before READY"
        peer = Peer(endpoint)
        await peer.hello(json.loads(conn.read_text())["token"])
        await peer.send({"v": 1, "type": "session_open", "id": 2, "character_id": CHARACTER, "backend": "stream"})
        sid = (await peer.recv_type("ack"))["sid"]
        closed = await peer.recv_type("session_closed", timeout=15)  # never answers a ping
        assert (closed["sid"], closed["reason"]) == (sid, "client_gone")
    finally:
        if peer is not None:
            peer.close()
        proc.send_signal(signal.SIGTERM)
        await asyncio.wait_for(proc.wait(), 30)


# -- the offer URL ----------------------------------------------------------------------------------
async def test_session_open_url_is_limited_to_loopback_and_configured_hosts(tmp_path: Path, emulator: object) -> None:
    d = Daemon(daemon_config(tmp_path, emulator, allowed_url_hosts="bots.internal"))
    await d.start()
    client = await BridgeClient.connect(d.endpoint, d.token)
    try:
        for url in ("http://10.20.30.40:8080/api/offer", "http://169.254.169.254/latest", "file:///etc/passwd"):
            with pytest.raises(BridgeError) as info:
                await client.request("session_open", character_id=CHARACTER, transport="sdp", url=url)
            assert info.value.code == "forbidden_url"
        for url in ("http://127.0.0.1:9/api/offer", "http://bots.internal:7860/api/offer"):
            ack = await client.request("session_open", character_id=CHARACTER, transport="sdp", url=url)
            assert ack.sid  # allowed: it fails later, at connect time, not here
        assert not d.sessions or all(s.backend.params.url for s in d.sessions.values())
    finally:
        await client.close()
        await d.stop()


# -- the key scrubber ----------------------------------------------------------------------------
def test_scrubber_removes_partial_echoes_of_the_key() -> None:
    key = "9f86d081884c7d659a2feaa0c55ad015"
    for body in (
        {"message": f"Invalid API key {key[:12]}…"},
        {"detail": f"key ending in {key[-10:]} is revoked"},
        {"error": f"bad key {key.upper()}"},
        {"message": f"mid {key[5:19]} mid"},
    ):
        err = error_from_response(401, json.dumps(body), secrets=[key])
        for n in range(8, len(key) + 1):
            for start in range(len(key) - n + 1):
                assert key[start : start + n].lower() not in err.message.lower(), (body, err.message)
    assert error_from_response(401, json.dumps({"message": "no key here: 9f86d0"}), secrets=[key]).message.endswith(
        "9f86d0"
    )


async def test_partial_key_echo_from_convai_never_reaches_the_client(tmp_path: Path, emulator: object) -> None:
    key = "5e884898da28047151d0e56f8dc62927"

    async def refuse(request: web.Request) -> web.Response:
        sent = request.headers.get("CONVAI-API-KEY") or request.headers.get("Authorization") or ""
        seen = (await request.text()) + sent
        echo = key[:12] if key in seen else "nothing"
        return web.json_response({"message": f"Invalid API key '{echo}...'"}, status=401)

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", refuse)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    d = Daemon(daemon_config(tmp_path, emulator, rest_url=f"http://127.0.0.1:{port}", api_key=Secret(key)))
    await d.start()
    peer = Peer(d.endpoint)
    try:
        await peer.hello(d.token)
        await peer.send({"v": 1, "type": "session_open", "id": 2, "character_id": CHARACTER, "backend": "interaction"})
        sid = (await peer.recv_type("ack"))["sid"]
        await peer.send({"v": 1, "type": "text", "id": 3, "sid": sid, "text": "hello"})
        while (err := await peer.recv_type("error", timeout=20))["code"] != "convai_unauthorized":
            pass
        assert "Invalid API key" in err["message"], err
        assert key[:8] not in err["message"] and key[:12] not in err["message"], err
    finally:
        peer.close()
        await d.stop()
        await runner.cleanup()


def test_no_routing_id_is_set_by_the_shipped_clients() -> None:
    """The daemon generates every client's routing id; the shipped clients must not choose one."""
    roots = [ROOT / "bridge" / "client", ROOT / "bridge" / "loadtest", ROOT / "unity_sample" / "Runtime",
             ROOT / "unreal_sample" / "ConvaiBridge" / "Source"]  # fmt: skip
    for root in roots:
        for path in root.rglob("*"):
            if path.suffix in (".py", ".cs", ".cpp", ".h") and path.is_file():
                text = path.read_text(errors="replace")
                for needle in ("ROUTING_ID", "zmq.IDENTITY", "routing_id", "Options.Identity", "ZMQ_IDENTITY"):
                    assert needle not in text, f"{path} sets {needle}"


async def test_resume_moves_sessions_through_the_front_too(tmp_path: Path, emulator: object) -> None:
    front = Front(daemon_config(tmp_path, emulator, metrics_port=0), 1)
    await front.start()
    first, second = Peer(front.endpoint), Peer(front.endpoint)
    try:
        await first.hello(front.token)
        await first.send({"v": 1, "type": "session_open", "id": 2, "character_id": CHARACTER, "backend": "stream"})
        sid = (await first.recv_type("ack", timeout=30))["sid"]
        await first.recv_type("session_opened", timeout=30)
        first.close()
        welcome = await second.hello(front.token, resume=[sid])
        assert welcome["resumed"] == [sid]
        await second.send({"v": 1, "type": "text", "id": 3, "sid": sid, "text": "My name is Ada."})
        assert (await second.recv_type("ack", timeout=30))["sid"] == sid
        done = await second.recv_type("turn_completed", timeout=30)
        assert done["sid"] == sid
    finally:
        second.close()
        await front.stop()
