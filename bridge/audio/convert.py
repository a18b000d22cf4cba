"""The two audio pipelines the session runs: stream → resampled fixed frames, and mic → WAV for REST.

* Convai → engine: ``FrameConverter(convai_rate, ch, engine_rate, engine_ch, engine_frame)``.
* Engine mic → Live: ``FrameConverter(mic_rate, mic_ch, 48000, 1, 960)`` (48 kHz mono 20 ms).
* Engine mic → REST voice input: :class:`WavCollector` (16 kHz mono 16-bit WAV).
"""

from __future__ import annotations

import numpy as np

from bridge.audio.errors import AudioErrorCode, AudioFormatError
from bridge.audio.frames import Frame, Framer
from bridge.audio.resample import StreamResampler
from bridge.audio.wav import encode_wav

LIVE_RATE = 48000
LIVE_FRAME_SAMPLES = 960  # 20 ms at 48 kHz
REST_VOICE_RATE = 16000


class FrameConverter:
    """Resample and re-frame one stream; frame offsets count output samples since the stream start."""

    def __init__(
        self,
        in_rate: int,
        in_channels: int,
        out_rate: int,
        out_channels: int,
        frame_samples: int,
        quality: str = "HQ",
    ) -> None:
        self.resampler = StreamResampler(in_rate, out_rate, in_channels, out_channels, quality)
        self.framer = Framer(frame_samples, out_channels)

    def push(self, pcm: np.ndarray) -> list[Frame]:
        """Convert a chunk (any length) and return the frames completed so far."""
        return self.framer.push(self.resampler.process(pcm))

    def flush(self, pad: bool = True) -> list[Frame]:
        """End the stream (turn): drain the resampler and emit the final, padded frame; ready for the next."""
        frames = self.framer.push(self.resampler.flush())
        last = self.framer.flush(pad=pad)
        if last is not None:
            frames.append(last)
        self.framer.reset()
        return frames

    def reset(self) -> None:
        """Drop everything buffered (interruption); offsets restart at 0."""
        self.resampler.reset()
        self.framer.reset()


class WavCollector:
    """Accumulates microphone chunks as 16 kHz mono and produces the WAV file REST voice input expects."""

    def __init__(self, in_rate: int, in_channels: int, out_rate: int = REST_VOICE_RATE, max_seconds: float = 120.0):
        self.resampler = StreamResampler(in_rate, out_rate, in_channels, 1)
        self.out_rate = out_rate
        self.max_samples = int(max_seconds * out_rate)
        self._chunks: list[np.ndarray] = []
        self._samples = 0

    @property
    def duration_s(self) -> float:
        """Seconds collected so far (excluding what the resampler still holds)."""
        return self._samples / self.out_rate

    def push(self, pcm: np.ndarray) -> None:
        """Add a microphone chunk; refuses to grow past ``max_seconds``."""
        self._append(self.resampler.process(pcm))

    def finish(self) -> bytes:
        """Flush and return the whole recording as WAV bytes; the collector is empty afterwards."""
        self._append(self.resampler.flush())
        pcm = np.concatenate(self._chunks) if self._chunks else np.zeros(0, dtype=np.int16)
        self.reset()
        return encode_wav(pcm, self.out_rate, 1)

    def reset(self) -> None:
        """Discard the recording (cancelled utterance)."""
        self.resampler.reset()
        self._chunks = []
        self._samples = 0

    def _append(self, pcm: np.ndarray) -> None:
        if self._samples + pcm.shape[0] > self.max_samples:
            raise AudioFormatError(
                AudioErrorCode.AUDIO_TOO_LONG, f"voice input longer than {self.max_samples / self.out_rate:.0f} s"
            )
        if pcm.shape[0]:
            self._chunks.append(pcm)
            self._samples += pcm.shape[0]
