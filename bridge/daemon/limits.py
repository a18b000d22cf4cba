"""Per-client and per-session rate limits: token buckets, so a burst passes and a flood does not."""

from __future__ import annotations

import time
from dataclasses import dataclass, field


@dataclass
class TokenBucket:
    rate: float  # tokens per second
    burst: float
    tokens: float = -1.0
    stamp: float = field(default_factory=time.monotonic)

    def __post_init__(self) -> None:
        if self.tokens < 0:
            self.tokens = self.burst

    def take(self, now: float | None = None) -> bool:
        """One token if there is one; False means over the limit."""
        now = time.monotonic() if now is None else now
        self.tokens = min(self.burst, self.tokens + (now - self.stamp) * self.rate)
        self.stamp = now
        if self.tokens >= 1.0:
            self.tokens -= 1.0
            return True
        return False

    def retry_after_ms(self) -> int:
        return max(1, int((1.0 - self.tokens) / self.rate * 1000)) if self.rate > 0 else 1000


def bucket(rate_per_s: int) -> TokenBucket:
    rate = float(max(1, rate_per_s))
    return TokenBucket(rate, 2 * rate)
