"""Golden vectors: the committed bytes equal what the schema and codec produce, and round-trip."""

from __future__ import annotations

import json
from pathlib import Path

import msgpack
import pytest

from bridge.wire.codec import Codec, pack
from bridge.wire.errors import ProtocolError
from bridge.wire.schema import load_schema
from bridge.wire.vectors import VECTORS_DIR, build_vectors, check, load_parts

SCHEMA = load_schema()
INDEX = json.loads((VECTORS_DIR / "index.json").read_text())


def test_committed_vectors_match_schema() -> None:
    assert check() == []


def test_every_message_type_has_a_vector() -> None:
    assert set(INDEX["messages"]) == set(SCHEMA.messages)
    assert INDEX["protocol"] == SCHEMA.version


@pytest.mark.parametrize("name", sorted(SCHEMA.messages))
def test_vector_round_trips_byte_for_byte(name: str) -> None:
    codec = Codec()
    parts = load_parts(VECTORS_DIR, name, INDEX["messages"][name])
    msg = codec.decode(parts)
    assert msg.type == name
    assert codec.encode_message(msg) == parts
    twin = json.loads((VECTORS_DIR / f"{name}.json").read_text())
    assert msgpack.unpackb(parts[0], raw=False) == twin["header"]
    assert [p.hex() for p in parts[1:]] == twin["frames"]


def test_reordered_and_padded_input_is_canonicalised() -> None:
    codec = Codec()
    example = dict(SCHEMA.messages["session_open"].example)
    shuffled = dict(reversed(list(example.items())))
    shuffled["future_field"] = 1  # a later minor version may add fields: ignored
    msg = codec.decode([pack(shuffled)])
    assert codec.encode_message(msg)[0] == (VECTORS_DIR / "session_open.msgpack").read_bytes()


@pytest.mark.parametrize("case", sorted(json.loads((VECTORS_DIR / "invalid" / "expected.json").read_text())))
def test_invalid_inputs_are_rejected_with_their_code(case: str) -> None:
    expected = json.loads((VECTORS_DIR / "invalid" / "expected.json").read_text())[case]
    parts = load_parts(VECTORS_DIR / "invalid", case, expected["frames"])
    with pytest.raises(ProtocolError) as info:
        Codec().decode(parts)
    assert info.value.code == expected["code"]


def test_schema_examples_are_canonical_for_all_messages() -> None:
    assert len(build_vectors()) == len(SCHEMA.messages)


def test_protocol_doc_is_generated_from_schema() -> None:
    from bridge.wire.doc import DOC, updated

    text = DOC.read_text()
    assert updated(text, SCHEMA) == text, "run python -m bridge.wire.doc"
    for name in SCHEMA.messages:
        assert f"#### `{name}`" in text


def test_packaged_schema_path_points_at_protocol_dir() -> None:
    from bridge.wire.schema import schema_path

    assert schema_path().resolve() == (Path(__file__).resolve().parents[2] / "protocol" / "schema.json")
