"""StreamResampler: streaming equals one piece, in-band fidelity, channel mixing, refusals."""

from __future__ import annotations

import numpy as np
import pytest
import soxr

from bridge.audio.analysis import dominant_frequency, estimate_delay, multitone, snr_db
from bridge.audio.errors import AudioFormatError
from bridge.audio.pcm import mix_channels, to_float, to_int16
from bridge.audio.resample import StreamResampler, resample

RATE_PAIRS = [(16000, 48000), (48000, 16000), (44100, 48000), (22050, 24000), (48000, 44100)]
FRAME_SIZES = [1, 37, 441, 960]
TONES = [220.0, 1000.0, 2750.0, 5100.0]  # all well below 8 kHz, the lowest Nyquist tested


def noise_int16(n: int, seed: int = 0, channels: int = 1) -> np.ndarray:
    rng = np.random.default_rng(seed)
    shape = (n,) if channels == 1 else (n, channels)
    return np.clip(rng.standard_normal(shape) * 6000, -32768, 32767).astype(np.int16)


def stream_in_frames(resampler: StreamResampler, pcm: np.ndarray, frame: int) -> np.ndarray:
    parts = [resampler.process(pcm[i : i + frame]) for i in range(0, pcm.shape[0], frame)]
    parts.append(resampler.flush())
    return np.concatenate(parts)


@pytest.mark.parametrize("frame", FRAME_SIZES)
@pytest.mark.parametrize(("in_rate", "out_rate"), RATE_PAIRS)
def test_framewise_equals_one_piece(in_rate: int, out_rate: int, frame: int) -> None:
    pcm = noise_int16(in_rate // 4, seed=frame)
    streamed = stream_in_frames(StreamResampler(in_rate, out_rate), pcm, frame)
    whole = resample(pcm, in_rate, out_rate)
    # Independent of our wrapper: soxr's own one-shot on the same float input.
    reference = to_int16(soxr.resample(to_float(pcm), in_rate, out_rate, quality="HQ"))
    assert streamed.shape == whole.shape == reference.shape == (round(pcm.shape[0] * out_rate / in_rate),)
    assert np.max(np.abs(streamed.astype(np.int32) - whole)) <= 1
    assert np.max(np.abs(streamed.astype(np.int32) - reference)) <= 1


@pytest.mark.parametrize(("in_rate", "out_rate"), [(44100, 48000), (48000, 16000)])
def test_multitone_snr_at_least_120_db(in_rate: int, out_rate: int) -> None:
    seconds = 1.0
    source = multitone(in_rate, seconds, TONES, 0.2, phases=[0.3, 1.1, 2.0, 0.7]).astype(np.float32)
    resampler = StreamResampler(in_rate, out_rate)
    frame = in_rate // 50
    parts = [resampler.process_float(source[i : i + frame]) for i in range(0, len(source), frame)]
    parts.append(resampler.flush_float())
    out = np.concatenate(parts)
    reference = multitone(out_rate, seconds, TONES, 0.2, phases=[0.3, 1.1, 2.0, 0.7])
    # soxr output is time-aligned with its input: the best integer lag is 0.
    assert estimate_delay(reference, out, max_lag=200) == 0
    trim = out_rate // 20  # start-up and end-of-signal transients are not steady-state fidelity
    assert snr_db(reference, out, delay=0, trim=trim) >= 120.0


def test_int16_path_is_limited_only_by_quantisation() -> None:
    in_rate, out_rate = 44100, 48000
    source = to_int16(multitone(in_rate, 0.5, TONES, 0.2).astype(np.float32))
    out = stream_in_frames(StreamResampler(in_rate, out_rate), source, 882)
    reference = multitone(out_rate, 0.5, TONES, 0.2)
    ceiling = snr_db(reference, to_int16(reference.astype(np.float32)), delay=0)
    measured = snr_db(reference, out, delay=0, trim=2400)
    # Two roundings (input and output) cost at most ~3 dB against one; wrong scaling or truncation costs far more.
    assert measured > ceiling - 4.0
    assert measured > 85.0


@pytest.mark.parametrize(("rate", "via"), [(44100, 48000), (16000, 48000), (48000, 16000), (24000, 22050)])
def test_tone_survives_round_trip(rate: int, via: int) -> None:
    tone = 997.0
    source = to_int16(multitone(rate, 0.5, [tone], 0.5).astype(np.float32))
    there = stream_in_frames(StreamResampler(rate, via), source, 333)
    back = stream_in_frames(StreamResampler(via, rate), there, 333)
    assert back.shape == source.shape
    assert dominant_frequency(there, via) == pytest.approx(tone, abs=0.5)
    assert dominant_frequency(back, rate) == pytest.approx(tone, abs=0.5)
    assert snr_db(source, back, delay=0, trim=rate // 20) > 80.0


def test_stereo_to_mono_averages_channels() -> None:
    rate, out_rate = 48000, 16000
    left = multitone(rate, 0.5, [440.0], 0.4)
    right = multitone(rate, 0.5, [1300.0], 0.4)
    stereo = to_int16(np.stack([left, right], axis=1).astype(np.float32))
    resampler = StreamResampler(rate, out_rate, channels_in=2, channels_out=1)
    out = stream_in_frames(resampler, stereo, 960)
    assert out.ndim == 1
    expected = (multitone(out_rate, 0.5, [440.0], 0.4) + multitone(out_rate, 0.5, [1300.0], 0.4)) / 2
    ceiling = snr_db(expected, to_int16(expected.astype(np.float32)), delay=0)
    assert snr_db(expected, out, delay=0, trim=800) > ceiling - 4.0


def test_interleaved_stereo_input_is_accepted() -> None:
    stereo = noise_int16(4800, seed=3, channels=2)
    as_pairs = StreamResampler(48000, 24000, 2, 2).process(stereo)
    interleaved = StreamResampler(48000, 24000, 2, 2).process(stereo.reshape(-1))
    assert as_pairs.shape[1] == 2
    np.testing.assert_array_equal(as_pairs, interleaved)


def test_mono_to_stereo_duplicates() -> None:
    mono = noise_int16(4410, seed=4)
    out = stream_in_frames(StreamResampler(44100, 48000, 1, 2), mono, 441)
    assert out.shape == (4800, 2)
    np.testing.assert_array_equal(out[:, 0], out[:, 1])
    np.testing.assert_array_equal(out[:, 0], resample(mono, 44100, 48000))


def test_passthrough_skips_soxr_and_mixes_exactly() -> None:
    stereo = np.array([[1, 2], [-1, -2], [32767, 32767], [-32768, -32768], [3, -3], [-32768, 32767]], np.int16)
    resampler = StreamResampler(24000, 24000, 2, 1)
    assert resampler.passthrough
    out = resampler.process(stereo)
    np.testing.assert_array_equal(out, [2, -2, 32767, -32768, 0, -1])
    assert resampler.flush().shape == (0,)
    mono = noise_int16(100)
    np.testing.assert_array_equal(StreamResampler(16000, 16000).process(mono), mono)


def test_int16_conversion_rounds_and_saturates() -> None:
    values = np.array([1.0, -1.0, 1.7, -1.7, 0.4 / 32768, 0.6 / 32768, -0.6 / 32768, 1000.0], np.float32)
    np.testing.assert_array_equal(to_int16(values), [32767, -32768, 32767, -32768, 0, 1, -1, 32767])
    # A full-scale square wave overshoots after low-pass filtering; the int16 path must saturate, not wrap.
    square = np.where(np.arange(4800) % 96 < 48, 32767, -32768).astype(np.int16)
    floats = StreamResampler(48000, 16000).process_float(to_float(square))
    ints = StreamResampler(48000, 16000).process(square)
    assert np.max(floats) > 1.0 and np.min(floats) < -1.0
    overshoot = floats * 32768 > 32767
    assert np.all(ints[overshoot] == 32767)
    assert np.all(ints[floats * 32768 < -32768] == -32768)
    np.testing.assert_array_equal(ints, to_int16(floats))


def test_flush_makes_the_stream_reusable_and_reset_drops_pending() -> None:
    pcm = noise_int16(4410, seed=5)
    resampler = StreamResampler(44100, 48000)
    first = stream_in_frames(resampler, pcm, 441)
    second = stream_in_frames(resampler, pcm, 441)
    np.testing.assert_array_equal(first, second)
    resampler.process(noise_int16(3000, seed=6))
    assert resampler.pending_samples > 0
    resampler.reset()
    np.testing.assert_array_equal(stream_in_frames(resampler, pcm, 441), first)


def test_mix_channels_float_average() -> None:
    frames = np.array([[0.5, -0.25], [1.0, 1.0]], np.float32)
    np.testing.assert_allclose(mix_channels(frames, 1)[:, 0], [0.125, 1.0])


@pytest.mark.parametrize(
    ("kwargs", "code"),
    [
        ({"in_rate": 7999, "out_rate": 16000}, "unsupported_rate"),
        ({"in_rate": 16000, "out_rate": 192001}, "unsupported_rate"),
        ({"in_rate": 44100.5, "out_rate": 48000}, "unsupported_rate"),
        ({"in_rate": "16000", "out_rate": 48000}, "unsupported_rate"),
        ({"in_rate": True, "out_rate": 48000}, "unsupported_rate"),
        ({"in_rate": 16000, "out_rate": 48000, "channels_in": 0}, "unsupported_channels"),
        ({"in_rate": 16000, "out_rate": 48000, "channels_out": 3}, "unsupported_channels"),
        ({"in_rate": 16000, "out_rate": 48000, "quality": "XQ"}, "unsupported_quality"),
    ],
)
def test_invalid_formats_are_refused_with_codes(kwargs: dict[str, object], code: str) -> None:
    with pytest.raises(AudioFormatError) as info:
        StreamResampler(**kwargs)  # type: ignore[arg-type]
    assert info.value.code == code
    assert isinstance(info.value, ValueError)


def test_boundary_rates_and_integral_floats_are_accepted() -> None:
    assert StreamResampler(8000, 192000).out_rate == 192000
    assert StreamResampler(44100.0, np.int64(48000)).in_rate == 44100


@pytest.mark.parametrize(
    ("pcm", "code"),
    [
        (np.zeros(10, np.float64), "unsupported_sample_format"),
        (np.zeros(10, np.int32), "unsupported_sample_format"),
        (np.zeros((10, 3), np.int16), "bad_shape"),
        (np.zeros(11, np.int16), "bad_shape"),  # odd interleaved length for stereo
    ],
)
def test_bad_chunks_are_refused(pcm: np.ndarray, code: str) -> None:
    with pytest.raises(AudioFormatError) as info:
        StreamResampler(48000, 16000, channels_in=2).process(pcm)
    assert info.value.code == code
