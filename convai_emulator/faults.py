"""Fault injection, so clients can be tested against a misbehaving Convai.

A fault is a rule; each request (admin routes excluded) is checked against the rules in order. A rule
whose ``paths`` match (empty = every path; a trailing ``*`` matches a prefix) *fires* with
``probability`` (seeded, so runs repeat) while its ``count`` lasts (absent = forever). A firing rule
contributes:

* ``latency_ms``: added delay before the request is handled;
* ``hang_ms``: a further delay meant to outlast a client timeout (bounded by ``MAX_HANG_MS``);
  the request is then answered normally;
* ``status``: answer with this status instead (first firing rule wins) in the surface's error style:
  ``{"ERROR": ...}`` on the REST gateway paths (``/character/*``, ``/user/*``), ``{"detail": ...}``
  elsewhere; 429 and 503 carry ``Retry-After: retry_after_s``;
* ``drop_stream_after``: a streaming response (SSE) is cut off, without a proper end, after this
  many events.

Rules come from CLI flags (``--latency-ms N``, ``--fault status=429,count=2,paths=/connect``) or at
runtime from ``POST /_emulator/faults`` (see ``convai_emulator.admin``).
"""

from __future__ import annotations

import random
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

MAX_HANG_MS = 120_000
MAX_LATENCY_MS = 60_000
_INT_KEYS = ("status", "count", "latency_ms", "hang_ms", "drop_stream_after", "retry_after_s")


class FaultSpecError(ValueError):
    """A fault rule that cannot be applied; the message says which field is wrong."""


@dataclass
class FaultRule:
    status: int | None = None
    probability: float = 1.0
    count: int | None = None
    paths: tuple[str, ...] = ()
    latency_ms: int = 0
    hang_ms: int = 0
    drop_stream_after: int | None = None
    retry_after_s: int = 1

    def __post_init__(self) -> None:
        if self.status is not None and not 400 <= self.status <= 599:
            raise FaultSpecError("status must be an HTTP error status (400..599)")
        if not 0.0 <= self.probability <= 1.0:
            raise FaultSpecError("probability must be within 0..1")
        if self.count is not None and self.count < 1:
            raise FaultSpecError("count must be >= 1")
        if not 0 <= self.latency_ms <= MAX_LATENCY_MS:
            raise FaultSpecError(f"latency_ms must be within 0..{MAX_LATENCY_MS}")
        if not 0 <= self.hang_ms <= MAX_HANG_MS:
            raise FaultSpecError(f"hang_ms must be within 0..{MAX_HANG_MS}")
        if self.drop_stream_after is not None and self.drop_stream_after < 0:
            raise FaultSpecError("drop_stream_after must be >= 0")
        if self.retry_after_s < 0:
            raise FaultSpecError("retry_after_s must be >= 0")
        if (self.status is None and not self.latency_ms and not self.hang_ms
                and self.drop_stream_after is None):
            raise FaultSpecError("a fault needs status, latency_ms, hang_ms or drop_stream_after")

    def matches(self, path: str) -> bool:
        if not self.paths:
            return True
        return any(path.startswith(p[:-1]) if p.endswith("*") else path == p for p in self.paths)

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["paths"] = list(self.paths)
        return data

    @classmethod
    def from_mapping(cls, raw: Mapping[str, Any]) -> FaultRule:
        unknown = set(raw) - set(cls.__dataclass_fields__)
        if unknown:
            raise FaultSpecError(f"unknown fault keys: {sorted(unknown)}")
        values: dict[str, Any] = {}
        for key, value in raw.items():
            if key == "paths":
                paths = [value] if isinstance(value, str) else value
                if not isinstance(paths, list) or not all(isinstance(p, str) and p.startswith("/") for p in paths):
                    raise FaultSpecError("paths must be a list of absolute paths")
                values[key] = tuple(paths)
            elif key == "probability":
                if isinstance(value, bool) or not isinstance(value, int | float):
                    raise FaultSpecError("probability must be a number")
                values[key] = float(value)
            elif value is None and key in ("status", "count", "drop_stream_after"):
                values[key] = None
            else:
                if isinstance(value, bool) or not isinstance(value, int):
                    raise FaultSpecError(f"{key} must be an integer")
                values[key] = value
        return cls(**values)

    @classmethod
    def from_spec(cls, spec: str) -> FaultRule:
        """CLI form: ``status=429,count=2,paths=/a|/b,probability=0.5,retry_after_s=3``."""
        raw: dict[str, Any] = {}
        for item in filter(None, (p.strip() for p in spec.split(","))):
            key, sep, value = item.partition("=")
            key = key.strip()
            if not sep:
                raise FaultSpecError(f"expected key=value, got {item!r}")
            if key in ("paths", "path"):
                raw["paths"] = [p for p in value.split("|") if p]
            elif key == "probability":
                try:
                    raw[key] = float(value)
                except ValueError as exc:
                    raise FaultSpecError("probability must be a number") from exc
            elif key in _INT_KEYS:
                try:
                    raw[key] = int(value)
                except ValueError as exc:
                    raise FaultSpecError(f"{key} must be an integer") from exc
            else:
                raise FaultSpecError(f"unknown fault key {key!r}")
        return cls.from_mapping(raw)


@dataclass
class FaultOutcome:
    delay_s: float = 0.0
    status: int | None = None
    retry_after_s: int = 1
    drop_stream_after: int | None = None
    fired: list[int] = field(default_factory=list)  # indexes of the rules that fired


class FaultInjector:
    def __init__(self, rules: tuple[FaultRule, ...] | list[FaultRule] = (), seed: int = 0) -> None:
        self.rules: list[FaultRule] = [FaultRule(**asdict(r)) for r in rules]  # own copies: counts mutate
        self._rng = random.Random(seed)
        self.fired_total = 0

    def clear(self) -> None:
        self.rules.clear()

    def add(self, rule: FaultRule) -> None:
        self.rules.append(rule)

    def configure(self, payload: Mapping[str, Any]) -> None:
        """Admin body: ``{"clear": true}``, one rule's keys, ``{"rules": [...]}``, or clear plus rules."""
        body = dict(payload)
        clear = body.pop("clear", False)
        if not isinstance(clear, bool):
            raise FaultSpecError("clear must be a boolean")
        rules_raw = body.pop("rules", None)
        rules: list[FaultRule] = []
        if rules_raw is not None:
            if not isinstance(rules_raw, list) or not all(isinstance(r, Mapping) for r in rules_raw):
                raise FaultSpecError("rules must be a list of objects")
            rules = [FaultRule.from_mapping(r) for r in rules_raw]
        if body:
            rules.append(FaultRule.from_mapping(body))
        if not clear and not rules:
            raise FaultSpecError("nothing to do: give fault keys, rules, or clear")
        if clear:
            self.clear()
        self.rules.extend(rules)

    def draw(self, path: str) -> FaultOutcome:
        """Decide this request's faults, consuming counts."""
        outcome = FaultOutcome()
        for index, rule in enumerate(self.rules):
            if not rule.matches(path):
                continue
            if rule.probability < 1.0 and self._rng.random() >= rule.probability:
                continue
            outcome.fired.append(index)
            outcome.delay_s += (rule.latency_ms + rule.hang_ms) / 1000.0
            if rule.status is not None and outcome.status is None:
                outcome.status = rule.status
                outcome.retry_after_s = rule.retry_after_s
            if rule.drop_stream_after is not None:
                current = outcome.drop_stream_after
                outcome.drop_stream_after = (rule.drop_stream_after if current is None
                                             else min(current, rule.drop_stream_after))
            if rule.count is not None:
                rule.count -= 1
        if outcome.fired:
            self.fired_total += 1
            self.rules = [r for r in self.rules if r.count is None or r.count > 0]
        return outcome

    def snapshot(self) -> dict[str, Any]:
        return {"rules": [r.to_dict() for r in self.rules], "fired_requests": self.fired_total}
