"""`stream` backend: Convai's SSE `POST /connect/stream`, text in and streamed text out.

Every turn is one request; the character session id from `connection-started` is sent back on the
next turn (never "-1") so context is kept. A stream that ends without `connection-stoppped` is a
dropped stream: the engine gets `convai_stream_dropped` and the turn ends aborted.
"""

from __future__ import annotations

import logging
from typing import Any

import aiohttp

from bridge.backends.errors import ConvaiHTTPError
from bridge.backends.interaction.http import request
from bridge.backends.interaction.turns import OneRequestPerTurn
from bridge.backends.retry import with_retries
from bridge.translate import events as ev
from bridge.translate.sse import parse_sse_lines, translate_sse

log = logging.getLogger(__name__)


class StreamBackend(OneRequestPerTurn):
    name = "stream"
    capabilities = ("text_stream", "interrupt")

    async def send_text(self, text: str) -> dict[str, Any] | None:
        await self._start(self._turn(text))
        return None

    def _form(self, text: str) -> aiohttp.FormData:
        form = aiohttp.FormData()
        form.add_field("character_id", self.params.character_id)
        form.add_field("text_input", text)
        if self.character_session_id and self.character_session_id != "-1":
            form.add_field("character_session_id", self.character_session_id)
        return form

    async def _turn(self, text: str) -> None:
        sink = self.ctx.sink
        cfg = self.ctx.config
        attempt = {"started": False}

        async def run() -> None:
            url = cfg.live_url.rstrip("/") + "/connect/stream"
            async with request(
                self.ctx.http,
                "POST",
                url,
                what="connect/stream",
                timeout=cfg.request_timeout_s,
                secrets=[self._key],
                data=self._form(text),
                headers={"X-API-Key": self._key, "Accept": "text/event-stream"},
            ) as resp:
                buffer = ""
                async for chunk in resp.content.iter_any():
                    buffer += chunk.decode("utf-8", errors="replace")
                    payloads, buffer = parse_sse_lines(buffer)
                    for payload in payloads:
                        events, done = translate_sse(payload)
                        for event in events:
                            attempt["started"] = True
                            if isinstance(event, ev.Ready):
                                self.character_session_id = event.character_session_id
                            sink(event)
                        if done:
                            return
            raise ConvaiHTTPError(None, "convai_stream_dropped", "the stream ended before connection-stoppped", True)

        async def guarded() -> None:
            try:
                await run()
            except ConvaiHTTPError as exc:
                if attempt["started"]:
                    # Output already reached the engine: a retry would duplicate it.
                    exc.retryable = False
                    raise _Final(exc) from exc
                raise

        try:
            await with_retries(guarded, max_retries=cfg.max_retries, base=cfg.retry_base_s, cap=cfg.retry_cap_s)
        except _Final as wrapped:
            exc = wrapped.error
            sink(ev.BackendError(exc.code, exc.message, retryable=True, status=exc.status))
            sink(ev.TurnEnd(aborted=True, reason=exc.code))
            return
        except ConvaiHTTPError as exc:
            sink(ev.BackendError(exc.code, exc.message, retryable=exc.retryable, status=exc.status))
            sink(ev.TurnEnd(aborted=True, reason=exc.code))
            return
        sink(ev.TurnEnd())


class _Final(ConvaiHTTPError):
    """A failure after partial output: reported, never retried."""

    def __init__(self, error: ConvaiHTTPError) -> None:
        super().__init__(error.status, error.code, error.message, False)
        self.error = error
