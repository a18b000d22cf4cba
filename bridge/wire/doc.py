"""Generate the message reference section of protocol/PROTOCOL.md from the schema.

Keeps the human-readable tables from drifting away from the machine-readable contract; a test
fails when the committed document is stale.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from bridge.wire.schema import Field, Schema, load_schema

DOC = Path(__file__).resolve().parents[2] / "protocol" / "PROTOCOL.md"
BEGIN = "<!-- BEGIN GENERATED REFERENCE (python -m bridge.wire.doc) -->"
END = "<!-- END GENERATED REFERENCE -->"


def _field_rows(fields: tuple[Field, ...]) -> list[str]:
    rows = []
    for f in fields:
        kind = f.type + (f" ({' / '.join(f.enum)})" if f.enum else "")
        rows.append(f"| `{f.name}` | {kind} | {'yes' if f.required else ''} | {f.doc} |")
    return rows


def render(schema: Schema) -> str:
    out = [BEGIN, "", "## 10. Message reference (generated from schema.json)", ""]
    for direction, title in (("client", "Client → daemon"), ("both", "Both ways"), ("daemon", "Daemon → client")):
        out += [f"### {title}", ""]
        for name, spec in schema.messages.items():
            if spec.direction != direction:
                continue
            bits = [f"kind: {spec.kind}", f"sid: {spec.sid}"]
            if spec.reply:
                bits.append(f"reply: `{spec.reply}`")
            if spec.frames:
                bits.append("binary frames: " + ", ".join(spec.frames))
            out += [f"#### `{name}`", "", "; ".join(bits) + ".", ""]
            if spec.doc:
                out += [spec.doc, ""]
            if spec.fields:
                out += ["| field | type | required | notes |", "|---|---|---|---|", *_field_rows(spec.fields), ""]
    out += ["### Structures", ""]
    for name, fields in schema.types.items():
        out += [f"#### `{name}`", "", "| field | type | required | notes |", "|---|---|---|---|"]
        out += [*_field_rows(fields), ""]
    out += ["### Error codes", "", "| code | retryable | fatal | meaning |", "|---|---|---|---|"]
    for code, e in schema.errors.items():
        out.append(f"| `{code}` | {str(e['retryable']).lower()} | {str(e['fatal']).lower()} | {e['doc']} |")
    out += ["", END]
    return "\n".join(out)


def updated(text: str, schema: Schema) -> str:
    head, _, rest = text.partition(BEGIN)
    _, _, tail = rest.partition(END)
    return head + render(schema) + tail


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--check", action="store_true")
    args = parser.parse_args(argv)
    text = DOC.read_text(encoding="utf-8")
    new = updated(text, load_schema())
    if args.check:
        if new != text:
            print("protocol/PROTOCOL.md is stale: run python -m bridge.wire.doc", file=sys.stderr)
            return 1
        return 0
    DOC.write_text(new, encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
