"""A send path over an aiortc data channel that may not be open yet.

The bot starts talking (``interaction-created``, ``bot-ready``) as soon as a client joins, often
before SCTP is up; messages are queued (bounded, like pipecat's 50-message queue but larger because
lip-sync traffic is dense) and flushed on open.
"""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Callable

from aiortc import RTCDataChannel

log = logging.getLogger(__name__)


class ChannelSender:
    def __init__(self, max_queue: int = 1000, on_open: Callable[[], None] | None = None) -> None:
        self._channel: RTCDataChannel | None = None
        self._queue: deque[bytes | str] = deque(maxlen=max_queue)
        self._on_open = on_open
        self.sent = 0

    @property
    def is_open(self) -> bool:
        return self._channel is not None and self._channel.readyState == "open"

    def attach(self, channel: RTCDataChannel) -> None:
        self._channel = channel
        if channel.readyState == "open":
            self._opened()
        else:
            channel.on("open", self._opened)

    def _opened(self) -> None:
        channel = self._channel
        if channel is None:
            return
        while self._queue and channel.readyState == "open":
            self._send_now(channel, self._queue.popleft())
        if self._on_open is not None:
            callback, self._on_open = self._on_open, None
            callback()

    def send(self, data: bytes | str) -> None:
        channel = self._channel
        if channel is not None and channel.readyState == "open":
            self._send_now(channel, data)
        elif channel is None or channel.readyState == "connecting":
            self._queue.append(data)

    def _send_now(self, channel: RTCDataChannel, data: bytes | str) -> None:
        try:
            channel.send(data)
            self.sent += 1
        except Exception as exc:  # closed underneath us: drop, the peer is going away
            log.debug("data channel send failed: %s", exc)
