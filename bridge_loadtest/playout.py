"""A client's jitter buffer, modelled: would this NPC's bot audio have played without a gap?

Playback of a turn starts when its first frame arrives (plus an optional prebuffer) and then consumes
audio in real time. Each later frame has a playout deadline: the moment the audio before it runs out.
A frame that arrives after its deadline is an underrun; the gap is how long the speaker was silent.
Playback resumes with that frame (the clock re-anchors), so one late frame is one underrun, not a
cascade. The same model drives the daemon's pacer (``bridge.audio.pacing``), so a daemon that keeps
up never causes an underrun here, whatever its lead.
"""

from __future__ import annotations


class PlayoutModel:
    def __init__(self, prebuffer_s: float = 0.0) -> None:
        if prebuffer_s < 0:
            raise ValueError(f"prebuffer must be >= 0, got {prebuffer_s}")
        self.prebuffer_s = prebuffer_s
        self.reset()

    def reset(self) -> None:
        self._anchor: float | None = None  # when sample 0 of the turn plays
        self.queued_s = 0.0  # audio received so far in this turn
        self.underruns = 0
        self.gap_max_s = 0.0
        self.gap_total_s = 0.0
        self.depth_max_s = 0.0  # most audio buffered ahead of playback at any arrival

    def frame(self, t: float, duration_s: float) -> float | None:
        """A frame of ``duration_s`` arrived at ``t`` (seconds, monotonic); returns the gap if it underran."""
        gap: float | None = None
        if self._anchor is None:
            self._anchor = t + self.prebuffer_s
        else:
            deadline = self._anchor + self.queued_s
            if t > deadline:
                gap = t - deadline
                self.underruns += 1
                self.gap_max_s = max(self.gap_max_s, gap)
                self.gap_total_s += gap
                self._anchor = t + self.prebuffer_s - self.queued_s
            else:
                self.depth_max_s = max(self.depth_max_s, deadline - t)
        self.queued_s += duration_s
        return gap
