"""The bot's data-channel behaviour (acks, envelopes, turn order, shape variants) without WebRTC."""

from __future__ import annotations

import asyncio
from typing import Any

from conftest import BotHarness
from emu_lk_client import event_type

from convai_emulator.realtime.bot import BotConfig
from convai_emulator.realtime.shapes import ShapeOptions
from convai_emulator.realtime.vad import VadParams

ALL_CLIENT_MESSAGES: list[tuple[str, Any]] = [
    ("user_text_message", {"text": "hello"}),
    ("trigger-message", {"trigger_name": "forge_tour", "trigger_message": "Player arrives"}),
    ("update-template-keys", {"template_keys": {"player_name": "Alice"}}),
    ("update-dynamic-info", {"dynamic_info": {"text": "It is raining."}}),
    ("context-update", {"text": "A dragon is near.", "mode": "append", "run_llm": "false"}),
    ("update-scene-metadata", {"scene_metadata": [{"name": "anvil", "description": "heavy"}]}),
    ("tts-toggle", {"enabled": False}),
    ("stt-toggle", {"muted": False}),
    ("interrupt-bot", {}),
    ("force-user-stopped-speaking", {}),
    ("reset-idle-timer", {}),
    ("usage-toggle", {"enabled": True}),
]


def acks(h: BotHarness) -> list[dict[str, Any]]:
    return [m for m in h.sent if event_type(m) == "server-response"]


def ordered(types: list[str], expected: list[str]) -> bool:
    """``expected`` appears in ``types`` as a subsequence."""
    it = iter(types)
    return all(any(t == e for t in it) for e in expected)


async def test_every_client_message_type_is_acked_in_all_envelopes(harness_factory) -> None:
    h = harness_factory(BotConfig(tts_enabled=False, llm_chunk_delay_s=0.0))
    for i, (type_, data) in enumerate(ALL_CLIENT_MESSAGES):
        h.send({"label": "rtvi-ai", "type": type_, "id": f"l{i}", "data": data})  # Unity / UE
        h.send({"type": type_, "data": {**data, "participant_sid": "PA_x"}})  # W12
        h.send({"label": "rtvi-ai", "type": "client-message", "id": f"w{i}", "data": {"t": type_, "d": data}})
        await asyncio.sleep(0)
    flat = [m for m in acks(h) if "event_type" in m]
    wrapped = [m for m in acks(h) if "t" in m.get("data", {})]
    for i, (type_, _) in enumerate(ALL_CLIENT_MESSAGES):
        labelled = [m for m in flat if m.get("id") == f"l{i}"]
        assert labelled and labelled[0]["event_type"] == type_ and labelled[0]["status"] == "success", type_
        assert sum(1 for m in flat if m["event_type"] == type_) >= 2, type_
        reply = [m for m in wrapped if m["id"] == f"w{i}"]
        assert reply and reply[0]["data"]["t"] == type_ and reply[0]["data"]["d"]["status"] == "success", type_
    tts = next(m for m in flat if m["event_type"] == "tts-toggle")
    assert tts["message"] == "TTS disabled" and tts["extras"] == {"enabled": False}
    ctx = next(m for m in flat if m["event_type"] == "context-update")
    assert ctx["extras"]["max_tokens"] == 50000 and "A dragon is near." in ctx["extras"]["content"]
    await h.wait_type("bot-turn-completed")


async def test_bad_input_is_answered_per_convai_rules(harness_factory) -> None:
    h = harness_factory()
    h.send("not json")
    h.send({"data": {}})
    h.send({"label": "rtvi-ai", "type": "make-coffee", "id": "u1", "data": {}})
    h.send({"type": "user_text_message", "data": {"text": "   "}})
    kinds = [(m["event_type"], m["status"]) for m in acks(h)]
    assert kinds == [("parse-error", "error"), ("validation-error", "error"), ("unknown-message-type", "error"),
                     ("user_text_message", "error")]
    unknown = acks(h)[2]
    assert unknown["message"] == "Unknown message type: make-coffee" and unknown["id"] == "u1"
    assert "user_text_message" in unknown["extras"]["supported_types"]
    echo = harness_factory(unknown_event_type="echo")
    echo.send({"type": "make-coffee"})
    assert acks(echo)[0]["event_type"] == "make-coffee"


async def test_text_turn_follows_convai_order(harness_factory) -> None:
    h = harness_factory(BotConfig(llm_chunk_delay_s=0.0, debug=True))
    h.bot.on_channel_open()
    h.send({"label": "rtvi-ai", "type": "user_text_message", "id": "m1", "data": {"text": "Please grab the cube"}})
    await h.wait_type("bot-turn-completed", timeout=15)
    types = h.types()
    assert types[:2] == ["interaction-created", "bot-ready"]
    expected = ["server-response", "user-started-speaking", "user-transcription", "final-user-transcription",
                "user-stopped-speaking", "bot-llm-started", "bot-llm-text", "bot-llm-stopped", "action-response",
                "bot-emotion", "bot-tts-started", "bot-started-speaking", "visemes", "bot-tts-text",
                "bot-stopped-speaking", "bot-tts-stopped", "bot-turn-completed"]
    assert ordered(types, expected), types
    final = h.of("final-user-transcription")[0]["data"]
    assert final["text"] == "Please grab the cube" and final["message_id"] == "m1"
    text = "".join(m["data"]["text"] for m in h.of("bot-llm-text"))
    assert text == "Sure, I'll fetch the cube."
    assert h.of("action-response")[0]["data"]["actions"] == [{"name": "Move To", "target": "cube"},
                                                             {"name": "Pick Up", "target": "cube"}]
    assert h.of("bot-turn-completed")[0]["data"]["was_interrupted"] is False
    assert h.of("metrics"), "debug sessions get metrics"
    first_viseme = types.index("visemes")
    assert types.index("bot-started-speaking") < first_viseme < types.index("bot-stopped-speaking")
    assert len(h.of("visemes")) >= 50  # 100 fps over the reply


async def test_client_ready_gets_bot_ready_with_its_id(harness_factory) -> None:
    h = harness_factory(bot_ready="client-ready")
    h.bot.on_channel_open()
    assert h.types() == ["interaction-created"]
    h.send({"label": "rtvi-ai", "type": "client-ready", "id": "cr1",
            "data": {"version": "1.2.0", "about": {"library": "ue_sdk"}}})
    ready = h.of("bot-ready")
    assert len(ready) == 1 and ready[0]["id"] == "cr1" and ready[0]["data"]["version"] == "1.2.0"
    h.send({"label": "rtvi-ai", "type": "client-ready", "id": "cr2", "data": {"version": "0.3.0"}})
    assert h.sent[-2]["type"] == "error-response" and h.sent[-2]["id"] == "cr2"
    assert h.sent[-1]["type"] == "bot-ready" and h.sent[-1]["data"]["version"] == "1.0.0"


async def test_shape_variants(harness_factory) -> None:
    h = harness_factory(duplicate_events=True, action_format="strings", speaking_events="wrapped",
                        turn_completed="top", error_response=True)
    h.send({"label": "rtvi-ai", "type": "user_text_message", "id": "m1", "data": {"text": "grab the cube"}})
    await h.wait_type("bot-turn-completed", count=2, timeout=15)
    assert h.sent[0]["type"] == "error-response" and h.sent[0]["data"]["error"] == "Unsupported type user_text_message"
    responses = h.of("server-response")
    assert {("event_type" in m) for m in responses} == {True, False}  # flat and wrapped
    wrapped_ack = next(m for m in responses if m["type"] == "server-message")
    assert wrapped_ack["data"]["event_type"] == "user_text_message"
    actions = h.of("action-response")
    assert actions[0]["type"] == "server-message" and actions[0]["data"]["actions"] == ["Move To cube", "Pick Up cube"]
    assert actions[1]["type"] == "action-response"  # W12's top-level reading
    started = h.of("bot-started-speaking")
    assert [m["type"] for m in started] == ["server-message", "bot-started-speaking"]
    assert started[0]["data"]["label"] == "rtvi-ai" and started[0]["data"]["response_id"]
    completed = h.of("bot-turn-completed")
    assert [m["type"] for m in completed] == ["bot-turn-completed", "server-message"]
    assert len(h.of("final-user-transcription")) == 2


async def test_character_flags_select_shapes(harness_factory) -> None:
    from convai_emulator.realtime.characters import shapes_for
    from convai_emulator.roster import load_roster

    for character in load_roster():
        shapes = shapes_for(character)
        assert shapes.action_format == character.flags.action_format
        assert shapes.server_response == character.flags.server_response
        assert shapes.error_response == character.flags.error_response
    merged = ShapeOptions().merged({"server_response": "wrapped", "nonsense": 1})
    assert merged.server_response == "wrapped"


async def test_interrupt_closes_turn_and_cancels_blendshapes(harness_factory) -> None:
    config = BotConfig(llm_chunk_delay_s=0.0, blendshape_provider="neurosync", blendshape_format="arkit")
    h = harness_factory(config)
    h.send({"type": "user_text_message", "data": {"text": "tell me about the dragon attack on the village"}})
    await h.wait_type("bot-started-speaking", timeout=15)
    await h.wait_type("chunked-neurosync-blendshapes")
    await asyncio.sleep(0.3)
    h.send({"type": "interrupt-bot", "data": {}})
    h.send({"type": "interrupt-bot", "data": {}})
    acks_ = [m for m in h.of("server-response") if m["event_type"] == "interrupt-bot"]
    assert acks_[1]["message"] == "Bot interrupt debounced (duplicate within window)"
    completed = h.of("bot-turn-completed")
    assert completed and completed[-1]["data"]["was_interrupted"] is True
    cancel = h.of("neurosync-blendshapes-cancel")
    assert cancel and cancel[0]["data"]["reason"] == "interruption"
    assert cancel[0]["data"]["valid_through_frame_index"] >= 10
    chunk = h.of("chunked-neurosync-blendshapes")[0]["data"]
    assert chunk["format"] == "arkit" and all(len(frame) == 61 for frame in chunk["blendshapes"])
    assert len(chunk["blendshapes"]) == 10
    types = h.types()
    assert types.index("bot-interrupted") < types.index("bot-turn-completed")
    assert "bot-stopped-speaking" in types[types.index("bot-interrupted"):]
    assert not h.speaker.speaking


async def test_mha_blendshapes_and_turn_stats(harness_factory) -> None:
    h = harness_factory(BotConfig(llm_chunk_delay_s=0.0, blendshape_provider="neurosync"))
    h.send({"type": "user_text_message", "data": {"text": "wave"}})
    await h.wait_type("bot-turn-completed", timeout=15)
    chunks = h.of("chunked-neurosync-blendshapes")
    assert chunks and all(len(f) == 251 for c in chunks for f in c["data"]["blendshapes"])
    assert [c["data"]["sequence"] for c in chunks] == list(range(len(chunks)))
    stats = h.of("blendshape-turn-stats")[0]["data"]["stats"]
    assert stats["total_blendshapes"] == sum(len(c["data"]["blendshapes"]) for c in chunks)
    assert not h.of("visemes")


async def test_audio_data_chunks(harness_factory) -> None:
    import base64

    config = BotConfig(llm_chunk_delay_s=0.0, audio_routing="data_only", audio_chunk_ms=45,
                       audio_wav_header=True, audio_sample_rate=24000)
    h = harness_factory(config)
    h.send({"type": "user_text_message", "data": {"text": "wave"}})
    await h.wait_type("bot-turn-completed", timeout=15)
    chunks = [m["data"] for m in h.of("audio-data")]
    assert len(chunks) > 5
    raw = base64.b64decode(chunks[0]["audio"])
    assert raw[:4] == b"RIFF" and chunks[0]["includes_wav_header"] is True and chunks[0]["sample_rate"] == 24000
    assert len(raw) == 44 + 24000 * 50 // 1000 * 2  # 45 ms rounds up to 50 ms


async def test_trigger_sends_behavior_tree_response(harness_factory) -> None:
    h = harness_factory(BotConfig(tts_enabled=False, llm_chunk_delay_s=0.0))
    h.send({"type": "trigger-message", "data": {"trigger_name": "forge_tour", "trigger_message": "enter"}})
    await h.wait_type("bot-turn-completed")
    bt = h.of("behavior-tree-response")[0]["data"]
    assert bt["narrative_section_id"] == "forge-tour"
    h.send({"type": "trigger-message", "data": {"trigger_name": "no-such-trigger"}})
    assert h.of("server-response")[-1]["message"] == "Trigger message processed without response"


async def test_moderation_and_scene_shapes(harness_factory) -> None:
    h = harness_factory(BotConfig(tts_enabled=False, llm_chunk_delay_s=0.0))
    h.send({"type": "user_text_message", "data": {"text": "you idiot"}})
    await h.wait_type("bot-turn-completed")
    mod = h.of("moderation-response")[0]["data"]
    assert mod["result"] is False and mod["reason"] == "Inappropriate language"
    for data in ({"scene_metadata": [{"name": "a"}]}, [{"name": "b"}], {"metadata": [{"name": "c"}]}):
        h.send({"type": "update-scene-metadata", "data": data})
        assert h.of("server-response")[-1]["status"] == "success"
    assert [o.name for o in h.conversation.scene] == ["c"]


async def test_idle_warning_and_reset(harness_factory) -> None:
    h = harness_factory(BotConfig(idle_warning_s=0.3, idle_remaining_s=120))
    h.bot.start()
    await h.wait_type("user-idle-warning", timeout=3)
    warning = h.of("user-idle-warning")[0]["data"]
    assert warning["remaining_seconds"] == 120 and "2 minutes" in warning["message"]
    h.send({"type": "reset-idle-timer", "data": {}})
    await h.wait_type("user-idle-warning", count=2, timeout=3)


async def test_voice_turn_from_vad_and_force_stop(harness_factory) -> None:
    import numpy as np

    h = harness_factory(BotConfig(llm_chunk_delay_s=0.0, tts_enabled=False, vad=VadParams(stop_secs=0.4)))
    t = np.arange(960) / 48000
    loud = (6000 * np.sin(2 * np.pi * 200 * t)).astype(np.int16)
    quiet = np.zeros(960, np.int16)
    for _ in range(40):  # 0.8 s of "speech"
        h.bot.feed_mic(loud, 0.02)
    for _ in range(30):
        h.bot.feed_mic(quiet, 0.02)
    await h.wait_type("bot-turn-completed")
    types = h.types()
    assert ordered(types, ["vad-stt-started", "user-started-speaking", "user-transcription",
                           "vad-stt-stopped", "user-transcription", "final-user-transcription",
                           "user-stopped-speaking", "bot-llm-started", "bot-turn-completed"]), types
    final = h.of("final-user-transcription")[0]["data"]["text"]
    assert final == "(voice input, 0.8 seconds)"
    assert h.of("vad-stt-stopped")[0]["data"]["reason"] == "hangover_elapsed"
    partials = [m for m in h.of("user-transcription") if not m["data"]["final"]]
    assert partials, "partials while speaking"
    for _ in range(20):
        h.bot.feed_mic(loud, 0.02)
    h.send({"label": "rtvi-ai", "type": "force-user-stopped-speaking", "id": "f1", "data": {}})
    assert h.of("vad-stt-stopped")[-1]["data"]["reason"] == "force_stopped"
    await h.wait_type("bot-turn-completed", count=2)


async def test_abstaining_character_sends_llm_no_response(harness_factory) -> None:
    from convai_emulator.realtime.persona import TurnPlan

    h = harness_factory(BotConfig(llm_chunk_delay_s=0.0))
    h.persona.respond = lambda text, message_id=None: TurnPlan(text="", no_response_reason="abstain")
    h.send({"type": "user_text_message", "data": {"text": "..."}})
    await h.wait_type("bot-turn-completed")
    assert h.of("llm-no-response")[0]["data"]["reason"] == "abstain"
    assert "bot-llm-started" not in h.types() and "bot-tts-started" not in h.types()


async def test_barge_in_interrupts_the_bot(harness_factory) -> None:
    import numpy as np

    h = harness_factory(BotConfig(llm_chunk_delay_s=0.0))
    h.send({"type": "user_text_message", "data": {"text": "tell me about the dragon attack on the village"}})
    await h.wait_type("bot-started-speaking", timeout=15)
    loud = (6000 * np.sin(2 * np.pi * 200 * np.arange(960) / 48000)).astype(np.int16)
    for _ in range(15):
        h.bot.feed_mic(loud, 0.02)
    types = h.types()
    cut = types.index("bot-interrupted")
    assert types.index("bot-turn-completed") > cut and types.index("vad-stt-started") > cut
    assert h.of("bot-turn-completed")[0]["data"]["was_interrupted"] is True
    await asyncio.sleep(0.05)
    assert not h.speaker.speaking
