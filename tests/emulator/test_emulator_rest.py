"""REST gateway: /character/getResponse, /character/get, /user/speaker/new over real HTTP."""

from __future__ import annotations

import json

import aiohttp
import numpy as np

from convai_emulator.server import Emulator
from convai_emulator.wavfile import wav_bytes
from tests.emulator.emulator_support import (
    BLACKSMITH,
    GUARD,
    LIVE_HEADERS,
    REST_HEADERS,
    decode_wav_b64,
    speech_like,
)

ONE_INPUT = {"ERROR": "Expecting only one; either an audio file or user's query as a string"}


async def ask(http: aiohttp.ClientSession, emu: Emulator, **fields: str) -> tuple[int, dict]:
    form = {"charID": BLACKSMITH, "sessionID": "-1", "voiceResponse": "False", **fields}
    async with http.post(f"{emu.rest_url}/character/getResponse", data=form, headers=REST_HEADERS) as resp:
        return resp.status, await resp.json()


async def test_text_reply_shape(http: aiohttp.ClientSession, emulator: Emulator) -> None:
    status, body = await ask(http, emulator, userText="Hello there")
    assert status == 200
    assert list(body) == ["charID", "text", "audio", "sample_rate", "sessionID"]
    assert body["charID"] == BLACKSMITH and body["audio"] is None and body["sample_rate"] is None
    assert body["text"] == "Welcome to my forge, traveller! Mind the sparks."
    assert len(body["sessionID"]) == 36


async def test_voice_reply_is_a_wav_with_speech(http: aiohttp.ClientSession, emulator: Emulator) -> None:
    status, body = await ask(http, emulator, userText="Tell me about swords", voiceResponse="True")
    assert status == 200 and body["sample_rate"] == "22050"
    audio = decode_wav_b64(body["audio"])
    assert (audio.sample_rate, audio.channels, audio.bits_per_sample) == (22050, 1, 16)
    assert audio.duration_s > 1.0 and speech_like(audio.pcm, audio.sample_rate)

    status, body = await ask(http, emulator, userText="Tell me about swords", voiceResponse="True",
                             sample_rate="16000")
    assert status == 200 and body["sample_rate"] == "16000"
    assert decode_wav_b64(body["audio"]).sample_rate == 16000
    status, body = await ask(http, emulator, userText="hi", voiceResponse="True", sample_rate="fast")
    assert status == 400 and "ERROR" in body


async def test_context_kept_across_turns(http: aiohttp.ClientSession, emulator: Emulator) -> None:
    _, first = await ask(http, emulator, userText="My name is Rowan")
    session = first["sessionID"]
    # multipart and urlencoded bodies are both accepted
    form = aiohttp.FormData({"charID": BLACKSMITH, "sessionID": session, "userText": "What is my name?",
                             "voiceResponse": "False"}, default_to_multipart=True)
    async with http.post(f"{emulator.rest_url}/character/getResponse", data=form, headers=REST_HEADERS) as resp:
        body = await resp.json()
    assert body["text"] == "Your name is Rowan." and body["sessionID"] == session
    _, body = await ask(http, emulator, userText="What did I say first?", sessionID=session)
    assert body["text"] == 'First you said: "My name is Rowan".'
    _, fresh = await ask(http, emulator, userText="What is my name?")
    assert fresh["text"] == "You haven't told me your name yet." and fresh["sessionID"] != session
    # an unknown id starts a new conversation under that id
    _, adopted = await ask(http, emulator, userText="my name is Ada", sessionID="client-chosen-id")
    _, again = await ask(http, emulator, userText="what is my name", sessionID="client-chosen-id")
    assert adopted["sessionID"] == again["sessionID"] == "client-chosen-id" and again["text"] == "Your name is Ada."
    # a session of another character is not shared
    _, other = await ask(http, emulator, userText="what is my name", sessionID=session, charID=GUARD)
    assert other["sessionID"] != session and "Rowan" not in other["text"]


async def test_audio_input(http: aiohttp.ClientSession, emulator: Emulator) -> None:
    tone = (np.sin(np.arange(16000) / 3) * 9000).astype(np.int16)

    async def send(wav: bytes, **extra: str) -> tuple[int, dict]:
        form = aiohttp.FormData({"charID": BLACKSMITH, "sessionID": "-1", "voiceResponse": "False", **extra})
        form.add_field("file", wav, filename="audio.wav", content_type="audio/wav")
        async with http.post(f"{emulator.rest_url}/character/getResponse", data=form,
                             headers=REST_HEADERS) as resp:
            return resp.status, await resp.json()

    status, body = await send(wav_bytes(tone, 16000, transcript="please grab the cube"))
    assert status == 200
    assert body["UserQuery"] == "please grab the cube" and body["text"] == "Sure, I'll fetch the cube."
    status, body = await send(wav_bytes(tone, 16000))
    assert status == 200 and body["UserQuery"] == "(unintelligible audio of 1.0 s)"
    status, body = await send(wav_bytes(np.stack([tone, tone], axis=1), 16000))
    assert status == 400 and "mono" in body["ERROR"]
    status, body = await send(b"RIFF....WAVEnope")
    assert status == 400 and body["ERROR"].startswith("Invalid audio file")
    status, body = await send(wav_bytes(tone, 16000), userText="and text too")
    assert (status, body) == (400, ONE_INPUT)


async def test_errors(http: aiohttp.ClientSession, emulator: Emulator) -> None:
    status, body = await ask(http, emulator)
    assert (status, body) == (400, ONE_INPUT)
    status, body = await ask(http, emulator, userText="hi", charID="00000000-0000-4000-8000-000000000000")
    assert status == 404 and list(body) == ["charID", "text"]
    assert body["text"].startswith("process_failure, error: ")
    url = f"{emulator.rest_url}/character/getResponse"
    form = {"charID": BLACKSMITH, "userText": "hi", "sessionID": "-1"}
    async with http.post(url, data=form) as resp:
        body = await resp.json()
        assert resp.status == 401 and body["ERROR"] == "The request is missing an API key."
    async with http.post(url, data=form, headers={"CONVAI-API-KEY": "wrong"}) as resp:
        body = await resp.json()
        assert resp.status == 401 and body["ERROR"] == "The request contains an invalid API key."


async def test_api_auth_token_is_a_live_session(http: aiohttp.ClientSession, emulator: Emulator) -> None:
    async with http.post(f"{emulator.live_url}/connect", json={"character_id": BLACKSMITH},
                         headers=LIVE_HEADERS) as resp:
        session_id = (await resp.json())["session_id"]
    form = {"charID": BLACKSMITH, "userText": "hi", "sessionID": "-1"}
    async with http.post(f"{emulator.rest_url}/character/getResponse", data=form,
                         headers={"API-AUTH-TOKEN": session_id}) as resp:
        assert resp.status == 200
    async with http.post(f"{emulator.rest_url}/character/getResponse", data=form,
                         headers={"API-AUTH-TOKEN": "00000000-0000-4000-8000-000000000000"}) as resp:
        assert resp.status == 401


async def test_actions(http: aiohttp.ClientSession, emulator: Emulator) -> None:
    objects = json.dumps([{"name": "cube", "description": "a red cube"}])
    status, body = await ask(http, emulator, userText="grab the cube", actions="Move To, Pick Up, Wave",
                             objects=objects, characters=json.dumps([{"name": "Bob", "bio": "a friend"}]),
                             classification="multistep")
    assert status == 200
    assert body["actionSequence"] == " \nMove To cube\n Pick Up cube"
    assert body["userQuery"] == "grab the cube" and body["response"] == body["text"]
    assert body["tag"] == "multistep"
    # older ';'-joined objects; a target that is not in the scene yields no actions
    legacy = json.dumps({"name": "anvil", "description": "iron"}) + ";"
    status, body = await ask(http, emulator, userText="grab the cube", actions="Move To, Pick Up", objects=legacy)
    assert status == 200 and body["actionSequence"] == "" and "don't see any cube" in body["text"]
    status, body = await ask(http, emulator, userText="grab the anvil", actions="Move To, Pick Up", objects=legacy)
    assert body["actionSequence"] == " \nMove To anvil\n Pick Up anvil"
    # no emotion / narrative fields in getResponse JSON (not in any source)
    status, body = await ask(http, emulator, userText="show me your work, thanks!")
    assert not {"emotion", "action", "narrativeSectionId"} & set(body)


async def test_character_get_and_speaker(http: aiohttp.ClientSession, emulator: Emulator) -> None:
    async with http.post(f"{emulator.rest_url}/character/get", json={"charID": BLACKSMITH},
                         headers=REST_HEADERS) as resp:
        body = await resp.json()
    assert resp.status == 200 and body["character_name"] == "Brakka the Blacksmith"
    assert {"backstory", "voice_type", "language_code", "model_details"} <= set(body)
    async with http.post(f"{emulator.rest_url}/character/get", json={"charID": "nope"},
                         headers=REST_HEADERS) as resp:
        assert resp.status == 404 and "ERROR" in await resp.json()
    async with http.post(f"{emulator.rest_url}/character/get", json={"charID": BLACKSMITH}) as resp:
        assert resp.status == 401

    speakers = []
    for _ in range(2):
        async with http.post(f"{emulator.rest_url}/user/speaker/new", json={"deviceId": "player-7"},
                             headers=REST_HEADERS) as resp:
            assert resp.status == 200
            speakers.append((await resp.json())["speakerId"])
    assert speakers[0] == speakers[1] and len(speakers[0]) == 36
