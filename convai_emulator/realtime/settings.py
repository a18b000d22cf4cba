"""Knobs of the realtime side (signalling timings, room lifetime, bot defaults)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class RealtimeSettings:
    # JoinResponse.ping_interval / ping_timeout: the official SDK aborts the process on 0.
    ping_interval_s: int = 5
    ping_timeout_s: int = 15
    # refresh_token: one soon after joining (exercises the client's handling), then periodically
    first_refresh_token_s: float = 2.0
    refresh_token_interval_s: float = 300.0
    # rooms with nobody in them close after this long (a reconnecting client finds its bot again)
    empty_room_timeout_s: float = 30.0
    # serve /rtc/v1 (single PC); False answers 404 there so clients fall back to /rtc
    single_pc: bool = True
    # bot defaults (per session overridable through /connect fields)
    idle_warning_s: float | None = 300.0
    idle_remaining_s: int = 300
    llm_chunk_delay_s: float = 0.02
    viseme_fps: int = 100  # visemes are one frame per data message: 100 fps is 100 messages/s
    # signalling that drops without a leave keeps the participant and its media this long, so the client
    # can resume with reconnect=1&sid= (0: leave at once, as before)
    resume_window_s: float = 15.0
    # direct SDP transport: treat the peer as gone this long after its last "ping" (pipecat: 3 s)
    keepalive_grace_s: float = 3.0
