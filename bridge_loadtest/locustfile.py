"""Locust users that are NPCs speaking protocol v1: spread NPC load over machines with Locust's master/worker mode.

Run (one machine, or a master plus workers anywhere)::

    LOCUSTFILE=$(python -c 'import bridge_loadtest, os; print(os.path.dirname(bridge_loadtest.__file__))')/locustfile.py
    locust -f $LOCUSTFILE --headless --master --expect-workers 2 -u 40 -r 5 -t 2m --csv out/npcs
    locust -f $LOCUSTFILE --worker --master-host 127.0.0.1      # on each worker machine

Each Locust worker drives its own daemon. By default a worker starts one as it starts up (a
``convai-bridge serve --emulator`` child process, stopped when Locust quits; its NPCs wait for it); set
``CONVAI_BRIDGE_CONNECTION_FILE`` on a worker to use a daemon already running there instead (refused
unless that daemon visibly runs the emulator, or ``CONVAI_BRIDGE_ALLOW_REAL=1``).
``CONVAI_BRIDGE_LOCUST_EMULATOR=separate`` puts the emulator in its own process;
``CONVAI_BRIDGE_LOCUST_DAEMON_WORKERS=N`` sets the daemon's ``--workers``.

Options (sent from the master to every worker): ``--npc-backend live|interaction|stream``,
``--npc-script FILE`` (TOML, see ``bridge_loadtest.script``), ``--npc-prebuffer-ms MS``.

Metrics appear as Locust requests: type ``session`` / name ``open``; type ``turn`` / names
``first_text``, ``first_audio`` (user turn end → first bot text/audio), ``completed`` (→
turn_completed), ``bridge_latency`` (the largest bridge-added latency, now − ts, of that turn's
events), ``audio_gap`` (longest underrun gap of the turn; response_length = underruns). A turn
that fails is a failure of ``first_text`` carrying its error code; an asynchronous session error
is a failure of type ``error`` named after its code.
"""

from __future__ import annotations

import itertools
import logging
import os
import random
import time
from pathlib import Path
from typing import Any

import gevent
import gevent.lock
from locust import User, events, task
from locust.env import Environment
from locust.runners import MasterRunner

from bridge_loadtest.engine import RequestFailed
from bridge_loadtest.green import GreenClient
from bridge_loadtest.green_npc import GreenNpc
from bridge_loadtest.npc import NpcOptions
from bridge_loadtest.script import Script, TurnSpec, adapt_turn, load_script
from bridge_loadtest.speech import Utterance, prepare_utterances
from bridge_loadtest.stats import TurnRecord
from bridge_loadtest.target import LocalStack, Target, existing_target


class TurnFailed(Exception):
    """A turn or session that failed; the message is the error code."""


class _WorkerTarget:
    """The daemon this Locust process drives, started on first use and stopped at quit."""

    def __init__(self) -> None:
        self.lock = gevent.lock.Semaphore()
        self.target: Target | None = None
        self.stack: LocalStack | None = None
        self.script: Script | None = None
        self.utterances: dict[str, Utterance] = {}
        self.counter = itertools.count()

    def start_target(self) -> Target:
        with self.lock:
            if self.target is None:
                started = time.perf_counter()
                conn = os.environ.get("CONVAI_BRIDGE_CONNECTION_FILE")
                if conn:
                    allow = os.environ.get("CONVAI_BRIDGE_ALLOW_REAL") == "1"
                    self.target = existing_target(Path(conn), allow_real=allow)
                else:
                    workers = os.environ.get("CONVAI_BRIDGE_LOCUST_DAEMON_WORKERS")
                    self.stack = LocalStack(
                        emulator=os.environ.get("CONVAI_BRIDGE_LOCUST_EMULATOR", "embedded"),
                        workers=int(workers) if workers else None,
                        max_sessions=10_000,
                    )
                    self.target = self.stack.start()
                log.info("NPC target: %s (ready in %.1f s)", self.target.description, time.perf_counter() - started)
            return self.target

    def get(self, environment: Environment) -> tuple[Target, Script, dict[str, Utterance]]:
        target = self.start_target()
        with self.lock:
            if self.script is None:
                # Read at the first user, not at init: a worker gets the master's options with the spawn.
                path = getattr(environment.parsed_options, "npc_script", "") or None
                self.script = load_script(path)
                self.utterances = prepare_utterances(self.script)
            return target, self.script, self.utterances

    def prestart(self) -> None:
        try:
            self.start_target()
        except Exception:  # users retry and report the failure as theirs
            log.exception("could not start the NPC target")

    def stop(self) -> None:
        with self.lock:
            if self.stack is not None:
                self.stack.stop()
            self.stack = None
            self.target = None


log = logging.getLogger(__name__)
WORKER_TARGET = _WorkerTarget()


@events.init_command_line_parser.add_listener
def _add_options(parser: Any) -> None:
    parser.add_argument("--npc-backend", default="live", choices=["live", "interaction", "stream"],
                        help="convai-bridge session backend")
    parser.add_argument("--npc-script", default="", help="conversation script (TOML); default: the shipped one")
    parser.add_argument("--npc-prebuffer-ms", type=float, default=0.0, help="client jitter-buffer prebuffer")


@events.init.add_listener
def _start_daemon_early(environment: Environment, **_kw: Any) -> None:
    """Workers (and a local run) start their daemon while Locust connects, not when users spawn."""
    if not isinstance(environment.runner, MasterRunner):
        gevent.spawn(WORKER_TARGET.prestart)


@events.quitting.add_listener
def _stop_daemon(environment: Environment, **_kw: Any) -> None:
    WORKER_TARGET.stop()


class ConvaiNpc(User):
    """One NPC: a DEALER connection, one session, the script's turns as tasks with think time."""

    def __init__(self, environment: Environment) -> None:
        super().__init__(environment)
        self.npc: GreenNpc | None = None
        self.client: GreenClient | None = None
        self.turns: Any = iter(())
        self.script: Script | None = None
        self.rng = random.Random()

    def wait_time(self) -> float:
        lo, hi = self.script.think_time_s if self.script else (1.0, 2.0)
        return self.rng.uniform(lo, hi)

    def _fire(self, request_type: str, name: str, ms: float | None, exc: Exception | None = None,
              length: int = 0) -> None:
        if ms is None and exc is None:
            return
        self.environment.events.request.fire(
            request_type=request_type,
            name=name,
            response_time=ms or 0.0,
            response_length=length,
            exception=exc,
            context={},
        )

    def on_start(self) -> None:
        try:
            target, script, utterances = WORKER_TARGET.get(self.environment)
        except Exception as exc:
            log.error("no NPC target: %s", exc)
            self._fire("session", "open", 0.0, TurnFailed("target_failed"))
            return
        self.script = script
        options = self.environment.parsed_options
        index = next(WORKER_TARGET.counter)
        self.rng.seed(index)
        opts = NpcOptions(
            backend=getattr(options, "npc_backend", "live"),
            prebuffer_ms=float(getattr(options, "npc_prebuffer_ms", 0.0)),
        )
        self.client = GreenClient(target.endpoint, target.token)
        try:
            self.client.connect()
            self.npc = GreenNpc(index, self.client, script, utterances, opts, on_error=self._async_error)
            self.npc.open()
        except RequestFailed as exc:
            self._fire("session", "open", 0.0, TurnFailed(exc.code))
            self.npc = None
            return
        self._fire("session", "open", self.npc.open_ms)
        self.turns = itertools.cycle(script.turns) if script.loop else iter(script.turns)

    def _async_error(self, code: str, _t: float) -> None:
        """An `error` event of the session (not a reply): a failure named after its code."""
        self._fire("error", code, 0.0, TurnFailed(code))

    def on_stop(self) -> None:
        if self.npc is not None:
            self.npc.close()
        if self.client is not None:
            self.client.close()
        self.npc = self.client = None

    @task
    def converse(self) -> None:
        if self.npc is None:
            self.stop()
            return
        spec: TurnSpec | None = next(self.turns, None)
        if spec is None:
            self.stop()
            return
        if not self.npc.usable():
            self.npc.close()
            try:
                self.npc.open()
            except RequestFailed as exc:
                self._fire("session", "open", 0.0, TurnFailed(exc.code))
                self.stop()
                return
            self._fire("session", "open", self.npc.open_ms)
        assert self.npc.probe is not None
        adapted = adapt_turn(spec, self.npc.probe.capabilities)
        if adapted is not None:
            self.report(self.npc.turn(adapted))

    def report(self, rec: TurnRecord) -> None:
        if rec.error:
            self._fire("turn", "first_text", rec.turn_ms or 0.0, TurnFailed(rec.error))
            return
        self._fire("turn", "first_text", rec.first_text_ms)
        self._fire("turn", "first_audio", rec.first_audio_ms)
        self._fire("turn", "completed", rec.turn_ms)
        self._fire("turn", "bridge_latency", rec.bridge_ms_max)
        if rec.frames:
            self._fire("turn", "audio_gap", rec.gap_ms_max, length=rec.underruns)
