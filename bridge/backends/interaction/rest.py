"""`interaction` backend: Convai's REST `POST /character/getResponse`, one request per turn.

Voice input is the microphone audio collected since the last utterance, sent as a 16 kHz mono WAV
when the engine releases push-to-talk. The reply's WAV is handed to the session, which resamples,
frames and paces it. TTS toggling maps to `voiceResponse`; STT muting drops microphone audio here.
"""

from __future__ import annotations

import asyncio
import json
import logging
from typing import Any

import aiohttp
import numpy as np

from bridge.audio.resample import StreamResampler
from bridge.audio.wav import encode_wav
from bridge.backends.base import BackendContext, OpenParams
from bridge.backends.errors import ConvaiHTTPError
from bridge.backends.interaction.http import post_json_reply
from bridge.backends.interaction.turns import OneRequestPerTurn
from bridge.backends.retry import with_retries
from bridge.translate import events as ev
from bridge.translate.rest import translate_reply
from bridge.wire.errors import ProtocolError

log = logging.getLogger(__name__)

STT_RATE = 16000
MAX_UTTERANCE_S = 60
AUDIO_CHUNK_S = 0.1


class RestBackend(OneRequestPerTurn):
    name = "interaction"
    capabilities = ("audio_in", "audio_out", "lipsync", "interrupt", "tts_toggle", "stt_toggle")

    def __init__(self, ctx: BackendContext, params: OpenParams) -> None:
        super().__init__(ctx, params)
        self._voice = params.voice
        self._muted = False
        self._mic: list[np.ndarray] = []
        self._mic_samples = 0
        self._mic_resampler: StreamResampler | None = None
        self._mic_key: tuple[int, int] | None = None

    def _url(self, path: str) -> str:
        return self.ctx.config.rest_url.rstrip("/") + path

    def _form(self) -> aiohttp.FormData:
        form = aiohttp.FormData()
        form.add_field("charID", self.params.character_id)
        form.add_field("sessionID", self.character_session_id or "-1")
        form.add_field("voiceResponse", "True" if self._voice else "False")
        cfg = self.params.action_config
        if cfg:
            if cfg.get("actions"):
                form.add_field("actions", ", ".join(cfg["actions"]))
            if cfg.get("objects"):
                form.add_field("objects", json.dumps(cfg["objects"]))
            if cfg.get("characters"):
                form.add_field("characters", json.dumps(cfg["characters"]))
            form.add_field("classification", "multistep")
        return form

    async def send_text(self, text: str) -> dict[str, Any] | None:
        form = self._form()
        form.add_field("userText", text)
        await self._start(self._turn(form, voice_input=False))
        return None

    def audio_in(self, pcm: np.ndarray, sample_rate: int, channels: int) -> None:
        if self._muted:
            return
        key = (sample_rate, channels)
        if self._mic_resampler is None or self._mic_key != key:
            self._mic_resampler = StreamResampler(sample_rate, STT_RATE, channels, 1)
            self._mic_key = key
        out = self._mic_resampler.process(pcm)
        room = MAX_UTTERANCE_S * STT_RATE - self._mic_samples
        if room <= 0:
            return
        out = out[:room]
        self._mic.append(out)
        self._mic_samples += out.shape[0]

    async def end_of_utterance(self) -> dict[str, Any] | None:
        if self._mic_resampler is not None:
            self._mic.append(self._mic_resampler.flush())
            self._mic_resampler = None
        pcm = np.concatenate(self._mic) if self._mic else np.zeros(0, dtype=np.int16)
        self._mic, self._mic_samples = [], 0
        if pcm.shape[0] < STT_RATE // 10:
            raise ProtocolError("invalid_field", "less than 100 ms of microphone audio since the last utterance")
        form = self._form()
        form.add_field("file", encode_wav(pcm, STT_RATE, 1), filename="audio.wav", content_type="audio/wav")
        await self._start(self._turn(form, voice_input=True))
        return {"audio_ms": int(pcm.shape[0] * 1000 / STT_RATE)}

    async def tts_toggle(self, enabled: bool) -> dict[str, Any] | None:
        self._voice = enabled
        return {"enabled": enabled}

    async def stt_toggle(self, muted: bool) -> dict[str, Any] | None:
        self._muted = muted
        if muted:
            self._mic, self._mic_samples = [], 0
        return {"muted": muted}

    async def _turn(self, form: aiohttp.FormData, voice_input: bool) -> None:
        sink = self.ctx.sink
        cfg = self.ctx.config
        try:
            body = await with_retries(
                lambda: post_json_reply(
                    self.ctx.http,
                    self._url("/character/getResponse"),
                    what="getResponse",
                    timeout=cfg.request_timeout_s,
                    secrets=[self._key],
                    data=form,
                    headers={"CONVAI-API-KEY": self._key},
                ),
                max_retries=cfg.max_retries,
                base=cfg.retry_base_s,
                cap=cfg.retry_cap_s,
                on_retry=lambda n, exc, delay: log.info("getResponse %s; retry %d in %.2fs", exc.code, n, delay),
            )
        except ConvaiHTTPError as exc:
            sink(ev.BackendError(exc.code, exc.message, fatal=False, retryable=exc.retryable, status=exc.status))
            sink(ev.TurnEnd(aborted=True, reason=exc.code))
            return
        allowed = (self.params.action_config or {}).get("actions")
        reply = translate_reply(body, allowed, voice_input)
        if reply.session_id:
            self.character_session_id = reply.session_id
        for event in reply.events:
            sink(event)
        if reply.audio is not None:
            pcm, rate, channels = reply.audio
            sink(ev.BotSpeaking(True))
            step = max(1, int(rate * AUDIO_CHUNK_S))
            for start in range(0, pcm.shape[0], step):
                sink(ev.BotAudio(pcm[start : start + step], rate, channels))
                await asyncio.sleep(0)  # let other sessions run between chunks
            sink(ev.AudioEnd())
            sink(ev.BotSpeaking(False))
        sink(ev.TurnEnd())
