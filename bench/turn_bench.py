"""Turn completion per emulator server profile: does every turn end, with its reply, under each server?

Emulator and daemon run as separate processes (`bench.processes.stack`). For each profile (set at
runtime through the emulator's `POST /_emulator/profile`) one live session holds N text turns back
to back. A turn counts as completed when its `turn_completed` arrives (not interrupted) with a
`bot_reply` and audio under the same turn id, within a generous timeout. Reported per profile:
`turn_completion_<profile>` (completed / attempted, 1.0 is the goal) and `first_text_ms_<profile>`
(median from sending `text` to the turn's first `bot_text`).
"""

from __future__ import annotations

import asyncio
import json
import statistics
import time
import urllib.request
from typing import Any

from bench.processes import stack
from bridge.client import BridgeClient
from convai_emulator.profiles import PROFILES

CHARACTER = "c0ffee00-0000-4000-8000-000000000001"
TURN_TIMEOUT_S = 40.0


def _set_profile(emulator_url: str, name: str) -> None:
    request = urllib.request.Request(
        f"{emulator_url}/_emulator/profile",
        data=json.dumps({"profile": name}).encode(),
        headers={"content-type": "application/json"},
        method="POST",
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        response.read()


async def _one_turn(npc: Any, text: str) -> tuple[bool, float | None]:
    sent = time.monotonic()
    turn = await npc.text(text)
    first: float | None = None
    seen: set[str] = set()
    deadline = sent + TURN_TIMEOUT_S
    while True:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            return False, first
        try:
            msg = await asyncio.wait_for(npc.events.get(), remaining)
        except TimeoutError:
            return False, first
        if msg.get("turn") != turn:
            continue
        if msg.type == "bot_text" and first is None:
            first = (time.monotonic() - sent) * 1000
        seen.add(msg.type)
        if msg.type == "turn_completed":
            ok = not msg["interrupted"] and {"bot_reply", "audio_out"} <= seen
            return ok, first


async def _profile(endpoint: str, token: str, turns: int) -> tuple[float, float | None]:
    client = await BridgeClient.connect(endpoint, token)
    try:
        npc = await client.open_session(CHARACTER, backend="live", open_timeout=60.0,
                                        audio={"sample_rate": 24000, "channels": 1, "frame_ms": 20})
        completed = 0
        firsts: list[float] = []
        for i in range(turns):
            ok, first = await _one_turn(npc, f"Hello, this is turn {i + 1}.")
            completed += ok
            if first is not None:
                firsts.append(first)
        await npc.close()
        return completed / turns, statistics.median(firsts) if firsts else None
    finally:
        await client.close()


def run(quick: bool = False) -> dict[str, float]:
    turns = 2 if quick else 5
    out: dict[str, float] = {}
    with stack() as s:
        for name in PROFILES:
            _set_profile(s.emulator_url, name)
            ratio, first = asyncio.run(_profile(s.endpoint, s.token, turns))
            out[f"turn_completion_{name}"] = ratio
            if first is not None:
                out[f"first_text_ms_{name}"] = round(first, 1)
        _set_profile(s.emulator_url, "current")
    return out


if __name__ == "__main__":
    print(json.dumps(run(quick=True), indent=2))
