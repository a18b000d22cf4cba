"""Issue 12: a seeded, bounded storm of mutated messages from several clients while a good one talks.

Every input must end in a schema error code (never `internal`), every request must be answered, no
client may hear of a session it did not open, and the good client must not lose a turn.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from bench.hostile import run_fuzz
from bridge.daemon.endpoint import EngineEndpoint
from bridge.daemon.front import Front
from bridge.daemon.router import Daemon
from tests.conftest import daemon_config


@pytest.fixture(params=[0, 1], ids=["workers0", "workers1"])
async def endpoint(request: pytest.FixtureRequest, tmp_path: Path, emulator: object) -> AsyncIterator[EngineEndpoint]:
    cfg = daemon_config(tmp_path, emulator, max_sessions=4, max_requests_per_s=1_000_000, metrics_port=0)
    cfg.max_session_requests_per_s = 1_000_000  # this test is about handling every input, not the limits
    d: EngineEndpoint = Front(cfg, request.param) if request.param else Daemon(cfg)
    await d.start()
    yield d
    await d.stop()


async def test_fuzzed_messages_end_in_schema_errors_and_leak_nothing(endpoint: EngineEndpoint) -> None:
    messages = 20_000 if isinstance(endpoint, Daemon) else 10_000
    report = await run_fuzz(endpoint.endpoint, endpoint.token, messages, seed=12, fuzzers=3)
    assert report.sent == messages
    assert report.internal_errors == 0, report.samples
    assert report.unanswered == 0, report.samples
    assert report.foreign == 0, report.samples
    assert report.good_failures == 0 and report.good_turns >= 2, report.samples
    assert {"invalid_field", "missing_field", "bad_message", "unknown_session"} <= set(report.codes)
    assert endpoint.clients == {} or all(len(c.sessions) <= 4 for c in endpoint.clients.values())
