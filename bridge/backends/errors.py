"""HTTP failures from Convai's surfaces, mapped to stable codes.

Every backend (Live ``/connect``, REST ``getResponse``, SSE ``/connect/stream``) turns a failed HTTP
exchange into one :class:`ConvaiHTTPError`, so the session layer decides on retries and on what the
engine is told from ``code`` and ``retryable`` alone, never from a status number or a body shape.

The message is taken from the error body the way Convai's web SDK reads it: ``message``, then
``error``, then ``detail`` (a string, or FastAPI's 422 list of ``{loc, msg}`` items). Secrets passed
by the caller (the API key) are scrubbed from it, and it is capped in length.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Iterable, Mapping
from email.utils import parsedate_to_datetime
from typing import Any

MAX_MESSAGE_CHARS = 500
PARTIAL_SECRET_CHARS = 8  # this many consecutive characters of a secret count as an echo of it

_STATUS_CODES: dict[int, str] = {
    400: "convai_bad_request",
    401: "convai_unauthorized",
    403: "convai_forbidden",
    404: "convai_not_found",
    408: "convai_timeout",
    409: "convai_conflict",
    422: "convai_validation",
    429: "convai_rate_limited",
}

_DEFAULT_MESSAGES: dict[str, str] = {
    "convai_bad_request": "Convai rejected the request",
    "convai_unauthorized": "Convai did not accept the API key",
    "convai_forbidden": "the API key may not use this resource",
    "convai_not_found": "Convai did not find the character or session",
    "convai_timeout": "Convai did not answer in time",
    "convai_conflict": "the request conflicts with an existing session",
    "convai_validation": "Convai could not validate the request body",
    "convai_rate_limited": "Convai's rate or concurrency limit was reached",
    "convai_server_error": "Convai had an internal error",
    "convai_http_error": "Convai answered with an unexpected HTTP status",
}


class ConvaiHTTPError(Exception):
    """One failed exchange with a Convai HTTP surface.

    ``status`` is the HTTP status, or ``None`` when no response arrived (timeout, connection
    failure). ``retryable`` is true for 408/429/5xx, timeouts and unreachable hosts.
    ``retry_after`` holds the server's ``Retry-After`` in seconds when it sent one.
    ``server_code`` keeps a machine code from the body (e.g. ``invalid_api_key``) when present.
    """

    def __init__(
        self,
        status: int | None,
        code: str,
        message: str,
        retryable: bool,
        *,
        retry_after: float | None = None,
        server_code: str | None = None,
    ) -> None:
        super().__init__(f"{code}: {message}" if status is None else f"{code} (HTTP {status}): {message}")
        self.status = status
        self.code = code
        self.message = message
        self.retryable = retryable
        self.retry_after = retry_after
        self.server_code = server_code

    def to_dict(self) -> dict[str, Any]:
        """Plain fields for logs and protocol error events (never contains secrets)."""
        return {
            "status": self.status,
            "code": self.code,
            "message": self.message,
            "retryable": self.retryable,
            "retry_after": self.retry_after,
            "server_code": self.server_code,
        }


def code_for_status(status: int) -> str:
    """Stable code for an HTTP status (5xx → ``convai_server_error``)."""
    if status in _STATUS_CODES:
        return _STATUS_CODES[status]
    if 500 <= status <= 599:
        return "convai_server_error"
    return "convai_http_error"


def is_retryable_status(status: int) -> bool:
    return status in (408, 429) or 500 <= status <= 599


def parse_retry_after(value: str | None, *, now: float | None = None) -> float | None:
    """Seconds to wait from a ``Retry-After`` header (delta-seconds or HTTP-date), else None."""
    if not value:
        return None
    value = value.strip()
    try:
        seconds = float(value)
    except ValueError:
        try:
            when = parsedate_to_datetime(value)
        except (TypeError, ValueError, IndexError):
            return None
        if when is None:
            return None
        seconds = when.timestamp() - (time.time() if now is None else now)
    if not math.isfinite(seconds):
        return None
    return max(0.0, seconds)


def _describe_validation_item(item: Any) -> str:
    if not isinstance(item, Mapping):
        return str(item)
    msg = str(item.get("msg") or item.get("message") or "")
    loc = item.get("loc")
    if isinstance(loc, list | tuple) and loc:
        where = ".".join(str(part) for part in loc if part != "body") or ".".join(str(p) for p in loc)
        return f"{where}: {msg}" if msg else where
    return msg


def _text_of(value: Any) -> str | None:
    """A human message from one of the body's message-bearing fields."""
    if value is None:
        return None
    if isinstance(value, str):
        return value.strip() or None
    if isinstance(value, list):
        parts = [p for p in (_describe_validation_item(item) for item in value) if p]
        return "; ".join(parts) or None
    if isinstance(value, Mapping):
        for key in ("message", "msg", "detail", "error"):
            text = _text_of(value.get(key))
            if text:
                return text
        return None
    return str(value)


def message_from_body(body: Any) -> str | None:
    """``message``, then ``error``, then ``detail`` — the order Convai's web SDK reads them."""
    if isinstance(body, Mapping):
        for key in ("message", "error", "detail"):
            text = _text_of(body.get(key))
            if text:
                return text
        return None
    if isinstance(body, str):
        return body.strip() or None
    return None


def server_code_from_body(body: Any) -> str | None:
    if not isinstance(body, Mapping):
        return None
    for holder in (body, body.get("detail"), body.get("error")):
        if isinstance(holder, Mapping):
            for key in ("error_code", "code"):
                value = holder.get(key)
                if isinstance(value, str) and value:
                    return value
    return None


def _secret_spans(text: str, secret: str) -> list[tuple[int, int]]:
    """Where `text` holds any run of at least PARTIAL_SECRET_CHARS characters of `secret`.

    Servers echo keys cut short (a prefix in an error body, a suffix in "key ending in …"), so
    every window of the secret is looked for, and overlapping hits merge into one span.
    """
    width = min(len(secret), PARTIAL_SECRET_CHARS)
    lowered, needle = text.lower(), secret.lower()
    spans: list[tuple[int, int]] = []
    for start in range(len(needle) - width + 1):
        window = needle[start : start + width]
        at = lowered.find(window)
        while at != -1:
            spans.append((at, at + width))
            at = lowered.find(window, at + 1)
    spans.sort()
    merged: list[tuple[int, int]] = []
    for lo, hi in spans:
        if merged and lo <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(hi, merged[-1][1]))
        else:
            merged.append((lo, hi))
    return merged


def scrub(text: str, secrets: Iterable[str | None]) -> str:
    """Remove secrets, whole or in part, from text that may echo request data, and cap its length."""
    for secret in secrets:
        if not secret or len(secret) < 4:
            continue
        for lo, hi in reversed(_secret_spans(text, secret)):
            text = text[:lo] + "[redacted]" + text[hi:]
    if len(text) > MAX_MESSAGE_CHARS:
        text = text[: MAX_MESSAGE_CHARS - 1] + "…"
    return text


def error_from_response(
    status: int,
    body_text: str,
    headers: Mapping[str, str] | None = None,
    *,
    secrets: Iterable[str | None] = (),
) -> ConvaiHTTPError:
    """Build the error for a non-2xx response from its status, body text and headers."""
    secrets = list(secrets)
    try:
        body: Any = json.loads(body_text) if body_text else None
    except ValueError:
        body = body_text
    code = code_for_status(status)
    message = message_from_body(body) or _DEFAULT_MESSAGES.get(code, "HTTP error")
    retry_after = parse_retry_after((headers or {}).get("Retry-After"))
    return ConvaiHTTPError(
        status,
        code,
        scrub(message, secrets),
        is_retryable_status(status),
        retry_after=retry_after,
        server_code=server_code_from_body(body),
    )


def timeout_error(what: str, seconds: float) -> ConvaiHTTPError:
    return ConvaiHTTPError(None, "convai_timeout", f"{what} got no answer within {seconds:g} s", True)


def unreachable_error(what: str, exc: BaseException, *, secrets: Iterable[str | None] = ()) -> ConvaiHTTPError:
    detail = scrub(f"{type(exc).__name__}: {exc}", secrets)
    return ConvaiHTTPError(None, "convai_unreachable", f"{what} failed: {detail}", True)
