"""One simulated NPC on the asyncio engine client: open a session, run the script's turns, measure each.

Everything is bounded: session opens are retried at most ``open_retries`` times, every request has a
timeout, every turn ``turn_timeout_s``, and no new turn starts after the run's deadline.
"""

from __future__ import annotations

import asyncio
import itertools
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

from bridge_loadtest.engine import EngineClient, RequestFailed
from bridge_loadtest.probe import SessionProbe, TurnState
from bridge_loadtest.script import Script, TurnSpec, adapt_turn
from bridge_loadtest.speech import Utterance, fill, silence
from bridge_loadtest.stats import RunStats, TurnRecord

T = TypeVar("T")

# Codes worth another session_open; anything else is a configuration problem that retrying won't fix.
RETRYABLE_OPEN = frozenset(
    {
        "too_many_sessions",
        "convai_rate_limited",
        "convai_server_error",
        "convai_timeout",
        "convai_unreachable",
        "transport_failed",
        "request_timeout",
        "open_timeout",
        "session_closed",
    }
)
VAD_TAIL_S = 0.8  # quiet after speech so the backend's VAD (stop_secs 0.5 on the emulator) ends the turn
MIC_FRAME_MS = 20


@dataclass
class NpcOptions:
    backend: str = "live"
    audio: dict[str, int] = field(default_factory=lambda: {"sample_rate": 48000, "channels": 1, "frame_ms": 20})
    lipsync: str = "none"
    prebuffer_ms: float = 0.0
    turn_timeout_s: float = 30.0
    open_timeout_s: float = 30.0
    open_retries: int = 2
    request_timeout_s: float = 10.0
    seed: int = 0
    session_options: dict[str, Any] = field(default_factory=dict)


def now() -> float:
    return time.perf_counter()


class SessionGone(Exception):
    """The session ended under the NPC (fatal error or session_closed)."""


class Npc:
    def __init__(
        self,
        index: int,
        client: EngineClient,
        script: Script,
        utterances: dict[str, Utterance],
        opts: NpcOptions,
        stats: RunStats,
        deadline: float,
    ) -> None:
        self.index = index
        self.client = client
        self.script = script
        self.utterances = utterances
        self.opts = opts
        self.stats = stats
        self.deadline = deadline
        self.rng = random.Random(opts.seed * 100_003 + index)
        self.character = script.characters[index % len(script.characters)]
        self.sid: str | None = None
        self.probe: SessionProbe | None = None
        self.reopens_left = opts.open_retries
        self._changed = asyncio.Event()
        self._mic_seq = 0

    # -- waiting ----------------------------------------------------------------------------------
    def _notify(self) -> None:
        self._changed.set()

    async def _until(self, cond: Callable[[], T], until: float) -> T:
        """Wait until ``cond()`` is truthy (re-checked whenever the session's probe sees something)."""
        while True:
            self._changed.clear()
            value = cond()
            if value:
                return value
            remaining = until - now()
            if remaining <= 0:
                raise TimeoutError
            try:
                await asyncio.wait_for(self._changed.wait(), remaining)
            except TimeoutError:
                pass

    # -- session ----------------------------------------------------------------------------------
    async def open(self) -> bool:
        opts = self.opts
        for attempt in range(opts.open_retries + 1):
            probe = SessionProbe(
                opts.prebuffer_ms / 1000.0,
                on_error=self.stats.error,
                on_bridge=self.stats.bridge_sample,
                on_gap=lambda ms: self.stats.record("audio_gap", ms),
                notify=self._notify,
            )
            self.probe = probe

            def attach(ack: Any, probe: SessionProbe = probe) -> None:
                self.sid = ack.sid
                self.client.attach(ack.sid, probe.on_message)

            code = ""
            retryable = False
            started = now()
            try:
                await self.client.request(
                    "session_open",
                    timeout=opts.request_timeout_s,
                    on_reply=attach,
                    character_id=self.character,
                    backend=opts.backend,
                    label=f"loadtest-npc-{self.index}",
                    end_user_id=fill(self.script.end_user_id, self.index) if self.script.end_user_id else None,
                    audio=opts.audio,
                    lipsync={"provider": opts.lipsync} if opts.lipsync != "none" else None,
                    **opts.session_options,
                )
                await self._until(lambda p=probe: p.opened or p.fatal or p.closed, started + opts.open_timeout_s)
                if probe.opened is not None and probe.opened_t is not None:
                    self.stats.record("session_open", (probe.opened_t - started) * 1000.0)
                    self.stats.sessions_opened += 1
                    return True
                code = probe.fatal or "session_closed"  # already counted when the error arrived
                retryable = code in RETRYABLE_OPEN
                if not probe.fatal:
                    self.stats.error(code, now())
            except RequestFailed as exc:
                code, retryable = exc.code, exc.retryable or exc.code in RETRYABLE_OPEN
                self.stats.error(code, now())
            except TimeoutError:
                code, retryable = "open_timeout", True
                self.stats.error(code, now())
                await self.close()
            self._drop_session()
            if not retryable or attempt == opts.open_retries or now() >= self.deadline or self.client.lost:
                break
            await asyncio.sleep(min(4.0, 0.5 * 2**attempt) * (0.5 + self.rng.random()))
        self.stats.sessions_failed += 1
        return False

    def _drop_session(self) -> None:
        if self.sid is not None:
            self.client.detach(self.sid)
        self.sid = None

    async def close(self) -> None:
        if self.sid is None:
            return
        sid = self.sid
        try:
            if self.probe is not None and self.probe.closed is None and not self.client.lost:
                await self.client.request("session_close", sid=sid, timeout=3.0)
        except (RequestFailed, asyncio.CancelledError):
            pass
        finally:
            self.client.detach(sid)
            self.sid = None

    async def _session_usable(self) -> bool:
        """True when the session can take a turn, after waiting (bounded) for a reconnect to finish."""
        p = self.probe
        if self.sid is None or p is None:
            return False
        if p.state == "reconnecting":
            try:
                await self._until(lambda: p.state != "reconnecting" or p.closed or p.fatal,
                                  now() + self.opts.open_timeout_s)
            except TimeoutError:
                return False
        return p.usable

    # -- the conversation -------------------------------------------------------------------------
    async def run(self) -> None:
        if now() >= self.deadline or not await self.open():
            return
        self.stats.active_npcs += 1
        try:
            turns = itertools.cycle(self.script.turns) if self.script.loop else iter(self.script.turns)
            for n, spec in enumerate(turns):
                if now() >= self.deadline:
                    break
                if n:
                    lo, hi = self.script.think_time_s
                    await asyncio.sleep(max(0.0, min(self.rng.uniform(lo, hi), self.deadline - now())))
                    if now() >= self.deadline:
                        break
                if not await self._session_usable():
                    if self.reopens_left <= 0 or self.client.lost or now() >= self.deadline:
                        break
                    self.reopens_left -= 1
                    await self.close()
                    if not await self.open():
                        break
                    self.stats.sessions_reopened += 1
                assert self.probe is not None
                caps = self.probe.capabilities
                if all(adapt_turn(t, caps) is None for t in self.script.turns):
                    self.stats.turns_skipped += 1
                    break  # nothing in the script this backend can do
                adapted = adapt_turn(spec, caps)
                if adapted is None:
                    self.stats.turns_skipped += 1
                    await asyncio.sleep(0)
                    continue
                await self.turn(adapted)
        finally:
            self.stats.active_npcs -= 1
            await self.close()

    async def _stream(self, utt: Utterance) -> None:
        """Microphone frames paced like a real microphone (absolute schedule, no drift)."""
        frames = utt.frames(MIC_FRAME_MS)
        start = now()
        for i, pcm in enumerate(frames):
            if self.sid is None or self.client.lost:
                return
            self._mic_seq += 1
            await self.client.send(
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
                await asyncio.sleep(delay)

    async def _request(self, msg_type: str, **fields: Any) -> Any:
        return await self.client.request(msg_type, sid=self.sid, timeout=self.opts.request_timeout_s, **fields)

    async def turn(self, spec: TurnSpec) -> TurnRecord:
        """One user turn as given (see ``adapt_turn`` for fitting it to the backend first)."""
        kind = spec.kind
        probe = self.probe
        assert probe is not None
        rec = TurnRecord(self.index, self.client.index, kind, -1, 0.0)
        user_end: float | None = None
        interrupt_t: float | None = None
        state: TurnState | None = None
        tail: asyncio.Task[None] | None = None
        try:
            if kind in ("text", "trigger") or (kind == "voice" and self.script.voice_mode(self.opts.backend) == "ptt"):
                if kind == "text":
                    fields: dict[str, Any] = {"text": fill(spec.text or "Hello.", self.index)}
                    msg_type = "text"
                elif kind == "trigger":
                    fields = {"name": spec.name, "message": spec.message}
                    msg_type = "trigger"
                else:
                    await self._stream(self.utterances[spec.utterance_key()])
                    fields, msg_type = {}, "end_of_utterance"
                user_end = now()
                ack = await self._request(msg_type, **fields)
                rec.ack_ms = (now() - user_end) * 1000.0
                rec.turn = ack["turn"]
            else:  # voice, server VAD: the backend decides when the utterance ended
                utt = self.utterances[spec.utterance_key()]
                speech_start = now()
                await self._stream(utt)
                user_end = now()
                tail = asyncio.get_running_loop().create_task(self._stream(silence_utterance(utt, VAD_TAIL_S)))
                rec.turn = await self._until(
                    lambda: probe.voice_turn_after(speech_start) or probe.fatal or probe.closed,
                    user_end + self.opts.turn_timeout_s,
                )
                if not isinstance(rec.turn, int) or isinstance(rec.turn, bool):
                    raise SessionGone(str(rec.turn))
            state = probe.turn(rec.turn)
            until = user_end + self.opts.turn_timeout_s
            if spec.interrupt_after_ms is not None:
                await self._until(lambda: state.first_output_t is not None or state.done, until)
                if not state.done and state.first_output_t is not None:
                    delay = state.first_output_t + spec.interrupt_after_ms / 1000.0 - now()
                    if delay > 0:
                        await asyncio.sleep(min(delay, max(0.0, until - now())))
                    if not state.done:
                        interrupt_t = now()
                        await self._request("interrupt")
            await self._until(lambda: state.done, until)
        except RequestFailed as exc:
            rec.error = exc.code
            self.stats.error(exc.code, now())
        except SessionGone as exc:
            rec.error = probe.fatal or ("session_closed" if probe.closed else str(exc))
        except TimeoutError:
            rec.error = "turn_timeout"
            self.stats.error("turn_timeout", now())
        except asyncio.CancelledError:
            rec.error = "cut"
            self._finish(rec, state, user_end, interrupt_t)
            raise
        finally:
            if tail is not None:
                tail.cancel()
        self._finish(rec, state, user_end, interrupt_t)
        return rec

    def _finish(
        self, rec: TurnRecord, state: TurnState | None, user_end: float | None, interrupt_t: float | None
    ) -> None:
        t = now() if user_end is None else user_end
        rec.start_s = round(t - self.stats.started_at, 4)

        def ms(x: float | None) -> float | None:
            return None if x is None or user_end is None else round((x - user_end) * 1000.0, 3)

        if state is not None:
            rec.first_text_ms = ms(state.first_text_t)
            rec.first_audio_ms = ms(state.first_audio_t)
            rec.turn_ms = ms(state.completed_t)
            rec.interrupted = state.interrupted
            if interrupt_t is not None and state.completed_t is not None and state.interrupted:
                rec.interrupt_ms = round((state.completed_t - interrupt_t) * 1000.0, 3)
            rec.audio_ms = round(state.audio_s * 1000.0, 3)
            rec.frames = state.frames
            rec.underruns = state.playout.underruns
            rec.underruns_upstream = state.upstream.underruns
            rec.gap_ms_max = round(state.playout.gap_max_s * 1000.0, 3)
            rec.seq_gaps = state.seq_gaps
            rec.bridge_ms_max = None if state.bridge_max_ms is None else round(state.bridge_max_ms, 3)
            if not rec.error and state.error:
                rec.error = state.error
            if self.probe is not None:
                self.probe.forget(state.turn)
        self.stats.add_turn(rec, t)


def silence_utterance(like: Utterance, seconds: float) -> Utterance:
    return Utterance(silence(like.rate, like.channels, seconds), like.rate, like.channels)
