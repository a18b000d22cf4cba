"""Text to speech for the emulator's characters.

``espeak-ng`` gives real (if robotic) speech when it is installed; otherwise a deterministic
voice-like signal stands in (harmonics of a gliding pitch shaped by vowel formants, syllable
envelopes, word and sentence pauses) so tests and load runs see speech-like energy either way.
Results are cached by (text, voice, rate) under a byte budget, and concurrent requests for the same
clip share one synthesis, so repeated replies in a load test cost nothing.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import re
import shutil
import subprocess
import threading
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

import numpy as np
import soxr

from convai_emulator.wavfile import WavError, read_wav, wav_bytes

__all__ = ["VoiceSpec", "Synthesizer", "synthesize", "synthesize_async", "wav_bytes", "espeak_available"]

log = logging.getLogger(__name__)

Engine = Literal["auto", "espeak", "synthetic"]
ESPEAK_TIMEOUT_S = 10.0
_MAX_TEXT_CHARS = 4000  # longer replies are truncated for speech; the text itself is unaffected


@dataclass(frozen=True)
class VoiceSpec:
    """An espeak-ng voice: ``name`` as in ``espeak-ng --voices``, pitch 0..99, speed in words/minute."""

    name: str = "en-us"
    pitch: int = 50
    speed: int = 165


def espeak_available() -> bool:
    return shutil.which("espeak-ng") is not None


def _espeak(text: str, voice: VoiceSpec) -> tuple[np.ndarray, int]:
    exe = shutil.which("espeak-ng")
    if exe is None:
        raise FileNotFoundError("espeak-ng")
    cmd = [exe, "--stdout", "-b", "1", "-v", voice.name, "-p", str(voice.pitch), "-s", str(voice.speed),
           "--stdin"]
    proc = subprocess.run(cmd, input=text.encode("utf-8"), capture_output=True, timeout=ESPEAK_TIMEOUT_S,
                          check=False)
    if proc.returncode != 0 or not proc.stdout:
        raise RuntimeError(f"espeak-ng failed ({proc.returncode}): {proc.stderr.decode(errors='replace')[:200]}")
    audio = read_wav(proc.stdout)
    return audio.pcm[:, 0].copy(), audio.sample_rate


# Formant triples (Hz) for the vowel letters; consonant-only syllables use a neutral schwa.
_FORMANTS = {
    "a": (730.0, 1090.0, 2440.0), "e": (530.0, 1840.0, 2480.0), "i": (300.0, 2200.0, 3000.0),
    "o": (570.0, 840.0, 2410.0), "u": (320.0, 900.0, 2240.0), "y": (300.0, 2100.0, 2900.0),
}
_SCHWA = (500.0, 1500.0, 2500.0)
_SYLLABLE = re.compile(r"[^aeiouy]*[aeiouy]+(?:[^aeiouy]+$)?|[^aeiouy]+", re.IGNORECASE)


def _synthetic(text: str, voice: VoiceSpec, rate: int) -> np.ndarray:
    """A deterministic, speech-shaped stand-in: voiced syllables, pauses, falling intonation."""
    seed = int.from_bytes(hashlib.sha256(f"{voice}|{text}".encode()).digest()[:8], "little")
    rng = np.random.default_rng(seed)
    tempo = 165.0 / max(60, voice.speed)
    base_f0 = 85.0 + 1.5 * max(0, min(99, voice.pitch))
    pieces: list[np.ndarray] = []
    tokens = re.findall(r"[A-Za-z0-9']+|[.,!?;:]", text)
    n_words = max(1, sum(1 for t in tokens if t[0].isalnum()))
    word_index = 0
    for token in tokens:
        if not token[0].isalnum():
            pause = 0.32 if token in ".!?" else 0.16
            pieces.append(np.zeros(int(pause * tempo * rate)))
            continue
        progress = word_index / n_words
        word_index += 1
        for syllable in _SYLLABLE.findall(token.lower()) or [token]:
            vowels = [c for c in syllable if c in _FORMANTS]
            formants = _FORMANTS[vowels[0]] if vowels else _SCHWA
            dur = (0.11 + 0.025 * len(syllable)) * tempo
            n = max(1, int(dur * rate))
            t = np.arange(n) / rate
            f0 = base_f0 * (1.15 - 0.25 * progress) * (1.0 + 0.04 * np.sin(2 * np.pi * 5.0 * t))
            phase = 2 * np.pi * np.cumsum(f0) / rate
            mean_f0 = float(f0.mean())
            signal = np.zeros(n)
            for h in range(1, int(min(4000.0, rate / 2 - 200) // mean_f0) + 1):
                freq = h * mean_f0
                gain = sum(np.exp(-((freq - fk) / (60.0 + 0.08 * fk)) ** 2) for fk in formants)
                signal += (0.25 / h + gain) * np.sin(h * phase)
            if not vowels:  # consonant cluster: breathier
                signal = 0.3 * signal + 0.6 * rng.standard_normal(n) * signal.std()
            attack = np.minimum(1.0, t / 0.025)
            release = np.minimum(1.0, (dur - t) / 0.04)
            envelope = np.clip(attack * release, 0.0, 1.0) * np.sin(np.pi * np.arange(n) / n) ** 0.5
            pieces.append(signal * envelope)
        pieces.append(np.zeros(int(0.05 * tempo * rate)))
    if not pieces:
        return np.zeros(0, dtype=np.int16)
    audio = np.concatenate(pieces)
    peak = float(np.abs(audio).max()) or 1.0
    return np.clip(audio / peak * 12000.0, -32768, 32767).astype(np.int16)


def synthesize(text: str, voice: VoiceSpec, sample_rate: int, engine: Engine = "auto") -> np.ndarray:
    """Speak ``text`` as mono int16 PCM at ``sample_rate`` (uncached; see ``Synthesizer``)."""
    text = " ".join(text.split())[:_MAX_TEXT_CHARS]
    if not text:
        return np.zeros(0, dtype=np.int16)
    if engine != "synthetic" and espeak_available():
        try:
            pcm, native = _espeak(text, voice)
        except (OSError, RuntimeError, WavError, subprocess.TimeoutExpired) as exc:
            if engine == "espeak":
                raise
            log.warning("espeak-ng unusable (%s); using the synthetic voice", exc)
        else:
            if native == sample_rate or pcm.size == 0:
                return pcm
            return np.asarray(soxr.resample(pcm, native, sample_rate), dtype=np.int16)
    elif engine == "espeak":
        raise FileNotFoundError("espeak-ng is not installed")
    return _synthetic(text, voice, sample_rate)


class Synthesizer:
    """Cached, de-duplicated speech synthesis off the event loop."""

    def __init__(self, engine: Engine = "auto", max_bytes: int = 64 << 20, max_parallel: int = 2) -> None:
        self.engine = engine
        self.max_bytes = max_bytes
        self._cache: OrderedDict[tuple[str, VoiceSpec, int], np.ndarray] = OrderedDict()
        self._wav_cache: OrderedDict[tuple[str, VoiceSpec, int], bytes] = OrderedDict()
        self._bytes = 0
        self._lock = threading.Lock()
        self._inflight: dict[tuple[str, VoiceSpec, int], asyncio.Task[np.ndarray]] = {}
        self._parallel = asyncio.Semaphore(max_parallel)
        self.hits = 0
        self.misses = 0

    def _remember(self, store: OrderedDict, key: tuple[str, VoiceSpec, int], value: np.ndarray | bytes,
                  size: int) -> None:
        with self._lock:
            if key in store:
                return
            store[key] = value
            self._bytes += size
            while self._bytes > self.max_bytes and (self._cache or self._wav_cache):
                victim = self._cache if len(self._cache) >= len(self._wav_cache) and self._cache else self._wav_cache
                _, old = victim.popitem(last=False)
                self._bytes -= old.nbytes if isinstance(old, np.ndarray) else len(old)

    def _lookup(self, store: OrderedDict, key: tuple[str, VoiceSpec, int]) -> np.ndarray | bytes | None:
        with self._lock:
            value = store.get(key)
            if value is not None:
                store.move_to_end(key)
                self.hits += 1
            return value

    def pcm_sync(self, text: str, voice: VoiceSpec, sample_rate: int) -> np.ndarray:
        key = (text, voice, sample_rate)
        cached = self._lookup(self._cache, key)
        if isinstance(cached, np.ndarray):
            return cached
        self.misses += 1
        pcm = synthesize(text, voice, sample_rate, self.engine)
        pcm.flags.writeable = False  # shared by every caller
        self._remember(self._cache, key, pcm, pcm.nbytes)
        return pcm

    async def pcm(self, text: str, voice: VoiceSpec, sample_rate: int) -> np.ndarray:
        """Read-only mono int16 PCM; synthesis runs in a worker thread, at most ``max_parallel`` at once."""
        key = (text, voice, sample_rate)
        cached = self._lookup(self._cache, key)
        if isinstance(cached, np.ndarray):
            return cached
        task = self._inflight.get(key)
        if task is None:
            # A detached task: one caller giving up must not cancel the clip for the others.
            task = asyncio.ensure_future(self._produce(key))
            self._inflight[key] = task
            task.add_done_callback(lambda _t: self._inflight.pop(key, None))
        return await asyncio.shield(task)

    async def _produce(self, key: tuple[str, VoiceSpec, int]) -> np.ndarray:
        async with self._parallel:
            return await asyncio.get_running_loop().run_in_executor(None, self.pcm_sync, *key)

    async def wav(self, text: str, voice: VoiceSpec, sample_rate: int) -> bytes:
        """A complete WAV file of the spoken text (cached separately from the PCM)."""
        key = (text, voice, sample_rate)
        cached = self._lookup(self._wav_cache, key)
        if isinstance(cached, bytes):
            return cached
        data = wav_bytes(await self.pcm(text, voice, sample_rate), sample_rate)
        self._remember(self._wav_cache, key, data, len(data))
        return data

    def stats(self) -> dict[str, int]:
        with self._lock:
            return {"clips": len(self._cache), "wavs": len(self._wav_cache), "bytes": self._bytes,
                    "hits": self.hits, "misses": self.misses}


def prewarm(synth: Synthesizer, items: list[tuple[str, VoiceSpec, int]],
            on_error: Callable[[Exception], None] | None = None) -> None:
    """Synthesize clips ahead of time (e.g. greetings) from a worker thread."""
    for text, voice, rate in items:
        try:
            synth.pcm_sync(text, voice, rate)
        except Exception as exc:  # warming is best effort
            if on_error:
                on_error(exc)


_SHARED = Synthesizer()


async def synthesize_async(text: str, voice: VoiceSpec, sample_rate: int) -> np.ndarray:
    """``synthesize`` through a process-wide cache, in a worker thread (the emulator app has its own)."""
    return await asyncio.get_running_loop().run_in_executor(None, _SHARED.pcm_sync, text, voice, sample_rate)
