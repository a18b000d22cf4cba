"""RIFF/WAVE reading and writing for REST audio (whole WAV replies, WAV voice input) and header-prefixed chunks.

Decoding accepts what TTS engines and recorders commonly emit (8/16/24/32-bit integer PCM, 32/64-bit
float, plain or WAVE_FORMAT_EXTENSIBLE) and always returns int16. Streamed WAVs often carry a data size
of 0 or 0xFFFFFFFF; those, and truncated files, are read up to the last whole sample frame.
"""

from __future__ import annotations

import os
import struct
from dataclasses import dataclass

import numpy as np

from bridge.audio.errors import AudioErrorCode, AudioFormatError
from bridge.audio.pcm import INT16_SCALE, as_frames, shaped, to_int16, validate_channels, validate_rate

FORMAT_PCM = 0x0001
FORMAT_IEEE_FLOAT = 0x0003
FORMAT_EXTENSIBLE = 0xFFFE
# Tail shared by the KSDATAFORMAT_SUBTYPE_* GUIDs; the first two bytes hold the plain format code.
_SUBTYPE_TAIL = bytes.fromhex("000000001000800000aa00389b71")

# encode_wav sample formats: name -> (format code, bits per sample)
SAMPLE_FORMATS: dict[str, tuple[int, int]] = {
    "u8": (FORMAT_PCM, 8),
    "s16": (FORMAT_PCM, 16),
    "s24": (FORMAT_PCM, 24),
    "s32": (FORMAT_PCM, 32),
    "f32": (FORMAT_IEEE_FLOAT, 32),
}

WAV_HEADER_BYTES = 44


@dataclass(frozen=True, slots=True)
class WavFormat:
    """What the ``fmt `` chunk says, after resolving WAVE_FORMAT_EXTENSIBLE to its sub-format."""

    format_code: int
    channels: int
    rate: int
    bits: int
    block_align: int


def encode_wav(
    pcm: np.ndarray, rate: int, channels: int, sample_format: str = "s16", extensible: bool = False
) -> bytes:
    """Serialise int16 samples as a WAV file (16-bit PCM unless another ``SAMPLE_FORMATS`` name is given)."""
    rate = validate_rate(rate)
    channels = validate_channels(channels)
    if sample_format not in SAMPLE_FORMATS:
        raise AudioFormatError(
            AudioErrorCode.WAV_UNSUPPORTED_ENCODING, f"sample format must be one of {sorted(SAMPLE_FORMATS)}"
        )
    code, bits = SAMPLE_FORMATS[sample_format]
    frames = as_frames(pcm, channels)
    payload = _encode_samples(frames, sample_format)
    block_align = channels * bits // 8
    if extensible:
        channel_mask = 0x4 if channels == 1 else 0x3
        subformat = struct.pack("<H", code) + _SUBTYPE_TAIL
        fmt = struct.pack(
            "<HHIIHHHHI16s",
            FORMAT_EXTENSIBLE,
            channels,
            rate,
            rate * block_align,
            block_align,
            bits,
            22,
            bits,
            channel_mask,
            subformat,
        )
    else:
        fmt = struct.pack("<HHIIHH", code, channels, rate, rate * block_align, block_align, bits)
        if code != FORMAT_PCM:
            fmt += struct.pack("<H", 0)  # cbSize, required for non-PCM formats
    chunks = [b"fmt ", struct.pack("<I", len(fmt)), fmt]
    if code != FORMAT_PCM:
        # Non-PCM formats carry a fact chunk with the per-channel sample count.
        chunks += [b"fact", struct.pack("<II", 4, frames.shape[0])]
    chunks += [b"data", struct.pack("<I", len(payload)), payload]
    if len(payload) % 2:
        chunks.append(b"\x00")
    body = b"".join(chunks)
    return b"RIFF" + struct.pack("<I", 4 + len(body)) + b"WAVE" + body


def write_wav_file(path: str | os.PathLike[str], pcm: np.ndarray, rate: int, channels: int) -> None:
    """Write a 16-bit PCM WAV file (complete or not at all: written to a temporary name, then renamed)."""
    data = encode_wav(pcm, rate, channels)
    tmp = f"{os.fspath(path)}.tmp{os.getpid()}"
    with open(tmp, "wb") as handle:
        handle.write(data)
    os.replace(tmp, path)


def decode_wav(data: bytes | bytearray | memoryview) -> tuple[np.ndarray, int, int]:
    """Parse a WAV file into ``(pcm, rate, channels)``; pcm is int16, 1-D for mono, ``(n, 2)`` for stereo."""
    fmt, payload = _parse(bytes(data), require_data=True)
    samples = _decode_samples(payload, fmt)
    return shaped(samples), fmt.rate, fmt.channels


def read_wav_format(data: bytes | bytearray | memoryview) -> WavFormat:
    """Just the format of a WAV file or header (useful to check an ``audio-data`` chunk's header)."""
    fmt, _ = _parse(bytes(data), require_data=False)
    return fmt


def strip_wav_header(data: bytes) -> bytes:
    """Return the PCM payload of a chunk that may start with a RIFF/WAVE header, else the chunk unchanged.

    Convai ``audio-data`` chunks carry a 44-byte header when ``add_wav_header`` is set; longer headers
    (extra chunks before ``data``) are handled too.
    """
    if len(data) < 12 or data[:4] != b"RIFF" or data[8:12] != b"WAVE":
        return data
    _, payload = _parse(bytes(data), require_data=True, whole_blocks=False)
    return payload


def _parse(data: bytes, require_data: bool, whole_blocks: bool = True) -> tuple[WavFormat, bytes]:
    if len(data) < 12 or data[:4] != b"RIFF" or data[8:12] != b"WAVE":
        raise AudioFormatError(AudioErrorCode.WAV_MALFORMED, "not a RIFF/WAVE file")
    fmt: WavFormat | None = None
    pos = 12
    while pos + 8 <= len(data):
        chunk_id = data[pos : pos + 4]
        (size,) = struct.unpack_from("<I", data, pos + 4)
        body_start = pos + 8
        if chunk_id == b"fmt ":
            fmt = _parse_fmt(data[body_start : body_start + size])
        elif chunk_id == b"data":
            if fmt is None:
                raise AudioFormatError(AudioErrorCode.WAV_MALFORMED, "data chunk before fmt chunk")
            available = len(data) - body_start
            # 0 and 0xFFFFFFFF are written by streaming encoders that never patched the size.
            size = available if size in (0, 0xFFFFFFFF) or size > available else size
            if whole_blocks:
                size -= size % fmt.block_align
            return fmt, data[body_start : body_start + size]
        pos = body_start + size + (size & 1)
    if fmt is None:
        raise AudioFormatError(AudioErrorCode.WAV_MALFORMED, "no fmt chunk")
    if require_data:
        raise AudioFormatError(AudioErrorCode.WAV_MALFORMED, "no data chunk")
    return fmt, b""


def _parse_fmt(body: bytes) -> WavFormat:
    if len(body) < 16:
        raise AudioFormatError(AudioErrorCode.WAV_MALFORMED, f"fmt chunk of {len(body)} bytes is too short")
    code, channels, rate, _byte_rate, block_align, bits = struct.unpack_from("<HHIIHH", body)
    if code == FORMAT_EXTENSIBLE:
        if len(body) < 40:
            raise AudioFormatError(AudioErrorCode.WAV_MALFORMED, "WAVE_FORMAT_EXTENSIBLE fmt chunk is too short")
        subformat = body[24:40]
        if subformat[2:] != _SUBTYPE_TAIL:
            raise AudioFormatError(AudioErrorCode.WAV_UNSUPPORTED_ENCODING, "unknown WAVE_FORMAT_EXTENSIBLE subtype")
        (code,) = struct.unpack_from("<H", subformat)
    supported = {FORMAT_PCM: (8, 16, 24, 32), FORMAT_IEEE_FLOAT: (32, 64)}
    if code not in supported or bits not in supported[code]:
        raise AudioFormatError(
            AudioErrorCode.WAV_UNSUPPORTED_ENCODING,
            f"format 0x{code:04x} with {bits} bits per sample (need PCM 8/16/24/32 or float 32/64)",
        )
    channels = validate_channels(channels)
    rate = validate_rate(rate)
    if block_align != channels * bits // 8:
        raise AudioFormatError(
            AudioErrorCode.WAV_MALFORMED, f"block align {block_align} != {channels} channels x {bits} bits"
        )
    return WavFormat(code, channels, rate, bits, block_align)


def _decode_samples(payload: bytes, fmt: WavFormat) -> np.ndarray:
    if fmt.format_code == FORMAT_IEEE_FLOAT:
        floats = np.frombuffer(payload, dtype="<f4" if fmt.bits == 32 else "<f8")
        values = np.nan_to_num(floats.astype(np.float32), nan=0.0, posinf=1.0, neginf=-1.0)
        out = to_int16(values)
    elif fmt.bits == 8:
        out = ((np.frombuffer(payload, dtype=np.uint8).astype(np.int16) - 128) << 8).astype(np.int16)
    elif fmt.bits == 16:
        out = np.frombuffer(payload, dtype="<i2").astype(np.int16)
    elif fmt.bits == 24:
        raw = np.frombuffer(payload, dtype=np.uint8).reshape(-1, 3).astype(np.int32)
        wide = raw[:, 0] | (raw[:, 1] << 8) | (raw[:, 2] << 16)
        wide = (wide ^ 0x800000) - 0x800000  # sign-extend
        out = _narrow(wide, 8)
    else:
        out = _narrow(np.frombuffer(payload, dtype="<i4").astype(np.int64), 16)
    return out.reshape(-1, fmt.channels)


def _narrow(wide: np.ndarray, shift: int) -> np.ndarray:
    """Drop ``shift`` low bits with rounding (half away from zero) and saturation."""
    half = 1 << (shift - 1)
    rounded = np.where(wide >= 0, (wide + half) >> shift, -((half - wide) >> shift))
    return np.clip(rounded, -32768, 32767).astype(np.int16)


def _encode_samples(frames: np.ndarray, sample_format: str) -> bytes:
    if sample_format == "s16":
        return np.ascontiguousarray(frames, dtype="<i2").tobytes()
    if sample_format == "u8":
        narrowed = _narrow(frames.astype(np.int32), 8).astype(np.int16)
        return (np.clip(narrowed, -128, 127) + 128).astype(np.uint8).tobytes()
    if sample_format == "s24":
        wide = frames.astype(np.int32).reshape(-1) << 8
        raw = np.stack([wide & 0xFF, (wide >> 8) & 0xFF, (wide >> 16) & 0xFF], axis=1).astype(np.uint8)
        return raw.tobytes()
    if sample_format == "s32":
        return (frames.astype("<i4") << 16).tobytes()
    return (frames.astype("<f4") / np.float32(INT16_SCALE)).astype("<f4").tobytes()
