"""CPU fixes for aiortc's audio path, installed once per process by the Live transports.

Measured with ``bench/live_bench.py`` (8 sessions, audio both ways): plain aiortc spends most of
its per-frame Python time in a handful of places; this module replaces the expensive ones with
equivalent code. Each hook is guarded: it is applied only when aiortc's version is one this code
was checked against (``SUPPORTED_AIORTC``) and the function it replaces is still there; otherwise
aiortc stays untouched and a warning says so (correct, only slower).

Hooks:

``audio_level``
    ``aiortc.rtp.compute_audio_level_dbov`` (RFC 6465 level for the ``ssrc-audio-level`` RTP
    header extension) loops over every sample in pure Python: ~15 % of the client's CPU. Replaced
    by a numpy version giving identical results (same formula, same rounding; checked by tests).
"""

from __future__ import annotations

import logging
import math

import aiortc
import aiortc.rtp
import numpy as np
from av import AudioFrame

log = logging.getLogger(__name__)

SUPPORTED_AIORTC = ("1.16.",)

_MAX_SAMPLE_VALUE = 32767
_MIN_AUDIO_LEVEL = -127
_installed: dict[str, bool] = {}
original_compute_audio_level_dbov = aiortc.rtp.compute_audio_level_dbov


def compute_audio_level_dbov(frame: AudioFrame) -> int:
    """RFC 6465 Appendix A audio level, vectorised; same result as aiortc's implementation."""
    samples = np.frombuffer(frame.planes[0], dtype=np.int16).astype(np.float64)
    energy = float(np.dot(samples, samples))
    rms = math.sqrt(energy / (frame.samples * _MAX_SAMPLE_VALUE * _MAX_SAMPLE_VALUE))
    if rms > 0:
        db = min(max(20 * math.log10(rms), _MIN_AUDIO_LEVEL), 0)
    else:
        db = _MIN_AUDIO_LEVEL
    return round(db)


def _version_ok() -> bool:
    version = getattr(aiortc, "__version__", "")
    return any(version.startswith(prefix) for prefix in SUPPORTED_AIORTC)


def install() -> dict[str, bool]:
    """Apply every hook that fits the installed aiortc; idempotent. Returns hook → applied."""
    if _installed:
        return dict(_installed)
    if not _version_ok():
        log.warning(
            "aiortc %s is not one of %s; audio CPU hooks not installed",
            getattr(aiortc, "__version__", "?"),
            SUPPORTED_AIORTC,
        )
        _installed["audio_level"] = False
        return dict(_installed)
    original = getattr(aiortc.rtp, "compute_audio_level_dbov", None)
    if callable(original):
        aiortc.rtp.compute_audio_level_dbov = compute_audio_level_dbov
        _installed["audio_level"] = True
    else:
        _installed["audio_level"] = False
    log.debug("aiortc audio hooks: %s", _installed)
    return dict(_installed)


def installed() -> dict[str, bool]:
    return dict(_installed)
