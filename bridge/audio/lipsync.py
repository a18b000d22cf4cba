"""Lip-sync timing in samples, and an amplitude-envelope viseme fallback for audio that comes without any.

REST replies carry a WAV and no visemes, so the bridge derives OVR-style viseme frames from the audio
itself: a smoothed RMS envelope decides how open the mouth is, and each frame's spectrum picks the
shape: high-band energy means sibilants (ss/ch/ff), the centroid below 1 kHz (F1) how far the jaw
drops, and the balance around 1.5 kHz (F2) spread (e/ih) versus back (aa/oh/ou) vowels. It is a
fallback, not phoneme recognition, but it opens and closes the mouth in time with the voice.

Frame ``k`` at ``fps`` starts at sample ``frame_start_sample(k, rate, fps)`` = round(k·rate/fps),
rounding halves up, so engines can place frames on their audio clock exactly.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from fractions import Fraction

import numpy as np
from scipy import signal

from bridge.audio.pcm import as_frames, validate_channels, validate_rate

VISEME_NAMES: tuple[str, ...] = (
    "sil", "pp", "ff", "th", "dd", "kk", "ch", "ss", "nn", "rr", "aa", "e", "ih", "oh", "ou",
)  # fmt: skip
VISEME_INDEX: dict[str, int] = {name: i for i, name in enumerate(VISEME_NAMES)}

# Envelope tuning. Levels are dBFS of the DC-blocked signal.
GATE_DB = -55.0  # below this a frame is silence whatever the recent peak
RANGE_DB = 30.0  # openness spans [peak - RANGE_DB, peak]
PEAK_INIT_DB = -20.0  # assumed speech level before any is heard; the reference decays no lower (unless calibrated)
PEAK_RELEASE_DB_PER_S = 6.0  # how fast the loudness reference decays after loud passages
ATTACK_S = 0.015  # mouth opens quickly...
RELEASE_S = 0.050  # ...and closes a little slower, as real mouths do
CLOSED_BELOW = 0.02  # a closing mouth snaps shut here instead of creeping towards 0 forever
REFERENCE_RANGE_DB = (-45.0, 0.0)  # clamp for a whole clip's measured speech level
FEATURE_SMOOTH_S = 0.030  # smoothing of the spectral shape features
LOW_CUT_HZ = 70.0
HIGH_BAND_HZ = 4000.0  # sibilance band start; capped below Nyquist for low rates
# Vowel shape: the spectral centroid below 1 kHz follows F1 (jaw opening), the energy balance around
# 1.5 kHz follows F2 (front/spread vs back/rounded).
F1_BAND_HZ = (150.0, 1000.0)
JAW_CLOSED_HZ, JAW_OPEN_HZ = 350.0, 600.0
F2_LOW_HZ = (600.0, 1500.0)
F2_HIGH_HZ = (1500.0, 3500.0)
FRONT_TILT_DB = (-4.0, 4.0)


@dataclass(frozen=True, slots=True)
class VisemeFrame:
    """Viseme weights (``VISEME_NAMES`` order, 0..1, summing to 1) for frame ``index`` of a turn."""

    index: int
    sample_offset: int
    weights: tuple[float, ...]

    def as_dict(self) -> dict[str, float]:
        """The Convai ``visemes`` message shape: name → weight."""
        return dict(zip(VISEME_NAMES, self.weights, strict=True))


def frame_start_sample(index: int, rate: int, fps: float) -> int:
    """First sample of lip-sync frame ``index``: round(index·rate/fps), halves rounded up."""
    exact = Fraction(index * rate) / Fraction(fps)
    return math.floor(exact + Fraction(1, 2))


def frame_index_at(sample: int, rate: int, fps: float) -> int:
    """Index of the lip-sync frame that covers ``sample`` (inverse of :func:`frame_start_sample`)."""
    index = math.floor(Fraction(sample) * Fraction(fps) / rate)
    while frame_start_sample(index + 1, rate, fps) <= sample:
        index += 1
    while index > 0 and frame_start_sample(index, rate, fps) > sample:
        index -= 1
    return index


def samples_for_seconds(seconds: float, rate: int) -> int:
    """Sample offset of a time-based stamp (Convai blendshape/viseme timestamps), halves rounded up."""
    return math.floor(seconds * rate + 0.5)


def samples_for_ms(ms: float, rate: int) -> int:
    """Sample offset of a millisecond stamp, halves rounded up."""
    return math.floor(ms * rate / 1000.0 + 0.5)


def seconds_for_samples(samples: int, rate: int) -> float:
    """Time of a sample offset."""
    return samples / rate


class EnvelopeLipSync:
    """Streaming viseme estimator: push PCM chunks of any size, get the frames they complete.

    Each frame is analysed over exactly its own samples and the DC filter keeps state across pushes, so
    the frames do not depend on how the audio was chunked.
    """

    def __init__(self, rate: int, fps: float = 100, channels: int = 1, reference_db: float | None = None) -> None:
        """``reference_db`` is the expected speech level (dBFS RMS); unknown for a live stream, in which
        case the envelope starts from ``PEAK_INIT_DB`` and adapts downwards at ``PEAK_RELEASE_DB_PER_S``."""
        self.rate = validate_rate(rate)
        self.channels = validate_channels(channels)
        if not 1 <= fps <= 1000:
            raise ValueError(f"fps must be in 1..1000, got {fps}")
        self.fps = fps
        self._high_hz = min(HIGH_BAND_HZ, 0.4 * self.rate)
        self._sos_dc = signal.butter(2, LOW_CUT_HZ, "highpass", fs=self.rate, output="sos")
        frame_s = 1.0 / fps
        self._attack = 1.0 - math.exp(-frame_s / ATTACK_S)
        self._release = 1.0 - math.exp(-frame_s / RELEASE_S)
        self._feature_alpha = 1.0 - math.exp(-frame_s / FEATURE_SMOOTH_S)
        self._peak_decay = PEAK_RELEASE_DB_PER_S * frame_s
        self._masks: dict[int, tuple[np.ndarray, ...]] = {}
        if reference_db is None:
            self._reference_db = PEAK_INIT_DB
        else:
            self._reference_db = min(max(reference_db, REFERENCE_RANGE_DB[0]), REFERENCE_RANGE_DB[1])
        self.reset()

    def reset(self) -> None:
        """Start a new turn: frame indices and offsets restart at 0, filters and envelope go quiet."""
        self._zi_dc = np.zeros((self._sos_dc.shape[0], 2))
        self._pending = np.zeros(0)
        self._pending_start = 0  # turn sample offset of _pending[0]
        self._index = 0
        self._open = 0.0
        self._peak_db = self._reference_db
        # Smoothed spectral features: sibilance, jaw opening (F1), frontness (F2).
        self._features = np.zeros(3)

    def push(self, pcm: np.ndarray) -> list[VisemeFrame]:
        """Analyse the next int16 chunk and return every viseme frame it completes."""
        mono = as_frames(pcm, self.channels).astype(np.float64).mean(axis=1) / 32768.0
        if not mono.shape[0]:
            return []
        filtered, self._zi_dc = signal.sosfilt(self._sos_dc, mono, zi=self._zi_dc)
        self._pending = np.concatenate([self._pending, filtered])
        out: list[VisemeFrame] = []
        while True:
            end = frame_start_sample(self._index + 1, self.rate, self.fps) - self._pending_start
            if end > self._pending.shape[0]:
                break
            out.append(self._frame(end))
        return out

    def flush(self) -> list[VisemeFrame]:
        """End the turn: analyse the last partial frame, add a closing all-``sil`` frame, then reset."""
        out: list[VisemeFrame] = []
        if self._pending.shape[0]:
            out.append(self._frame(self._pending.shape[0]))
        closing = [0.0] * len(VISEME_NAMES)
        closing[VISEME_INDEX["sil"]] = 1.0
        out.append(VisemeFrame(self._index, frame_start_sample(self._index, self.rate, self.fps), tuple(closing)))
        self.reset()
        return out

    def _frame(self, end: int) -> VisemeFrame:
        block = self._pending[:end]
        self._pending = self._pending[end:]
        frame = VisemeFrame(self._index, self._pending_start, self._weights(block))
        self._pending_start += end
        self._index += 1
        return frame

    def _band_masks(self, n: int) -> tuple[np.ndarray, ...]:
        masks = self._masks.get(n)
        if masks is None:
            f = np.fft.rfftfreq(n, 1.0 / self.rate)
            masks = (
                f,
                f >= LOW_CUT_HZ,  # speech band
                f >= self._high_hz,  # sibilance
                (f >= F1_BAND_HZ[0]) & (f < F1_BAND_HZ[1]),
                (f >= F2_LOW_HZ[0]) & (f < F2_LOW_HZ[1]),
                (f >= F2_HIGH_HZ[0]) & (f < F2_HIGH_HZ[1]),
            )
            self._masks[n] = masks
        return masks

    def _weights(self, block: np.ndarray) -> tuple[float, ...]:
        total = float(np.mean(block**2)) if block.shape[0] else 0.0
        level_db = 10.0 * math.log10(total) if total > 1e-20 else -200.0
        self._peak_db = max(level_db, self._peak_db - self._peak_decay, min(PEAK_INIT_DB, self._reference_db))
        floor_db = max(self._peak_db - RANGE_DB, GATE_DB)
        target = min(1.0, max(0.0, (level_db - floor_db) / max(self._peak_db - floor_db, 1e-6)))
        coeff = self._attack if target > self._open else self._release
        self._open += coeff * (target - self._open)
        if target == 0.0 and self._open < CLOSED_BELOW:
            self._open = 0.0

        if level_db > GATE_DB and block.shape[0] >= 8:
            f, speech, high, f1, f2_low, f2_high = self._band_masks(block.shape[0])
            power = np.abs(np.fft.rfft(block * signal.windows.hann(block.shape[0], sym=False))) ** 2
            speech_e = float(power[speech].sum()) + 1e-30
            f1_e = float(power[f1].sum()) + 1e-30
            sibilance = float(power[high].sum()) / speech_e
            centroid = float((power[f1] * f[f1]).sum()) / f1_e
            tilt_db = 10.0 * math.log10((float(power[f2_high].sum()) + 1e-30) / (float(power[f2_low].sum()) + 1e-30))
            observed = np.array(
                [
                    _ramp(sibilance, 0.25, 0.60),
                    _ramp(centroid, JAW_CLOSED_HZ, JAW_OPEN_HZ),
                    _ramp(tilt_db, FRONT_TILT_DB[0], FRONT_TILT_DB[1]),
                ]
            )
            self._features += self._feature_alpha * (observed - self._features)
        sibilant, jaw, front = (float(v) for v in self._features)

        act = self._open
        voiced = act * (1.0 - sibilant)
        back = voiced * (1.0 - front)
        aa = _ramp(jaw, 0.5, 1.0)
        ou = 1.0 - _ramp(jaw, 0.0, 0.5)
        w = [0.0] * len(VISEME_NAMES)
        w[VISEME_INDEX["e"]] = voiced * front * jaw
        w[VISEME_INDEX["ih"]] = voiced * front * (1.0 - jaw)
        w[VISEME_INDEX["aa"]] = back * aa
        w[VISEME_INDEX["oh"]] = back * (1.0 - aa - ou)
        w[VISEME_INDEX["ou"]] = back * ou
        w[VISEME_INDEX["ss"]] = act * sibilant * 0.7
        w[VISEME_INDEX["ch"]] = act * sibilant * 0.2
        w[VISEME_INDEX["ff"]] = act * sibilant * 0.1
        w[VISEME_INDEX["sil"]] = max(0.0, 1.0 - sum(w))
        return tuple(round(v, 6) for v in w)


def _ramp(value: float, lo: float, hi: float) -> float:
    """0 at or below ``lo``, 1 at or above ``hi``, linear between."""
    return min(1.0, max(0.0, (value - lo) / (hi - lo)))


def speech_level_db(pcm: np.ndarray, rate: int, channels: int = 1) -> float:
    """Loud-speech level of a clip: the 90th percentile of 10 ms RMS, in dBFS (-inf for silence)."""
    mono = as_frames(pcm, channels).astype(np.float64).mean(axis=1) / 32768.0
    hop = max(1, rate // 100)
    usable = mono[: mono.shape[0] // hop * hop].reshape(-1, hop)
    if not usable.shape[0]:
        return float("-inf")
    energy = float(np.percentile(np.mean(usable**2, axis=1), 90))
    return 10.0 * math.log10(energy) if energy > 1e-20 else float("-inf")


def envelope_visemes(pcm: np.ndarray, rate: int, fps: float = 100, channels: int = 1) -> list[VisemeFrame]:
    """Viseme frames for a whole clip (e.g. a REST reply), ending with a closing ``sil`` frame.

    Knowing the whole clip, it calibrates the envelope to the clip's own speech level first, so quiet
    and loud TTS voices open the mouth alike.
    """
    lipsync = EnvelopeLipSync(rate, fps, channels, reference_db=speech_level_db(pcm, rate, channels))
    return lipsync.push(pcm) + lipsync.flush()
