"""The bot's VAD learns steady room noise instead of treating it as speech (vad.AdaptiveVad)."""

from __future__ import annotations

import numpy as np

from convai_emulator.realtime.bot import BotConfig
from convai_emulator.voice import VoiceSpec, synthesize

FRAME = 960  # 20 ms at 48 kHz


def noise(seconds: float, rms: float, seed: int = 3) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return np.clip(rng.normal(0.0, rms, int(48000 * seconds)), -32768, 32767).astype(np.int16)


def feed(h, pcm: np.ndarray) -> None:
    for start in range(0, len(pcm) - FRAME + 1, FRAME):
        h.bot.feed_mic(pcm[start:start + FRAME], 0.02)


async def test_steady_noise_is_learned_and_speech_over_it_is_heard(harness_factory) -> None:
    h = harness_factory(BotConfig(llm_chunk_delay_s=0.0, tts_enabled=False))
    room = noise(6.0, 350.0)  # about -39 dBFS, above a fixed -42 dBFS gate
    feed(h, room[: 48000 * 3])
    # a mic that opens in a noisy room may trip one onset; it is discarded as noise, with no turn
    assert h.types().count("vad-stt-started") <= 1
    assert [m["data"]["reason"] for m in h.of("vad-stt-stopped")] in ([], ["noise"])
    assert "final-user-transcription" not in h.types()
    settled = len(h.sent)
    feed(h, room[48000 * 3:])  # three more seconds of the same room: nothing at all
    assert h.types()[settled:] == []
    speech = synthesize("Hello there, blacksmith.", VoiceSpec(), 48000)
    mixed = noise(len(speech) / 48000 + 1.0, 350.0, seed=4)
    mixed[: len(speech)] = np.clip(mixed[: len(speech)].astype(np.int32) + speech, -32768, 32767)
    feed(h, mixed)
    await h.wait_type("final-user-transcription", timeout=15)
    assert h.types()[settled:].count("vad-stt-started") == 1
    assert h.of("vad-stt-stopped")[-1]["data"]["reason"] == "hangover_elapsed"


async def test_speech_into_a_mic_that_just_opened_in_a_noisy_room_is_heard(harness_factory) -> None:
    """The room opens an utterance before the floor has learned it; speech then follows inside it.

    The utterance was modulated, so when the room goes steady again it ends as speech (hangover),
    not as discarded noise, and the floor learns the room for what follows.
    """
    h = harness_factory(BotConfig(llm_chunk_delay_s=0.0, tts_enabled=False))
    speech = synthesize("Hello there, blacksmith.", VoiceSpec(), 48000)
    lead = 48000 // 2  # half a second of room, then the player speaks
    mixed = noise(len(speech) / 48000 + 3.5, 350.0, seed=5)
    mixed[lead:lead + len(speech)] = np.clip(
        mixed[lead:lead + len(speech)].astype(np.int32) + speech, -32768, 32767)
    feed(h, mixed)
    await h.wait_type("final-user-transcription", timeout=15)
    assert h.types().count("vad-stt-started") == 1
    assert [m["data"]["reason"] for m in h.of("vad-stt-stopped")] == ["hangover_elapsed"]
    settled = len(h.sent)
    feed(h, noise(3.0, 350.0, seed=6))  # the floor learned the room: it opens nothing now
    assert "vad-stt-started" not in h.types()[settled:]


async def test_noise_floor_does_not_swallow_the_bots_turn(harness_factory) -> None:
    h = harness_factory(BotConfig(llm_chunk_delay_s=0.0))
    feed(h, noise(2.0, 350.0))
    h.send({"type": "user_text_message", "data": {"text": "wave"}})
    await h.wait_type("bot-started-speaking", timeout=15)
    feed(h, noise(2.0, 350.0, seed=9))  # the room keeps humming while the bot talks
    await h.wait_type("bot-turn-completed", timeout=20)
    assert h.of("bot-turn-completed")[-1]["data"]["was_interrupted"] is False
    assert "bot-interrupted" not in h.types()


async def test_push_to_talk_tail_belongs_to_the_released_utterance(harness_factory) -> None:
    """Audio still in flight after force-user-stopped-speaking neither opens an utterance nor barges in."""
    h = harness_factory(BotConfig(llm_chunk_delay_s=0.0))
    speech = synthesize("Hello there, blacksmith, how are you today?", VoiceSpec(), 48000)
    cut = len(speech) * 3 // 4 // FRAME * FRAME
    feed(h, speech[:cut])
    h.send({"label": "rtvi-ai", "type": "force-user-stopped-speaking", "id": "ptt", "data": {}})
    feed(h, speech[cut:])  # the tail arrives after the release
    feed(h, np.zeros(48000, np.int16))
    await h.wait_type("bot-turn-completed", timeout=20)
    assert h.types().count("vad-stt-started") == 1
    assert "bot-interrupted" not in h.types()
    assert h.of("bot-turn-completed")[-1]["data"]["was_interrupted"] is False
