"""Drive a whole load run: K engine clients, N NPCs started over the ramp-up, stopped at the deadline.

Time bounds: NPCs start no turn after ``duration_s``; turns still running then get ``grace_s`` to
finish, after which they are cancelled (recorded as ``cut``, not as errors) and every session is
closed with a short timeout. Nothing here can run longer than duration + grace + a few seconds.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from bridge_loadtest.engine import EngineClient, RequestFailed
from bridge_loadtest.npc import Npc, NpcOptions
from bridge_loadtest.procstat import ProcessSampler
from bridge_loadtest.script import Script, load_script
from bridge_loadtest.speech import prepare_utterances
from bridge_loadtest.stats import RunStats

TICK_S = 0.5
LAG_PROBE_S = 0.05
CONNECT_TIMEOUT_S = 10.0
CLOSE_TIMEOUT_S = 5.0


@dataclass
class LoadOptions:
    npcs: int = 20
    duration_s: float = 60.0
    ramp_up_s: float = 10.0
    clients: int = 1
    grace_s: float = 15.0
    max_records: int = 200_000
    script: Script = field(default_factory=load_script)
    npc: NpcOptions = field(default_factory=NpcOptions)

    def validate(self) -> None:
        if not 1 <= self.npcs <= 100_000:
            raise ValueError("npcs must be 1..100000")
        if not 0 < self.duration_s <= 7 * 24 * 3600:
            raise ValueError("duration must be > 0 s and at most a week")
        if not 0 <= self.ramp_up_s <= self.duration_s:
            raise ValueError("ramp-up must be 0..duration")
        if not 1 <= self.clients <= self.npcs:
            raise ValueError("clients must be 1..npcs")
        if not 0 <= self.grace_s <= 600:
            raise ValueError("grace must be 0..600 s")


Tick = Callable[[RunStats, float, "RunState"], None]


@dataclass
class RunState:
    """Live facts for a progress display."""

    started: int = 0  # NPCs whose start time has come
    clients: int = 0
    elapsed_s: float = 0.0
    duration_s: float = 0.0
    phase: str = "starting"
    sampler: ProcessSampler | None = None
    notes: list[str] = field(default_factory=list)


async def _lag_probe(stats: RunStats, stop: asyncio.Event) -> None:
    """How late the generator's event loop wakes up: if this grows, the client side is the bottleneck."""
    while not stop.is_set():
        t = time.perf_counter()
        await asyncio.sleep(LAG_PROBE_S)
        stats.record("generator_lag", max(0.0, (time.perf_counter() - t - LAG_PROBE_S) * 1000.0))


async def _ticker(stats: RunStats, state: RunState, on_tick: Tick | None, stop: asyncio.Event) -> None:
    next_sample = time.perf_counter()
    while not stop.is_set():
        t = time.perf_counter()
        state.elapsed_s = t - stats.started_at
        stats.sample_active(t)
        if state.sampler is not None and t >= next_sample:
            await asyncio.to_thread(state.sampler.sample)
            next_sample = t + 1.0
        if on_tick is not None:
            on_tick(stats, t, state)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), TICK_S)


async def run_load(
    endpoint: str,
    token: str,
    opts: LoadOptions,
    *,
    on_tick: Tick | None = None,
    sampler: ProcessSampler | None = None,
    stats: RunStats | None = None,
) -> tuple[RunStats, RunState]:
    opts.validate()
    stats = stats or RunStats(max_records=opts.max_records)
    state = RunState(duration_s=opts.duration_s, sampler=sampler)
    utterances = await asyncio.to_thread(prepare_utterances, opts.script)

    clients: list[EngineClient] = []
    try:
        first = EngineClient(endpoint, token, index=0)
        clients.append(first)
        await first.connect(CONNECT_TIMEOUT_S)
        max_sessions = int(first.limits.get("max_sessions", 64))
        n_clients = max(opts.clients, math.ceil(opts.npcs / max(1, max_sessions)))
        if n_clients != opts.clients:
            state.notes.append(f"using {n_clients} clients: the daemon allows {max_sessions} sessions per client")
        for i in range(1, n_clients):
            clients.append(EngineClient(endpoint, token, index=i))
        await asyncio.gather(*(c.connect(CONNECT_TIMEOUT_S) for c in clients[1:]))
        state.clients = len(clients)

        stats.started_at = time.perf_counter()
        deadline = stats.started_at + opts.duration_s
        npcs = [
            Npc(i, clients[i % len(clients)], opts.script, utterances, opts.npc, stats, deadline)
            for i in range(opts.npcs)
        ]
        stop = asyncio.Event()
        state.phase = "running"
        background = [
            asyncio.create_task(_lag_probe(stats, stop)),
            asyncio.create_task(_ticker(stats, state, on_tick, stop)),
        ]

        async def start(npc: Npc) -> None:
            delay = npc.index * opts.ramp_up_s / opts.npcs
            await asyncio.sleep(delay)
            state.started += 1
            await npc.run()

        tasks = [asyncio.create_task(start(npc), name=f"npc-{npc.index}") for npc in npcs]
        try:
            await asyncio.wait(tasks, timeout=opts.duration_s)
            state.phase = "finishing turns"
            pending = [t for t in tasks if not t.done()]
            if pending:
                await asyncio.wait(pending, timeout=max(0.0, deadline + opts.grace_s - time.perf_counter()))
            state.phase = "closing"
            for task in tasks:
                if not task.done():
                    task.cancel()
            # Cancelled NPCs close their sessions in their finally blocks (bounded by request timeouts).
            await asyncio.wait(tasks, timeout=CLOSE_TIMEOUT_S)
            for task in tasks:
                if task.done() and not task.cancelled() and task.exception() is not None:
                    stats.error("loadtest_internal")
                    state.notes.append(f"{task.get_name()} failed: {task.exception()!r}")
        finally:
            for task in tasks:
                task.cancel()
            stop.set()
            for task in background:
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task
        state.elapsed_s = time.perf_counter() - stats.started_at
        state.phase = "done"
        for client in clients:
            if client.lost:
                stats.error("connection_lost")
        return stats, state
    except RequestFailed as exc:
        raise ConnectionError(f"cannot use the daemon at {endpoint}: {exc}") from exc
    finally:
        await asyncio.gather(*(c.close() for c in clients), return_exceptions=True)
