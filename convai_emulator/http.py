"""The emulator's HTTP surfaces, one aiohttp app serving both Convai hosts.

Realtime service (live.convai.com / realtime-api.convai.com):
``POST /connect``, ``POST /disconnect?session_id=``, ``POST /connect/stream`` (SSE), ``GET /healthz``.
REST gateway (api.convai.com): ``POST /character/getResponse``, ``POST /character/get``,
``POST /user/speaker/new``. Emulator-only: ``/_emulator/*`` (see ``convai_emulator.admin``).

Paths, field names, headers, status codes and error bodies follow convai-apis.md (sections 1, 2, 15).
Where the reference is silent the emulator makes a documented choice:

* getResponse with an unknown ``sessionID`` starts a fresh conversation under that id (a client that
  echoes the id back keeps its context); an id belonging to another character gets a new id.
* getResponse ``stream=True`` is answered with the ordinary JSON (no source shows the streamed form).
* getResponse audio uploads are "transcribed" by the convention in ``convai_emulator.wavfile``;
  a file that is not mono integer PCM WAV of >= 16 bit → 400 ``{"ERROR": "Invalid audio file: ..."}``.
* ``/connect/stream`` with ``character_session_id: "-1"`` → 422 (a validation error, as pydantic
  would raise for a rejected value); an unknown id → 404 ``Character session not found``.
* ``/connect`` checks the API key before validating the body (401 wins over 422).
* ``/connect`` with ``transport: "daily"`` validates but answers 400: the emulator hosts no Daily rooms.
* ``/connect`` resuming an unknown ``character_session_id`` → 404 ``Character session not found``
  (400 ``Invalid character_session_id`` under the ``stale_session`` profile, ``convai_emulator.profiles``);
  one that belongs to another character → 403 ``Character session belongs to a different character``.
* ``/connect`` multi-character ``characters`` are validated (an unknown id → 404) but the session
  holds only ``character_id``.
* ``/connect`` 429 ``concurrency_limit`` counts live sessions per API key
  (``EmulatorConfig.max_sessions_per_key``); ``/disconnect``, idle reaping and shutdown free them.

Other modules extend the app through ``create_app(config, extensions=[...])``: each extension gets the
app after the core routes exist and may add routes, ``on_startup`` hooks and live-session listeners
(``app[LIVE_SESSIONS].on_end(...)``), or replace ``app[ROOM_PROVIDER]``.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import json
import logging
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from functools import partial
from typing import Any

from aiohttp import web
from multidict import MultiDict, MultiDictProxy

from convai_emulator import admin
from convai_emulator.brain import (
    ActionConfig,
    Conversation,
    ConversationStore,
    SceneObject,
    SessionForbidden,
    SessionNotFound,
)
from convai_emulator.config import EmulatorConfig
from convai_emulator.connect_schema import missing, validate_connect
from convai_emulator.faults import FaultInjector
from convai_emulator.live_sessions import (
    LiveKitRoomProvider,
    LiveSession,
    LiveSessionRegistry,
    RoomGrant,
)
from convai_emulator.profiles import MSG_INVALID_SESSION, ProfileError, ProfileSelection, get_profile
from convai_emulator.roster import Character, load_roster
from convai_emulator.state import (
    ADDRESS,
    CONFIG,
    CONVERSATIONS,
    DROP_STREAM_AFTER,
    FAULTS,
    LIVE_SESSIONS,
    LIVEKIT,
    PROFILES,
    ROOM_PROVIDER,
    ROSTER,
    STATS,
    STT,
    SYNTH,
    BoundAddress,
    RequestStats,
)
from convai_emulator.stt import make_recognizer, roster_phrases
from convai_emulator.tokens import LiveKitCredentials
from convai_emulator.voice import Synthesizer
from convai_emulator.wavfile import WavError, read_wav, transcribe

log = logging.getLogger(__name__)

MAX_BODY_BYTES = 32 << 20  # WAV uploads
REST_PREFIXES = ("/character/", "/user/")

# Messages taken from the reference (section 2.4, 15.1) -----------------------------------------------
MSG_REST_MISSING_KEY = "The request is missing an API key."
MSG_REST_INVALID_KEY = "The request contains an invalid API key."
MSG_REST_RATE_LIMIT = "API rate limit exceeded. Please try again later."
MSG_REST_ONE_INPUT = "Expecting only one; either an audio file or user's query as a string"
MSG_LIVE_AUTH_REQUIRED = "Authentication required: provide X-API-Key or API-AUTH-TOKEN"
MSG_LIVE_INVALID_KEY = "Invalid API key"
MSG_CHARACTER_NOT_FOUND = "Character not found or doesn't belong to user"
MSG_MISSING_END_USER = ("Missing end_user_id. end_user_id is required when the character has Long Term Memory "
                        "enabled. Provide end_user_id or disable Long Term Memory.")
MSG_AUDIO_CONFIG_TRANSPORT = "audio_config is only supported with LiveKit transport, but transport is set to '{}'"
MSG_DISCONNECTED = "Session disconnected successfully"
MSG_BAD_SESSION_FORMAT = "Invalid session ID format"
# Emulator choices where the reference gives no text
MSG_SESSION_NOT_FOUND = "Character session not found"
MSG_SESSION_FORBIDDEN = "Character session belongs to a different character"


_compact = partial(json.dumps, separators=(",", ":"), ensure_ascii=False)


def json_body(data: Any, status: int = 200, headers: Mapping[str, str] | None = None) -> web.Response:
    """Compact JSON like Starlette's JSONResponse."""
    return web.json_response(data, status=status, headers=headers, dumps=_compact)


def detail(status: int, message: Any, headers: Mapping[str, str] | None = None) -> web.Response:
    return json_body({"detail": message}, status, headers)


def gateway_error(status: int, message: str, headers: Mapping[str, str] | None = None) -> web.Response:
    """Errors of the API gateway in front of the REST service (auth, rate limits) carry a reference id."""
    return json_body({"ERROR": message, "Reference ID": str(uuid.uuid4())}, status, headers)


def service_error(status: int, message: str) -> web.Response:
    """Errors of the REST service itself: ``{"ERROR": ...}`` only."""
    return json_body({"ERROR": message}, status)


def key_id(api_key: str) -> str:
    return hashlib.sha256(api_key.encode()).hexdigest()[:16]


def is_rest_path(path: str) -> bool:
    return path.startswith(REST_PREFIXES)


def public_base(app: web.Application, session: LiveSession | None = None) -> str:
    config = app[CONFIG]
    return config.public_url or app[ADDRESS].base_url or (session.origin if session else "http://127.0.0.1")


# --- middlewares -----------------------------------------------------------------------------------
def _fault_body(path: str, status: int, retry_after_s: int) -> web.Response:
    headers = {"Retry-After": str(retry_after_s)} if status in (429, 503) else None
    if is_rest_path(path):
        texts = {429: MSG_REST_RATE_LIMIT, 500: "Internal Server Error", 503: "Service Unavailable"}
        return gateway_error(status, texts.get(status, "Request failed (injected fault)"), headers)
    texts = {429: "Rate limit exceeded. Please try again later.", 500: "Internal server error",
             503: "Service temporarily unavailable"}
    return detail(status, texts.get(status, "Request failed (injected fault)"), headers)


@web.middleware
async def _outer(request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
                 ) -> web.StreamResponse:
    """FastAPI-style 404/405 bodies and per-route request counts."""
    route = request.match_info.route.resource
    name = f"{request.method} {route.canonical}" if route is not None else f"{request.method} <unmatched>"
    status = 500
    try:
        response = await handler(request)
        status = response.status
        return response
    except web.HTTPException as exc:
        status = exc.status
        if exc.status == 404 and exc.text in (None, "404: Not Found"):
            return detail(404, "Not Found")
        if exc.status == 405:
            allow = exc.headers.get("Allow")
            return detail(405, "Method Not Allowed", {"Allow": allow} if allow else None)
        raise
    except (asyncio.CancelledError, ConnectionResetError):
        status = 499
        raise
    except Exception:
        log.exception("unhandled error on %s", name)
        return detail(500, "Internal server error")
    finally:
        request.app[STATS].record(name, status)


@web.middleware
async def _faults(request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
                  ) -> web.StreamResponse:
    if request.path.startswith(admin.PREFIX):
        return await handler(request)
    outcome = request.app[FAULTS].draw(request.path)
    if outcome.delay_s:
        await asyncio.sleep(outcome.delay_s)
    if outcome.status is not None:
        return _fault_body(request.path, outcome.status, outcome.retry_after_s)
    if outcome.drop_stream_after is not None:
        request[DROP_STREAM_AFTER] = outcome.drop_stream_after
    return await handler(request)


# --- auth ------------------------------------------------------------------------------------------
def _authenticate(request: web.Request, key_headers: Sequence[str]) -> tuple[str | None, str | None]:
    """(key_id, None) or (None, "missing" | "invalid"). The key header wins over API-AUTH-TOKEN."""
    config = request.app[CONFIG]
    for header in key_headers:
        supplied = request.headers.get(header)
        if supplied:
            return (key_id(supplied), None) if supplied in config.api_keys else (None, "invalid")
    token = request.headers.get("API-AUTH-TOKEN")
    if token:
        session = request.app[LIVE_SESSIONS].get(token.strip())
        return (session.key_id, None) if session is not None else (None, "invalid")
    return None, "missing"


def _rest_auth(request: web.Request) -> tuple[str | None, web.Response | None]:
    kid, problem = _authenticate(request, ("CONVAI-API-KEY",))
    if problem == "missing":
        return None, gateway_error(401, MSG_REST_MISSING_KEY)
    if problem == "invalid":
        return None, gateway_error(401, MSG_REST_INVALID_KEY)
    return kid, None


def _live_auth(request: web.Request) -> tuple[str | None, web.Response | None]:
    kid, problem = _authenticate(request, ("X-API-Key",))
    if problem == "missing":
        return None, detail(401, MSG_LIVE_AUTH_REQUIRED)
    if problem == "invalid":
        return None, detail(401, MSG_LIVE_INVALID_KEY)
    return kid, None


# --- form helpers ------------------------------------------------------------------------------------
async def _form(request: web.Request) -> MultiDictProxy[Any]:
    """Multipart or urlencoded form; a JSON object body is accepted too (values used as given)."""
    if request.content_type == "application/json":
        try:
            data = await request.json()
        except (json.JSONDecodeError, UnicodeDecodeError):
            data = {}
        return MultiDictProxy(MultiDict(data if isinstance(data, dict) else {}))
    return await request.post()


def _text(form: Mapping[str, Any], name: str) -> str | None:
    value = form.get(name)
    if isinstance(value, str):
        return value
    if isinstance(value, bool | int | float):
        return str(value)
    return None


def _truthy(value: str | None) -> bool:
    return value is not None and value.strip().lower() in ("true", "1", "yes", "on")


def _json_list(raw: str | None) -> list[dict[str, Any]]:
    """Action-API ``objects``/``characters``: a JSON list, or older ``json.dumps(obj)+";"`` pieces."""
    if not raw or not raw.strip():
        return []
    try:
        parsed = json.loads(raw)
        items = parsed if isinstance(parsed, list) else [parsed]
    except json.JSONDecodeError:
        items = []
        for piece in raw.split(";"):
            if piece.strip():
                with contextlib.suppress(json.JSONDecodeError):
                    items.append(json.loads(piece))
    return [i for i in items if isinstance(i, dict)]


def _rest_action_config(form: Mapping[str, Any]) -> ActionConfig | None:
    actions_raw = _text(form, "actions")
    if not actions_raw or not actions_raw.strip():
        return None
    actions = [a.strip() for a in actions_raw.split(",") if a.strip()]
    return ActionConfig.from_payload({
        "actions": actions,
        "objects": _json_list(_text(form, "objects")),
        "characters": _json_list(_text(form, "characters")),
        "current_attention_object": _text(form, "currentAttentionObject") or _text(form, "current_attention_object"),
    })


async def _upload_bytes(value: Any) -> bytes | None:
    if isinstance(value, web.FileField):
        return await asyncio.get_running_loop().run_in_executor(None, value.file.read)
    if isinstance(value, bytes | bytearray):
        return bytes(value)
    return None


# --- REST gateway ----------------------------------------------------------------------------------
async def get_response(request: web.Request) -> web.Response:
    _, failure = _rest_auth(request)
    if failure:
        return failure
    form = await _form(request)
    user_text = _text(form, "userText")
    upload = form.get("file")
    has_text = bool(user_text and user_text.strip())
    has_file = upload is not None and not (isinstance(upload, str) and not upload.strip())
    if has_text == has_file:
        return service_error(400, MSG_REST_ONE_INPUT)

    char_id = (_text(form, "charID") or "").strip()
    character = request.app[ROSTER].get(char_id)
    if character is None:
        reason = "charID is required" if not char_id else f"Character with ID '{char_id}' not found"
        return json_body({"charID": char_id, "text": f"process_failure, error: {reason}"}, 404)

    voice_response = _truthy(_text(form, "voiceResponse"))
    rate_raw = _text(form, "sample_rate")
    sample_rate = request.app[CONFIG].rest_sample_rate
    if rate_raw and rate_raw.strip():
        try:
            sample_rate = int(float(rate_raw))
        except ValueError:
            sample_rate = -1
        if not 8000 <= sample_rate <= 96000:
            return service_error(400, "Invalid sample_rate: expected an integer between 8000 and 96000")

    query = user_text.strip() if has_text and user_text else ""
    if has_file:
        data = await _upload_bytes(upload)
        if data is None:
            return service_error(400, "Invalid audio file: expected a file upload")
        try:
            audio = read_wav(data)
        except WavError as exc:
            return service_error(400, f"Invalid audio file: {exc}")
        if audio.channels != 1:
            return service_error(400, "Invalid audio file: audio must be mono")
        if audio.bits_per_sample < 16:
            return service_error(400, "Invalid audio file: at least 16-bit samples are required")
        query = transcribe(audio)

    conversation = _rest_conversation(request.app[CONVERSATIONS], character, _text(form, "sessionID"))
    action_config = _rest_action_config(form)
    reply = conversation.respond(query, action_config=action_config)

    audio_b64: str | None = None
    rate_text: str | None = None
    if voice_response and reply.text:
        wav = await request.app[SYNTH].wav(reply.text, character.voice, sample_rate)
        audio_b64 = base64.b64encode(wav).decode("ascii")
        rate_text = str(sample_rate)

    body: dict[str, Any]
    if action_config is not None:
        sequence = " \n" + "\n ".join(a.to_string() for a in reply.actions) if reply.actions else ""
        body = {"userQuery": query, "charID": char_id, "sessionID": conversation.character_session_id,
                "text": reply.text, "response": reply.text, "actionSequence": sequence,
                "audio": audio_b64, "sample_rate": rate_text}
        classification = _text(form, "classification")
        if classification:
            body["tag"] = classification
    else:
        body = {"charID": char_id, "text": reply.text, "audio": audio_b64, "sample_rate": rate_text,
                "sessionID": conversation.character_session_id}
    if has_file:
        body["UserQuery"] = query
    return json_body(body)


def _rest_conversation(store: ConversationStore, character: Character, session_id: str | None) -> Conversation:
    wanted = (session_id or "").strip()
    if not wanted or wanted == "-1" or len(wanted) > 128:
        return store.create(character)
    existing = store.get(wanted)
    if existing is None:
        return store.create(character, wanted)
    if existing.character.character_id != character.character_id:
        return store.create(character)
    return existing


async def character_get(request: web.Request) -> web.Response:
    _, failure = _rest_auth(request)
    if failure:
        return failure
    form = await _form(request)
    char_id = (_text(form, "charID") or _text(form, "character_id") or "").strip()
    character = request.app[ROSTER].get(char_id)
    if character is None:
        return service_error(404, f"Character with ID '{char_id}' not found" if char_id else "charID is required")
    return json_body({
        "character_id": character.character_id,
        "character_name": character.name,
        "backstory": character.backstory,
        "voice_type": character.voice_type or f"espeak:{character.voice.name}",
        "language_code": character.language_code,
        "language_codes": [character.language_code],
        "model_details": {"METAHUMAN": {"avatar_image_square": "", "avatar_image": ""},
                          "modelPlaceholder": "", "modelLink": "", "modelType": ""},
        "character_actions": sorted({s for rule in character.actions for s in rule.steps}),
        "is_narrative_driven": bool(character.triggers),
        "long_term_memory": character.long_term_memory,
    })


async def speaker_new(request: web.Request) -> web.Response:
    kid, failure = _rest_auth(request)
    if failure:
        return failure
    form = await _form(request)
    device = (_text(form, "deviceId") or _text(form, "name") or "").strip()
    seed = f"{kid}:{device}" if device else str(uuid.uuid4())
    speaker = str(uuid.uuid5(uuid.NAMESPACE_URL, f"convai-emulator-speaker:{seed}"))
    body: dict[str, Any] = {"speakerId": speaker}
    if device:
        body["deviceId"] = device
    return json_body(body)


# --- realtime service ---------------------------------------------------------------------------------
async def healthz(request: web.Request) -> web.Response:
    return json_body({"status": "ok"})


def _apply_connect_context(conversation: Conversation, req: Mapping[str, Any]) -> None:
    if req.get("narrative_template_keys"):
        conversation.update_template_keys(req["narrative_template_keys"])
    info = req.get("dynamic_info")
    if isinstance(info, dict):
        if info.get("static_text") is not None:
            conversation.static_info = info["static_text"]
        if info.get("text") is not None:
            conversation.set_dynamic_info(info["text"])
    if req.get("scene_description") is not None:
        conversation.set_scene(SceneObject(o["name"], o.get("description") or "") for o in req["scene_description"])
    if req.get("action_config") is not None:
        conversation.action_config = ActionConfig.from_payload(req["action_config"])


async def connect(request: web.Request) -> web.Response:
    kid, failure = _live_auth(request)
    if failure or kid is None:
        return failure or detail(401, MSG_LIVE_INVALID_KEY)
    raw = await request.read()
    if not raw.strip():
        return detail(422, [missing(("body",))])
    try:
        body = json.loads(raw)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        position = getattr(exc, "pos", 0)
        message = exc.msg if isinstance(exc, json.JSONDecodeError) else "Invalid UTF-8"
        return detail(422, [{"type": "json_invalid", "loc": ["body", position], "msg": "JSON decode error",
                             "input": {}, "ctx": {"error": message}}])
    req, errors = validate_connect(body)
    if errors or req is None:
        return detail(422, errors)

    app = request.app
    if req.get("audio_config") is not None and req["transport"] != "livekit":
        return detail(400, MSG_AUDIO_CONFIG_TRANSPORT.format(req["transport"]))
    character = app[ROSTER].get(req["character_id"])
    if character is None:
        return detail(404, MSG_CHARACTER_NOT_FOUND)
    for extra in req.get("characters") or ():
        if app[ROSTER].get(extra["character_id"]) is None:
            return detail(404, MSG_CHARACTER_NOT_FOUND)
    end_user_id = req["end_user_id"]
    if character.long_term_memory and end_user_id is None:
        return detail(400, MSG_MISSING_END_USER)
    if req["transport"] == "daily":
        return detail(400, "Transport 'daily' is not available on this emulator; use 'livekit' or 'websocket'")

    try:
        profile = app[PROFILES].resolve(character.character_id, character.profile, req)
    except ProfileError as exc:
        return detail(422, [{"type": "value_error", "loc": ["body", "emulator_profile"], "msg": str(exc),
                             "input": req.get("emulator_profile"), "ctx": {"error": {}}}])
    store = app[CONVERSATIONS]
    csid = req.get("character_session_id")
    conversation: Conversation | None = None
    if csid and csid != "-1":
        try:
            conversation = store.resume(character, csid)
        except SessionNotFound:
            if profile.stale_session_400:  # convai-apis.md §19: what Unity expects and retries on
                return detail(400, MSG_INVALID_SESSION)
            return detail(404, MSG_SESSION_NOT_FOUND)
        except SessionForbidden:
            return detail(403, MSG_SESSION_FORBIDDEN)

    cap = app[CONFIG].max_sessions_per_key
    registry = app[LIVE_SESSIONS]
    active = registry.active_count(kid)
    if active >= cap:
        return detail(429, f"Concurrency limit reached: {active} of {cap} sessions are active for this API key")

    if conversation is None:
        conversation = store.create(character)
    _apply_connect_context(conversation, req)

    session_id = str(uuid.uuid4())
    short = session_id.split("-")[0]
    metadata = req.get("end_user_metadata") if end_user_id is not None else None
    session = LiveSession(
        session_id=session_id, character=character, conversation=conversation, transport=req["transport"],
        connection_type=req["connection_type"], request=req, key_id=kid,
        request_trace_id=f"req_{uuid.uuid4().hex[:12]}",
        user_identity=f"user-{end_user_id}" if end_user_id else f"user-{short}",
        bot_identity=f"convai-{character.character_id.split('-')[-1]}-{short}",
        origin=f"{request.scheme}://{request.host}", end_user_id=end_user_id, end_user_metadata=metadata,
        profile=profile,
    )
    if session.transport == "websocket":
        base = public_base(app, session).replace("https://", "wss://", 1).replace("http://", "ws://", 1)
        grant = RoomGrant(f"{base.rstrip('/')}/chat?session_id={session_id}", None, "")
    else:
        grant = await app[ROOM_PROVIDER].create_room(session)
    session.room_url, session.room_name, session.token = grant.room_url, grant.room_name, grant.token
    await registry.add(session)
    return json_body({
        "session_id": session_id,
        "request_trace_id": session.request_trace_id,
        "character_session_id": conversation.character_session_id,
        "room_url": grant.room_url,
        "room_name": grant.room_name,
        "token": grant.token,
        "end_user_id": end_user_id,
        "end_user_metadata": metadata,
    })


async def disconnect(request: web.Request) -> web.Response:
    session_id = request.query.get("session_id")
    if session_id is None:
        return detail(422, [missing(("query", "session_id"))])
    try:
        uuid.UUID(session_id.strip())
    except ValueError:
        return detail(400, MSG_BAD_SESSION_FORMAT)
    await request.app[LIVE_SESSIONS].end(session_id.strip(), "disconnect")
    return json_body({"status": "success", "message": MSG_DISCONNECTED})


def _sse(event: Mapping[str, Any]) -> bytes:
    return f"data: {json.dumps(event)}\n\n".encode()


async def connect_stream(request: web.Request) -> web.StreamResponse:
    _, failure = _live_auth(request)
    if failure:
        return failure
    form = await _form(request)
    character_id = _text(form, "character_id")
    text_input = _text(form, "text_input")
    csid = _text(form, "character_session_id")
    errors = [missing(("body", name)) for name, value in (("character_id", character_id), ("text_input", text_input))
              if value is None or not value.strip()]
    if csid is not None and csid.strip() == "-1":
        errors.append({"type": "value_error", "loc": ["body", "character_session_id"],
                       "msg": "Value error, character_session_id '-1' is not a session id; omit the field to "
                              "start a new session", "input": csid, "ctx": {"error": {}}})
    if errors:
        return detail(422, errors)
    assert character_id is not None and text_input is not None
    app = request.app
    character = app[ROSTER].get(character_id.strip())
    if character is None:
        return detail(404, MSG_CHARACTER_NOT_FOUND)
    store = app[CONVERSATIONS]
    if csid and csid.strip():
        try:
            conversation = store.resume(character, csid.strip())
        except SessionNotFound:
            if app[PROFILES].resolve(character.character_id, character.profile).stale_session_400:
                return detail(400, MSG_INVALID_SESSION)  # the same realtime service as /connect (§19)
            return detail(404, MSG_SESSION_NOT_FOUND)
        except SessionForbidden:
            return detail(403, MSG_SESSION_FORBIDDEN)
    else:
        conversation = store.create(character)
    reply = conversation.respond(text_input)

    events: list[dict[str, Any]] = [
        {"type": "connection-started", "message": {"session_id": str(uuid.uuid4()), "transport": "sse",
                                                    "character_session_id": conversation.character_session_id}},
        {"label": "rtvi-ai", "type": "bot-llm-started"},
        *({"label": "rtvi-ai", "type": "bot-llm-text", "data": {"text": chunk}} for chunk in reply.chunks),
        {"label": "rtvi-ai", "type": "bot-transcription", "data": {"text": reply.text}},
        {"label": "rtvi-ai", "type": "bot-llm-stopped"},
        {"type": "connection-stoppped"},  # sic: Convai's spelling
    ]
    response = web.StreamResponse(headers={"Content-Type": "text/event-stream; charset=utf-8",
                                           "Cache-Control": "no-cache", "X-Accel-Buffering": "no"})
    await response.prepare(request)
    drop_after = request.get(DROP_STREAM_AFTER)
    delay = app[CONFIG].stream_delay_ms / 1000.0
    for index, event in enumerate(events):
        if drop_after is not None and index >= drop_after:
            # Injected fault: cut the connection without the chunked terminator.
            if request.transport is not None:
                request.transport.abort()
            return response
        if event.get("type") == "bot-llm-text" and delay > 0:
            await asyncio.sleep(delay)
        await response.write(_sse(event))
    await response.write_eof()
    return response


# --- app ----------------------------------------------------------------------------------------------
async def _reaper(app: web.Application) -> None:
    idle = app[CONFIG].live_session_idle_s
    period = max(0.5, min(5.0, idle / 4))
    while True:
        await asyncio.sleep(period)
        await app[LIVE_SESSIONS].reap_idle(idle)


async def _prewarm(app: web.Application) -> None:
    """Greetings in the voices and rates clients most likely ask for, so first turns cost nothing."""
    config = app[CONFIG]
    synth = app[SYNTH]
    for character in app[ROSTER]:
        text = Conversation(character, "prewarm", app[ROSTER]).fill(character.greeting)
        for rate in dict.fromkeys((config.rest_sample_rate, 24000, 48000)):
            await synth.pcm(text, character.voice, rate)


async def _background(app: web.Application) -> AsyncIterator[None]:
    tasks = [asyncio.create_task(_reaper(app))]
    if app[CONFIG].prewarm_audio:
        tasks.append(asyncio.create_task(_prewarm(app)))
    yield
    for task in tasks:
        task.cancel()
    for task in tasks:
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await task
    await app[LIVE_SESSIONS].end_all("shutdown")


def create_app(config: EmulatorConfig | None = None,
               extensions: Sequence[Callable[[web.Application], None]] = ()) -> web.Application:
    """The emulator app; ``extensions`` run last and may add routes, hooks and listeners."""
    config = config or EmulatorConfig()
    app = web.Application(middlewares=[_outer, _faults], client_max_size=MAX_BODY_BYTES)
    roster = load_roster(config.roster_path)
    app[CONFIG] = config
    app[ROSTER] = roster
    app[CONVERSATIONS] = ConversationStore(roster, config.max_conversations)
    app[LIVE_SESSIONS] = LiveSessionRegistry()
    app[FAULTS] = FaultInjector(config.faults, seed=config.fault_seed)
    app[SYNTH] = Synthesizer(config.voice_engine, max_bytes=config.audio_cache_mb << 20)
    app[STATS] = RequestStats()
    app[ADDRESS] = BoundAddress()
    app[PROFILES] = ProfileSelection(get_profile(config.profile, config.profile_options))
    app[STT] = (make_recognizer(roster_phrases(roster), [c.name for c in roster])
                if config.speech_recognition else None)
    credentials = (LiveKitCredentials(config.livekit_api_key, config.livekit_api_secret)
                   if config.livekit_api_secret else LiveKitCredentials.generate(config.livekit_api_key))
    app[LIVEKIT] = credentials
    app[ROOM_PROVIDER] = LiveKitRoomProvider(credentials, lambda s: public_base(app, s), config.token_ttl_s)
    app.cleanup_ctx.append(_background)

    app.router.add_post("/character/getResponse", get_response)
    app.router.add_post("/character/get", character_get)
    app.router.add_post("/user/speaker/new", speaker_new)
    app.router.add_get("/healthz", healthz)
    app.router.add_post("/connect", connect)
    app.router.add_post("/connect/stream", connect_stream)
    app.router.add_post("/disconnect", disconnect)
    admin.add_routes(app)
    for extension in extensions:
        extension(app)
    return app


