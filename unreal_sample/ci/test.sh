#!/usr/bin/env bash
# Builds the Unreal sample's engine-free core with CMake (out of tree, in unreal_sample/build/) twice
# and runs its tests on both: golden vectors, media (ring buffer / lip-sync clock / curve names),
# robustness (a hand-driven daemon + decoder fuzz), the connection-file rule, and a two-NPC
# conversation against the real daemon with its emulator.
#   gcc:     g++, libstdc++, the core as a static library (any engine-free user).
#   ue-clang: as UE 5 builds Linux editor modules: clang 16 + libc++, -std=c++20 -fno-rtti, the core
#            as its own shared module with hidden visibility (-fvisibility-ms-compat
#            -fvisibility-inlines-hidden, --no-undefined) exporting only CONVAIBRIDGECORE_API; the
#            plugin's Unreal layer (Source/ConvaiBridge) compiled against a stand-in for the engine
#            headers (tests/ue_stub/) and linked against it as its own module; the tests link the
#            shared core module too.
# CVB_CLANG overrides the clang (default clang++-16). Prints "N passed, N failed" last; exits
# non-zero on any failure.
set -u

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
REPO="$(cd "$HERE/.." && pwd)"
BUILD="$HERE/build"
VECTORS="$REPO/protocol/vectors"
DAEMON_BIN="$REPO/.venv/bin/convai-bridge"
PYTHON="$REPO/.venv/bin/python"
JOBS="${CVB_JOBS:-2}"

passed=0
failed=0
tally() {  # tally <program> <log>: add the program's "N passed, N failed" line, or count a crash
  local line
  line="$(grep -E '^[a-z_]+: [0-9]+ passed, [0-9]+ failed$' "$2" | tail -n 1)"
  if [[ -n "$line" ]]; then
    local p f
    p="$(sed -E 's/.*: ([0-9]+) passed.*/\1/' <<<"$line")"
    f="$(sed -E 's/.* ([0-9]+) failed/\1/' <<<"$line")"
    passed=$((passed + p))
    failed=$((failed + f))
    echo "$1: ${line#*: }"
  else
    echo "$1: no result line (crashed?)"
    failed=$((failed + 1))
  fi
}
finish() {
  echo "unreal_sample: $passed passed, $failed failed"
  [[ $failed -eq 0 ]] && exit 0 || exit 1
}

mkdir -p "$BUILD"
LOGS="$BUILD/logs"
mkdir -p "$LOGS"

# 0. The C++ message structs are generated from protocol/schema.json: bring them up to date (the
#    schema is the source of truth; the result is meant to be committed), then build and test them.
if [[ -x "$PYTHON" ]]; then
  if "$PYTHON" "$HERE/tools/gen_core_messages.py" --check >/dev/null 2>&1; then
    echo "schema: generated C++ types are up to date"
    passed=$((passed + 1))
  elif [[ -n "${CI:-}" ]]; then
    echo "schema: the committed C++ types are stale: run unreal_sample/tools/gen_core_messages.py and commit"
    failed=$((failed + 1))
  elif "$PYTHON" "$HERE/tools/gen_core_messages.py" 2>&1; then
    echo "schema: protocol/schema.json changed; regenerated the C++ types (commit them)"
    passed=$((passed + 1))
  else
    echo "schema: could not generate the C++ types from protocol/schema.json"
    failed=$((failed + 1))
  fi
fi

# The blendshape layouts compiled into the core are copies of the shared reference: keep them equal.
REFERENCE_BLENDSHAPES="${CVB_REFERENCE_BLENDSHAPES:-/work/shared/reference/blendshapes}"
if [[ -d "$REFERENCE_BLENDSHAPES" ]]; then
  if diff -r "$REFERENCE_BLENDSHAPES" "$HERE/tools/blendshapes" >/dev/null; then
    passed=$((passed + 1))
  else
    echo "blendshapes: tools/blendshapes/ differs from $REFERENCE_BLENDSHAPES: copy them and regenerate"
    failed=$((failed + 1))
  fi
fi

# 1. Configure + build (out of tree), one directory per toolchain.
CLANG="${CVB_CLANG:-clang++-16}"
# CVB_BUILDS picks the builds (default "gcc ue-clang"). ue-clang-zmq is ue-clang linking the static
# libzmq that ConvaiBridge/Scripts/build_libzmq.py built into $CVB_ZMQ_DEPS (ci/test_libzmq.sh).
read -r -a BUILDS <<<"${CVB_BUILDS:-gcc ue-clang}"
declare -A BUILD_OK
configure_and_build() {  # configure_and_build <name> <cmake args...>
  local name="$1"; shift
  local dir="$BUILD/$name"
  BUILD_OK[$name]=0
  if ! cmake -S "$HERE" -B "$dir" -DCMAKE_BUILD_TYPE=Release "$@" >"$LOGS/configure-$name.log" 2>&1; then
    echo "$name: configure failed"; tail -n 30 "$LOGS/configure-$name.log"
    failed=$((failed + 1)); return
  fi
  if ! nice cmake --build "$dir" -j "$JOBS" >"$LOGS/build-$name.log" 2>&1; then
    echo "$name: build failed"; grep -E "error|Error|undefined reference" "$LOGS/build-$name.log" | head -n 40
    failed=$((failed + 1)); return
  fi
  echo "$name: built"
  passed=$((passed + 1))
  BUILD_OK[$name]=1
}
UE_CLANG_ARGS=(-DCMAKE_CXX_COMPILER="$CLANG" -DCMAKE_CXX_STANDARD=20 -DCVB_CORE_SHARED=ON
  "-DCMAKE_CXX_FLAGS=-stdlib=libc++ -fno-rtti" "-DCMAKE_EXE_LINKER_FLAGS=-stdlib=libc++"
  "-DCMAKE_SHARED_LINKER_FLAGS=-stdlib=libc++")
for b in "${BUILDS[@]}"; do
  case "$b" in
    gcc) configure_and_build gcc -DCMAKE_CXX_COMPILER=g++ ;;
    ue-clang | ue-clang-zmq)
      if ! command -v "$CLANG" >/dev/null; then
        echo "$b: $CLANG not found (apt install clang-16 libc++-16-dev libc++abi-16-dev, or set CVB_CLANG)"
        failed=$((failed + 1)); BUILD_OK[$b]=0; continue
      fi
      if [[ "$b" == ue-clang ]]; then
        configure_and_build "$b" "${UE_CLANG_ARGS[@]}" -DCVB_ZMQ_DEPS=
      elif [[ -f "${CVB_ZMQ_DEPS:-}/Linux/lib/libzmq.a" ]]; then
        configure_and_build "$b" "${UE_CLANG_ARGS[@]}" -DCVB_ZMQ_DEPS="$CVB_ZMQ_DEPS"
      else
        echo "$b: no \$CVB_ZMQ_DEPS/Linux/lib/libzmq.a (run ci/test_libzmq.sh)"; failed=$((failed + 1)); BUILD_OK[$b]=0
      fi ;;
    *) echo "unknown build $b"; failed=$((failed + 1)); BUILD_OK[$b]=0 ;;
  esac
done

# The shared core module exports the client API and nothing of msgpack-c / ZeroMQ (another plugin
# may bring its own copies); everything it links resolves against libc++, not libstdc++.
for b in ue-clang ue-clang-zmq; do
  [[ "${BUILD_OK[$b]:-0}" == 1 ]] || continue
  SO="$BUILD/$b/core/libconvai_bridge_core.so"
  exported="$(nm -DC --defined-only "$SO" 2>/dev/null)"
  needed="$(readelf -d "$SO" | grep NEEDED)"
  # (typeinfo of thrown types stays visible under -fvisibility-ms-compat by design: not a leak)
  leaked="$(grep -vE " (typeinfo|vtable) " <<<"$exported" | grep -E " (msgpack|zmq|cvb::detail)" | head -n 5)"
  missing=""
  for sym in "cvb::Client::Client" "cvb::Client::OpenNpc" "cvb::NpcMedia::PullAudio" "cvb::Decode" \
             "cvb::Encode" "cvb::DefaultConnectionFilePath" "cvb::ResolveConnectionFilePath"; do
    grep -qF " $sym(" <<<"$exported" || missing="$missing $sym"
  done
  problem=""
  [[ -n "$leaked" || -n "$missing" ]] && problem="missing:${missing:- none}; leaked: ${leaked:-none}"
  grep -q libstdc++ <<<"$needed" && problem="$problem; links libstdc++"
  if [[ "$b" == ue-clang-zmq ]]; then  # the static libzmq is inside, and stays private
    grep -q libzmq <<<"$needed" && problem="$problem; still needs libzmq.so"
    grep -qE " zmq_" <<<"$exported" && problem="$problem; exports zmq_* functions"
    grep -q " zmq_" < <(nm -C --defined-only "$SO") || problem="$problem; libzmq is not linked in"
  fi
  [[ "$b" == ue-clang && ! -f "$BUILD/$b/libue_layer_module.so" ]] && problem="$problem; no Unreal-layer module"
  if [[ -z "$problem" ]]; then
    echo "$b: module exports $(grep -c ' T cvb::' <<<"$exported") cvb functions, no msgpack/zmq symbols, libc++ only"
    passed=$((passed + 1))
  else
    echo "$b: export check failed: $problem"
    failed=$((failed + 1))
  fi
done

# 2. Unit-level tests.
for b in "${BUILDS[@]}"; do
  [[ "${BUILD_OK[$b]:-0}" == 1 ]] || continue
  for t in vector_test media_test robustness_test; do
    timeout 120 "$BUILD/$b/$t" "$VECTORS" >"$LOGS/$b-$t.log" 2>&1
    grep -E "^FAIL" "$LOGS/$b-$t.log" | head -n 20
    tally "$b/$t" "$LOGS/$b-$t.log"
  done
done

# 3. The conversation against the real daemon + emulator.
if [[ ! -x "$DAEMON_BIN" ]]; then
  echo "conversation_test: $DAEMON_BIN missing (make the venv first)"
  failed=$((failed + 1))
  finish
fi
free_port() {
  "$PYTHON" - <<'PY'
import socket
s = socket.socket()
s.bind(("127.0.0.1", 0))
print(s.getsockname()[1])
s.close()
PY
}
RUN_DIR="$(mktemp -d "${TMPDIR:-/tmp}/cvb-unreal.XXXXXX")"
stop_daemon() {  # the one we started, and one the test program restarted (its pid is in the file)
  [[ -n "${DAEMON_PID:-}" ]] && kill "$DAEMON_PID" 2>/dev/null
  DAEMON_PID=""
  if [[ -n "${CONN:-}" && -f "$CONN" ]]; then
    local pid
    pid="$(sed -nE 's/.*"pid": *([0-9]+).*/\1/p' "$CONN")"
    [[ -n "$pid" ]] && kill "$pid" 2>/dev/null
  fi
  return 0
}
cleanup() {
  stop_daemon
  rm -rf "$RUN_DIR"
}
trap cleanup EXIT
start_daemon() {  # start_daemon <name>: a fresh daemon + emulator; sets CONN and DAEMON_CMD
  local port
  port="$(free_port)"
  mkdir -p "$RUN_DIR/$1"
  CONN="$RUN_DIR/$1/connection.json"
  DAEMON_CMD=("$DAEMON_BIN" serve --emulator --endpoint "tcp://127.0.0.1:$port" --connection-file "$CONN")
  "${DAEMON_CMD[@]}" >"$LOGS/$1-daemon.log" 2>&1 &
  DAEMON_PID=$!
  disown "$DAEMON_PID"  # the test program SIGKILLs it on purpose; no job-control noise
  for _ in $(seq 1 150); do
    grep -q "^READY " "$LOGS/$1-daemon.log" 2>/dev/null && break
    kill -0 "$DAEMON_PID" 2>/dev/null || break
    sleep 0.1
  done
  if ! grep -q "^READY " "$LOGS/$1-daemon.log"; then
    echo "$1: the daemon did not start:"
    tail -n 20 "$LOGS/$1-daemon.log"
    failed=$((failed + 1))
    return 1
  fi
}
# Per build, a fresh daemon: the conversation test kills it and restarts it on purpose.
for b in "${BUILDS[@]}"; do
  [[ "${BUILD_OK[$b]:-0}" == 1 ]] || continue
  start_daemon "$b" || continue
  # A client with no connection-file option finds this daemon by the default rule.
  timeout 120 "$BUILD/$b/connection_path_test" "$CONN" >"$LOGS/$b-connection_path_test.log" 2>&1
  grep -E "^FAIL" "$LOGS/$b-connection_path_test.log" | head -n 20
  tally "$b/connection_path_test" "$LOGS/$b-connection_path_test.log"
  timeout 150 "$BUILD/$b/conversation_test" "$CONN" -- "${DAEMON_CMD[@]}" >"$LOGS/$b-conversation_test.log" 2>&1
  grep -E "^(FAIL|skipped|conversation_test: backend)" "$LOGS/$b-conversation_test.log" | head -n 40
  tally "$b/conversation_test" "$LOGS/$b-conversation_test.log"
  cp -f "$CONN.restart.log" "$LOGS/$b-daemon-restarted.log" 2>/dev/null
  stop_daemon
done
finish
