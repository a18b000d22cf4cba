#!/usr/bin/env bash
# Builds the Unreal sample's engine-free core with CMake (out of tree, in unreal_sample/build/) and
# runs its tests: golden vectors, media (ring buffer / lip-sync clock), robustness (a hand-driven
# daemon + decoder fuzz) and a two-NPC conversation against the real daemon with its emulator.
# Prints "N passed, N failed" last; exits non-zero on any failure.
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
    echo "$line"
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

# 1. Configure + build (out of tree).
if ! cmake -S "$HERE" -B "$BUILD" -DCMAKE_BUILD_TYPE=Release >"$LOGS/configure.log" 2>&1; then
  cat "$LOGS/configure.log"
  failed=$((failed + 1))
  finish
fi
if ! cmake --build "$BUILD" -j "$JOBS" >"$LOGS/build.log" 2>&1; then
  grep -E "error|Error" "$LOGS/build.log" | head -n 40
  failed=$((failed + 1))
  finish
fi

# 2. Unit-level tests.
for t in vector_test media_test robustness_test; do
  timeout 120 "$BUILD/$t" "$VECTORS" >"$LOGS/$t.log" 2>&1
  grep -E "^FAIL" "$LOGS/$t.log" | head -n 20
  tally "$t" "$LOGS/$t.log"
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
PORT="$(free_port)"
RUN_DIR="$(mktemp -d "${TMPDIR:-/tmp}/cvb-unreal.XXXXXX")"
CONN="$RUN_DIR/connection.json"
DAEMON_CMD=("$DAEMON_BIN" serve --emulator --endpoint "tcp://127.0.0.1:$PORT" --connection-file "$CONN")
cleanup() {
  [[ -n "${DAEMON_PID:-}" ]] && kill "$DAEMON_PID" 2>/dev/null
  if [[ -f "$CONN" ]]; then  # a daemon the test program restarted
    local pid
    pid="$(sed -nE 's/.*"pid": *([0-9]+).*/\1/p' "$CONN")"
    [[ -n "$pid" ]] && kill "$pid" 2>/dev/null
  fi
  rm -rf "$RUN_DIR"
}
trap cleanup EXIT
"${DAEMON_CMD[@]}" >"$LOGS/daemon.log" 2>&1 &
DAEMON_PID=$!
disown "$DAEMON_PID"  # the test program SIGKILLs it on purpose; no job-control noise
for _ in $(seq 1 150); do
  grep -q "^READY " "$LOGS/daemon.log" 2>/dev/null && break
  kill -0 "$DAEMON_PID" 2>/dev/null || break
  sleep 0.1
done
if ! grep -q "^READY " "$LOGS/daemon.log"; then
  echo "conversation_test: the daemon did not start:"
  tail -n 20 "$LOGS/daemon.log"
  failed=$((failed + 1))
  finish
fi
timeout 150 "$BUILD/conversation_test" "$CONN" -- "${DAEMON_CMD[@]}" >"$LOGS/conversation_test.log" 2>&1
grep -E "^(FAIL|skipped|conversation_test: backend)" "$LOGS/conversation_test.log" | head -n 40
tally conversation_test "$LOGS/conversation_test.log"
cp -f "$CONN.restart.log" "$LOGS/daemon-restarted.log" 2>/dev/null
finish
