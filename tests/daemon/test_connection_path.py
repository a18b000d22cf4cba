"""The default connection file and config directory: one rule for the daemon and every client.

PROTOCOL.md section 1: (1) $CONVAI_BRIDGE_CONNECTION_FILE, (2) $XDG_CONFIG_HOME/convai-bridge when
absolute, (3) %APPDATA%\\convai-bridge on Windows, (4) ~/.config/convai-bridge. The C++ core
(unreal_sample/tests/connection_path_test.cpp) and the C# core test the same table.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import sys
from pathlib import Path

import pytest

from bridge.client import BridgeClient
from bridge.config import load_config, resolve_config_dir, resolve_connection_file

ROOT = Path(__file__).resolve().parents[2]

POSIX_CASES = [
    ({"HOME": "/home/ada"}, "/home/ada/.config/convai-bridge/connection.json"),
    ({"HOME": "/home/ada", "XDG_CONFIG_HOME": "/xdg"}, "/xdg/convai-bridge/connection.json"),
    ({"HOME": "/home/ada", "XDG_CONFIG_HOME": "rel/xdg"}, "/home/ada/.config/convai-bridge/connection.json"),
    ({"HOME": "/home/ada", "XDG_CONFIG_HOME": ""}, "/home/ada/.config/convai-bridge/connection.json"),
    ({"HOME": "/home/ada", "XDG_CONFIG_HOME": "/xdg", "CONVAI_BRIDGE_CONNECTION_FILE": "/run/c.json"}, "/run/c.json"),
    ({"HOME": "/home/ada", "CONVAI_BRIDGE_CONNECTION_FILE": ""}, "/home/ada/.config/convai-bridge/connection.json"),
    # APPDATA means nothing outside Windows
    ({"HOME": "/home/ada", "APPDATA": "/appdata"}, "/home/ada/.config/convai-bridge/connection.json"),
]

WINDOWS_CASES = [
    ({"APPDATA": "C:\\Users\\ada\\Roaming"}, "C:\\Users\\ada\\Roaming\\convai-bridge\\connection.json"),
    ({"APPDATA": "C:\\Roaming", "XDG_CONFIG_HOME": "D:\\xdg"}, "D:\\xdg\\convai-bridge\\connection.json"),
    ({"APPDATA": "C:\\Roaming", "XDG_CONFIG_HOME": "xdg"}, "C:\\Roaming\\convai-bridge\\connection.json"),
    ({"APPDATA": "C:\\Roaming", "CONVAI_BRIDGE_CONNECTION_FILE": "E:\\c.json"}, "E:\\c.json"),
    ({"USERPROFILE": "C:\\Users\\ada"}, "C:\\Users\\ada\\.config\\convai-bridge\\connection.json"),
]


@pytest.mark.parametrize(("env", "expected"), POSIX_CASES)
def test_posix_rule(env: dict[str, str], expected: str) -> None:
    assert str(resolve_connection_file(env, windows=False)) == expected


@pytest.mark.parametrize(("env", "expected"), WINDOWS_CASES)
def test_windows_rule(env: dict[str, str], expected: str) -> None:
    assert str(resolve_connection_file(env, windows=True)) == expected


def test_config_dir_skips_the_connection_file_override() -> None:
    env = {"HOME": "/home/ada", "XDG_CONFIG_HOME": "/xdg", "CONVAI_BRIDGE_CONNECTION_FILE": "/run/c.json"}
    assert str(resolve_config_dir(env, windows=False)) == "/xdg/convai-bridge"
    env = {"APPDATA": "C:\\Roaming", "CONVAI_BRIDGE_CONNECTION_FILE": "E:\\c.json"}
    assert str(resolve_config_dir(env, windows=True)) == "C:\\Roaming\\convai-bridge"


def test_load_config_follows_the_rule(tmp_path: Path) -> None:
    xdg = tmp_path / "xdg"
    (xdg / "convai-bridge").mkdir(parents=True)
    (xdg / "convai-bridge" / "config.toml").write_text("[daemon]\nmax_sessions = 7\n")
    cfg = load_config(env={"XDG_CONFIG_HOME": str(xdg), "HOME": str(tmp_path / "home")})
    assert cfg.max_sessions == 7  # config.toml found through XDG_CONFIG_HOME
    assert cfg.connection_file == xdg / "convai-bridge" / "connection.json"

    explicit = tmp_path / "run" / "c.json"
    env = {"XDG_CONFIG_HOME": str(xdg), "CONVAI_BRIDGE_CONNECTION_FILE": str(explicit)}
    cfg = load_config(env=env)
    assert cfg.max_sessions == 7 and cfg.connection_file == explicit

    other = tmp_path / "other.toml"
    other.write_text("[daemon]\nmax_sessions = 3\n")
    cfg = load_config(env={"XDG_CONFIG_HOME": str(xdg), "CONVAI_BRIDGE_CONFIG": str(other)})
    assert cfg.max_sessions == 3  # CONVAI_BRIDGE_CONFIG still names the config file


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


async def _serve_and_talk(env: dict[str, str], expected: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Start the real daemon without --connection-file; the Python client must find it by the same rule."""
    endpoint = f"tcp://127.0.0.1:{_free_port()}"
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bridge.cli", "serve", "--emulator", "--endpoint", endpoint,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.DEVNULL, cwd=ROOT, env=env,
    )  # fmt: skip
    assert proc.stdout is not None
    try:
        while True:
            line = (await asyncio.wait_for(proc.stdout.readline(), 30)).decode()
            assert line, "daemon exited before READY"
            if line.startswith("READY "):
                break
        assert json.loads(expected.read_text())["endpoint"] == endpoint
        for key in ("CONVAI_BRIDGE_CONNECTION_FILE", "XDG_CONFIG_HOME", "HOME"):
            if key in env:
                monkeypatch.setenv(key, env[key])
            else:
                monkeypatch.delenv(key, raising=False)
        client = await BridgeClient.connect()  # no path: the default rule
        assert client.welcome["instance_id"]
        await client.close()
    finally:
        proc.send_signal(signal.SIGTERM)
        await asyncio.wait_for(proc.wait(), 20)
    assert not expected.exists(), "a clean exit removes the connection file"


async def test_daemon_writes_where_clients_look(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    base = {k: v for k, v in os.environ.items() if k not in ("CONVAI_BRIDGE_CONNECTION_FILE", "XDG_CONFIG_HOME")}
    base["HOME"] = str(tmp_path / "home")

    xdg = tmp_path / "xdg"
    await _serve_and_talk({**base, "XDG_CONFIG_HOME": str(xdg)}, xdg / "convai-bridge" / "connection.json", monkeypatch)

    explicit = tmp_path / "elsewhere" / "bridge.json"
    env = {**base, "XDG_CONFIG_HOME": str(xdg), "CONVAI_BRIDGE_CONNECTION_FILE": str(explicit)}
    await _serve_and_talk(env, explicit, monkeypatch)

    # No XDG, relative XDG: ~/.config
    env = {**base, "XDG_CONFIG_HOME": "relative/dir"}
    await _serve_and_talk(env, tmp_path / "home" / ".config" / "convai-bridge" / "connection.json", monkeypatch)
