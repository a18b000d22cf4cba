"""What the two Interaction API backends share: one HTTP request per turn, run as a cancellable task.

A new user turn or an interrupt cancels the request in flight, so a late answer can never land in
the next turn. The character is looked up at open so a wrong API key fails there, not mid-game; the
lookup is optional otherwise (`getResponse` is what a conversation needs), so any other failure of it,
a 404 included, is logged and the session opens anyway.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Coroutine
from typing import Any

from bridge.backends.base import Backend, BackendContext, OpenParams
from bridge.backends.errors import ConvaiHTTPError
from bridge.backends.interaction.http import post_json_reply
from bridge.backends.retry import with_retries
from bridge.wire.errors import ProtocolError

log = logging.getLogger(__name__)

# Lookup failures that no later request could get past: the session fails at open with them.
FATAL_LOOKUP_CODES = ("convai_unauthorized", "convai_forbidden")


class OneRequestPerTurn(Backend):
    def __init__(self, ctx: BackendContext, params: OpenParams) -> None:
        super().__init__(ctx, params)
        if not ctx.config.api_key:
            raise ProtocolError("convai_unauthorized", "the daemon has no Convai API key configured", fatal=True)
        self._task: asyncio.Task[None] | None = None

    @property
    def _key(self) -> str:
        return self.ctx.config.api_key.reveal() or ""

    async def open(self) -> str:
        try:
            # Bounded as a whole (retries included): an optional lookup must not hold the session up.
            await asyncio.wait_for(self._lookup(), self.ctx.config.request_timeout_s)
        except TimeoutError:
            log.warning("%s: character lookup timed out; opening anyway", self.ctx.label or self.params.character_id)
        except ConvaiHTTPError as exc:
            if exc.code in FATAL_LOOKUP_CODES:
                raise
            log.warning(
                "%s: character lookup failed (%s: %s); opening anyway",
                self.ctx.label or self.params.character_id,
                exc.code,
                exc.message,
            )
        return self.character_session_id or ""

    async def _lookup(self) -> None:
        cfg = self.ctx.config
        await with_retries(
            lambda: post_json_reply(
                self.ctx.http,
                cfg.rest_url.rstrip("/") + "/character/get",
                what="character lookup",
                timeout=cfg.request_timeout_s,
                secrets=[self._key],
                json={"charID": self.params.character_id},
                headers={"CONVAI-API-KEY": self._key},
            ),
            max_retries=cfg.max_retries,
            base=cfg.retry_base_s,
            cap=cfg.retry_cap_s,
        )

    async def close(self) -> None:
        await self._cancel()

    async def interrupt(self) -> dict[str, Any] | None:
        await self._cancel()
        return None

    async def _cancel(self) -> None:
        task, self._task = self._task, None
        if task and not task.done():
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def _start(self, turn: Coroutine[Any, Any, None]) -> None:
        await self._cancel()
        self._task = asyncio.get_running_loop().create_task(turn)
