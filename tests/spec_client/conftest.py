"""Fixtures: one emulator + daemon process pair per module, and spec clients connected to it."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.spec_client.client import SpecClient
from tests.spec_client.stack import Stack, start_stack

CHARACTER = "c0ffee00-0000-4000-8000-000000000001"


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest) -> Iterator[Stack]:
    opts = getattr(request.module, "STACK", {})
    s = start_stack(tmp_path_factory.mktemp("stack"), **opts)
    yield s
    s.stop()


@pytest.fixture
def spec_client(stack: Stack) -> Iterator[SpecClient]:
    c = SpecClient(Path(stack.connection_file))
    c.hello()
    yield c
    c.close()
    assert c.conformance.violations == [], "\n".join(c.conformance.violations[:40])
