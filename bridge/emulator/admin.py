"""Emulator-only admin routes (no Convai counterpart; unauthenticated, so bind to loopback).

``POST /_emulator/faults``  JSON object, one of
    ``{"status": 429, "count": 2, "paths": ["/character/getResponse"], "retry_after_s": 3}``
    ``{"status": 500, "probability": 0.2}``            (seeded random, repeatable per run)
    ``{"latency_ms": 200}``                             (every request, until cleared)
    ``{"drop_stream_after": 2, "paths": ["/connect/stream"], "count": 1}``
    ``{"hang_ms": 5000, "count": 1}``                   (outlast a client timeout, then answer)
    ``{"clear": true}``                                 (remove all rules; may be combined with a rule)
    ``{"rules": [{...}, {...}]}``                       (several at once)
  Rule semantics: ``bridge.emulator.faults``. → 200 ``{"rules": [...], "fired_requests": n}``;
  400 ``{"detail": "..."}`` for an invalid rule.
``GET /_emulator/faults``   the active rules.
``GET /_emulator/state``    ``{"live_sessions": [...], "conversations": {"count", "items"}, "requests": {route: n},
                             "statuses": {route: {status: n}}, "faults": {...}, "audio_cache": {...}}``
``POST /_emulator/reset``   clear request counters and fault rules (sessions are kept).
``GET /_emulator/roster``   the characters: ``[{"character_id", "name", "long_term_memory", "flags"}]``.
"""

from __future__ import annotations

import dataclasses
import json
from typing import Any

from aiohttp import web

from bridge.emulator.faults import FaultSpecError
from bridge.emulator.state import CONVERSATIONS, FAULTS, LIVE_SESSIONS, ROSTER, STATS, SYNTH

PREFIX = "/_emulator/"


def _json(data: Any, status: int = 200) -> web.Response:
    return web.json_response(data, status=status)


async def post_faults(request: web.Request) -> web.Response:
    try:
        payload = await request.json()
    except (json.JSONDecodeError, UnicodeDecodeError):
        return _json({"detail": "body must be a JSON object"}, 400)
    if not isinstance(payload, dict):
        return _json({"detail": "body must be a JSON object"}, 400)
    injector = request.app[FAULTS]
    try:
        injector.configure(payload)
    except FaultSpecError as exc:
        return _json({"detail": str(exc)}, 400)
    return _json(injector.snapshot())


async def get_faults(request: web.Request) -> web.Response:
    return _json(request.app[FAULTS].snapshot())


async def get_state(request: web.Request) -> web.Response:
    app = request.app
    conversations = app[CONVERSATIONS]
    return _json({
        "live_sessions": [s.summary() for s in app[LIVE_SESSIONS]],
        "conversations": {"count": len(conversations), "items": conversations.snapshot()[-200:]},
        **app[STATS].snapshot(),
        "faults": app[FAULTS].snapshot(),
        "audio_cache": app[SYNTH].stats(),
    })


async def post_reset(request: web.Request) -> web.Response:
    request.app[STATS].reset()
    request.app[FAULTS].clear()
    return _json({"status": "reset"})


async def get_roster(request: web.Request) -> web.Response:
    return _json([{"character_id": c.character_id, "name": c.name, "long_term_memory": c.long_term_memory,
                   "flags": dataclasses.asdict(c.flags)} for c in request.app[ROSTER]])


def add_routes(app: web.Application) -> None:
    app.router.add_post(PREFIX + "faults", post_faults)
    app.router.add_get(PREFIX + "faults", get_faults)
    app.router.add_get(PREFIX + "state", get_state)
    app.router.add_post(PREFIX + "reset", post_reset)
    app.router.add_get(PREFIX + "roster", get_roster)
