"""One HTTP exchange with Convai's REST/SSE hosts, with failures mapped to ConvaiHTTPError.

The REST gateway reports errors as {"ERROR": ...}; it is normalised here so the shared error
mapping reads it like every other body.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import aiohttp

from bridge.backends.errors import ConvaiHTTPError, error_from_response, timeout_error, unreachable_error


def _normalise_body(text: str) -> str:
    try:
        body = json.loads(text)
    except ValueError:
        return text
    if isinstance(body, dict):
        if "ERROR" in body and "error" not in body:
            body = {**body, "error": body["ERROR"]}
        if isinstance(body.get("text"), str) and "message" not in body and "detail" not in body:
            body = {**body, "message": body["text"]}
    return json.dumps(body)


@asynccontextmanager
async def request(
    http: aiohttp.ClientSession,
    method: str,
    url: str,
    *,
    what: str,
    timeout: float,
    secrets: list[str | None],
    **kwargs: Any,
) -> AsyncIterator[aiohttp.ClientResponse]:
    """Yield a 2xx response; raise ConvaiHTTPError for anything else."""
    try:
        async with http.request(
            method, url, timeout=aiohttp.ClientTimeout(total=None, sock_connect=timeout, sock_read=timeout), **kwargs
        ) as resp:
            if resp.status >= 300:
                text = await asyncio.wait_for(resp.text(), timeout)
                raise error_from_response(resp.status, _normalise_body(text), dict(resp.headers), secrets=secrets)
            yield resp
    except ConvaiHTTPError:
        raise
    except TimeoutError:
        raise timeout_error(what, timeout) from None
    except aiohttp.ClientPayloadError as exc:
        raise ConvaiHTTPError(None, "convai_stream_dropped", f"{what}: the answer ended early", True) from exc
    except aiohttp.ClientError as exc:
        raise unreachable_error(what, exc, secrets=secrets) from None


async def post_json_reply(
    http: aiohttp.ClientSession, url: str, *, what: str, timeout: float, secrets: list[str | None], **kwargs: Any
) -> dict[str, Any]:
    async with request(http, "POST", url, what=what, timeout=timeout, secrets=secrets, **kwargs) as resp:
        text = await asyncio.wait_for(resp.text(), timeout)
    try:
        body = json.loads(text)
    except ValueError:
        raise ConvaiHTTPError(200, "convai_bad_response", f"{what} answered with non-JSON", False) from None
    if not isinstance(body, dict):
        raise ConvaiHTTPError(200, "convai_bad_response", f"{what} answered with a non-object", False)
    return body
