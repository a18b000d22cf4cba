"""Framer offsets/flush, frame sizes, and the composed converter and WAV collector."""

from __future__ import annotations

import numpy as np
import pytest

from bridge.audio.analysis import dominant_frequency, multitone
from bridge.audio.convert import LIVE_FRAME_SAMPLES, LIVE_RATE, FrameConverter, WavCollector
from bridge.audio.errors import AudioFormatError
from bridge.audio.frames import Framer, frame_samples_for
from bridge.audio.pcm import from_bytes, to_bytes, to_int16
from bridge.audio.wav import decode_wav


def chunks_of(pcm: np.ndarray, seed: int, largest: int) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    out, pos = [], 0
    while pos < pcm.shape[0]:
        size = int(rng.integers(0, largest + 1))
        out.append(pcm[pos : pos + size])
        pos += size
    return out


@pytest.mark.parametrize(
    ("rate", "ms", "samples"), [(48000, 20, 960), (44100, 10, 441), (16000, 20, 320), (22050, 20, 441), (8000, 2.5, 20)]
)
def test_frame_samples_for(rate: int, ms: float, samples: int) -> None:
    assert frame_samples_for(rate, ms) == samples


@pytest.mark.parametrize(("rate", "ms"), [(11025, 10), (48000, 0), (44100, 0.1), (48000, -20)])
def test_frame_samples_for_refuses_fractional_frames(rate: int, ms: float) -> None:
    with pytest.raises(AudioFormatError) as info:
        frame_samples_for(rate, ms)
    assert info.value.code == "bad_frame_size"


@pytest.mark.parametrize("channels", [1, 2])
def test_framer_reassembles_input_with_running_offsets(channels: int) -> None:
    rng = np.random.default_rng(7)
    shape = (10_007,) if channels == 1 else (10_007, 2)
    pcm = rng.integers(-32768, 32767, size=shape, dtype=np.int16)
    framer = Framer(480, channels)
    frames = [f for chunk in chunks_of(pcm, seed=channels, largest=1500) for f in framer.push(chunk)]
    assert len(frames) == 10_007 // 480
    assert [f.sample_offset for f in frames] == [k * 480 for k in range(len(frames))]
    assert all(f.pcm.shape == ((480,) if channels == 1 else (480, 2)) and f.samples == 480 for f in frames)
    assert framer.pending_samples == 10_007 % 480
    last = framer.flush()
    assert last is not None
    assert last.sample_offset == len(frames) * 480
    assert last.samples == 10_007 % 480 and last.padded
    assert last.pcm.shape[0] == 480
    assert not np.any(last.pcm[last.samples :])
    joined = np.concatenate([f.pcm for f in frames] + [last.pcm[: last.samples]])
    np.testing.assert_array_equal(joined, pcm)
    assert framer.flush() is None


def test_flush_without_padding_and_reset() -> None:
    framer = Framer(100)
    assert framer.push(np.arange(250, dtype=np.int16))[1].sample_offset == 100
    tail = framer.flush(pad=False)
    assert tail is not None and tail.pcm.shape == (50,) and tail.samples == 50 and not tail.padded
    np.testing.assert_array_equal(tail.pcm, np.arange(200, 250))
    assert framer.sample_offset == 250
    framer.push(np.ones(30, np.int16))
    framer.reset(sample_offset=1000)
    assert framer.pending_samples == 0
    assert framer.push(np.ones(100, np.int16))[0].sample_offset == 1000


def test_frames_do_not_alias_caller_buffers() -> None:
    framer = Framer(4)
    data = np.arange(8, dtype=np.int16)
    frames = framer.push(data)
    data[:] = -1
    np.testing.assert_array_equal(frames[1].pcm, [4, 5, 6, 7])


def test_framer_refuses_bad_sizes_and_layouts() -> None:
    for size in (0, -5, 2.5, True):
        with pytest.raises(AudioFormatError):
            Framer(size)  # type: ignore[arg-type]
    with pytest.raises(AudioFormatError) as info:
        Framer(10, 2).push(np.zeros((5, 3), np.int16))
    assert info.value.code == "bad_shape"


def test_pcm_bytes_round_trip_and_alignment() -> None:
    stereo = np.array([[1, -2], [300, -32768]], np.int16)
    data = to_bytes(stereo)
    assert data == b"\x01\x00\xfe\xff\x2c\x01\x00\x80"
    np.testing.assert_array_equal(from_bytes(data, 2), stereo)
    with pytest.raises(AudioFormatError) as info:
        from_bytes(data[:-1], 1)
    assert info.value.code == "misaligned_pcm"


def test_mic_to_live_frames() -> None:
    rate = 44100
    tone = to_int16(np.stack([multitone(rate, 0.713, [700.0], 0.3)] * 2, axis=1).astype(np.float32))
    converter = FrameConverter(rate, 2, LIVE_RATE, 1, LIVE_FRAME_SAMPLES)
    frames = [f for chunk in chunks_of(tone, seed=11, largest=2000) for f in converter.push(chunk)]
    frames += converter.flush()
    assert all(f.pcm.shape == (960,) for f in frames)
    assert [f.sample_offset for f in frames] == [k * 960 for k in range(len(frames))]
    expected_total = round(tone.shape[0] * LIVE_RATE / rate)
    assert sum(f.samples for f in frames) == expected_total
    assert expected_total % 960 and frames[-1].samples == expected_total % 960
    joined = np.concatenate([f.pcm[: f.samples] for f in frames])
    assert dominant_frequency(joined, LIVE_RATE) == pytest.approx(700.0, abs=0.5)
    # After flush the converter starts a fresh stream at offset 0.
    assert converter.push(np.zeros((4410, 2), np.int16))[0].sample_offset == 0


def test_convai_chunks_to_engine_frames_and_interrupt() -> None:
    converter = FrameConverter(24000, 1, 48000, 2, 1024)
    speech = to_int16(multitone(24000, 0.5, [300.0, 900.0], 0.2).astype(np.float32))
    frames = converter.push(speech)
    assert frames and all(f.pcm.shape == (1024, 2) for f in frames)
    converter.reset()
    after = converter.push(speech) + converter.flush()
    assert after[0].sample_offset == 0
    assert sum(f.samples for f in after) == 24000


def test_wav_collector_produces_16k_mono_wav() -> None:
    rate = 48000
    voice = to_int16(np.stack([multitone(rate, 1.0, [500.0], 0.3)] * 2, axis=1).astype(np.float32))
    collector = WavCollector(rate, 2)
    for chunk in chunks_of(voice, seed=3, largest=960):
        collector.push(chunk)
    wav = collector.finish()
    pcm, out_rate, channels = decode_wav(wav)
    assert (out_rate, channels, pcm.shape) == (16000, 1, (16000,))
    assert dominant_frequency(pcm, 16000) == pytest.approx(500.0, abs=0.5)
    assert collector.duration_s == 0.0


def test_wav_collector_refuses_overlong_input() -> None:
    collector = WavCollector(16000, 1, max_seconds=1.0)
    collector.push(np.zeros(16000, np.int16))
    with pytest.raises(AudioFormatError) as info:
        collector.push(np.zeros(1, np.int16))
    assert info.value.code == "audio_too_long"
