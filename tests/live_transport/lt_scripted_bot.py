"""A SmallWebRTC RTVI bot that plays scripted server behaviour, for variants no emulator profile has.

Convai's own clients accept server behaviour the emulator may not produce (no `bot-turn-completed`,
blendshapes before `bot-started-speaking`, two speaking segments per reply, text only in
`bot-transcription`, ...). Each test gives the bot a script: for a user text it answers with a list of
steps, each a JSON message (sent as is), ``("speak", seconds)`` (the audio track carries a tone, then
silence again) or ``("sleep", seconds)``. Everything goes over a real aiortc peer connection.
"""

from __future__ import annotations

import asyncio
import fractions
import json
from collections.abc import Callable
from typing import Any

import numpy as np
from aiohttp import web
from aiortc.mediastreams import MediaStreamError, MediaStreamTrack
from av import AudioFrame

from bridge.backends.live.ice import loopback_candidates
from tests.live_transport.lt_fake_smallwebrtc import FakePeer, FakeSmallWebRTC
from tests.live_transport.lt_tone import FRAME, RATE, tone_frames

Step = dict[str, Any] | tuple[str, float]
Script = Callable[[dict[str, Any]], list[Step] | None]


class GatedTone(MediaStreamTrack):
    """Silence, or a tone while ``loud`` (what a bot's always-on output track sounds like)."""

    kind = "audio"

    def __init__(self, freq: float) -> None:
        super().__init__()
        self.loud = False
        self._pts = 0
        self._start: float | None = None
        self._table = tone_frames(freq, 50)
        self._silence = np.zeros(FRAME, dtype=np.int16)

    async def recv(self) -> AudioFrame:
        if self.readyState != "live":
            raise MediaStreamError
        loop = asyncio.get_running_loop()
        if self._start is None:
            self._start = loop.time()
        else:
            self._pts += FRAME
            wait = self._start + self._pts / RATE - loop.time()
            if wait > 0:
                await asyncio.sleep(wait)
        pcm = self._table[(self._pts // FRAME) % len(self._table)] if self.loud else self._silence
        frame = AudioFrame.from_ndarray(pcm.reshape(1, -1), format="s16", layout="mono")
        frame.sample_rate = RATE
        frame.pts = self._pts
        frame.time_base = fractions.Fraction(1, RATE)
        return frame


class ScriptedPeer(FakePeer):
    def __init__(self, tone_hz: float, bot: ScriptedBot) -> None:
        super().__init__(tone_hz)
        self.bot = bot
        self.tone = GatedTone(tone_hz)  # replaces the always-loud tone before the answer attaches it

    def on_message(self, data: bytes | str) -> None:
        text = data.decode() if isinstance(data, bytes) else data
        self.raw.append(text)
        if text.startswith("ping"):
            return
        message = json.loads(text)
        self.received.append(message)
        if message.get("type") == "client-ready":
            self.send({"label": "rtvi-ai", "type": "bot-ready", "id": message.get("id", ""),
                       "data": {"version": "1.2.0", "about": self.bot.about}})
            return
        steps = self.bot.script(message)
        if steps:
            self.tasks.append(asyncio.ensure_future(self.play(steps)))

    async def play(self, steps: list[Step]) -> None:
        for step in steps:
            if isinstance(step, tuple):
                what, seconds = step
                if what == "speak":
                    self.tone.loud = True
                    await asyncio.sleep(seconds)
                    self.tone.loud = False
                else:
                    await asyncio.sleep(seconds)
            else:
                self.send(step)


class ScriptedBot(FakeSmallWebRTC):
    def __init__(self, script: Script, about: dict[str, Any] | None = None, tone_hz: float = 440.0) -> None:
        super().__init__(tone_hz)
        self.script = script
        self.about = about if about is not None else {"library": "convai-like", "character_session_id": "cs-1"}

    async def offer(self, request: web.Request) -> web.Response:
        body = await request.json()
        self.bodies.append(body)
        peer = self.peers.get(body.get("pc_id") or "") or ScriptedPeer(self.tone_hz, self)
        with loopback_candidates():
            sdp = await peer.answer(body["sdp"])
        self.peers[peer.pc_id] = peer
        return web.json_response({"sdp": sdp, "type": "answer", "pc_id": peer.pc_id})

    def received(self) -> list[dict[str, Any]]:
        return [m for p in self.peers.values() for m in p.received]


def top(kind: str, data: dict[str, Any] | None = None, **root: Any) -> dict[str, Any]:
    msg: dict[str, Any] = {"label": "rtvi-ai", "type": kind, **root}
    if data is not None:
        msg["data"] = data
    return msg


def wrapped(kind: str, **payload: Any) -> dict[str, Any]:
    return {"label": "rtvi-ai", "type": "server-message", "data": {"type": kind, **payload}}


def user_text(message: dict[str, Any]) -> str | None:
    """The text of a Convai user_text_message or an RTVI send-text, else None."""
    data = message.get("data") if isinstance(message.get("data"), dict) else {}
    if message.get("type") == "user_text_message":
        return data.get("text")
    if message.get("type") == "send-text":
        return data.get("content")
    return None
