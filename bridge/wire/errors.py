"""The protocol's error type: every refusal the daemon sends carries one of the schema's stable codes."""

from __future__ import annotations

from bridge.wire.schema import load_schema


class ProtocolError(Exception):
    """A request the other side cannot honour; becomes an `error` message with the same id/sid."""

    def __init__(
        self,
        code: str,
        message: str,
        req_id: int | None = None,
        sid: str | None = None,
        *,
        status: int | None = None,
        retry_after_ms: int | None = None,
        fatal: bool | None = None,
    ) -> None:
        super().__init__(message)
        errors = load_schema().errors
        if code not in errors:
            code = "internal"
        self.code = code
        self.message = message
        self.req_id = req_id
        self.sid = sid
        self.status = status
        self.retry_after_ms = retry_after_ms
        self.retryable: bool = errors[code]["retryable"]
        self.fatal: bool = errors[code]["fatal"] if fatal is None else fatal

    def fields(self) -> dict[str, object]:
        out: dict[str, object] = {
            "id": self.req_id,
            "sid": self.sid,
            "code": self.code,
            "message": self.message,
            "retryable": self.retryable,
            "fatal": self.fatal,
        }
        if self.status is not None:
            out["status"] = self.status
        if self.retry_after_ms is not None:
            out["retry_after_ms"] = self.retry_after_ms
        return out
