"""Conversation scripts: what each simulated NPC's player does, loaded from TOML.

```toml
characters = ["c0ffee00-0000-4000-8000-000000000001"]   # NPC i talks to characters[i % len]
think_time_s = [1.0, 3.0]      # pause between turns, uniform in [min, max]
loop = true                    # start over when the turns run out (until --duration ends)
voice = "auto"                 # voice turns: "vad" (stream speech, the backend's VAD ends the turn),
                               # "ptt" (stream, then end_of_utterance), "auto" (vad on live, else ptt)

[[turns]]
kind = "text"                  # text | voice | trigger
text = "Hello! My name is {name}."     # {name}/{npc} are filled per NPC

[[turns]]
kind = "voice"
text = "Could you grab the cube for me?"   # spoken by a synthesized player voice...
# wav = "hello.wav"                        # ...or a WAV file (relative to the script)

[[turns]]
kind = "text"
text = "Tell me everything about the dragon attack."
interrupt_after_ms = 600       # barge in this long after the reply's first audio (or text)

[[turns]]
kind = "trigger"
name = "quest_accept"
message = "The player nods."
```
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field, replace
from importlib import resources
from pathlib import Path
from typing import Any

KINDS = ("text", "voice", "trigger")
VOICE_MODES = ("auto", "vad", "ptt")
DEFAULT_CHARACTERS = ("c0ffee00-0000-4000-8000-000000000001", "c0ffee00-0000-4000-8000-000000000002")
MAX_TURNS = 1000


class ScriptError(ValueError):
    pass


@dataclass(frozen=True)
class TurnSpec:
    kind: str
    text: str = ""
    wav: Path | None = None
    name: str = ""  # trigger name
    message: str | None = None  # trigger message
    interrupt_after_ms: float | None = None

    def utterance_key(self) -> str:
        return str(self.wav) if self.wav else self.text


def adapt_turn(spec: TurnSpec, capabilities: frozenset[str]) -> TurnSpec | None:
    """The turn as this session's backend can run it (``session_opened.capabilities``); None to skip.

    No ``audio_in``: a voice turn is typed instead. No ``triggers``: trigger turns are skipped. No
    ``interrupt``: the turn runs uninterrupted.
    """
    if spec.kind == "trigger" and "triggers" not in capabilities:
        return None
    if spec.kind == "voice" and "audio_in" not in capabilities:
        spec = replace(spec, kind="text", text=spec.text or "Hello.", wav=None)
    if spec.interrupt_after_ms is not None and "interrupt" not in capabilities:
        spec = replace(spec, interrupt_after_ms=None)
    return spec


@dataclass(frozen=True)
class Script:
    turns: tuple[TurnSpec, ...]
    characters: tuple[str, ...] = DEFAULT_CHARACTERS
    think_time_s: tuple[float, float] = (1.0, 3.0)
    loop: bool = True
    voice: str = "auto"
    end_user_id: str | None = None
    source: str = "<built-in>"
    extra: dict[str, Any] = field(default_factory=dict)

    def voice_mode(self, backend: str) -> str:
        if self.voice != "auto":
            return self.voice
        return "vad" if backend == "live" else "ptt"


def _float(value: Any, where: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ScriptError(f"{where} must be a number")
    return float(value)


def _turn(raw: Any, i: int, base: Path | None) -> TurnSpec:
    where = f"turns[{i}]"
    if not isinstance(raw, dict):
        raise ScriptError(f"{where} must be a table")
    unknown = set(raw) - {"kind", "text", "wav", "name", "message", "interrupt_after_ms"}
    if unknown:
        raise ScriptError(f"{where}: unknown keys {', '.join(sorted(unknown))}")
    kind = raw.get("kind", "text")
    if kind not in KINDS:
        raise ScriptError(f"{where}.kind must be one of {', '.join(KINDS)}")
    interrupt = raw.get("interrupt_after_ms")
    if interrupt is not None:
        interrupt = _float(interrupt, f"{where}.interrupt_after_ms")
        if not 0 <= interrupt <= 60_000:
            raise ScriptError(f"{where}.interrupt_after_ms must be 0..60000")
    text = raw.get("text", "")
    if not isinstance(text, str):
        raise ScriptError(f"{where}.text must be a string")
    wav = None
    if kind == "voice":
        if "wav" in raw:
            wav = Path(str(raw["wav"])).expanduser()
            if not wav.is_absolute() and base is not None:
                wav = base / wav
            if not wav.is_file():
                raise ScriptError(f"{where}.wav: no such file {wav}")
        elif not text.strip():
            raise ScriptError(f"{where}: a voice turn needs text (synthesized) or wav")
    elif kind == "text" and not text.strip():
        raise ScriptError(f"{where}: a text turn needs text")
    name = raw.get("name", "")
    if kind == "trigger" and (not isinstance(name, str) or not name):
        raise ScriptError(f"{where}: a trigger turn needs name")
    message = raw.get("message")
    if message is not None and not isinstance(message, str):
        raise ScriptError(f"{where}.message must be a string")
    return TurnSpec(kind, text, wav, name, message, interrupt)


def parse_script(data: dict[str, Any], base: Path | None = None, source: str = "<memory>") -> Script:
    known = {"turns", "characters", "think_time_s", "loop", "voice", "end_user_id"}
    unknown = set(data) - known
    if unknown:
        raise ScriptError(f"{source}: unknown keys {', '.join(sorted(unknown))}")
    raw_turns = data.get("turns")
    if not isinstance(raw_turns, list) or not raw_turns:
        raise ScriptError(f"{source}: [[turns]] must list at least one turn")
    if len(raw_turns) > MAX_TURNS:
        raise ScriptError(f"{source}: at most {MAX_TURNS} turns")
    turns = tuple(_turn(t, i, base) for i, t in enumerate(raw_turns))
    characters = data.get("characters", list(DEFAULT_CHARACTERS))
    if isinstance(characters, str):
        characters = [characters]
    if not isinstance(characters, list) or not characters or not all(isinstance(c, str) for c in characters):
        raise ScriptError(f"{source}: characters must be a non-empty list of ids")
    think = data.get("think_time_s", [1.0, 3.0])
    if isinstance(think, int | float) and not isinstance(think, bool):
        think = [think, think]
    if not isinstance(think, list) or len(think) != 2:
        raise ScriptError(f"{source}: think_time_s must be a number or [min, max]")
    lo, hi = _float(think[0], "think_time_s"), _float(think[1], "think_time_s")
    if not 0 <= lo <= hi <= 3600:
        raise ScriptError(f"{source}: think_time_s must satisfy 0 <= min <= max <= 3600")
    loop = data.get("loop", True)
    if not isinstance(loop, bool):
        raise ScriptError(f"{source}: loop must be true or false")
    voice = data.get("voice", "auto")
    if voice not in VOICE_MODES:
        raise ScriptError(f"{source}: voice must be one of {', '.join(VOICE_MODES)}")
    end_user = data.get("end_user_id")
    if end_user is not None and not isinstance(end_user, str):
        raise ScriptError(f"{source}: end_user_id must be a string")
    return Script(turns, tuple(characters), (lo, hi), loop, voice, end_user, source)


def load_script(path: Path | str | None = None) -> Script:
    """The script at ``path``, or the shipped default (``default_script.toml``)."""
    if path is None:
        text = resources.files("bridge_loadtest").joinpath("default_script.toml").read_text(encoding="utf-8")
        return parse_script(tomllib.loads(text), None, "default_script.toml")
    path = Path(path)
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise ScriptError(f"{path}: {exc}") from exc
    return parse_script(data, path.parent, str(path))
