"""Encode bot speech to Opus once, so playout sends ready-made packets.

aiortc encodes every outgoing ``AudioFrame`` itself (resampling to stereo, libopus in a thread, and a
pure-Python RFC 6465 audio level per frame). A track that yields pre-encoded ``av.Packet``s skips
all of it: aiortc only packetizes. Speech is encoded in one pass per utterance (about 7 ms of CPU per
second of audio) and silence is one cached packet.
"""

from __future__ import annotations

import fractions
from functools import lru_cache

import av
import numpy as np
from av.audio.frame import AudioFrame

SAMPLE_RATE = 48_000
FRAME_SAMPLES = 960  # 20 ms at 48 kHz
FRAME_SECONDS = FRAME_SAMPLES / SAMPLE_RATE
TIME_BASE = fractions.Fraction(1, SAMPLE_RATE)


def _encoder(bit_rate: int) -> av.AudioCodecContext:
    codec = av.CodecContext.create("libopus", "w")
    codec.sample_rate = SAMPLE_RATE
    codec.layout = "mono"
    codec.format = "s16"
    codec.bit_rate = bit_rate
    codec.time_base = TIME_BASE
    codec.options = {"application": "voip", "frame_duration": "20"}
    return codec


def encode_pcm(pcm: np.ndarray, bit_rate: int = 32_000) -> list[bytes]:
    """48 kHz mono int16 → one Opus packet per 20 ms frame (the tail is padded with silence).

    The result has exactly ``ceil(len(pcm) / 960)`` packets: libopus's look-ahead packet produced on
    flush is dropped, so packet *i* plays frame *i* (within the codec's 6.5 ms delay).
    """
    samples = np.ascontiguousarray(pcm, dtype=np.int16).reshape(-1)
    n_frames = max(1, -(-len(samples) // FRAME_SAMPLES))
    padded = np.zeros(n_frames * FRAME_SAMPLES, dtype=np.int16)
    padded[: len(samples)] = samples
    codec = _encoder(bit_rate)
    out: list[bytes] = []
    for i in range(n_frames):
        frame = AudioFrame.from_ndarray(
            padded[i * FRAME_SAMPLES : (i + 1) * FRAME_SAMPLES].reshape(1, -1), format="s16", layout="mono"
        )
        frame.sample_rate = SAMPLE_RATE
        frame.pts = i * FRAME_SAMPLES
        frame.time_base = TIME_BASE
        out.extend(bytes(p) for p in codec.encode(frame))
    out.extend(bytes(p) for p in codec.encode(None))
    return out[:n_frames] + [silence_packet()] * (n_frames - len(out))


@lru_cache(maxsize=1)
def silence_packet() -> bytes:
    """A steady-state encoded 20 ms of digital silence (the first packets carry encoder warm-up)."""
    codec = _encoder(32_000)
    last = b""
    for i in range(10):
        frame = AudioFrame.from_ndarray(np.zeros((1, FRAME_SAMPLES), np.int16), format="s16", layout="mono")
        frame.sample_rate = SAMPLE_RATE
        frame.pts = i * FRAME_SAMPLES
        frame.time_base = TIME_BASE
        for packet in codec.encode(frame):
            last = bytes(packet)
    return last


def make_packet(payload: bytes, pts: int) -> av.Packet:
    packet = av.Packet(payload)
    packet.pts = pts
    packet.time_base = TIME_BASE
    return packet
