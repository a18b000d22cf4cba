"""PCM16 conventions shared by every audio module: validation, layout, bytes and float conversion.

Layout: mono is a 1-D int16 array, stereo is ``(n, 2)`` (interleaved in memory, as on the wire).
Floats use the symmetric scale ``x / 32768`` so int16 → float → int16 is exact.
"""

from __future__ import annotations

import numbers

import numpy as np

from bridge.audio.errors import AudioErrorCode, AudioFormatError

MIN_RATE = 8000
MAX_RATE = 192000
INT16_SCALE = 32768.0


def validate_rate(rate: object) -> int:
    """Return ``rate`` as an int, refusing anything outside 8000..192000 integer Hz."""
    if isinstance(rate, bool) or not isinstance(rate, numbers.Real):
        raise AudioFormatError(AudioErrorCode.UNSUPPORTED_RATE, f"sample rate must be a number, got {rate!r}")
    if isinstance(rate, numbers.Integral):
        value = int(rate)
    else:
        as_float = float(rate)
        if not as_float.is_integer():
            raise AudioFormatError(AudioErrorCode.UNSUPPORTED_RATE, f"sample rate must be whole Hz, got {as_float}")
        value = int(as_float)
    if not MIN_RATE <= value <= MAX_RATE:
        raise AudioFormatError(
            AudioErrorCode.UNSUPPORTED_RATE, f"sample rate {value} Hz outside {MIN_RATE}..{MAX_RATE}"
        )
    return value


def validate_channels(channels: object) -> int:
    """Return ``channels`` as an int, refusing anything but mono or stereo."""
    if isinstance(channels, bool) or not isinstance(channels, numbers.Integral) or int(channels) not in (1, 2):
        raise AudioFormatError(AudioErrorCode.UNSUPPORTED_CHANNELS, f"channels must be 1 or 2, got {channels!r}")
    return int(channels)


def as_frames(pcm: np.ndarray, channels: int, dtype: type = np.int16) -> np.ndarray:
    """View ``pcm`` as ``(n, channels)``; a 1-D stereo array is taken as interleaved samples."""
    if not isinstance(pcm, np.ndarray) or pcm.dtype != dtype:
        got = pcm.dtype if isinstance(pcm, np.ndarray) else type(pcm).__name__
        raise AudioFormatError(
            AudioErrorCode.UNSUPPORTED_SAMPLE_FORMAT, f"expected {np.dtype(dtype).name} samples, got {got}"
        )
    if pcm.ndim == 1:
        if pcm.shape[0] % channels:
            raise AudioFormatError(
                AudioErrorCode.BAD_SHAPE, f"{pcm.shape[0]} interleaved values do not split into {channels} channels"
            )
        return pcm.reshape(-1, channels)
    if pcm.ndim == 2 and pcm.shape[1] == channels:
        return pcm
    raise AudioFormatError(AudioErrorCode.BAD_SHAPE, f"shape {pcm.shape} does not hold {channels}-channel audio")


def shaped(frames: np.ndarray) -> np.ndarray:
    """Undo :func:`as_frames`: mono back to 1-D, stereo stays ``(n, 2)``."""
    return frames[:, 0] if frames.shape[1] == 1 else frames


def from_bytes(data: bytes | bytearray | memoryview, channels: int = 1) -> np.ndarray:
    """Decode little-endian PCM16 (the wire and Convai ``audio-data`` format) into the array layout."""
    channels = validate_channels(channels)
    if len(data) % (2 * channels):
        raise AudioFormatError(
            AudioErrorCode.MISALIGNED_PCM, f"{len(data)} bytes is not a whole number of {channels}-channel samples"
        )
    pcm = np.frombuffer(data, dtype="<i2").astype(np.int16, copy=False)
    return pcm if channels == 1 else pcm.reshape(-1, channels)


def to_bytes(pcm: np.ndarray) -> bytes:
    """Encode int16 samples (any layout) as little-endian interleaved bytes."""
    if pcm.dtype != np.int16:
        raise AudioFormatError(AudioErrorCode.UNSUPPORTED_SAMPLE_FORMAT, f"expected int16, got {pcm.dtype}")
    return np.ascontiguousarray(pcm, dtype="<i2").tobytes()


def to_float(pcm: np.ndarray) -> np.ndarray:
    """int16 → float32 in [-1, 1); exact, so a later :func:`to_int16` restores the input."""
    out = pcm.astype(np.float32)
    out *= np.float32(1.0 / INT16_SCALE)
    return out


def to_int16(samples: np.ndarray) -> np.ndarray:
    """float → int16 with rounding and saturation (never wraparound); leaves the input untouched."""
    scaled = np.multiply(samples, np.float32(INT16_SCALE), dtype=np.float32)
    np.rint(scaled, out=scaled)
    np.clip(scaled, -32768.0, 32767.0, out=scaled)
    return scaled.astype(np.int16)


def mix_channels(frames: np.ndarray, channels_out: int) -> np.ndarray:
    """Convert ``(n, ch)`` between mono and stereo: stereo → mono averages, mono → stereo duplicates.

    Works for int16 (rounded average, which always fits) and float arrays; returns ``(n, channels_out)``.
    """
    channels_in = frames.shape[1]
    if channels_in == channels_out:
        return frames
    if channels_out == 1:
        if frames.dtype == np.int16:
            total = frames[:, 0].astype(np.int32) + frames[:, 1]
            # Round half away from zero, symmetric for positive and negative sums.
            half = np.where(total >= 0, (total + 1) >> 1, -((1 - total) >> 1))
            return half.astype(np.int16)[:, np.newaxis]
        return ((frames[:, 0] + frames[:, 1]) * frames.dtype.type(0.5))[:, np.newaxis]
    return np.repeat(frames, channels_out, axis=1)
