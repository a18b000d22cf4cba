"""Emulator-only admin routes (no Convai counterpart; unauthenticated, so bind to loopback).

``POST /_emulator/faults``  JSON object, one of
    ``{"status": 429, "count": 2, "paths": ["/character/getResponse"], "retry_after_s": 3}``
    ``{"status": 500, "probability": 0.2}``            (seeded random, repeatable per run)
    ``{"latency_ms": 200}``                             (every request, until cleared)
    ``{"drop_stream_after": 2, "paths": ["/connect/stream"], "count": 1}``
    ``{"hang_ms": 5000, "count": 1}``                   (outlast a client timeout, then answer)
    ``{"clear": true}``                                 (remove all rules; may be combined with a rule)
    ``{"rules": [{...}, {...}]}``                       (several at once)
  Rule semantics: ``convai_emulator.faults``. → 200 ``{"rules": [...], "fired_requests": n}``;
  400 ``{"detail": "..."}`` for an invalid rule.
``GET /_emulator/faults``   the active rules.
``GET /_emulator/state``    ``{"live_sessions": [...], "conversations": {"count", "items"}, "requests": {route: n},
                             "statuses": {route: {status: n}}, "faults": {...}, "audio_cache": {...}}``
``POST /_emulator/reset``   clear request counters and fault rules (sessions are kept).
``GET /_emulator/roster``   the characters: ``[{"character_id", "name", "long_term_memory", "flags", "profile"}]``.
``POST /_emulator/profile`` choose the server profile (``convai_emulator.profiles``) for sessions that
    connect afterwards: ``{"profile": "websdk"}`` (the default for every character),
    ``{"profile": "legacy", "character_id": "..."}`` (one character), ``{"options": {"bot_ready_delay_s": 2}}``
    alongside a profile overrides its tunables, ``{"clear": true}`` restores the run's choice.
    → 200 the selection (as GET); 400 ``{"detail": "..."}`` for an unknown profile, option or character.
``GET /_emulator/profile``  ``{"default": {...}, "characters": {id: {...}}, "profiles": {name: {summary, reference}}}``.
"""

from __future__ import annotations

import dataclasses
import json
from typing import Any

from aiohttp import web

from convai_emulator.faults import FaultSpecError
from convai_emulator.profiles import ProfileError, get_profile
from convai_emulator.state import CONFIG, CONVERSATIONS, FAULTS, LIVE_SESSIONS, PROFILES, ROSTER, STATS, SYNTH

PREFIX = "/_emulator/"


def _json(data: Any, status: int = 200) -> web.Response:
    return web.json_response(data, status=status)


async def _object_body(request: web.Request) -> dict[str, Any] | None:
    """The request's JSON body when it is an object; None for anything else (answered 400)."""
    try:
        payload = await request.json()
    except (json.JSONDecodeError, UnicodeDecodeError):
        return None
    return payload if isinstance(payload, dict) else None


async def post_faults(request: web.Request) -> web.Response:
    payload = await _object_body(request)
    if payload is None:
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
                   "flags": dataclasses.asdict(c.flags), "profile": c.profile} for c in request.app[ROSTER]])


async def post_profile(request: web.Request) -> web.Response:
    payload = await _object_body(request)
    if payload is None:
        return _json({"detail": "body must be a JSON object"}, 400)
    selection = request.app[PROFILES]
    try:
        if payload.get("clear") is True:  # back to the run's --profile, not to "current"
            config = request.app[CONFIG]
            selection.per_character.clear()
            selection.default = get_profile(config.profile, config.profile_options)
            payload = {k: v for k, v in payload.items() if k != "clear"}
            if "profile" not in payload:
                return _json(selection.snapshot())
        selection.configure(payload, {c.character_id for c in request.app[ROSTER]})
    except ProfileError as exc:
        return _json({"detail": str(exc)}, 400)
    return _json(selection.snapshot())


async def get_profile_route(request: web.Request) -> web.Response:
    return _json(request.app[PROFILES].snapshot())


def add_routes(app: web.Application) -> None:
    app.router.add_post(PREFIX + "faults", post_faults)
    app.router.add_get(PREFIX + "faults", get_faults)
    app.router.add_get(PREFIX + "state", get_state)
    app.router.add_post(PREFIX + "reset", post_reset)
    app.router.add_get(PREFIX + "roster", get_roster)
    app.router.add_post(PREFIX + "profile", post_profile)
    app.router.add_get(PREFIX + "profile", get_profile_route)
