"""Bounded retries with exponential backoff and full jitter for Convai 429/5xx/timeouts.

Retrying inside the daemon hides short blips from the engine; the bound keeps a dead service from
holding a turn forever, after which the engine gets the last error with retryable=true.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Awaitable, Callable
from typing import TypeVar

from bridge.backends.errors import ConvaiHTTPError

T = TypeVar("T")


def backoff_delay(attempt: int, base: float, cap: float, retry_after: float | None, rng: random.Random) -> float:
    """Delay before retry number `attempt` (1-based): full jitter, at least the server's Retry-After."""
    delay = rng.uniform(0, min(cap, base * (2 ** (attempt - 1))))
    if retry_after is not None:
        delay = max(delay, min(retry_after, cap))
    return delay


async def with_retries(
    call: Callable[[], Awaitable[T]],
    *,
    max_retries: int,
    base: float,
    cap: float,
    rng: random.Random | None = None,
    on_retry: Callable[[int, ConvaiHTTPError, float], None] | None = None,
) -> T:
    rng = rng or random.Random()
    attempt = 0
    while True:
        try:
            return await call()
        except ConvaiHTTPError as exc:
            attempt += 1
            if not exc.retryable or attempt > max_retries:
                raise
            delay = backoff_delay(attempt, base, cap, exc.retry_after, rng)
            if on_retry:
                on_retry(attempt, exc, delay)
            await asyncio.sleep(delay)
