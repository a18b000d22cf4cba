#!/usr/bin/env bash
# Copies the core's third-party headers (and Homebrew's libzmq on macOS) into
# Source/ThirdParty/ConvaiBridgeCore/deps/ on macOS (Homebrew) or Linux (distribution packages).
# For a static libzmq built with the engine's toolchain (every platform), run build_libzmq.py
# (before or after this script). Windows headers: see the README (vcpkg).
#   Scripts/fetch_deps.sh [--dest DIR]
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
dest="$here/../Source/ThirdParty/ConvaiBridgeCore/deps"
if [[ "${1:-}" == "--dest" && -n "${2:-}" ]]; then
  dest="$2"
fi

case "$(uname -s)" in
  Darwin)
    command -v brew >/dev/null || { echo "Homebrew is required: https://brew.sh" >&2; exit 1; }
    brew list zeromq >/dev/null 2>&1 || brew install zeromq
    brew list cppzmq >/dev/null 2>&1 || brew install cppzmq
    brew list msgpack-cxx >/dev/null 2>&1 || brew install msgpack-cxx
    prefix="$(brew --prefix)"
    include="$prefix/include"
    mkdir -p "$dest/Mac/lib"
    cp "$prefix/opt/zeromq/lib/libzmq.a" "$dest/Mac/lib/"
    # Homebrew's libzmq may be built with libsodium (CURVE security); link it too when present.
    if [[ -f "$prefix/opt/libsodium/lib/libsodium.a" ]]; then
      cp "$prefix/opt/libsodium/lib/libsodium.a" "$dest/Mac/lib/"
    fi
    ;;
  Linux)
    include=/usr/include
    for f in zmq.h zmq.hpp msgpack.hpp; do
      [[ -f "$include/$f" ]] || { echo "missing $include/$f: apt install libzmq3-dev cppzmq-dev libmsgpack-cxx-dev" >&2; exit 1; }
    done
    # No library copied: the build links the system's shared libzmq (see ConvaiBridgeCore.Build.cs),
    # unless Scripts/build_libzmq.py put a static one built with the UE toolchain in deps/Linux/lib.
    ;;
  *)
    echo "unsupported host $(uname -s); on Windows follow the README (vcpkg)" >&2
    exit 1
    ;;
esac

mkdir -p "$dest/include"
# Keep the zmq.h that build_libzmq.py installed with its static libzmq (patched so ZMQ_STATIC hides
# the API); otherwise take the package's.
if grep -q "build_libzmq.py" "$dest/include/zmq.h" 2>/dev/null; then
  echo "keeping $dest/include/zmq.h from build_libzmq.py"
else
  cp "$include/zmq.h" "$dest/include/"
  [[ -f "$include/zmq_utils.h" ]] && cp "$include/zmq_utils.h" "$dest/include/"
fi
cp "$include/zmq.hpp" "$include/zmq_addon.hpp" "$dest/include/"
cp "$include/msgpack.hpp" "$dest/include/"
rm -rf "$dest/include/msgpack"
cp -R "$include/msgpack" "$dest/include/"
echo "dependencies in $dest"
