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
    rate = validate_rate(rate)
    exact = Fraction(rate) * Fraction(frame_ms).limit_denominator(1000) / 1000
    if frame_ms <= 0 or exact.denominator != 1:
        raise AudioFormatError(
            AudioErrorCode.BAD_FRAME_SIZE, f"{frame_ms} ms at {rate} Hz is not a whole number of samples"
        )
    return int(exact)


class Framer:
    """Accumulates chunks and yields exact frames of ``frame_samples`` samples per channel.

    ``sample_offset`` of a frame counts real samples since the last :meth:`reset` (the turn start).
    Frames own their memory, so callers may keep them after pushing more audio.
    """

    def __init__(self, frame_samples: int, channels: int = 1) -> None:
        if isinstance(frame_samples, bool) or not isinstance(frame_samples, int) or frame_samples <= 0:
            raise AudioFormatError(AudioErrorCode.BAD_FRAME_SIZE, f"frame size must be > 0, got {frame_samples!r}")
        self.frame_samples = frame_samples
        self.channels = validate_channels(channels)
        self._buf = np.zeros((frame_samples, self.channels), dtype=np.int16)
        self._fill = 0
        self._next_offset = 0

    @property
    def pending_samples(self) -> int:
        """Samples waiting for a full frame."""
        return self._fill

    @property
    def sample_offset(self) -> int:
        """Offset the next frame will carry."""
        return self._next_offset

    def push(self, pcm: np.ndarray) -> list[Frame]:
        """Add a chunk (1-D mono/interleaved or ``(n, ch)`` int16) and return every frame it completes."""
        data = as_frames(pcm, self.channels)
        frames: list[Frame] = []
        pos = 0
        total = data.shape[0]
        if self._fill:
            take = min(self.frame_samples - self._fill, total)
            self._buf[self._fill : self._fill + take] = data[:take]
            self._fill += take
            pos = take
            if self._fill == self.frame_samples:
                frames.append(self._emit(self._buf.copy(), self.frame_samples))
                self._fill = 0
        while total - pos >= self.frame_samples:
            frames.append(self._emit(data[pos : pos + self.frame_samples].copy(), self.frame_samples))
            pos += self.frame_samples
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
            block = self._buf.copy()
            block[real:] = 0
        else:
            block = self._buf[:real].copy()
        self._fill = 0
        return self._emit(block, real)

    def reset(self, sample_offset: int = 0) -> None:
        """Drop buffered samples (interruption or new turn) and restart offsets at ``sample_offset``."""
        self._fill = 0
        self._next_offset = sample_offset

    def _emit(self, block: np.ndarray, real: int) -> Frame:
        frame = Frame(pcm=shaped(block), sample_offset=self._next_offset, samples=real)
        self._next_offset += real
        return frame
