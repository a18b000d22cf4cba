"""Emulator and daemon as separate OS processes, so a benchmark measures each one's own cost.

In one process the emulator's bot, the daemon and the load generator would share an event loop and a
core, and every latency would include the others' work.
"""

from __future__ import annotations

import contextlib
import json
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from convai_emulator.server import DEV_API_KEY

ROOT = Path(__file__).resolve().parents[1]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _wait_http(url: str, proc: subprocess.Popen[bytes], timeout: float = 30.0) -> None:
    import urllib.request

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError("emulator exited during start-up")
        with contextlib.suppress(OSError):
            with urllib.request.urlopen(url + "/healthz", timeout=1) as resp:
                if resp.status == 200:
                    return
        time.sleep(0.1)
    raise TimeoutError("emulator did not become healthy")


@dataclass
class Stack:
    emulator_url: str
    endpoint: str
    token: str
    connection_file: Path
    emulator: subprocess.Popen[bytes]
    daemon: subprocess.Popen[bytes]


def _stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)


@contextlib.contextmanager
def stack(extra_daemon_args: tuple[str, ...] = ()) -> Iterator[Stack]:
    """An emulator process and a daemon process pointed at it, both on loopback."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    emulator = subprocess.Popen(
        [sys.executable, "-m", "bridge.cli", "emulator", "--port", str(port)],
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        _wait_http(url, emulator)
        with tempfile.TemporaryDirectory() as tmp:
            conn = Path(tmp) / "connection.json"
            endpoint = f"tcp://127.0.0.1:{free_port()}"
            daemon = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "bridge.cli",
                    "serve",
                    "--endpoint",
                    endpoint,
                    "--connection-file",
                    str(conn),
                    "--rest-url",
                    url,
                    "--live-url",
                    url,
                    "--log-level",
                    "WARNING",
                    *extra_daemon_args,
                ],
                cwd=ROOT,
                stdout=subprocess.PIPE,
                stderr=subprocess.DEVNULL,
                env={**__import__("os").environ, "CONVAI_API_KEY": DEV_API_KEY},
            )
            try:
                assert daemon.stdout is not None
                deadline = time.monotonic() + 30
                while time.monotonic() < deadline:
                    line = daemon.stdout.readline().decode()
                    if not line:
                        raise RuntimeError("daemon exited during start-up")
                    if line.startswith("READY"):
                        break
                info = json.loads(conn.read_text())
                yield Stack(url, info["endpoint"], info["token"], conn, emulator, daemon)
            finally:
                _stop(daemon)
    finally:
        _stop(emulator)
