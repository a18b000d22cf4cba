"""Typed keys for the state the emulator keeps on its aiohttp app (read by extensions too)."""

from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from convai_emulator.brain import ConversationStore
from convai_emulator.config import EmulatorConfig
from convai_emulator.faults import FaultInjector
from convai_emulator.live_sessions import LiveSessionRegistry, RoomProvider
from convai_emulator.profiles import ProfileSelection
from convai_emulator.roster import Roster
from convai_emulator.stt import SpeechRecognizer
from convai_emulator.tokens import LiveKitCredentials
from convai_emulator.voice import Synthesizer


@dataclass
class BoundAddress:
    """Filled in once the server listens (port 0 is resolved only then)."""

    base_url: str | None = None


@dataclass
class RequestStats:
    requests: Counter[str] = field(default_factory=Counter)
    statuses: defaultdict[str, Counter[str]] = field(default_factory=lambda: defaultdict(Counter))

    def record(self, route: str, status: int) -> None:
        self.requests[route] += 1
        self.statuses[route][str(status)] += 1

    def snapshot(self) -> dict[str, Any]:
        return {"requests": dict(self.requests), "statuses": {k: dict(v) for k, v in self.statuses.items()}}

    def reset(self) -> None:
        self.requests.clear()
        self.statuses.clear()


CONFIG = web.AppKey("convai_emulator_config", EmulatorConfig)
ROSTER = web.AppKey("convai_emulator_roster", Roster)
CONVERSATIONS = web.AppKey("convai_emulator_conversations", ConversationStore)
LIVE_SESSIONS = web.AppKey("convai_emulator_live_sessions", LiveSessionRegistry)
ROOM_PROVIDER = web.AppKey("convai_emulator_room_provider", RoomProvider)
FAULTS = web.AppKey("convai_emulator_faults", FaultInjector)
SYNTH = web.AppKey("convai_emulator_synth", Synthesizer)
STATS = web.AppKey("convai_emulator_stats", RequestStats)
ADDRESS = web.AppKey("convai_emulator_address", BoundAddress)
LIVEKIT = web.AppKey("convai_emulator_livekit", LiveKitCredentials)
PROFILES = web.AppKey("convai_emulator_profiles", ProfileSelection)
# None when pocketsphinx is not installed (voice turns are then transcribed as measurements)
STT = web.AppKey("convai_emulator_stt", SpeechRecognizer | None)
# request-scoped: set by the fault middleware; streaming handlers stop after this many events
DROP_STREAM_AFTER = web.RequestKey("convai_emulator_drop_stream_after", int)
