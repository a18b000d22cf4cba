"""The console script as users run it: serve (with restart), demo, chat — real processes, real sockets."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

from bridge.client import BridgeClient
from tests.conftest import CHARACTER

EXE = [sys.executable, "-m", "bridge.cli"]
ROOT = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


async def start_serve(endpoint: str, conn: Path) -> asyncio.subprocess.Process:
    proc = await asyncio.create_subprocess_exec(
        *EXE,
        "serve",
        "--emulator",
        "--endpoint",
        endpoint,
        "--connection-file",
        str(conn),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.DEVNULL,
        cwd=ROOT,
    )
    assert proc.stdout is not None
    while True:
        line = (await asyncio.wait_for(proc.stdout.readline(), 30)).decode()
        assert line, "daemon exited before READY"
        if line.startswith("READY "):
            assert line.split()[1] == endpoint
            return proc


async def stop(proc: asyncio.subprocess.Process) -> int:
    proc.send_signal(signal.SIGTERM)
    return await asyncio.wait_for(proc.wait(), 20)


async def test_serve_writes_connection_file_and_survives_restart(tmp_path: Path) -> None:
    endpoint = f"tcp://127.0.0.1:{free_port()}"
    conn = tmp_path / "connection.json"
    proc = await start_serve(endpoint, conn)
    try:
        assert oct(conn.stat().st_mode & 0o777) == "0o600"
        client = await BridgeClient.connect(connection_file=conn)
        first_instance = client.welcome["instance_id"]
        npc = await client.open_session(CHARACTER, backend="stream")
        turn = await npc.text("Hello, I am Rook.")
        await npc.collect_turn(turn, timeout=20)
        await client.close()
        assert await stop(proc) == 0
        assert not conn.exists(), "a clean exit removes the connection file"
        proc = await start_serve(endpoint, conn)
        client = await BridgeClient.connect(connection_file=conn)
        assert client.welcome["instance_id"] != first_instance
        npc = await client.open_session(CHARACTER, backend="stream")
        turn = await npc.text("Hello again.")
        events = await npc.collect_turn(turn, timeout=20)
        assert any(m.type == "bot_reply" for m in events)
        await client.close()
    finally:
        if proc.returncode is None:
            await stop(proc)


def test_every_verb_has_help() -> None:
    for verb in ("serve", "emulator", "chat", "demo"):
        out = subprocess.run([*EXE, verb, "--help"], capture_output=True, text=True, cwd=ROOT, timeout=60)
        assert out.returncode == 0 and "usage:" in out.stdout, verb


def test_demo_runs_a_two_npc_live_conversation(tmp_path: Path) -> None:
    out = subprocess.run([*EXE, "demo", "--out", str(tmp_path)], capture_output=True, text=True, cwd=ROOT, timeout=240)
    assert out.returncode == 0, out.stdout[-2000:] + out.stderr[-2000:]
    text = out.stdout
    assert "backend live" in text
    assert "[blacksmith] NPC: Your name is Ada." in text
    assert "Bram" in text.split("Do you remember my name?")[1]
    assert "actions: Move To cube, Pick Up cube" in text
    assert "emotion:" in text and "first audio" in text
    for name in ("blacksmith", "guard"):
        wav = tmp_path / f"{name}.wav"
        assert wav.stat().st_size > 48000 * 2 * 3  # several seconds of 48 kHz speech


def test_chat_streams_reply_and_saves_audio(tmp_path: Path) -> None:
    wav = tmp_path / "chat.wav"
    out = subprocess.run(
        [*EXE, "chat", "--emulator", "--backend", "live", "--save-audio", str(wav)],
        input="My name is Wren.\nCould you grab the cube?\nWhat is my name?\n/quit\n",
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=120,
    )
    assert out.returncode == 0, out.stderr[-2000:]
    assert "actions: Move To cube" in out.stdout
    assert "Your name is Wren." in out.stdout
    assert wav.stat().st_size > 24000 * 2


def test_api_key_from_env_never_printed(tmp_path: Path) -> None:
    secret = "sk-do-not-print-me-98765"
    env = {
        **os.environ,
        "CONVAI_API_KEY": secret,
        "CONVAI_REST_URL": "http://127.0.0.1:9",
        "CONVAI_LIVE_URL": "http://127.0.0.1:9",
    }
    endpoint = f"tcp://127.0.0.1:{free_port()}"
    conn = tmp_path / "c.json"

    async def scenario() -> str:
        proc = await asyncio.create_subprocess_exec(
            *EXE,
            "serve",
            "--endpoint",
            endpoint,
            "--connection-file",
            str(conn),
            "--log-level",
            "DEBUG",
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
            cwd=ROOT,
            env=env,
        )
        try:
            assert proc.stdout is not None
            lines = []
            while True:
                line = (await asyncio.wait_for(proc.stdout.readline(), 30)).decode()
                lines.append(line)
                if line.startswith("READY"):
                    break
            client = await BridgeClient.connect(connection_file=conn)
            # The character lookup is optional (it never prevents a session); the first turn reaches
            # Convai, fails, and its error must not carry the key.
            npc = await client.open_session(CHARACTER, backend="interaction")
            await npc.text("hello")
            while True:
                event = await npc.next_event(timeout=60)
                lines.append(repr(event))
                if event.type == "error" or event.type == "turn_completed":
                    break
            await client.close()
            proc.send_signal(signal.SIGTERM)
            rest = await asyncio.wait_for(proc.stdout.read(), 20)
            await proc.wait()
            left = conn.read_text() if conn.exists() else ""
            return "".join(lines) + rest.decode() + left
        finally:
            if proc.returncode is None:
                proc.kill()
                await proc.wait()

    output = asyncio.run(scenario())
    assert "convai_unreachable" in output
    assert secret not in output
    assert secret not in json.dumps(os.listdir(tmp_path))
