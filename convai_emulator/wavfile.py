"""RIFF/WAVE reading and writing for the emulator.

The emulator has no speech recogniser, so an uploaded WAV is "transcribed" by convention: a RIFF
``LIST``/``INFO`` chunk with an ``ICMT`` (comment) entry carries the transcript verbatim. Any other
audio becomes ``(unintelligible audio of N.N s)``, and digital silence becomes an empty query.
``wav_bytes(..., transcript=...)`` writes such a chunk so tests and demo clients can send "speech"
whose meaning the emulator can act on.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field

import numpy as np

WAVE_FORMAT_PCM = 0x0001
WAVE_FORMAT_EXTENSIBLE = 0xFFFE
# Peak below this (int16 scale) counts as silence: dither and DC offsets stay under it.
SILENCE_PEAK = 64


class WavError(ValueError):
    """The bytes are not a WAV file the emulator accepts."""


@dataclass(frozen=True)
class WavAudio:
    sample_rate: int
    channels: int
    bits_per_sample: int
    pcm: np.ndarray  # int16, shape (frames, channels); wider samples are reduced to 16 bit
    info: dict[str, str] = field(default_factory=dict)  # LIST/INFO entries, e.g. {"ICMT": "..."}

    @property
    def duration_s(self) -> float:
        return self.pcm.shape[0] / self.sample_rate if self.sample_rate else 0.0


def _info_chunk(entries: dict[str, str]) -> bytes:
    body = bytearray(b"INFO")
    for key, value in entries.items():
        raw = value.encode("utf-8") + b"\x00"
        body += key.encode("ascii")[:4].ljust(4, b" ") + struct.pack("<I", len(raw)) + raw
        if len(raw) % 2:
            body += b"\x00"
    return b"LIST" + struct.pack("<I", len(body)) + bytes(body)


def wav_bytes(pcm: np.ndarray, sample_rate: int, *, transcript: str | None = None) -> bytes:
    """Mono or (frames, channels) int16 PCM as a complete WAV file, optionally with an ICMT transcript."""
    samples = np.asarray(pcm)
    if samples.dtype != np.int16:
        samples = np.clip(np.rint(samples), -32768, 32767).astype(np.int16)
    channels = 1 if samples.ndim == 1 else int(samples.shape[1])
    data = samples.astype("<i2", copy=False).tobytes()
    fmt = struct.pack("<HHIIHH", WAVE_FORMAT_PCM, channels, sample_rate, sample_rate * channels * 2,
                      channels * 2, 16)
    extra = _info_chunk({"ICMT": transcript}) if transcript is not None else b""
    riff_size = 4 + (8 + len(fmt)) + len(extra) + (8 + len(data)) + (len(data) % 2)
    out = bytearray(b"RIFF" + struct.pack("<I", riff_size) + b"WAVE")
    out += b"fmt " + struct.pack("<I", len(fmt)) + fmt
    out += extra
    out += b"data" + struct.pack("<I", len(data)) + data
    if len(data) % 2:
        out += b"\x00"
    return bytes(out)


def _parse_info(body: bytes) -> dict[str, str]:
    entries: dict[str, str] = {}
    if body[:4] != b"INFO":
        return entries
    pos = 4
    while pos + 8 <= len(body):
        key = body[pos:pos + 4].decode("ascii", "replace").strip()
        size = struct.unpack_from("<I", body, pos + 4)[0]
        raw = body[pos + 8:pos + 8 + size]
        entries[key] = raw.split(b"\x00", 1)[0].decode("utf-8", "replace")
        pos += 8 + size + (size % 2)
    return entries


def read_wav(data: bytes) -> WavAudio:
    """Parse integer PCM WAV (8/16/24/32 bit), tolerating streaming writers' bogus data sizes."""
    if len(data) < 12 or data[:4] != b"RIFF" or data[8:12] != b"WAVE":
        raise WavError("not a RIFF/WAVE file")
    pos = 12
    fmt: tuple[int, int, int, int] | None = None
    info: dict[str, str] = {}
    payload: bytes | None = None
    while pos + 8 <= len(data):
        chunk_id = data[pos:pos + 4]
        size = struct.unpack_from("<I", data, pos + 4)[0]
        body = data[pos + 8:pos + 8 + size]  # clamps when the size overstates (espeak-ng --stdout)
        if chunk_id == b"fmt ":
            if len(body) < 16:
                raise WavError("fmt chunk too short")
            tag, channels, rate, _, _, bits = struct.unpack_from("<HHIIHH", body)
            if tag == WAVE_FORMAT_EXTENSIBLE and len(body) >= 26:
                tag = struct.unpack_from("<H", body, 24)[0]
            fmt = (tag, channels, rate, bits)
        elif chunk_id == b"LIST":
            info.update(_parse_info(body))
        elif chunk_id == b"data":
            payload = body
        pos += 8 + size + (size % 2)
    if fmt is None:
        raise WavError("missing fmt chunk")
    if payload is None:
        raise WavError("missing data chunk")
    tag, channels, rate, bits = fmt
    if tag != WAVE_FORMAT_PCM:
        raise WavError(f"unsupported WAV encoding {tag:#06x}; integer PCM required")
    if channels < 1 or rate < 1:
        raise WavError("invalid channel count or sample rate")
    if bits not in (8, 16, 24, 32):
        raise WavError(f"unsupported bit depth {bits}")
    width = bits // 8
    usable = len(payload) - len(payload) % (width * channels)
    raw = payload[:usable]
    if bits == 8:
        samples = (np.frombuffer(raw, dtype=np.uint8).astype(np.int16) - 128) << 8
    elif bits == 16:
        samples = np.frombuffer(raw, dtype="<i2").astype(np.int16)
    elif bits == 24:
        triplets = np.frombuffer(raw, dtype=np.uint8).reshape(-1, 3)
        samples = (triplets[:, 2].astype(np.int8).astype(np.int16) << 8) | triplets[:, 1].astype(np.int16)
    else:
        samples = (np.frombuffer(raw, dtype="<i4") >> 16).astype(np.int16)
    return WavAudio(rate, channels, bits, samples.reshape(-1, channels), info)


def transcribe(audio: WavAudio) -> str:
    """The emulator's documented stand-in for speech recognition (see module docstring)."""
    comment = audio.info.get("ICMT")
    if comment is not None and comment.strip():
        return comment.strip()
    if audio.pcm.size == 0 or int(np.abs(audio.pcm.astype(np.int32)).max()) < SILENCE_PEAK:
        return ""
    return f"(unintelligible audio of {audio.duration_s:.1f} s)"
