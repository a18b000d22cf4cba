"""Live API session setup over HTTP: ``POST {live}/connect`` and ``POST {live}/disconnect``.

``/connect`` returns where to meet the character (a LiveKit ``room_url`` + participant ``token``);
the WebRTC part is :mod:`bridge.backends.live.livekit`. Failures come back as
:class:`~bridge.backends.errors.ConvaiHTTPError` with stable codes, never with the API key in them.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import aiohttp

from bridge.backends.errors import (
    ConvaiHTTPError,
    error_from_response,
    scrub,
    timeout_error,
    unreachable_error,
)


@dataclass(frozen=True)
class ConnectResult:
    """The useful part of a 200 ``/connect`` answer; ``raw`` keeps every field the server sent."""

    session_id: str
    room_url: str
    token: str = field(repr=False)
    room_name: str | None = None
    character_session_id: str | None = None
    request_trace_id: str | None = None
    raw: Mapping[str, Any] = field(default_factory=dict, repr=False)


def _join(base: str, path: str) -> str:
    return base.rstrip("/") + path


def _optional_str(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def parse_connect_response(body: Any) -> ConnectResult:
    """Validate a 200 body; a body without ``session_id``/``room_url`` is ``convai_bad_response``."""
    if not isinstance(body, Mapping):
        raise ConvaiHTTPError(200, "convai_bad_response", "/connect answered with a non-object body", False)
    session_id = body.get("session_id")
    room_url = body.get("room_url")
    token = body.get("token")
    missing = [
        name
        for name, value in (("session_id", session_id), ("room_url", room_url))
        if not isinstance(value, str) or not value
    ]
    if missing or not isinstance(token, str):
        missing += [] if isinstance(token, str) else ["token"]
        raise ConvaiHTTPError(
            200, "convai_bad_response", f"/connect answer lacks {', '.join(missing)}", False
        )
    return ConnectResult(
        session_id=session_id,
        room_url=room_url,
        token=token,
        room_name=_optional_str(body.get("room_name")),
        character_session_id=_optional_str(body.get("character_session_id")),
        request_trace_id=_optional_str(body.get("request_trace_id")),
        raw=dict(body),
    )


async def connect_session(
    http: aiohttp.ClientSession,
    live_url: str,
    api_key: str,
    body: dict[str, Any],
    timeout: float,
) -> ConnectResult:
    """Start a Live API session for ``body["character_id"]``; raises ConvaiHTTPError."""
    url = _join(live_url, "/connect")
    secrets = (api_key,)
    headers = {"X-API-Key": api_key, "Content-Type": "application/json"}
    try:
        async with asyncio.timeout(timeout):
            async with http.post(url, data=json.dumps(body), headers=headers) as resp:
                text = await resp.text(errors="replace")
                if resp.status >= 300:
                    raise error_from_response(resp.status, text, resp.headers, secrets=secrets)
    except ConvaiHTTPError:
        raise
    except TimeoutError:
        raise timeout_error("POST /connect", timeout) from None
    except (aiohttp.ClientError, OSError) as exc:
        raise unreachable_error("POST /connect", exc, secrets=secrets) from None
    try:
        parsed = json.loads(text)
    except ValueError:
        raise ConvaiHTTPError(
            resp.status, "convai_bad_response", scrub("/connect answered with non-JSON: " + text[:80], secrets),
            False,
        ) from None
    return parse_connect_response(parsed)


async def disconnect_session(
    http: aiohttp.ClientSession, live_url: str, session_id: str, timeout: float = 5.0
) -> None:
    """Tell the Live API the session is over (no auth needed); raises ConvaiHTTPError on failure.

    Leaving the LiveKit room already ends the session; this call frees it server-side at once.
    """
    url = _join(live_url, "/disconnect")
    try:
        async with asyncio.timeout(timeout):
            async with http.post(url, params={"session_id": session_id}) as resp:
                text = await resp.text(errors="replace")
                if resp.status >= 300:
                    raise error_from_response(resp.status, text, resp.headers)
    except ConvaiHTTPError:
        raise
    except TimeoutError:
        raise timeout_error("POST /disconnect", timeout) from None
    except (aiohttp.ClientError, OSError) as exc:
        raise unreachable_error("POST /disconnect", exc) from None


NO_SESSION_IDS = ("", "-1")
_STALE_WORDING = ("character_session_id", "character session", "session id", "session_id", "invalid uuid")


def known_session_id(value: str | None) -> str | None:
    """A character_session_id worth sending: ``"-1"`` and empty mean "no session" (Convai clients' sentinel)."""
    if value is None or value.strip() in NO_SESSION_IDS:
        return None
    return value


def is_stale_session(exc: ConvaiHTTPError) -> bool:
    """Whether ``/connect`` refused the character_session_id itself (unknown, expired or malformed).

    Unity's SDK expects 400 ``Invalid character_session_id`` (also "invalid uuid" / "invalid session
    id"); the docs list 404 ``session_not_found``. Both mean: start a fresh conversation instead.
    """
    if exc.status not in (400, 404):
        return False
    if exc.server_code in ("session_not_found", "invalid_character_session_id"):
        return True
    text = (exc.message or "").lower()
    return any(word in text for word in _STALE_WORDING)
