"""Pacer: real-time release with a bounded lead, measured on the real event-loop clock."""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Awaitable, Callable

import pytest

from bridge.audio.pacing import Pacer

RATE = 48000
FRAME = 960  # 20 ms
SLACK_S = 0.15  # scheduling noise on a shared 2-core machine; this checks correctness, not speed
GUARD_S = 5.0  # a pacer bug must fail the test, not hang it


def guarded(test: Callable[[], Awaitable[None]]) -> Callable[[], Awaitable[None]]:
    @functools.wraps(test)
    async def run() -> None:
        async with asyncio.timeout(GUARD_S):
            await test()

    return run


@guarded
async def test_n_frames_take_real_time_minus_lead() -> None:
    loop = asyncio.get_running_loop()
    pacer = Pacer(RATE, lead_ms=100)
    n = 20
    start = loop.time()
    releases = []
    for _ in range(n):
        await pacer.wait_for(FRAME)
        now = loop.time()
        releases.append(now - start)
        # Never more than the lead buffered at the receiver (plus the pacer's on-time tolerance).
        assert pacer.ahead_s(now) <= 0.100 + 0.001
    elapsed = loop.time() - start
    expected = n * 0.020 - 0.100
    assert expected - 0.002 <= elapsed <= expected + SLACK_S
    # The first lead's worth (5 frames) goes out at once; the 6th waits about one frame.
    assert releases[4] < 0.02
    assert releases[5] >= 0.018
    assert pacer.sent_samples == n * FRAME


@guarded
async def test_reset_allows_a_fresh_lead() -> None:
    loop = asyncio.get_running_loop()
    pacer = Pacer(RATE, lead_ms=60)
    for _ in range(6):
        await pacer.wait_for(FRAME)
    assert pacer.delay_for(FRAME, loop.time()) > 0.01
    pacer.reset()
    assert pacer.sent_samples == 0
    start = loop.time()
    for _ in range(3):
        await pacer.wait_for(FRAME)
    assert loop.time() - start < 0.02


@guarded
async def test_underrun_reanchors_instead_of_bursting() -> None:
    loop = asyncio.get_running_loop()
    pacer = Pacer(RATE, lead_ms=40)
    for _ in range(2):
        await pacer.wait_for(FRAME)
    await asyncio.sleep(0.2)  # producer stalls; the receiver drains and plays silence
    start = loop.time()
    immediate = 0
    for _ in range(10):
        await pacer.wait_for(FRAME)
        if loop.time() - start < 0.01:
            immediate += 1
    # Only the 40 ms lead may go out at once, not the 200 ms the stall "saved up".
    assert immediate <= 3


@guarded
async def test_cancelled_wait_counts_nothing() -> None:
    pacer = Pacer(RATE, lead_ms=0)
    assert await pacer.wait_for(FRAME * 10) < 0.01  # the first chunk never waits
    # 200 ms released with no lead: the next frame waits until the receiver has played it all.
    task = asyncio.create_task(pacer.wait_for(FRAME))
    await asyncio.sleep(0.02)
    assert not task.done()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert pacer.sent_samples == FRAME * 10


@guarded
async def test_chunks_longer_than_the_lead_go_when_the_receiver_runs_dry() -> None:
    loop = asyncio.get_running_loop()
    pacer = Pacer(RATE, lead_ms=10)
    start = loop.time()
    for _ in range(5):
        await pacer.wait_for(FRAME)
    elapsed = loop.time() - start
    assert 0.080 - 0.002 <= elapsed <= 0.080 + SLACK_S


def test_delay_for_is_pure_arithmetic() -> None:
    pacer = Pacer(1000, lead_ms=100)
    assert pacer.delay_for(100, now=5.0) == 0.0
    assert pacer.delay_for(200, now=5.0) == 0.0  # nothing buffered yet: never hold back
    assert pacer.sent_samples == 0


def test_pacer_refuses_nonsense() -> None:
    with pytest.raises(ValueError):
        Pacer(0)
    with pytest.raises(ValueError):
        Pacer(48000, lead_ms=-1)
