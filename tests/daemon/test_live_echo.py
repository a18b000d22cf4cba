"""A player on loudspeakers: the NPC's voice comes back through the microphone. End to end on the live
backend against the emulator (real LiveKit signalling, WebRTC, server VAD): with the daemon's echo
canceller on, the NPC does not hear itself and is not interrupted; with it off, the same room makes it
barge in on itself (so the canceller is what makes the difference).

The simulated client plays ``audio_out`` through a jitter buffer, the room delays, band-limits and
attenuates it, the microphone adds noise, and the result goes back as ``audio_in`` in real time. The
assertions are about conversation events only (no voice turn, no interruption while the bot speaks),
so they hold for any server VAD the emulator uses.
"""

from __future__ import annotations

import asyncio
import contextlib

import numpy as np
import pytest
from scipy import signal

from bridge.client import BridgeClient, NpcSession
from bridge.daemon.router import Daemon
from bridge.wire.codec import Message
from tests.conftest import CHARACTER

RATE = 48000
FRAME = RATE // 50  # the client's 20 ms mic and reference frames
JITTER_MS = 60  # client playout buffer: audio_out plays this long after it arrives
ACOUSTIC_MS = 20  # loudspeaker → microphone (device latency, air): echo 40–120 ms behind receipt in all
GAIN = 0.4  # the echo is loud: players turn the volume up
NOISE_RMS = 30.0  # about -61 dBFS of room and mic noise
PROMPT = "Tell me everything about the dragon attack on the northern gate last winter."
MAX_S = 60  # the simulated room holds a minute of audio; every scenario ends well before


def music(start: int, n: int) -> np.ndarray:
    """Game music the player hears along with the NPC: two slow-beating tones, about -26 dBFS."""
    t = (start + np.arange(n)) / RATE
    return 1200 * np.sin(2 * np.pi * 330 * t) * (1 + 0.5 * np.sin(2 * np.pi * 0.7 * t)) + 900 * np.sin(
        2 * np.pi * 495 * t
    )


class Room:
    """The player's speaker and microphone on one sample clock (RATE, since the scenario started)."""

    def __init__(self, with_music: bool, jitter_ms: int) -> None:
        loop = asyncio.get_running_loop()
        self.loop = loop
        self.t0 = loop.time()
        self.played = np.zeros(MAX_S * RATE, dtype=np.float64)  # what the loudspeaker emits (NPC only)
        self.write_end = 0
        self.turn: int | None = None
        self.anchor = 0
        self.with_music = with_music
        self.b, self.a = signal.butter(2, [150 / (RATE / 2), 7000 / (RATE / 2)], "band")
        self.zi = np.zeros(max(len(self.a), len(self.b)) - 1)
        self.rng = np.random.default_rng(5)
        self.lag = ACOUSTIC_MS * RATE // 1000
        self.jitter = jitter_ms * RATE // 1000

    def now_sample(self) -> int:
        return int((self.loop.time() - self.t0) * RATE)

    def receive(self, msg: Message) -> None:
        """An audio_out frame arrives. Like an engine's audio thread, the client starts a turn one jitter
        buffer after its first frame and then plays it on the turn's sample clock (``offset``), so a
        late-scheduled test task does not move the playout (the daemon's lead covers it)."""
        pcm = np.frombuffer(msg.frames[0], dtype="<i2").astype(np.float64)
        if msg["turn"] != self.turn:
            self.turn = msg["turn"]
            self.anchor = max(self.now_sample() + self.jitter, self.write_end)
        start = self.anchor + msg["offset"]
        end = min(start + len(pcm), len(self.played))
        if end > start:
            self.played[start:end] = pcm[: end - start]
            self.write_end = max(self.write_end, end)

    def flush(self) -> None:
        """An interrupted turn: the client drops what it has not played yet."""
        now = self.now_sample()
        self.played[now : self.write_end] = 0
        self.write_end = min(self.write_end, now)

    def rendered(self, k: int) -> np.ndarray:
        """Frame k of the game's output mix: the NPC as played, plus music."""
        out = self.played[k * FRAME : (k + 1) * FRAME].copy()
        if self.with_music:
            out += music(k * FRAME, FRAME)
        return out

    def captured(self, k: int) -> np.ndarray:
        """Frame k at the microphone: the mix, delayed and band-limited by the room, plus noise."""
        start = k * FRAME - self.lag
        src = np.zeros(FRAME)
        lo = max(0, start)
        src[lo - start :] = self.played[lo : start + FRAME]
        if self.with_music:
            src += music(start, FRAME)
        echo, self.zi = signal.lfilter(self.b, self.a, src, zi=self.zi)
        return echo * GAIN + self.rng.standard_normal(FRAME) * NOISE_RMS


def pcm16(x: np.ndarray) -> np.ndarray:
    return np.clip(np.rint(x), -32768, 32767).astype(np.int16)


async def converse(
    npc: NpcSession, *, with_music: bool = False, send_reference: bool = False, jitter_ms: int = JITTER_MS
) -> list[Message]:
    """Run the room while the NPC answers one long question; returns every event until the reply ends
    (or the NPC barged in on itself), plus a second of quiet afterwards."""
    room = Room(with_music, jitter_ms)
    events: list[Message] = []
    done = asyncio.Event()
    state: dict[str, int | None] = {"turn": None}
    ref_seq = 0

    async def mic() -> None:
        nonlocal ref_seq
        k = 0
        while k < (MAX_S - 1) * 50:
            due = room.t0 + (k + 1) * FRAME / RATE
            delay = due - room.loop.time()
            if delay > 0:
                await asyncio.sleep(delay)
            if send_reference:
                ref_seq += 1
                frame = pcm16(room.rendered(k))
                await npc.client.send(
                    "audio_reference",
                    {"sid": npc.sid, "seq": ref_seq, "sample_rate": RATE, "channels": 1, "samples": FRAME},
                    (frame.tobytes(),),
                )
            await npc.send_audio(pcm16(room.captured(k)), RATE, 1)
            k += 1

    async def listen() -> None:
        while True:
            msg = await npc.events.get()
            if msg.type == "audio_out":
                room.receive(msg)
                continue
            events.append(msg)
            if msg.type == "turn_completed" and msg["interrupted"]:
                room.flush()
            if msg.type == "turn_completed" and msg["turn"] == state["turn"]:
                done.set()
            if msg.type == "turn_started" and msg["source"] == "voice":
                done.set()  # the NPC heard something: a barge-in, the scenario's outcome is known

    tasks = [asyncio.create_task(mic()), asyncio.create_task(listen())]
    try:
        await asyncio.sleep(1.0)  # the mic is live (noise only) before the NPC speaks
        state["turn"] = await npc.text(PROMPT)
        await asyncio.wait_for(done.wait(), 45)
        await asyncio.sleep(1.0)  # the echo's tail must not start a voice turn either
    finally:
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
    assert any(m.type == "bot_started_speaking" for m in events), [m.type for m in events]
    return events


def self_interrupted(events: list[Message], turn: int) -> list[str]:
    """What shows the NPC took its own voice for the player's."""
    signs = [f"voice turn {m['turn']}" for m in events if m.type == "turn_started" and m["source"] == "voice"]
    signs += [f"user_transcript {m['text']!r}" for m in events if m.type == "user_transcript" and m["turn"] != turn]
    signs += [
        f"turn {turn} interrupted"
        for m in events
        if m.type == "turn_completed" and m["turn"] == turn and m["interrupted"]
    ]
    return signs


async def open_live(client: BridgeClient, **options: object) -> NpcSession:
    return await client.open_session(CHARACTER, backend="live", transport="livekit", **options)


@pytest.mark.parametrize("echo_delay_ms", [40, 120])
async def test_npc_does_not_barge_in_on_its_own_echo(daemon: Daemon, client: BridgeClient, echo_delay_ms: int) -> None:
    npc = await open_live(client)  # echo cancellation is on by default on live
    assert daemon.sessions[npc.sid].echo is not None
    events = await converse(npc, jitter_ms=echo_delay_ms - ACOUSTIC_MS)
    turn = next(m["turn"] for m in events if m.type == "turn_started" and m["source"] == "text")
    assert self_interrupted(events, turn) == []
    completed = next(m for m in events if m.type == "turn_completed" and m["turn"] == turn)
    assert completed["interrupted"] is False
    echo = daemon.sessions[npc.sid].echo
    assert echo is not None and echo.stats.mic_frames > 200 and echo.stats.reference_frames == echo.stats.mic_frames


async def test_without_echo_cancellation_the_npc_interrupts_itself(daemon: Daemon, client: BridgeClient) -> None:
    npc = await open_live(client, echo_cancellation=False, noise_suppression=False)
    assert daemon.sessions[npc.sid].echo is None  # off: the mic passes bit-exact
    events = await converse(npc)
    turn = next(m["turn"] for m in events if m.type == "turn_started" and m["source"] == "text")
    assert self_interrupted(events, turn), "the room's echo should reach the server VAD without the canceller"


async def test_engine_reference_cancels_game_music_too(daemon: Daemon, client: BridgeClient) -> None:
    """The engine sends its output mix as audio_reference: NPC voice as played plus music, both cancelled."""
    npc = await open_live(client, noise_suppression=False)  # NS must not be what hides the music
    events = await converse(npc, with_music=True, send_reference=True)
    turn = next(m["turn"] for m in events if m.type == "turn_started" and m["source"] == "text")
    assert self_interrupted(events, turn) == []
    echo = daemon.sessions[npc.sid].echo
    assert echo is not None and echo.stats.client_reference_frames > 200 and echo.client_reference_active
