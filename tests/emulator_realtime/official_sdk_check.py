"""Official LiveKit SDK (libwebrtc) against the emulator, inside a private network namespace.

Run as ``unshare -n python official_sdk_check.py`` (root). libwebrtc ignores loopback interfaces,
so the namespace gets ``lo`` plus a veth pair carrying 127.0.0.2/32 (livekit-signalling.md §11);
everything stays inside the namespace. Prints one JSON line per mode and exits non-zero on failure.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import aiohttp
import numpy as np

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from convai_emulator.config import DEV_API_KEY, EmulatorConfig  # noqa: E402
from convai_emulator.realtime import REALTIME, RealtimeSettings, realtime_extension  # noqa: E402
from convai_emulator.server import Emulator  # noqa: E402
from convai_emulator.voice import VoiceSpec, synthesize  # noqa: E402

CHARACTER = "c0ffee00-0000-4000-8000-000000000001"


def setup_namespace_network() -> None:
    for cmd in (
        "ip link set lo up",
        "ip link add lkveth0 type veth peer name lkveth1",
        "ip link set lkveth0 up",
        "ip link set lkveth1 up",
        "ip addr add 127.0.0.2/32 dev lkveth0",
    ):
        subprocess.run(cmd.split(), check=True, capture_output=True, timeout=10)


def event_type(message: dict[str, Any]) -> str:
    data = message.get("data")
    if message.get("type") == "server-message" and isinstance(data, dict):
        return str(data.get("type"))
    return str(message.get("type"))


async def until(predicate: Any, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            return False
        await asyncio.sleep(0.02)
    return True


async def run_mode(mode: str) -> dict[str, Any]:
    from livekit import rtc

    settings = RealtimeSettings(single_pc=mode != "fallback")  # "noisy": single PC, a live quiet mic
    result: dict[str, Any] = {"mode": mode}
    async with Emulator(EmulatorConfig(), [realtime_extension(settings)]) as emu:
        async with aiohttp.ClientSession() as http:
            resp = await http.post(f"{emu.base_url}/connect", json={"character_id": CHARACTER},
                                   headers={"x-api-key": DEV_API_KEY})
            body = await resp.json()
        room = rtc.Room()
        messages: list[tuple[float, dict[str, Any], str]] = []
        frames: list[tuple[float, np.ndarray]] = []
        t0 = time.monotonic()
        tasks: list[asyncio.Task[Any]] = []

        @room.on("data_received")
        def _data(packet: rtc.DataPacket) -> None:
            sender = packet.participant.identity if packet.participant else ""
            messages.append((time.monotonic() - t0, json.loads(packet.data.decode()), sender))

        async def read(track: rtc.Track) -> None:
            async for event in rtc.AudioStream(track, sample_rate=48000, num_channels=1):
                data = np.frombuffer(event.frame.data, dtype=np.int16).copy()
                frames.append((time.monotonic() - t0, data))

        @room.on("track_subscribed")
        def _track(track: rtc.Track, _pub: Any, participant: rtc.RemoteParticipant) -> None:
            result["subscribed_track"] = track.sid
            result["track_owner"] = participant.identity
            tasks.append(asyncio.ensure_future(read(track)))

        options = rtc.RoomOptions(auto_subscribe=True, single_peer_connection=False if mode == "dual" else None)
        await room.connect(body["room_url"], body["token"], options)
        result["join_s"] = round(time.monotonic() - t0, 3)
        types = lambda: [event_type(m) for _, m, _ in messages]  # noqa: E731
        result["bot_ready"] = await until(lambda: "bot-ready" in types(), 10)
        bot_identity = emu.app[REALTIME].rooms.rooms[body["room_name"]].bot_identity
        result["data_sender_is_bot"] = bool(messages) and all(s == bot_identity for _, _, s in messages)
        result["bot_track_sid"] = emu.app[REALTIME].rooms.rooms[body["room_name"]].bot_track_sid

        # microphone: real speech, then silence; the bot's VAD must hear it
        source = rtc.AudioSource(48000, 1)
        track = rtc.LocalAudioTrack.create_audio_track("microphone", source)
        await room.local_participant.publish_track(
            track, rtc.TrackPublishOptions(source=rtc.TrackSource.SOURCE_MICROPHONE))
        speech = synthesize("Hello there, blacksmith. How are you?", VoiceSpec(), 48000)
        if mode == "noisy":
            # a live, quiet microphone: steady low noise all the time (about -39 dBFS, above the old fixed
            # -42 dBFS gate), speech mixed into it; the bot must hear the speech and nothing else
            mic = NoisyMic(source)
            tasks.append(asyncio.ensure_future(mic.run()))
            # the VAD learns the room: wait until it has (its floor near the noise, no utterance open), not
            # for a fixed time, since a loaded machine delivers the first mic frames late
            vad = emu.app[REALTIME].rooms.rooms[body["room_name"]].bot.vad
            await asyncio.sleep(2.0)
            result["vad_learned_room"] = await until(lambda: not vad.speaking and vad.floor_dbfs > -45.0, 15)
            calibrated = len(messages)
            mic.say(synthesize("Hello there blacksmith, how are you today?", VoiceSpec(), 48000))
            result["vad_heard"] = await until(lambda: "final-user-transcription" in types(), 12)
        else:
            pcm = np.concatenate([speech, np.zeros(48000, np.int16)])
            for start in range(0, len(pcm) - 480, 480):
                frame = rtc.AudioFrame(pcm[start:start + 480].tobytes(), 48000, 1, 480)
                await source.capture_frame(frame)
            result["vad_heard"] = await until(lambda: "final-user-transcription" in types(), 8)
        result["mic_frames_at_server"] = sum(p.mic_frames for p in emu.app[REALTIME].signalling.participants)
        await until(lambda: "bot-turn-completed" in types(), 10)
        spoken_done = len(messages)  # from here on the mic carries only the room (noisy mode)

        # data from the client: a text turn, acked, answered with audible speech
        n_done = types().count("bot-turn-completed")
        await room.local_participant.publish_data(json.dumps(
            {"label": "rtvi-ai", "type": "user_text_message", "id": "sdk1", "data": {"text": "wave"}}), reliable=True)
        result["text_turn_done"] = await until(lambda: types().count("bot-turn-completed") > n_done, 15)
        result["acked"] = any(m.get("id") == "sdk1" and m.get("type") == "server-response" for _, m, _ in messages)
        starts = [t for t, m, _ in messages if event_type(m) == "bot-started-speaking"]
        stops = [t for t, m, _ in messages if event_type(m) == "bot-stopped-speaking"]
        if starts and stops:
            during = [f for t, f in frames if starts[-1] <= t <= stops[-1] + 0.3]
            speech_out = np.concatenate(during) if during else np.zeros(1, np.int16)
            result["rms"] = round(float(np.sqrt(np.mean(speech_out.astype(np.float64) ** 2))), 1)
            spectrum = np.abs(np.fft.rfft(speech_out.astype(np.float64)))
            spectrum[:3] = 0
            result["dominant_hz"] = round(float(np.argmax(spectrum) * 48000 / max(1, len(speech_out))), 1)
        if mode == "noisy":
            result["onsets_during_speech"] = [event_type(m) for _, m, _ in messages[calibrated:spoken_done]].count(
                "vad-stt-started")
            after = [event_type(m) for _, m, _ in messages[spoken_done:]]
            result["onsets_from_noise"] = after.count("vad-stt-started")
            result["bot_interrupted_by_noise"] = after.count("bot-interrupted")
            completed = [m for _, m, _ in messages[spoken_done:] if event_type(m) == "bot-turn-completed"]
            result["turns_interrupted"] = sum(bool((m.get("data") or {}).get("was_interrupted")) for m in completed)
        result["audio_frames"] = len(frames)
        result["data_messages"] = len(messages)
        await room.disconnect()
        for task in tasks:
            task.cancel()
    return result


class NoisyMic:
    """Captures 10 ms frames in real time: steady noise, plus whatever speech is queued, mixed in."""

    def __init__(self, source: Any, noise_rms: float = 350.0) -> None:
        self.source = source
        self.rng = np.random.default_rng(7)
        self.noise_rms = noise_rms
        self.queued = np.zeros(0, np.int16)

    def say(self, pcm: np.ndarray) -> None:
        self.queued = np.concatenate([self.queued, pcm.astype(np.int16)])

    async def run(self) -> None:
        from livekit import rtc

        start = time.monotonic()
        n = 0
        while True:
            frame = self.rng.normal(0.0, self.noise_rms, 480)
            if self.queued.size:
                part, self.queued = self.queued[:480], self.queued[480:]
                frame[: part.size] += part
            pcm = np.clip(frame, -32768, 32767).astype(np.int16)
            await self.source.capture_frame(rtc.AudioFrame(pcm.tobytes(), 48000, 1, 480))
            n += 1
            delay = start + n * 0.01 - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)


def ok(result: dict[str, Any]) -> bool:
    if result.get("mode") == "noisy" and not (
        result.get("onsets_during_speech", 0) >= 1  # the speech was heard as speech
        and result.get("onsets_from_noise") == 0  # and the room never (3 s learning it, then the whole text turn)
        and result.get("bot_interrupted_by_noise") == 0 and result.get("turns_interrupted") == 0
    ):
        return False
    return bool(
        result.get("bot_ready") and result.get("data_sender_is_bot")
        and result.get("subscribed_track") == result.get("bot_track_sid")
        and result.get("vad_heard") and result.get("mic_frames_at_server", 0) > 20
        and result.get("text_turn_done") and result.get("acked")
        and result.get("rms", 0) > 500 and 70 < result.get("dominant_hz", 0) < 2000
    )


async def main(modes: list[str]) -> int:
    failures = 0
    for mode in modes:
        try:
            result = await asyncio.wait_for(run_mode(mode), 60)
        except Exception as exc:  # report, keep going with the other modes
            result = {"mode": mode, "error": repr(exc)}
        result["ok"] = ok(result)
        failures += not result["ok"]
        print(json.dumps(result), flush=True)
    return 1 if failures else 0


if __name__ == "__main__":
    setup_namespace_network()
    sys.exit(asyncio.run(main(sys.argv[1:] or ["single", "fallback", "dual"])))
