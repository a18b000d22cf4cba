"""Live progress of a load run: a rich panel on a terminal, a status line every few seconds otherwise."""

from __future__ import annotations

import time

from rich.console import Console
from rich.live import Live
from rich.table import Table

from bridge_loadtest.runner import RunState
from bridge_loadtest.stats import RunStats

PLAIN_EVERY_S = 5.0


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f}"


class Progress:
    def __init__(self, console: Console, npcs: int, enabled: bool = True) -> None:
        self.console = console
        self.npcs = npcs
        self.enabled = enabled
        self.live: Live | None = None
        self._last_plain = 0.0
        self._last_turns = 0
        self._last_t = time.perf_counter()
        self._rate = 0.0

    def __enter__(self) -> Progress:
        if self.enabled and self.console.is_terminal:
            self.live = Live(console=self.console, refresh_per_second=2, transient=True)
            self.live.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        if self.live is not None:
            self.live.__exit__(None, None, None)
            self.live = None

    def _table(self, stats: RunStats, state: RunState) -> Table:
        h = stats.histograms
        table = Table(title=f"convai-bridge loadtest · {state.phase}", title_justify="left", show_header=False)
        table.add_column(style="bold")
        table.add_column()
        table.add_row("elapsed", f"{state.elapsed_s:5.1f} / {state.duration_s:g} s")
        table.add_row(
            "NPCs",
            f"{stats.active_npcs} active · {state.started}/{self.npcs} started · {stats.sessions_failed} failed",
        )
        table.add_row("turns", f"{stats.turns_total} ({self._rate:.1f}/s) · {stats.turns_interrupted} interrupted")
        table.add_row(
            "first text / audio p50",
            f"{_ms(h['first_text'].percentile(50))} / {_ms(h['first_audio'].percentile(50))} ms",
        )
        table.add_row("bridge latency p99", f"{_ms(h['bridge'].percentile(99))} ms")
        table.add_row("underruns", str(stats.underruns))
        table.add_row("errors", ", ".join(f"{k} {v}" for k, v in stats.errors.most_common(4)) or "0")
        if state.sampler is not None:
            cpu = " · ".join(
                f"{name} {_ms(state.sampler.last_cpu(name))} %" for name in state.sampler.series
            )
            table.add_row("CPU (of a core)", cpu or "-")
        for note in state.notes[-2:]:
            table.add_row("note", note)
        return table

    def tick(self, stats: RunStats, t: float, state: RunState) -> None:
        if t - self._last_t >= 1.0:
            self._rate = (stats.turns_total - self._last_turns) / (t - self._last_t)
            self._last_turns, self._last_t = stats.turns_total, t
        if not self.enabled:
            return
        if self.live is not None:
            self.live.update(self._table(stats, state))
        elif t - self._last_plain >= PLAIN_EVERY_S:
            self._last_plain = t
            self.console.print(
                f"[{state.elapsed_s:5.1f}s] {state.phase}: {stats.active_npcs} active NPCs, {stats.turns_total} turns,"
                f" first text p50 {_ms(stats.histograms['first_text'].percentile(50))} ms,"
                f" bridge p99 {_ms(stats.histograms['bridge'].percentile(99))} ms,"
                f" underruns {stats.underruns}, errors {sum(stats.errors.values())}",
                highlight=False,
            )
