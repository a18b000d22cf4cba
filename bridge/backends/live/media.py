"""Audio between the session and aiortc: the paced microphone track and the bot-audio reader."""

from __future__ import annotations

import asyncio
import collections
import contextlib
import fractions
import logging
import math
import weakref
from collections.abc import Awaitable, Callable
from typing import Any

import numpy as np
from aiortc.mediastreams import MediaStreamError, MediaStreamTrack
from av import AudioFrame, CodecContext
from av.packet import Packet

from bridge.backends.live import fastaudio
from bridge.backends.live.transport import MIC_FRAME_SAMPLES, MIC_SAMPLE_RATE, TransportStats

log = logging.getLogger(__name__)

_TIME_BASE = fractions.Fraction(1, MIC_SAMPLE_RATE)
_FRAME_SECONDS = MIC_FRAME_SAMPLES / MIC_SAMPLE_RATE
# After a loop stall up to this long the track catches up with a burst (the queued frames leave at
# once instead of adding latency); a longer one restarts the clock.
_MAX_LAG_SECONDS = 0.5
# After this many silent frames the encoder's output for digital silence no longer changes.
_SILENCE_SETTLE_FRAMES = 5
# Latency trimming: a backlog of at least this many frames for a whole window loses one frame.
_BACKLOG_FRAMES = 6
_TRIM_WINDOW_FRAMES = 50
_grid_origins: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, float] = weakref.WeakKeyDictionary()


class MicOpusEncoder:
    """Mono wideband Opus for 20 ms int16 frames, encoded on the calling thread.

    aiortc's own encoder resamples mono to stereo and encodes 96 kbps full-band stereo in a thread
    pool; speech recognition needs none of that (pipecat, behind Convai's Live API, resamples user
    audio to 16 kHz anyway). Measured per 20 ms of speech: ~260 µs for aiortc's encoder, 204 µs for
    mono at libopus' defaults, 65 µs for complexity 1 limited to wideband (8 kHz audio bandwidth,
    SILK only) — the defaults here. Decoded speech stays within 0.8 dB log-spectral distance (0-8
    kHz; 7.3 vs 6.5 dB) and 0.2 dB SNR of complexity 10.
    """

    def __init__(self, bitrate: int = 32000, complexity: int = 1, bandwidth_hz: int = 8000) -> None:
        self.codec = CodecContext.create("libopus", "w")
        self.codec.bit_rate = bitrate
        self.codec.format = "s16"
        self.codec.layout = "mono"
        self.codec.sample_rate = MIC_SAMPLE_RATE
        self.codec.time_base = _TIME_BASE
        self.codec.options = {
            "application": "voip",
            "compression_level": str(complexity),
            "cutoff": str(bandwidth_hz),
        }
        self._frame = AudioFrame(format="s16", layout="mono", samples=MIC_FRAME_SAMPLES)
        self._frame.sample_rate = MIC_SAMPLE_RATE
        self._frame.time_base = _TIME_BASE

    def encode(self, pcm: np.ndarray, pts: int) -> list[Packet]:
        frame = self._frame  # libopus copies the samples during encode, so one frame is reused
        frame.planes[0].update(pcm)
        frame.pts = pts
        packets = list(self.codec.encode(frame))
        for packet in packets:  # our own clock: libopus' pre-skip makes its pts start negative
            packet.pts = pts
            packet.time_base = _TIME_BASE
        return packets


class MicTrack(MediaStreamTrack):
    """An outgoing audio track fed by ``push()``; silence when nothing is queued.

    aiortc's sender pulls ``recv()`` as fast as it returns, so this track sleeps until each 20 ms
    frame is due. It returns Opus packets, not raw frames: aiortc then only packetises them. The
    queue is bounded: a full queue drops its oldest frame (counted in ``stats.mic_dropped``), and a
    backlog that persists for a second loses one frame (``stats.mic_trimmed``), so a producer
    whose clock runs slightly fast cannot build up latency. Packets sent this way carry no
    ``ssrc-audio-level`` header extension (aiortc computes it only for raw frames); LiveKit uses it
    for active-speaker events only, which the Convai bot does not depend on.
    """

    kind = "audio"

    def __init__(self, stats: TransportStats, max_frames: int = 25, bitrate: int = 32000) -> None:
        super().__init__()
        if max_frames < 1:
            raise ValueError("max_frames must be >= 1")
        self._stats = stats
        self._queue: collections.deque[np.ndarray] = collections.deque(maxlen=max_frames)
        self._silence = np.zeros(MIC_FRAME_SAMPLES, dtype=np.int16)
        self._encoder = MicOpusEncoder(bitrate)
        self._start: float | None = None
        self._pts = -MIC_FRAME_SAMPLES
        self._silent_run = 0
        self._silence_packet: bytes | None = None
        self._window_frames = 0
        self._window_min = max_frames

    def push(self, pcm: np.ndarray) -> None:
        if pcm.dtype != np.int16 or pcm.size != MIC_FRAME_SAMPLES:
            raise ValueError(
                f"mic frames are int16 mono {MIC_SAMPLE_RATE} Hz, {MIC_FRAME_SAMPLES} samples; "
                f"got {pcm.dtype} x {pcm.size}"
            )
        if len(self._queue) == self._queue.maxlen:
            self._stats.mic_dropped += 1
        self._queue.append(np.ascontiguousarray(pcm).reshape(MIC_FRAME_SAMPLES))

    def clear(self) -> None:
        self._queue.clear()

    @property
    def queued(self) -> int:
        return len(self._queue)

    def _grid_start(self, now: float) -> float:
        """The next 20 ms tick of a grid shared by every mic track on this loop.

        Tracks whose frames fall due at the same instant are woken by one event-loop iteration,
        so N sessions cost one wake-up per 20 ms instead of N.
        """
        origin = _grid_origins.setdefault(asyncio.get_running_loop(), now)
        ticks = math.ceil((now - origin) / _FRAME_SECONDS - 1e-9)
        return origin + ticks * _FRAME_SECONDS - self._pts / MIC_SAMPLE_RATE

    async def recv(self) -> Packet:  # type: ignore[override]
        if self.readyState != "live":
            raise MediaStreamError
        loop = asyncio.get_running_loop()
        while True:
            self._pts += MIC_FRAME_SAMPLES
            now = loop.time()
            if self._start is None:
                self._start = self._grid_start(now)
            due = self._start + self._pts / MIC_SAMPLE_RATE
            if due - now < -_MAX_LAG_SECONDS:
                self._start = self._grid_start(now)
                due = self._start + self._pts / MIC_SAMPLE_RATE
            if due > now:
                await asyncio.sleep(due - now)
            packet = self._next_packet()
            if packet is not None:
                return packet

    def _trim_backlog(self) -> None:
        """Drop one frame a second while a backlog persists (the producer's clock runs fast).

        A burst (e.g. 100 ms handed over at once) drains on its own; a queue that never fell below
        ``_BACKLOG_FRAMES`` for a whole second is latency that would otherwise only grow.
        """
        self._window_min = min(self._window_min, len(self._queue))
        self._window_frames += 1
        if self._window_frames >= _TRIM_WINDOW_FRAMES:
            if self._window_min >= _BACKLOG_FRAMES:
                self._queue.popleft()
                self._stats.mic_trimmed += 1
            self._window_frames = 0
            self._window_min = len(self._queue)

    def _next_packet(self) -> Packet | None:
        self._trim_backlog()
        if self._queue:
            self._silent_run = 0
            self._stats.mic_frames_sent += 1
            packets = self._encoder.encode(self._queue.popleft(), self._pts)
        else:
            self._stats.mic_silence_frames += 1
            self._silent_run += 1
            if self._silent_run > _SILENCE_SETTLE_FRAMES and self._silence_packet is not None:
                # The encoder has settled on digital silence: resend its packet instead of encoding.
                packet = Packet(self._silence_packet)
                packet.pts = self._pts
                packet.time_base = _TIME_BASE
                return packet
            packets = self._encoder.encode(self._silence, self._pts)
            if packets and self._silent_run == _SILENCE_SETTLE_FRAMES:
                self._silence_packet = bytes(packets[0])
        return packets[0] if packets else None


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


def deliver_frames(
    receiver: Any, track: MediaStreamTrack, deliver: Callable[[np.ndarray, int, int], None], label: str
) -> Awaitable[None] | None:
    """Route a remote audio track's decoded frames to ``deliver``.

    Inline-decoding receivers (:mod:`bridge.backends.live.fastaudio`) call ``deliver`` directly and
    this returns None; otherwise it returns a coroutine that reads the track (run it as a task).
    """

    def sink(frame: AudioFrame) -> None:
        deliver(*frame_to_pcm(frame))

    if track.kind != "audio":
        return drain_track(track)
    if fastaudio.attach_sink(receiver, sink):
        return None
    return pump_track(track, deliver, label)


async def drain_track(track: MediaStreamTrack) -> None:
    """Consume and drop a track we do not use (aiortc queues its frames without bound)."""
    with contextlib.suppress(MediaStreamError):
        while True:
            await track.recv()


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
