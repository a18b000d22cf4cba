"""Generate the C# message classes of the Unity core from protocol/schema.json.

The schema is the protocol's single source of truth and its field order is the canonical encoding
order, so the typed classes are generated rather than hand-kept. Run after a schema change:

    python unity_sample/ci/gen_messages.py          # rewrite Runtime/Core/Protocol/Messages.g.cs
    python unity_sample/ci/gen_messages.py --check  # exit 1 when the file is stale (used by test.sh)
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
PACKAGE = HERE.parent
SCHEMA = PACKAGE.parent / "protocol" / "schema.json"
OUTPUT = PACKAGE / "Runtime" / "Core" / "Protocol" / "Messages.g.cs"

# Schema names that would clash with .NET or base-class members.
STRUCT_NAMES = {"Action": "NpcAction"}
FIELD_NAMES = {("metrics", "kind"): "MetricKind"}
RESERVED_MEMBERS = set("Id Sid Ts Type Kind Direction SidRule FrameKinds GetFrames Payload EventTurn".split())
FRAME_SIZE = {"pcm_s16le": ("Samples * Channels", 2), "f32le": ("Width * Count", 4)}


def pascal(name: str) -> str:
    return "".join(part[:1].upper() + part[1:] for part in name.replace("-", "_").split("_"))


def xml(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


class Generator:
    def __init__(self, schema: dict[str, Any]) -> None:
        self.schema = schema
        self.structs = set(schema["types"])
        self.lines: list[str] = []

    def emit(self, line: str = "") -> None:
        self.lines.append(line)

    def struct_name(self, name: str) -> str:
        return STRUCT_NAMES.get(name, name)

    def cs_type(self, t: str, required: bool) -> str:
        scalar = {"str": "string", "int": "long", "bool": "bool", "float": "double"}
        if t in scalar:
            cs = scalar[t]
            return cs if (required or cs == "string") else cs + "?"
        if t == "list<float>":
            return "double[]"
        if t == "list<int>":
            return "long[]"
        if t == "list<str>":
            return "List<string>"
        if t.startswith("list<") and t[5:-1] in self.structs:
            return f"List<{self.struct_name(t[5:-1])}>"
        if t in self.structs:
            return self.struct_name(t)
        if t == "map":
            return "MsgMap"
        if t == "map<str>":
            return "OrderedMap<string>"
        if t == "any":
            return "object"
        raise ValueError(f"unsupported schema type {t}")

    def enum_ref(self, field: dict[str, Any]) -> str:
        enum = field.get("enum")
        return f"WireEnums.{pascal(enum)}.All" if enum else "null"

    def write_call(self, f: dict[str, Any], member: str) -> str:
        t, req, name = f["type"], bool(f.get("required")), f["name"]
        r = "true" if req else "false"
        if t == "str":
            return f'w.Str("{name}", {member}, {r}, {self.enum_ref(f)});'
        if t in ("int", "bool", "float"):
            method = {"int": "Int", "bool": "Bool", "float": "Float"}[t]
            return f'w.{method}("{name}", {member});' if req else f'w.{method}("{name}", {member}, false);'
        if t == "list<float>":
            return f'w.FloatList("{name}", {member}, {r});'
        if t == "list<int>":
            return f'w.IntList("{name}", {member}, {r});'
        if t == "list<str>":
            return f'w.StrList("{name}", {member}, {r});'
        if t.startswith("list<"):
            return f'w.StructList("{name}", {member}, {r});'
        if t in self.structs:
            return f'w.Struct("{name}", {member}, {r});'
        if t == "map":
            return f'w.Map("{name}", {member}, {r});'
        if t == "map<str>":
            return f'w.StrMap("{name}", {member}, {r});'
        return f'w.Any("{name}", {member}, {r});'

    def read_expr(self, f: dict[str, Any]) -> str:
        t, req, name = f["type"], bool(f.get("required")), f["name"]
        r = "true" if req else "false"
        if t == "str":
            return f'r.Str("{name}", {r}, {self.enum_ref(f)})'
        if t in ("int", "bool", "float"):
            method = {"int": "Int", "bool": "Bool", "float": "Float"}[t]
            return f'r.{method}("{name}")' if req else f'r.Opt{method}("{name}")'
        if t == "list<float>":
            return f'r.FloatList("{name}", {r})'
        if t == "list<int>":
            return f'r.IntList("{name}", {r})'
        if t == "list<str>":
            return f'r.StrList("{name}", {r})'
        if t.startswith("list<"):
            inner = self.struct_name(t[5:-1])
            return f'r.StructList("{name}", {r}, {inner}.Create)'
        if t in self.structs:
            inner = self.struct_name(t)
            return f'r.Struct("{name}", {r}, {inner}.Create)'
        if t == "map":
            return f'r.Map("{name}", {r})'
        if t == "map<str>":
            return f'r.StrMap("{name}", {r})'
        return f'r.Any("{name}", {r})'

    def member(self, owner: str, f: dict[str, Any]) -> str:
        name = FIELD_NAMES.get((owner, f["name"]), pascal(f["name"]))
        if name in RESERVED_MEMBERS:
            raise ValueError(f"{owner}.{f['name']} clashes with a base member; add it to FIELD_NAMES")
        return name

    def fields(self, owner: str, fields: list[dict[str, Any]]) -> None:
        for f in fields:
            notes = [f.get("doc", "")]
            if f.get("enum"):
                notes.append("one of WireEnums." + pascal(f["enum"]))
            notes.append("required" if f.get("required") else "optional")
            self.emit(f"        /// <summary>{xml('; '.join(n for n in notes if n))}</summary>")
            self.emit(f"        public {self.cs_type(f['type'], bool(f.get('required')))} {self.member(owner, f)};")

    def io_methods(self, owner: str, fields: list[dict[str, Any]]) -> None:
        self.emit()
        self.emit("        internal override int WriteFields(FieldWriter w)")
        self.emit("        {")
        for f in fields:
            self.emit("            " + self.write_call(f, self.member(owner, f)))
        self.emit("            return w.Count;")
        self.emit("        }")
        self.emit()
        self.emit("        internal override void ReadFields(FieldReader r)")
        self.emit("        {")
        for f in fields:
            self.emit(f"            {self.member(owner, f)} = {self.read_expr(f)};")
        self.emit("        }")

    def generate(self) -> str:
        s = self.schema
        self.emit("// <auto-generated>")
        self.emit("// Generated by unity_sample/ci/gen_messages.py from protocol/schema.json")
        self.emit(f"// (protocol {s['protocol']['version']}). Do not edit: change the schema and regenerate.")
        self.emit("// </auto-generated>")
        self.emit("using System.Collections.Generic;")
        self.emit("using ConvaiBridge.MsgPack;")
        self.emit()
        self.emit("namespace ConvaiBridge.Protocol")
        self.emit("{")
        self.enums()
        self.errors()
        for name, fields in s["types"].items():
            self.struct(name, fields)
        for name, spec in s["messages"].items():
            self.message(name, spec)
        self.registry()
        self.emit("}")
        return "\n".join(self.lines) + "\n"

    def enums(self) -> None:
        self.emit("    /// <summary>Allowed values of the schema's enum-typed string fields.</summary>")
        self.emit("    public static class WireEnums")
        self.emit("    {")
        for i, (name, values) in enumerate(self.schema["enums"].items()):
            if i:
                self.emit()
            self.emit(f"        public static class {pascal(name)}")
            self.emit("        {")
            for v in values:
                self.emit(f'            public const string {pascal(v)} = "{v}";')
            quoted = ", ".join(f'"{v}"' for v in values)
            self.emit(f"            public static readonly string[] All = {{ {quoted} }};")
            self.emit("        }")
        self.emit("    }")
        self.emit()

    def errors(self) -> None:
        errors = self.schema["errors"]
        self.emit("    /// <summary>The protocol's stable error codes with their retryable / fatal flags.</summary>")
        self.emit("    public static class ErrorCodes")
        self.emit("    {")
        for code, info in errors.items():
            self.emit(f"        /// <summary>{xml(info.get('doc', ''))}</summary>")
            self.emit(f'        public const string {pascal(code)} = "{code}";')
        self.emit()
        self.emit("        public static bool IsKnown(string code)")
        self.emit("        {")
        self.emit("            switch (code)")
        self.emit("            {")
        for code in errors:
            self.emit(f'                case "{code}":')
        self.emit("                    return true;")
        self.emit("                default:")
        self.emit("                    return false;")
        self.emit("            }")
        self.emit("        }")
        for flag in ("retryable", "fatal"):
            self.emit()
            self.emit(f"        public static bool Is{pascal(flag)}(string code)")
            self.emit("        {")
            self.emit("            switch (code)")
            self.emit("            {")
            for code, info in errors.items():
                if info[flag]:
                    self.emit(f'                case "{code}":')
            self.emit("                    return true;")
            self.emit("                default:")
            self.emit("                    return false;")
            self.emit("            }")
            self.emit("        }")
        self.emit("    }")
        self.emit()

    def struct(self, name: str, fields: list[dict[str, Any]]) -> None:
        cls = self.struct_name(name)
        self.emit(f"    /// <summary>Schema struct {name}.</summary>")
        self.emit(f"    public sealed partial class {cls} : WireStruct")
        self.emit("    {")
        self.fields(name, fields)
        self.emit()
        self.emit(f"        public static {cls} Create() {{ return new {cls}(); }}")
        self.io_methods(name, fields)
        self.emit("    }")
        self.emit()

    def message(self, name: str, spec: dict[str, Any]) -> None:
        cls = pascal(name) + "Message"
        fields = spec["fields"]
        doc = spec.get("doc") or f"The {name} message."
        self.emit(f"    /// <summary>{xml(doc)}</summary>")
        self.emit(f"    public sealed partial class {cls} : Message")
        self.emit("    {")
        self.emit(f'        public const string TypeName = "{name}";')
        if spec.get("reply"):
            self.emit(f'        public const string ReplyType = "{spec["reply"]}";')
        self.fields(name, fields)
        frames = spec.get("frames", [])
        if frames:
            if len(frames) != 1:
                raise ValueError(f"{name}: only one binary frame per message is supported")
            kind = frames[0]
            self.emit(f"        /// <summary>Binary frame 1 ({kind}).</summary>")
            self.emit("        public byte[] Payload;")
        self.emit()
        overrides = [
            ("string", "Type", "TypeName"),
            ("MessageKind", "Kind", f"MessageKind.{pascal(spec['kind'])}"),
            ("Direction", "Direction", f"Direction.{pascal(spec['direction'])}"),
            ("SidRule", "SidRule", f"SidRule.{pascal(spec['sid'])}"),
        ]
        for cs_type, prop, value in overrides:
            self.emit(f"        public override {cs_type} {prop} {{ get {{ return {value}; }} }}")
        turn = next((f for f in fields if f["name"] == "turn" and f["type"] == "int"), None)
        if turn is not None:
            self.emit("        public override long? EventTurn { get { return Turn; } }")
        if frames:
            expr, width = FRAME_SIZE[frames[0]]
            self.emit(f'        private static readonly string[] Kinds = {{ "{frames[0]}" }};')
            self.emit("        public override string[] FrameKinds { get { return Kinds; } }")
            self.emit("        public override IList<byte[]> GetFrames() { return new[] { Payload }; }")
            self.emit("        public override void SetFrame(int index, byte[] data)")
            self.emit("        {")
            self.emit("            if (index == 0) Payload = data;")
            self.emit("        }")
            self.emit(f"        internal override long ExpectedFrameBytes(int index) {{ return {expr} * {width}; }}")
        self.io_methods(name, fields)
        self.emit("    }")
        self.emit()

    def registry(self) -> None:
        messages = self.schema["messages"]
        self.emit("    /// <summary>Creates an empty message object for a type name; null for unknown types.</summary>")
        self.emit("    public static class MessageRegistry")
        self.emit("    {")
        quoted = ", ".join(f'"{n}"' for n in messages)
        self.emit(f"        public static readonly string[] AllTypes = {{ {quoted} }};")
        self.emit()
        self.emit("        public static Message Create(string type)")
        self.emit("        {")
        self.emit("            switch (type)")
        self.emit("            {")
        for n in messages:
            self.emit(f'                case "{n}": return new {pascal(n)}Message();')
        self.emit("                default: return null;")
        self.emit("            }")
        self.emit("        }")
        self.emit("    }")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="fail when the generated file is out of date")
    parser.add_argument("--schema", type=Path, default=SCHEMA)
    parser.add_argument("--output", type=Path, default=OUTPUT)
    args = parser.parse_args()
    code = Generator(json.loads(args.schema.read_text(encoding="utf-8"))).generate()
    if args.check:
        current = args.output.read_text(encoding="utf-8") if args.output.exists() else ""
        if current != code:
            print(f"{args.output} is stale: run python unity_sample/ci/gen_messages.py", file=sys.stderr)
            return 1
        return 0
    args.output.write_text(code, encoding="utf-8")
    print(f"wrote {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
