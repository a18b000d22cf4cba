"""One NPC conversation: turn ids, the bot audio clock, and the mapping of backend events to the wire.

Data flows one way: backend → translate events → `Session.on_event` → protocol messages. Control
events go out at once; bot audio goes through a bounded queue paced in real time, and the markers
that must follow a turn's audio (bot_stopped_speaking, turn_completed) ride that queue behind it.
An interrupt empties the queue, so control never waits behind audio.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from bridge.audio.echo import APM_RATE, EchoCanceller
from bridge.audio.errors import AudioFormatError
from bridge.audio.frames import Framer, frame_size_for
from bridge.audio.lipsync import EnvelopeLipSync, frame_start_sample, samples_for_seconds
from bridge.audio.pacing import Pacer
from bridge.audio.pcm import from_bytes, validate_channels, validate_rate
from bridge.audio.resample import StreamResampler
from bridge.backends.base import Backend
from bridge.translate import events as ev
from bridge.wire.errors import ProtocolError

log = logging.getLogger(__name__)

Emit = Callable[..., None]  # emit(type, fields, frames=(), ts=None)

DEFAULT_AUDIO = {"sample_rate": 48000, "channels": 1, "frame_ms": 20}


def validate_audio_format(fmt: dict[str, int] | None) -> dict[str, int]:
    fmt = {**DEFAULT_AUDIO, **(fmt or {})}
    try:
        validate_rate(fmt["sample_rate"])
        validate_channels(fmt["channels"])
        if not 5 <= fmt["frame_ms"] <= 200:
            raise AudioFormatError("bad_frame_size", f"frame_ms must be 5..200, got {fmt['frame_ms']}")
    except AudioFormatError as exc:
        raise ProtocolError("unsupported_audio_format", exc.message) from exc
    return fmt


@dataclass
class SessionStats:
    audio_in_frames: int = 0
    audio_in_gaps: int = 0
    audio_in_dropped: int = 0
    audio_out_frames: int = 0
    underruns: int = 0
    turns: int = 0


@dataclass
class _Turn:
    id: int
    source: str
    completed: bool = False
    speaking: bool = False
    got_output: bool = False
    replied: bool = False
    text: list[str] = field(default_factory=list)
    by_server: bool = False  # opened by the server (its VAD, or output without a request)
    claimed: bool = False  # an end_of_utterance already took this voice turn as its own


class Session:
    def __init__(
        self,
        sid: str,
        owner: bytes,
        backend: Backend,
        audio: dict[str, int],
        emit: Emit,
        *,
        lead_ms: int,
        max_audio_in_ms: int,
        prebuffer_ms: int = 0,
        lipsync: dict[str, Any] | None = None,
        label: str = "",
        echo: EchoCanceller | None = None,
    ) -> None:
        self.sid = sid
        self.owner = owner
        self.backend = backend
        self.audio = audio
        self.label = label
        self.echo = echo  # AEC/NS on the mic path; None: the mic passes bit-exact
        self._emit = emit
        self.state = "connecting"
        self.stats = SessionStats()
        self.turn: _Turn | None = None
        self._turn_seq = 0
        self._out_seq = 0
        # Exact samples per frame; a fraction (11025 Hz x 10 ms) makes frames alternate 110/111 samples.
        self._frame_samples = frame_size_for(audio["sample_rate"], audio["frame_ms"])
        self._out_q: deque[tuple[str, Any]] = deque()
        self._out_wakeup = asyncio.Event()
        self._pacer = Pacer(audio["sample_rate"], lead_ms=lead_ms)
        self._prebuffer_samples = audio["sample_rate"] * min(prebuffer_ms, lead_ms) // 1000
        self._released_turn: int | None = None
        self._audio_done_turn: int | None = None
        self._framer = Framer(self._frame_samples, audio["channels"])
        self._resampler: StreamResampler | None = None
        self._resampler_key: tuple[int, int] | None = None
        self._audio_turn: int | None = None
        self._lipsync_cfg = lipsync or {"provider": "none"}
        self._wants_lipsync = self._lipsync_cfg.get("provider", "none") != "none"
        self._envelope: EnvelopeLipSync | None = None
        self._in_anchor: float | None = None
        self._in_samples = 0.0
        self._in_rate = 0
        self._in_seq: int | None = None
        self._max_audio_in_s = max_audio_in_ms / 1000.0
        self._last_overflow_report = 0.0
        self._pump_task: asyncio.Task[None] | None = None
        self._last_ts: dict[int, int] = {}  # turn -> latest ts sent, so ts never decreases within a turn
        self.character_session_id: str | None = None
        self.opened_at = time.monotonic()
        # Set by the daemon: the backend ended the session on its own.
        self.on_backend_closed: Callable[[str, str | None], None] = lambda reason, message: None

    # -- lifecycle -------------------------------------------------------------------------------
    def start_pump(self) -> None:
        self._pump_task = asyncio.get_running_loop().create_task(self._pump(), name=f"pump-{self.sid}")

    async def stop(self) -> None:
        self.state = "closed"
        if self._pump_task:
            self._pump_task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._pump_task
        with contextlib.suppress(Exception):
            await self.backend.close()

    def emit(
        self, msg_type: str, fields: dict[str, Any] | None = None, frames: tuple[bytes, ...] = (), ts=None
    ) -> None:
        if self.state == "closed" and msg_type not in ("session_closed", "error"):
            return
        turn = fields.get("turn") if fields else None
        if ts is not None and isinstance(turn, int):
            # Paced audio carries the (older) arrival time of its chunk; a control event of the same turn
            # may already have gone out with a newer one. Clamp so a client sees ts non-decreasing per turn.
            ts = max(ts, self._last_ts.get(turn, ts))
            self._last_ts[turn] = ts
            if len(self._last_ts) > 8:
                del self._last_ts[min(self._last_ts)]
        self._emit(self, msg_type, {"sid": self.sid, **(fields or {})}, frames, ts)

    # -- turns -----------------------------------------------------------------------------------
    def new_turn(self, source: str, by_server: bool = False) -> int:
        """Open a turn; an end_of_utterance joins the voice turn the server's VAD opened for the same utterance.

        With push-to-talk on the live API the server's VAD usually opens the turn (turn_started
        source:voice) before the client releases the key; one utterance is one turn, whichever side
        ends it, so the release takes that turn instead of interrupting it.
        """
        current = self.turn
        if (
            source == "voice"
            and not by_server
            and current is not None
            and not current.completed
            and current.source == "voice"
            and current.by_server
            and not current.claimed
        ):
            current.claimed = True
            return current.id
        # A new user turn supersedes an unfinished one (barge-in by text or voice), or one still playing out.
        self.interrupt_local()
        self._turn_seq += 1
        self.turn = _Turn(self._turn_seq, source, by_server=by_server, claimed=source == "voice" and not by_server)
        self.stats.turns += 1
        self.emit("turn_started", {"turn": self.turn.id, "source": source})
        return self.turn.id

    def _open(self) -> bool:
        return self.turn is not None and not self.turn.completed

    def _latest(self) -> _Turn:
        """The current turn, or the last one if it just completed (late actions/emotion belong to it)."""
        return self.turn if self.turn is not None else self._current()

    def _current(self) -> _Turn:
        if self.turn is None or self.turn.completed:
            # Backend-initiated output (greeting, voice turn without VAD events): open a turn for it.
            self.new_turn("voice", by_server=True)
        assert self.turn is not None
        return self.turn

    def _finish_turn(self, interrupted: bool, flush: bool, aborted: bool = False, reason: str | None = None) -> None:
        turn = self.turn
        if turn is None or turn.completed:
            return
        turn.completed = True
        if not turn.replied and turn.text and not interrupted:
            turn.replied = True
            self._queue_event("bot_reply", {"turn": turn.id, "text": "".join(turn.text)})
        fields: dict[str, Any] = {"turn": turn.id, "interrupted": interrupted}
        if aborted:
            fields["aborted"] = True
        if reason:
            fields["reason"] = reason
        if flush:
            had_audio = self._flush_audio()
            if had_audio or turn.speaking:
                self.emit("lipsync_cancel", {"turn": turn.id})
            if turn.speaking:
                turn.speaking = False
                self.emit("bot_stopped_speaking", {"turn": turn.id})
            self.emit("turn_completed", fields)
        else:
            if turn.speaking:
                turn.speaking = False
                self._queue_event("bot_stopped_speaking", {"turn": turn.id})
            self._queue_event("turn_completed", fields)

    def interrupt_local(self) -> None:
        turn = self.turn
        if turn is not None and turn.completed:
            self._cut_playout(turn.id)
        else:
            self._finish_turn(interrupted=True, flush=True)

    def _cut_playout(self, turn_id: int) -> None:
        """Interrupt a turn the backend has finished but whose audio is still queued (REST delivers a
        whole reply at once): drop the rest of its audio and complete it as interrupted instead."""
        if not any(kind == "audio" and item[0] == turn_id for kind, item in self._out_q):
            return  # played out: nothing left to interrupt
        pending = [item for kind, item in self._out_q if kind == "event" and item[1].get("turn") == turn_id]
        self._flush_audio()
        self.emit("lipsync_cancel", {"turn": turn_id})
        completed = False
        for msg_type, fields, ts in pending:
            if msg_type == "bot_stopped_speaking":
                continue  # _flush_audio sent it
            if msg_type == "turn_completed":
                fields = {**fields, "interrupted": True}
                completed = True
            self.emit(msg_type, fields, ts=ts)
        if not completed:
            self.emit("turn_completed", {"turn": turn_id, "interrupted": True})

    # -- backend events ---------------------------------------------------------------------------
    def on_event(self, event: ev.Event) -> None:
        try:
            self._on_event(event)
        except Exception:  # one bad event must not take the session down
            log.exception("session %s: failed to handle %s", self.sid, type(event).__name__)

    def _on_event(self, e: ev.Event) -> None:
        ts = time.time_ns() // 1000
        if isinstance(e, ev.Visemes | ev.Blendshapes | ev.LipsyncCancel) and not self._wants_lipsync:
            return
        if isinstance(e, ev.BotAudio):
            self._bot_audio(e, ts)
            return
        if isinstance(e, ev.TurnStart):
            if self.turn is None or self.turn.completed or self.turn.got_output:
                self.new_turn(e.source, by_server=True)
            return
        if isinstance(e, ev.UserTranscript):
            turn = self._current()
            self.emit("user_transcript", {"turn": turn.id, "text": e.text, "final": e.final}, ts=ts)
        elif isinstance(e, ev.BotText):
            turn = self._current()
            turn.got_output = True
            turn.text.append(e.text)
            self.emit("bot_text", {"turn": turn.id, "text": e.text}, ts=ts)
        elif isinstance(e, ev.Subtitle):
            # Behind the audio already queued: the server sends a word when its audio starts playing.
            turn = self._latest()
            fields = {"turn": turn.id, "text": e.text}
            if e.words:
                fields["words"] = [_word(w) for w in e.words]
            self._queue_event("subtitle", fields, ts)
        elif isinstance(e, ev.BotReply):
            turn = self._current()
            turn.got_output = True
            turn.replied = True
            self.emit("bot_reply", {"turn": turn.id, "text": e.text}, ts=ts)
        elif isinstance(e, ev.BotSpeaking):
            if e.started:
                turn = self._current()
                if not turn.speaking:
                    turn.speaking = True
                    turn.got_output = True
                    self.emit("bot_started_speaking", {"turn": turn.id}, ts=ts)
            elif self._open() and self.turn.speaking:  # type: ignore[union-attr]
                self.turn.speaking = False  # type: ignore[union-attr]
                self._queue_event("bot_stopped_speaking", {"turn": self.turn.id}, ts)  # type: ignore[union-attr]
        elif isinstance(e, ev.Actions):
            turn = self._latest()
            turn.got_output = True
            self.emit("actions", {"turn": turn.id, "actions": e.actions}, ts=ts)
        elif isinstance(e, ev.Emotion):
            turn = self._latest()
            self.emit("emotion", {"turn": turn.id, "name": e.name, "scale": e.scale}, ts=ts)
        elif isinstance(e, ev.Visemes):
            if not self._open():
                return  # late lip sync of a finished (or interrupted) turn
            turn = self._current()
            offset = (
                samples_for_seconds(e.seconds, self.audio["sample_rate"])
                if e.seconds is not None
                else self._audio_clock_offset()
            )
            self._queue_lipsync("visemes", {"turn": turn.id, "offset": offset, "weights": list(e.weights)}, (), ts)
        elif isinstance(e, ev.Blendshapes):
            if self._open():
                self._blendshapes(e, ts)
        elif isinstance(e, ev.LipsyncCancel):
            if not self._open():
                return
            turn = self._current()
            fields: dict[str, Any] = {"turn": turn.id}
            if e.valid_through_frame is not None and e.fps:
                fields["valid_through"] = frame_start_sample(e.valid_through_frame, self.audio["sample_rate"], e.fps)
            self.emit("lipsync_cancel", fields, ts=ts)
        elif isinstance(e, ev.Narrative):
            fields = {"section_id": e.section_id}
            if self.turn:
                fields["turn"] = self.turn.id
            if e.bt_code is not None:
                fields["bt_code"] = e.bt_code
            if e.bt_constants is not None:
                fields["bt_constants"] = e.bt_constants
            self.emit("narrative", fields, ts=ts)
        elif isinstance(e, ev.Moderation):
            fields = {"passed": e.passed, "reason": e.reason, "user_input": e.user_input}
            if self.turn:
                fields["turn"] = self.turn.id
            self.emit("moderation", fields, ts=ts)
        elif isinstance(e, ev.NoResponse):
            turn = self._current()
            self.emit("no_response", {"turn": turn.id, "reason": e.reason}, ts=ts)
        elif isinstance(e, ev.TurnEnd):
            if self.turn and not self.turn.completed:
                self._finish_turn(interrupted=e.interrupted, flush=e.interrupted, aborted=e.aborted, reason=e.reason)
        elif isinstance(e, ev.IdleWarning):
            self.emit("idle_warning", {"remaining_s": e.remaining_s, "message": e.message}, ts=ts)
        elif isinstance(e, ev.Metrics):
            self.emit("metrics", {"kind": e.kind, "data": e.data}, ts=ts)
        elif isinstance(e, ev.Passthrough):
            self.emit("server_event", {"name": e.name, "data": e.data}, ts=ts)
        elif isinstance(e, ev.BackendError):
            err = ProtocolError(e.code, e.message, sid=self.sid, status=e.status, fatal=e.fatal)
            self.emit("error", err.fields(), ts=ts)
            if e.fatal and self.turn and not self.turn.completed:
                self._finish_turn(interrupted=False, flush=True, aborted=True, reason=e.code)
        elif isinstance(e, ev.Ready):
            if e.character_session_id and e.character_session_id != self.character_session_id:
                self.character_session_id = e.character_session_id
                if self.state == "ready":  # before that, session_opened carries it
                    self.emit(
                        "session_state", {"state": "ready", "character_session_id": e.character_session_id}, ts=ts
                    )
        elif isinstance(e, ev.StateChange):
            fields = {"state": e.state, "attempt": e.attempt, "reason": e.reason}
            if e.character_session_id:
                self.character_session_id = e.character_session_id
                fields["character_session_id"] = e.character_session_id
            if e.resumed is not None:
                fields["resumed"] = e.resumed
            self.emit("session_state", fields, ts=ts)
        elif isinstance(e, ev.AudioEnd):
            self.end_turn_audio()
        elif isinstance(e, ev.ServerAck):
            if not e.ok:
                self.emit("error", ProtocolError("convai_error", e.message or e.event_type, sid=self.sid).fields())
        elif isinstance(e, ev.Closed):
            self.on_backend_closed(e.reason, e.message)

    # -- bot audio --------------------------------------------------------------------------------
    def _bot_audio(self, e: ev.BotAudio, ts: int) -> None:
        turn = self._current()
        turn.got_output = True
        if not turn.speaking:
            turn.speaking = True
            self.emit("bot_started_speaking", {"turn": turn.id}, ts=ts)
        if self._audio_turn != turn.id:
            self._start_audio_turn(turn.id)
        key = (e.sample_rate, e.channels)
        if self._resampler is None or self._resampler_key != key:
            self._resampler = StreamResampler(
                e.sample_rate, self.audio["sample_rate"], e.channels, self.audio["channels"]
            )
            self._resampler_key = key
        out = self._resampler.process(e.pcm)
        self._frame_out(out, turn.id, ts)

    def end_turn_audio(self) -> None:
        """The backend finished this turn's audio: flush resampler and framer tails into the queue."""
        if self._audio_turn is None or self.turn is None or self.turn.id != self._audio_turn:
            return
        self._audio_done_turn = self._audio_turn
        ts = time.time_ns() // 1000
        if self._resampler is not None:
            self._frame_out(self._resampler.flush(), self._audio_turn, ts)
        tail = self._framer.flush(pad=False)
        if tail is not None:
            self._out_q.append(("audio", (self._audio_turn, tail.pcm, tail.sample_offset, tail.samples, ts)))
        if self._envelope is not None:
            end = self._framer.sample_offset
            for frame in self._envelope.flush():
                if frame.sample_offset < end:  # no lip-sync frame past the last sample
                    self._queue_viseme_frame(frame, self._audio_turn, ts)
        self._out_wakeup.set()

    def _start_audio_turn(self, turn_id: int) -> None:
        self._audio_turn = turn_id
        self._framer.reset()
        if self._resampler is not None:
            self._resampler.reset()
        if self._lipsync_cfg.get("provider") == "visemes" and "lipsync_native" not in self.backend.capabilities:
            self._envelope = EnvelopeLipSync(
                self.audio["sample_rate"], fps=self._lipsync_cfg.get("fps") or 100, channels=self.audio["channels"]
            )
        else:
            self._envelope = None

    def _frame_out(self, pcm: np.ndarray, turn_id: int, ts: int) -> None:
        if pcm.size == 0:
            return
        if self._envelope is not None:
            for frame in self._envelope.push(pcm):
                self._queue_viseme_frame(frame, turn_id, ts)
        for frame in self._framer.push(pcm):
            self._out_q.append(("audio", (turn_id, frame.pcm, frame.sample_offset, frame.samples, ts)))
        self._out_wakeup.set()

    def _queue_viseme_frame(self, frame: Any, turn_id: int, ts: int) -> None:
        fields = {"turn": turn_id, "offset": frame.sample_offset, "weights": list(frame.weights)}
        self._out_q.append(("lipsync", ("visemes", fields, (), ts, frame.sample_offset)))

    def _audio_clock_offset(self) -> int:
        return self._framer.sample_offset

    def _queue_lipsync(self, msg_type: str, fields: dict[str, Any], frames: tuple[bytes, ...], ts: int) -> None:
        self._out_q.append(("lipsync", (msg_type, fields, frames, ts, fields["offset"])))
        self._out_wakeup.set()

    def _blendshapes(self, e: ev.Blendshapes, ts: int) -> None:
        turn = self._current()
        if not e.frames:
            return
        width = len(e.frames[0])
        frames = [f for f in e.frames if len(f) == width]
        first = e.first_frame if e.first_frame is not None else 0
        offset = frame_start_sample(first, self.audio["sample_rate"], e.fps)
        data = np.asarray(frames, dtype="<f4").tobytes()
        fields = {
            "turn": turn.id,
            "offset": offset,
            "fps": e.fps,
            "format": e.format,
            "width": width,
            "count": len(frames),
        }
        self._queue_lipsync("blendshapes", fields, (data,), ts)

    def _queue_event(self, msg_type: str, fields: dict[str, Any], ts: int | None = None) -> None:
        if not self._out_q:
            self.emit(msg_type, fields, ts=ts)
            return
        self._out_q.append(("event", (msg_type, fields, ts)))
        self._out_wakeup.set()

    def _flush_audio(self) -> bool:
        """Drop queued audio and lip sync (interrupt). A queued bot_stopped_speaking still goes out, at
        once: the client saw bot_started_speaking and must see its end."""
        had = any(kind == "audio" for kind, _ in self._out_q)
        stopped = [item for kind, item in self._out_q if kind == "event" and item[0] == "bot_stopped_speaking"]
        self._out_q.clear()
        for msg_type, fields, ts in stopped:
            self.emit(msg_type, fields, ts=ts)
        self._framer.reset()
        if self._resampler is not None:
            self._resampler.reset()
        if self._envelope is not None:
            self._envelope.reset()
        self._pacer.reset()
        self._audio_turn = None
        if self.echo is not None:
            self.echo.drop_far_end()
        return had

    async def _pump(self) -> None:
        """Send queued audio in real time; lip-sync items go out when the audio clock reaches them."""
        while True:
            if not self._out_q:
                self._out_wakeup.clear()
                await self._out_wakeup.wait()
                continue
            kind, item = self._out_q[0]
            if kind == "audio":
                turn_id, pcm, offset, samples, ts = item
                if turn_id != self._released_turn:
                    await self._prebuffer(turn_id)
                    self._released_turn = turn_id
                await self._pacer.wait_for(samples)
                if not self._out_q or self._out_q[0][1] is not item:
                    self._pacer.reset()  # flushed while waiting: that frame was never sent
                    continue
                self._out_q.popleft()
                if self.turn is None or self.turn.id != turn_id:
                    continue  # a newer turn superseded this audio
                self._out_seq += 1
                self.stats.audio_out_frames += 1
                pcm = pcm[:samples]
                if self.echo is not None:  # the far-end reference: what the client is about to play
                    self.echo.far_end(pcm, self.audio["sample_rate"], self.audio["channels"])
                self.emit(
                    "audio_out",
                    {
                        "turn": turn_id,
                        "seq": self._out_seq,
                        "offset": offset,
                        "sample_rate": self.audio["sample_rate"],
                        "channels": self.audio["channels"],
                        "samples": samples,
                    },
                    (np.ascontiguousarray(pcm, dtype="<i2").tobytes(),),
                    ts,
                )
            elif kind == "lipsync":
                msg_type, fields, frames, ts, _offset = item
                self._out_q.popleft()
                self.emit(msg_type, fields, frames, ts)
            else:
                msg_type, fields, ts = item
                self._out_q.popleft()
                self.emit(msg_type, fields, ts=ts)

    async def _prebuffer(self, turn_id: int) -> None:
        """Hold a turn's first frames until a little audio is queued, so the engine starts with slack.

        Live audio arrives in real time, so without this the engine's buffer would start empty and
        every network hiccup would be an underrun. Bounded: a slow source never stalls the turn.
        """
        if self._prebuffer_samples <= 0:
            return
        loop = asyncio.get_running_loop()
        deadline = loop.time() + 3 * self._prebuffer_samples / self.audio["sample_rate"]
        while self._audio_done_turn != turn_id:
            queued = sum(item[3] for kind, item in self._out_q if kind == "audio" and item[0] == turn_id)
            remaining = deadline - loop.time()
            if queued >= self._prebuffer_samples or remaining <= 0 or not self._out_q:
                return
            self._out_wakeup.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._out_wakeup.wait(), remaining)

    # -- microphone -------------------------------------------------------------------------------
    def audio_in(self, header: dict[str, Any], payload: bytes) -> None:
        rate, channels, samples, seq = header["sample_rate"], header["channels"], header["samples"], header["seq"]
        try:
            validate_rate(rate)
            validate_channels(channels)
        except AudioFormatError as exc:
            raise ProtocolError("unsupported_audio_format", exc.message, sid=self.sid) from exc
        if self._in_seq is not None and seq != self._in_seq + 1:
            self.stats.audio_in_gaps += 1
        self._in_seq = seq
        self.stats.audio_in_frames += 1
        if samples == 0:
            return
        now = time.monotonic()
        if self._in_anchor is None or rate != self._in_rate:
            self._in_anchor, self._in_samples, self._in_rate = now, 0.0, rate
        elapsed = now - self._in_anchor
        buffered = self._in_samples / rate - elapsed
        if buffered < 0:  # the client paused: re-anchor the mic clock
            self._in_anchor, self._in_samples = now, 0.0
            buffered = 0.0
        if buffered + samples / rate > self._max_audio_in_s:
            self.stats.audio_in_dropped += 1
            if now - self._last_overflow_report >= 1.0:
                self._last_overflow_report = now
                raise ProtocolError(
                    "audio_overflow",
                    f"microphone audio is arriving faster than real time (over {self._max_audio_in_s * 1000:.0f} ms "
                    "buffered); frames were dropped",
                    sid=self.sid,
                )
            return
        self._in_samples += samples
        pcm = from_bytes(payload, channels)
        if self.echo is not None:
            pcm, rate, channels = self.echo.process(pcm, rate, channels), APM_RATE, 1
            if pcm.size == 0:
                return
        self.backend.audio_in(pcm, rate, channels)

    def audio_reference(self, header: dict[str, Any], payload: bytes) -> None:
        """The engine's mixed game output (far end for the echo canceller); same framing as audio_in."""
        rate, channels = header["sample_rate"], header["channels"]
        try:
            validate_rate(rate)
            validate_channels(channels)
        except AudioFormatError as exc:
            raise ProtocolError("unsupported_audio_format", exc.message, sid=self.sid) from exc
        if self.echo is not None and header["samples"]:
            self.echo.reference(from_bytes(payload, channels), rate, channels)

def _word(w: ev.Word) -> dict[str, Any]:
    out: dict[str, Any] = {"text": w.text}
    if w.start_ms is not None:
        out["start_ms"] = w.start_ms
    if w.end_ms is not None:
        out["end_ms"] = w.end_ms
    return out
