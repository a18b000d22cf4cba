"""Acoustic echo cancellation and noise suppression on a session's microphone path (WebRTC APM / AEC3).

A player on speakers feeds the NPC's own voice back into the microphone; on the live backend the
server VAD hears it and the NPC interrupts itself. Convai's web SDK publishes its mic through the
browser's AEC and the Unreal plugin runs AEC with a game-audio reference; engines talking to the
daemon get the same here, from the WebRTC audio processing module that LiveKit's Python SDK bundles
(``livekit.rtc.AudioProcessingModule``, AEC3 + noise suppression + high-pass filter, run in the SDK's
native FFI library: no server involved).

The APM works on 10 ms mono int16 frames at :data:`APM_RATE`. The microphone and the far-end
reference are brought to that rate with the project's soxr streaming resampler.

**Far end.** The reference is what the player hears. By default that is the daemon's own copy of the
bot audio, taken when each ``audio_out`` frame is handed to the client (the daemon's paced output:
the client plays it after its jitter buffer). When the engine sends ``audio_reference`` (the mixed
game output, NPC voice as actually played plus game sounds and music), that *replaces* the daemon's
copy: mixing both would present the NPC voice twice at two delays, which a single linear echo path
cannot model. Without ``audio_reference`` frames for ``reference_timeout_ms`` the daemon's copy is
used again.

**Alignment.** Reference frames wait in a bounded FIFO and are fed to the APM in lockstep with the
microphone, one 10 ms reverse frame before each 10 ms capture frame (silence when none is queued), so
both streams advance on the microphone's clock as the APM expects. A reference sample is fed no
earlier than it was sent, and the client plays it later than that, so the echo always trails its
reference; the remaining delay (client jitter buffer, device latency, acoustic path, mic framing) is
given to AEC3 as a rough hint (``stream_delay_ms``) and AEC3's delay estimator finds the rest.

**Bounded.** The FIFO holds at most ``max_reference_ms``; older reference is dropped. When the mic
stops (nothing for :data:`MIC_GAP_S` after the last frame's audio), the queued reference no longer
lines up with anything and is dropped when the mic resumes.

Both switches off means the session never builds a canceller: the mic passes bit-exact.
"""

from __future__ import annotations

import time
from collections import deque
from dataclasses import dataclass
from typing import Any

import numpy as np

from bridge.audio.frames import Framer
from bridge.audio.resample import StreamResampler

APM_RATE = 48000  # the live backend's mic rate and the default audio_out rate: usually no resampling at all
APM_FRAME = APM_RATE // 100  # the APM only takes 10 ms frames
MIC_GAP_S = 0.25  # no mic audio for this long past the end of the last frame: the mic stopped
# Backends whose server-side VAD turns echo into barge-in; elsewhere the mic is push-to-talk (default off).
ON_BY_DEFAULT = frozenset({"live"})


@dataclass(frozen=True)
class EchoSettings:
    """Per-session switches (``session_open.echo_cancellation`` / ``noise_suppression``) and tuning."""

    echo_cancellation: bool
    noise_suppression: bool
    stream_delay_ms: int = 80
    max_reference_ms: int = 500
    reference_timeout_ms: int = 500

    @property
    def enabled(self) -> bool:
        return self.echo_cancellation or self.noise_suppression

    @classmethod
    def for_session(cls, backend: str, options: dict[str, Any], **tuning: int) -> EchoSettings:
        """Defaults by backend (on for ``live``), overridden by the session_open options when given."""
        default = backend in ON_BY_DEFAULT
        aec = options.get("echo_cancellation")
        ns = options.get("noise_suppression")
        return cls(
            echo_cancellation=default if aec is None else bool(aec),
            noise_suppression=default if ns is None else bool(ns),
            **tuning,
        )


@dataclass
class EchoStats:
    mic_frames: int = 0  # 10 ms capture frames processed
    reference_frames: int = 0  # 10 ms reverse frames fed (silence included)
    reference_dropped: int = 0  # 10 ms reference frames dropped (FIFO full or stale after a mic gap)
    client_reference_frames: int = 0  # audio_reference messages received


class _Converter:
    """Any-rate, any-channel int16 → APM_RATE mono int16, re-created when the input format changes."""

    def __init__(self) -> None:
        self._resampler: StreamResampler | None = None
        self._key: tuple[int, int] | None = None

    def __call__(self, pcm: np.ndarray, rate: int, channels: int) -> np.ndarray:
        if self._resampler is None or self._key != (rate, channels):
            self._resampler = StreamResampler(rate, APM_RATE, channels, 1)
            self._key = (rate, channels)
        return self._resampler.process(pcm)

    def reset(self) -> None:
        if self._resampler is not None:
            self._resampler.reset()


class EchoCanceller:
    """One session's AEC3/NS state: feed it the far end (:meth:`far_end`, :meth:`reference`), run the mic
    through :meth:`process`."""

    def __init__(self, settings: EchoSettings, clock: Any = time.monotonic) -> None:
        from livekit import rtc  # the native library loads only for sessions that use it

        self._rtc = rtc
        self.settings = settings
        self.stats = EchoStats()
        self._clock = clock
        self._apm = rtc.AudioProcessingModule(
            echo_cancellation=settings.echo_cancellation,
            noise_suppression=settings.noise_suppression,
            high_pass_filter=True,  # WebRTC's capture pipeline always pairs AEC/NS with it (DC, rumble)
        )
        self._mic = _Converter()
        self._mic_framer = Framer(APM_FRAME, 1)
        self._far = _Converter()
        self._client = _Converter()
        self._ref_framer = Framer(APM_FRAME, 1)
        self._ref: deque[np.ndarray] = deque()
        self._max_ref = max(1, settings.max_reference_ms // 10)
        self._mic_due: float | None = None  # when the last mic frame's audio ran out (arrival + duration)
        self._client_ref_at: float | None = None
        self._silence = bytes(APM_FRAME * 2)

    # -- far end ---------------------------------------------------------------------------------
    @property
    def client_reference_active(self) -> bool:
        """True while the engine's ``audio_reference`` stream is the far end."""
        if self._client_ref_at is None:
            return False
        return self._clock() - self._client_ref_at < self.settings.reference_timeout_ms / 1000

    @property
    def queued_reference_ms(self) -> int:
        return len(self._ref) * 10

    def far_end(self, pcm: np.ndarray, rate: int, channels: int) -> None:
        """The daemon's copy of bot audio, as it is handed to the client (ignored under a client reference)."""
        if not self.settings.echo_cancellation or self.client_reference_active:
            return
        self._queue(self._far(pcm, rate, channels))

    def reference(self, pcm: np.ndarray, rate: int, channels: int) -> None:
        """One ``audio_reference`` frame: the game's mixed output as the player hears it."""
        self.stats.client_reference_frames += 1
        if not self.settings.echo_cancellation:
            return
        if not self.client_reference_active:
            self._drop_reference()  # switch sources: the daemon's copy must not play twice
        self._client_ref_at = self._clock()
        self._queue(self._client(pcm, rate, channels))

    def drop_far_end(self) -> None:
        """The bot's queued audio was flushed (interrupt): the client will not play what is still queued."""
        if not self.client_reference_active:
            self._drop_reference()
            self._far.reset()

    def _queue(self, pcm: np.ndarray) -> None:
        for frame in self._ref_framer.push(pcm):
            self._ref.append(frame.pcm)
        while len(self._ref) > self._max_ref:
            self._ref.popleft()
            self.stats.reference_dropped += 1

    def _drop_reference(self) -> None:
        self.stats.reference_dropped += len(self._ref)
        self._ref.clear()
        self._ref_framer.reset()

    # -- near end --------------------------------------------------------------------------------
    def process(self, pcm: np.ndarray, rate: int, channels: int) -> np.ndarray:
        """Run mic audio through the APM; returns processed APM_RATE mono int16 (whole 10 ms frames only,
        so up to 10 ms plus the resampler's delay is held back until the next call)."""
        now = self._clock()
        if self._mic_due is not None and now - self._mic_due > MIC_GAP_S:
            self._drop_reference()
        samples = pcm.shape[0] if pcm.ndim == 2 else pcm.shape[0] // channels
        self._mic_due = now + samples / rate
        frames = self._mic_framer.push(self._mic(pcm, rate, channels))
        if not frames:
            return np.zeros(0, dtype=np.int16)
        out = bytearray()
        rtc = self._rtc
        for frame in frames:
            if self.settings.echo_cancellation:
                ref = self._ref.popleft().tobytes() if self._ref else self._silence
                self._apm.process_reverse_stream(rtc.AudioFrame(bytearray(ref), APM_RATE, 1, APM_FRAME))
                self._apm.set_stream_delay_ms(self.settings.stream_delay_ms)  # a hint, due before every frame
                self.stats.reference_frames += 1
            near = rtc.AudioFrame(bytearray(frame.pcm.tobytes()), APM_RATE, 1, APM_FRAME)
            self._apm.process_stream(near)
            out += near.data.cast("B")
            self.stats.mic_frames += 1
        return np.frombuffer(bytes(out), dtype=np.int16)
