#!/usr/bin/env python3
"""Build a static libzmq for the plugin with the engine's toolchain, from a source tarball or folder.

Why: UE links Linux modules against its own libc++ and Windows modules against the release CRT
(/MD); a libzmq from a package manager is built for a different C++ runtime (or as a DLL/.so you
would have to ship). This script builds the same libzmq source the same way on every platform:

  * static, position-independent, no libsodium/CURVE, no draft API, no libbsd, no tests or docs:
    nothing else to link or ship, and the result does not depend on what is installed;
  * compiled with -DZMQ_STATIC and hidden visibility on Linux and macOS (zmq.h of the private source
    copy is patched so ZMQ_STATIC drops its visibility("default") there too, as on Windows), so
    libzmq's symbols stay inside ConvaiBridgeCore's module (another plugin may bring its own libzmq);
  * Linux: the clang and libc++ you name (UE's bundled toolchain, or e.g. Debian clang-16 +
    libc++-16-dev); macOS: a universal (arm64 + x86_64) archive; Win64: MSVC, x64, /MD runtime.

It writes <out>/<Platform>/lib/libzmq.a (libzmq.lib on Windows) and <out>/include/zmq.h, which is
the layout ConvaiBridgeCore.Build.cs links (see the plugin README, "Dependencies"). Source: any
libzmq 4.3.x release tarball or checkout, e.g. Debian's `apt-get source zeromq3` (its
zeromq3_4.3.4.orig.tar.gz), or https://github.com/zeromq/libzmq/releases. Uses only the Python
standard library and CMake (3.16+).

  python build_libzmq.py --source zeromq3_4.3.4.orig.tar.gz --platform linux \\
      --cc clang-16 --cxx clang++-16 --stdlib libc++
"""

from __future__ import annotations

import argparse
import hashlib
import os
import platform
import shutil
import subprocess
import sys
import tarfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
DEFAULT_OUT = HERE.parent / "Source" / "ThirdParty" / "ConvaiBridgeCore" / "deps"
PLATFORM_DIRS = {"linux": "Linux", "mac": "Mac", "win64": "Win64"}

# Everything optional is off: a self-contained archive that needs nothing but the OS.
CMAKE_OPTIONS = [
    "-DCMAKE_BUILD_TYPE=Release",
    "-DBUILD_SHARED=OFF",
    "-DBUILD_STATIC=ON",
    "-DBUILD_TESTS=OFF",
    "-DWITH_PERF_TOOL=OFF",
    "-DWITH_DOCS=OFF",
    "-DWITH_DOC=OFF",
    "-DWITH_LIBSODIUM=OFF",
    "-DENABLE_CURVE=OFF",
    "-DENABLE_DRAFTS=OFF",
    "-DENABLE_WS=OFF",
    "-DWITH_TLS=OFF",
    "-DWITH_LIBBSD=OFF",
    "-DWITH_OPENPGM=OFF",
    "-DWITH_NORM=OFF",
    "-DWITH_VMCI=OFF",
    "-DENABLE_PRECOMPILED=OFF",
    "-DENABLE_CPACK=OFF",
    "-DLIBZMQ_WERROR=OFF",
    "-DCMAKE_POSITION_INDEPENDENT_CODE=ON",
]


def host_platform() -> str:
    system = platform.system()
    return {"Linux": "linux", "Darwin": "mac", "Windows": "win64"}.get(system, system.lower())


def sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def unpack(source: Path, work: Path) -> Path:
    """The folder holding libzmq's top-level CMakeLists.txt."""
    target = work / "src"
    shutil.rmtree(target, ignore_errors=True)
    if source.is_dir():  # a private copy: the header is patched below
        root = target / source.name
        shutil.copytree(source, root, ignore=shutil.ignore_patterns(".git", "build*"))
    else:
        target.mkdir(parents=True)
        with tarfile.open(source) as archive:
            archive.extractall(target, filter="data") if hasattr(tarfile, "data_filter") else archive.extractall(target)
        entries = [p for p in target.iterdir() if p.is_dir()]
        root = entries[0] if len(entries) == 1 else target
    cmakelists = root / "CMakeLists.txt"
    if not cmakelists.is_file() or "project(ZeroMQ" not in cmakelists.read_text(errors="replace"):
        raise SystemExit(f"{root} does not look like a libzmq source tree (no CMakeLists.txt with project(ZeroMQ))")
    return root


VISIBILITY_DEFAULT = '#define ZMQ_EXPORT __attribute__ ((visibility ("default")))'
VISIBILITY_STATIC = """#if defined ZMQ_STATIC /* build_libzmq.py: a static libzmq stays private to its module */
#define ZMQ_EXPORT
#else
#define ZMQ_EXPORT __attribute__ ((visibility ("default")))
#endif"""


def patch_visibility(root: Path) -> None:
    """zmq.h marks its API visibility("default") on every non-Windows build, even static ones; make
    ZMQ_STATIC mean "no export" there too, as it already does on Windows. Without this, a module
    linking the static libzmq re-exports zmq_* and clashes with any other libzmq in the process."""
    header = root / "include" / "zmq.h"
    text = header.read_text(encoding="utf-8")
    if VISIBILITY_STATIC in text:
        return
    if text.count(VISIBILITY_DEFAULT) != 1:
        raise SystemExit(f"{header}: unexpected visibility block; this script knows libzmq 4.3.x")
    header.write_text(text.replace(VISIBILITY_DEFAULT, VISIBILITY_STATIC), encoding="utf-8")


def configure_args(args: argparse.Namespace) -> tuple[list[str], dict[str, str]]:
    options = list(CMAKE_OPTIONS)
    env = dict(os.environ)
    cflags: list[str] = []
    cxxflags: list[str] = []
    ldflags: list[str] = []
    if args.platform in ("linux", "mac"):
        # Hidden symbols: libzmq stays private to the module that links it.
        hidden = ["-DZMQ_STATIC", "-fvisibility=hidden"]
        cflags += hidden
        cxxflags += [*hidden, "-fvisibility-inlines-hidden"]
    if args.platform == "linux":
        if args.cc:
            options.append(f"-DCMAKE_C_COMPILER={args.cc}")
        if args.cxx:
            options.append(f"-DCMAKE_CXX_COMPILER={args.cxx}")
        if args.stdlib:
            cxxflags.append(f"-stdlib={args.stdlib}")
            ldflags.append(f"-stdlib={args.stdlib}")
        if args.sysroot:
            options.append(f"-DCMAKE_SYSROOT={args.sysroot}")
    elif args.platform == "mac":
        options += [f"-DCMAKE_OSX_ARCHITECTURES={args.mac_archs}", f"-DCMAKE_OSX_DEPLOYMENT_TARGET={args.mac_min}"]
    elif args.platform == "win64":
        # Unreal links the release CRT as a DLL (/MD) in every configuration.
        options += ["-A", "x64", "-DCMAKE_MSVC_RUNTIME_LIBRARY=MultiThreadedDLL", "-DCMAKE_POLICY_DEFAULT_CMP0091=NEW"]
        cxxflags.append("/DZMQ_STATIC")
        cflags.append("/DZMQ_STATIC")
    cflags += args.cflags.split()
    cxxflags += args.cxxflags.split()
    ldflags += args.ldflags.split()
    if cflags:
        options.append("-DCMAKE_C_FLAGS=" + " ".join(cflags))
    if cxxflags:
        options.append("-DCMAKE_CXX_FLAGS=" + " ".join(cxxflags))
    if ldflags:
        options.append("-DCMAKE_EXE_LINKER_FLAGS=" + " ".join(ldflags))
    return options, env


def run(cmd: list[str], env: dict[str, str], log: Path) -> None:
    with log.open("a", encoding="utf-8") as fh:
        fh.write("$ " + " ".join(cmd) + "\n")
        fh.flush()
        done = subprocess.run(cmd, env=env, stdout=fh, stderr=subprocess.STDOUT, check=False)
    if done.returncode != 0:
        tail = log.read_text(encoding="utf-8", errors="replace").splitlines()[-40:]
        raise SystemExit("\n".join(tail) + f"\nfailed ({done.returncode}): {' '.join(cmd)}; full log in {log}")


def find_library(prefix: Path, platform_name: str) -> Path:
    pattern = "*.lib" if platform_name == "win64" else "libzmq.a"
    found = sorted(p for p in prefix.rglob(pattern) if "zmq" in p.name)
    if not found:
        raise SystemExit(f"no {pattern} under {prefix}")
    return found[0]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0], formatter_class=argparse.RawTextHelpFormatter)
    parser.add_argument("--source", type=Path, required=True, help="libzmq source tarball (.tar.gz/.tar.xz) or folder")
    parser.add_argument("--platform", choices=sorted(PLATFORM_DIRS), default=host_platform())
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help=f"deps folder (default {DEFAULT_OUT})")
    parser.add_argument("--work", type=Path, default=None, help="build folder (default <out>/.build-<platform>)")
    parser.add_argument("--cc", default="", help="Linux: C compiler (e.g. clang-16, or UE's toolchain bin/clang)")
    parser.add_argument("--cxx", default="", help="Linux: C++ compiler (e.g. clang++-16)")
    parser.add_argument("--stdlib", default="", help="Linux: C++ library, libc++ to match Unreal")
    parser.add_argument("--sysroot", default="", help="Linux: UE's toolchain root (LINUX_MULTIARCH_ROOT/<triple>)")
    parser.add_argument("--cflags", default="", help="extra C flags (e.g. UE's libc++ include path)")
    parser.add_argument("--cxxflags", default="", help="extra C++ flags")
    parser.add_argument("--ldflags", default="", help="extra link flags")
    parser.add_argument("--mac-archs", default="arm64;x86_64", help="macOS: architectures of the universal archive")
    parser.add_argument("--mac-min", default="11.0", help="macOS: deployment target")
    parser.add_argument("--jobs", type=int, default=os.cpu_count() or 2)
    args = parser.parse_args(argv)

    started = time.monotonic()
    out: Path = args.out.resolve()
    work: Path = (args.work or out / f".build-{args.platform}").resolve()
    work.mkdir(parents=True, exist_ok=True)
    log = work / "build.log"
    log.write_text("", encoding="utf-8")
    source: Path = args.source.resolve()
    if source.is_file():
        print(f"source {source.name} sha256 {sha256(source)}")
    root = unpack(source, work)
    patch_visibility(root)
    options, env = configure_args(args)
    build, prefix = work / "build", work / "install"
    shutil.rmtree(build, ignore_errors=True)
    shutil.rmtree(prefix, ignore_errors=True)
    run(["cmake", "-S", str(root), "-B", str(build), f"-DCMAKE_INSTALL_PREFIX={prefix}", *options], env, log)
    run(["cmake", "--build", str(build), "--config", "Release", "--parallel", str(args.jobs)], env, log)
    run(["cmake", "--install", str(build), "--config", "Release"], env, log)

    library = find_library(prefix, args.platform)
    lib_dir = out / PLATFORM_DIRS[args.platform] / "lib"
    lib_dir.mkdir(parents=True, exist_ok=True)
    target = lib_dir / ("libzmq.lib" if args.platform == "win64" else "libzmq.a")
    shutil.copy2(library, target)
    include = out / "include"
    include.mkdir(parents=True, exist_ok=True)
    for header in ("zmq.h", "zmq_utils.h"):
        if (prefix / "include" / header).is_file():
            shutil.copy2(prefix / "include" / header, include / header)
    print(f"wrote {target} ({target.stat().st_size} bytes, sha256 {sha256(target)})")
    print(f"wrote {include / 'zmq.h'}")
    print(f"built in {time.monotonic() - started:.0f} s; log {log}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
