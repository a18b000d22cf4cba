"""Daemon configuration from flags, a TOML file and the environment (in that order of precedence).

The Convai API key is held in a `Secret` so that it cannot leak through repr(), logs or error text;
it is read only where a request to Convai is built.
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path, PurePath, PurePosixPath, PureWindowsPath
from typing import Any

CONVAI_REST_URL = "https://api.convai.com"
CONVAI_LIVE_URL = "https://live.convai.com"
DEFAULT_ENDPOINT = "tcp://127.0.0.1:7300"


class Secret:
    """A string that prints as [redacted]."""

    __slots__ = ("_value",)

    def __init__(self, value: str | None) -> None:
        self._value = value or None

    def reveal(self) -> str | None:
        return self._value

    def __bool__(self) -> bool:
        return bool(self._value)

    def __repr__(self) -> str:
        return "Secret([redacted])" if self._value else "Secret(None)"

    __str__ = __repr__


def _config_base(env: Mapping[str, str], windows: bool) -> PurePath:
    """The one rule every client shares (PROTOCOL.md section 1): XDG, then %APPDATA% on Windows, then ~/.config."""
    flavour: type[PurePath] = PureWindowsPath if windows else PurePosixPath
    xdg = env.get("XDG_CONFIG_HOME", "")
    if xdg and flavour(xdg).is_absolute():  # a relative XDG_CONFIG_HOME is ignored, as the XDG spec says
        return flavour(xdg)
    if windows and env.get("APPDATA"):
        return flavour(env["APPDATA"])
    home = env.get("USERPROFILE" if windows else "HOME", "") or str(Path.home())
    return flavour(home) / ".config"


def resolve_config_dir(env: Mapping[str, str], *, windows: bool) -> PurePath:
    """The daemon's config directory (config.toml) for this environment and OS flavour."""
    return _config_base(env, windows) / "convai-bridge"


def resolve_connection_file(env: Mapping[str, str], *, windows: bool) -> PurePath:
    """Where the daemon writes, and clients look for, connection.json."""
    explicit = env.get("CONVAI_BRIDGE_CONNECTION_FILE", "")
    if explicit:
        return (PureWindowsPath if windows else PurePosixPath)(explicit)
    return resolve_config_dir(env, windows=windows) / "connection.json"


def config_dir() -> Path:
    return Path(resolve_config_dir(os.environ, windows=os.name == "nt"))


def default_connection_file() -> Path:
    return Path(resolve_connection_file(os.environ, windows=os.name == "nt"))


@dataclass
class Config:
    endpoint: str = DEFAULT_ENDPOINT
    connection_file: Path = field(default_factory=default_connection_file)
    api_key: Secret = field(default_factory=lambda: Secret(None))
    rest_url: str = CONVAI_REST_URL
    live_url: str = CONVAI_LIVE_URL
    allow_remote: bool = False
    max_message_bytes: int = 1 << 20
    max_sessions: int = 64
    heartbeat_ms: int = 2000
    client_timeout_ms: int = 10000
    max_audio_in_ms: int = 2000
    audio_lead_ms: int = 100
    audio_prebuffer_ms: int = 60  # a turn's first audio_out waits until this much is queued (live)
    request_timeout_s: float = 30.0
    max_retries: int = 3
    retry_base_s: float = 0.25
    retry_cap_s: float = 4.0
    log_level: str = "INFO"
    workers: int = -1  # -1: one worker process per core; 0: sessions in the daemon process; N: N workers
    metrics_port: int = 9464  # Prometheus /metrics on 127.0.0.1:PORT; 0: off
    max_requests_per_s: int = 200  # per client, messages other than audio_in/pong (burst: twice that)
    max_session_requests_per_s: int = 50  # requests naming one session (burst: twice that)
    max_audio_in_per_s: int = 400  # audio_in messages per session (burst: twice that)
    client_send_hwm: int = 1000  # messages queued for one client before its output is dropped (slow_consumer)
    allowed_url_hosts: str = ""  # comma-separated hosts session_open.url may name besides loopback and Convai's
    allow_any_url: bool = False  # let session_open.url name any host
    # echo canceller (bridge.audio.echo): rough client playout + capture delay hinted to AEC3, the
    # far-end FIFO bound, and how long an engine's audio_reference stream replaces the daemon's copy
    aec_stream_delay_ms: int = 80
    aec_max_reference_ms: int = 500
    aec_reference_timeout_ms: int = 500

    def is_loopback_endpoint(self) -> bool:
        return self.endpoint.startswith(("tcp://127.", "tcp://localhost:", "tcp://[::1]", "ipc://", "inproc://"))


_ENV = {
    "CONVAI_API_KEY": "api_key",
    "CONVAI_REST_URL": "rest_url",
    "CONVAI_LIVE_URL": "live_url",
    "CONVAI_BRIDGE_ENDPOINT": "endpoint",
    "CONVAI_BRIDGE_CONNECTION_FILE": "connection_file",
}


def _coerce(name: str, value: Any) -> Any:
    kinds = {f.name: f.type for f in fields(Config)}
    kind = kinds[name]
    if name == "api_key":
        return value if isinstance(value, Secret) else Secret(str(value))
    if name == "connection_file":
        return Path(value).expanduser()
    if name == "allowed_url_hosts" and isinstance(value, list | tuple):
        return ",".join(str(v) for v in value)
    if kind in ("int",):
        return int(value)
    if kind in ("float",):
        return float(value)
    if kind in ("bool",):
        return value if isinstance(value, bool) else str(value).lower() in ("1", "true", "yes")
    return str(value)


def load_config(
    overrides: dict[str, Any] | None = None, file: Path | None = None, env: dict[str, str] | None = None
) -> Config:
    """Build the config: defaults < TOML file < environment < explicit overrides (CLI flags)."""
    env = dict(os.environ) if env is None else env
    windows = os.name == "nt"
    cfg = Config(connection_file=Path(resolve_connection_file(env, windows=windows)))
    path = file or Path(env.get("CONVAI_BRIDGE_CONFIG") or resolve_config_dir(env, windows=windows) / "config.toml")
    if path.is_file():
        with path.open("rb") as fh:
            data = tomllib.load(fh)
        section = data.get("daemon", data)
        known = {f.name for f in fields(Config)}
        unknown = sorted(set(section) - known - {"daemon"})
        if unknown:
            raise ValueError(f"unknown settings in {path}: {', '.join(unknown)}")
        for key, value in section.items():
            if key in known:
                setattr(cfg, key, _coerce(key, value))
    for var, name in _ENV.items():
        if env.get(var):
            setattr(cfg, name, _coerce(name, env[var]))
    for key, value in (overrides or {}).items():
        if value is not None:
            setattr(cfg, key, _coerce(key, value))
    return cfg
