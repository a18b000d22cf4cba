"""Every Convai live message shape → session events (convai-apis.md §4–§8, RTVI catalog)."""

from __future__ import annotations

import base64

import numpy as np
import pytest

from bridge.audio.wav import encode_wav
from bridge.translate import events as ev
from bridge.translate.rtvi import IGNORED, RtviTranslator, demux


def top(kind: str, data: dict | None = None) -> dict:
    msg = {"label": "rtvi-ai", "type": kind}
    if data is not None:
        msg["data"] = data
    return msg


def wrapped(kind: str, **payload: object) -> dict:
    return {"label": "rtvi-ai", "type": "server-message", "data": {"type": kind, **payload}}


def one(message: dict, t: RtviTranslator | None = None) -> list[ev.Event]:
    return (t or RtviTranslator(["Move To", "Pick Up"])).translate(message)


def test_demux_three_envelopes() -> None:
    assert demux(top("bot-llm-text", {"text": "Hi"})) == ("bot-llm-text", {"text": "Hi"})
    assert demux(wrapped("bot-emotion", emotion="joy", scale=2)) == ("bot-emotion", {"emotion": "joy", "scale": 2})
    flat = {"type": "server-response", "event_type": "tts-toggle", "status": "success", "extras": {"enabled": True}}
    assert demux(flat)[1]["event_type"] == "tts-toggle"
    assert demux(top("bot-turn-completed") | {"was_interrupted": True})[1] == {"was_interrupted": True}


@pytest.mark.parametrize(
    ("message", "expected"),
    [
        (top("user-started-speaking"), [ev.TurnStart("voice")]),
        (wrapped("vad-stt-started", timestamp="t", pre_roll_ms=1500), [ev.TurnStart("voice")]),
        (top("user-transcription", {"text": "go grab", "final": False}), [ev.UserTranscript("go grab", False)]),
        (wrapped("final-user-transcription", text="go grab the cube"), [ev.UserTranscript("go grab the cube", True)]),
        (top("bot-llm-text", {"text": "Sure,"}), [ev.BotText("Sure,")]),
        (top("bot-started-speaking"), [ev.BotSpeaking(True)]),
        (wrapped("bot-stopped-speaking", label="rtvi-ai", response_id="r4"), [ev.BotSpeaking(False)]),
        (
            wrapped("action-response", actions=[{"name": "Move To", "target": "cube"}, {"name": "Wave"}]),
            [ev.Actions([{"name": "Move To", "target": "cube"}, {"name": "Wave"}])],
        ),
        (
            wrapped("action-response", actions=["Move To cube", "Pick Up cube"]),
            [ev.Actions([{"name": "Move To", "target": "cube"}, {"name": "Pick Up", "target": "cube"}])],
        ),
        (top("action-response", {"actions": ["Move To cube"]}), [ev.Actions([{"name": "Move To", "target": "cube"}])]),
        (wrapped("bot-emotion", emotion="happy", scale=2), [ev.Emotion("happy", 2)]),
        (wrapped("bot-emotion", emotion="joy", scale=85), [ev.Emotion("joy", 3)]),
        (top("bot-emotion", {"emotion": "fear", "scale": "1"}), [ev.Emotion("fear", 1)]),
        (
            wrapped("behavior-tree-response", bt_code="x", bt_constants="y", narrative_section_id="s2"),
            [ev.Narrative("s2", "x", "y")],
        ),
        (
            wrapped("moderation-response", result=False, user_input="bad", reason="Inappropriate language"),
            [ev.Moderation(False, "Inappropriate language", "bad")],
        ),
        (wrapped("bot-turn-completed", was_interrupted=False), [ev.TurnEnd()]),
        (top("bot-turn-completed") | {"was_interrupted": True}, [ev.TurnEnd(interrupted=True)]),
        (
            wrapped(
                "bot-turn-completed", was_interrupted=False, was_aborted=True, error_reason="audio_delivery_failed"
            ),
            [ev.TurnEnd(aborted=True, reason="audio_delivery_failed")],
        ),
        (top("bot-interrupted"), [ev.TurnEnd(interrupted=True)]),
        (wrapped("user-idle-warning", remaining_seconds=300, message="idle"), [ev.IdleWarning(300, "idle")]),
        (wrapped("llm-no-response", reason="abstain"), [ev.NoResponse("abstain")]),
        (
            wrapped("usage-limit-reached", quota_type="minutes", message="quota"),
            [ev.BackendError("usage_limit", "quota", fatal=True), ev.Closed("usage_limit", "quota")],
        ),
        (wrapped("session-ending", reason="idle_timeout"), [ev.Closed("idle", "idle_timeout")]),
        (
            top("metrics", {"ttfb": [{"processor": "LLM", "value": 0.41}]}),
            [ev.Metrics("ttfb", [{"processor": "LLM", "value": 0.41}])],
        ),
        # pipecat groups several kinds in one message: one protocol event per kind (PROTOCOL.md §5).
        (
            top(
                "metrics",
                {"ttfb": [{"processor": "TTS", "value": 0.2}], "characters": [{"processor": "TTS", "value": 42}]},
            ),
            [
                ev.Metrics("ttfb", [{"processor": "TTS", "value": 0.2}]),
                ev.Metrics("characters", [{"processor": "TTS", "value": 42}]),
            ],
        ),
        (top("metrics", {"note": "free-form"}), [ev.Metrics("custom", {"note": "free-form"})]),
        (wrapped("blendshape-turn-stats", stats={"fps": 60}), [ev.Metrics("blendshape_stats", {"fps": 60})]),
        (top("error", {"error": "boom", "fatal": False}), [ev.BackendError("convai_error", "boom", fatal=False)]),
        # Unity 4.x: an RTVI error without `fatal` is not fatal (convai-apis.md §19).
        (top("error", {"error": "boom"}), [ev.BackendError("convai_error", "boom", fatal=False)]),
        (top("error", {"error": "boom", "fatal": True}), [ev.BackendError("convai_error", "boom", fatal=True)]),
        (top("error-response", {"error": "bad request"}), [ev.ServerAck("error-response", False, "bad request")]),
        (
            top("error-response", {"error": "Unsupported type trigger-message"}) | {"id": "r1"},
            [ev.ServerAck("error-response", False, "Unsupported type trigger-message", {"unsupported": True}, "r1")],
        ),
        (wrapped("interaction-created", interaction_id="i", character_session_id="cs"), [ev.Ready("cs")]),
        (
            {
                "type": "server-response",
                "event_type": "tts-toggle",
                "status": "success",
                "message": "TTS enabled",
                "extras": {"enabled": True},
            },
            [ev.ServerAck("tts-toggle", True, "TTS enabled", {"enabled": True})],
        ),
        (
            wrapped("server-response", event_type="context-update", status="error", message="too long"),
            [ev.ServerAck("context-update", False, "too long", {})],
        ),
        (wrapped("turn-trace", stage="llm"), [ev.Passthrough("turn-trace", {"stage": "llm"})]),
        (top("some-future-event", {"x": 1}), [ev.Passthrough("some-future-event", {"x": 1})]),
    ],
)
def test_message_types(message: dict, expected: list) -> None:
    assert one(message) == expected


@pytest.mark.parametrize("kind", sorted(IGNORED))
def test_ignored_types_are_deliberate(kind: str) -> None:
    assert one(top(kind, {"text": "x"} if "text" in kind or "output" in kind else None)) == []


def test_duplicate_in_the_other_shape_is_dropped_but_repeats_are_kept() -> None:
    t = RtviTranslator()
    assert t.translate(top("bot-started-speaking")) == [ev.BotSpeaking(True)]
    assert t.translate(wrapped("bot-started-speaking")) == []  # same event, other envelope
    assert t.translate(top("bot-started-speaking")) == [ev.BotSpeaking(True)]  # a genuinely new start
    flat = {"type": "server-response", "event_type": "stt-toggle", "status": "success"}
    assert len(t.translate(flat)) == 1
    assert t.translate(wrapped("server-response", event_type="stt-toggle", status="success")) == []


def test_final_transcript_reported_once_across_both_types() -> None:
    t = RtviTranslator()
    assert t.translate(top("user-transcription", {"text": "hello", "final": True})) == [
        ev.UserTranscript("hello", True)
    ]
    assert t.translate(wrapped("final-user-transcription", text="hello")) == []
    assert t.translate(top("final-user-transcription", {"text": "hello"})) == []


def test_visemes_are_timed_from_speaking_start() -> None:
    t = RtviTranslator()
    t.translate(top("bot-started-speaking"))
    frames = [t.translate(wrapped("visemes", visemes={"sil": 0.1, "PP": 0.9}))[0] for _ in range(3)]
    assert [f.seconds for f in frames] == [0.0, 0.01, 0.02]
    assert frames[0].weights[1] == 0.9 and len(frames[0].weights) == 15


def test_blendshape_chunks_count_frames_and_cancel() -> None:
    t = RtviTranslator(blendshape_fps=60)
    t.translate(top("bot-started-speaking"))
    a = t.translate(wrapped("chunked-neurosync-blendshapes", blendshapes=[[0.0] * 61] * 10, format="arkit"))[0]
    b = t.translate(wrapped("chunked-neurosync-blendshapes", blendshapes=[[0.1] * 61] * 10, format="arkit"))[0]
    assert (a.first_frame, b.first_frame, b.fps, b.format) == (0, 10, 60, "arkit")
    single = t.translate(wrapped("neurosync-blendshapes", blendshapes=[0.0] * 251))[0]
    assert single.format == "mha" and len(single.frames) == 1
    cancel = t.translate(wrapped("neurosync-blendshapes-cancel", valid_through_frame_index=179))
    assert cancel == [ev.LipsyncCancel(179, 60)]
    assert t.translate(wrapped("neurosync-blendshapes-cancel", valid_through_frame_index=None)) == [
        ev.LipsyncCancel(None, 60)
    ]


def test_audio_data_pcm_and_wav_chunks() -> None:
    pcm = (np.sin(np.arange(2400) / 5) * 8000).astype("<i2")
    raw = wrapped("audio-data", sample_rate=24000, channels=1, audio=base64.b64encode(pcm.tobytes()).decode())
    (e,) = one(raw)
    assert isinstance(e, ev.BotAudio) and e.sample_rate == 24000 and np.array_equal(e.pcm, pcm)
    wav = encode_wav(pcm, 16000, 1)
    (w,) = one(
        wrapped(
            "audio-data", sample_rate=16000, channels=1, includes_wav_header=True, audio=base64.b64encode(wav).decode()
        )
    )
    assert isinstance(w, ev.BotAudio) and w.sample_rate == 16000 and len(w.pcm) == 2400
    (bad,) = one(wrapped("audio-data", sample_rate=16000, channels=1, audio="!!notbase64"))
    assert isinstance(bad, ev.BackendError)
    (odd,) = one(wrapped("audio-data", sample_rate=16000, channels=1, audio=base64.b64encode(b"abc").decode()))
    assert isinstance(odd, ev.BackendError)


def test_malformed_payloads_never_raise() -> None:
    t = RtviTranslator()
    for message in (
        {"type": None},
        {"type": "server-message", "data": "not a dict"},
        top("bot-llm-text", {"text": 42}),
        top("user-transcription", {"final": True}),
        wrapped("bot-emotion", emotion=None),
        wrapped("visemes", visemes=[1, 2]),
        wrapped("chunked-neurosync-blendshapes", blendshapes="x"),
        wrapped("action-response", actions={"bad": 1}),
        wrapped("user-idle-warning"),
    ):
        assert isinstance(t.translate(message), list)
