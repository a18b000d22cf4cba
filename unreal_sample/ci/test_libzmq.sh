#!/usr/bin/env bash
# Exercises ConvaiBridge/Scripts/build_libzmq.py for Linux the way a plugin user runs it with the
# engine's toolchain: builds a static, hidden-visibility libzmq with clang 16 + libc++ from Debian's
# libzmq source, then builds the core as a UE-style shared module linked against it (build
# "ue-clang-zmq" of ci/test.sh) and runs the core's tests on that. Separate from ci/test.sh because
# compiling libzmq takes several minutes on two cores (`make test-unreal-libzmq`).
#
# Source: $CVB_LIBZMQ_SOURCE (a libzmq tarball or folder), else Debian's source package, fetched with
# `apt-get source --download-only zeromq3` (needs a deb-src line for the same mirror, e.g.
# /etc/apt/sources.list.d/debian-src.sources with "Types: deb-src"; see the plugin README).
# Prints "N passed, N failed" last.
set -u

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
OUT="$HERE/build/libzmq"
JOBS="${CVB_JOBS:-2}"
DEBIAN_VERSION="4.3.4-6"  # bookworm; its orig tarball is libzmq 4.3.4 as released
DEBIAN_ORIG_SHA256="0ff5a531c9ffaf0dfdc7dc78d13d1383088f454896d252934c429b2554d10559"
mkdir -p "$OUT/src"
fail() { echo "$1"; echo "unreal_sample libzmq: 0 passed, 1 failed"; exit 1; }

src="${CVB_LIBZMQ_SOURCE:-}"
if [[ -z "$src" ]]; then
  src="$OUT/src/zeromq3_4.3.4.orig.tar.gz"
  if [[ ! -f "$src" ]]; then
    (cd "$OUT/src" && apt-get source --download-only "zeromq3=$DEBIAN_VERSION" >"$OUT/src/apt-source.log" 2>&1) ||
      fail "apt-get source zeromq3=$DEBIAN_VERSION failed (no deb-src entry?): $(tail -n 3 "$OUT/src/apt-source.log")"
  fi
  [[ "$(sha256sum "$src" | cut -d' ' -f1)" == "$DEBIAN_ORIG_SHA256" ]] || fail "$src: unexpected sha256"
fi

# Rebuilt only when the source or the script changed.
stamp="$OUT/deps/.stamp"
want="$(cat "$src" "$HERE/ConvaiBridge/Scripts/build_libzmq.py" 2>/dev/null | sha256sum | cut -d' ' -f1)"
if [[ ! -f "$OUT/deps/Linux/lib/libzmq.a" || "$(cat "$stamp" 2>/dev/null)" != "$want" ]]; then
  start=$SECONDS
  nice python3 "$HERE/ConvaiBridge/Scripts/build_libzmq.py" --source "$src" --platform linux \
    --cc "${CVB_CC:-clang-16}" --cxx "${CVB_CLANG:-clang++-16}" --stdlib libc++ --out "$OUT/deps" --jobs "$JOBS" \
    >"$OUT/build_libzmq.log" 2>&1 || fail "build_libzmq.py failed: $(tail -n 20 "$OUT/build_libzmq.log")"
  echo "libzmq: built static with clang + libc++ in $((SECONDS - start)) s"
  echo "$want" >"$stamp"
fi
CVB_BUILDS=ue-clang-zmq CVB_ZMQ_DEPS="$OUT/deps" exec bash "$HERE/ci/test.sh"
