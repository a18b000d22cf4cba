"""What a load run talks to: a local emulator + daemon it starts itself, an existing daemon, or real Convai.

Default (``LocalStack``): the emulator and the daemon run as two child processes (``emulator_proc``
and ``convai-bridge serve``), so their CPU is separate from the load generator's and from each
other's; ``emulator="embedded"`` runs ``convai-bridge serve --emulator`` instead (one process).
The children get a scrubbed environment (no ``CONVAI_*``) and an empty config file, so a local run
can never reach real Convai by accident.

Real Convai costs money. It is used only when asked for twice: ``real=True`` *and* ``allow_real``.
An existing daemon (``--connection-file``) is accepted without ``allow_real`` only when its command
line shows it runs against the emulator (``--emulator``, or loopback ``--rest-url``/``--live-url``).
"""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlparse

from bridge_loadtest.procstat import PROC, alive

STARTUP_TIMEOUT_S = 30.0
STOP_TIMEOUT_S = 10.0


class TargetError(RuntimeError):
    pass


@dataclass
class Target:
    endpoint: str
    token: str
    kind: str  # emulator | existing | real
    daemon_pid: int | None = None
    emulator_pid: int | None = None
    description: str = ""
    log_dir: Path | None = None

    def pids(self) -> dict[str, int]:
        out = {}
        if self.daemon_pid:
            out["daemon"] = self.daemon_pid
        if self.emulator_pid and self.emulator_pid != self.daemon_pid:
            out["emulator"] = self.emulator_pid
        return out


def cost_warning(npcs: int, duration_s: float, backend: str) -> str:
    minutes = npcs * duration_s / 60.0
    return (
        f"WARNING: this load test talks to REAL Convai: {npcs} NPC(s) for {duration_s:g} s on the '{backend}' "
        f"backend, about {minutes:.1f} session-minutes plus an LLM + TTS call per turn. This uses your Convai "
        "quota and may cost money. Press Ctrl-C now to abort."
    )


def _scrubbed_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CONVAI_")}
    env.update(extra or {})
    return env


def _wait_for_file(path: Path, proc: subprocess.Popen[bytes], what: str, log: Path, timeout: float) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if path.exists():
            text = path.read_text(encoding="utf-8").strip()
            if text:
                return text
        if proc.poll() is not None:
            break
        time.sleep(0.05)
    tail = log.read_text(encoding="utf-8", errors="replace")[-3000:] if log.exists() else ""
    state = f"exited with {proc.returncode}" if proc.poll() is not None else f"not ready after {timeout:g} s"
    raise TargetError(f"{what} {state}; its log ({log}):\n{tail}")


def _stop(proc: subprocess.Popen[bytes] | None) -> None:
    if proc is None or proc.poll() is not None:
        return
    proc.terminate()
    try:
        proc.wait(timeout=STOP_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=STOP_TIMEOUT_S)


class LocalStack:
    """Starts emulator + daemon (or a daemon for real Convai) as child processes; a context manager."""

    def __init__(
        self,
        *,
        emulator: str = "separate",
        max_sessions: int = 1000,
        workers: int | None = None,
        daemon_args: list[str] | None = None,
        workdir: Path | None = None,
        real: bool = False,
        allow_real: bool = False,
        log_level: str = "WARNING",
        startup_timeout_s: float = STARTUP_TIMEOUT_S,
    ) -> None:
        if emulator not in ("separate", "embedded"):
            raise ValueError("emulator must be 'separate' or 'embedded'")
        if real and not allow_real:
            raise TargetError("refusing to load-test real Convai without --allow-real")
        self.emulator = emulator
        self.max_sessions = max_sessions
        self.workers = workers
        self.daemon_args = list(daemon_args or [])
        self.real = real
        self.log_level = log_level
        self.startup_timeout_s = startup_timeout_s
        self._tmp: tempfile.TemporaryDirectory[str] | None = None
        self.workdir = workdir
        self.daemon: subprocess.Popen[bytes] | None = None
        self.emu: subprocess.Popen[bytes] | None = None
        self.target: Target | None = None

    def __enter__(self) -> Target:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def start(self) -> Target:
        if self.workdir is None:
            self._tmp = tempfile.TemporaryDirectory(prefix="convai-loadtest-")
            self.workdir = Path(self._tmp.name)
        self.workdir.mkdir(parents=True, exist_ok=True)
        try:
            return self._start(self.workdir)
        except BaseException:
            self.stop()
            raise

    def _start(self, work: Path) -> Target:
        conn = work / "connection.json"
        conn.unlink(missing_ok=True)
        daemon_cmd = [
            sys.executable, "-m", "bridge.cli", "serve",
            "--endpoint", "tcp://127.0.0.1:0",
            "--connection-file", str(conn),
            "--max-sessions", str(self.max_sessions),
            "--log-level", self.log_level,
            "--metrics-port", "0",  # several stacks (tests, Locust workers) must not fight over one port
        ]  # fmt: skip
        if self.workers is not None:
            daemon_cmd += ["--workers", str(self.workers)]
        emulator_pid = None
        if self.real:
            env = dict(os.environ)
            kind, desc = "real", "daemon → real Convai"
        else:
            daemon_cmd += ["--config", str(work / "no-config.toml")]
            if self.emulator == "embedded":
                daemon_cmd.append("--emulator")
                env = _scrubbed_env()
                desc = "daemon + embedded emulator (one process)"
            else:
                from convai_emulator.config import DEV_API_KEY

                url_file = work / "emulator.url"
                url_file.unlink(missing_ok=True)
                emu_log = work / "emulator.log"
                with emu_log.open("wb") as log:
                    self.emu = subprocess.Popen(
                        [sys.executable, "-m", "bridge_loadtest.emulator_proc", "--url-file", str(url_file)],
                        env=_scrubbed_env(),
                        stdout=log,
                        stderr=subprocess.STDOUT,
                        stdin=subprocess.DEVNULL,
                    )
                url = _wait_for_file(url_file, self.emu, "emulator", emu_log, self.startup_timeout_s)
                emulator_pid = self.emu.pid
                daemon_cmd += ["--rest-url", url, "--live-url", url]
                # The emulator's public development key; it unlocks nothing but the local emulator.
                env = _scrubbed_env({"CONVAI_API_KEY": DEV_API_KEY})
                desc = f"daemon + emulator (two processes, emulator at {url})"
            kind = "emulator"
        daemon_cmd += self.daemon_args
        daemon_log = work / "daemon.log"
        with daemon_log.open("wb") as log:
            self.daemon = subprocess.Popen(
                daemon_cmd, env=env, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL
            )
        _wait_for_file(conn, self.daemon, "daemon", daemon_log, self.startup_timeout_s)
        info = json.loads(conn.read_text(encoding="utf-8"))
        self.target = Target(
            endpoint=info["endpoint"],
            token=info["token"],
            kind=kind,
            daemon_pid=self.daemon.pid,
            emulator_pid=emulator_pid or (self.daemon.pid if self.emulator == "embedded" and not self.real else None),
            description=desc,
            log_dir=work,
        )
        return self.target

    def stop(self) -> None:
        _stop(self.daemon)
        _stop(self.emu)
        self.daemon = self.emu = None
        if self._tmp is not None:
            self._tmp.cleanup()
            self._tmp = None

    def daemon_alive(self) -> bool:
        return self.daemon is not None and self.daemon.poll() is None


def _loopback_url(url: str) -> bool:
    host = urlparse(url).hostname or ""
    return host in ("localhost", "::1") or host.startswith("127.")


def runs_emulator(pid: int) -> bool | None:
    """Whether daemon ``pid`` was started against the emulator; None when that cannot be seen."""
    try:
        args = (PROC / str(pid) / "cmdline").read_bytes().split(b"\0")
    except OSError:
        return None
    argv = [a.decode(errors="replace") for a in args if a]
    if "--emulator" in argv:
        return True
    urls: dict[str, str] = {}
    for i, arg in enumerate(argv):
        for flag in ("--rest-url", "--live-url"):
            if arg == flag and i + 1 < len(argv):
                urls[flag] = argv[i + 1]
            elif arg.startswith(flag + "="):
                urls[flag] = arg.split("=", 1)[1]
    return len(urls) == 2 and all(_loopback_url(u) for u in urls.values())


def existing_target(connection_file: Path, *, allow_real: bool) -> Target:
    """A daemon someone else started; refused unless it visibly runs the emulator or ``allow_real``."""
    try:
        info = json.loads(Path(connection_file).read_text(encoding="utf-8"))
        endpoint, token = str(info["endpoint"]), str(info["token"])
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise TargetError(f"cannot read connection file {connection_file}: {exc}") from exc
    pid = info.get("pid") if isinstance(info.get("pid"), int) else None
    local = pid is not None and alive(pid) and endpoint.startswith(("tcp://127.", "tcp://localhost", "ipc://"))
    emulated = runs_emulator(pid) if local and pid is not None else None
    if not emulated and not allow_real:
        raise TargetError(
            f"cannot tell whether the daemon at {endpoint} (pid {pid}) uses the emulator or real Convai; "
            "if it is real, this load costs money. Pass --allow-real to proceed."
        )
    return Target(
        endpoint=endpoint,
        token=token,
        kind="existing" if emulated else "real",
        daemon_pid=pid if local else None,
        description=f"existing daemon {endpoint}" + (" (emulator)" if emulated else " (upstream unknown)"),
    )


def split_args(text: str | None) -> list[str]:
    return shlex.split(text) if text else []
