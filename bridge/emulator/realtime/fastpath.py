"""Cheaper microphone receive for the bot, reusing the daemon's aiortc audio hooks when present.

aiortc decodes each received audio frame on a per-receiver thread and hands it back to the event
loop; for a 20 ms Opus frame the hand-off costs more than the decode. ``bridge.backends.live.fastaudio``
(the daemon's transports) decodes inline and in mono for receivers created inside its
``fast_receive()`` scope. The emulator's peer connections create their receivers inside
:func:`receive_scope`, so the bot's VAD path gets the same saving; without that module (or with
``BRIDGE_AIORTC_HOOKS=0``) aiortc's own path is used unchanged.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

try:
    from bridge.backends.live import fastaudio
except ImportError:  # the emulator also runs without the daemon's live backend
    fastaudio = None  # type: ignore[assignment]


def install() -> bool:
    if fastaudio is None:
        return False
    return bool(fastaudio.install().get("inline_decode"))


@contextlib.contextmanager
def receive_scope() -> Iterator[None]:
    """Audio receivers created in this block decode inline (when the hooks are installed)."""
    if fastaudio is None:
        yield
        return
    with fastaudio.fast_receive():
        yield
