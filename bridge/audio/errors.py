"""The one exception audio code raises for bad formats, with codes stable enough to send to clients."""

from __future__ import annotations

from enum import StrEnum


class AudioErrorCode(StrEnum):
    """Stable machine-readable reasons; the daemon forwards these verbatim in protocol errors."""

    UNSUPPORTED_RATE = "unsupported_rate"
    UNSUPPORTED_CHANNELS = "unsupported_channels"
    UNSUPPORTED_SAMPLE_FORMAT = "unsupported_sample_format"
    UNSUPPORTED_QUALITY = "unsupported_quality"
    BAD_SHAPE = "bad_shape"
    MISALIGNED_PCM = "misaligned_pcm"
    BAD_FRAME_SIZE = "bad_frame_size"
    WAV_MALFORMED = "wav_malformed"
    WAV_UNSUPPORTED_ENCODING = "wav_unsupported_encoding"
    AUDIO_TOO_LONG = "audio_too_long"


class AudioFormatError(ValueError):
    """Audio whose rate, layout or encoding the bridge refuses rather than guesses at."""

    def __init__(self, code: AudioErrorCode | str, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.code = str(code)
        self.message = message
