"""The runtime install stays small: load-testing and test tooling live in extras, and a verb whose
extra is missing says so instead of vanishing from the CLI."""

from __future__ import annotations

import re
import subprocess
import sys
from importlib import metadata

# Packages that only load testers or developers need (Locust pulls flask and gevent).
HEAVY = {"locust", "flask", "gevent", "pytest", "matplotlib"}


def _name(req: str) -> str:
    return re.split(r"[\s;\[<>=!~(]", req, maxsplit=1)[0].strip().lower().replace("_", "-")


def _runtime_closure(root: str) -> set[str]:
    """Every distribution the base install of `root` pulls in, following installed metadata."""
    seen: set[str] = set()
    todo = [root]
    while todo:
        dist = todo.pop()
        try:
            reqs = metadata.requires(dist) or []
        except metadata.PackageNotFoundError:
            continue
        for req in reqs:
            if "extra ==" in req.replace('"', " ").replace("'", " ") or "extra==" in req:
                continue
            if ";" in req and "python_version" not in req and "platform" not in req and "sys_platform" not in req:
                continue
            name = _name(req)
            if name not in seen:
                seen.add(name)
                todo.append(name)
    return seen


def test_runtime_dependencies_exclude_load_and_test_tooling() -> None:
    closure = _runtime_closure("convai-bridge")
    assert "pyzmq" in closure and "aiortc" in closure  # the closure really was followed
    assert not (closure & HEAVY), sorted(closure & HEAVY)


def test_loadtest_extra_declares_locust_and_matplotlib() -> None:
    reqs = metadata.requires("convai-bridge") or []
    extra = {_name(r) for r in reqs if "loadtest" in r.split(";", 1)[-1]}
    assert {"locust", "matplotlib"} <= extra


def test_missing_extra_is_reported_not_hidden() -> None:
    code = (
        "import sys; sys.modules['bridge_loadtest.cli'] = None\n"
        "from bridge.cli import main\n"
        "sys.exit(main(['loadtest', '--npcs', '2']))\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2, proc.stderr
    assert "unavailable" in proc.stderr and "convai-bridge[loadtest]" in proc.stderr
    help_out = subprocess.run(
        [sys.executable, "-c", code.replace("['loadtest', '--npcs', '2']", "['--help']")],
        capture_output=True, text=True, timeout=60,
    )
    assert "loadtest" in help_out.stdout
