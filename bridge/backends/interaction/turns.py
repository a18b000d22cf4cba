"""What the two Interaction API backends share: one HTTP request per turn, run as a cancellable task.

A new user turn or an interrupt cancels the request in flight, so a late answer can never land in
the next turn. The character is looked up at open, so a wrong id or key fails there, not mid-game.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Coroutine
from typing import Any

from bridge.backends.base import Backend, BackendContext, OpenParams
from bridge.backends.interaction.http import post_json_reply
from bridge.backends.retry import with_retries
from bridge.wire.errors import ProtocolError


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
        return self.character_session_id or ""

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
