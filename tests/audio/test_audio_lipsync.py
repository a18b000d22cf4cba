"""Envelope lip sync: mouth opens on loud vowels, rests on silence, frames timed by sample offset."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import signal

from bridge.audio.lipsync import (
    VISEME_NAMES,
    EnvelopeLipSync,
    envelope_visemes,
    frame_index_at,
    frame_start_sample,
    samples_for_ms,
    samples_for_seconds,
    seconds_for_samples,
    speech_level_db,
)
from bridge.audio.pcm import to_int16

OPEN_SHAPES = ("aa", "e", "ih", "oh", "ou")


def vowel(rate: int, f1: float, f2: float, seconds: float, amplitude: float, f0: float = 120.0) -> np.ndarray:
    """A crude voiced vowel: a sawtooth glottal source through three formant resonators."""
    t = np.arange(int(seconds * rate)) / rate
    source = signal.sawtooth(2 * np.pi * f0 * t)
    out = np.zeros_like(t)
    for freq, bandwidth in ((f1, 80.0), (f2, 100.0), (2500.0, 150.0)):
        b, a = signal.iirpeak(freq, freq / bandwidth, fs=rate)
        out += signal.lfilter(b, a, source)
    return out / np.max(np.abs(out)) * amplitude


def hiss(rate: int, seconds: float, amplitude: float) -> np.ndarray:
    noise = np.random.default_rng(1).standard_normal(int(seconds * rate))
    sos = signal.butter(6, min(4500.0, 0.45 * rate), "highpass", fs=rate, output="sos")
    out = signal.sosfilt(sos, noise)
    return out / np.max(np.abs(out)) * amplitude


def mean_weights(frames: list, start: int, end: int) -> dict[str, float]:
    picked = [f.weights for f in frames if start <= f.sample_offset < end]
    assert picked, "no frames in range"
    return dict(zip(VISEME_NAMES, np.mean(picked, axis=0), strict=True))


def test_viseme_order_is_the_ovr_order() -> None:
    assert VISEME_NAMES == ("sil", "pp", "ff", "th", "dd", "kk", "ch", "ss", "nn", "rr", "aa", "e", "ih", "oh", "ou")


@pytest.mark.parametrize("rate", [16000, 24000, 48000])
def test_mouth_opens_on_vowels_and_rests_on_silence(rate: int) -> None:
    quiet = np.zeros(int(0.4 * rate))
    segments = [quiet, vowel(rate, 750, 1150, 0.5, 0.4), quiet, hiss(rate, 0.4, 0.25), quiet]
    pcm = to_int16(np.concatenate(segments).astype(np.float32))
    frames = envelope_visemes(pcm, rate, fps=100)
    bounds = np.cumsum([0] + [len(s) for s in segments])
    ms = rate // 1000

    lead_in = mean_weights(frames, 0, bounds[1])
    assert lead_in["sil"] == pytest.approx(1.0)

    aa = mean_weights(frames, bounds[1] + 50 * ms, bounds[2])
    assert sum(aa[name] for name in OPEN_SHAPES) > 0.8
    assert aa["aa"] == max(aa[name] for name in VISEME_NAMES)
    assert aa["sil"] < 0.2

    # After the mouth has had time to close (release ~70 ms), the gap is silent again.
    gap = mean_weights(frames, bounds[2] + 250 * ms, bounds[3])
    assert gap["sil"] > 0.99

    sibilant = mean_weights(frames, bounds[3] + 50 * ms, bounds[4])
    assert sibilant["ss"] == max(v for k, v in sibilant.items() if k != "sil")
    assert sibilant["ss"] > 0.4
    assert sum(sibilant[name] for name in OPEN_SHAPES) < 0.1

    assert frames[-1].weights[0] == 1.0  # closing frame


def test_front_and_rounded_vowels_pick_their_shapes() -> None:
    rate = 24000
    ee = mean_weights(
        envelope_visemes(to_int16(vowel(rate, 280, 2250, 0.5, 0.3, f0=200).astype(np.float32)), rate), 0, 10**9
    )
    oo = mean_weights(envelope_visemes(to_int16(vowel(rate, 310, 870, 0.5, 0.3).astype(np.float32)), rate), 0, 10**9)
    assert ee["e"] + ee["ih"] > ee["aa"] + ee["oh"] + ee["ou"]
    assert oo["oh"] + oo["ou"] > oo["aa"] + oo["e"] + oo["ih"]


def test_quiet_speech_opens_but_background_noise_does_not() -> None:
    rate = 16000
    speech = to_int16(vowel(rate, 750, 1150, 0.5, 0.02).astype(np.float32))  # about -37 dBFS
    noise = to_int16((np.random.default_rng(2).standard_normal(rate // 2) * 10 ** (-62 / 20)).astype(np.float32))
    assert mean_weights(envelope_visemes(speech, rate), 800, 8000)["sil"] < 0.5
    assert mean_weights(envelope_visemes(noise, rate), 0, 8000)["sil"] > 0.99


@pytest.mark.parametrize(("rate", "fps"), [(44100, 60), (22050, 100), (48000, 90), (16000, 60)])
def test_frames_are_timed_by_sample_offset(rate: int, fps: int) -> None:
    n = int(rate * 0.37) + 3
    pcm = to_int16(vowel(rate, 600, 1200, n / rate, 0.3).astype(np.float32))[:n]
    frames = envelope_visemes(pcm, rate, fps=fps)
    expected_count = -(-n * fps // rate)  # ceil: every frame that starts inside the audio
    assert len(frames) == expected_count + 1  # plus the closing frame
    for k, frame in enumerate(frames):
        assert frame.index == k
        assert frame.sample_offset == (2 * k * rate + fps) // (2 * fps)  # round half up of k*rate/fps
        assert len(frame.weights) == 15
        assert all(0.0 <= w <= 1.0 for w in frame.weights)
        assert sum(frame.weights) == pytest.approx(1.0, abs=1e-5)
    assert frames[-1].sample_offset >= n > frames[-2].sample_offset


def test_chunking_does_not_change_the_result() -> None:
    rate = 24000
    pcm = to_int16(np.concatenate([vowel(rate, 700, 1100, 0.3, 0.3), hiss(rate, 0.2, 0.2)]).astype(np.float32))
    whole = envelope_visemes(pcm, rate, fps=60)
    lipsync = EnvelopeLipSync(rate, fps=60, reference_db=speech_level_db(pcm, rate))
    rng = np.random.default_rng(5)
    pieces, pos = [], 0
    while pos < len(pcm):
        size = int(rng.integers(0, 900))
        pieces.extend(lipsync.push(pcm[pos : pos + size]))
        pos += size
    pieces.extend(lipsync.flush())
    assert [(f.index, f.sample_offset) for f in pieces] == [(f.index, f.sample_offset) for f in whole]
    np.testing.assert_allclose([f.weights for f in pieces], [f.weights for f in whole], atol=1e-6)
    # flush reset the stream: a new turn starts at frame 0.
    assert lipsync.push(pcm[:1000])[0].sample_offset == 0


def test_stereo_input_and_dict_shape() -> None:
    rate = 16000
    mono = to_int16(vowel(rate, 750, 1150, 0.2, 0.3).astype(np.float32))
    frames = envelope_visemes(np.stack([mono, mono], axis=1), rate, channels=2)
    shape = frames[10].as_dict()
    assert list(shape) == list(VISEME_NAMES)
    assert shape["aa"] > 0.5


def test_time_helpers() -> None:
    assert samples_for_seconds(45.5, 48000) == 2_184_000
    assert samples_for_seconds(0.1, 48000) == 4800
    assert samples_for_ms(12.5, 16000) == 200
    assert seconds_for_samples(24000, 48000) == 0.5
    assert frame_start_sample(1, 22050, 100) == 221  # 220.5 rounds up
    assert frame_start_sample(3, 44100, 60) == 2205
    for rate, fps in ((44100, 60), (22050, 100), (48000, 90)):
        for sample in range(0, 5000, 7):
            k = frame_index_at(sample, rate, fps)
            assert frame_start_sample(k, rate, fps) <= sample < frame_start_sample(k + 1, rate, fps)
