"""Validation of the ``POST /connect`` body with FastAPI/pydantic-v2-shaped 422 errors.

The real service is FastAPI; a client that parses ``{"detail": [{"type","loc","msg","input","ctx"}]}``
should see the same error types and messages here (lax coercion as pydantic's python mode: "true"
and 1 are booleans, "5" is an integer, numbers are not strings). Unknown keys are ignored, as
pydantic does by default. Field list: convai-apis.md section 2.2.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import Any

ErrorList = list[dict[str, Any]]
Loc = tuple[str | int, ...]
Validator = Callable[[Any, Loc, ErrorList], Any]


class _Bad:
    def __repr__(self) -> str:
        return "<invalid>"


BAD = _Bad()
REQUIRED = object()
TRANSPORT_ALIASES = {"livekit": "livekit", "internal": "livekit", "external": "livekit", "daily": "daily",
                     "websocket": "websocket"}
SHARED_SESSION_KEY = r"^[a-zA-Z0-9_-]{1,128}$"


def error(errors: ErrorList, kind: str, loc: Loc, msg: str, value: Any, ctx: dict[str, Any] | None = None) -> _Bad:
    entry: dict[str, Any] = {"type": kind, "loc": list(loc), "msg": msg, "input": value}
    if ctx is not None:
        entry["ctx"] = ctx
    errors.append(entry)
    return BAD


def string(value: Any, loc: Loc, errors: ErrorList) -> Any:
    if isinstance(value, str):
        return value
    return error(errors, "string_type", loc, "Input should be a valid string", value)


_TRUE = {"true", "t", "yes", "y", "on", "1"}
_FALSE = {"false", "f", "no", "n", "off", "0"}


def boolean(value: Any, loc: Loc, errors: ErrorList) -> Any:
    if isinstance(value, bool):
        return value
    if isinstance(value, int) and value in (0, 1):
        return bool(value)
    if isinstance(value, str):
        lowered = value.strip().lower()
        if lowered in _TRUE or lowered in _FALSE:
            return lowered in _TRUE
        return error(errors, "bool_parsing", loc, "Input should be a valid boolean, unable to interpret input", value)
    return error(errors, "bool_type", loc, "Input should be a valid boolean", value)


def _bounds(number: float, loc: Loc, errors: ErrorList, ge: float | None, le: float | None, gt: float | None,
            original: Any) -> Any:
    if ge is not None and number < ge:
        return error(errors, "greater_than_equal", loc, f"Input should be greater than or equal to {ge}", original,
                     {"ge": ge})
    if gt is not None and number <= gt:
        return error(errors, "greater_than", loc, f"Input should be greater than {gt}", original, {"gt": gt})
    if le is not None and number > le:
        return error(errors, "less_than_equal", loc, f"Input should be less than or equal to {le}", original,
                     {"le": le})
    return number


def integer(ge: int | None = None, le: int | None = None, gt: int | None = None) -> Validator:
    def check(value: Any, loc: Loc, errors: ErrorList) -> Any:
        number: int
        if isinstance(value, bool) or isinstance(value, int):
            number = int(value)
        elif isinstance(value, float):
            if not value.is_integer():
                return error(errors, "int_from_float", loc,
                             "Input should be a valid integer, got a number with a fractional part", value)
            number = int(value)
        elif isinstance(value, str):
            try:
                number = int(value.strip())
            except ValueError:
                return error(errors, "int_parsing", loc,
                             "Input should be a valid integer, unable to parse string as an integer", value)
        else:
            return error(errors, "int_type", loc, "Input should be a valid integer", value)
        return _bounds(number, loc, errors, ge, le, gt, value)
    return check


def number(ge: float | None = None, le: float | None = None) -> Validator:
    def check(value: Any, loc: Loc, errors: ErrorList) -> Any:
        if isinstance(value, bool | int | float):
            result = float(value)
        elif isinstance(value, str):
            try:
                result = float(value.strip())
            except ValueError:
                return error(errors, "float_parsing", loc,
                             "Input should be a valid number, unable to parse string as a number", value)
        else:
            return error(errors, "float_type", loc, "Input should be a valid number", value)
        return _bounds(result, loc, errors, ge, le, None, value)
    return check


def literal(*choices: str, fold_case: bool = False) -> Validator:
    shown = [repr(c) for c in choices]
    expected = shown[0] if len(shown) == 1 else ", ".join(shown[:-1]) + " or " + shown[-1]

    def check(value: Any, loc: Loc, errors: ErrorList) -> Any:
        candidate = value.lower() if fold_case and isinstance(value, str) else value
        if isinstance(candidate, str) and candidate in choices:
            return candidate
        return error(errors, "literal_error", loc, f"Input should be {expected}", value, {"expected": expected})
    return check


def pattern(regex: str) -> Validator:
    compiled = re.compile(regex)

    def check(value: Any, loc: Loc, errors: ErrorList) -> Any:
        text = string(value, loc, errors)
        if text is BAD:
            return BAD
        if not compiled.search(text):
            return error(errors, "string_pattern_mismatch", loc, f"String should match pattern '{regex}'", value,
                         {"pattern": regex})
        return text
    return check


def any_dict(value: Any, loc: Loc, errors: ErrorList) -> Any:
    if isinstance(value, dict):
        return value
    return error(errors, "dict_type", loc, "Input should be a valid dictionary", value)


def dict_of(inner: Validator) -> Validator:
    def check(value: Any, loc: Loc, errors: ErrorList) -> Any:
        if any_dict(value, loc, errors) is BAD:
            return BAD
        before = len(errors)
        result = {k: inner(v, (*loc, k), errors) for k, v in value.items()}
        return BAD if len(errors) > before else result
    return check


def list_of(inner: Validator) -> Validator:
    def check(value: Any, loc: Loc, errors: ErrorList) -> Any:
        if not isinstance(value, list | tuple):
            return error(errors, "list_type", loc, "Input should be a valid list", value)
        before = len(errors)
        result = [inner(v, (*loc, i), errors) for i, v in enumerate(value)]
        return BAD if len(errors) > before else result
    return check


def nullable(inner: Validator) -> Validator:
    def check(value: Any, loc: Loc, errors: ErrorList) -> Any:
        return None if value is None else inner(value, loc, errors)
    return check


def model(fields: Mapping[str, tuple[Validator, Any]], extra: bool = True) -> Validator:
    """A pydantic model: ``fields`` maps name → (validator, default or REQUIRED); extra keys kept."""
    def check(value: Any, loc: Loc, errors: ErrorList) -> Any:
        if not isinstance(value, dict):
            return error(errors, "model_attributes_type", loc,
                         "Input should be a valid dictionary or object to extract fields from", value)
        before = len(errors)
        result: dict[str, Any] = {k: v for k, v in value.items() if k not in fields} if extra else {}
        for name, (validator, default) in fields.items():
            if name not in value:
                if default is REQUIRED:
                    error(errors, "missing", (*loc, name), "Field required", value)
                else:
                    result[name] = default
                continue
            result[name] = validator(value[name], (*loc, name), errors)
        return BAD if len(errors) > before else result
    return check


def transport(value: Any, loc: Loc, errors: ErrorList) -> Any:
    text = string(value, loc, errors)
    if text is BAD:
        return BAD
    normalised = TRANSPORT_ALIASES.get(text.strip().lower())
    if normalised is None:
        return error(errors, "value_error", loc, f"Value error, Invalid transport: {text}", value, {"error": {}})
    return normalised


def action_item(value: Any, loc: Loc, errors: ErrorList) -> Any:
    if isinstance(value, str):
        return value
    if isinstance(value, dict):
        return model({"value": (string, REQUIRED)})(value, loc, errors)
    return error(errors, "string_type", loc, "Input should be a valid string", value)


def attention(value: Any, loc: Loc, errors: ErrorList) -> Any:
    if value is None or isinstance(value, str | dict):
        return value
    return error(errors, "string_type", loc, "Input should be a valid string", value)


_opt_str = (nullable(string), None)
_opt_bool = (nullable(boolean), None)

END_USER_METADATA = model({"name": _opt_str})
DYNAMIC_INFO = model({"text": _opt_str, "static_text": _opt_str, "keep_in_context": _opt_bool})
SCENE_ITEM = model({"name": (string, REQUIRED), "description": (nullable(string), "")})
ACTION_CONFIG = model({
    "actions": (nullable(list_of(action_item)), []),
    "objects": (nullable(list_of(model({"name": (string, REQUIRED), "description": (nullable(string), "")}))), []),
    "characters": (nullable(list_of(model({"name": (string, REQUIRED), "bio": (nullable(string), "")}))), []),
    "current_attention_object": (attention, None),
})
AUDIO_OUTPUT = model({
    "audio_routing": (literal("audio_only", "data_only", "both"), "audio_only"),
    "max_chunk_duration_ms": (integer(ge=10, le=1000), 100),
    "add_wav_header": (boolean, False),
    "sample_rate": (nullable(integer(gt=0)), None),
})
AUDIO_CONFIG = model({"output": (AUDIO_OUTPUT, None)})
VAD_PARAMS = model({
    "confidence": (number(ge=0, le=1), 0.7), "start_secs": (number(ge=0), 0.2),
    "stop_secs": (number(ge=0), 0.2), "min_volume": (number(ge=0, le=1), 0.6),
})
TURN_DETECTION = model({"type": (literal("smart_turn", "not_provided"), "not_provided"),
                        "params": (nullable(any_dict), None)})
BLENDSHAPE_CONFIG = model({
    "provider": _opt_str, "enable_chunking": (boolean, True), "chunk_size": (integer(ge=1), 10),
    "output_fps": (integer(ge=1), 60), "frames_buffer_duration": (number(ge=0), 0.0),
    "format": (literal("mha", "arkit", fold_case=True), "mha"),
})
EMOTION_CONFIG = model({"provider": (literal("llm", "nrclex"), "llm")})
CHARACTER_REF = model({"character_id": (string, REQUIRED)})

CONNECT_REQUEST = model({
    "character_id": (string, REQUIRED),
    "transport": (nullable(transport), "livekit"),
    "connection_type": (nullable(literal("audio", "video")), "audio"),
    "character_session_id": _opt_str,
    "end_user_id": _opt_str,
    "end_user_metadata": (nullable(END_USER_METADATA), None),
    "speaker_id": _opt_str,
    "dynamic_info": (nullable(DYNAMIC_INFO), None),
    "scene_description": (nullable(list_of(SCENE_ITEM)), None),
    "narrative_template_keys": (nullable(dict_of(string)), None),
    "action_config": (nullable(ACTION_CONFIG), None),
    "emotion_config": (nullable(EMOTION_CONFIG), None),
    "thinking_mode": (nullable(boolean), False),
    "respond_modes": (nullable(dict_of(literal("silent", "auto", "must_respond"))), None),
    "llm_provider": (nullable(literal("dynamic", "gemini-live", "gemini-live-beta", "gemini-baml")), "dynamic"),
    "stt_provider": _opt_str,
    "disable_live_fallback": (nullable(boolean), True),
    "audio_config": (nullable(AUDIO_CONFIG), None),
    "default_tts_enabled": (nullable(boolean), True),
    "default_stt_enabled": (nullable(boolean), True),
    "vad_params": (nullable(VAD_PARAMS), None),
    "turn_detection_config": (nullable(TURN_DETECTION), None),
    "blendshape_provider": (nullable(literal("not_provided", "ovr", "neurosync", "none")), "not_provided"),
    "blendshape_config": (nullable(BLENDSHAPE_CONFIG), None),
    "vision_input_config": (nullable(any_dict), None),
    "video_track_name": (nullable(string), "camera"),
    "max_num_participants": (nullable(integer(ge=1)), 1),
    "shared_session_key": (nullable(pattern(SHARED_SESSION_KEY)), None),
    "mode": (nullable(literal("create", "join")), "create"),
    "room_name": _opt_str,
    "spawn_agent": (nullable(boolean), True),
    "characters": (nullable(list_of(CHARACTER_REF)), None),
    "debug": (nullable(boolean), False),
    "debug_row_cap": (nullable(integer(ge=0)), None),
    "invocation_metadata": (nullable(any_dict), None),
})

# Nullable fields with a non-null default fall back to the default when sent as null.
_DEFAULTS = {"transport": "livekit", "connection_type": "audio", "thinking_mode": False, "llm_provider": "dynamic",
             "disable_live_fallback": True, "default_tts_enabled": True, "default_stt_enabled": True,
             "blendshape_provider": "not_provided", "video_track_name": "camera", "max_num_participants": 1,
             "mode": "create", "spawn_agent": True, "debug": False}


def validate_connect(body: Any) -> tuple[dict[str, Any] | None, ErrorList]:
    """(normalised request, []) or (None, pydantic-style errors with ``loc`` starting at "body")."""
    errors: ErrorList = []
    result = CONNECT_REQUEST(body, ("body",), errors)
    if errors or result is BAD:
        return None, errors
    for key, default in _DEFAULTS.items():
        if result.get(key) is None:
            result[key] = default
    end_user_id = result.get("end_user_id")
    result["end_user_id"] = end_user_id.strip() or None if isinstance(end_user_id, str) else None
    if result["blendshape_provider"] == "none":
        result["blendshape_provider"] = "not_provided"
    if isinstance(result.get("audio_config"), dict) and result["audio_config"].get("output") is None:
        result["audio_config"]["output"] = AUDIO_OUTPUT({}, ("body", "audio_config", "output"), [])
    return result, []


def missing(loc: Loc, value: Any = None) -> dict[str, Any]:
    return {"type": "missing", "loc": list(loc), "msg": "Field required", "input": value}
