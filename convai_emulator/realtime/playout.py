"""The bot's voice clock: one pacer per bot feeds pre-encoded packets to every listening track.

A single 20 ms tick decides what is "being said" right now, so lip-sync and speaking events are
emitted against the packets actually handed to the peer connections, and an interrupt takes effect
on the next tick. Tracks hold at most a few packets: a sender that is not running yet (ICE still
connecting) drops old audio instead of bursting it later.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import av
from aiortc.mediastreams import MediaStreamError, MediaStreamTrack

from .opus import FRAME_SAMPLES, FRAME_SECONDS, make_packet, silence_packet

log = logging.getLogger(__name__)

TRACK_BACKLOG = 5  # packets (100 ms) a track may hold before old ones are dropped
# Opus DTX, as WebRTC endpoints use it: while nothing is said, one comfort packet per 400 ms instead of
# 50 silent packets a second. Timestamps keep advancing, so receivers see the gap for what it is, and
# neither side spends CPU on encrypting, sending and decoding silence.
DTX_INTERVAL = 20
DTX_HANGOVER = 10  # silent packets still sent after speech: they flush receivers' jitter buffers


class BotAudioTrack(MediaStreamTrack):
    """An audio track whose frames are Opus packets pushed by a :class:`Speaker`."""

    kind = "audio"

    def __init__(self, track_id: str | None = None) -> None:
        super().__init__()
        if track_id:
            self._id = track_id
        self._pending: deque[tuple[bytes, int]] = deque(maxlen=TRACK_BACKLOG)
        self._waiter: asyncio.Future[None] | None = None
        self._pts = 0
        self.packets_sent = 0

    def skip(self) -> None:
        """A 20 ms frame not sent (DTX): only the clock moves."""
        self._pts += FRAME_SAMPLES

    def push(self, payload: bytes) -> None:
        self._pending.append((payload, self._pts))
        self._pts += FRAME_SAMPLES
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    async def recv(self) -> av.Packet:  # type: ignore[override]
        while not self._pending:
            if self.readyState != "live":
                raise MediaStreamError
            self._waiter = asyncio.get_running_loop().create_future()
            try:
                await self._waiter
            finally:
                self._waiter = None
        payload, pts = self._pending.popleft()
        self.packets_sent += 1
        return make_packet(payload, pts)

    def stop(self) -> None:
        super().stop()
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)


FrameHook = Callable[[int], None]


@dataclass
class Utterance:
    """What the speaker plays: packets plus a hook called with each frame index as it goes out.

    ``audible=False`` keeps the timing (hooks, events) but sends silence on the tracks; used when
    audio is routed over the data channel only.
    """

    packets: Sequence[bytes]
    on_frame: FrameHook | None = None
    audible: bool = True
    done: asyncio.Future[bool] = field(default_factory=lambda: asyncio.get_running_loop().create_future())
    position: int = 0


class Speaker:
    """Paces 20 ms frames to all attached tracks; silence between utterances."""

    def __init__(self) -> None:
        self._tracks: list[BotAudioTrack] = []
        self._queue: deque[Utterance] = deque()
        self._current: Utterance | None = None
        self._task: asyncio.Task[None] | None = None
        self._silence = silence_packet()
        self._silent_ticks = 0
        self._closed = False
        self.ticks = 0
        self.late_resyncs = 0

    # --- tracks -----------------------------------------------------------------------------
    def new_track(self, track_id: str | None = None) -> BotAudioTrack:
        track = BotAudioTrack(track_id)
        self._tracks.append(track)
        track.on("ended", lambda: self._drop_track(track))
        self._ensure_running()
        return track

    def _drop_track(self, track: BotAudioTrack) -> None:
        with contextlib.suppress(ValueError):
            self._tracks.remove(track)

    # --- speech -----------------------------------------------------------------------------
    @property
    def speaking(self) -> bool:
        return self._current is not None

    @property
    def frames_played(self) -> int:
        return self._current.position if self._current else 0

    def play(self, utterance: Utterance) -> asyncio.Future[bool]:
        """Queue an utterance; the future resolves True when it finished, False when cut."""
        self._queue.append(utterance)
        self._ensure_running()
        return utterance.done

    def stop(self) -> int:
        """Cut the current utterance and anything queued; returns frames of it already sent."""
        played = 0
        if self._current is not None:
            played = self._current.position
            if not self._current.done.done():
                self._current.done.set_result(False)
            self._current = None
        while self._queue:
            item = self._queue.popleft()
            if not item.done.done():
                item.done.set_result(False)
        return played

    def cancel(self, utterance: Utterance) -> None:
        """Cut one utterance (current or queued) without touching the others."""
        if self._current is utterance:
            self._current = None
        else:
            with contextlib.suppress(ValueError):
                self._queue.remove(utterance)
        if not utterance.done.done():
            utterance.done.set_result(False)

    async def close(self) -> None:
        self._closed = True
        self.stop()
        for track in list(self._tracks):
            track.stop()
        self._tracks.clear()
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    # --- pacing -----------------------------------------------------------------------------
    def _ensure_running(self) -> None:
        if self._closed or (self._task is not None and not self._task.done()):
            return
        self._task = asyncio.get_running_loop().create_task(self._run(), name="bot-speaker")

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        deadline = loop.time()
        while not self._closed and (self._tracks or self._current or self._queue):
            self._tick()
            deadline += FRAME_SECONDS
            delay = deadline - loop.time()
            if delay < -0.1:  # event loop stalled: resync instead of bursting
                deadline = loop.time()
                self.late_resyncs += 1
                delay = 0.0
            await asyncio.sleep(delay)

    def _tick(self) -> None:
        self.ticks += 1
        if self._current is None and self._queue:
            self._current = self._queue.popleft()
        current = self._current
        payload = self._silence
        if current is not None:
            index = current.position
            if index < len(current.packets):
                if current.audible:
                    payload = current.packets[index]
                current.position = index + 1
                if current.on_frame is not None:
                    try:
                        current.on_frame(index)
                    except Exception:  # a hook must never stop the clock
                        log.exception("frame hook failed")
            if current.position >= len(current.packets) and self._current is current:
                self._current = None
                if not current.done.done():
                    current.done.set_result(True)
        if payload is self._silence:
            self._silent_ticks += 1
            if self._silent_ticks > DTX_HANGOVER and self._silent_ticks % DTX_INTERVAL:
                for track in self._tracks:
                    track.skip()
                return
        else:
            self._silent_ticks = 0
        for track in self._tracks:
            track.push(payload)
