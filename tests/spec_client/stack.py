"""The real thing, as separate processes: the Convai emulator, and the daemon pointed at it.

The spec client then knows only what a game would: the connection file (§1).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
START_TIMEOUT_S = 60.0


@dataclass
class Stack:
    emulator_url: str
    connection_file: Path
    procs: list[subprocess.Popen[bytes]]
    logs: list[Path]

    def stop(self) -> None:
        for proc in reversed(self.procs):
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for proc in reversed(self.procs):
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(5)

    def daemon_log(self) -> str:
        return self.logs[-1].read_text(encoding="utf-8", errors="replace")


def _wait_for(path: Path, proc: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + START_TIMEOUT_S
    while not path.exists():
        if proc.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError(f"{proc.args} did not start:\n{log.read_text(errors='replace')[-4000:]}")
        time.sleep(0.05)


def start_stack(tmp: Path, *, workers: int = 0, settings: dict[str, int] | None = None) -> Stack:
    """Emulator process, then daemon process; returns once the daemon's connection file exists."""
    from convai_emulator.config import DEV_API_KEY  # test scaffolding, not the client

    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    url_file, emu_log = tmp / "emulator.url", tmp / "emulator.log"
    emu = subprocess.Popen(
        [sys.executable, "-m", "bridge_loadtest.emulator_proc", "--url-file", str(url_file)],
        cwd=ROOT,
        env=env,
        stdout=emu_log.open("wb"),
        stderr=subprocess.STDOUT,
    )
    procs, logs = [emu], [emu_log]
    try:
        _wait_for(url_file, emu, emu_log)
        url = url_file.read_text().strip()
        config = tmp / "daemon.toml"
        config.write_text("".join(f"{k} = {v}\n" for k, v in (settings or {}).items()), encoding="utf-8")
        conn, daemon_log = tmp / "connection.json", tmp / "daemon.log"
        daemon = subprocess.Popen(
            [
                sys.executable, "-m", "bridge.cli", "serve",
                "--endpoint", "tcp://127.0.0.1:0",
                "--connection-file", str(conn),
                "--config", str(config),
                "--rest-url", url,
                "--live-url", url,
                "--workers", str(workers),
                "--metrics-port", "0",
            ],
            cwd=ROOT,
            env={**env, "CONVAI_API_KEY": DEV_API_KEY},
            stdout=daemon_log.open("wb"),
            stderr=subprocess.STDOUT,
        )  # fmt: skip
        procs.append(daemon)
        logs.append(daemon_log)
        _wait_for(conn, daemon, daemon_log)
        deadline = time.monotonic() + START_TIMEOUT_S
        while b"READY" not in daemon_log.read_bytes():  # the file is written just before READY
            if daemon.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"daemon did not start:\n{daemon_log.read_text(errors='replace')[-4000:]}")
            time.sleep(0.05)
        return Stack(url, conn, procs, logs)
    except BaseException:
        Stack("", Path(), procs, logs).stop()
        raise
