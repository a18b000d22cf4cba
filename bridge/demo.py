"""Run the emulator and the daemon, then two NPCs holding a scripted conversation at once.

Everything is local: the emulator plays Convai, the daemon bridges, and this process is the "engine"
speaking protocol v1 over ZeroMQ. Prints the transcript with per-turn latencies and writes each
NPC's received audio as a WAV file.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from bridge.audio.wav import write_wav_file
from bridge.client import BridgeClient, NpcSession
from bridge.config import Config, Secret
from bridge.daemon.router import Daemon
from bridge.wire.codec import Message

BLACKSMITH = "c0ffee00-0000-4000-8000-000000000001"
GUARD = "c0ffee00-0000-4000-8000-000000000002"
OUT_RATE = 48000

# (kind, text): "text" turns are typed; "voice" turns are spoken by a synthesized player voice.
SCRIPTS = {
    "blacksmith": [
        ("text", "Hello! My name is Ada."),
        ("text", "Could you grab the cube for me?"),
        ("voice", "Thank you, that is wonderful."),
        ("text", "What is my name?"),
    ],
    "guard": [
        ("text", "Good evening. I am Bram, a traveller."),
        ("text", "Help! A dragon is attacking the gate!"),
        ("voice", "Where can I find the inn?"),
        ("text", "Do you remember my name?"),
    ],
}
ACTIONS = {
    "actions": ["Move To", "Pick Up", "Wave", "Follow", "Draw Sword"],
    "objects": [{"name": "cube", "description": "a red cube on the workbench"}],
}


@dataclass
class TurnLog:
    npc: str
    kind: str
    said: str
    heard: str = ""
    reply: str = ""
    actions: list[str] = field(default_factory=list)
    emotion: str = ""
    first_text_ms: float | None = None
    first_audio_ms: float | None = None
    total_ms: float = 0.0
    audio_s: float = 0.0
    interrupted: bool = False


async def player_voice(text: str, rate: int = 16000) -> np.ndarray:
    from convai_emulator.voice import VoiceSpec, synthesize_async

    return await synthesize_async(text, VoiceSpec(name="en-gb", pitch=60, speed=170), rate)


async def run_turn(npc: NpcSession, name: str, kind: str, text: str, audio_sink: list[np.ndarray]) -> TurnLog:
    log = TurnLog(name, kind, text)
    start = time.perf_counter()
    if kind == "text":
        turn = await npc.text(text)
    else:
        speech = await player_voice(text)
        await npc.stream_audio(speech, 16000, frame_ms=20)
        start = time.perf_counter()  # latency counts from the end of the utterance
        turn = await npc.end_of_utterance()
    while True:
        msg: Message = await npc.next_event(timeout=60)
        elapsed = (time.perf_counter() - start) * 1000
        if msg.get("turn") not in (None, turn) and msg.type != "session_state":
            continue
        if msg.type == "user_transcript" and msg["final"]:
            log.heard = msg["text"]
        elif msg.type == "bot_text" and log.first_text_ms is None:
            log.first_text_ms = elapsed
        elif msg.type == "bot_reply":
            log.reply = msg["text"]
        elif msg.type == "actions":
            log.actions = [" ".join(filter(None, (a["name"], a.get("target")))) for a in msg["actions"]]
        elif msg.type == "emotion":
            log.emotion = f"{msg['name']} ({msg['scale']})"
        elif msg.type == "audio_out":
            if log.first_audio_ms is None:
                log.first_audio_ms = elapsed
            pcm = np.frombuffer(msg.frames[0], dtype="<i2")
            audio_sink.append(pcm)
            log.audio_s += msg["samples"] / msg["sample_rate"]
        elif msg.type == "error":
            log.reply = f"[error {msg['code']}: {msg['message']}]"
        elif msg.type == "turn_completed":
            log.total_ms = elapsed
            log.interrupted = msg["interrupted"]
            return log


async def run_npc(client: BridgeClient, name: str, character: str, backend: str, out_dir: Path) -> list[TurnLog]:
    npc = await client.open_session(
        character,
        backend=backend,
        label=name,
        action_config=ACTIONS,
        audio={"sample_rate": OUT_RATE, "channels": 1, "frame_ms": 20},
        lipsync={"provider": "visemes", "fps": 60},
    )
    audio: list[np.ndarray] = []
    logs = []
    for kind, text in SCRIPTS[name]:
        if backend == "stream":
            kind = "text"  # the SSE surface has no audio
        logs.append(await run_turn(npc, name, kind, text, audio))
    await npc.close()
    if audio:
        write_wav_file(out_dir / f"{name}.wav", np.concatenate(audio), OUT_RATE, 1)
    return logs


def print_transcript(logs: list[TurnLog], out_dir: Path) -> None:
    def ms(v: float | None) -> str:
        return "-" if v is None else f"{v:.0f}"

    for log in logs:
        tag = "says" if log.kind == "text" else "speaks"
        print(f"[{log.npc}] player {tag}: {log.said}")
        if log.kind == "voice" and log.heard:
            print(f"[{log.npc}]   (heard as: {log.heard})")
        print(f"[{log.npc}] NPC: {log.reply}")
        extras = []
        if log.actions:
            extras.append("actions: " + ", ".join(log.actions))
        if log.emotion:
            extras.append("emotion: " + log.emotion)
        if extras:
            print(f"[{log.npc}]   " + "; ".join(extras))
        print(
            f"[{log.npc}]   latency: first text {ms(log.first_text_ms)} ms, first audio {ms(log.first_audio_ms)} ms,"
            f" turn {log.total_ms:.0f} ms, audio {log.audio_s:.2f} s"
        )
    print(f"audio written to {out_dir}/")


async def demo(backend: str, out_dir: Path) -> int:
    from convai_emulator.server import DEV_API_KEY, Emulator, EmulatorConfig

    out_dir.mkdir(parents=True, exist_ok=True)
    async with Emulator(EmulatorConfig(host="127.0.0.1", port=0)) as emu:
        with tempfile.TemporaryDirectory() as tmp:
            config = Config(
                endpoint="tcp://127.0.0.1:0",
                connection_file=Path(tmp) / "connection.json",
                api_key=Secret(DEV_API_KEY),
                rest_url=emu.rest_url,
                live_url=emu.live_url,
            )
            daemon = Daemon(config)
            await daemon.start()
            print(f"emulator {emu.rest_url}  daemon {daemon.endpoint}  backend {backend}")
            client = await BridgeClient.connect(daemon.endpoint, daemon.token, name="convai-bridge-demo")
            try:
                results = await asyncio.gather(
                    run_npc(client, "blacksmith", BLACKSMITH, backend, out_dir),
                    run_npc(client, "guard", GUARD, backend, out_dir),
                )
            finally:
                await client.close()
                with contextlib.suppress(Exception):
                    await daemon.stop()
    logs = [log for pair in zip(*results, strict=True) for log in pair]
    print_transcript(logs, out_dir)
    failed = [log for log in logs if not log.reply or log.reply.startswith("[error")]
    return 1 if failed else 0


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--backend", default="live", choices=["live", "interaction", "stream"])
    parser.add_argument("--out", type=Path, default=Path("out/demo"), help="where to write the NPCs' audio")


def run(args: argparse.Namespace) -> int:
    return asyncio.run(demo(args.backend, args.out))
