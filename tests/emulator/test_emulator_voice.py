"""Speech synthesis and WAV handling."""

from __future__ import annotations

import asyncio
import struct

import numpy as np
import pytest

from convai_emulator.voice import Synthesizer, VoiceSpec, espeak_available, synthesize
from convai_emulator.wavfile import WavError, read_wav, transcribe, wav_bytes
from tests.emulator.emulator_support import speech_like

TEXT = "Welcome to my forge, traveller! Mind the sparks."


def test_synthetic_voice_is_speech_like_and_deterministic() -> None:
    pcm = synthesize(TEXT, VoiceSpec(), 24000, engine="synthetic")
    assert pcm.dtype == np.int16
    assert 1.5 < pcm.size / 24000 < 8.0
    assert speech_like(pcm, 24000)
    assert np.array_equal(pcm, synthesize(TEXT, VoiceSpec(), 24000, engine="synthetic"))
    higher = synthesize(TEXT, VoiceSpec(pitch=90), 24000, engine="synthetic")
    assert not np.array_equal(pcm[: higher.size], higher[: pcm.size])
    assert synthesize("   ", VoiceSpec(), 24000).size == 0


@pytest.mark.skipif(not espeak_available(), reason="espeak-ng not installed")
def test_espeak_voice_resampled() -> None:
    pcm = synthesize(TEXT, VoiceSpec("en-us", 40, 160), 48000, engine="espeak")
    assert 1.5 < pcm.size / 48000 < 8.0
    assert speech_like(pcm, 48000)
    # an unknown voice falls back to the synthetic signal under "auto"
    fallback = synthesize("hello there", VoiceSpec("no-such-voice"), 16000, engine="auto")
    assert speech_like(fallback, 16000)


def test_wav_round_trip_with_transcript() -> None:
    pcm = (np.sin(np.arange(16000) / 5) * 8000).astype(np.int16)
    data = wav_bytes(pcm, 16000, transcript="open the gate")
    audio = read_wav(data)
    assert (audio.sample_rate, audio.channels, audio.bits_per_sample) == (16000, 1, 16)
    assert np.array_equal(audio.pcm[:, 0], pcm)
    assert transcribe(audio) == "open the gate"
    assert transcribe(read_wav(wav_bytes(pcm, 16000))) == "(unintelligible audio of 1.0 s)"
    assert transcribe(read_wav(wav_bytes(np.zeros(8000, np.int16), 16000))) == ""


def test_wav_reader_formats_and_errors() -> None:
    # 24-bit mono and an 8-bit file, built by hand
    samples24 = b"".join(struct.pack("<i", v)[:3] for v in (0, 0x123456, -0x123456))
    fmt = struct.pack("<HHIIHH", 1, 1, 8000, 24000, 3, 24)
    raw = b"RIFF" + struct.pack("<I", 4 + 24 + 8 + len(samples24)) + b"WAVEfmt " + struct.pack("<I", 16) + fmt
    raw += b"data" + struct.pack("<I", len(samples24)) + samples24
    audio = read_wav(raw)
    assert audio.bits_per_sample == 24 and audio.pcm[:, 0].tolist() == [0, 0x1234, -0x1235]
    # a streaming writer's oversized data length is clamped to the bytes present
    streamed = raw[:-len(samples24) - 4] + struct.pack("<I", 0x7FFFF000) + samples24
    assert read_wav(streamed).pcm.shape == (3, 1)
    with pytest.raises(WavError):
        read_wav(b"not a wav at all")
    with pytest.raises(WavError, match="encoding"):
        read_wav(raw.replace(struct.pack("<HH", 1, 1), struct.pack("<HH", 3, 1), 1))


async def test_synthesizer_caches_and_deduplicates() -> None:
    synth = Synthesizer(engine="synthetic", max_bytes=1 << 20)
    voice = VoiceSpec()
    clips = await asyncio.gather(*(synth.pcm("Hello there, friend.", voice, 16000) for _ in range(8)))
    assert synth.misses == 1 and all(c is clips[0] for c in clips)
    assert not clips[0].flags.writeable
    wav = await synth.wav("Hello there, friend.", voice, 16000)
    assert read_wav(wav).pcm.shape[0] == clips[0].size
    assert await synth.wav("Hello there, friend.", voice, 16000) is wav
    # the byte budget evicts old clips
    for i in range(40):
        await synth.pcm(f"A rather long sentence number {i} to fill the cache quickly.", voice, 16000)
    assert synth.stats()["bytes"] <= 1 << 20
