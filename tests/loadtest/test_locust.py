"""Locust master + two workers on loopback, headless: NPC users report custom metrics, no failures.

Each worker starts its own daemon (``serve --emulator``, no daemon worker processes to keep the
process count down on 2 cores) as Locust starts up, which is the documented default.
"""

from __future__ import annotations

import csv
import os
import socket
import subprocess
import sys
from pathlib import Path

import bridge_loadtest

LOCUSTFILE = Path(bridge_loadtest.__file__).parent / "locustfile.py"
LOCUST = Path(sys.executable).parent / "locust"
SCRIPT = """
think_time_s = [0.2, 0.6]
[[turns]]
kind = "text"
text = "Hello! My name is {name}."
[[turns]]
kind = "voice"
text = "Wave at me."
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_master_and_two_workers_report_npc_metrics(tmp_path: Path) -> None:
    script = tmp_path / "script.toml"
    script.write_text(SCRIPT)
    port = free_port()
    env = dict(os.environ, CONVAI_BRIDGE_LOCUST_DAEMON_WORKERS="0")
    env.pop("CONVAI_BRIDGE_CONNECTION_FILE", None)
    common = [str(LOCUST), "-f", str(LOCUSTFILE), "--loglevel", "INFO"]
    workers = [
        subprocess.Popen(
            [*common, "--worker", "--master-host", "127.0.0.1", "--master-port", str(port)],
            env=env, stdout=(tmp_path / f"worker{i}.log").open("wb"), stderr=subprocess.STDOUT,
        )  # fmt: skip
        for i in range(2)
    ]
    try:
        master = subprocess.run(
            [
                *common, "--master", "--headless", "--master-bind-host", "127.0.0.1",
                "--master-bind-port", str(port), "--expect-workers", "2", "--expect-workers-max-wait", "30",
                "-u", "4", "-r", "4", "-t", "25s", "--npc-script", str(script), "--csv", str(tmp_path / "npcs"),
            ],  # fmt: skip
            env=env,
            capture_output=True,
            text=True,
            timeout=90,
        )
    finally:
        for w in workers:
            try:
                w.wait(timeout=20)
            except subprocess.TimeoutExpired:
                w.kill()
                w.wait(timeout=10)
    logs = "".join((tmp_path / f"worker{i}.log").read_text() for i in range(2))
    assert master.returncode == 0, master.stderr[-3000:] + logs[-3000:]
    assert logs.count("NPC target: daemon + embedded emulator") == 2, logs[-3000:]  # one daemon per worker
    with (tmp_path / "npcs_stats.csv").open() as fh:
        rows = {(r["Type"], r["Name"]): r for r in csv.DictReader(fh)}
    for key in [("session", "open"), ("turn", "first_text"), ("turn", "first_audio"), ("turn", "bridge_latency")]:
        assert key in rows, (key, sorted(rows))
        assert int(rows[key]["Request Count"]) > 0 and int(rows[key]["Failure Count"]) == 0, rows[key]
    assert int(rows[("session", "open")]["Request Count"]) == 4
    assert int(rows[("", "Aggregated")]["Failure Count"]) == 0
    assert float(rows[("turn", "first_text")]["Median Response Time"]) < 2000
    with (tmp_path / "npcs_failures.csv").open() as fh:
        assert list(csv.DictReader(fh)) == []
