"""Emulator benchmark: CPU per realtime session (its own aiortc path) and speech recognition cost.

``run()`` returns flat ``{name: value}`` for the bench runner.

* ``emulator_cpu_pct_per_session_idle`` / ``_talking``: the emulator process alone, N aiortc LiveKit
  clients publishing a microphone (tests/emulator_realtime/profile_sessions.py in a subprocess):
  idle is silence both ways with VAD running, talking is back-to-back text turns (speech, 100 fps
  visemes, data).
* ``emulator_stt_realtime_factor``: pocketsphinx decode time / audio time for a whole espeak-ng
  utterance (the final pass of a voice turn); ``emulator_stt_ms_per_utterance`` the same in ms for
  "my name is Ada" (~1.5 s), partial passes included as the bot runs them (every second, first 5 s).
"""

from __future__ import annotations

import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
PROFILER = ROOT / "tests" / "emulator_realtime" / "profile_sessions.py"


def _cpu(sessions: int, seconds: float) -> dict[str, float]:
    proc = subprocess.run([sys.executable, str(PROFILER), "--sessions", str(sessions), "--seconds", str(seconds)],
                          capture_output=True, text=True, timeout=300, cwd=ROOT, check=True)
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    return {
        "emulator_sessions": sessions,
        "emulator_cpu_pct_per_session_idle": result["idle_cpu_percent_per_session"],
        "emulator_cpu_pct_per_session_talking": result["talking_cpu_percent_per_session"],
    }


def _stt(repeats: int) -> dict[str, float]:
    from convai_emulator.roster import load_roster
    from convai_emulator.stt import SAMPLE_RATE, make_recognizer, roster_phrases
    from convai_emulator.voice import VoiceSpec, synthesize

    roster = load_roster()
    recognizer = make_recognizer(roster_phrases(roster), [c.name for c in roster])
    if recognizer is None:
        return {"emulator_stt_available": False}
    recognizer.prewarm()
    pcm = synthesize("my name is Ada", VoiceSpec("en-us", 50, 130), SAMPLE_RATE)
    audio = np.concatenate([pcm, np.zeros(SAMPLE_RATE // 2, np.int16)]).tobytes()
    seconds = len(audio) / 2 / SAMPLE_RATE
    finals: list[float] = []
    with_partials: list[float] = []
    heard = ""
    for _ in range(repeats):
        start = time.perf_counter()
        heard = recognizer.recognize(audio)
        finals.append(time.perf_counter() - start)
        stream = recognizer.stream()
        step = SAMPLE_RATE * 2  # one second of 16-bit audio
        start = time.perf_counter()
        for offset in range(0, len(audio), step):
            stream.feed(audio[offset:offset + step])
        stream.finish()
        with_partials.append(time.perf_counter() - start)
    return {
        "emulator_stt_available": True,
        "emulator_stt_heard": heard,
        "emulator_stt_realtime_factor": round(statistics.median(finals) / seconds, 4),
        "emulator_stt_ms_per_utterance": round(statistics.median(with_partials) * 1000, 1),
    }


def run(quick: bool = False) -> dict[str, object]:
    results: dict[str, object] = {}
    results.update(_stt(3 if quick else 10))
    results.update(_cpu(2 if quick else 4, 4.0 if quick else 8.0))
    return results


if __name__ == "__main__":
    print(json.dumps(run(quick="--quick" in sys.argv), indent=2))
