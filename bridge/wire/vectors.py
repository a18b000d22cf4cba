"""Golden vectors: each message's schema example as exact bytes, for every client implementation.

For a message type T, `protocol/vectors/T.msgpack` is the canonical header frame, `T.N.bin` are its
binary frames, and `T.json` is the readable twin (header as JSON, frames as hex). `invalid/` holds
inputs every decoder must reject, with the expected error code. Run `python -m bridge.wire.vectors`
to regenerate after a schema change, `--check` to verify the files match the schema.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

import msgpack

from bridge.wire.codec import Codec, pack
from bridge.wire.schema import Schema, load_schema

VECTORS_DIR = Path(__file__).resolve().parents[2] / "protocol" / "vectors"


def _invalid_cases(schema: Schema) -> dict[str, tuple[list[bytes], str]]:
    v = schema.major
    hello = schema.messages["hello"].example
    audio = schema.messages["audio_out"].example
    pcm = bytes.fromhex(schema.messages["audio_out"].example_frames[0])
    return {
        "not_msgpack": ([b"\xc1\xc1\xc1"], "bad_message"),
        "not_a_map": ([pack([1, 2, 3])], "bad_message"),  # type: ignore[arg-type]
        "truncated": ([pack(hello)[:-3]], "bad_message"),
        "wrong_version": ([pack({**hello, "v": v + 1})], "version_mismatch"),
        "no_version": ([pack({k: x for k, x in hello.items() if k != "v"})], "missing_field"),
        "unknown_type": ([pack({"v": v, "type": "teleport", "id": 9})], "unknown_type"),
        "missing_field": ([pack({"v": v, "type": "text", "id": 3, "sid": "s-1"})], "missing_field"),
        "wrong_field_type": ([pack({"v": v, "type": "text", "id": 3, "sid": "s-1", "text": 42})], "invalid_field"),
        "bad_enum": (
            [pack({"v": v, "type": "session_open", "id": 2, "character_id": "c", "backend": "grpc"})],
            "invalid_field",
        ),
        "frame_size_mismatch": ([pack(audio), pcm[:-2]], "invalid_field"),
        "missing_frame": ([pack(audio)], "bad_message"),
    }


def build_vectors(schema: Schema | None = None) -> dict[str, dict[str, Any]]:
    """name -> {"parts": [bytes...], "json": twin} for every message type."""
    schema = schema or load_schema()
    codec = Codec(schema)
    out: dict[str, dict[str, Any]] = {}
    for name, spec in schema.messages.items():
        if not spec.example:
            raise ValueError(f"schema message {name} has no example")
        example = dict(spec.example)
        frames = [bytes.fromhex(h) for h in spec.example_frames]
        fields = {k: x for k, x in example.items() if k not in ("v", "type")}
        msg = codec.build(name, fields, frames)
        if list(msg.header) != list(example) or msg.header != example:
            raise ValueError(f"schema example for {name} is not canonical: order or values differ")
        out[name] = {
            "parts": codec.encode_message(msg),
            "json": {"type": name, "header": example, "frames": list(spec.example_frames)},
        }
    return out


def write(directory: Path = VECTORS_DIR) -> int:
    schema = load_schema()
    directory.mkdir(parents=True, exist_ok=True)
    for old in directory.rglob("*"):
        if old.is_file():
            old.unlink()
    vectors = build_vectors(schema)
    for name, vec in vectors.items():
        parts = vec["parts"]
        (directory / f"{name}.msgpack").write_bytes(parts[0])
        for i, frame in enumerate(parts[1:], start=1):
            (directory / f"{name}.{i}.bin").write_bytes(frame)
        (directory / f"{name}.json").write_text(json.dumps(vec["json"], indent=2, ensure_ascii=False) + "\n")
    bad = directory / "invalid"
    bad.mkdir(exist_ok=True)
    manifest = {}
    for name, (parts, code) in _invalid_cases(schema).items():
        (bad / f"{name}.msgpack").write_bytes(parts[0])
        for i, frame in enumerate(parts[1:], start=1):
            (bad / f"{name}.{i}.bin").write_bytes(frame)
        manifest[name] = {"code": code, "frames": len(parts)}
    (bad / "expected.json").write_text(json.dumps(manifest, indent=2) + "\n")
    (directory / "index.json").write_text(
        json.dumps(
            {
                "protocol": schema.version,
                "messages": {n: len(v["parts"]) for n, v in vectors.items()},
            },
            indent=2,
        )
        + "\n"
    )
    return len(vectors)


def load_parts(directory: Path, name: str, count: int) -> list[bytes]:
    parts = [(directory / f"{name}.msgpack").read_bytes()]
    parts += [(directory / f"{name}.{i}.bin").read_bytes() for i in range(1, count)]
    return parts


def check(directory: Path = VECTORS_DIR) -> list[str]:
    """Differences between the files and the schema; empty when they agree."""
    problems = []
    vectors = build_vectors()
    index = json.loads((directory / "index.json").read_text())
    if set(index["messages"]) != set(vectors):
        problems.append("index.json lists different messages than the schema")
    for name, vec in vectors.items():
        try:
            parts = load_parts(directory, name, len(vec["parts"]))
        except FileNotFoundError as exc:
            problems.append(f"{name}: missing {exc.filename}")
            continue
        if parts != vec["parts"]:
            problems.append(f"{name}: bytes differ from the schema example")
        twin = json.loads((directory / f"{name}.json").read_text())
        if msgpack.unpackb(parts[0], raw=False) != twin["header"]:
            problems.append(f"{name}: .json twin differs from .msgpack")
    return problems


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--check", action="store_true", help="verify instead of writing")
    parser.add_argument("--dir", type=Path, default=VECTORS_DIR)
    args = parser.parse_args(argv)
    if args.check:
        problems = check(args.dir)
        for p in problems:
            print(p, file=sys.stderr)
        return 1 if problems else 0
    n = write(args.dir)
    print(f"wrote {n} vectors to {args.dir}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
