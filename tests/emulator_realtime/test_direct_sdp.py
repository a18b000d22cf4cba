"""Direct SDP transport (pipecat SmallWebRTC style): offer/answer over HTTP, RTVI on one data channel."""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from typing import Any

import aiohttp
import numpy as np
from aiortc import RTCConfiguration, RTCPeerConnection, RTCSessionDescription
from aiortc.mediastreams import MediaStreamError, MediaStreamTrack
from conftest import BRAKKA
from emu_lk_client import PcmSource, event_type

from convai_emulator.server import Emulator


class DirectClient:
    def __init__(self, base_url: str) -> None:
        self.base_url = base_url
        self.messages: list[tuple[float, dict[str, Any] | str]] = []
        self.audio: list[tuple[float, np.ndarray]] = []
        self.t0 = time.monotonic()
        self.pc_id = ""
        self.tasks: list[asyncio.Task[Any]] = []

    async def start(self, path: str = "/api/offer", request_data: dict[str, Any] | None = None) -> int:
        self.pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
        self.mic = PcmSource()
        self.pc.addTransceiver(self.mic, direction="sendrecv")
        self.channel = self.pc.createDataChannel("chat", ordered=True)
        self.channel.on("message", self._on_message)

        @self.pc.on("track")
        def _track(track: MediaStreamTrack) -> None:
            self.tasks.append(asyncio.ensure_future(self._read(track)))

        await self.pc.setLocalDescription(await self.pc.createOffer())
        body: dict[str, Any] = {"sdp": self.pc.localDescription.sdp, "type": "offer", "pc_id": None,
                                "restart_pc": False}
        if request_data is not None:
            body["requestData"] = request_data
        async with aiohttp.ClientSession() as http:
            resp = await http.post(self.base_url + path, json=body)
            if resp.status != 200:
                return resp.status
            answer = await resp.json()
        assert set(answer) == {"sdp", "type", "pc_id"} and answer["type"] == "answer"
        self.pc_id = answer["pc_id"]
        await self.pc.setRemoteDescription(RTCSessionDescription(answer["sdp"], "answer"))
        await self.wait(lambda: self.channel.readyState == "open", 10, "data channel")
        return 200

    def _on_message(self, message: str | bytes) -> None:
        text = message.decode() if isinstance(message, bytes) else message
        self.messages.append((time.monotonic() - self.t0, json.loads(text)))

    async def _read(self, track: MediaStreamTrack) -> None:
        with contextlib.suppress(MediaStreamError):
            while True:
                frame = await track.recv()
                data = frame.to_ndarray().reshape(-1)[0::len(frame.layout.channels)]
                self.audio.append((time.monotonic() - self.t0, data.astype(np.int16)))

    def send(self, message: dict[str, Any] | str) -> None:
        self.channel.send(message if isinstance(message, str) else json.dumps(message))

    def types(self) -> list[str]:
        return [event_type(m) for _, m in self.messages if isinstance(m, dict)]

    async def wait(self, predicate: Any, timeout: float, what: str = "") -> None:
        deadline = time.monotonic() + timeout
        while not predicate():
            assert time.monotonic() < deadline, f"timed out waiting for {what}: {self.types()[-20:]}"
            await asyncio.sleep(0.02)

    async def close(self) -> None:
        for task in self.tasks:
            task.cancel()
        await self.pc.close()


async def test_offer_answer_text_turn_and_audio(emulator: Emulator) -> None:
    client = DirectClient(emulator.base_url)
    assert await client.start() == 200
    try:
        assert client.pc_id.startswith("EmulatorConnection#")
        await client.wait(lambda: "bot-ready" in client.types(), 10, "bot-ready")
        client.send({"label": "rtvi-ai", "type": "client-ready", "id": "cr1", "data": {"version": "2.2.0"}})
        client.send({"label": "rtvi-ai", "type": "send-text", "id": "st1",
                     "data": {"content": "wave", "options": {"run_immediately": True}}})
        await client.wait(lambda: "bot-turn-completed" in client.types(), 20, "turn")
        ready = [m for _, m in client.messages if isinstance(m, dict) and m.get("type") == "bot-ready"]
        assert ready[-1]["id"] == "cr1"
        started = next(t for t, m in client.messages if isinstance(m, dict) and m.get("type") == "bot-started-speaking")
        loud = [pcm for t, pcm in client.audio if t >= started]
        assert np.sqrt(np.mean(np.concatenate(loud).astype(np.float64) ** 2)) > 300

        # a voice turn on the same pc
        from convai_emulator.voice import VoiceSpec, synthesize

        client.mic.say(synthesize("Good morning to you, smith.", VoiceSpec(), 48000))
        await client.wait(lambda: client.types().count("final-user-transcription") >= 2, 15, "voice")
        voice = [m for _, m in client.messages if isinstance(m, dict) and event_type(m) == "final-user-transcription"]
        assert voice[-1]["data"]["text"].strip()  # recognised words, or the placeholder without pocketsphinx
    finally:
        await client.close()


async def test_patch_restart_and_unknown_character(emulator: Emulator) -> None:
    async with aiohttp.ClientSession() as http:
        resp = await http.patch(emulator.base_url + "/api/offer", json={"pc_id": "nope", "candidates": []})
        assert resp.status == 404 and await resp.json() == {"detail": "Peer connection not found"}
    missing = DirectClient(emulator.base_url)
    assert await missing.start("/bots/00000000-0000-0000-0000-000000000000/api/offer") == 404
    await missing.close()

    client = DirectClient(emulator.base_url)
    assert await client.start(f"/bots/{BRAKKA}/api/offer") == 200
    try:
        async with aiohttp.ClientSession() as http:
            resp = await http.patch(emulator.base_url + "/api/offer", json={"pc_id": client.pc_id, "candidates": [
                {"candidate": "candidate:1 1 udp 2122260223 127.0.0.1 50000 typ host", "sdp_mid": "0",
                 "sdp_mline_index": 0},
                {"candidate": "", "sdp_mid": "0", "sdp_mline_index": 0}]})
            assert resp.status == 200 and await resp.json() == {"status": "success"}
        client.send({"type": "user_text_message", "data": {"text": "my name is Mira"}})
        await client.wait(lambda: "bot-llm-stopped" in client.types(), 5, "reply")

        # restart_pc: a brand-new pc, new pc_id, same conversation
        old_id = client.pc_id
        old_pc = client.pc
        second = DirectClient(emulator.base_url)
        second.pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
        second.pc.addTransceiver(PcmSource(), direction="sendrecv")
        second.channel = second.pc.createDataChannel("chat")
        second.channel.on("message", second._on_message)
        await second.pc.setLocalDescription(await second.pc.createOffer())
        async with aiohttp.ClientSession() as http:
            resp = await http.post(emulator.base_url + "/api/offer", json={
                "sdp": second.pc.localDescription.sdp, "type": "offer", "pc_id": old_id, "restart_pc": True})
            answer = await resp.json()
        assert resp.status == 200 and answer["pc_id"] != old_id
        await second.pc.setRemoteDescription(RTCSessionDescription(answer["sdp"], "answer"))
        await second.wait(lambda: second.channel.readyState == "open", 10, "restarted channel")
        second.send({"type": "user_text_message", "data": {"text": "what is my name"}})
        await second.wait(lambda: "bot-llm-stopped" in second.types(), 10, "reply")
        text = "".join(m["data"]["text"] for _, m in second.messages
                       if isinstance(m, dict) and m.get("type") == "bot-llm-text")
        assert "Mira" in text, text
        await old_pc.close()
        await second.close()
    finally:
        await client.close()


async def test_keepalive_lapse_parks_messages(emulator: Emulator) -> None:
    from convai_emulator.realtime import REALTIME

    client = DirectClient(emulator.base_url)
    assert await client.start() == 200
    try:
        peer = emulator.app[REALTIME].direct.peers[client.pc_id]
        peer.settings = type(peer.settings)(keepalive_grace_s=0.3)
        client.send("ping: 1")
        await asyncio.sleep(0.5)
        client.send({"type": "reset-idle-timer", "data": {}})
        await asyncio.sleep(0.3)
        assert "server-response" not in client.types()  # parked: the peer counts as disconnected
        client.send(f"ping: {int(time.time() * 1000)}")
        await client.wait(lambda: "server-response" in client.types(), 5, "flushed ack")
        client.send("not json")  # dropped silently, like pipecat
        client.send(json.dumps({"type": "signalling", "message": {"type": "trackStatus", "receiver_index": 0,
                                                                 "enabled": True}}))
        client.send({"label": "rtvi-ai", "type": "disconnect-bot", "id": "d1"})
        await client.wait(lambda: any(isinstance(m, dict) and m.get("type") == "signalling"
                                      for _, m in client.messages), 5, "peerLeft")
        await client.wait(lambda: client.pc_id not in emulator.app[REALTIME].direct.peers, 5, "closed")
    finally:
        await client.close()


async def test_offer_can_join_a_connect_session(emulator: Emulator) -> None:
    from conftest import connect

    body = await connect(emulator, narrative_template_keys={"player_name": "Ilse"})
    client = DirectClient(emulator.base_url)
    assert await client.start(request_data={"session_id": body["session_id"]}) == 200
    try:
        await client.wait(lambda: "interaction-created" in client.types(), 10, "greeting")
        created = next(m for _, m in client.messages if isinstance(m, dict) and event_type(m) == "interaction-created")
        assert created["data"]["character_session_id"] == body["character_session_id"]
    finally:
        await client.close()
