"""What a load run measures: log-bucketed latency histograms, one record per turn, per-second series.

Memory stays bounded however long a run is: histograms have a fixed number of buckets (1 % relative
resolution), per-turn records stop at ``max_records`` (counted beyond that, never dropped from the
histograms) and the time series has one bucket per second of the run.
"""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import asdict, dataclass, field, fields
from typing import Any

import numpy as np

PERCENTILES = (50.0, 90.0, 99.0)

# Metrics in the order the summary table shows them: key -> (label, unit)
METRICS: dict[str, tuple[str, str]] = {
    "session_open": ("session open → ready", "ms"),
    "ack": ("request → ack", "ms"),
    "first_text": ("user turn end → first bot text", "ms"),
    "first_audio": ("user turn end → first bot audio", "ms"),
    "turn": ("user turn end → turn completed", "ms"),
    "interrupt": ("interrupt → turn completed", "ms"),
    "bridge": ("bridge-added latency (events)", "ms"),
    "bridge_audio": ("bridge-added latency (audio_out, incl. pacing)", "ms"),
    "audio_gap": ("audio gap per underrun", "ms"),
    "generator_lag": ("load generator loop lag", "ms"),
}


class Histogram:
    """Log-bucketed histogram of non-negative values (ms); percentiles within 1 % of the true value."""

    LOW = 1e-3  # 1 µs
    HIGH = 1e7  # about 3 hours
    GROWTH = 1.01

    def __init__(self) -> None:
        self._log_growth = math.log(self.GROWTH)
        self.size = int(math.ceil(math.log(self.HIGH / self.LOW) / self._log_growth)) + 2
        self.buckets = np.zeros(self.size, dtype=np.int64)
        self.count = 0
        self.total = 0.0
        self.min = math.inf
        self.max = -math.inf

    def _index(self, value: float) -> int:
        if value <= self.LOW:
            return 0
        return min(self.size - 1, 1 + int(math.log(value / self.LOW) / self._log_growth))

    def record(self, value: float) -> None:
        self.buckets[self._index(value)] += 1
        self.count += 1
        self.total += value
        self.min = min(self.min, value)
        self.max = max(self.max, value)

    def merge(self, other: Histogram) -> None:
        self.buckets += other.buckets
        self.count += other.count
        self.total += other.total
        self.min = min(self.min, other.min)
        self.max = max(self.max, other.max)

    def percentile(self, q: float) -> float | None:
        """The q-th percentile (0..100), or None when empty."""
        if self.count == 0:
            return None
        if q >= 100:
            return self.max
        rank = max(1, math.ceil(self.count * q / 100.0))
        idx = int(np.searchsorted(np.cumsum(self.buckets), rank))
        if idx == 0:
            value = self.LOW
        else:  # geometric middle of the bucket
            value = self.LOW * self.GROWTH ** (idx - 1) * math.sqrt(self.GROWTH)
        return min(max(value, self.min), self.max)

    def summary(self, digits: int = 3) -> dict[str, float | int | None]:
        out: dict[str, float | int | None] = {"count": self.count}
        for q in PERCENTILES:
            p = self.percentile(q)
            out[f"p{q:g}"] = None if p is None else round(p, digits)
        out["max"] = None if self.count == 0 else round(self.max, digits)
        out["mean"] = None if self.count == 0 else round(self.total / self.count, digits)
        return out

    def samples_for_plot(self, limit: int = 20000) -> np.ndarray:
        """Bucket centres repeated by count (at most ``limit`` points, proportionally thinned)."""
        if self.count == 0:
            return np.zeros(0)
        idx = np.nonzero(self.buckets)[0]
        centres = self.LOW * self.GROWTH ** np.maximum(idx - 1, 0) * math.sqrt(self.GROWTH)
        counts = self.buckets[idx]
        if self.count > limit:
            counts = np.maximum(1, (counts * limit) // self.count)
        return np.repeat(centres, counts)


@dataclass
class TurnRecord:
    """One user turn as the client saw it (times in ms; None = did not happen)."""

    npc: int
    client: int
    kind: str  # text | voice | trigger
    turn: int
    start_s: float  # seconds since the run started, when the user turn ended
    first_text_ms: float | None = None
    first_audio_ms: float | None = None
    turn_ms: float | None = None
    ack_ms: float | None = None
    interrupt_ms: float | None = None
    audio_ms: float = 0.0
    frames: int = 0
    underruns: int = 0
    underruns_upstream: int = 0
    gap_ms_max: float = 0.0
    seq_gaps: int = 0
    bridge_ms_max: float | None = None
    interrupted: bool = False
    error: str = ""

    @classmethod
    def columns(cls) -> list[str]:
        return [f.name for f in fields(cls)]

    def row(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class SecondBucket:
    turns: int = 0
    errors: int = 0
    underruns: int = 0
    bridge_max: float = 0.0
    bridge_sum: float = 0.0
    bridge_count: int = 0
    active_npcs: int = 0


@dataclass
class RunStats:
    max_records: int = 200_000
    histograms: dict[str, Histogram] = field(default_factory=lambda: {k: Histogram() for k in METRICS})
    by_kind: dict[str, Histogram] = field(default_factory=dict)  # first_text per turn kind
    turns: list[TurnRecord] = field(default_factory=list)
    turns_total: int = 0
    turns_completed: int = 0
    turns_interrupted: int = 0
    turns_failed: int = 0
    turns_cut: int = 0  # still running when the run's grace period ended
    turns_skipped: int = 0  # script turns the backend cannot run (e.g. triggers on stream)
    turn_kinds: Counter[str] = field(default_factory=Counter)
    errors: Counter[str] = field(default_factory=Counter)
    sessions_opened: int = 0
    sessions_failed: int = 0
    sessions_reopened: int = 0
    frames: int = 0
    audio_s: float = 0.0
    underruns: int = 0
    underruns_upstream: int = 0
    seq_gaps: int = 0
    turns_with_underruns: int = 0
    seconds: list[SecondBucket] = field(default_factory=list)
    active_npcs: int = 0
    started_at: float = 0.0  # perf_counter of the run start

    # -- recording --------------------------------------------------------------------------------
    def second(self, t: float) -> SecondBucket:
        idx = max(0, int(t - self.started_at))
        if idx > 24 * 3600:
            idx = 24 * 3600  # far beyond any bounded run; keeps the list bounded regardless
        while len(self.seconds) <= idx:
            self.seconds.append(SecondBucket())
        return self.seconds[idx]

    def record(self, key: str, value: float | None) -> None:
        if value is not None:
            self.histograms[key].record(value)

    def bridge_sample(self, t: float, ms: float, audio: bool) -> None:
        self.histograms["bridge_audio" if audio else "bridge"].record(ms)
        if not audio:
            sec = self.second(t)
            sec.bridge_count += 1
            sec.bridge_sum += ms
            sec.bridge_max = max(sec.bridge_max, ms)

    def error(self, code: str, t: float | None = None) -> None:
        self.errors[code] += 1
        if t is not None:
            self.second(t).errors += 1

    def add_turn(self, rec: TurnRecord, t: float) -> None:
        self.turns_total += 1
        self.turn_kinds[rec.kind] += 1
        if len(self.turns) < self.max_records:
            self.turns.append(rec)
        sec = self.second(t)
        sec.turns += 1
        if rec.error == "cut":
            self.turns_cut += 1
            return
        if rec.error:
            self.turns_failed += 1
        elif rec.turn_ms is not None:
            self.turns_completed += 1
        if rec.interrupted:
            self.turns_interrupted += 1
        self.record("first_text", rec.first_text_ms)
        if rec.first_text_ms is not None:
            self.by_kind.setdefault(rec.kind, Histogram()).record(rec.first_text_ms)
        self.record("first_audio", rec.first_audio_ms)
        self.record("turn", rec.turn_ms)
        self.record("ack", rec.ack_ms)
        self.record("interrupt", rec.interrupt_ms)
        self.frames += rec.frames
        self.audio_s += rec.audio_ms / 1000.0
        self.underruns += rec.underruns
        self.underruns_upstream += rec.underruns_upstream
        self.seq_gaps += rec.seq_gaps
        if rec.underruns:
            self.turns_with_underruns += 1
            sec.underruns += rec.underruns

    def sample_active(self, t: float) -> None:
        self.second(t).active_npcs = self.active_npcs

    # -- results ----------------------------------------------------------------------------------
    def percentiles_ms(self) -> dict[str, dict[str, float | int | None]]:
        return {key: self.histograms[key].summary() for key in METRICS}

    def realtime_ok(self) -> bool:
        """Every NPC's audio played without an underrun and nothing failed."""
        return self.underruns == 0 and self.turns_failed == 0 and not self.errors and self.frames > 0

    def summary(self) -> dict[str, Any]:
        return {
            "latency_ms": self.percentiles_ms(),
            "first_text_ms_by_kind": {k: h.summary() for k, h in sorted(self.by_kind.items())},
            "turns": {
                "total": self.turns_total,
                "completed": self.turns_completed,
                "interrupted": self.turns_interrupted,
                "failed": self.turns_failed,
                "cut_at_end": self.turns_cut,
                "skipped_unsupported": self.turns_skipped,
                "by_kind": dict(sorted(self.turn_kinds.items())),
                "records_kept": len(self.turns),
            },
            "sessions": {
                "opened": self.sessions_opened,
                "failed": self.sessions_failed,
                "reopened": self.sessions_reopened,
            },
            "audio": {
                "frames": self.frames,
                "seconds": round(self.audio_s, 3),
                "underruns": self.underruns,
                "turns_with_underruns": self.turns_with_underruns,
                "underruns_upstream": self.underruns_upstream,
                "seq_gaps": self.seq_gaps,
            },
            "errors": dict(sorted(self.errors.items())),
            "realtime": self.realtime_ok(),
        }
