"""The conversation engine and the roster (no sockets needed)."""

from __future__ import annotations

from pathlib import Path

import pytest

from convai_emulator.brain import (
    Action,
    ActionConfig,
    ConversationStore,
    SceneObject,
    SessionForbidden,
    SessionNotFound,
    llm_chunks,
    word_timings,
)
from convai_emulator.roster import RosterError, load_roster
from tests.emulator.emulator_support import BLACKSMITH, GUARD, INNKEEPER


@pytest.fixture
def store() -> ConversationStore:
    return ConversationStore(load_roster())


def blacksmith(store: ConversationStore):  # type: ignore[no-untyped-def]
    character = store.roster.get(BLACKSMITH)
    assert character is not None
    return store.create(character)


def test_roster_defaults() -> None:
    roster = load_roster()
    assert roster.characters[0].character_id == BLACKSMITH
    assert len(roster.characters) >= 3
    assert roster.get(INNKEEPER).long_term_memory is True
    guard = roster.get(GUARD)
    assert guard.flags.action_format == "strings" and guard.flags.duplicate_events is True
    assert {c.flags.server_response for c in roster} >= {"flat", "wrapped", "both"}


def test_roster_rejects_bad_files(tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text('[[characters]]\ncharacter_id = "x"\nname = "X"\nflags = { action_format = "xml" }\n')
    with pytest.raises(RosterError, match="action_format"):
        load_roster(bad)
    bad.write_text('[[characters]]\ncharacter_id = "x"\nname = "X"\nmood = "grumpy"\n')
    with pytest.raises(RosterError, match="unknown keys"):
        load_roster(bad)
    bad.write_text("[[characters]\n")
    with pytest.raises(RosterError):
        load_roster(bad)


def test_remembers_name_and_quotes_earlier_messages(store: ConversationStore) -> None:
    conv = blacksmith(store)
    assert "Alice" in conv.respond("Hi, my name is Alice").text
    conv.respond("The weather is grim today")
    assert conv.respond("What is my name?").text == "Your name is Alice."
    assert conv.respond("What did I say first?").text == 'First you said: "Hi, my name is Alice".'
    assert conv.respond("what did I just say").text == 'You said: "What did I say first?".'
    conv.respond("Remember that the key is under the mat")
    assert "the key is under the mat" in conv.respond("What did I ask you to remember?").text
    # learned name fills {player_name} when no template key overrides it
    assert conv.greet().text == "Welcome to my forge, Alice! Mind the sparks."


def test_template_keys_and_dynamic_info(store: ConversationStore) -> None:
    conv = blacksmith(store)
    conv.update_template_keys({"player_name": "Geralt"})
    assert "Geralt" in conv.greet().text
    assert conv.respond("any news?").text == "Nothing new, Geralt."
    conv.set_dynamic_info("the king is coming to town")
    assert conv.respond("any news?").text == "Word is: the king is coming to town"
    conv.set_dynamic_info("with his army", mode="append")
    assert conv.context_text() == "the king is coming to town with his army"
    assert conv.fill("{unknown} stays") == "{unknown} stays"


def test_actions_follow_action_config(store: ConversationStore) -> None:
    conv = blacksmith(store)
    reply = conv.respond("Could you grab the cube?")
    assert reply.actions == (Action("Move To", "cube"), Action("Pick Up", "cube"))
    assert reply.action_payload("objects") == [{"name": "Move To", "target": "cube"},
                                              {"name": "Pick Up", "target": "cube"}]
    assert reply.action_payload("strings") == ["Move To cube", "Pick Up cube"]

    conv.action_config = ActionConfig.from_payload({
        "actions": ["Move To", {"value": "Pick Up"}, "Wave"],
        "objects": [{"name": "Torch", "description": "a burning torch"}],
        "characters": [{"name": "Bob", "bio": "a friend"}],
        "currentAttentionObject": "Torch",
    })
    assert conv.respond("grab the torch").actions == (Action("Move To", "Torch"), Action("Pick Up", "Torch"))
    assert conv.respond("grab it").actions == (Action("Move To", "Torch"), Action("Pick Up", "Torch"))
    refused = conv.respond("grab the cube")  # the cube is not a valid target in this scene
    assert refused.actions == () and "don't see any cube" in refused.text
    assert conv.respond("follow me").actions == ()  # Follow is not an allowed action here
    assert conv.respond("wave at Bob").actions == (Action("Wave", "Bob"),)
    assert Action("Wave").to_object() == {"name": "Wave"}


def test_emotion_trigger_and_moderation(store: ConversationStore) -> None:
    conv = blacksmith(store)
    reply = conv.respond("Thanks, that's wonderful")
    assert (reply.emotion.name, reply.emotion.scale) == ("joy", 2)
    assert conv.respond("hello").emotion.name == "neutral"

    section = conv.respond("Show me your work please")
    assert section.narrative is not None and section.narrative.narrative_section_id == "forge-tour"
    assert conv.narrative_section_id == "forge-tour"
    quest = conv.trigger("quest_accept")
    assert quest is not None and quest.narrative.to_payload() == {
        "bt_code": 'give_quest("ore")', "bt_constants": "ore=3", "narrative_section_id": "quest-ore"}
    assert conv.trigger("no-such-trigger") is None
    event = conv.trigger(None, "A dragon lands outside")
    assert event is not None and event.emotion.name == "fear"

    flagged = conv.respond("you stupid smith")
    assert flagged.moderation.result is False and flagged.moderation.reason == "Inappropriate language"
    assert flagged.actions == ()
    assert conv.respond("fetch the cube, you idiot").actions == ()
    assert conv.respond("hello").moderation.result is True


def test_scene_objects(store: ConversationStore) -> None:
    conv = blacksmith(store)
    conv.set_scene([SceneObject("anvil", "a heavy iron anvil"), SceneObject("barrel", "full of water")])
    assert conv.respond("What do you see?").text == "I can see anvil and barrel."
    assert conv.respond("Describe the anvil").text == "The anvil: a heavy iron anvil"


def test_determinism_and_chunks(store: ConversationStore) -> None:
    texts = ["hello", "tell me a story about the old mountain road", "my name is Zed", "what is my name"]
    first = blacksmith(store)
    second = blacksmith(ConversationStore(load_roster()))
    for text in texts:
        a, b = first.respond(text), second.respond(text)
        assert (a.text, a.chunks, a.emotion, a.actions) == (b.text, b.chunks, b.emotion, b.actions)
        assert "".join(a.chunks) == a.text
    long = "Extraordinarily magnificent craftsmanship, isn't it?"
    chunks = llm_chunks(long)
    assert "".join(chunks) == long and len(chunks) > len(long.split())
    timings = word_timings("One two, three.", 1.5)
    assert [t.word for t in timings] == ["One", "two,", "three."]
    assert all(a.end_s <= b.start_s + 1e-9 for a, b in zip(timings, timings[1:], strict=False))
    assert timings[-1].end_s <= 1.5


def test_session_store_resume(store: ConversationStore) -> None:
    conv = blacksmith(store)
    guard = store.roster.get(GUARD)
    assert store.resume(store.roster.get(BLACKSMITH), conv.character_session_id) is conv
    with pytest.raises(SessionNotFound):
        store.resume(guard, "00000000-0000-4000-8000-00000000dead")
    with pytest.raises(SessionForbidden):
        store.resume(guard, conv.character_session_id)
    small = ConversationStore(store.roster, max_conversations=2)
    ids = [small.create(guard).character_session_id for _ in range(3)]
    assert small.get(ids[0]) is None and small.get(ids[2]) is not None
