"""Real-time pacing of outgoing audio so a receiver's buffer holds at most a bounded lead.

Convai can deliver a whole reply faster than real time. Forwarding it at once would park seconds of
audio in the engine's jitter buffer, where an interruption can no longer reach it. The pacer lets a
producer run ahead of the receiver's playback clock by at most ``lead_ms``.
"""

from __future__ import annotations

import asyncio

# Longest single sleep; keeps a sleeping producer responsive to clock jumps and cancellation.
MAX_SLEEP_S = 0.25
# Waking this close to the deadline counts as on time (asyncio may fire a timer one clock tick early).
ON_TIME_S = 0.0005


class Pacer:
    """Clock for one outgoing stream at ``rate`` samples per second.

    Model: the receiver starts playing the first sample when it arrives and plays continuously; when
    the producer falls behind (the receiver ran dry), the clock re-anchors instead of allowing a burst.
    A chunk is released once the receiver's buffer plus the chunk fits in the lead, or at the latest
    when the receiver would otherwise run dry.
    """

    def __init__(self, rate: int, lead_ms: float = 100.0) -> None:
        if rate <= 0:
            raise ValueError(f"rate must be positive, got {rate}")
        if lead_ms < 0:
            raise ValueError(f"lead_ms must be >= 0, got {lead_ms}")
        self.rate = rate
        self.lead_s = lead_ms / 1000.0
        self._anchor: float | None = None
        self._sent = 0

    @property
    def sent_samples(self) -> int:
        """Samples released since the last :meth:`reset`."""
        return self._sent

    def ahead_s(self, now: float | None = None) -> float:
        """Estimated audio buffered at the receiver right now (seconds released but not yet played)."""
        if self._anchor is None:
            return 0.0
        if now is None:
            now = asyncio.get_running_loop().time()
        return max(0.0, self._sent / self.rate - (now - self._anchor))

    def delay_for(self, samples: int, now: float) -> float:
        """Seconds to wait before ``samples`` more may be released at loop time ``now`` (no state change)."""
        if self._anchor is None:
            anchor = now
        else:
            # Receiver underran: it cannot have played more than it was given.
            anchor = max(self._anchor, now - self._sent / self.rate)
        dry_at = anchor + self._sent / self.rate  # receiver runs out of audio
        # Keep the receiver's buffer within the lead, but never hold audio back from a receiver that is
        # about to run dry (a chunk longer than the lead, or lead 0).
        release_at = min(dry_at + samples / self.rate - self.lead_s, dry_at)
        return max(0.0, release_at - now)

    async def wait_for(self, samples: int) -> float:
        """Sleep until ``samples`` more can be sent without exceeding the lead; returns seconds waited.

        Counts the samples as sent on return; if cancelled while waiting, nothing is counted.
        """
        if samples < 0:
            raise ValueError(f"samples must be >= 0, got {samples}")
        loop = asyncio.get_running_loop()
        start = loop.time()
        while True:
            now = loop.time()
            remaining = self.delay_for(samples, now)
            if remaining <= ON_TIME_S:
                break
            await asyncio.sleep(min(remaining, MAX_SLEEP_S))
        if self._anchor is None:
            self._anchor = now
        else:
            self._anchor = max(self._anchor, now - self._sent / self.rate)
        self._sent += samples
        return now - start

    def reset(self) -> None:
        """Forget the clock (interruption flushed the receiver, or a new turn starts after a gap)."""
        self._anchor = None
        self._sent = 0
