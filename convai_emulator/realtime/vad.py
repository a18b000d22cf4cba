"""Voice activity detection on the user's microphone: an adaptive noise floor with onset and hangover.

A fixed energy threshold fails on a real, live microphone: steady room noise (a fan, a quiet
preamp) sits just above or below it, so the bot hears "speech" that never ends, or flickers on and
off and barges itself off every few hundred milliseconds. This detector instead compares each
frame's level with a running estimate of the noise floor:

* **Floor.** While nobody speaks the floor follows the level: down fast (quieter frames are better
  evidence of the floor), up slowly (a rising level is more likely speech than noise). During an
  utterance it may only fall. It starts at ``initial_floor_dbfs`` (a quiet room).
* **Speech frame.** Level above ``floor + margin_db`` *and* above ``min_speech_dbfs`` (nothing
  quieter than that is speech, whatever the floor).
* **Onset / hangover.** ``start_secs`` of consecutive speech frames open an utterance (Convai's
  ``vad_params.start_secs``); ``stop_secs`` of non-speech frames close it.
* **Stationarity.** Speech is modulated (syllables make its level swing by 10 dB or more several
  times a second); noise is not. If an open utterance's level has stayed within
  ``stationary_db`` (standard deviation) for ``stationary_secs``, it was noise that started
  abruptly (a mic opened in a noisy room): the utterance is discarded and the floor jumps to that
  level, so the same noise never triggers again. Unless the utterance held speech before it went
  steady (the room opened it and the player spoke into it, before the floor had learned the room):
  if its levels rose ``margin_db`` above that steady level for ``start_secs`` in all, it ends as
  STOPPED where that speech ended, and the floor learns the room all the same. A mic-open transient
  lies below the room's level and never counts.

Convai's ``vad_params.confidence`` / ``min_volume`` refer to Silero and are not used here.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass
from enum import Enum

import numpy as np


class VadEvent(Enum):
    STARTED = "started"
    STOPPED = "stopped"
    DISCARDED = "discarded"  # the open utterance turned out to be steady noise


@dataclass(frozen=True)
class VadParams:
    start_secs: float = 0.2
    stop_secs: float = 0.5
    pre_roll_ms: int = 300
    margin_db: float = 9.0
    min_speech_dbfs: float = -48.0
    initial_floor_dbfs: float = -70.0
    floor_rise_s: float = 3.0  # time constant of the floor rising towards louder non-speech frames
    floor_fall_s: float = 0.05  # ... and falling towards quieter ones
    stationary_secs: float = 1.5
    stationary_db: float = 1.0

    @classmethod
    def from_connect(cls, raw: object) -> VadParams:
        if not isinstance(raw, dict):
            return cls()
        base = cls()
        start = raw.get("start_secs", base.start_secs)
        stop = raw.get("stop_secs", base.stop_secs)
        return cls(
            start_secs=float(start) if isinstance(start, int | float) else base.start_secs,
            stop_secs=max(0.3, float(stop)) if isinstance(stop, int | float) else base.stop_secs,
        )


def frame_dbfs(samples: np.ndarray) -> float:
    """Frame level in dBFS from every 4th sample: plenty for a level detector, a quarter of the work."""
    data = samples[::4].astype(np.float32)
    power = float(np.dot(data, data)) / max(1, data.size)
    return 10.0 * math.log10(power / (32768.0 * 32768.0)) if power > 0 else -120.0


class AdaptiveVad:
    """Feed 16-bit frames with their duration; get STARTED / STOPPED / DISCARDED transitions back."""

    FLOOR_LIMIT_DBFS = -90.0
    HISTORY_FRAMES = 3000  # a minute of 20 ms frames: older speech than that has long been heard

    def __init__(self, params: VadParams | None = None) -> None:
        self.params = params or VadParams()
        self.speaking = False
        self.floor_dbfs = self.params.initial_floor_dbfs
        self._loud = 0.0
        self._quiet = 0.0
        self.speech_seconds = 0.0  # duration of the current (or last) utterance, trailing quiet excluded
        self._span = 0.0
        # every level of the open utterance (seconds, dB, span at its end), for the speech-or-room question
        self._history: deque[tuple[float, float, float]] = deque(maxlen=self.HISTORY_FRAMES)
        # levels of the open utterance over the last stationary_secs: (seconds, dB) and running sums
        self._window: deque[tuple[float, float]] = deque()
        self._window_s = 0.0
        self._sum = 0.0
        self._sum_sq = 0.0

    @property
    def threshold_dbfs(self) -> float:
        return max(self.floor_dbfs + self.params.margin_db, self.params.min_speech_dbfs)

    def _track_floor(self, level: float, seconds: float, rise: bool) -> None:
        p = self.params
        if level < self.floor_dbfs:
            alpha = 1.0 - math.exp(-seconds / p.floor_fall_s)
        elif rise:
            alpha = 1.0 - math.exp(-seconds / p.floor_rise_s)
        else:
            return
        self.floor_dbfs = max(self.FLOOR_LIMIT_DBFS, self.floor_dbfs + alpha * (level - self.floor_dbfs))

    def _remember(self, level: float, seconds: float) -> bool:
        """Add a level of the open utterance; True when the last stationary_secs were steady."""
        self._window.append((seconds, level))
        self._window_s += seconds
        self._sum += level * seconds
        self._sum_sq += level * level * seconds
        while self._window and self._window_s - self._window[0][0] >= self.params.stationary_secs:
            old_s, old = self._window.popleft()
            self._window_s -= old_s
            self._sum -= old * old_s
            self._sum_sq -= old * old * old_s
        if self._window_s < self.params.stationary_secs - 0.05:
            return False
        mean = self._sum / self._window_s
        variance = max(0.0, self._sum_sq / self._window_s - mean * mean)
        return math.sqrt(variance) < self.params.stationary_db

    def _speech_before(self, room_dbfs: float) -> float:
        """Span (seconds into the utterance) where speech above the room last ended; 0.0 if there was none."""
        above = room_dbfs + self.params.margin_db
        loud = [(seconds, end) for seconds, level, end in self._history if level > above]
        if sum(seconds for seconds, _ in loud) < self.params.start_secs:
            return 0.0
        return loud[-1][1]

    def _clear_window(self) -> None:
        self._window.clear()
        self._window_s = self._sum = self._sum_sq = 0.0

    def feed(self, samples: np.ndarray, seconds: float) -> VadEvent | None:
        level = frame_dbfs(samples)
        loud = level > self.threshold_dbfs
        if not self.speaking:
            self._track_floor(level, seconds, rise=not loud)
            if loud:
                self._loud += seconds
                self._remember(level, seconds)
                self._history.append((seconds, level, self._loud))
            else:
                self._loud = 0.0
                self._clear_window()
                self._history.clear()
            if self._loud >= self.params.start_secs:
                self.speaking = True
                self._span = self._loud
                self.speech_seconds = self._loud
                self._quiet = 0.0
                return VadEvent.STARTED
            return None
        self._track_floor(level, seconds, rise=False)
        self._span += seconds
        self._history.append((seconds, level, self._span))
        if self._remember(level, seconds):
            room = self._sum / self._window_s
            self.floor_dbfs = room  # the room's level: it is the floor now
            spoken = self._speech_before(room)
            self.force_stop()
            if spoken:  # the room opened the utterance, or outlasted it; speech was in it all the same
                self.speech_seconds = spoken
                return VadEvent.STOPPED
            return VadEvent.DISCARDED
        if loud:
            self._quiet = 0.0
            self.speech_seconds = self._span
            return None
        self._quiet += seconds
        if self._quiet >= self.params.stop_secs:
            self.force_stop()
            return VadEvent.STOPPED
        return None

    def force_stop(self) -> None:
        self.speaking = False
        self._loud = 0.0
        self._quiet = 0.0
        self._clear_window()
        self._history.clear()
