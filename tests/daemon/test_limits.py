"""Issue 12: slow consumers, floods and odd ids leave the daemon bounded and every request answered."""

from __future__ import annotations

import asyncio
import os
import signal
from pathlib import Path

import msgpack
import pytest
import zmq
import zmq.asyncio

from bridge.client import BridgeClient, BridgeError
from bridge.daemon.front import Front
from bridge.daemon.metrics import BridgeMetrics
from bridge.daemon.router import Daemon
from bridge.wire.codec import pack
from tests.conftest import CHARACTER, daemon_config

HI_FI = {"sample_rate": 192000, "channels": 2, "frame_ms": 20}


def dropped(metrics: BridgeMetrics, reason: str) -> float:
    return sum(
        s.value
        for metric in metrics.dropped.collect()
        for s in metric.samples
        if s.name.endswith("_total") and s.labels.get("reason") == reason
    )


class Raw:
    def __init__(self, endpoint: str, *, rcvhwm: int = 1000, rcvbuf: int = -1) -> None:
        self.sock = zmq.asyncio.Context.instance().socket(zmq.DEALER)
        self.sock.setsockopt(zmq.LINGER, 0)
        self.sock.setsockopt(zmq.RCVHWM, rcvhwm)
        if rcvbuf > 0:
            self.sock.setsockopt(zmq.RCVBUF, rcvbuf)
        self.sock.connect(endpoint)

    async def send(self, header: dict, *frames: bytes) -> None:
        await self.sock.send_multipart([pack(header), *frames])

    async def recv(self, timeout: float = 10.0) -> dict:
        return msgpack.unpackb((await asyncio.wait_for(self.sock.recv_multipart(), timeout))[0], raw=False)

    async def recv_type(self, msg_type: str, timeout: float = 10.0) -> dict:
        while (msg := await self.recv(timeout))["type"] != msg_type:
            pass
        return msg

    async def hello(self, token: str) -> dict:
        await self.send({"v": 1, "type": "hello", "id": 1, "protocol": "1.1", "token": token, "client": "t"})
        return await self.recv()

    def close(self) -> None:
        self.sock.close(0)


async def test_a_slow_consumer_is_bounded_and_told_while_others_stay_whole(tmp_path: Path, emulator: object) -> None:
    metrics = BridgeMetrics()
    d = Daemon(daemon_config(tmp_path, emulator, client_send_hwm=50, metrics_port=0), metrics=metrics)
    await d.start()
    slow = Raw(d.endpoint, rcvhwm=1, rcvbuf=4096)
    good = await BridgeClient.connect(d.endpoint, d.token)
    try:
        await slow.hello(d.token)
        sids = []
        for i in range(4):
            await slow.send(
                {"v": 1, "type": "session_open", "id": 10 + i, "character_id": CHARACTER, "backend": "interaction",
                 "audio": HI_FI}
            )  # fmt: skip
        while len(sids) < 4:
            msg = await slow.recv()
            if msg["type"] == "ack":
                sids.append(msg["sid"])
        opened = 0
        while opened < 4:
            opened += (await slow.recv())["type"] == "session_opened"
        npc = await good.open_session(CHARACTER, backend="interaction", audio=HI_FI)
        for i, sid in enumerate(sids):
            await slow.send(
                {"v": 1, "type": "text", "id": 20 + i, "sid": sid, "text": "Tell me a long story about the sea."}
            )
        ack = await good.request("text", sid=npc.sid, text="Tell me a long story about the sea.")
        seqs = []
        while True:  # the slow client reads nothing meanwhile, only keeps its heartbeat
            event = await asyncio.wait_for(npc.events.get(), 60)
            if event.type == "audio_out":
                seqs.append(event["seq"])
            if event.type == "turn_completed" and event["turn"] == ack["turn"]:
                break
            await slow.send({"v": 1, "type": "ping", "id": 99})
        assert seqs and seqs == list(range(seqs[0], seqs[0] + len(seqs))), "the good client lost audio"
        for _ in range(100):  # bounded: until the daemon has dropped some of the slow client's audio
            if dropped(metrics, "slow_consumer") > 0:
                break
            await asyncio.sleep(0.1)
        assert dropped(metrics, "slow_consumer") > 0
        err = await slow.recv_type("error", timeout=30)
        while err["code"] != "slow_consumer":
            err = await slow.recv_type("error", timeout=30)
        assert err["retryable"] is True and err["fatal"] is False
    finally:
        slow.close()
        await good.close()
        await d.stop()


async def test_request_floods_are_rate_limited_and_every_request_answered(tmp_path: Path, emulator: object) -> None:
    cfg = daemon_config(tmp_path, emulator, max_requests_per_s=50, max_audio_in_per_s=20, metrics_port=0)
    cfg.max_session_requests_per_s = 10
    d = Daemon(cfg)
    await d.start()
    peer = Raw(d.endpoint)
    try:
        await peer.hello(d.token)
        for i in range(400):
            await peer.send({"v": 1, "type": "ping", "id": 1000 + i})
        answers: dict[int, str] = {}
        while len(answers) < 400:
            msg = await peer.recv()
            if msg.get("id", 0) >= 1000:
                assert msg["id"] not in answers, "answered twice"
                answers[msg["id"]] = msg["type"] if msg["type"] == "pong" else msg["code"]
        assert set(answers.values()) == {"pong", "rate_limited"}
        assert 50 <= list(answers.values()).count("pong") < 300
        await asyncio.sleep(1.0)
        await peer.send({"v": 1, "type": "ping", "id": 7})
        assert (await peer.recv_type("pong"))["id"] == 7  # the bucket refills

        await peer.send({"v": 1, "type": "session_open", "id": 8, "character_id": CHARACTER, "backend": "interaction"})
        sid = (await peer.recv_type("ack"))["sid"]
        await peer.recv_type("session_opened")
        pcm = b"\x00\x00" * 160
        for seq in range(300):
            header = {"v": 1, "type": "audio_in", "sid": sid, "seq": seq, "sample_rate": 16000, "channels": 1}
            await peer.send({**header, "samples": 160}, pcm)
        err = await peer.recv_type("error")
        assert (err["code"], err["sid"]) == ("rate_limited", sid)
        assert sid in d.sessions and d.sessions[sid].stats.audio_in_frames < 300

        await asyncio.sleep(1.0)
        for i in range(60):  # within the client's limit, over the session's
            await peer.send({"v": 1, "type": "interrupt", "id": 5000 + i, "sid": sid})
        replies: dict[int, str] = {}
        while len(replies) < 60:
            msg = await peer.recv()
            if msg.get("id", 0) >= 5000:
                replies[msg["id"]] = msg["type"] if msg["type"] == "ack" else msg["code"]
                assert msg.get("sid") == sid
        assert set(replies.values()) == {"ack", "rate_limited"}
    finally:
        peer.close()
        await d.stop()


@pytest.mark.parametrize("bad_id", [True, False, -1, 2**40])
async def test_requests_with_odd_ids_are_answered_without_them(daemon: Daemon, bad_id: object) -> None:
    peer = Raw(daemon.endpoint)
    try:
        await peer.hello(daemon.token)
        await peer.send({"v": 1, "type": "session_open", "id": bad_id, "character_id": CHARACTER})
        err = await peer.recv_type("error")
        assert err["code"] == "invalid_field" and "id" not in err
        assert not daemon.sessions
    finally:
        peer.close()


async def test_front_answers_requests_a_stuck_worker_never_does(tmp_path: Path, emulator: object) -> None:
    cfg = daemon_config(tmp_path, emulator, request_timeout_s=1.0, max_retries=0, metrics_port=0)
    front = Front(cfg, 1)
    await front.start()
    client = await BridgeClient.connect(front.endpoint, front.token, timeout=60)
    worker = front.workers[0].proc
    assert worker is not None
    try:
        npc = await client.open_session(CHARACTER, backend="stream")
        os.kill(worker.pid, signal.SIGSTOP)
        try:
            with pytest.raises(BridgeError) as info:
                await client.request("text", sid=npc.sid, text="are you there?", timeout=40)
            assert info.value.code == "worker_failed" and info.value.retryable
        finally:
            os.kill(worker.pid, signal.SIGCONT)
    finally:
        await client.close()
        await front.stop()
