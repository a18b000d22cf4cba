"""WAV encode/decode for every supported sample format, cross-checked with the stdlib and scipy readers."""

from __future__ import annotations

import io
import struct
import wave
from pathlib import Path

import numpy as np
import pytest
from scipy.io import wavfile

from bridge.audio.errors import AudioFormatError
from bridge.audio.wav import (
    WAV_HEADER_BYTES,
    decode_wav,
    encode_wav,
    read_wav_format,
    strip_wav_header,
    write_wav_file,
)

EXACT_FORMATS = ["s16", "s24", "s32", "f32"]


def sample_pcm(channels: int, n: int = 1001) -> np.ndarray:
    rng = np.random.default_rng(channels)
    pcm = rng.integers(-32768, 32768, size=(n, channels), dtype=np.int64).astype(np.int16)
    pcm[:4, 0] = [-32768, 32767, 0, -1]  # extremes must survive every format
    return pcm[:, 0] if channels == 1 else pcm


def riff(*chunks: tuple[bytes, bytes]) -> bytes:
    body = b"".join(
        cid + struct.pack("<I", len(data)) + data + (b"\x00" if len(data) % 2 else b"") for cid, data in chunks
    )
    return b"RIFF" + struct.pack("<I", 4 + len(body)) + b"WAVE" + body


def fmt_chunk(code: int, channels: int, rate: int, bits: int, block_align: int | None = None) -> tuple[bytes, bytes]:
    align = channels * bits // 8 if block_align is None else block_align
    return b"fmt ", struct.pack("<HHIIHH", code, channels, rate, rate * align, align, bits)


@pytest.mark.parametrize("extensible", [False, True])
@pytest.mark.parametrize("channels", [1, 2])
@pytest.mark.parametrize("sample_format", EXACT_FORMATS)
def test_round_trip_is_exact(sample_format: str, channels: int, extensible: bool) -> None:
    pcm = sample_pcm(channels)
    data = encode_wav(pcm, 22050, channels, sample_format=sample_format, extensible=extensible)
    decoded, rate, got_channels = decode_wav(data)
    assert (rate, got_channels) == (22050, channels)
    assert decoded.dtype == np.int16 and decoded.shape == pcm.shape
    np.testing.assert_array_equal(decoded, pcm)


@pytest.mark.parametrize("channels", [1, 2])
def test_round_trip_8_bit_keeps_the_top_byte(channels: int) -> None:
    pcm = sample_pcm(channels)
    decoded, _, _ = decode_wav(encode_wav(pcm, 8000, channels, sample_format="u8"))
    assert decoded.shape == pcm.shape
    assert np.max(np.abs(decoded.astype(np.int32) - pcm)) <= 256  # 8-bit step, saturated at the top


@pytest.mark.parametrize("sample_format", ["u8", "s16", "s24", "s32", "f32"])
def test_scipy_reads_what_we_write(sample_format: str) -> None:
    pcm = sample_pcm(2)
    rate, theirs = wavfile.read(io.BytesIO(encode_wav(pcm, 44100, 2, sample_format=sample_format)))
    assert rate == 44100 and theirs.shape == pcm.shape
    wide = pcm.astype(np.int64)
    expected = {
        "s16": wide,
        "s24": wide << 16,  # scipy left-justifies 24-bit samples in int32
        "s32": wide << 16,
        "f32": pcm / 32768.0,
    }.get(sample_format)
    if expected is None:  # u8
        assert np.max(np.abs((theirs.astype(np.int64) - 128) * 256 - wide)) <= 256
    else:
        np.testing.assert_array_equal(theirs, expected)


@pytest.mark.parametrize("dtype", [np.uint8, np.int16, np.int32, np.float32, np.float64])
def test_we_read_what_scipy_writes(dtype: type) -> None:
    pcm = sample_pcm(1)
    values = {
        np.uint8: lambda: (np.clip((pcm.astype(np.int32) + 128) >> 8, -128, 127) + 128).astype(np.uint8),
        np.int16: lambda: pcm,
        np.int32: lambda: pcm.astype(np.int32) << 16,
        np.float32: lambda: (pcm / 32768.0).astype(np.float32),
        np.float64: lambda: pcm / 32768.0,
    }[dtype]()
    buffer = io.BytesIO()
    wavfile.write(buffer, 16000, values)
    decoded, rate, channels = decode_wav(buffer.getvalue())
    assert (rate, channels) == (16000, 1)
    tolerance = 256 if dtype == np.uint8 else 0
    assert np.max(np.abs(decoded.astype(np.int32) - pcm)) <= tolerance


def test_stdlib_wave_agrees_on_16_bit(tmp_path: Path) -> None:
    pcm = sample_pcm(2)
    path = tmp_path / "voice.wav"
    write_wav_file(path, pcm, 16000, 2)
    with wave.open(str(path), "rb") as reader:
        assert (reader.getframerate(), reader.getnchannels(), reader.getsampwidth()) == (16000, 2, 2)
        frames = reader.readframes(reader.getnframes())
    np.testing.assert_array_equal(np.frombuffer(frames, "<i2").reshape(-1, 2), pcm)
    assert len(encode_wav(pcm, 16000, 2)) == WAV_HEADER_BYTES + pcm.nbytes
    assert [p.name for p in tmp_path.iterdir()] == ["voice.wav"]


def test_float_wav_saturates_and_zeroes_nan() -> None:
    floats = np.array([1.5, -1.5, np.nan, 0.5, np.inf], np.float32)
    data = riff(fmt_chunk(3, 1, 24000, 32), (b"data", floats.tobytes()))
    decoded, _, _ = decode_wav(data)
    np.testing.assert_array_equal(decoded, [32767, -32768, 0, 16384, 32767])


def test_24_bit_rounds_to_nearest() -> None:
    samples = [0x000080, 0x00007F, 0xFFFF80, 0xFFFF7F, 0x7FFFFF, 0x800000]  # +128, +127, -128, -129, max, min
    raw = b"".join(v.to_bytes(3, "little") for v in samples)
    decoded, _, _ = decode_wav(riff(fmt_chunk(1, 1, 48000, 24), (b"data", raw)))
    np.testing.assert_array_equal(decoded, [1, 0, -1, -1, 32767, -32768])


def test_streaming_sizes_truncation_and_extra_chunks() -> None:
    pcm = np.arange(-50, 50, dtype=np.int16)
    payload = pcm.tobytes()
    fmt = fmt_chunk(1, 1, 16000, 16)
    # A LIST chunk of odd size (padded) before data, and a data size a streaming encoder never patched.
    data = riff(fmt, (b"LIST", b"abc"))
    unsized = data + b"data" + struct.pack("<I", 0xFFFFFFFF) + payload
    np.testing.assert_array_equal(decode_wav(unsized)[0], pcm)
    # Truncated mid-sample: keep the whole samples that arrived.
    truncated = riff(fmt, (b"data", payload))[:-3]
    np.testing.assert_array_equal(decode_wav(truncated)[0], pcm[:-2])


def test_strip_wav_header() -> None:
    raw = np.arange(10, dtype=np.int16).tobytes()
    assert strip_wav_header(raw) == raw
    with_header = encode_wav(np.arange(10, dtype=np.int16), 24000, 1)
    assert len(with_header) == WAV_HEADER_BYTES + len(raw)
    assert strip_wav_header(with_header) == raw
    longer = riff(fmt_chunk(1, 1, 24000, 16), (b"LIST", b"info"), (b"data", raw))
    assert strip_wav_header(longer) == raw
    assert read_wav_format(with_header[:WAV_HEADER_BYTES]).rate == 24000


@pytest.mark.parametrize(
    ("data", "code"),
    [
        (b"not a wav file at all", "wav_malformed"),
        (riff((b"data", b"\x00\x00")), "wav_malformed"),  # data before fmt
        (riff(fmt_chunk(1, 1, 16000, 16)), "wav_malformed"),  # no data
        (riff((b"fmt ", b"\x01\x00")), "wav_malformed"),  # short fmt
        (riff(fmt_chunk(1, 1, 16000, 16, block_align=4), (b"data", b"")), "wav_malformed"),
        (riff(fmt_chunk(2, 1, 16000, 4), (b"data", b"")), "wav_unsupported_encoding"),  # MS ADPCM
        (riff(fmt_chunk(1, 1, 16000, 12), (b"data", b"")), "wav_unsupported_encoding"),
        (riff(fmt_chunk(3, 1, 16000, 16), (b"data", b"")), "wav_unsupported_encoding"),  # 16-bit float
        (riff(fmt_chunk(6, 1, 8000, 8), (b"data", b"")), "wav_unsupported_encoding"),  # A-law
        (riff(fmt_chunk(1, 3, 16000, 16), (b"data", b"")), "unsupported_channels"),
        (riff(fmt_chunk(1, 1, 4000, 16), (b"data", b"")), "unsupported_rate"),
    ],
)
def test_unsupported_wavs_are_refused(data: bytes, code: str) -> None:
    with pytest.raises(AudioFormatError) as info:
        decode_wav(data)
    assert info.value.code == code


def test_extensible_with_unknown_subtype_is_refused() -> None:
    good = encode_wav(np.zeros(4, np.int16), 16000, 1, extensible=True)
    guid_at = good.index(b"fmt ") + 8 + 24
    bad = good[: guid_at + 2] + b"\xff" * 14 + good[guid_at + 16 :]
    with pytest.raises(AudioFormatError) as info:
        decode_wav(bad)
    assert info.value.code == "wav_unsupported_encoding"


def test_encode_refuses_bad_input() -> None:
    with pytest.raises(AudioFormatError) as info:
        encode_wav(np.zeros(4, np.int16), 16000, 1, sample_format="s12")
    assert info.value.code == "wav_unsupported_encoding"
    with pytest.raises(AudioFormatError) as info:
        encode_wav(np.zeros(4, np.float32), 16000, 1)
    assert info.value.code == "unsupported_sample_format"
