"""Signal measurements used by tests, benchmarks and diagnostics (``convai-bridge`` audio checks).

Everything works on float64 internally; int16 input is scaled by 1/32768 like the rest of bridge.audio.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from scipy import signal

from bridge.audio.pcm import INT16_SCALE


def as_mono_float(pcm: np.ndarray) -> np.ndarray:
    """Any int16/float array, mono or ``(n, ch)``, as a float64 mono signal in full-scale units."""
    data = np.asarray(pcm)
    values = data.astype(np.float64)
    if data.dtype == np.int16:
        values /= INT16_SCALE
    if values.ndim == 2:
        values = values.mean(axis=1)
    return values


def multitone(
    rate: int,
    seconds: float,
    freqs: Sequence[float],
    amplitude: float | Sequence[float],
    phases: Sequence[float] | None = None,
    start_sample: int = 0,
) -> np.ndarray:
    """Sum of sines (float64, full scale 1.0) evaluated at samples ``start_sample ..``.

    Evaluated analytically at any rate, so the same call at the output rate is an exact reference for a
    resampled signal. ``amplitude`` is per tone.
    """
    n = int(round(seconds * rate))
    t = (np.arange(n, dtype=np.float64) + start_sample) / rate
    amps = np.broadcast_to(np.asarray(amplitude, dtype=np.float64), (len(freqs),))
    phis = np.zeros(len(freqs)) if phases is None else np.asarray(phases, dtype=np.float64)
    out = np.zeros(n, dtype=np.float64)
    for f, a, p in zip(freqs, amps, phis, strict=True):
        out += a * np.sin(2.0 * np.pi * f * t + p)
    return out


def estimate_delay(reference: np.ndarray, test: np.ndarray, max_lag: int = 4800) -> int:
    """Integer lag ``d`` maximising correlation, meaning ``test[n + d]`` lines up with ``reference[n]``."""
    ref = as_mono_float(reference)
    tst = as_mono_float(test)
    corr = signal.correlate(tst, ref, mode="full", method="fft")
    lags = signal.correlation_lags(len(tst), len(ref), mode="full")
    window = np.abs(lags) <= max_lag
    return int(lags[window][np.argmax(corr[window])])


def snr_db(
    reference: np.ndarray,
    test: np.ndarray,
    delay: int | None = None,
    trim: int = 0,
    max_lag: int = 4800,
) -> float:
    """Signal-to-noise ratio of ``test`` against ``reference`` in dB, with no gain fitting.

    ``delay`` is the known lag of ``test`` (see :func:`estimate_delay`); None estimates it by
    cross-correlation. ``trim`` samples are ignored at both ends of the overlap (filter start-up and
    flush transients). Returns ``inf`` for an exact match.
    """
    ref = as_mono_float(reference)
    tst = as_mono_float(test)
    lag = estimate_delay(ref, tst, max_lag) if delay is None else delay
    if lag >= 0:
        tst = tst[lag:]
    else:
        ref = ref[-lag:]
    n = min(len(ref), len(tst))
    ref, tst = ref[trim : n - trim], tst[trim : n - trim]
    if len(ref) == 0:
        raise ValueError("no overlapping samples left to compare")
    noise = float(np.sum((tst - ref) ** 2))
    power = float(np.sum(ref**2))
    if noise == 0.0:
        return float("inf")
    return 10.0 * float(np.log10(power / noise))


def dominant_frequency(pcm: np.ndarray, rate: int) -> float:
    """Frequency (Hz) of the strongest spectral peak, refined between bins by parabolic interpolation."""
    values = as_mono_float(pcm)
    if len(values) < 4:
        raise ValueError("need at least 4 samples")
    values = values - values.mean()
    spectrum = np.abs(np.fft.rfft(values * signal.windows.hann(len(values), sym=False)))
    k = int(np.argmax(spectrum[1:])) + 1
    if 1 <= k < len(spectrum) - 1:
        a, b, c = np.log(spectrum[k - 1 : k + 2] + 1e-300)
        denom = a - 2 * b + c
        offset = 0.5 * (a - c) / denom if denom != 0 else 0.0
    else:
        offset = 0.0
    return float((k + offset) * rate / len(values))


def rms_dbfs(pcm: np.ndarray) -> float:
    """RMS level in dB relative to full scale (a full-scale sine reads about -3 dBFS)."""
    values = as_mono_float(pcm)
    rms = float(np.sqrt(np.mean(values**2))) if len(values) else 0.0
    return 20.0 * float(np.log10(rms)) if rms > 0 else float("-inf")
