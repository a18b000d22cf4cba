"""Codec validation: each kind of bad field gets its stable code, and nothing unexpected escapes."""

from __future__ import annotations

import msgpack
import pytest

from bridge.wire.codec import Codec, pack
from bridge.wire.errors import ProtocolError


@pytest.fixture
def codec() -> Codec:
    return Codec(max_message_bytes=4096)


def code_of(codec: Codec, parts: list[bytes]) -> str:
    with pytest.raises(ProtocolError) as info:
        codec.decode(parts)
    return info.value.code


def test_request_without_id_is_missing_field(codec: Codec) -> None:
    assert code_of(codec, [pack({"v": 1, "type": "text", "sid": "s", "text": "hi"})]) == "missing_field"


def test_session_request_without_sid(codec: Codec) -> None:
    assert code_of(codec, [pack({"v": 1, "type": "text", "id": 1, "text": "hi"})]) == "missing_field"


def test_bool_is_not_an_int(codec: Codec) -> None:
    msg = {"v": 1, "type": "audio_in", "sid": "s", "seq": True, "sample_rate": 16000, "channels": 1, "samples": 0}
    assert code_of(codec, [pack(msg), b""]) == "invalid_field"


def test_nested_struct_is_validated(codec: Codec) -> None:
    msg = {"v": 1, "type": "session_open", "id": 1, "character_id": "c", "audio": {"sample_rate": 16000}}
    with pytest.raises(ProtocolError) as info:
        codec.decode([pack(msg)])
    assert info.value.code == "missing_field"
    assert "audio.channels" in info.value.message
    assert info.value.req_id == 1


def test_oversized_message(codec: Codec) -> None:
    msg = {"v": 1, "type": "text", "id": 1, "sid": "s", "text": "x" * 5000}
    assert code_of(codec, [pack(msg)]) == "message_too_large"


def test_errors_keep_request_id_for_the_reply(codec: Codec) -> None:
    with pytest.raises(ProtocolError) as info:
        codec.decode([pack({"v": 1, "type": "nope", "id": 77, "sid": "s-1"})])
    assert (info.value.code, info.value.req_id, info.value.sid) == ("unknown_type", 77, "s-1")


def test_map_with_non_string_keys_rejected(codec: Codec) -> None:
    raw = msgpack.packb({1: 2}, strict_types=False)
    assert code_of(codec, [raw]) == "bad_message"


def test_deep_nesting_rejected(codec: Codec) -> None:
    deep: object = "x"
    for _ in range(40):
        deep = [deep]
    msg = {"v": 1, "type": "session_open", "id": 1, "character_id": "c", "end_user_metadata": {"a": deep}}
    assert code_of(codec, [pack(msg)]) == "invalid_field"


def test_encode_refuses_invalid_daemon_messages(codec: Codec) -> None:
    with pytest.raises(ProtocolError):
        codec.encode("emotion", {"sid": "s", "turn": 1, "name": "joy"})  # scale missing


def test_float_fields_accept_ints_and_encode_float64(codec: Codec) -> None:
    parts = codec.encode("visemes", {"sid": "s", "turn": 1, "offset": 0, "weights": [0] * 15})
    assert parts[0].count(b"\xcb") == 15
