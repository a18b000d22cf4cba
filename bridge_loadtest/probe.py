"""Per-session measurement, independent of I/O: fed every daemon message of one session with its receive time.

The asyncio load tester and the gevent Locust user both drive it. Times are ``time.perf_counter()``
seconds taken when the message came off the socket, so the NPC's own scheduling does not inflate
latencies. Turn states are created on first sight of a turn id (events can arrive before the ack
that names the turn) and kept in a bounded map.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field

from bridge.wire.codec import Message
from bridge_loadtest.playout import PlayoutModel

# Events the daemon sends as soon as the upstream data arrives; their `ts` gives the bridge-added
# latency. Audio frames, lip sync and the markers that ride behind audio (bot_stopped_speaking,
# bot_reply, turn_completed) wait for the real-time audio clock on purpose and are excluded.
IMMEDIATE_EVENTS = frozenset(
    {
        "bot_text",
        "user_transcript",
        "bot_started_speaking",
        "actions",
        "emotion",
        "narrative",
        "moderation",
        "no_response",
        "session_state",
        "server_event",
        "metrics",
        "idle_warning",
    }
)
MAX_TURN_STATES = 32


@dataclass
class TurnState:
    turn: int
    source: str | None = None
    started_t: float | None = None  # turn_started received
    first_text_t: float | None = None
    first_audio_t: float | None = None
    completed_t: float | None = None
    interrupted: bool = False
    aborted: bool = False
    error: str = ""
    audio_s: float = 0.0
    frames: int = 0
    seq_gaps: int = 0
    bridge_max_ms: float | None = None
    playout: PlayoutModel = field(default_factory=PlayoutModel)
    # The same model on the daemon's receive clock (audio_out ts): underruns that were already there
    # when the audio reached the daemon (upstream + WebRTC receive), which no pacing could fix.
    upstream: PlayoutModel = field(default_factory=PlayoutModel)

    @property
    def done(self) -> bool:
        return self.completed_t is not None or bool(self.error)

    @property
    def first_output_t(self) -> float | None:
        outs = [t for t in (self.first_text_t, self.first_audio_t) if t is not None]
        return min(outs) if outs else None


class SessionProbe:
    """Tracks one session's turns; the callbacks report errors, bridge latencies (t, ms, is_audio),
    underrun gaps (ms), and ``notify()`` says something changed that a waiting NPC may care about."""

    def __init__(
        self,
        prebuffer_s: float = 0.0,
        on_error: Callable[[str, float], None] | None = None,
        on_bridge: Callable[[float, float, bool], None] | None = None,
        on_gap: Callable[[float], None] | None = None,
        notify: Callable[[], None] | None = None,
    ) -> None:
        self.prebuffer_s = prebuffer_s
        self.on_error = on_error or (lambda code, t: None)
        self.on_bridge = on_bridge or (lambda t, ms, audio: None)
        self.on_gap = on_gap or (lambda ms: None)
        self.notify = notify or (lambda: None)
        self.turns: OrderedDict[int, TurnState] = OrderedDict()
        self.opened: Message | None = None
        self.capabilities: frozenset[str] = frozenset()
        self.opened_t: float | None = None
        self.closed: str | None = None  # session_closed reason
        self.state = "connecting"  # ready | reconnecting | resumed (from session_opened / session_state)
        self.reconnects = 0
        self.fatal: str | None = None  # code of a fatal session error
        self.voice_turns: list[tuple[int, float]] = []  # (turn, time) of turn_started source=voice
        self._last_seq: int | None = None

    def turn(self, turn: int) -> TurnState:
        state = self.turns.get(turn)
        if state is None:
            state = TurnState(turn, playout=PlayoutModel(self.prebuffer_s), upstream=PlayoutModel(self.prebuffer_s))
            self.turns[turn] = state
            while len(self.turns) > MAX_TURN_STATES:
                self.turns.popitem(last=False)
        return state

    def forget(self, turn: int) -> None:
        self.turns.pop(turn, None)

    def on_message(self, msg: Message, t: float, now_us: int) -> None:
        kind = msg.type
        ts = msg.get("ts")
        if ts is not None and kind in IMMEDIATE_EVENTS:
            self.on_bridge(t, (now_us - ts) / 1000.0, False)
        turn_id = msg.get("turn")
        state = self.turn(turn_id) if isinstance(turn_id, int) else None
        if kind == "audio_out":
            if ts is not None:
                self.on_bridge(t, (now_us - ts) / 1000.0, True)
            seq = msg["seq"]
            if self._last_seq is not None and seq > self._last_seq + 1:
                if state is not None:
                    state.seq_gaps += seq - self._last_seq - 1
            self._last_seq = seq
            if state is None or state.done:
                return  # late audio of a finished turn: a client drops it
            duration = msg["samples"] / msg["sample_rate"]
            if state.first_audio_t is None:
                state.first_audio_t = t
                self.notify()
            state.frames += 1
            state.audio_s += duration
            if ts is not None:
                state.upstream.frame(ts / 1e6, duration)
            gap = state.playout.frame(t, duration)
            if gap is not None:
                self.on_gap(gap * 1000.0)
            return
        if state is not None and ts is not None and kind in IMMEDIATE_EVENTS:
            ms = (now_us - ts) / 1000.0
            state.bridge_max_ms = ms if state.bridge_max_ms is None else max(state.bridge_max_ms, ms)
        if kind == "bot_text" and state is not None:
            if state.first_text_t is None:
                state.first_text_t = t
                self.notify()
        elif kind == "turn_started" and state is not None:
            state.source = msg["source"]
            state.started_t = t
            if state.source == "voice":
                self.voice_turns.append((state.turn, t))
                del self.voice_turns[:-8]
            self.notify()
        elif kind == "turn_completed" and state is not None:
            state.completed_t = t
            state.interrupted = bool(msg["interrupted"])
            state.aborted = bool(msg.get("aborted", False))
            if state.aborted:
                state.error = msg.get("reason") or "aborted"
            self.notify()
        elif kind == "session_opened":
            self.opened = msg
            self.opened_t = t
            self.capabilities = frozenset(msg["capabilities"])
            self.state = "ready"
            self.notify()
        elif kind == "session_state":
            self.state = msg["state"]
            if self.state == "reconnecting":
                # The backend connection (or the daemon worker holding it) dropped: turns in flight
                # will not complete; the session itself may resume.
                self.reconnects += 1
                self.on_error("session_reconnecting", t)
                for st in self.turns.values():
                    if not st.done:
                        st.error = "session_reconnecting"
            self.notify()
        elif kind == "session_closed":
            self.closed = msg["reason"]
            for st in self.turns.values():
                if not st.done:
                    st.error = "session_closed"
            self.notify()
        elif kind == "error":
            code = msg["code"]
            self.on_error(code, t)
            if msg["fatal"]:
                self.fatal = code
                for st in self.turns.values():
                    if not st.done:
                        st.error = code
            self.notify()

    @property
    def usable(self) -> bool:
        return self.closed is None and self.fatal is None and self.state in ("ready", "resumed")

    def voice_turn_after(self, t: float) -> int | None:
        """The first voice turn the backend started at or after ``t`` (server VAD heard the NPC)."""
        for turn, started in self.voice_turns:
            if started >= t:
                return turn
        return None
