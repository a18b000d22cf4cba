"""The measurement helpers the other audio tests and the benchmark rely on."""

from __future__ import annotations

import numpy as np
import pytest

from bridge.audio.analysis import dominant_frequency, estimate_delay, multitone, rms_dbfs, snr_db


def test_multitone_is_the_analytic_sum() -> None:
    out = multitone(8000, 0.01, [1000.0, 250.0], [0.5, 0.25], phases=[0.0, np.pi / 2], start_sample=3)
    n = np.arange(80) + 3
    expected = 0.5 * np.sin(2 * np.pi * 1000 * n / 8000) + 0.25 * np.cos(2 * np.pi * 250 * n / 8000)
    np.testing.assert_allclose(out, expected, atol=1e-12)


@pytest.mark.parametrize("shift", [0, 17, -29])
def test_estimate_delay_finds_a_known_shift(shift: int) -> None:
    rng = np.random.default_rng(0)
    reference = rng.standard_normal(4000)
    test = np.roll(reference, shift)
    assert estimate_delay(reference, test, max_lag=100) == shift


def test_snr_db_matches_known_noise_and_alignment() -> None:
    rng = np.random.default_rng(1)
    reference = multitone(16000, 1.0, [440.0], 1.0)
    noise = rng.standard_normal(len(reference)) * 1e-3
    expected = 10 * np.log10(np.sum(reference**2) / np.sum(noise**2))
    assert snr_db(reference, reference + noise, delay=0) == pytest.approx(expected, abs=1e-9)
    delayed = np.concatenate([np.zeros(25), reference])
    assert snr_db(reference, delayed) == float("inf")
    assert snr_db(reference, delayed, delay=0) < 10.0
    with pytest.raises(ValueError):
        snr_db(reference[:10], reference[:10], delay=0, trim=5)


def test_dominant_frequency_and_level() -> None:
    tone = multitone(48000, 0.5, [997.0, 3000.0], [0.5, 0.1])
    assert dominant_frequency(tone, 48000) == pytest.approx(997.0, abs=0.5)
    pcm = np.round(multitone(16000, 0.5, [1234.5], 0.5) * 32767).astype(np.int16)
    assert dominant_frequency(np.stack([pcm, pcm], axis=1), 16000) == pytest.approx(1234.5, abs=0.5)
    assert rms_dbfs(multitone(16000, 1.0, [100.0], 1.0)) == pytest.approx(-3.0103, abs=0.01)
    assert rms_dbfs(np.zeros(10)) == float("-inf")
