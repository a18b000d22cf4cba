"""CPU fixes for aiortc's audio and data paths, installed once per process by the Live transports.

Why: plain aiortc costs 5-10 % of a core per session with audio both ways; the budget is 3 %.
Measured with ``bench/live_bench.py`` (8 sessions, cProfile + per-thread CPU), the time went to:

1. ``aiortc.rtp.compute_audio_level_dbov``: a pure-Python loop over every outgoing sample.
2. Thread hand-offs, not codec work: every outgoing frame is encoded via ``run_in_executor`` and
   every incoming frame is decoded on a per-receiver thread and handed back with
   ``run_coroutine_threadsafe``. Each hop costs more Python time and event-loop wake-ups than the
   20-100 µs of libopus work it moves off the loop.
3. Needless work: the mic is resampled mono → stereo and encoded as 96 kbps stereo; the bot's mono
   voice is decoded to stereo.

Fixes, in order of depth:

* The mic track (:class:`bridge.backends.live.media.MicTrack`) encodes Opus itself (mono,
  wideband, complexity 1, inline, no resampler), reuses the packet of settled digital silence, and
  hands aiortc ready ``av.Packet`` objects, which aiortc's public pass-through path sends without
  an executor hop. Mic tracks wake on a 20 ms grid shared by all sessions (one loop wake-up for N
  sessions). No hook needed for any of this.
* ``audio_level`` hook: ``aiortc.rtp.compute_audio_level_dbov`` is replaced by a numpy version
  with identical results (tests compare both), for any aiortc user in the process.
* ``inline_decode`` hook: audio ``RTCRtpReceiver`` objects created *inside*
  :func:`fast_receive` (the Live transports wrap their connections in it) decode on the event loop
  as soon as the jitter buffer releases a frame, straight into the track's queue, with a mono Opus
  decoder. The per-receiver decoder thread then exits at once. The transports also attach their
  audio callback as the decoder's sink (:func:`attach_sink`), so a frame reaches ``on_bot_audio``
  in the same loop iteration its last RTP packet arrived in. Receivers created elsewhere in the
  process are untouched. This touches aiortc internals (``RTCRtpReceiver.__init__``, the
  module-level ``decoder_worker`` and the name-mangled ``__decoder_queue``/``__decoder_error``
  attributes), hence the version guard.
* ``delayed_sack`` hook: aiortc's SCTP (data channels) sends a SACK packet for every packet it
  receives. A talking Convai bot sends 50-100 RTVI messages a second (visemes), and each SACK costs a
  chunk serialisation, a DTLS record and a ``sendto``. Associations created inside
  :func:`delayed_sack` ack every second packet at once and a lone packet after ``SACK_DELAY_S``
  (50 ms; RFC 4960 §6.2 allows 200 ms), immediately whenever there are gaps or duplicates. Only
  the acknowledgements are delayed, never the delivery of received messages.

Result (``bench/live_bench.py``, 8 sessions, daemon process only, 2-vCPU VM with the server on
the other vCPU): aiortc as shipped 5.2-6.5 % of a core per session, this path 2.3-2.6 % with
speech up and a tone down; with the emulator's bot talking (about 95 RTVI messages a second per
session on top of the audio) 7.5 % → 3.8 %. What remains is mostly aiortc's pure-Python RTP, SRTP
glue, SCTP and DTLS handling per packet, the asyncio loop, and libopus itself.

Each hook is applied only when aiortc's version is one this code was checked against
(``SUPPORTED_AIORTC``) and the names it relies on exist; otherwise aiortc is left alone and a
warning says so (correct, only slower). ``BRIDGE_AIORTC_HOOKS=0`` disables all hooks (A/B runs).
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import fractions
import logging
import math
import os
import threading
import weakref
from collections.abc import Callable, Iterator
from typing import Any

import aiortc
import aiortc.rtcrtpreceiver
import aiortc.rtcsctptransport
import aiortc.rtp
import av
import numpy as np
from aiortc.codecs import get_decoder
from av import AudioFrame, CodecContext
from av.packet import Packet

log = logging.getLogger(__name__)

SUPPORTED_AIORTC = ("1.16.",)
OPUS_RATE = 48000
_OPUS_TIME_BASE = fractions.Fraction(1, OPUS_RATE)

_MAX_SAMPLE_VALUE = 32767
_MIN_AUDIO_LEVEL = -127
# RFC 4960 §6.2: acknowledge at least every second packet and within 200 ms.
SACK_DELAY_S = 0.05
_installed: dict[str, bool] = {}
_fast_scope: contextvars.ContextVar[bool] = contextvars.ContextVar("bridge_fast_receive", default=False)
_sack_scope: contextvars.ContextVar[bool] = contextvars.ContextVar("bridge_delayed_sack", default=False)

original_compute_audio_level_dbov = aiortc.rtp.compute_audio_level_dbov
_original_decoder_worker: Callable[..., None] = aiortc.rtcrtpreceiver.decoder_worker
_original_receiver_init: Callable[..., None] = aiortc.rtcrtpreceiver.RTCRtpReceiver.__init__
_Sctp = aiortc.rtcsctptransport.RTCSctpTransport
_original_sctp_init: Callable[..., None] = _Sctp.__init__
_original_send_sack: Callable[..., Any] = _Sctp._send_sack


def compute_audio_level_dbov(frame: AudioFrame) -> int:
    """RFC 6465 Appendix A audio level, vectorised; same result as aiortc's implementation."""
    samples = np.frombuffer(frame.planes[0], dtype=np.int16).astype(np.float64)
    energy = float(np.dot(samples, samples))
    rms = math.sqrt(energy / (frame.samples * _MAX_SAMPLE_VALUE * _MAX_SAMPLE_VALUE))
    if rms > 0:
        db = min(max(20 * math.log10(rms), _MIN_AUDIO_LEVEL), 0)
    else:
        db = _MIN_AUDIO_LEVEL
    return round(db)


class MonoOpusDecoder:
    """Opus → s16 mono 48 kHz (the bot speaks mono; decoding to stereo only doubles the data)."""

    def __init__(self) -> None:
        self.codec = CodecContext.create("libopus", "r")
        self.codec.format = "s16"
        self.codec.layout = "mono"
        self.codec.sample_rate = OPUS_RATE

    def decode(self, encoded_frame: Any) -> list[AudioFrame]:
        packet = Packet(encoded_frame.data)
        packet.pts = encoded_frame.timestamp
        packet.time_base = _OPUS_TIME_BASE
        return list(self.codec.decode(packet))


class InlineAudioDecoder:
    """Takes the place of an RTCRtpReceiver's decoder queue and decodes on the event loop."""

    def __init__(self, receiver: Any, decode_error: threading.Event) -> None:
        self._receiver = weakref.ref(receiver)
        self._decode_error = decode_error
        self._codec_name: str | None = None
        self._decoder: Any = None
        self.decoded = 0
        # When set, decoded frames go straight to this callable instead of the track's queue
        # (saves a queue hand-off and a task wake-up per frame).
        self.sink: Callable[[AudioFrame], None] | None = None

    def _output(self) -> asyncio.Queue[Any] | None:
        receiver = self._receiver()
        track = getattr(receiver, "_track", None)
        return getattr(track, "_queue", None)

    def put(self, item: Any) -> None:
        output = self._output()
        if output is None:
            return
        if item is None:  # the receiver stopped: end the track, as aiortc's worker does
            output.put_nowait(None)
            return
        codec, encoded_frame = item
        if codec.name != self._codec_name:
            self._decoder = MonoOpusDecoder() if codec.name.lower() == "opus" else get_decoder(codec)
            self._codec_name = codec.name
        try:
            frames = self._decoder.decode(encoded_frame)
        except av.FFmpegError as exc:
            log.warning("failed to decode a %s frame: %s", codec.name, exc)
            self._decode_error.set()
            return
        sink = self.sink
        for frame in frames:
            self.decoded += 1
            if sink is not None:
                sink(frame)
            else:
                output.put_nowait(frame)


def _decoder_worker(loop: Any, input_q: Any, output_q: Any, decode_error: Any) -> None:
    if isinstance(input_q, InlineAudioDecoder):
        return  # decoding happens inline; the thread has nothing to do
    _original_decoder_worker(loop, input_q, output_q, decode_error)


def _receiver_init(self: Any, kind: str, transport: Any) -> None:
    _original_receiver_init(self, kind, transport)
    if kind == "audio" and _fast_scope.get():
        error = getattr(self, "_RTCRtpReceiver__decoder_error", None)
        if isinstance(error, threading.Event) and hasattr(self, "_RTCRtpReceiver__decoder_queue"):
            self._RTCRtpReceiver__decoder_queue = InlineAudioDecoder(self, error)


def attach_sink(receiver: Any, sink: Callable[[AudioFrame], None]) -> bool:
    """Deliver a receiver's decoded frames to ``sink`` directly; False if it decodes the usual way."""
    decoder = getattr(receiver, "_RTCRtpReceiver__decoder_queue", None)
    if not isinstance(decoder, InlineAudioDecoder):
        return False
    decoder.sink = sink
    return True


class DelayedSack:
    """Per-association state of the delayed-SACK policy (counters for tests and metrics)."""

    __slots__ = ("unacked", "timer", "immediate", "deferred")

    def __init__(self) -> None:
        self.unacked = 0
        self.timer: asyncio.TimerHandle | None = None
        self.immediate = 0
        self.deferred = 0

    def cancel(self) -> None:
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None


def _sctp_init(self: Any, *args: Any, **kwargs: Any) -> None:
    _original_sctp_init(self, *args, **kwargs)
    self._bridge_sack = DelayedSack() if _sack_scope.get() else None


async def _send_sack(self: Any) -> None:
    """aiortc acknowledges every packet at once; ack every second one, or after SACK_DELAY_S."""
    state: DelayedSack | None = getattr(self, "_bridge_sack", None)
    if state is None:
        await _original_send_sack(self)
        return
    state.unacked += 1
    if state.unacked >= 2 or self._sack_duplicates or self._sack_misordered:
        state.cancel()  # a second packet, or loss/duplication the sender must hear about now
        state.unacked = 0
        state.immediate += 1
        await _original_send_sack(self)
        return
    if state.timer is None:
        state.deferred += 1
        state.timer = asyncio.get_running_loop().call_later(SACK_DELAY_S, _flush_sack, self)


def _flush_sack(self: Any) -> None:
    state: DelayedSack = self._bridge_sack
    state.timer = None
    if not self._sack_needed or self._association_state != _Sctp.State.ESTABLISHED:
        return
    state.unacked = 0
    task = asyncio.ensure_future(_original_send_sack(self))
    task.add_done_callback(lambda t: None if t.cancelled() else t.exception())


@contextlib.contextmanager
def delayed_sack(enabled: bool = True) -> Iterator[None]:
    """SCTP associations (data channels) created in this block acknowledge like RFC 4960 asks."""
    token = _sack_scope.set(enabled)
    try:
        yield
    finally:
        _sack_scope.reset(token)


@contextlib.contextmanager
def fast_receive(enabled: bool = True) -> Iterator[None]:
    """Audio receivers created in this block (and tasks it starts) decode inline, in mono."""
    token = _fast_scope.set(enabled)
    try:
        yield
    finally:
        _fast_scope.reset(token)


def _version_ok() -> bool:
    version = getattr(aiortc, "__version__", "")
    return any(version.startswith(prefix) for prefix in SUPPORTED_AIORTC)


def install() -> dict[str, bool]:
    """Apply every hook that fits the installed aiortc; idempotent. Returns hook → applied."""
    if _installed:
        return dict(_installed)
    _installed.update(audio_level=False, inline_decode=False, delayed_sack=False)
    if os.environ.get("BRIDGE_AIORTC_HOOKS") == "0":
        return dict(_installed)
    if not _version_ok():
        log.warning(
            "aiortc %s is not one of %s; audio CPU hooks not installed",
            getattr(aiortc, "__version__", "?"),
            SUPPORTED_AIORTC,
        )
        return dict(_installed)
    if callable(getattr(aiortc.rtp, "compute_audio_level_dbov", None)):
        aiortc.rtp.compute_audio_level_dbov = compute_audio_level_dbov
        _installed["audio_level"] = True
    receiver_module = aiortc.rtcrtpreceiver
    if callable(getattr(receiver_module, "decoder_worker", None)) and "queue" in vars(receiver_module):
        receiver_module.decoder_worker = _decoder_worker
        receiver_module.RTCRtpReceiver.__init__ = _receiver_init  # type: ignore[method-assign]
        _installed["inline_decode"] = True
    sctp_names = ("_sack_needed", "_sack_duplicates", "_sack_misordered", "_association_state")
    if callable(getattr(_Sctp, "_send_sack", None)) and all(
        name in _Sctp.__init__.__code__.co_names for name in sctp_names
    ):
        _Sctp.__init__ = _sctp_init  # type: ignore[method-assign]
        _Sctp._send_sack = _send_sack  # type: ignore[method-assign]
        _installed["delayed_sack"] = True
    log.debug("aiortc audio hooks: %s", _installed)
    return dict(_installed)


def installed() -> dict[str, bool]:
    return dict(_installed)
