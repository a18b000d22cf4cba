"""Pacer: real-time release with a bounded lead, measured on the real event-loop clock."""

from __future__ import annotations

import asyncio

import pytest

from bridge.audio.pacing import Pacer

RATE = 48000
FRAME = 960  # 20 ms
SLACK_S = 0.15  # scheduling noise on a shared 2-core machine; this checks correctness, not speed


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


async def test_cancelled_wait_counts_nothing() -> None:
    pacer = Pacer(RATE, lead_ms=0)
    await pacer.wait_for(FRAME * 10)  # 200 ms released; the next frame must wait ~200 ms
    task = asyncio.create_task(pacer.wait_for(FRAME))
    await asyncio.sleep(0.02)
    assert not task.done()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert pacer.sent_samples == FRAME * 10


def test_delay_for_is_pure_arithmetic() -> None:
    pacer = Pacer(1000, lead_ms=100)
    assert pacer.delay_for(100, now=5.0) == 0.0
    assert pacer.delay_for(200, now=5.0) == pytest.approx(0.1)
    assert pacer.sent_samples == 0


def test_pacer_refuses_nonsense() -> None:
    with pytest.raises(ValueError):
        Pacer(0)
    with pytest.raises(ValueError):
        Pacer(48000, lead_ms=-1)
