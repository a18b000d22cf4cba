"""A reply's audio and its per-tick side messages, built once and shared between sessions.

Everything that does not depend on the turn (Opus packets, viseme JSON, audio-data chunks,
blendshape arrays) is computed in a worker thread and cached by (text, voice, options), so a busy
emulator repeating replies pays the cost once and the 20 ms tick only hands out prepared strings.
"""

from __future__ import annotations

import base64
import threading
from collections import OrderedDict
from collections.abc import Hashable
from dataclasses import dataclass
from typing import Any

import numpy as np
import soxr

from . import lipsync
from .opus import FRAME_SAMPLES, SAMPLE_RATE, encode_pcm
from .shapes import LABEL, Envelope, dumps

TICK_MS = 20


@dataclass(frozen=True)
class ClipOptions:
    visemes: bool = True
    viseme_fps: int = 100
    neurosync_format: str | None = None  # "mha" | "arkit" when blendshapes are on
    neurosync_fps: int = 60
    neurosync_chunk: int = 10
    audio_data: bool = False
    audio_chunk_ms: int = 100
    audio_wav_header: bool = False
    audio_rate: int | None = None  # None: the natural 48 kHz
    custom_top: bool = False  # legacy flat shapes: custom events at the top level
    named_frames: bool = False  # NeuroSync frames as {name: value} objects (Unity accepts them, §19)


@dataclass(frozen=True)
class Clip:
    packets: list[bytes]
    pcm_samples: int
    voiced_ticks: tuple[int, int]  # first and last tick with audible speech
    visemes: list[list[str]]  # per tick: wrapped "visemes" messages to send at that tick
    audio_data: list[tuple[int, str]]  # (tick, message)
    blendshape_chunks: list[tuple[int, int, str]]  # (first frame tick, frame count, JSON array text)
    blendshape_frames: int
    words: list[tuple[int, str]]  # (tick at which it is spoken, word)

    @property
    def ticks(self) -> int:
        return len(self.packets)

    @property
    def duration_ms(self) -> float:
        return self.pcm_samples * 1000.0 / SAMPLE_RATE


def round_chunk_ms(ms: int) -> int:
    """Convai rounds ``max_chunk_duration_ms`` up to 10 ms within 10..1000."""
    ms = min(1000, max(10, int(ms)))
    return -(-ms // 10) * 10


def _wav_header(n_bytes: int, rate: int) -> bytes:
    block = 2
    return (
        b"RIFF" + (36 + n_bytes).to_bytes(4, "little") + b"WAVEfmt "
        + (16).to_bytes(4, "little") + (1).to_bytes(2, "little") + (1).to_bytes(2, "little")
        + rate.to_bytes(4, "little") + (rate * block).to_bytes(4, "little") + block.to_bytes(2, "little")
        + (16).to_bytes(2, "little") + b"data" + n_bytes.to_bytes(4, "little")
    )


def _custom(type_: str, payload: dict[str, Any], options: ClipOptions) -> dict[str, Any]:
    if options.custom_top:
        return {"label": LABEL, "type": type_, "data": payload}
    return Envelope.wrapped(type_, payload)


def build_clip(pcm: np.ndarray, text: str, options: ClipOptions) -> Clip:
    """CPU work for one utterance: Opus, lip sync, data chunks (runs in a worker thread)."""
    samples = np.asarray(pcm, dtype=np.int16).reshape(-1)
    packets = encode_pcm(samples)
    ticks = len(packets)
    per_tick_env = lipsync.envelope(samples, SAMPLE_RATE, 1000.0 / TICK_MS)
    voiced = np.flatnonzero(per_tick_env > 0)
    voiced_ticks = (int(voiced[0]), int(voiced[-1])) if voiced.size else (0, max(0, ticks - 1))

    visemes: list[list[str]] = [[] for _ in range(ticks)]
    if options.visemes:
        opening = lipsync.envelope(samples, SAMPLE_RATE, options.viseme_fps)
        for i, frame in enumerate(lipsync.viseme_frames(text, opening)):
            tick = min(ticks - 1, i * 1000 // (options.viseme_fps * TICK_MS))
            visemes[tick].append(dumps(_custom("visemes", {"visemes": frame}, options)))

    audio_data: list[tuple[int, str]] = []
    if options.audio_data:
        rate = options.audio_rate or SAMPLE_RATE
        data = samples if rate == SAMPLE_RATE else np.asarray(soxr.resample(samples, SAMPLE_RATE, rate), np.int16)
        chunk_ms = round_chunk_ms(options.audio_chunk_ms)
        step = rate * chunk_ms // 1000
        for k, start in enumerate(range(0, max(1, len(data)), step)):
            raw = data[start : start + step].astype("<i2").tobytes()
            if options.audio_wav_header:
                raw = _wav_header(len(raw), rate) + raw
            payload = {
                "sample_rate": rate, "channels": 1, "audio": base64.b64encode(raw).decode("ascii"),
                "includes_wav_header": options.audio_wav_header,
            }
            audio_data.append((min(ticks - 1, k * chunk_ms // TICK_MS), dumps(_custom("audio-data", payload, options))))

    chunks_out: list[tuple[int, int, str]] = []
    n_frames = 0
    if options.neurosync_format:
        opening = lipsync.envelope(samples, SAMPLE_RATE, options.neurosync_fps)
        frames: list[Any] = lipsync.neurosync_frames(opening, options.neurosync_format)
        if options.named_frames:
            names = lipsync.blendshape_names(options.neurosync_format)
            frames = [dict(zip(names, frame, strict=True)) for frame in frames]
        n_frames = len(frames)
        size = max(1, options.neurosync_chunk)
        for first in range(0, n_frames, size):
            part = frames[first : first + size]
            tick = min(ticks - 1, first * 1000 // (options.neurosync_fps * TICK_MS))
            chunks_out.append((tick, len(part), dumps(part)))  # type: ignore[arg-type]

    # Spread the words over the voiced span in proportion to their length.
    words = text.split()
    total = sum(len(w) for w in words) or 1
    first_v, last_v = voiced_ticks
    span = max(1, last_v - first_v)
    word_ticks: list[int] = []
    done = 0
    for word in words:
        word_ticks.append(first_v + span * done // total)
        done += len(word)
    return Clip(packets, len(samples), voiced_ticks, visemes, audio_data, chunks_out, n_frames,
                list(zip(word_ticks, words, strict=True)))


class ClipCache:
    """LRU of built clips keyed by (text, voice, options)."""

    def __init__(self, max_items: int = 256) -> None:
        self.max_items = max_items
        self._items: OrderedDict[Hashable, Clip] = OrderedDict()
        self._lock = threading.Lock()
        self.hits = 0
        self.misses = 0

    def get(self, key: Hashable) -> Clip | None:
        with self._lock:
            clip = self._items.get(key)
            if clip is not None:
                self._items.move_to_end(key)
                self.hits += 1
            return clip

    def put(self, key: Hashable, clip: Clip) -> None:
        with self._lock:
            self.misses += 1
            self._items[key] = clip
            self._items.move_to_end(key)
            while len(self._items) > self.max_items:
                self._items.popitem(last=False)


SHARED_CLIPS = ClipCache()
assert FRAME_SAMPLES * 1000 // SAMPLE_RATE == TICK_MS
