"""Energy-based voice activity detection on the user's microphone frames.

The emulator has no speech model; a frame is "speech" when its RMS is above a dBFS threshold.
``start_secs`` of speech opens an utterance and ``stop_secs`` of quiet closes it, mirroring the
shape of Convai's ``vad_params`` (whose ``confidence`` / ``min_volume`` refer to Silero and are not
used here).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from enum import Enum

import numpy as np


class VadEvent(Enum):
    STARTED = "started"
    STOPPED = "stopped"


@dataclass(frozen=True)
class VadParams:
    start_secs: float = 0.2
    stop_secs: float = 0.5
    threshold_dbfs: float = -42.0
    pre_roll_ms: int = 300

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
    """Frame level in dBFS from every 4th sample: plenty for an energy gate, a quarter of the work."""
    data = samples[::4].astype(np.float32)
    power = float(np.dot(data, data)) / max(1, data.size)
    return 10.0 * math.log10(power / (32768.0 * 32768.0)) if power > 0 else -120.0


class EnergyVad:
    """Feed 16-bit frames with their duration; get STARTED / STOPPED transitions back."""

    def __init__(self, params: VadParams | None = None) -> None:
        self.params = params or VadParams()
        self.speaking = False
        self._loud = 0.0
        self._quiet = 0.0
        self.speech_seconds = 0.0  # duration of the current (or last) utterance, trailing quiet excluded
        self._span = 0.0

    def feed(self, samples: np.ndarray, seconds: float) -> VadEvent | None:
        loud = frame_dbfs(samples) > self.params.threshold_dbfs
        if not self.speaking:
            self._loud = self._loud + seconds if loud else 0.0
            if self._loud >= self.params.start_secs:
                self.speaking = True
                self._span = self._loud
                self.speech_seconds = self._loud
                self._quiet = 0.0
                return VadEvent.STARTED
            return None
        self._span += seconds
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
