#!/usr/bin/env python3
"""Unity package layout: write missing .meta files and check what Unity checks on import (and IL2CPP-safety).

Unity imports every file and folder of a package except hidden ones (".name") and those ending in "~";
git-URL and tarball installs are read-only, so an asset without a committed .meta gets a random GUID
per machine (or is ignored), which breaks references. New .meta files get a GUID derived from the
package name and the path with a fixed namespace, so regeneration is stable; existing ones are never
rewritten (a moved file keeps its GUID with its .meta).

  package_layout.py          check (exit 1 with one line per problem)
  package_layout.py --write  create the missing .meta files, then check
  package_layout.py --self-test DIR  prove the check catches each kind of problem (on copies in DIR)
"""

from __future__ import annotations

import json
import re
import sys
import uuid
from pathlib import Path

PKG = Path(__file__).resolve().parent.parent
NAMESPACE = uuid.UUID("5b0c6f1e-3d2a-4e8b-9c41-7a6d2f0e9b13")  # fixed forever: GUIDs depend on it
GUID_RE = re.compile(r"^guid: ([0-9a-f]{32})$", re.M)
ASSEMBLY_SUFFIXES = (".dll", ".exe", ".pdb", ".mdb", ".so", ".dylib", ".bundle", ".a", ".lib")
# Assemblies the runtime asmdefs may name without shipping them (optional packages, see versionDefines).
OPTIONAL_REFERENCES = {"Unity.InputSystem"}
COMMON = "  externalObjects: {}\n  userData: \n  assetBundleName: \n  assetBundleVariant: \n"
MONO = (
    "MonoImporter:\n  externalObjects: {}\n  serializedVersion: 2\n  defaultReferences: []\n"
    "  executionOrder: 0\n  icon: {instanceID: 0}\n  userData: \n  assetBundleName: \n  assetBundleVariant: \n"
)


def ignored(rel: Path) -> bool:
    """What Unity's importer skips: hidden names and names ending in "~" (and everything below them)."""
    return any(
        p.startswith(".") or p.endswith("~") or p.lower() == "cvs" or p.endswith(".tmp") or p == "__pycache__"
        for p in rel.parts
    )


def assets(pkg: Path) -> list[Path]:
    out = []
    for p in sorted(pkg.rglob("*")):
        rel = p.relative_to(pkg)
        if ignored(rel) or p.suffix == ".meta":
            continue
        out.append(rel)
    return out


def guid_for(rel: Path) -> str:
    return uuid.uuid5(NAMESPACE, "com.convai-bridge.unity/" + rel.as_posix()).hex


def meta_text(pkg: Path, rel: Path) -> str:
    head = f"fileFormatVersion: 2\nguid: {guid_for(rel)}\n"
    if (pkg / rel).is_dir():
        return head + "folderAsset: yes\nDefaultImporter:\n" + COMMON
    if rel.as_posix() == "package.json":
        return head + "PackageManifestImporter:\n" + COMMON
    ext = rel.suffix.lower()
    if ext == ".cs":
        return head + MONO
    if ext == ".asmdef":
        return head + "AssemblyDefinitionImporter:\n" + COMMON
    if ext in (".md", ".txt", ".json", ".xml", ".yaml", ".bytes", ".html"):
        return head + "TextScriptImporter:\n" + COMMON
    return head + "DefaultImporter:\n" + COMMON


def write_missing(pkg: Path) -> list[Path]:
    made = []
    for rel in assets(pkg):
        meta = pkg / (rel.as_posix() + ".meta")
        if not meta.exists():
            meta.write_text(meta_text(pkg, rel))
            made.append(rel)
    return made


def check(pkg: Path) -> list[str]:
    problems: list[str] = []
    seen: dict[str, Path] = {}
    listed = set(assets(pkg))
    for rel in sorted(listed):
        meta = pkg / (rel.as_posix() + ".meta")
        if not meta.is_file():
            problems.append(f"{rel}: no .meta (run ci/package_layout.py --write and commit it)")
            continue
        m = GUID_RE.search(meta.read_text())
        if not m:
            problems.append(f"{rel}.meta: no 32-hex-digit guid line")
            continue
        if m.group(1) in seen:
            problems.append(f"{rel}.meta: guid {m.group(1)} also used by {seen[m.group(1)]}")
        seen[m.group(1)] = rel
    for meta in sorted(pkg.rglob("*.meta")):
        rel = meta.relative_to(pkg)
        if not ignored(rel) and Path(rel.as_posix()[: -len(".meta")]) not in listed:
            problems.append(f"{rel}: .meta without its asset")
    for p in sorted(pkg.rglob("*")):
        if p.is_file() and p.name.lower().endswith(ASSEMBLY_SUFFIXES):
            problems.append(f"{p.relative_to(pkg)}: binary/assembly inside the package (build outside it)")
    problems += check_asmdefs(pkg, listed)
    problems += check_manifest(pkg)
    problems += check_il2cpp(pkg, listed)
    return problems


def check_asmdefs(pkg: Path, listed: set[Path]) -> list[str]:
    problems: list[str] = []
    defs = {rel: json.loads((pkg / rel).read_text()) for rel in listed if rel.suffix == ".asmdef"}
    names = {d.get("name") for d in defs.values()}
    for rel, d in sorted(defs.items()):
        for key in ("includePlatforms", "excludePlatforms"):
            if not isinstance(d.get(key), list):
                problems.append(f"{rel}: {key} must be set (a list; [] = every platform)")
        if d.get("includePlatforms") and d.get("excludePlatforms"):
            problems.append(f"{rel}: includePlatforms and excludePlatforms are exclusive")
        editor_only = "Editor" in rel.parts
        if editor_only and d.get("includePlatforms") != ["Editor"]:
            problems.append(f'{rel}: an Editor assembly must have includePlatforms ["Editor"]')
        if not editor_only and "Editor" in (d.get("includePlatforms") or []):
            problems.append(f"{rel}: a runtime assembly limited to the Editor")
        for ref in d.get("references", []):
            if ref not in names and ref not in OPTIONAL_REFERENCES:
                problems.append(f"{rel}: reference {ref} is neither in the package nor a known optional one")
        for ref in set(d.get("references", [])) & OPTIONAL_REFERENCES:
            if not any(v.get("define") for v in d.get("versionDefines", [])):
                problems.append(f"{rel}: optional reference {ref} without a versionDefines guard")
        if d.get("name") != rel.stem:
            problems.append(f"{rel}: file name and assembly name differ ({d.get('name')})")
    roots = [rel.parent for rel in defs]
    for rel in sorted(listed):
        if rel.suffix == ".cs" and not any(root in rel.parents for root in roots):
            problems.append(f"{rel}: C# file outside every asmdef (packages compile only asmdef code)")
    return problems


# What IL2CPP (ahead-of-time, managed code stripping) cannot do or silently breaks, in shipped code.
IL2CPP_UNSAFE = [
    (re.compile(r"\bSystem\.Reflection\.Emit\b"), "Reflection.Emit (no JIT under IL2CPP)"),
    (re.compile(r"\bdynamic\b\s+\w+\s*[=;]"), "dynamic (needs the DLR)"),
    (re.compile(r"\.Compile\(\)"), "Expression.Compile (interpreted at best under IL2CPP)"),
    (re.compile(r"\bMakeGenericType\b|\bMakeGenericMethod\b"), "generic instantiation at run time (AOT)"),
    (re.compile(r"\bType\.GetType\(|\bAssembly\.Load"), "type lookup by name (stripped by the linker)"),
    (re.compile(r"GetFunctionPointerForDelegate"), "native callbacks (need MonoPInvokeCallback statics)"),
]


def check_il2cpp(pkg: Path, listed: set[Path]) -> list[str]:
    problems: list[str] = []
    for rel in sorted(listed):
        if rel.suffix != ".cs" or rel.parts[0] not in ("Runtime", "Editor"):
            continue
        for n, line in enumerate((pkg / rel).read_text().splitlines(), 1):
            code = line.split("//", 1)[0]
            for pattern, why in IL2CPP_UNSAFE:
                if pattern.search(code):
                    problems.append(f"{rel}:{n}: not IL2CPP-safe: {why}")
    return problems


def check_manifest(pkg: Path) -> list[str]:
    problems: list[str] = []
    m = json.loads((pkg / "package.json").read_text())
    if not re.fullmatch(r"[a-z0-9][a-z0-9._-]*\.[a-z0-9._-]+", m.get("name", "")):
        problems.append("package.json: name must be lowercase reverse-domain")
    if not re.fullmatch(r"\d+\.\d+\.\d+(-[0-9A-Za-z.-]+)?", m.get("version", "")):
        problems.append("package.json: version must be semver")
    if not re.fullmatch(r"\d{4}\.\d", m.get("unity", "")):
        problems.append("package.json: unity must be like 2021.3")
    for s in m.get("samples", []):
        path = s.get("path", "")
        if not any(part.endswith("~") for part in Path(path).parts) or not (pkg / path).is_dir():
            problems.append(f"package.json: sample path {path!r} must be an existing folder inside a ~ folder")
    return problems


def self_test(scratch: Path) -> list[str]:
    """The check must catch what it is for: a missing .meta, a duplicate GUID, an assembly, a bad asmdef."""
    import shutil

    failures = []

    def copy() -> Path:
        dest = scratch / "pkg"
        shutil.rmtree(dest, ignore_errors=True)
        shutil.copytree(PKG, dest, ignore=shutil.ignore_patterns("__pycache__"))
        return dest

    def expect(what: str, pkg: Path, needle: str) -> None:
        if not any(needle in p for p in check(pkg)):
            failures.append(f"self-test: {what} not reported")

    pkg = copy()
    if check(pkg):
        failures.append("self-test: the pristine copy has problems")
    (pkg / "Runtime" / "ConvaiNpc.cs.meta").unlink()
    expect("missing .meta", pkg, "ConvaiNpc.cs: no .meta")
    pkg = copy()
    dup = (pkg / "Runtime" / "ConvaiNpc.cs.meta").read_text()
    (pkg / "Runtime" / "ConvaiLipSync.cs.meta").write_text(dup)
    expect("duplicate guid", pkg, "also used by")
    pkg = copy()
    (pkg / "Runtime" / "UnityEngine.dll").write_bytes(b"MZ")
    expect("assembly in the package", pkg, "UnityEngine.dll: binary")
    pkg = copy()
    d = json.loads((pkg / "Editor" / "ConvaiBridge.Editor.asmdef").read_text())
    d["includePlatforms"] = []
    (pkg / "Editor" / "ConvaiBridge.Editor.asmdef").write_text(json.dumps(d))
    expect("editor asmdef on every platform", pkg, "an Editor assembly must")
    pkg = copy()
    with (pkg / "Runtime" / "ConvaiNpc.cs").open("a") as f:
        f.write("// using System.Reflection.Emit; in a comment is fine\n")
        f.write("class X { void M() { var t = typeof(int).MakeGenericType(); } }\n")
    expect("IL2CPP-unsafe code", pkg, "not IL2CPP-safe: generic instantiation")
    if any("Reflection.Emit" in p for p in check(pkg)):
        failures.append("self-test: a comment was taken for code")
    shutil.rmtree(scratch / "pkg", ignore_errors=True)
    return failures


def main(argv: list[str]) -> int:
    pkg = PKG
    if "--self-test" in argv:
        failures = self_test(Path(argv[argv.index("--self-test") + 1]))
        for f in failures:
            print(f)
        return 1 if failures else 0
    if "--write" in argv:
        for rel in write_missing(pkg):
            print(f"wrote {rel}.meta")
    problems = check(pkg)
    for p in problems:
        print(p)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
