"""The interface between a Live session and one WebRTC connection to a Convai character.

A ``RealtimeTransport`` moves four things and nothing else:

* RTVI JSON both ways (``send_json`` / ``on_json``) on the reliable data channel;
* microphone audio up (``send_mic``): int16 mono 48 kHz, exactly 960 samples (20 ms) per call;
* bot audio down (``on_bot_audio``): the decoded bot track as 1-D interleaved int16 PCM with its
  sample rate and channel count (48 kHz; mono after :mod:`bridge.backends.live.fastaudio` is
  installed, which every transport here does);
* connection state (``on_state``).

Implementations: :class:`bridge.backends.live.livekit.LiveKitTransport` (Convai's Live API, LiveKit
signalling) and :class:`bridge.backends.live.sdp.SmallWebRTCTransport` (direct SDP offer/answer to a
pipecat SmallWebRTC-style bot). Usage::

    t = LiveKitTransport(room_url, token)
    t.on_json = ...; t.on_bot_audio = ...; t.on_state = ...   # before connect()
    await t.connect(timeout=10)        # TransportError(code, message, retryable) on failure
    await t.send_json({"label": "rtvi-ai", "type": "client-ready", "id": "1", "data": {...}})
    t.send_mic(pcm_960)                # from the event-loop thread; never blocks
    await t.close()                    # idempotent

Contract details:

* Callbacks run on the event-loop thread and must not block; exceptions they raise are logged and
  swallowed so one bad handler cannot kill the connection.
* ``on_state("connected", None)`` fires once when ``connect()`` succeeds. After that exactly one
  terminal state fires if the connection dies on its own: ``"disconnected"`` (the server left or
  dropped the signalling socket, pings timed out, the peer said goodbye) or ``"failed"`` (ICE/DTLS
  failed). Neither fires after the owner's own ``close()``. A dead transport is never revived; the
  owner re-joins with a new one (aiortc has no ICE restart).
* A transport that can repair its signalling in place (LiveKit signal resume) reports
  ``"reconnecting"`` and then ``"resumed"`` while staying usable (the data channel and media keep
  flowing); if the repair fails, the terminal ``"disconnected"`` follows as above.
* ``send_mic`` keeps a bounded queue: when full it drops the oldest frame and counts it in
  ``stats.mic_dropped``; when empty the track sends silence, paced in real time. A frame of the
  wrong type or size raises ``ValueError``. ``clear_mic()`` empties the queue (e.g. on barge-in).
* ``on_bot_audio`` arrays may be views of the decoder's buffer; they stay valid while referenced.
* ICE never uses aiortc's default public STUN server; when the server URL is a loopback address
  the transport offers only 127.0.0.1 candidates (see :mod:`bridge.backends.live.ice`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from abc import ABC, abstractmethod
from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass
from typing import Any, Protocol, TypeVar, runtime_checkable

import numpy as np

from bridge.backends.errors import scrub
from bridge.backends.live import fastaudio
from bridge.backends.live.ice import loopback_candidates

log = logging.getLogger(__name__)

JsonCallback = Callable[[dict[str, Any], str], None]
AudioCallback = Callable[[np.ndarray, int, int], None]
StateCallback = Callable[[str, str | None], None]

_T = TypeVar("_T")

SHUTDOWN_TIMEOUT_S = 5.0
PC_CLOSE_TIMEOUT_S = 2.0
MIC_SAMPLE_RATE = 48000
MIC_FRAME_SAMPLES = 960


class TransportError(Exception):
    """A connection could not be made or used.

    Codes: ``rtc_unauthorized`` (token/credentials refused), ``rtc_unreachable`` (no TCP/HTTP
    connection), ``rtc_rejected`` (the signalling server refused with an HTTP status),
    ``rtc_not_found`` (HTTP 404 on the signalling path),
    ``rtc_join_refused`` (the server answered the join with a leave), ``rtc_protocol_error`` (the
    server broke the signalling protocol), ``rtc_timeout`` (not connected within the timeout),
    ``rtc_ice_failed`` (media path could not be established), ``rtc_closed`` (used after close or
    after the connection died).
    """

    def __init__(self, code: str, message: str, retryable: bool) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message
        self.retryable = retryable


@dataclass
class TransportStats:
    """Counters for metrics and tests; plain ints so reading them is free."""

    json_in: int = 0
    json_out: int = 0
    json_bad: int = 0
    bot_frames: int = 0
    mic_frames_sent: int = 0
    mic_silence_frames: int = 0
    mic_dropped: int = 0
    mic_trimmed: int = 0

    def as_dict(self) -> dict[str, int]:
        return asdict(self)


@runtime_checkable
class RealtimeTransport(Protocol):
    """One WebRTC connection to a Convai character: RTVI JSON both ways, mic audio up, bot audio down."""

    on_json: JsonCallback
    on_bot_audio: AudioCallback
    on_state: StateCallback
    stats: TransportStats

    async def connect(self, timeout: float) -> None: ...

    async def send_json(self, message: dict[str, Any]) -> None: ...

    def send_mic(self, pcm: np.ndarray) -> None: ...

    async def close(self) -> None: ...


def _ignore_json(message: dict[str, Any], sender: str) -> None:
    return None


def _ignore_audio(pcm: np.ndarray, sample_rate: int, channels: int) -> None:
    return None


def _ignore_state(state: str, reason: str | None) -> None:
    return None


class TransportBase(ABC):
    """Owner callbacks, once-only state reporting and task bookkeeping shared by the transports.

    Subclasses implement ``_connect_inner()`` (runs under the connect timeout, inside the ICE and
    audio scopes) and ``_shutdown(goodbye)`` (the teardown, run at most once; ``goodbye`` says
    whether to tell the peer).
    """

    def __init__(self, *, loopback: bool, secrets: tuple[str, ...] = ()) -> None:
        self.on_json: JsonCallback = _ignore_json
        self.on_bot_audio: AudioCallback = _ignore_audio
        self.on_state: StateCallback = _ignore_state
        self.stats = TransportStats()
        self._state = "new"
        self._closing = False
        self._loopback = loopback
        self._secrets = secrets
        self._tasks: set[asyncio.Task[Any]] = set()
        self._dead: asyncio.Future[None] | None = None
        self._shutdown_task: asyncio.Task[None] | None = None

    @property
    def state(self) -> str:
        """``new`` → ``connecting`` → ``connected`` → ``disconnected``/``failed``/``closed``."""
        return self._state

    # ------------------------------------------------------------------ lifecycle

    async def connect(self, timeout: float) -> None:
        if self._state != "new":
            raise TransportError("rtc_closed", "a transport connects once; make a new one", False)
        self._state = "connecting"
        self._dead = asyncio.get_running_loop().create_future()
        self._dead.add_done_callback(lambda f: None if f.cancelled() else f.exception())
        try:
            async with asyncio.timeout(timeout):
                with loopback_candidates(self._loopback), fastaudio.fast_receive(), fastaudio.delayed_sack():
                    await self._connect_inner()
        except TimeoutError:
            await self._fail_connect()
            raise TransportError("rtc_timeout", f"not connected within {timeout:g} s", True) from None
        except TransportError:
            await self._fail_connect()
            raise
        except Exception as exc:
            log.debug("connect failed", exc_info=True)
            await self._fail_connect()
            raise TransportError(
                "rtc_protocol_error", scrub(f"{type(exc).__name__}: {exc}", self._secrets), True
            ) from None
        self._state = "connected"
        self._call_state("connected", None)

    async def close(self) -> None:
        if self._state == "closed":
            return
        self._closing = True
        self._state = "closed"
        await self._finish_shutdown(goodbye=True)

    async def _fail_connect(self) -> None:
        self._closing = True
        await self._finish_shutdown(goodbye=True)
        self._state = "failed"

    def _begin_shutdown(self, *, goodbye: bool) -> asyncio.Task[None]:
        """Start the one teardown; later callers join it rather than racing a second one."""
        if self._shutdown_task is None:
            self._shutdown_task = asyncio.ensure_future(self._shutdown(goodbye=goodbye))
            self._shutdown_task.set_name(f"{type(self).__name__}-shutdown")
        return self._shutdown_task

    async def _finish_shutdown(self, *, goodbye: bool) -> None:
        task = self._begin_shutdown(goodbye=goodbye)
        try:
            await asyncio.wait_for(asyncio.shield(task), SHUTDOWN_TIMEOUT_S)
        except TimeoutError:
            log.warning("%s teardown did not finish within %g s", type(self).__name__, SHUTDOWN_TIMEOUT_S)
        except Exception:
            log.warning("%s teardown failed", type(self).__name__, exc_info=True)

    @abstractmethod
    async def _connect_inner(self) -> None:
        """Signalling and media set-up of the concrete transport."""

    @abstractmethod
    async def _shutdown(self, *, goodbye: bool) -> None:
        """Tear the concrete transport down (say goodbye to the server when ``goodbye``)."""

    def _die(self, state: str, reason: str) -> None:
        """The connection ended on its own: report it once, then tear down in the background."""
        if self._dead is not None and not self._dead.done():
            code = "rtc_ice_failed" if state == "failed" else "rtc_closed"
            self._dead.set_exception(TransportError(code, reason, True))
        if self._closing or self._state in ("disconnected", "failed", "closed"):
            return
        was_connected = self._state == "connected"
        log.info("%s %s: %s", type(self).__name__, state, reason)
        if was_connected:  # during connect() the failure surfaces as connect()'s exception instead
            self._state = state
            self._closing = True
            self._call_state(state, reason)
            self._begin_shutdown(goodbye=state == "disconnected")

    # ------------------------------------------------------------------ helpers

    def _check_usable(self) -> None:
        if self._state in ("closed", "failed", "disconnected"):
            raise TransportError("rtc_closed", f"the transport is {self._state}", True)

    async def _until(self, aw: Awaitable[_T]) -> _T:
        """Await ``aw`` unless the connection dies first (then raise its TransportError)."""
        if self._dead is None:
            raise TransportError("rtc_closed", "the transport is not connected", True)
        task = asyncio.ensure_future(aw)
        done, _ = await asyncio.wait({task, self._dead}, return_when=asyncio.FIRST_COMPLETED)
        if task in done:
            return task.result()
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await task
        exc = self._dead.exception()
        raise exc if exc is not None else TransportError("rtc_closed", "the transport closed", True)

    def _spawn(self, coro: Awaitable[Any], name: str) -> None:
        task = asyncio.ensure_future(coro)
        task.set_name(f"{type(self).__name__}-{name}")
        self._tasks.add(task)
        task.add_done_callback(self._task_done)

    def _task_done(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        if task.cancelled():
            return
        exc = task.exception()
        if exc is not None and not self._closing:
            log.warning("%s failed: %s", task.get_name(), scrub(repr(exc), self._secrets))
            self._die("disconnected", exc.message if isinstance(exc, TransportError) else repr(exc))

    async def _cancel_tasks(self) -> None:
        current = asyncio.current_task()
        pending = [t for t in self._tasks if t is not current]
        for task in pending:
            task.cancel()
        if pending:
            await asyncio.wait(pending, timeout=2)

    def _emit_json(self, message: dict[str, Any], sender: str) -> None:
        self.stats.json_in += 1
        try:
            self.on_json(message, sender)
        except Exception:
            log.exception("on_json handler failed")

    def _emit_audio(self, pcm: np.ndarray, sample_rate: int, channels: int) -> None:
        self.stats.bot_frames += 1
        try:
            self.on_bot_audio(pcm, sample_rate, channels)
        except Exception:
            log.exception("on_bot_audio handler failed")

    def _call_state(self, state: str, reason: str | None) -> None:
        try:
            self.on_state(state, reason)
        except Exception:
            log.exception("on_state handler failed")
