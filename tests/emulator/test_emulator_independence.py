"""The emulator is the other side of the wire: it must not import the daemon's Convai code.

Everything it does (signalling, the bot, Opus, VAD, speech recognition) is its own, so a behaviour
the daemon and the emulator share by construction cannot hide a fidelity bug. The check imports
``convai_emulator`` (a top-level package of its own) and every submodule in a fresh interpreter and
lists the daemon's modules (``bridge``, ``bridge.*``) and the load tester's that came along: none may.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

PROBE = """
import importlib, json, pkgutil, sys
import convai_emulator
names = [m.name for m in pkgutil.walk_packages(convai_emulator.__path__, "convai_emulator.")]
for name in names:
    importlib.import_module(name)
print(json.dumps({"imported": names, "modules": sorted(sys.modules)}))
"""


def test_emulator_imports_nothing_of_the_daemon() -> None:
    proc = subprocess.run([sys.executable, "-c", PROBE], capture_output=True, text=True, timeout=120,
                          cwd=ROOT, check=False)
    assert proc.returncode == 0, proc.stderr[-3000:]
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    assert "convai_emulator.realtime.bot" in result["imported"]  # the walk really reached the realtime side
    foreign = [m for m in result["modules"]
               if m == "bridge" or m.startswith(("bridge.", "bridge_loadtest"))]
    assert foreign == [], f"emulator modules pulled in daemon code: {foreign}"
