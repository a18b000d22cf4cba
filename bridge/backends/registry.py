"""Backend names on the wire → implementations. Imported lazily so a missing optional stack
(e.g. WebRTC) only affects the sessions that need it."""

from __future__ import annotations

import importlib

from bridge.backends.base import Backend
from bridge.wire.errors import ProtocolError

BACKENDS: dict[str, str] = {
    "live": "bridge.backends.live.backend:LiveBackend",
    "interaction": "bridge.backends.interaction.rest:RestBackend",
    "stream": "bridge.backends.interaction.sse:StreamBackend",
}


def backend_class(name: str) -> type[Backend]:
    target = BACKENDS.get(name)
    if target is None:
        raise ProtocolError("invalid_field", f"unknown backend {name!r}")
    module, _, attr = target.partition(":")
    try:
        return getattr(importlib.import_module(module), attr)
    except (ImportError, AttributeError) as exc:
        raise ProtocolError("unsupported", f"the {name} backend is not available: {exc}") from exc
