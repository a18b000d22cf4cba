"""The simulated player's microphone audio: a WAV file or speech synthesized once, before the run starts.

Synthesis costs CPU (espeak-ng, or the synthetic voice), so every distinct utterance of a script is
made once up front and shared by all NPCs; none of it happens while latencies are being measured.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from bridge.audio.wav import decode_wav
from bridge_loadtest.script import Script, TurnSpec

MIC_RATE = 16000
PLAYER_NAMES = ("Ada", "Bram", "Cora", "Dain", "Edda", "Finn", "Greta", "Hale", "Ines", "Joss")


@dataclass(frozen=True)
class Utterance:
    pcm: np.ndarray  # int16, interleaved when stereo
    rate: int
    channels: int

    @property
    def samples(self) -> int:
        return self.pcm.shape[0] // self.channels

    @property
    def duration_s(self) -> float:
        return self.samples / self.rate

    def frames(self, frame_ms: int = 20) -> list[np.ndarray]:
        step = self.rate * frame_ms // 1000 * self.channels
        return [self.pcm[i : i + step] for i in range(0, self.pcm.shape[0], step)]


def player_name(npc: int) -> str:
    return PLAYER_NAMES[npc % len(PLAYER_NAMES)] + (str(npc // len(PLAYER_NAMES)) if npc >= len(PLAYER_NAMES) else "")


def fill(text: str, npc: int) -> str:
    return text.replace("{name}", player_name(npc)).replace("{npc}", str(npc))


def load_utterance(spec: TurnSpec) -> Utterance:
    if spec.wav is not None:
        pcm, rate, channels = decode_wav(Path(spec.wav).read_bytes())
        return Utterance(np.ascontiguousarray(pcm.reshape(-1), dtype=np.int16), rate, channels)
    from convai_emulator.voice import VoiceSpec, synthesize

    pcm = synthesize(spec.text, VoiceSpec(name="en-gb", pitch=60, speed=170), MIC_RATE)
    return Utterance(np.ascontiguousarray(pcm, dtype=np.int16), MIC_RATE, 1)


def prepare_utterances(script: Script) -> dict[str, Utterance]:
    out: dict[str, Utterance] = {}
    for spec in script.turns:
        if spec.kind == "voice" and spec.utterance_key() not in out:
            out[spec.utterance_key()] = load_utterance(spec)
    return out


def silence(rate: int, channels: int, seconds: float) -> np.ndarray:
    return np.zeros(int(rate * seconds) * channels, dtype=np.int16)
