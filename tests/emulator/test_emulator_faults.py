"""Fault injection through the admin route and the CLI, seen by a real HTTP client."""

from __future__ import annotations

import argparse
import asyncio
import os
import subprocess
import sys
import time
from pathlib import Path

import aiohttp
import pytest

from convai_emulator import cli
from convai_emulator.faults import FaultInjector, FaultRule, FaultSpecError
from convai_emulator.server import Emulator
from tests.emulator.emulator_support import BLACKSMITH, LIVE_HEADERS, REST_HEADERS

REPO = Path(__file__).resolve().parents[2]


async def set_faults(http: aiohttp.ClientSession, emu: Emulator, body: dict) -> dict:
    async with http.post(f"{emu.rest_url}/_emulator/faults", json=body) as resp:
        assert resp.status == 200, await resp.text()
        return await resp.json()


async def get_response(http: aiohttp.ClientSession, emu: Emulator) -> aiohttp.ClientResponse:
    form = {"charID": BLACKSMITH, "userText": "hi", "sessionID": "-1", "voiceResponse": "False"}
    resp = await http.post(f"{emu.rest_url}/character/getResponse", data=form, headers=REST_HEADERS)
    await resp.read()
    return resp


async def test_status_faults_with_retry_after(http: aiohttp.ClientSession, emulator: Emulator) -> None:
    await set_faults(http, emulator, {"status": 429, "count": 2, "paths": ["/character/getResponse"],
                                      "retry_after_s": 3})
    for _ in range(2):
        resp = await get_response(http, emulator)
        assert resp.status == 429 and resp.headers["Retry-After"] == "3"
        body = await resp.json()
        assert body["ERROR"] == "API rate limit exceeded. Please try again later." and "Reference ID" in body
    async with http.post(f"{emulator.live_url}/connect", json={"character_id": BLACKSMITH},
                         headers=LIVE_HEADERS) as resp:
        assert resp.status == 200  # other paths are untouched
    assert (await get_response(http, emulator)).status == 200  # the count is used up

    await set_faults(http, emulator, {"status": 500, "count": 1, "paths": ["/connect"]})
    async with http.post(f"{emulator.live_url}/connect", json={"character_id": BLACKSMITH},
                         headers=LIVE_HEADERS) as resp:
        assert resp.status == 500 and await resp.json() == {"detail": "Internal server error"}
    await set_faults(http, emulator, {"status": 503, "count": 1, "paths": ["/connect*"]})
    async with http.post(f"{emulator.live_url}/connect/stream", data={"character_id": BLACKSMITH,
                                                                     "text_input": "hi"},
                         headers=LIVE_HEADERS) as resp:
        assert resp.status == 503 and resp.headers["Retry-After"] == "1"
    async with http.get(f"{emulator.rest_url}/_emulator/state") as resp:
        state = await resp.json()
    assert state["statuses"]["POST /character/getResponse"] == {"429": 2, "200": 1}
    assert state["faults"]["rules"] == [] and state["faults"]["fired_requests"] == 4


async def test_latency_and_clear(http: aiohttp.ClientSession, emulator: Emulator) -> None:
    await set_faults(http, emulator, {"latency_ms": 300})
    start = time.monotonic()
    assert (await get_response(http, emulator)).status == 200
    assert time.monotonic() - start >= 0.3
    await set_faults(http, emulator, {"clear": True})
    start = time.monotonic()
    assert (await get_response(http, emulator)).status == 200
    assert time.monotonic() - start < 0.3


async def test_dropped_stream(http: aiohttp.ClientSession, emulator: Emulator) -> None:
    await set_faults(http, emulator, {"drop_stream_after": 3, "paths": ["/connect/stream"], "count": 1})
    form = {"character_id": BLACKSMITH, "text_input": "Tell me about your finest sword"}
    events = 0
    with pytest.raises(aiohttp.ClientPayloadError):
        async with http.post(f"{emulator.live_url}/connect/stream", data=form, headers=LIVE_HEADERS) as resp:
            assert resp.status == 200
            async for line in resp.content:
                events += line.startswith(b"data: ")
    assert events == 3
    async with http.post(f"{emulator.live_url}/connect/stream", data=form, headers=LIVE_HEADERS) as resp:
        assert (await resp.text()).count("data: ") > 6  # next stream is whole again


async def test_hang_outlasts_client_timeout(http: aiohttp.ClientSession, emulator: Emulator) -> None:
    await set_faults(http, emulator, {"hang_ms": 1500, "count": 1, "paths": ["/healthz"]})
    with pytest.raises(asyncio.TimeoutError):
        async with http.get(f"{emulator.live_url}/healthz", timeout=aiohttp.ClientTimeout(total=0.3)):
            pass
    async with http.get(f"{emulator.live_url}/healthz") as resp:
        assert resp.status == 200


async def test_admin_rejects_bad_rules(http: aiohttp.ClientSession, emulator: Emulator) -> None:
    for body in ({"status": 200}, {"probability": 2, "status": 500}, {"colour": "red"}, {}):
        async with http.post(f"{emulator.rest_url}/_emulator/faults", json=body) as resp:
            assert resp.status == 400 and "detail" in await resp.json()
    async with http.post(f"{emulator.rest_url}/_emulator/faults", data=b"[]") as resp:
        assert resp.status == 400


def test_rules_and_seeded_probability() -> None:
    rule = FaultRule.from_spec("status=500,probability=0.5,paths=/a|/b*")
    assert rule.paths == ("/a", "/b*") and rule.matches("/b/c") and not rule.matches("/c")
    first, second = FaultInjector([rule], seed=7), FaultInjector([rule], seed=7)
    assert [first.draw("/a").status for _ in range(50)] == [second.draw("/a").status for _ in range(50)]
    injector = FaultInjector([rule], seed=7)
    hits = sum(injector.draw("/a").status == 500 for _ in range(400))
    assert 140 < hits < 260
    with pytest.raises(FaultSpecError):
        FaultRule.from_spec("status=abc")
    with pytest.raises(FaultSpecError):
        FaultRule.from_spec("hang_ms=999999999")


def test_cli_config() -> None:
    parser = argparse.ArgumentParser()
    cli.add_arguments(parser)
    args = parser.parse_args(["--port", "0", "--latency-ms", "20", "--fault", "status=429,count=2,paths=/connect",
                              "--api-key", "my-own-key"])
    config = cli.config_from_args(args)
    assert config.api_key == "my-own-key" and config.port == 0
    assert [r.latency_ms for r in config.faults] == [20, 0] and config.faults[1].status == 429
    assert "my-own-key" not in repr(config)
    bad = parser.parse_args(["--fault", "status=nope"])
    assert cli.run(bad) == 2


@pytest.mark.parametrize("own_key", [True, False])
def test_cli_process_serves_and_never_prints_a_user_key(tmp_path: Path, own_key: bool) -> None:
    env = {**os.environ, "PYTHONPATH": str(REPO), "PYTHONUNBUFFERED": "1"}
    key_args = ["--api-key", "super-secret-key-123"] if own_key else []
    proc = subprocess.Popen([sys.executable, "-m", "convai_emulator.cli", "--port", "0", "--voice", "synthetic",
                             *key_args], cwd=tmp_path, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        lines = []
        deadline = time.monotonic() + 15
        assert proc.stdout is not None
        while time.monotonic() < deadline:
            line = proc.stdout.readline()
            if not line:
                break
            lines.append(line)
            if "API key:" in line:
                break
        output = "".join(lines)
        assert "listening on http://127.0.0.1:" in output
        assert "super-secret-key-123" not in output
        if not own_key:  # the public development key is announced so users can copy it
            assert "'convai-bridge-dev-key'" in output
        url = output.split("listening on ", 1)[1].split()[0]

        async def probe() -> int:
            async with aiohttp.ClientSession() as http, http.get(f"{url}/healthz") as resp:
                return resp.status

        assert asyncio.run(probe()) == 200
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        if proc.stdout is not None:
            proc.stdout.close()
    assert proc.returncode == 0

