"""Echo canceller benchmark: echo suppression (ERLE) on real speech and the CPU cost per 10 ms frame.

The far end is espeak-ng speech (the NPC), played through a simulated loudspeaker → room → mic path
(200 Hz–6 kHz band, short reverberant tail, -6 dB, delay 40/80/120 ms, -61 dBFS noise); ERLE is
10·log10(mic power / output power) over single talk after one second of convergence, the median over
the delays. Double talk adds a second voice (the player) at the echo's level: how well it survives is
the correlation of 20 ms envelopes with the clean voice (1.0 = untouched), next to the raw mic's.

CPU is wall time per 10 ms frame with both streams (reverse + capture, AEC3 + NS + high-pass), FFI and
frame conversion included, at 48 kHz and with a 16 kHz mic plus 24 kHz reference through soxr.
"""

from __future__ import annotations

import statistics
import time

import numpy as np
from scipy import signal

from bridge.audio.analysis import estimate_delay
from bridge.audio.echo import APM_RATE, EchoCanceller, EchoSettings
from bridge.audio.resample import resample
from convai_emulator.voice import VoiceSpec, synthesize

R = APM_RATE
STEP = R // 50  # 20 ms client frames
DELAYS_MS = (40, 80, 120)
NPC = (
    "The northern gate fell in the winter, and the dragon burned the granary before dawn. "
    "We rebuilt it stone by stone, and the smith forged new hinges for the doors."
)
PLAYER = "Hello there, can you hear me? I want to buy a sword and a shield."
NEAR_AT_S = 4.0


def _room(far: np.ndarray, delay_ms: int) -> np.ndarray:
    b, a = signal.butter(2, [200 / (R / 2), 6000 / (R / 2)], "band")
    n_tail = int(0.03 * R)
    tail = np.random.default_rng(7).standard_normal(n_tail) * np.exp(-np.arange(n_tail) / (0.006 * R)) * 0.15
    tail[0] = 1.0
    x = signal.fftconvolve(signal.lfilter(b, a, far.astype(np.float64)), tail)[: len(far)] * 0.5
    d = delay_ms * R // 1000
    return np.concatenate([np.zeros(d), x])[: len(far)]


def _pcm(x: np.ndarray) -> np.ndarray:
    return np.clip(np.rint(x), -32768, 32767).astype(np.int16)


def _power(x: np.ndarray) -> float:
    return float(np.mean(np.asarray(x, dtype=np.float64) ** 2)) + 1e-9


def _envelope(x: np.ndarray, n: int = 960) -> np.ndarray:
    m = len(x) // n * n
    return np.sqrt(np.mean(x[:m].reshape(-1, n) ** 2, axis=1))


def _run(far: np.ndarray, mic: np.ndarray, settings: EchoSettings) -> np.ndarray:
    ec = EchoCanceller(settings)
    out = []
    for i in range(0, len(mic), STEP):
        ec.far_end(far[i : i + STEP], R, 1)
        out.append(ec.process(mic[i : i + STEP], R, 1))
    return np.concatenate(out).astype(np.float64)


def _erle(far: np.ndarray, delay_ms: int) -> float:
    noise = np.random.default_rng(1).standard_normal(len(far)) * 30
    mic = _pcm(_room(far, delay_ms) + noise)
    out = _run(far, mic, EchoSettings(True, True))
    lo, hi = R, int(NEAR_AT_S * R)
    return 10 * np.log10(_power(mic[lo:hi]) / _power(out[lo:hi]))


def _double_talk(far: np.ndarray, near_voice: np.ndarray) -> tuple[float, float, float]:
    start = int(NEAR_AT_S * R)
    voice = near_voice[: len(far) - start]
    near = np.zeros(len(far))
    near[start : start + len(voice)] = voice
    noise = np.random.default_rng(1).standard_normal(len(far)) * 30
    mic = _pcm(_room(far, 80) + near + noise)
    out = _run(far, mic, EchoSettings(True, True))
    end = start + len(voice)
    lag = estimate_delay(near[start:end], out[start:end], max_lag=2400)
    kept, clean = out[start + lag : end], near[start : end - lag]
    env = float(np.corrcoef(_envelope(kept), _envelope(clean))[0, 1])
    raw = float(np.corrcoef(_envelope(mic[start:end].astype(np.float64)), _envelope(near[start:end]))[0, 1])
    return env, raw, lag / R * 1000


def _us_per_frame(far: np.ndarray, mic: np.ndarray, far_rate: int, mic_rate: int, repeats: int) -> float:
    """Median over runs of the mean wall time per 10 ms of audio (both streams)."""
    far_step, mic_step = far_rate // 50, mic_rate // 50
    frames = min(len(far) // far_step, len(mic) // mic_step)
    runs = []
    for _ in range(repeats):
        ec = EchoCanceller(EchoSettings(True, True))
        start = time.perf_counter()
        for k in range(frames):
            ec.far_end(far[k * far_step : (k + 1) * far_step], far_rate, 1)
            ec.process(mic[k * mic_step : (k + 1) * mic_step], mic_rate, 1)
        runs.append((time.perf_counter() - start) / (2 * frames) * 1e6)
    return statistics.median(runs)


def run(quick: bool = False) -> dict[str, float]:
    far = synthesize(NPC, VoiceSpec("en-us", 50, 165), R)
    near = synthesize(PLAYER, VoiceSpec("en-gb", 75, 150), R)
    results: dict[str, float] = {}
    erles = {d: _erle(far, d) for d in DELAYS_MS}
    results["aec_erle_db"] = statistics.median(erles.values())
    for d, value in erles.items():
        results[f"aec_erle_db_{d}ms"] = value
    env, raw, lag_ms = _double_talk(far, near)
    results["aec_double_talk_near_env_corr"] = env
    results["aec_double_talk_raw_mic_env_corr"] = raw
    results["aec_added_latency_ms"] = lag_ms
    mic = _pcm(_room(far, 80))
    repeats = 1 if quick else 5
    results["aec_us_per_frame"] = _us_per_frame(far, mic, R, R, repeats)
    results["aec_us_per_frame_16k_mic_24k_ref"] = _us_per_frame(
        resample(far, R, 24000), resample(mic, R, 16000), 24000, 16000, repeats
    )
    return results
