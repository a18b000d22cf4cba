"""Voice turns are recognised (pocketsphinx): what the player says by voice reaches the character's memory.

A LiveKit client (aiortc, real sockets) publishes espeak-ng speech synthesised at 16 kHz on its
microphone; the bot's VAD cuts the utterance, recognition runs off the event loop, and the brain
remembers the name, so a later *text* turn "What is my name?" is answered with it. Saying a different
name must give a different answer.
"""

from __future__ import annotations

import uuid

import numpy as np
import pytest
import soxr
from conftest import connect
from emu_lk_client import LkClient, payload

from convai_emulator.server import Emulator
from convai_emulator.voice import VoiceSpec, espeak_available, synthesize

pytestmark = pytest.mark.skipif(not espeak_available(), reason="needs espeak-ng for the spoken input")


def spoken(text: str) -> np.ndarray:
    """espeak-ng at 16 kHz (what a mic pipeline at 16 kHz would carry), played at the client's 48 kHz."""
    pcm16 = synthesize(text, VoiceSpec("en-us", 50, 130), 16000)
    return np.asarray(soxr.resample(pcm16, 16000, 48000), dtype=np.int16)


async def say_and_ask(emu: Emulator, sentence: str) -> tuple[str, str]:
    body = await connect(emu)
    client = LkClient(body["room_url"], body["token"])
    await client.connect()
    try:
        source, _published = await client.publish_mic()
        source.say(np.concatenate([spoken(sentence), np.zeros(48000, np.int16)]))
        finals = await client.wait_type("final-user-transcription", 30)
        heard = str(payload(finals[0].message)["text"])
        await client.wait_type("bot-turn-completed", 30)
        done = len(client.find("bot-turn-completed"))
        mark = len(client.messages)
        client.send_json({"label": "rtvi-ai", "type": "user_text_message", "id": uuid.uuid4().hex,
                          "data": {"text": "What is my name?"}})
        await client.wait_type("bot-turn-completed", 30, count=done + 1)
        answer = "".join(str(payload(r.message).get("text", "")) for r in client.messages[mark:]
                         if r.message.get("type") == "bot-llm-text")
        return heard, answer
    finally:
        await client.close()


async def test_spoken_name_is_recognised_and_remembered(emulator: Emulator) -> None:
    from convai_emulator.state import STT

    if emulator.app[STT] is None:
        pytest.skip("pocketsphinx is not installed (the emulator extra)")
    heard, answer = await say_and_ask(emulator, "my name is Ada")
    assert heard == "My name is Ada", heard
    assert "Ada" in answer, answer
    heard, answer = await say_and_ask(emulator, "my name is Bob")
    assert "Bob" in heard.split() and "Ada" not in heard.split(), heard
    assert "Bob" in answer and "Ada" not in answer, answer


async def test_recognition_runs_off_the_event_loop(emulator: Emulator) -> None:
    """While an utterance is decoded the loop keeps serving: a healthz round trip stays fast."""
    import asyncio
    import threading

    from convai_emulator.realtime import listening
    from convai_emulator.state import STT

    recognizer = emulator.app[STT]
    if recognizer is None:
        pytest.skip("pocketsphinx is not installed (the emulator extra)")
    threads: set[str] = set()
    original = recognizer._decoder

    def traced_decoder():  # type: ignore[no-untyped-def]
        threads.add(threading.current_thread().name)  # every decoding pass takes a decoder first
        return original()

    recognizer._decoder = traced_decoder  # type: ignore[method-assign]
    try:
        heard, _answer = await say_and_ask(emulator, "my name is Ada")
    finally:
        recognizer._decoder = original  # type: ignore[method-assign]
    assert heard
    assert threads and all(name.startswith("emulator-stt") for name in threads), threads
    assert threading.main_thread().name not in threads
    assert listening._EXECUTOR._max_workers >= 1
    await asyncio.sleep(0)


def test_decoders_load_the_domain_dictionary_not_all_of_cmudict() -> None:
    """Loading cmudict's 130k words holds the GIL for seconds per decoder and freezes every room of the
    emulator at the first utterance; the decoder gets the domain's words only (variants included)."""
    from convai_emulator.stt import make_recognizer

    recognizer = make_recognizer(["hello there blacksmith"], ["Smith"])
    if recognizer is None:
        pytest.skip("pocketsphinx is not installed (the emulator extra)")
    lines = recognizer.dictionary_path.read_text(encoding="utf-8").splitlines()
    words = {line.split(" ", 1)[0].split("(", 1)[0] for line in lines}
    assert words == set(recognizer.vocabulary)
    assert {"hello", "blacksmith", "name", "ada"} <= words
    assert len(lines) < 1000
