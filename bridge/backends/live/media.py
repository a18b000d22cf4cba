"""Audio between the session and aiortc: the paced microphone track and the bot-audio reader."""

from __future__ import annotations

import asyncio
import collections
import fractions
import logging
from collections.abc import Callable

import numpy as np
from aiortc.mediastreams import MediaStreamError, MediaStreamTrack
from av import AudioFrame

from bridge.backends.live.transport import MIC_FRAME_SAMPLES, MIC_SAMPLE_RATE, TransportStats

log = logging.getLogger(__name__)

_TIME_BASE = fractions.Fraction(1, MIC_SAMPLE_RATE)
_FRAME_SECONDS = MIC_FRAME_SAMPLES / MIC_SAMPLE_RATE
# When the loop falls this far behind the audio clock, restart the clock instead of bursting.
_MAX_LAG_SECONDS = 0.2


class MicTrack(MediaStreamTrack):
    """An outgoing audio track fed by ``push()``; silence when nothing is queued.

    aiortc's sender pulls ``recv()`` as fast as it returns, so this track sleeps until each 20 ms
    frame is due. The queue is bounded: a full queue drops its oldest frame (counted in
    ``stats.mic_dropped``) so latency never grows without bound.
    """

    kind = "audio"

    def __init__(self, stats: TransportStats, max_frames: int = 25) -> None:
        super().__init__()
        if max_frames < 1:
            raise ValueError("max_frames must be >= 1")
        self._stats = stats
        self._queue: collections.deque[np.ndarray] = collections.deque(maxlen=max_frames)
        self._silence = np.zeros((1, MIC_FRAME_SAMPLES), dtype=np.int16)
        self._start: float | None = None
        self._pts = 0

    def push(self, pcm: np.ndarray) -> None:
        if pcm.dtype != np.int16 or pcm.size != MIC_FRAME_SAMPLES:
            raise ValueError(
                f"mic frames are int16 mono {MIC_SAMPLE_RATE} Hz, {MIC_FRAME_SAMPLES} samples; "
                f"got {pcm.dtype} x {pcm.size}"
            )
        if len(self._queue) == self._queue.maxlen:
            self._stats.mic_dropped += 1
        self._queue.append(pcm.reshape(1, MIC_FRAME_SAMPLES))

    def clear(self) -> None:
        self._queue.clear()

    @property
    def queued(self) -> int:
        return len(self._queue)

    async def recv(self) -> AudioFrame:
        if self.readyState != "live":
            raise MediaStreamError
        loop = asyncio.get_running_loop()
        now = loop.time()
        if self._start is None:
            self._start = now
        else:
            self._pts += MIC_FRAME_SAMPLES
            due = self._start + self._pts / MIC_SAMPLE_RATE
            if due - now < -_MAX_LAG_SECONDS:
                self._start = now - self._pts / MIC_SAMPLE_RATE
            elif due > now:
                await asyncio.sleep(due - now)
        if self._queue:
            samples = self._queue.popleft()
            self._stats.mic_frames_sent += 1
        else:
            samples = self._silence
            self._stats.mic_silence_frames += 1
        frame = AudioFrame.from_ndarray(samples, format="s16", layout="mono")
        frame.sample_rate = MIC_SAMPLE_RATE
        frame.pts = self._pts
        frame.time_base = _TIME_BASE
        return frame


def frame_to_pcm(frame: AudioFrame) -> tuple[np.ndarray, int, int]:
    """Interleaved int16 samples of a decoded frame (s16 packed, as aiortc's decoders emit)."""
    channels = frame.layout.nb_channels
    if frame.format.name == "s16":
        pcm = np.frombuffer(frame.planes[0], dtype=np.int16, count=frame.samples * channels)
    else:  # planar or float from some other decoder: convert once
        pcm = frame.to_ndarray()
        if pcm.dtype != np.int16:
            pcm = np.clip(pcm * 32768.0, -32768, 32767).astype(np.int16)
        pcm = pcm.T.reshape(-1) if frame.format.is_planar else pcm.reshape(-1)
    return pcm, frame.sample_rate, channels


async def pump_track(
    track: MediaStreamTrack, deliver: Callable[[np.ndarray, int, int], None], label: str
) -> None:
    """Read decoded frames from a remote audio track until it ends, handing each to ``deliver``."""
    try:
        while True:
            frame = await track.recv()
            deliver(*frame_to_pcm(frame))
    except MediaStreamError:
        log.debug("remote audio track %s ended", label)
