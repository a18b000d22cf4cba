"""A stock pipecat 1.14 bot (SmallWebRTC transport + pipecat's own RTVI processor) for the daemon's tests.

Runs in its own venv (`.venv-pipecat`, `make pipecat-venv`), so it imports nothing from `bridge`.
Only the AI services are stand-ins, written here on pipecat's base classes: an echo "LLM" that
streams "You said: <text>." in two-word chunks, and a tone "TTS" (440 Hz, 40 ms per character).
Everything RTVI — the handshake, `send-text`, `error-response`, the bot-* events and their order —
is pipecat's own code. Serves `POST/PATCH /api/offer` on 127.0.0.1 and prints `READY <port>`.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import AsyncGenerator

import aioice.ice
import numpy as np
from aiohttp import web

# Loopback-only ICE, as the daemon under test does (rtvi-smallwebrtc.md §11.3).
aioice.ice.get_host_addresses = lambda use_ipv4, use_ipv6: ["127.0.0.1"]

from pipecat.frames.frames import (  # noqa: E402
    Frame,
    LLMContextFrame,
    LLMFullResponseEndFrame,
    LLMFullResponseStartFrame,
    LLMTextFrame,
    TTSAudioRawFrame,
)
from pipecat.pipeline.pipeline import Pipeline  # noqa: E402
from pipecat.pipeline.worker import PipelineWorker  # noqa: E402
from pipecat.processors.aggregators.llm_context import LLMContext  # noqa: E402
from pipecat.processors.aggregators.llm_response_universal import LLMContextAggregatorPair  # noqa: E402
from pipecat.processors.frame_processor import FrameDirection, FrameProcessor  # noqa: E402
from pipecat.services.tts_service import TTSService  # noqa: E402
from pipecat.transports.base_transport import TransportParams  # noqa: E402
from pipecat.transports.smallwebrtc.request_handler import (  # noqa: E402
    SmallWebRTCPatchRequest,
    SmallWebRTCRequest,
    SmallWebRTCRequestHandler,
)
from pipecat.transports.smallwebrtc.transport import SmallWebRTCTransport  # noqa: E402
from pipecat.workers.runner import WorkerRunner  # noqa: E402

TTS_RATE = 24000


class EchoLLM(FrameProcessor):
    """Answers the last user message with "You said: <it>." streamed in two-word chunks."""

    async def process_frame(self, frame: Frame, direction: FrameDirection) -> None:
        await super().process_frame(frame, direction)
        if not isinstance(frame, LLMContextFrame):
            await self.push_frame(frame, direction)
            return
        user = [m for m in frame.context.get_messages() if isinstance(m, dict) and m.get("role") == "user"]
        content = user[-1].get("content") if user else ""
        if isinstance(content, list):
            content = " ".join(p.get("text", "") for p in content if isinstance(p, dict))
        words = f"You said: {str(content).strip().rstrip('.')}.".split()
        await self.push_frame(LLMFullResponseStartFrame())
        for i in range(0, len(words), 2):
            await asyncio.sleep(0.05)
            await self.push_frame(LLMTextFrame(("" if i == 0 else " ") + " ".join(words[i : i + 2])))
        await self.push_frame(LLMFullResponseEndFrame())


class ToneTTS(TTSService):
    """A 440 Hz tone, 40 ms per character (0.3–4 s), with 10 ms fades."""

    def __init__(self) -> None:
        super().__init__(push_start_frame=True, push_stop_frames=True, sample_rate=TTS_RATE)

    def can_generate_metrics(self) -> bool:
        return False

    async def run_tts(self, text: str, context_id: str) -> AsyncGenerator[Frame | None, None]:
        seconds = min(4.0, max(0.3, 0.04 * len(text)))
        n = int(seconds * TTS_RATE)
        pcm = 6000 * np.sin(2 * np.pi * 440 * np.arange(n) / TTS_RATE)
        fade = TTS_RATE // 100
        pcm[:fade] *= np.linspace(0, 1, fade)
        pcm[-fade:] *= np.linspace(1, 0, fade)
        data = pcm.astype("<i2").tobytes()
        chunk = TTS_RATE // 50 * 2  # 20 ms
        for i in range(0, len(data), chunk):
            yield TTSAudioRawFrame(data[i : i + chunk], TTS_RATE, 1, context_id=context_id)


async def run_bot(connection: object) -> None:
    transport = SmallWebRTCTransport(
        webrtc_connection=connection,
        params=TransportParams(audio_in_enabled=True, audio_out_enabled=True, audio_out_sample_rate=TTS_RATE),
    )
    aggregators = LLMContextAggregatorPair(LLMContext())
    pipeline = Pipeline(
        [transport.input(), aggregators.user(), EchoLLM(), ToneTTS(), transport.output(), aggregators.assistant()]
    )
    worker = PipelineWorker(pipeline, idle_timeout_secs=None)

    @transport.event_handler("on_client_disconnected")
    async def _gone(_transport: object, _client: object) -> None:
        await worker.cancel()

    await WorkerRunner(handle_sigint=False).run(worker)


async def main(port: int) -> None:
    handler = SmallWebRTCRequestHandler()
    tasks: set[asyncio.Task[None]] = set()

    async def offer(request: web.Request) -> web.Response:
        body = await request.json()

        async def start(connection: object) -> None:
            task = asyncio.create_task(run_bot(connection))
            tasks.add(task)
            task.add_done_callback(tasks.discard)

        answer = await handler.handle_web_request(SmallWebRTCRequest.from_dict(body), start)
        return web.json_response(answer)

    async def patch(request: web.Request) -> web.Response:
        body = await request.json()
        await handler.handle_patch_request(SmallWebRTCPatchRequest(**body))
        return web.json_response({"status": "success"})

    app = web.Application()
    app.router.add_post("/api/offer", offer)
    app.router.add_patch("/api/offer", patch)
    runner = web.AppRunner(app, handle_signals=False)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", port)
    await site.start()
    bound = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    print(f"READY {bound}", flush=True)
    try:
        await asyncio.Event().wait()
    finally:
        for task in tasks:
            task.cancel()
        await handler.close()
        await runner.cleanup()


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, default=0)
    args = parser.parse_args()
    try:
        asyncio.run(main(args.port))
    except KeyboardInterrupt:
        sys.exit(0)
