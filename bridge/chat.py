"""Chat with a character through the daemon from a terminal.

Streams the reply as it arrives, shows emotion and actions, and can save the bot's audio to a WAV.
Lines starting with / are commands: /trigger NAME [message], /interrupt, /quit.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import sys
import tempfile
from pathlib import Path

import numpy as np

from bridge.audio.wav import write_wav_file
from bridge.client import BridgeClient, BridgeError, NpcSession

RATE = 24000


async def _read_line(prompt: str) -> str | None:
    loop = asyncio.get_running_loop()
    try:
        return await loop.run_in_executor(None, lambda: input(prompt))
    except EOFError:
        return None


async def _print_turn(npc: NpcSession, turn: int, audio: list[np.ndarray]) -> None:
    printed = False
    while True:
        msg = await npc.next_event(timeout=60)
        if msg.get("turn") not in (None, turn):
            continue
        if msg.type == "bot_text":
            if not printed:
                print("npc> ", end="")
                printed = True
            print(msg["text"], end="", flush=True)
        elif msg.type == "emotion":
            print(f"\n  [emotion: {msg['name']} ({msg['scale']})]", end="")
        elif msg.type == "actions":
            acts = ", ".join(" ".join(filter(None, (a["name"], a.get("target")))) for a in msg["actions"])
            print(f"\n  [actions: {acts}]", end="")
        elif msg.type == "narrative":
            print(f"\n  [narrative section: {msg['section_id']}]", end="")
        elif msg.type == "audio_out":
            audio.append(np.frombuffer(msg.frames[0], dtype="<i2"))
        elif msg.type == "error":
            print(f"\n  [error {msg['code']}: {msg['message']}]", end="")
        elif msg.type == "turn_completed":
            print(" [interrupted]" if msg["interrupted"] else "")
            return


async def chat(args: argparse.Namespace) -> int:
    async with contextlib.AsyncExitStack() as stack:
        if args.emulator:
            from bridge.config import Config, Secret
            from bridge.daemon.router import Daemon
            from convai_emulator.server import DEV_API_KEY, Emulator, EmulatorConfig

            emu = await stack.enter_async_context(Emulator(EmulatorConfig(host="127.0.0.1", port=0)))
            tmp = stack.enter_context(tempfile.TemporaryDirectory())
            daemon = Daemon(
                Config(
                    endpoint="tcp://127.0.0.1:0",
                    connection_file=Path(tmp) / "connection.json",
                    api_key=Secret(DEV_API_KEY),
                    rest_url=emu.rest_url,
                    live_url=emu.live_url,
                )
            )
            await daemon.start()
            stack.push_async_callback(daemon.stop)
            client = await BridgeClient.connect(daemon.endpoint, daemon.token, name="convai-bridge-chat")
        else:
            client = await BridgeClient.connect(connection_file=args.connection_file, name="convai-bridge-chat")
        stack.push_async_callback(client.close)
        try:
            npc = await client.open_session(
                args.character,
                backend=args.backend,
                audio={"sample_rate": RATE, "channels": 1, "frame_ms": 20},
                voice=args.save_audio is not None,
            )
        except BridgeError as exc:
            print(f"could not open a session: {exc}", file=sys.stderr)
            return 1
        print(f"connected to {args.character} via {args.backend}; /quit to leave")
        audio: list[np.ndarray] = []
        while True:
            line = await _read_line("you> ")
            if line is None or line.strip() == "/quit":
                break
            line = line.strip()
            if not line:
                continue
            try:
                if line == "/interrupt":
                    await npc.interrupt()
                    continue
                if line.startswith("/trigger "):
                    name, _, message = line[len("/trigger ") :].partition(" ")
                    turn = await npc.trigger(name, message or None)
                else:
                    turn = await npc.text(line)
                await _print_turn(npc, turn, audio)
            except BridgeError as exc:
                print(f"  [error {exc.code}: {exc.message}]")
        if args.save_audio and audio:
            write_wav_file(args.save_audio, np.concatenate(audio), RATE, 1)
            print(f"audio saved to {args.save_audio}")
    return 0


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--character", default="c0ffee00-0000-4000-8000-000000000001")
    parser.add_argument("--backend", default="live", choices=["live", "interaction", "stream"])
    parser.add_argument("--connection-file", type=Path, help="of a running daemon (default: the user's config dir)")
    parser.add_argument("--emulator", action="store_true", help="start an emulator and a daemon just for this chat")
    parser.add_argument("--save-audio", type=Path, metavar="WAV", help="save the character's audio")


def run(args: argparse.Namespace) -> int:
    return asyncio.run(chat(args))
