"""Handshake, heartbeats, limits and bad input against the real daemon over real ZeroMQ sockets."""

from __future__ import annotations

import asyncio
import json
import os
import stat
from pathlib import Path

import msgpack
import pytest
import zmq
import zmq.asyncio

from bridge.client import BridgeClient, BridgeError
from bridge.daemon.router import Daemon
from bridge.wire.codec import Codec, pack
from tests.conftest import CHARACTER, daemon_config


class RawPeer:
    """A DEALER that sends arbitrary bytes, to see what the daemon makes of them."""

    def __init__(self, endpoint: str) -> None:
        self.sock = zmq.asyncio.Context.instance().socket(zmq.DEALER)
        self.sock.setsockopt(zmq.LINGER, 0)
        self.sock.connect(endpoint)
        self.codec = Codec()

    async def send(self, *parts: bytes) -> None:
        await self.sock.send_multipart(list(parts))

    async def recv(self, timeout: float = 10.0) -> dict:
        parts = await asyncio.wait_for(self.sock.recv_multipart(), timeout)
        return msgpack.unpackb(parts[0], raw=False)

    async def recv_type(self, msg_type: str, timeout: float = 10.0) -> dict:
        while True:
            msg = await self.recv(timeout)
            if msg["type"] == msg_type:
                return msg

    async def hello(self, token: str) -> dict:
        await self.send(pack({"v": 1, "type": "hello", "id": 1, "protocol": "1.0", "token": token, "client": "raw"}))
        return await self.recv()

    def close(self) -> None:
        self.sock.close(0)


@pytest.fixture
async def raw(daemon: Daemon):
    peer = RawPeer(daemon.endpoint)
    yield peer
    peer.close()


async def test_connection_file_is_private_and_complete(daemon: Daemon) -> None:
    path = daemon.config.connection_file
    mode = stat.S_IMODE(os.stat(path).st_mode)
    assert mode == 0o600
    info = json.loads(Path(path).read_text())
    assert info["endpoint"] == daemon.endpoint and info["token"] == daemon.token
    assert info["instance_id"] == daemon.instance_id
    assert "api_key" not in json.dumps(info).lower() and daemon.config.api_key.reveal() not in path.read_text()


async def test_welcome_carries_instance_limits_and_backends(client: BridgeClient, daemon: Daemon) -> None:
    w = client.welcome
    assert w is not None and w["instance_id"] == daemon.instance_id
    assert set(w["backends"]) == {"live", "interaction", "stream"}
    assert w["limits"]["max_sessions"] == daemon.config.max_sessions
    pong = await client.request("ping")
    assert pong.type == "pong"


async def test_wrong_token_is_refused_fatally(raw: RawPeer) -> None:
    reply = await raw.hello("not-the-token")
    assert reply["type"] == "error" and reply["code"] == "unauthorized" and reply["fatal"] is True
    assert reply["id"] == 1


async def test_major_version_mismatch_is_refused(raw: RawPeer, daemon: Daemon) -> None:
    await raw.send(pack({"v": 1, "type": "hello", "id": 5, "protocol": "2.0", "token": daemon.token, "client": "x"}))
    reply = await raw.recv()
    assert (reply["code"], reply["fatal"], reply["id"]) == ("version_mismatch", True, 5)
    await raw.send(pack({"v": 2, "type": "hello", "id": 6, "protocol": "2.0", "token": daemon.token, "client": "x"}))
    reply = await raw.recv()
    assert reply["code"] == "version_mismatch"


async def test_requests_before_hello_are_not_ready(raw: RawPeer) -> None:
    await raw.send(pack({"v": 1, "type": "session_open", "id": 3, "character_id": CHARACTER}))
    reply = await raw.recv()
    assert (reply["code"], reply["id"]) == ("not_ready", 3)


@pytest.mark.parametrize(
    ("parts", "code"),
    [
        ([b"\xc1garbage"], "bad_message"),
        ([msgpack.packb([1, 2])], "bad_message"),
        ([pack({"v": 1, "type": "warp_drive", "id": 9})], "unknown_type"),
        ([pack({"v": 1, "type": "text", "id": 9, "sid": "s-x"})], "missing_field"),
        ([pack({"v": 1, "type": "text", "id": 9, "sid": "s-x", "text": 3})], "invalid_field"),
        ([pack({"v": 1, "type": "text", "id": 9, "sid": "s-nope", "text": "hi"})], "unknown_session"),
        (
            [
                pack(
                    {
                        "v": 1,
                        "type": "welcome",
                        "id": 9,
                        "protocol": "1.0",
                        "daemon_version": "x",
                        "instance_id": "y",
                        "backends": [],
                        "capabilities": [],
                        "limits": {
                            "max_message_bytes": 1,
                            "max_sessions": 1,
                            "heartbeat_ms": 1,
                            "client_timeout_ms": 1,
                            "max_audio_in_ms": 1,
                            "audio_lead_ms": 1,
                        },
                    }
                )
            ],
            "unknown_type",
        ),
        (
            [
                pack(
                    {
                        "v": 1,
                        "type": "session_open",
                        "id": 9,
                        "character_id": CHARACTER,
                        "audio": {"sample_rate": 7, "channels": 1, "frame_ms": 20},
                    }
                )
            ],
            "unsupported_audio_format",
        ),
        (
            [
                pack(
                    {
                        "v": 1,
                        "type": "session_open",
                        "id": 9,
                        "character_id": CHARACTER,
                        "audio": {"sample_rate": 44100, "channels": 3, "frame_ms": 20},
                    }
                )
            ],
            "unsupported_audio_format",
        ),
        (
            [
                pack(
                    {
                        "v": 1,
                        "type": "session_open",
                        "id": 9,
                        "character_id": CHARACTER,
                        "audio": {"sample_rate": 44100, "channels": 1, "frame_ms": 4},
                    }
                )
            ],
            "unsupported_audio_format",
        ),
        (
            [pack({"v": 1, "type": "session_open", "id": 9, "character_id": CHARACTER, "backend": "grpc"})],
            "invalid_field",
        ),
    ],
)
async def test_bad_input_gets_a_specific_error_and_the_daemon_keeps_serving(
    raw: RawPeer, daemon: Daemon, parts: list[bytes], code: str
) -> None:
    assert (await raw.hello(daemon.token))["type"] == "welcome"
    await raw.send(*parts)
    reply = await raw.recv_type("error")
    assert reply["code"] == code, reply
    assert reply["fatal"] is False
    await raw.send(pack({"v": 1, "type": "ping", "id": 42}))
    assert (await raw.recv_type("pong"))["id"] == 42


async def test_oversized_message_is_refused_and_connection_survives(raw: RawPeer, daemon: Daemon) -> None:
    assert (await raw.hello(daemon.token))["type"] == "welcome"
    big = pack({"v": 1, "type": "text", "id": 4, "sid": "s-1", "text": "x" * (daemon.config.max_message_bytes - 100)})
    await raw.send(big, b"y" * 200)
    reply = await raw.recv_type("error")
    assert reply["code"] in ("message_too_large", "bad_message")
    await raw.send(pack({"v": 1, "type": "ping", "id": 43}))
    assert (await raw.recv_type("pong"))["id"] == 43


async def test_daemon_pings_idle_clients(tmp_path: Path, emulator: object) -> None:
    d = Daemon(daemon_config(tmp_path, emulator, heartbeat_ms=200, client_timeout_ms=5000))
    await d.start()
    peer = RawPeer(d.endpoint)
    try:
        assert (await peer.hello(d.token))["type"] == "welcome"
        ping = await peer.recv_type("ping", timeout=2.0)
        assert isinstance(ping["id"], int)
    finally:
        peer.close()
        await d.stop()


async def test_silent_client_is_reaped_and_its_sessions_closed(tmp_path: Path, emulator: object) -> None:
    d = Daemon(daemon_config(tmp_path, emulator, heartbeat_ms=100, client_timeout_ms=600))
    await d.start()
    peer = RawPeer(d.endpoint)
    try:
        assert (await peer.hello(d.token))["type"] == "welcome"
        await peer.send(
            pack({"v": 1, "type": "session_open", "id": 2, "character_id": CHARACTER, "backend": "interaction"})
        )
        ack = await peer.recv_type("ack")
        assert ack["sid"] in d.sessions
        for _ in range(40):  # never answers pings: bounded wait for the reaper
            if not d.sessions:
                break
            await asyncio.sleep(0.1)
        assert not d.sessions and not d.clients
    finally:
        peer.close()
        await d.stop()


async def test_clients_cannot_see_or_steer_each_others_sessions(daemon: Daemon) -> None:
    a = await BridgeClient.connect(daemon.endpoint, daemon.token)
    b = await BridgeClient.connect(daemon.endpoint, daemon.token)
    try:
        npc = await a.open_session(CHARACTER, backend="interaction")
        with pytest.raises(BridgeError) as info:
            await b.request("text", sid=npc.sid, text="I am not your owner")
        assert info.value.code == "unknown_session"
        with pytest.raises(BridgeError):
            await b.request("session_close", sid=npc.sid)
        assert npc.sid in daemon.sessions
        assert b._orphans.empty()
    finally:
        await a.close()
        await b.close()


async def test_session_limit_per_client(tmp_path: Path, emulator: object) -> None:
    d = Daemon(daemon_config(tmp_path, emulator, max_sessions=2))
    await d.start()
    c = await BridgeClient.connect(d.endpoint, d.token)
    try:
        await c.open_session(CHARACTER, backend="stream")
        await c.open_session(CHARACTER, backend="stream")
        with pytest.raises(BridgeError) as info:
            await c.open_session(CHARACTER, backend="stream")
        assert info.value.code == "too_many_sessions" and info.value.retryable
    finally:
        await c.close()
        await d.stop()


async def test_refuses_non_loopback_bind_without_opt_in(tmp_path: Path, emulator: object) -> None:
    d = Daemon(daemon_config(tmp_path, emulator, endpoint="tcp://0.0.0.0:0"))
    with pytest.raises(ValueError, match="not loopback"):
        await d.start()
