"""The mic-path echo canceller (WebRTC AEC3 via LiveKit's APM) on real speech: espeak-ng as the NPC, a
different voice as the player, a simulated loudspeaker → room → microphone path in between."""

from __future__ import annotations

from functools import cache

import numpy as np
import pytest
from scipy import signal

from bridge.audio.analysis import estimate_delay
from bridge.audio.echo import APM_RATE, EchoCanceller, EchoSettings
from bridge.audio.resample import resample
from convai_emulator.voice import VoiceSpec, synthesize

R = APM_RATE
NPC_TEXT = (
    "The northern gate fell in the winter, and the dragon burned the granary before dawn. "
    "We rebuilt it stone by stone, and the smith forged new hinges for the doors."
)
PLAYER_TEXT = "Hello there, can you hear me? I want to buy a sword and a shield."
NEAR_AT_S = 4.0  # the player starts talking over the NPC here (double talk)


@cache
def npc_voice(rate: int = R) -> np.ndarray:
    return synthesize(NPC_TEXT, VoiceSpec("en-us", 50, 165), rate)


@cache
def player_voice(rate: int = R) -> np.ndarray:
    return synthesize(PLAYER_TEXT, VoiceSpec("en-gb", 75, 150), rate)


def room(far: np.ndarray, rate: int, delay_ms: float, gain: float = 0.5) -> np.ndarray:
    """Loudspeaker band (200 Hz–6 kHz), a short reverberant tail, delay and attenuation."""
    b, a = signal.butter(2, [200 / (rate / 2), 6000 / (rate / 2)], "band")
    x = signal.lfilter(b, a, far.astype(np.float64))
    rng = np.random.default_rng(7)
    tail = rng.standard_normal(int(0.03 * rate)) * np.exp(-np.arange(int(0.03 * rate)) / (0.006 * rate)) * 0.15
    tail[0] = 1.0
    x = signal.fftconvolve(x, tail)[: len(far)] * gain
    d = int(delay_ms * rate / 1000)
    return np.concatenate([np.zeros(d), x])[: len(far)]


def noise(n: int, level: float = 30.0, seed: int = 1) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal(n) * level


def run(ec: EchoCanceller, far: np.ndarray | None, mic: np.ndarray, step: int = 960) -> np.ndarray:
    """Real-time order: each 20 ms, the far-end frame goes out to the client, then the mic frame comes in."""
    out = []
    for i in range(0, len(mic), step):
        if far is not None:
            ec.far_end(far[i : i + step], R, 1)
        out.append(ec.process(mic[i : i + step], R, 1))
    return np.concatenate(out).astype(np.float64)


def power(x: np.ndarray) -> float:
    return float(np.mean(np.asarray(x, dtype=np.float64) ** 2)) + 1e-9


def erle_db(mic: np.ndarray, out: np.ndarray, start: int, end: int) -> float:
    return 10 * np.log10(power(mic[start:end]) / power(out[start:end]))


def envelope(x: np.ndarray, n: int = 960) -> np.ndarray:
    m = len(x) // n * n
    return np.sqrt(np.mean(x[:m].reshape(-1, n) ** 2, axis=1))


def as_pcm(x: np.ndarray) -> np.ndarray:
    return np.clip(np.rint(x), -32768, 32767).astype(np.int16)


@pytest.mark.parametrize("delay_ms", [40, 120, 250])
def test_echo_of_npc_speech_is_suppressed(delay_ms: int) -> None:
    far = npc_voice()
    mic = as_pcm(room(far, R, delay_ms) + noise(len(far)))
    out = run(EchoCanceller(EchoSettings(True, True)), far, mic)
    # after one second of convergence, single talk only
    erle = erle_db(mic, out, R, int(NEAR_AT_S * R))
    assert erle > 25, f"ERLE {erle:.1f} dB at {delay_ms} ms"
    # without a far end the canceller has nothing to remove: the echo stays (the reference matters)
    blind = run(EchoCanceller(EchoSettings(True, False)), None, mic)
    assert erle_db(mic, blind, R, int(NEAR_AT_S * R)) < 6


def test_double_talk_keeps_the_player_and_removes_the_npc() -> None:
    far = npc_voice()
    near = np.zeros(len(far))
    start = int(NEAR_AT_S * R)
    voice = player_voice()[: len(far) - start]
    near[start : start + len(voice)] = voice
    echo = room(far, R, 80)
    mic = as_pcm(echo + near + noise(len(far)))
    out = run(EchoCanceller(EchoSettings(True, True)), far, mic)
    assert erle_db(mic, out, R, start) > 25
    end = start + len(voice)
    lag = estimate_delay(near[start:end], out[start:end], max_lag=2400)  # the APM's own frame latency
    assert 0 <= lag < R // 50
    kept, clean = out[start + lag : end], near[start : end - lag]
    wave = np.corrcoef(kept, clean)[0, 1]  # capped near 0.85 by the APM's band-split phase response
    env = np.corrcoef(envelope(kept), envelope(clean))[0, 1]
    raw_env = np.corrcoef(envelope(mic[start:end].astype(np.float64)), envelope(near[start:end]))[0, 1]
    level = 10 * np.log10(power(kept) / power(clean))
    assert wave > 0.6 and env > 0.8, (wave, env)
    assert env > raw_env + 0.1, (env, raw_env)  # the player's speech is clearer than in the raw mic
    assert -6 < level < 3, level
    # what is left besides the player is far below the echo that was there
    residual = kept - clean * np.dot(kept, clean) / np.dot(clean, clean)
    assert 10 * np.log10(power(echo[start:end]) / power(residual)) > 3


def test_resampled_stereo_reference_and_16k_mic() -> None:
    """Engine formats: a 44.1 kHz stereo game mix as audio_reference, a 16 kHz mic."""
    far48 = npc_voice()
    far = resample(far48, R, 44100)
    stereo = np.repeat(far[:, None], 2, axis=1)
    mic = resample(as_pcm(room(far48, R, 60) + noise(len(far48))), R, 16000)
    ec = EchoCanceller(EchoSettings(True, True))
    out = []
    for k in range(len(mic) // 320):
        ec.reference(stereo[k * 882 : (k + 1) * 882], 44100, 2)
        out.append(ec.process(mic[k * 320 : (k + 1) * 320], 16000, 1))
    processed = np.concatenate(out).astype(np.float64)
    mic48 = resample(mic, 16000, R).astype(np.float64)
    assert erle_db(mic48, processed, 2 * R, int(NEAR_AT_S * R)) > 25  # resampled reference: 2 s to converge
    assert ec.stats.client_reference_frames == len(mic) // 320


def test_audio_reference_replaces_the_daemons_copy() -> None:
    """Game music is in the room too: only the engine's mix lets the canceller remove it."""
    speech = npc_voice().astype(np.float64)
    speech[int(NEAR_AT_S * R) - R :] = 0  # the NPC falls silent; the music plays on
    t = np.arange(len(speech)) / R
    music = 3000 * (np.sin(2 * np.pi * 220 * t) * np.sin(2 * np.pi * 0.5 * t) + 0.5 * np.sin(2 * np.pi * 330 * t))
    mix = as_pcm(speech + music)
    mic = as_pcm(room(mix, R, 70) + noise(len(mix)))
    speech16 = as_pcm(speech)
    window = (int(NEAR_AT_S * R), len(speech) - R)  # music only

    own_copy = run(EchoCanceller(EchoSettings(True, False)), speech16, mic)
    assert erle_db(mic, own_copy, *window) < 10  # the music stays

    ec = EchoCanceller(EchoSettings(True, False))
    out = []
    for i in range(0, len(mic), 960):
        ec.far_end(speech16[i : i + 960], R, 1)  # ignored while the engine's reference flows
        ec.reference(mix[i : i + 960], R, 1)
        out.append(ec.process(mic[i : i + 960], R, 1))
    with_mix = np.concatenate(out).astype(np.float64)
    assert ec.client_reference_active
    assert erle_db(mic, with_mix, *window) > 25


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_reference_queue_is_bounded_and_dropped_when_the_mic_stops() -> None:
    clock = Clock()
    ec = EchoCanceller(EchoSettings(True, True, max_reference_ms=300), clock=clock)
    ec.process(np.zeros(480, np.int16), R, 1)
    ec.far_end(np.ones(5 * R, np.int16), R, 1)  # five seconds sent while no mic frame arrives
    assert ec.queued_reference_ms == 300
    clock.now += 1.0  # the mic was silent for a second
    ec.process(np.zeros(480, np.int16), R, 1)
    assert ec.queued_reference_ms == 0
    ec.far_end(np.ones(R // 10, np.int16), R, 1)
    clock.now += 0.01
    ec.process(np.zeros(480, np.int16), R, 1)  # mic flowing: reference consumed in lockstep
    assert ec.queued_reference_ms == 90
    ec.process(np.zeros(R // 2, np.int16), R, 1)  # a client sending half-second chunks: no gap
    assert ec.queued_reference_ms == 0
    clock.now += 0.6
    ec.far_end(np.ones(R // 10, np.int16), R, 1)
    ec.process(np.zeros(480, np.int16), R, 1)
    assert ec.queued_reference_ms == 90


def test_engine_reference_times_out_back_to_the_daemons_copy() -> None:
    clock = Clock()
    ec = EchoCanceller(EchoSettings(True, True, reference_timeout_ms=500), clock=clock)
    ec.far_end(np.ones(4800, np.int16), R, 1)
    assert ec.queued_reference_ms == 100
    ec.reference(np.ones(960, np.int16), R, 1)  # the engine's stream takes over: the daemon's copy goes
    assert ec.queued_reference_ms == 20 and ec.client_reference_active
    ec.far_end(np.ones(4800, np.int16), R, 1)
    assert ec.queued_reference_ms == 20
    ec.drop_far_end()  # an interrupt does not touch the engine's stream
    assert ec.queued_reference_ms == 20
    clock.now += 0.6
    assert not ec.client_reference_active
    ec.far_end(np.ones(4800, np.int16), R, 1)
    assert ec.queued_reference_ms == 120


def test_noise_suppression_lowers_steady_noise() -> None:
    voice = player_voice()
    mic = as_pcm(np.concatenate([np.zeros(2 * R), voice]) + noise(2 * R + len(voice), level=300))
    out = run(EchoCanceller(EchoSettings(False, True)), None, mic)
    assert erle_db(mic, out, R, 2 * R) > 6  # noise-only second after a second to adapt
    plain = run(EchoCanceller(EchoSettings(True, False)), None, mic)
    assert erle_db(mic, out, R, 2 * R) > erle_db(mic, plain, R, 2 * R) + 6  # it is the suppressor, not the AEC


def test_settings_defaults_by_backend() -> None:
    assert EchoSettings.for_session("live", {}).echo_cancellation is True
    assert EchoSettings.for_session("live", {}).noise_suppression is True
    assert not EchoSettings.for_session("interaction", {}).enabled
    off = EchoSettings.for_session("live", {"echo_cancellation": False, "noise_suppression": False})
    assert not off.enabled
    on = EchoSettings.for_session("interaction", {"echo_cancellation": True}, stream_delay_ms=40)
    assert on.echo_cancellation and not on.noise_suppression and on.stream_delay_ms == 40
