"""One NPC on the gevent client: the synchronous twin of ``npc.Npc`` for Locust users.

Same script semantics and the same measurement (``SessionProbe``), one turn per call so Locust can
schedule turns as tasks with the script's think time in between. Every wait is bounded.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any, TypeVar

import gevent
import gevent.event

from bridge_loadtest.engine import RequestFailed
from bridge_loadtest.green import GreenClient
from bridge_loadtest.npc import MIC_FRAME_MS, RETRYABLE_OPEN, VAD_TAIL_S, NpcOptions, silence_utterance
from bridge_loadtest.probe import SessionProbe, TurnState
from bridge_loadtest.script import Script, TurnSpec
from bridge_loadtest.speech import Utterance, fill
from bridge_loadtest.stats import TurnRecord

T = TypeVar("T")


def now() -> float:
    return time.perf_counter()


class GreenNpc:
    def __init__(
        self,
        index: int,
        client: GreenClient,
        script: Script,
        utterances: dict[str, Utterance],
        opts: NpcOptions,
        on_error: Callable[[str, float], None] | None = None,
    ) -> None:
        self.index = index
        self.client = client
        self.script = script
        self.utterances = utterances
        self.opts = opts
        self.on_error = on_error or (lambda code, t: None)
        self.character = script.characters[index % len(script.characters)]
        self.sid: str | None = None
        self.probe: SessionProbe | None = None
        self.open_ms: float | None = None
        self._changed = gevent.event.Event()
        self._mic_seq = 0
        self.errors: list[str] = []

    def _until(self, cond: Callable[[], T], until: float) -> T:
        while True:
            self._changed.clear()
            value = cond()
            if value:
                return value
            remaining = until - now()
            if remaining <= 0:
                raise TimeoutError
            self._changed.wait(remaining)

    def _error(self, code: str, t: float) -> None:
        self.errors.append(code)
        self.on_error(code, t)

    def open(self) -> None:
        """Open the session (bounded retries); raises RequestFailed with the last code on failure."""
        opts = self.opts
        code = "open_failed"
        for attempt in range(opts.open_retries + 1):
            probe = SessionProbe(opts.prebuffer_ms / 1000.0, on_error=self._error, notify=self._changed.set)
            self.probe = probe

            def attach(ack: Any, probe: SessionProbe = probe) -> None:
                self.sid = ack.sid
                self.client.attach(ack.sid, probe.on_message)

            started = now()
            try:
                self.client.request(
                    "session_open",
                    timeout=opts.request_timeout_s,
                    on_reply=attach,
                    character_id=self.character,
                    backend=opts.backend,
                    label=f"locust-npc-{self.index}",
                    end_user_id=fill(self.script.end_user_id, self.index) if self.script.end_user_id else None,
                    audio=opts.audio,
                    **opts.session_options,
                )
                self._until(lambda p=probe: p.opened or p.fatal or p.closed, started + opts.open_timeout_s)
                if probe.opened_t is not None:
                    self.open_ms = (probe.opened_t - started) * 1000.0
                    return
                code = probe.fatal or "session_closed"
            except RequestFailed as exc:
                code = exc.code
            except TimeoutError:
                code = "open_timeout"
            self.close()
            if code not in RETRYABLE_OPEN or attempt == opts.open_retries:
                break
            gevent.sleep(min(4.0, 0.5 * 2**attempt))
        raise RequestFailed(code, "session did not open")

    def close(self) -> None:
        if self.sid is None:
            return
        sid, self.sid = self.sid, None
        try:
            if self.probe is not None and self.probe.closed is None and not self.client.lost:
                self.client.request("session_close", sid=sid, timeout=3.0)
        except RequestFailed:
            pass
        finally:
            self.client.detach(sid)

    def usable(self) -> bool:
        p = self.probe
        if self.sid is None or p is None:
            return False
        if p.state == "reconnecting":
            try:
                self._until(lambda: p.state != "reconnecting" or p.closed or p.fatal, now() + self.opts.open_timeout_s)
            except TimeoutError:
                return False
        return p.usable

    def _stream(self, utt: Utterance) -> None:
        start = now()
        for i, pcm in enumerate(utt.frames(MIC_FRAME_MS)):
            if self.sid is None or self.client.lost:
                return
            self._mic_seq += 1
            self.client.send(
                "audio_in",
                {
                    "sid": self.sid,
                    "seq": self._mic_seq,
                    "sample_rate": utt.rate,
                    "channels": utt.channels,
                    "samples": pcm.shape[0] // utt.channels,
                },
                (pcm.tobytes(),),
            )
            delay = start + (i + 1) * MIC_FRAME_MS / 1000 - now()
            if delay > 0:
                gevent.sleep(delay)

    def _request(self, msg_type: str, **fields: Any) -> Any:
        return self.client.request(msg_type, sid=self.sid, timeout=self.opts.request_timeout_s, **fields)

    def turn(self, spec: TurnSpec) -> TurnRecord:
        """Run one user turn to completion (or failure); the record's ``error`` says which."""
        kind = spec.kind
        probe = self.probe
        assert probe is not None
        rec = TurnRecord(self.index, 0, kind, -1, 0.0)
        user_end = now()
        interrupt_t: float | None = None
        state: TurnState | None = None
        tail: gevent.Greenlet | None = None
        try:
            if kind in ("text", "trigger") or self.script.voice_mode(self.opts.backend) == "ptt":
                if kind == "text":
                    msg_type, fields = "text", {"text": fill(spec.text or "Hello.", self.index)}
                elif kind == "trigger":
                    msg_type, fields = "trigger", {"name": spec.name, "message": spec.message}
                else:
                    self._stream(self.utterances[spec.utterance_key()])
                    msg_type, fields = "end_of_utterance", {}
                user_end = now()
                ack = self._request(msg_type, **fields)
                rec.ack_ms = (now() - user_end) * 1000.0
                rec.turn = ack["turn"]
            else:
                utt = self.utterances[spec.utterance_key()]
                speech_start = now()
                self._stream(utt)
                user_end = now()
                tail = gevent.spawn(self._stream, silence_utterance(utt, VAD_TAIL_S))
                found = self._until(
                    lambda: probe.voice_turn_after(speech_start) or probe.fatal or probe.closed,
                    user_end + self.opts.turn_timeout_s,
                )
                if not isinstance(found, int) or isinstance(found, bool):
                    raise RequestFailed(str(found), "session ended")
                rec.turn = found
            state = probe.turn(rec.turn)
            until = user_end + self.opts.turn_timeout_s
            if spec.interrupt_after_ms is not None:
                self._until(lambda: state.first_output_t is not None or state.done, until)
                if not state.done and state.first_output_t is not None:
                    delay = state.first_output_t + spec.interrupt_after_ms / 1000.0 - now()
                    if delay > 0:
                        gevent.sleep(min(delay, max(0.0, until - now())))
                    if not state.done:
                        interrupt_t = now()
                        self._request("interrupt")
            self._until(lambda: state.done, until)
        except RequestFailed as exc:
            rec.error = exc.code
        except TimeoutError:
            rec.error = "turn_timeout"
        finally:
            if tail is not None:
                tail.kill(block=False)
        if state is not None:
            ms = lambda x: None if x is None else (x - user_end) * 1000.0  # noqa: E731
            rec.first_text_ms = ms(state.first_text_t)
            rec.first_audio_ms = ms(state.first_audio_t)
            rec.turn_ms = ms(state.completed_t)
            rec.interrupted = state.interrupted
            if interrupt_t is not None and state.completed_t is not None and state.interrupted:
                rec.interrupt_ms = (state.completed_t - interrupt_t) * 1000.0
            rec.audio_ms = state.audio_s * 1000.0
            rec.frames = state.frames
            rec.underruns = state.playout.underruns
            rec.underruns_upstream = state.upstream.underruns
            rec.gap_ms_max = state.playout.gap_max_s * 1000.0
            rec.seq_gaps = state.seq_gaps
            rec.bridge_ms_max = state.bridge_max_ms
            rec.error = rec.error or state.error
            probe.forget(state.turn)
        return rec
