"""Shapes Convai's own clients accept, and the standard-RTVI dialect (convai-apis.md §19, rtvi-smallwebrtc.md)."""

from __future__ import annotations

from bridge.backends.live.backend import LiveBackend
from bridge.translate import events as ev
from bridge.translate.blendshape_names import ARKIT_61
from bridge.translate.rtvi import Peer, RtviTranslator, capabilities_for, outbound, peer_from_bot_ready


def top(kind: str, data: dict | None = None) -> dict:
    msg = {"label": "rtvi-ai", "type": kind}
    if data is not None:
        msg["data"] = data
    return msg


def wrapped(kind: str, **payload: object) -> dict:
    return {"label": "rtvi-ai", "type": "server-message", "data": {"type": kind, **payload}}


def texts(t: RtviTranslator, messages: list[dict]) -> list[str]:
    return [e.text for m in messages for e in t.translate(m) if isinstance(e, ev.BotText)]


def test_reply_text_comes_from_its_first_source_only() -> None:
    t = RtviTranslator()
    # Convai voice turn: llm chunks plus sentence-level transcription of the same text: chunks only.
    assert texts(t, [top("bot-llm-text", {"text": "Hi"}), top("bot-transcription", {"text": "Hi"})]) == ["Hi"]
    t.translate(top("bot-turn-completed"))
    # A server that sends the text only as bot-transcription: not lost.
    assert texts(t, [top("bot-transcription", {"text": "One."}), top("bot-transcription", {"text": "Two."})]) == [
        "One.",
        "Two.",
    ]
    t.translate(top("bot-interrupted"))
    # RTVI 2.x: only bot-output, once per segment (new, then completed).
    out = [
        top("bot-output", {"text": "A.", "segment_id": "s1", "spoken_status": "new"}),
        top("bot-output", {"text": "A.", "segment_id": "s1", "spoken_status": "completed"}),
        top("bot-output", {"text": "B.", "segment_id": "s2", "spoken_status": "new"}),
    ]
    assert texts(t, out) == ["A.", "B."]


def test_tts_text_becomes_a_subtitle_with_optional_word_timings() -> None:
    t = RtviTranslator()
    assert t.translate(top("bot-tts-text", {"text": "Sure"})) == [ev.Subtitle("Sure")]
    timed = top("bot-tts-text", {"text": "on my", "words": [{"word": "on", "start": 0.1, "end": 0.2}, {"text": "my"}]})
    assert t.translate(timed) == [ev.Subtitle("on my", (ev.Word("on", 100, 200), ev.Word("my")))]


def test_llm_and_tts_phases_are_reported_for_turn_end_inference() -> None:
    t = RtviTranslator()
    assert t.translate(top("bot-llm-started")) == [ev.ReplyPhase("llm", True)]
    assert t.translate(top("bot-llm-stopped", {})) == [ev.ReplyPhase("llm", False)]
    assert t.translate(top("bot-tts-started")) == [ev.ReplyPhase("tts", True)]
    assert t.translate(top("bot-tts-stopped")) == [ev.ReplyPhase("tts", False)]


def test_blendshape_index_from_payload_fps_from_payload_and_one_clock_per_reply() -> None:
    t = RtviTranslator(blendshape_fps=60)
    chunk = [[0.0] * 61] * 10
    # Chunks may beat bot-started-speaking; a second speaking segment does not restart the count.
    a = t.translate(wrapped("chunked-neurosync-blendshapes", blendshapes=chunk, format="arkit", sequence=0))[0]
    t.translate(top("bot-started-speaking"))
    b = t.translate(wrapped("chunked-neurosync-blendshapes", blendshapes=chunk, format="arkit", sequence=1))[0]
    t.translate(top("bot-stopped-speaking"))
    t.translate(top("bot-started-speaking"))
    c = t.translate(wrapped("chunked-neurosync-blendshapes", blendshapes=chunk, format="arkit", sequence=2))[0]
    assert (a.first_frame, b.first_frame, c.first_frame) == (0, 10, 20)
    # Unity reads fps and start_frame_index from each payload.
    d = t.translate(wrapped("chunked-neurosync-blendshapes", blendshapes=chunk, fps=30, start_frame_index=90))[0]
    assert (d.first_frame, d.fps) == (90, 30)
    # The next reply starts over (sequence 0 after the turn ended).
    t.translate(wrapped("bot-turn-completed", was_interrupted=False))
    e = t.translate(wrapped("chunked-neurosync-blendshapes", blendshapes=chunk, format="arkit", sequence=0))[0]
    assert e.first_frame == 0


def test_named_blendshape_frames_are_put_in_index_order() -> None:
    t = RtviTranslator()
    (e,) = t.translate(wrapped("chunked-neurosync-blendshapes", blendshapes=[{"JawOpen": 0.5, "EyeBlinkLeft": 1.0}]))
    assert e.format == "arkit" and len(e.frames[0]) == 61
    assert e.frames[0][ARKIT_61.index("JawOpen")] == 0.5 and e.frames[0][0] == 1.0


def test_user_input_is_a_transcript_and_answers_send_text() -> None:
    t = RtviTranslator()
    echo = top("user-input", {"text": "Hello", "input_type": "chat", "final": True, "msg_id": "m1"})
    assert t.translate(echo) == [ev.UserTranscript("Hello", True), ev.ServerAck("send-text", True, request_id="m1")]


def test_peer_dialect_from_bot_ready() -> None:
    pipecat = top("bot-ready", {"version": "1.2.0", "about": {"library": "pipecat-ai", "library_version": "1.14.0"}})
    assert peer_from_bot_ready(pipecat, convai_seen=False).dialect == "rtvi"
    assert peer_from_bot_ready(pipecat, convai_seen=True).dialect == "convai"  # interaction-created came
    convai = top("bot-ready", {"version": "1.0.0", "about": {"character_session_id": "cs", "character_id": "c"}})
    assert peer_from_bot_ready(convai, convai_seen=False).dialect == "convai"


def test_outbound_shapes_per_dialect() -> None:
    convai, stock = Peer("convai"), Peer("rtvi")
    scene = [{"name": "anvil", "description": "iron"}]
    assert outbound(convai, "scene_update", {"scene": scene}) == ("update-scene-metadata", scene)  # newest Unity, UE
    assert outbound(convai, "trigger", {"name": None, "message": "walks in"}) == (
        "trigger-message",
        {"trigger_message": "walks in"},
    )
    assert outbound(stock, "text", {"text": "Hi", "voice": True}) == (
        "send-text",
        {"content": "Hi", "options": {"run_immediately": True, "audio_response": True}},
    )
    for request in ("trigger", "context_update", "tts_toggle", "stt_toggle", "scene_update", "interrupt"):
        assert outbound(stock, request, {}) is None
    caps = capabilities_for(Peer("rtvi", capabilities={"audio_in": False, "audio_out": True}), LiveBackend.capabilities)
    assert set(caps) == {"audio_out", "text_stream", "lipsync", "interrupt"}
    assert capabilities_for(convai, LiveBackend.capabilities) == LiveBackend.capabilities
