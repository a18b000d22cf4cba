"""A daemon worker process is killed in the middle of a load run: its sessions resume, the load goes on.

The daemon runs with two worker processes (`serve --workers 2`); the test SIGKILLs one of them while
NPCs are mid-conversation. Expected: the clients see `session_state reconnecting` then `resumed`
for the sessions that lived there, only the turns in flight at that moment fail, every NPC keeps
talking afterwards, no session fails, and the front restarts the worker.
"""

from __future__ import annotations

import asyncio
import os
import signal
import time
from pathlib import Path

from bridge_loadtest.procstat import PROC, children_map
from bridge_loadtest.runner import LoadOptions, run_load
from bridge_loadtest.script import parse_script
from bridge_loadtest.target import LocalStack

NPCS = 8
KILL_AT_S = 8.0
SCRIPT = {
    "think_time_s": [0.3, 0.8],
    "turns": [
        {"kind": "text", "text": "Hello! My name is {name}."},
        {"kind": "text", "text": "Could you wave at me?"},
    ],
}


def worker_pids(daemon_pid: int) -> list[int]:
    out = []
    for pid in children_map().get(daemon_pid, []):
        try:
            if b"bridge.daemon.worker" in (PROC / str(pid) / "cmdline").read_bytes():
                out.append(pid)
        except OSError:
            continue
    return sorted(out)


async def test_killed_worker_sessions_resume_and_load_continues(tmp_path: Path) -> None:
    stack = LocalStack(workers=2, workdir=tmp_path / "stack", log_level="INFO")
    target = await asyncio.to_thread(stack.start)
    try:
        assert target.daemon_pid is not None
        for _ in range(100):  # the front starts its workers before it accepts clients; allow for a slow start
            if len(worker_pids(target.daemon_pid)) == 2:
                break
            await asyncio.sleep(0.1)
        before = worker_pids(target.daemon_pid)
        assert len(before) == 2, before
        opts = LoadOptions(npcs=NPCS, duration_s=18, ramp_up_s=2, clients=2, grace_s=10,
                           script=parse_script(SCRIPT))
        killed: dict[str, float] = {}

        async def kill_one_worker() -> None:
            await asyncio.sleep(KILL_AT_S)
            os.kill(before[0], signal.SIGKILL)
            killed["t"] = time.perf_counter()

        (stats, _state), _ = await asyncio.gather(
            run_load(target.endpoint, target.token, opts), kill_one_worker()
        )
        kill_s = killed["t"] - stats.started_at
        after = worker_pids(target.daemon_pid)
        log = (tmp_path / "stack" / "daemon.log").read_text(errors="replace")
    finally:
        await asyncio.to_thread(stack.stop)

    assert len(after) == 2 and before[0] not in after, (before, after, log[-2000:])  # restarted
    assert stats.sessions_opened >= NPCS and stats.sessions_failed == 0
    assert set(stats.errors) <= {"session_reconnecting", "worker_failed"}, (stats.errors, log[-2000:])
    assert stats.errors["session_reconnecting"] >= 1, "no session lived on the killed worker"
    failed = [t for t in stats.turns if t.error and t.error != "cut"]
    assert len(failed) <= NPCS, failed
    for npc in range(NPCS):
        later = [t for t in stats.turns if t.npc == npc and not t.error and t.start_s > kill_s + 1]
        assert later, f"NPC {npc} never completed a turn after the crash"
        assert all(t.first_text_ms is not None for t in later)
