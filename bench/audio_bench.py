"""Audio benchmark: streaming resampler fidelity and per-frame cost, against scipy's framewise resample_poly.

``run()`` returns flat ``{name: value}`` for the bench runner. Targets (issue): resampler SNR ≥ 120 dB,
≤ 30 µs per 20 ms frame.

SNR is measured on the resampler's float path against an analytic multi-tone evaluated at the output
rate: int16 output cannot carry more than about 98 dB (full-scale sine), so the int16 figure is
reported separately together with the quantisation ceiling it should sit just under. Per-frame times
are for the int16 edge (conversion included), median and mean: soxr works in blocks, so some calls only
buffer and the mean is the honest average cost.
"""

from __future__ import annotations

import gc
import statistics
import time
from collections.abc import Callable

import numpy as np
from scipy import signal

from bridge.audio.analysis import multitone, snr_db
from bridge.audio.pcm import to_int16
from bridge.audio.resample import StreamResampler

SECONDS = 1.5
TRIM_S = 0.05  # start-up/flush transients excluded from SNR
N_SIGNALS = 5
TIMED_FRAMES = 1500
WARMUP_FRAMES = 100


def _tone_sets() -> list[tuple[list[float], list[float]]]:
    """Five-tone sets below 7 kHz (under the 8 kHz Nyquist of the lowest rate measured)."""
    rng = np.random.default_rng(2024)
    return [
        (sorted(rng.uniform(100.0, 7000.0, 5).tolist()), rng.uniform(0, 2 * np.pi, 5).tolist())
        for _ in range(N_SIGNALS)
    ]


def _frames(signal_in: np.ndarray, rate: int) -> list[np.ndarray]:
    size = rate // 50
    return [signal_in[i : i + size] for i in range(0, len(signal_in), size)]


def _soxr_float_snr(in_rate: int, out_rate: int, freqs: list[float], phases: list[float]) -> float:
    source = multitone(in_rate, SECONDS, freqs, 0.15, phases).astype(np.float32)
    resampler = StreamResampler(in_rate, out_rate)
    out = np.concatenate([resampler.process_float(f) for f in _frames(source, in_rate)] + [resampler.flush_float()])
    reference = multitone(out_rate, SECONDS, freqs, 0.15, phases)
    return snr_db(reference, out, delay=0, trim=int(TRIM_S * out_rate))


def _soxr_int16_snr(in_rate: int, out_rate: int, freqs: list[float], phases: list[float]) -> tuple[float, float]:
    source = to_int16(multitone(in_rate, SECONDS, freqs, 0.15, phases).astype(np.float32))
    resampler = StreamResampler(in_rate, out_rate)
    out = np.concatenate([resampler.process(f) for f in _frames(source, in_rate)] + [resampler.flush()])
    reference = multitone(out_rate, SECONDS, freqs, 0.15, phases)
    ceiling = snr_db(reference, to_int16(reference.astype(np.float32)), delay=0)
    return snr_db(reference, out, delay=0, trim=int(TRIM_S * out_rate)), ceiling


def _scipy_framewise(in_rate: int, out_rate: int, freqs: list[float], phases: list[float]) -> np.ndarray:
    """What a stateless per-frame resampler does: each 20 ms frame filtered on its own."""
    gcd = np.gcd(in_rate, out_rate)
    up, down = out_rate // gcd, in_rate // gcd
    source = multitone(in_rate, SECONDS, freqs, 0.15, phases)
    return np.concatenate([signal.resample_poly(f, up, down) for f in _frames(source, in_rate)])


def _time_per_frame(process: Callable[[np.ndarray], object], frames: list[np.ndarray]) -> tuple[float, float]:
    """Median and mean microseconds per call over ``TIMED_FRAMES`` calls after a warm-up."""
    for frame in frames[:WARMUP_FRAMES]:
        process(frame)
    timings: list[float] = []
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        for i in range(TIMED_FRAMES):
            frame = frames[(WARMUP_FRAMES + i) % len(frames)]
            start = time.perf_counter_ns()
            process(frame)
            timings.append((time.perf_counter_ns() - start) / 1000.0)
    finally:
        if was_enabled:
            gc.enable()
    return statistics.median(timings), statistics.fmean(timings)


def _speech_like_frames(rate: int, seconds: float = 3.0) -> list[np.ndarray]:
    noise = np.random.default_rng(7).standard_normal(int(rate * seconds)) * 0.1
    return _frames(to_int16(noise.astype(np.float32)), rate)[:-1]  # drop a short last frame


def run() -> dict[str, float]:
    tone_sets = _tone_sets()
    results: dict[str, float] = {}

    results["resampler_snr_db"] = statistics.median(_soxr_float_snr(44100, 48000, f, p) for f, p in tone_sets)
    results["resampler_snr_db_48k_16k"] = statistics.median(_soxr_float_snr(48000, 16000, f, p) for f, p in tone_sets)
    int16_pairs = [_soxr_int16_snr(44100, 48000, f, p) for f, p in tone_sets]
    results["resampler_int16_snr_db"] = statistics.median(s for s, _ in int16_pairs)
    results["int16_quantisation_ceiling_snr_db"] = statistics.median(c for _, c in int16_pairs)

    scipy_snrs = []
    for freqs, phases in tone_sets:
        out = _scipy_framewise(44100, 48000, freqs, phases)
        reference = multitone(48000, len(out) / 48000, freqs, 0.15, phases)
        scipy_snrs.append(snr_db(reference, out, delay=0, trim=int(TRIM_S * 48000)))
    results["scipy_framewise_snr_db"] = statistics.median(scipy_snrs)

    for (in_rate, out_rate), key in (((48000, 16000), "48k_16k"), ((44100, 48000), "44k1_48k")):
        resampler = StreamResampler(in_rate, out_rate)
        median, mean = _time_per_frame(resampler.process, _speech_like_frames(in_rate))
        results[f"resampler_us_per_frame_{key}"] = median
        results[f"resampler_us_per_frame_{key}_mean"] = mean
    results["resampler_us_per_frame"] = max(
        results["resampler_us_per_frame_48k_16k"], results["resampler_us_per_frame_44k1_48k"]
    )
    results["resampler_us_per_frame_mean"] = max(
        results["resampler_us_per_frame_48k_16k_mean"], results["resampler_us_per_frame_44k1_48k_mean"]
    )

    float_frames = [f.astype(np.float64) / 32768.0 for f in _speech_like_frames(44100)]
    median, mean = _time_per_frame(lambda f: signal.resample_poly(f, 160, 147), float_frames)
    results["scipy_framewise_us_per_frame"] = median
    results["scipy_framewise_us_per_frame_mean"] = mean
    return results


if __name__ == "__main__":
    for name, value in run().items():
        print(f"{name:40s} {value:10.2f}")
