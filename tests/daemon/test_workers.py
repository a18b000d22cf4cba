"""`serve --workers N`: one front, sessions on worker processes, a crashed worker's sessions moved."""

from __future__ import annotations

import asyncio
import os
import signal
import urllib.request
from pathlib import Path

import pytest

from bridge.client import BridgeClient, BridgeError
from tests.conftest import CHARACTER
from tests.daemon.test_cli import EXE, ROOT, free_port

GUARD = "c0ffee00-0000-4000-8000-000000000002"


def children(pid: int) -> list[int]:
    out = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid and "bridge.daemon.worker" in (
                entry / "cmdline"
            ).read_bytes().decode(errors="replace"):
                out.append(int(entry.name))
    return sorted(out)


def scrape(port: int) -> dict[str, float]:
    text = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5).read().decode()
    values = {}
    for line in text.splitlines():
        if line.startswith("convai_bridge") and " " in line:
            name, value = line.rsplit(" ", 1)
            values[name] = float(value)
    return values


@pytest.fixture
async def front(tmp_path: Path):
    endpoint = f"tcp://127.0.0.1:{free_port()}"
    metrics_port = free_port()
    conn = tmp_path / "connection.json"
    proc = await asyncio.create_subprocess_exec(
        *EXE,
        "serve",
        "--emulator",
        "--workers",
        "2",
        "--endpoint",
        endpoint,
        "--connection-file",
        str(conn),
        "--metrics-port",
        str(metrics_port),
        "--log-level",
        "WARNING",
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.DEVNULL,
        cwd=ROOT,
    )
    assert proc.stdout is not None
    while True:
        line = (await asyncio.wait_for(proc.stdout.readline(), 60)).decode()
        assert line, "daemon exited before READY"
        if line.startswith("READY"):
            break
    yield proc, conn, metrics_port
    if proc.returncode is None:
        proc.send_signal(signal.SIGTERM)
        assert await asyncio.wait_for(proc.wait(), 30) == 0


async def test_sessions_spread_over_workers_and_survive_a_crash(front) -> None:
    proc, conn, metrics_port = front
    workers = children(proc.pid)
    assert len(workers) == 2
    client = await BridgeClient.connect(connection_file=conn)
    try:
        a = await client.open_session(CHARACTER, backend="live")
        b = await client.open_session(GUARD, backend="live")
        ta, tb = await a.text("My name is Ada."), await b.text("My name is Bo.")
        await asyncio.gather(a.collect_turn(ta, 30), b.collect_turn(tb, 30))
        m = scrape(metrics_port)
        assert m['convai_bridge_worker_sessions{worker="w0"}'] == 1
        assert m['convai_bridge_worker_sessions{worker="w1"}'] == 1
        csid = a.opened["character_session_id"]

        os.kill(workers[0], signal.SIGKILL)  # one worker dies mid-conversation
        moved, stayed = [], []
        for npc in (a, b):
            try:
                state = await npc.wait_for("session_state", timeout=5)
            except TimeoutError:
                stayed.append(npc)
                continue
            assert state["state"] == "reconnecting"
            resumed = await npc.wait_for("session_state", timeout=30)
            assert resumed["state"] == "resumed"
            moved.append((npc, resumed))
        assert len(moved) == 1 and len(stayed) == 1
        npc, resumed = moved[0]
        name = "Ada" if npc is a else "Bo"
        assert resumed["character_session_id"] == (csid if npc is a else b.opened["character_session_id"])
        t = await npc.text("What is my name?")
        events = await npc.collect_turn(t, 30)
        assert name in next(m for m in events if m.type == "bot_reply")["text"]
        assert any(m.type == "audio_out" for m in events)
        t = await stayed[0].text("Still there?")
        assert (await stayed[0].collect_turn(t, 30))[-1].type == "turn_completed"
        for _ in range(100):  # bounded: the supervisor restarts the dead worker
            if len(children(proc.pid)) == 2:
                break
            await asyncio.sleep(0.1)
        assert len(children(proc.pid)) == 2
        assert scrape(metrics_port)["convai_bridge_worker_restarts_total"] == 1
    finally:
        await client.close()


async def test_front_isolates_clients_and_reports_metrics(front) -> None:
    proc, conn, metrics_port = front
    a = await BridgeClient.connect(connection_file=conn)
    b = await BridgeClient.connect(connection_file=conn)
    try:
        npc = await a.open_session(CHARACTER, backend="stream")
        with pytest.raises(BridgeError) as info:
            await b.request("text", sid=npc.sid, text="not yours")
        assert info.value.code == "unknown_session"
        turn = await npc.text("Hello there")
        events = await npc.collect_turn(turn, 30)
        assert all(m.sid == npc.sid for m in events)
        await npc.close()
        closed = await npc.wait_for("session_closed")
        assert closed["reason"] == "client"
        m = scrape(metrics_port)
        assert m['convai_bridge_turn_latency_seconds_count{backend="stream",stage="first_text"}'] >= 1
        assert m["convai_bridge_clients"] == 2
        assert any(k.startswith("convai_bridge_added_latency_seconds_count") for k in m)
        assert m['convai_bridge_sessions{backend="stream",state="ready"}'] == 0
    finally:
        await a.close()
        await b.close()


async def test_workers_never_outlive_a_killed_front(front) -> None:
    proc, _conn, _port = front
    workers = children(proc.pid)
    assert len(workers) == 2
    proc.kill()  # SIGKILL: the front gets no chance to stop its workers
    await proc.wait()
    for _ in range(50):  # bounded: the kernel (PDEATHSIG) or the worker's parent watch ends them
        alive = [w for w in workers if Path(f"/proc/{w}").exists() and " Z " not in Path(f"/proc/{w}/stat").read_text()]
        if not alive:
            break
        await asyncio.sleep(0.1)
    assert alive == []
