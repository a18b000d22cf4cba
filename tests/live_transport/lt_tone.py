"""Tone generation and frequency checks shared by the live-transport tests and the fake servers."""

from __future__ import annotations

import asyncio
import fractions

import numpy as np
from aiortc.mediastreams import MediaStreamError, MediaStreamTrack
from av import AudioFrame

RATE = 48000
FRAME = 960


def tone_frames(freq: float, n: int, amplitude: int = 8000, start: int = 0) -> list[np.ndarray]:
    """``n`` consecutive 20 ms int16 mono frames of a continuous sine."""
    t = (np.arange(n * FRAME) + start) / RATE
    pcm = (amplitude * np.sin(2 * np.pi * freq * t)).astype(np.int16)
    return [pcm[i * FRAME : (i + 1) * FRAME] for i in range(n)]


def dominant_frequency(pcm: np.ndarray, rate: int = RATE) -> float:
    """Frequency of the strongest FFT bin of a mono signal (Hann window)."""
    x = pcm.astype(np.float64)
    x = x - x.mean()
    spectrum = np.abs(np.fft.rfft(x * np.hanning(len(x))))
    spectrum[0] = 0.0
    return float(np.fft.rfftfreq(len(x), 1 / rate)[int(np.argmax(spectrum))])


def to_mono(pcm: np.ndarray, channels: int) -> np.ndarray:
    if channels == 1:
        return pcm.reshape(-1)
    return pcm.reshape(-1, channels).mean(axis=1).astype(np.int16)


class ToneTrack(MediaStreamTrack):
    """A real-time paced 20 ms mono sine track (what the fake bots speak)."""

    kind = "audio"

    def __init__(self, freq: float, amplitude: int = 8000, track_id: str | None = None) -> None:
        super().__init__()
        if track_id is not None:
            self._id = track_id
        self._freq = freq
        self._amplitude = amplitude
        self._pts = 0
        self._start: float | None = None
        self._time_base = fractions.Fraction(1, RATE)
        self._table = tone_frames(freq, 50, amplitude)  # 1 s: whole cycles for integer frequencies

    async def recv(self) -> AudioFrame:
        if self.readyState != "live":
            raise MediaStreamError
        loop = asyncio.get_running_loop()
        if self._start is None:
            self._start = loop.time()
        else:
            self._pts += FRAME
            wait = self._start + self._pts / RATE - loop.time()
            if wait > 0:
                await asyncio.sleep(wait)
        pcm = self._table[(self._pts // FRAME) % len(self._table)]
        frame = AudioFrame.from_ndarray(pcm.reshape(1, -1), format="s16", layout="mono")
        frame.sample_rate = RATE
        frame.pts = self._pts
        frame.time_base = self._time_base
        return frame
