"""CPU and memory of the processes under test (daemon, emulator, the generator itself), from /proc.

A process's figures include its descendants (a daemon with worker processes counts as one), found by
scanning /proc for children. Where /proc is missing (not Linux) every reading is None.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from pathlib import Path

PROC = Path("/proc")


def _stat_fields(pid: int) -> list[str] | None:
    try:
        return (PROC / str(pid) / "stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None


def children_map() -> dict[int, list[int]]:
    out: dict[int, list[int]] = {}
    try:
        entries = list(PROC.iterdir())
    except OSError:
        return out
    for entry in entries:
        if not entry.name.isdigit():
            continue
        fields = _stat_fields(int(entry.name))
        if fields is not None:
            out.setdefault(int(fields[1]), []).append(int(entry.name))
    return out


def family(pid: int, children: dict[int, list[int]] | None = None) -> list[int]:
    """``pid`` and all its descendants (bounded by the process table)."""
    children = children_map() if children is None else children
    out, todo = [], [pid]
    while todo and len(out) < 10_000:
        p = todo.pop()
        out.append(p)
        todo.extend(children.get(p, []))
    return out


def cpu_seconds(pids: list[int]) -> float | None:
    total, seen = 0.0, False
    tick = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100
    for pid in pids:
        fields = _stat_fields(pid)
        if fields is not None:
            total += (int(fields[11]) + int(fields[12])) / tick
            seen = True
    return total if seen else None


def rss_mb(pids: list[int]) -> float | None:
    total, seen = 0.0, False
    for pid in pids:
        try:
            for line in (PROC / str(pid) / "status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1]) / 1024.0
                    seen = True
                    break
        except OSError:
            continue
    return total if seen else None


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


@dataclass
class ProcSeries:
    name: str
    pid: int
    with_children: bool = True
    cpu_pct: list[float] = field(default_factory=list)  # % of one core per sample interval
    rss_mb: list[float] = field(default_factory=list)
    times: list[float] = field(default_factory=list)
    baseline_rss_mb: float | None = None
    _last: tuple[float, float] | None = None

    def summary(self) -> dict[str, float | int | None]:
        cpu = self.cpu_pct
        return {
            "pid": self.pid,
            "cpu_pct_mean": round(sum(cpu) / len(cpu), 1) if cpu else None,
            "cpu_pct_max": round(max(cpu), 1) if cpu else None,
            "rss_mb_baseline": None if self.baseline_rss_mb is None else round(self.baseline_rss_mb, 1),
            "rss_mb_peak": round(max(self.rss_mb), 1) if self.rss_mb else None,
        }


class ProcessSampler:
    """Call ``sample()`` periodically (about once a second); series are bounded by ``max_samples``."""

    def __init__(self, pids: dict[str, int], max_samples: int = 86_400, alone: tuple[str, ...] = ()) -> None:
        """``alone``: names measured without their descendants (the generator, whose children are the target)."""
        self.series = {name: ProcSeries(name, pid, name not in alone) for name, pid in pids.items() if pid}
        self.max_samples = max_samples
        self.t0 = time.perf_counter()
        self.baseline()

    def baseline(self) -> None:
        children = children_map()
        for s in self.series.values():
            pids = family(s.pid, children) if s.with_children else [s.pid]
            s.baseline_rss_mb = rss_mb(pids)
            cpu = cpu_seconds(pids)
            s._last = None if cpu is None else (time.perf_counter(), cpu)

    def sample(self) -> None:
        children = children_map()
        t = time.perf_counter()
        for s in self.series.values():
            if len(s.times) >= self.max_samples:
                continue
            pids = family(s.pid, children) if s.with_children else [s.pid]
            cpu = cpu_seconds(pids)
            rss = rss_mb(pids)
            if cpu is None or rss is None:
                continue
            if s._last is not None and t > s._last[0]:
                s.cpu_pct.append(100.0 * (cpu - s._last[1]) / (t - s._last[0]))
                s.rss_mb.append(rss)
                s.times.append(t - self.t0)
            s._last = (t, cpu)

    def last_cpu(self, name: str) -> float | None:
        s = self.series.get(name)
        return s.cpu_pct[-1] if s and s.cpu_pct else None

    def summary(self) -> dict[str, dict[str, float | int | None]]:
        return {name: s.summary() for name, s in self.series.items()}
