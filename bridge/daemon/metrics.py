"""Prometheus metrics, observed where messages cross the engine-facing socket.

Everything is measured at the daemon's front (the process that owns the client ROUTER), so one
registry covers all worker processes without prometheus-client's multiprocess mode: the front sees
every request and every event on its way out.
"""

from __future__ import annotations

import logging
import os
import time
from dataclasses import dataclass, field
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, start_http_server

log = logging.getLogger(__name__)

LATENCY_BUCKETS = (0.0001, 0.00025, 0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25)
TURN_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1, 2, 3, 5, 8, 13, 30)
JITTER_BUFFER_S = 0.06  # an engine that starts playback at the first frame and buffers 60 ms


@dataclass
class _TurnClock:
    backend: str
    started: float
    first_text: bool = False
    first_audio: bool = False


@dataclass
class _Playout:
    turn: int = -1
    anchor: float = 0.0
    rate: int = 48000


@dataclass
class _SessionInfo:
    backend: str
    state: str = "connecting"
    turns: dict[int, _TurnClock] = field(default_factory=dict)
    playout: _Playout = field(default_factory=_Playout)


class BridgeMetrics:
    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        r = self.registry
        self.sessions = Gauge(
            "convai_bridge_sessions", "Sessions by backend and state", ["backend", "state"], registry=r
        )
        self.clients = Gauge("convai_bridge_clients", "Connected engine clients", registry=r)
        self.turn_latency = Histogram(
            "convai_bridge_turn_latency_seconds",
            "User turn request to first bot output, as the daemon forwards it",
            ["backend", "stage"],
            buckets=TURN_BUCKETS,
            registry=r,
        )
        self.bridge_latency = Histogram(
            "convai_bridge_added_latency_seconds",
            "Upstream arrival (event ts) to the daemon handing the event to the engine socket",
            ["kind"],
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.audio_frames = Counter("convai_bridge_audio_frames_total", "Audio frames", ["direction"], registry=r)
        self.underruns = Counter(
            "convai_bridge_audio_underruns_total",
            "audio_out frames that would reach an engine after its 60 ms jitter buffer ran dry",
            registry=r,
        )
        self.convai_errors = Counter(
            "convai_bridge_convai_errors_total",
            "Errors from Convai by code and HTTP status",
            ["code", "status"],
            registry=r,
        )
        self.errors = Counter("convai_bridge_errors_total", "Protocol errors sent to clients", ["code"], registry=r)
        self.dropped = Counter(
            "convai_bridge_dropped_messages_total",
            "Messages the daemon dropped: output for clients that did not read fast enough, rate-limited input",
            ["type", "reason"],
            registry=r,
        )
        self.worker_sessions = Gauge("convai_bridge_worker_sessions", "Sessions per worker", ["worker"], registry=r)
        self.worker_cpu = Gauge(
            "convai_bridge_worker_cpu_seconds", "CPU seconds used by each worker process", ["worker"], registry=r
        )
        self.worker_restarts = Counter("convai_bridge_worker_restarts_total", "Crashed workers restarted", registry=r)
        self._sessions: dict[str, _SessionInfo] = {}

    def serve(self, port: int, host: str = "127.0.0.1") -> bool:
        try:
            start_http_server(port, addr=host, registry=self.registry)
        except OSError as exc:
            log.warning("metrics endpoint %s:%d unavailable: %s", host, port, exc)
            return False
        log.info("Prometheus metrics on http://%s:%d/metrics", host, port)
        return True

    # -- observations ---------------------------------------------------------------------------
    def session_opening(self, sid: str, backend: str) -> None:
        self._sessions[sid] = _SessionInfo(backend)
        self.sessions.labels(backend, "connecting").inc()

    def _set_state(self, sid: str, state: str) -> None:
        info = self._sessions.get(sid)
        if info is None or info.state == state:
            return
        self.sessions.labels(info.backend, info.state).dec()
        info.state = state
        if state == "closed":
            del self._sessions[sid]
        else:
            self.sessions.labels(info.backend, state).inc()

    def session_closed(self, sid: str) -> None:
        """Idempotent: a session can end without a session_closed event reaching a client."""
        self._set_state(sid, "closed")

    def request(self, msg_type: str, sid: str | None) -> None:
        if msg_type == "audio_in":
            self.audio_frames.labels("in").inc()

    def turn_requested(self, sid: str, turn: int, started: float | None = None) -> None:
        info = self._sessions.get(sid)
        if info is not None:
            info.turns[turn] = _TurnClock(info.backend, started or time.monotonic())
            if len(info.turns) > 16:
                info.turns.pop(next(iter(info.turns)))

    def event(self, kind: str, header: dict[str, Any]) -> None:
        """One message on its way to a client."""
        sid = header.get("sid")
        now = time.time_ns() // 1000
        ts = header.get("ts")
        if kind == "error":
            code = header.get("code", "")
            self.errors.labels(code).inc()
            if code.startswith("convai_") or "status" in header:
                self.convai_errors.labels(code, str(header.get("status", ""))).inc()
        if sid is None:
            return
        if kind == "session_opened" or (kind == "session_state" and header.get("state") in ("ready", "resumed")):
            self._set_state(sid, "ready")
        elif kind == "session_state":
            self._set_state(sid, str(header.get("state")))
        elif kind == "session_closed":
            self._set_state(sid, "closed")
            return
        info = self._sessions.get(sid)
        if kind == "audio_out":
            self.audio_frames.labels("out").inc()
            if info is not None:
                self._playout(info, header)
        elif isinstance(ts, int) and kind != "ack":
            self.bridge_latency.labels(kind).observe(max(0, now - ts) / 1e6)
        if info is None:
            return
        clock = info.turns.get(header.get("turn", -1))
        if clock is None:
            return
        if kind == "bot_text" and not clock.first_text:
            clock.first_text = True
            self.turn_latency.labels(clock.backend, "first_text").observe(time.monotonic() - clock.started)
        elif kind == "audio_out" and not clock.first_audio:
            clock.first_audio = True
            self.turn_latency.labels(clock.backend, "first_audio").observe(time.monotonic() - clock.started)

    def _playout(self, info: _SessionInfo, header: dict[str, Any]) -> None:
        """Would an engine playing from its first frame (plus a small buffer) have run dry here?"""
        p = info.playout
        now = time.monotonic()
        turn, offset, rate = header.get("turn", -1), header.get("offset", 0), header.get("sample_rate", 48000)
        if turn != p.turn or offset == 0:
            p.turn, p.anchor, p.rate = turn, now, rate
            return
        deadline = p.anchor + offset / p.rate + JITTER_BUFFER_S
        if now > deadline:
            self.underruns.inc()
            p.anchor = now - offset / p.rate  # playback resumes from here

    def worker_load(self, worker: str, sessions: int, pid: int | None) -> None:
        self.worker_sessions.labels(worker).set(sessions)
        if pid is not None:
            cpu = process_cpu_seconds(pid)
            if cpu is not None:
                self.worker_cpu.labels(worker).set(cpu)


def process_cpu_seconds(pid: int) -> float | None:
    """User+system CPU of a process from /proc (Linux); None elsewhere."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii") as fh:
            fields = fh.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, IndexError, ValueError):
        return None
