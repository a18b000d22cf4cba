"""Cutting a stream of arbitrary-length chunks into fixed-size frames stamped with their sample offset.

Engines and WebRTC want fixed frames (e.g. 20 ms); Convai and the resampler produce whatever length
they like. The offset stamped on each frame is what lip sync and the engine's audio clock key on.
"""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction

import numpy as np

from bridge.audio.errors import AudioErrorCode, AudioFormatError
from bridge.audio.pcm import as_frames, shaped, validate_channels, validate_rate


@dataclass(frozen=True, slots=True)
class Frame:
    """One fixed-size frame; ``samples`` < frame size only for a zero-padded final frame."""

    pcm: np.ndarray
    sample_offset: int
    samples: int

    @property
    def padded(self) -> bool:
        return self.samples < self.pcm.shape[0]


def frame_samples_for(rate: int, frame_ms: float) -> int:
    """Samples per frame of ``frame_ms`` at ``rate``; refuses durations that are not a whole sample count."""
    exact = frame_size_for(rate, frame_ms)
    if exact.denominator != 1:
        raise AudioFormatError(
            AudioErrorCode.BAD_FRAME_SIZE, f"{frame_ms} ms at {rate} Hz is not a whole number of samples"
        )
    return int(exact)


def frame_size_for(rate: int, frame_ms: float) -> Fraction:
    """Exact (possibly fractional) samples per frame, e.g. 11025 Hz x 10 ms = 441/4.

    Exact arithmetic matters: 22050 * 0.02 is 441.00000000000006 in floating point.
    """
    rate = validate_rate(rate)
    ms = Fraction(frame_ms).limit_denominator(1000)
    if ms <= 0:
        raise AudioFormatError(AudioErrorCode.BAD_FRAME_SIZE, f"frame duration must be > 0 ms, got {frame_ms}")
    return Fraction(rate) * ms / 1000


def frame_bounds(size: Fraction, index: int) -> tuple[int, int]:
    """First sample and length of frame ``index`` when frames are ``size`` samples long on average.

    Frame k starts at floor(k * size), so every frame holds whole samples, lengths differ by at most
    one, and the frame clock never drifts from the sample clock (k frames span exactly k * frame_ms).
    """
    start = (size * index).__floor__()
    return start, (size * (index + 1)).__floor__() - start


class Framer:
    """Accumulates chunks and yields frames of ``frame_samples`` samples per channel.

    ``frame_samples`` may be a fraction (11025 Hz x 10 ms = 110.25): frames then alternate between the
    two neighbouring whole sizes as :func:`frame_bounds` says. ``sample_offset`` of a frame counts real
    samples since the last :meth:`reset` (the turn start). Frames own their memory, so callers may keep
    them after pushing more audio.
    """

    def __init__(self, frame_samples: int | Fraction, channels: int = 1) -> None:
        if isinstance(frame_samples, bool) or not isinstance(frame_samples, int | Fraction) or frame_samples < 1:
            raise AudioFormatError(AudioErrorCode.BAD_FRAME_SIZE, f"frame size must be >= 1, got {frame_samples!r}")
        self.size = Fraction(frame_samples)
        self.frame_samples = -((-self.size.numerator) // self.size.denominator)  # largest frame (ceil)
        self.channels = validate_channels(channels)
        self._buf = np.zeros((self.frame_samples, self.channels), dtype=np.int16)
        self._fill = 0
        self._next_offset = 0
        self._index = 0
        self._want = frame_bounds(self.size, 0)[1]

    @property
    def pending_samples(self) -> int:
        """Samples waiting for a full frame."""
        return self._fill

    @property
    def sample_offset(self) -> int:
        """Offset the next frame will carry."""
        return self._next_offset

    @property
    def next_frame_samples(self) -> int:
        """Length of the next full frame."""
        return self._want

    def push(self, pcm: np.ndarray) -> list[Frame]:
        """Add a chunk (1-D mono/interleaved or ``(n, ch)`` int16) and return every frame it completes."""
        data = as_frames(pcm, self.channels)
        frames: list[Frame] = []
        pos = 0
        total = data.shape[0]
        if self._fill:
            take = min(self._want - self._fill, total)
            self._buf[self._fill : self._fill + take] = data[:take]
            self._fill += take
            pos = take
            if self._fill == self._want:
                frames.append(self._emit(self._buf[: self._want].copy(), self._want))
                self._fill = 0
        while total - pos >= self._want:
            want = self._want
            frames.append(self._emit(data[pos : pos + want].copy(), want))
            pos += want
        rest = total - pos
        if rest:
            self._buf[:rest] = data[pos:]
            self._fill = rest
        return frames

    def flush(self, pad: bool = True) -> Frame | None:
        """Emit the final partial frame, zero-padded to full size unless ``pad`` is False; None if empty."""
        if not self._fill:
            return None
        real = self._fill
        if pad:
            block = self._buf[: self._want].copy()
            block[real:] = 0
        else:
            block = self._buf[:real].copy()
        self._fill = 0
        return self._emit(block, real)

    def reset(self, sample_offset: int = 0) -> None:
        """Drop buffered samples (interruption or new turn) and restart offsets at ``sample_offset``."""
        self._fill = 0
        self._next_offset = sample_offset
        self._index = 0
        self._want = frame_bounds(self.size, 0)[1]

    def _emit(self, block: np.ndarray, real: int) -> Frame:
        frame = Frame(pcm=shaped(block), sample_offset=self._next_offset, samples=real)
        self._next_offset += real
        self._index += 1
        self._want = frame_bounds(self.size, self._index)[1]
        return frame
