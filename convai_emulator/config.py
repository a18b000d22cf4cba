"""Emulator settings (one frozen object, built from CLI flags or by tests)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from convai_emulator.faults import FaultRule

# Public on purpose: the emulator ships with a known development key so demos and tests need no
# secrets. It only ever unlocks the local emulator; a real Convai key is never needed here.
DEV_API_KEY = "convai-bridge-dev-key"
DEV_LIVEKIT_API_KEY = "convai-emulator"
DEFAULT_CLI_PORT = 8787


@dataclass(frozen=True)
class EmulatorConfig:
    host: str = "127.0.0.1"
    port: int = 0  # 0 = let the OS choose (tests); the CLI defaults to DEFAULT_CLI_PORT
    api_key: str = DEV_API_KEY
    extra_api_keys: tuple[str, ...] = ()
    roster_path: Path | None = None  # None = the shipped roster.toml
    faults: tuple[FaultRule, ...] = ()
    fault_seed: int = 0
    # per API key, like Convai's plan limit; exceeded → 429 on /connect
    max_sessions_per_key: int = 256
    # pacing of bot-llm-text events on /connect/stream
    stream_delay_ms: float = 15.0
    # getResponse audio rate when the request names none (espeak-ng's native rate)
    rest_sample_rate: int = 22050
    voice_engine: Literal["auto", "espeak", "synthetic"] = "auto"
    audio_cache_mb: int = 64
    # synthesize every greeting in the background at startup (the CLI turns this on)
    prewarm_audio: bool = False
    # LiveKit token minting; the secret is random per run unless given
    livekit_api_key: str = DEV_LIVEKIT_API_KEY
    livekit_api_secret: str | None = field(default=None, repr=False)
    token_ttl_s: int = 6 * 3600
    # base URL advertised in room_url (default: the address the server is bound to)
    public_url: str | None = None
    # live sessions nobody used for this long are ended (as if disconnected)
    live_session_idle_s: float = 900.0
    max_conversations: int = 50_000
    shutdown_timeout_s: float = 2.0
    access_log: bool = False
    # server profile for every session unless the roster or a runtime override says otherwise
    # (convai_emulator.profiles); options override the profile's tunables, e.g. bot_ready_delay_s
    profile: str = "current"
    # recognise voice turns with pocketsphinx when installed (False: "(voice input, N.N seconds)")
    speech_recognition: bool = True
    profile_options: Mapping[str, Any] = field(default_factory=dict)

    def __repr__(self) -> str:  # never show keys
        return (f"EmulatorConfig(host={self.host!r}, port={self.port}, roster_path={self.roster_path!r}, "
                f"faults={len(self.faults)}, max_sessions_per_key={self.max_sessions_per_key})")

    @property
    def api_keys(self) -> frozenset[str]:
        return frozenset((self.api_key, *self.extra_api_keys))
