"""Deterministic lip-sync frames derived from the audio the bot actually plays.

There is no phoneme aligner here: mouth opening follows the RMS envelope of the speech, and the
viseme class follows the reply's letters spread over the voiced span. That keeps frames honest
(silent audio ⇒ closed mouth) and aligned to the audio sample clock, which is what clients test.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import numpy as np

VISEME_KEYS: tuple[str, ...] = (
    "sil", "pp", "ff", "th", "dd", "kk", "ch", "ss", "nn", "rr", "aa", "e", "ih", "oh", "ou",
)

_LETTER_VISEME: dict[str, str] = {}
for _letters, _viseme in (
    ("pbm", "pp"), ("fv", "ff"), ("dtl", "dd"), ("kgqcx", "kk"), ("jy", "ch"), ("sz", "ss"),
    ("n", "nn"), ("r", "rr"), ("a", "aa"), ("e", "e"), ("i", "ih"), ("o", "oh"), ("uw", "ou"), ("h", "th"),
):
    for _ch in _letters:
        _LETTER_VISEME[_ch] = _viseme

# Indices of the mouth controls we drive inside NeuroSync frames (reference blendshapes/*.txt).
ARKIT_SIZE = 61
ARKIT_JAW_OPEN, ARKIT_MOUTH_CLOSE, ARKIT_FUNNEL, ARKIT_PUCKER = 17, 18, 19, 20
MHA_SIZE = 251
MHA_JAW_OPEN = 62
MHA_FUNNEL = (92, 93, 94, 95)
MHA_LIPS_TOGETHER = (139, 140, 141, 142)


def envelope(pcm: np.ndarray, sample_rate: int, fps: float) -> np.ndarray:
    """Mouth opening 0..1 per output frame: RMS over the frame, normalised to the loud parts."""
    samples = np.asarray(pcm, dtype=np.float32).reshape(-1)
    hop = sample_rate / fps
    n = max(1, int(np.ceil(len(samples) / hop)))
    edges = np.minimum((np.arange(n + 1) * hop).astype(np.int64), len(samples))
    squares = np.concatenate(([0.0], np.cumsum(samples.astype(np.float64) ** 2)))
    counts = np.maximum(edges[1:] - edges[:-1], 1)
    rms = np.sqrt((squares[edges[1:]] - squares[edges[:-1]]) / counts)
    peak = float(np.percentile(rms, 95)) if rms.size else 0.0
    if peak < 200.0:  # below ~-44 dBFS: nothing audible, mouth stays closed
        return np.zeros(n, dtype=np.float32)
    level = np.clip(rms / peak, 0.0, 1.0)
    level[rms < 150.0] = 0.0
    return level.astype(np.float32)


def viseme_frames(text: str, opening: np.ndarray) -> list[dict[str, float]]:
    """One 15-key viseme frame per envelope value; letters are spread over the voiced frames."""
    letters = [c for c in text.lower() if c.isalpha()] or ["a"]
    voiced = np.flatnonzero(opening > 0)
    first, last = (int(voiced[0]), int(voiced[-1])) if voiced.size else (0, 0)
    span = max(1, last - first + 1)
    frames: list[dict[str, float]] = []
    for i, level in enumerate(opening.tolist()):
        frame = dict.fromkeys(VISEME_KEYS, 0.0)
        if level <= 0.0:
            frame["sil"] = 1.0
        else:
            letter = letters[min(len(letters) - 1, (i - first) * len(letters) // span)]
            key = _LETTER_VISEME.get(letter, "aa")
            frame[key] = round(level, 3)
            frame["sil"] = round(1.0 - level, 3)
        frames.append(frame)
    return frames


def neurosync_frames(opening: np.ndarray, fmt: str) -> list[list[float]]:
    """NeuroSync-layout frames (61 ARKit or 251 MetaHuman floats) driven by the envelope."""
    arkit = fmt.lower() == "arkit"
    size = ARKIT_SIZE if arkit else MHA_SIZE
    out = np.zeros((len(opening), size), dtype=np.float32)
    if arkit:
        out[:, ARKIT_JAW_OPEN] = opening * 0.6
        out[:, ARKIT_MOUTH_CLOSE] = (1.0 - opening) * 0.1
        out[:, ARKIT_FUNNEL] = opening * 0.2
    else:
        out[:, MHA_JAW_OPEN] = opening * 0.6
        for idx in MHA_FUNNEL:
            out[:, idx] = opening * 0.2
        for idx in MHA_LIPS_TOGETHER:
            out[:, idx] = (opening == 0) * 0.3
    return np.round(out, 3).tolist()


@lru_cache(maxsize=2)
def blendshape_names(fmt: str) -> tuple[str, ...]:
    """Index → name for a NeuroSync layout (the tables next to this module, from the reference's
    ``blendshapes/*.txt``), used when frames go out as named objects."""
    arkit = fmt.lower() == "arkit"
    path = Path(__file__).with_name("arkit_order_61.txt" if arkit else "metahuman_order_251.txt")
    names = tuple(line.split("\t", 1)[1].strip() for line in path.read_text().splitlines() if "\t" in line)
    assert len(names) == (ARKIT_SIZE if arkit else MHA_SIZE), path
    return names
