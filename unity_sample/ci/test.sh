#!/usr/bin/env bash
# Unity sample CI (make test-unity). Compiles the engine-free core, the Unity layer (against a
# hand-written stub of the few UnityEngine APIs it uses) and the tests with Mono's mcs, runs the unit
# tests (golden vectors, codec, ring buffer, dispatch queue, lip-sync clock, client loop faults),
# then a real two-NPC conversation against the daemon + emulator, including a daemon restart.
#
#   CONVAI_BRIDGE_TEST_BACKEND=live|interaction   backend of the conversation (default live)
#
# Everything is built outside the package, in build/unity_sample/ at the repository root (gitignored;
# UNITY_SAMPLE_BUILD overrides): nothing test-only (stub UnityEngine.dll, logs) may land inside the
# package, where Unity would import it. The last line is "N passed, N failed";
# the exit status is non-zero when anything failed.
set -uo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
PKG=$(dirname "$HERE")
REPO=$(dirname "$PKG")
BUILD="${UNITY_SAMPLE_BUILD:-$REPO/build/unity_sample}"
VENV="${CONVAI_BRIDGE_VENV:-$REPO/.venv}"
BACKEND="${CONVAI_BRIDGE_TEST_BACKEND:-live}"

passed=0
failed=0
pids=()

add() { passed=$((passed + $1)); failed=$((failed + $2)); }
check() { # name, then the command; one check
    if "${@:2}"; then
        add 1 0
        echo "PASS  $1"
    else
        add 0 1
        echo "FAIL  $1"
    fi
}
finish() {
    if [ -n "${UNITY_CI_DIR:-}" ] && [ -x "$HERE/daemon.sh" ]; then "$HERE/daemon.sh" stop >/dev/null 2>&1; fi
    for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null; done
    echo "$passed passed, $failed failed"
    [ "$failed" -eq 0 ] && [ "$passed" -gt 0 ]
    exit $?
}
trap finish EXIT
trap 'exit 130' INT TERM

# -- tools --------------------------------------------------------------------------------------
for tool in mcs mono; do
    if ! command -v "$tool" >/dev/null; then
        echo "FAIL  $tool not found (apt-get install mono-mcs mono-runtime)"
        add 0 1
        exit
    fi
done
if [ ! -x "$VENV/bin/convai-bridge" ]; then
    echo "FAIL  $VENV/bin/convai-bridge not found (create the venv first)"
    add 0 1
    exit
fi

rm -rf "$BUILD" "$PKG/build" # (the old in-package build folder too: the layout check refuses it)
mkdir -p "$BUILD"

# -- package layout -------------------------------------------------------------------------------
check "package layout: .meta for every asset and folder, unique GUIDs, no assemblies, asmdef platforms, IL2CPP-safe code" \
    "$VENV/bin/python" "$HERE/package_layout.py"
check "package layout check catches a missing .meta, a duplicate GUID, an assembly, an editor asmdef, IL2CPP-unsafe code" \
    "$VENV/bin/python" "$HERE/package_layout.py" --self-test "$BUILD/layout-selftest"

# -- build ----------------------------------------------------------------------------------------
check "generated Messages.g.cs matches protocol/schema.json" "$VENV/bin/python" "$HERE/gen_messages.py" --check

before_build=$failed
CORE_SRC=()
while IFS= read -r f; do CORE_SRC+=("$f"); done < <(find "$PKG/Runtime/Core" -name '*.cs' | sort)

# C# 6 is a subset of what Unity 2021.3+ compiles (C# 9), so this also checks the language level.
MCS=(mcs -langversion:6 -nologo -warnaserror+ -nowarn:1591)
compile() { # output, then mcs arguments; the compiler's output goes to build/NAME.build.log
    local log
    log="$BUILD/$(basename "$1").build.log"
    shift
    if "$@" >"$log" 2>&1; then return 0; fi
    cat "$log"
    return 1
}
B="$BUILD"
check "core compiles without UnityEngine (mcs, C# 6, warnings as errors)" \
    compile "$B/ConvaiBridge.Core.dll" "${MCS[@]}" -target:library -out:"$B/ConvaiBridge.Core.dll" "${CORE_SRC[@]}"
check "core compiles with CONVAI_NETMQ against the NetMQ 4.0.1 API stub" \
    compile "$B/core-netmq" bash -c '
        set -e
        '"${MCS[*]}"' -target:library -out:"$1/NetMQ.dll" "$2/Tests~/Stubs/NetMQStub.cs"
        '"${MCS[*]}"' -define:CONVAI_NETMQ -target:library -out:"$1/ConvaiBridge.Core.NetMQ.dll" -r:"$1/NetMQ.dll" "${@:3}"
    ' _ "$B" "$PKG" "${CORE_SRC[@]}"
# The Unity layer cannot be built against the real UnityEngine here. It is built the way the engine builds
# it, once per define set it claims (Unity passes these per target and settings), against a behaving stub
# of the UnityEngine API it uses (Tests~/Stubs; compiled with UNITY_WEBGL it lacks what WebGL lacks):
#   variant NAME "DEFINES" [editor] [inputsystem] [run]
# builds Core, Runtime, Samples (and Editor, and the Unity-layer test program) into build/NAME/.
variant() {
    local name=$1 defines=$2 flags=" ${*:3} " dir="$B/$1" d=() def
    for def in $defines; do d+=("-define:$def"); done
    mkdir -p "$dir"
    local log="$B/$name.build.log"
    : >"$log"
    step() { "$@" >>"$log" 2>&1 || { cat "$log"; return 1; }; } # (set -e is off inside `check`)
    local refs=(-r:"$dir/UnityEngine.dll" -r:"$dir/ConvaiBridge.Core.dll")
    step "${MCS[@]}" "${d[@]}" -target:library -out:"$dir/UnityEngine.dll" "$PKG/Tests~/Stubs/UnityEngineStub.cs" || return 1
    step "${MCS[@]}" "${d[@]}" -target:library -out:"$dir/ConvaiBridge.Core.dll" "${CORE_SRC[@]}" || return 1
    if [[ $flags == *" inputsystem "* ]]; then
        step "${MCS[@]}" -target:library -out:"$dir/Unity.InputSystem.dll" -r:"$dir/UnityEngine.dll" \
            "$PKG/Tests~/Stubs/InputSystemStub.cs" || return 1
        refs+=(-r:"$dir/Unity.InputSystem.dll")
    fi
    step "${MCS[@]}" "${d[@]}" -target:library -out:"$dir/ConvaiBridge.Runtime.dll" "${refs[@]}" "$PKG"/Runtime/*.cs || return 1
    if [[ $flags == *" editor "* ]]; then
        step "${MCS[@]}" -target:library -out:"$dir/UnityEditor.dll" -r:"$dir/UnityEngine.dll" "$PKG/Tests~/Stubs/UnityEditorStub.cs" || return 1
        step "${MCS[@]}" "${d[@]}" -target:library -out:"$dir/ConvaiBridge.Editor.dll" "${refs[@]}" -r:"$dir/UnityEditor.dll" \
            -r:"$dir/ConvaiBridge.Runtime.dll" "$PKG"/Editor/*.cs || return 1
    fi
    step "${MCS[@]}" "${d[@]}" -target:library -out:"$dir/Samples.dll" "${refs[@]}" -r:"$dir/ConvaiBridge.Runtime.dll" \
        "$PKG"/Samples~/TalkingNpcs/*.cs || return 1
    if [[ $flags == *" run "* ]]; then
        step mcs -nologo "${d[@]}" -out:"$dir/unity_layer.exe" "${refs[@]}" -r:"$dir/ConvaiBridge.Runtime.dll" -r:System.Core.dll \
            "$PKG/Tests~/TestFramework.cs" "$PKG/Tests~/UnityLayerTests.cs" || return 1
    fi
}
mobile() {
    variant android "UNITY_ANDROID ENABLE_IL2CPP ENABLE_INPUT_SYSTEM CONVAI_INPUT_SYSTEM" inputsystem &&
        variant ios "UNITY_IOS ENABLE_IL2CPP ENABLE_LEGACY_INPUT_MANAGER"
}
STANDALONE="UNITY_STANDALONE UNITY_STANDALONE_LINUX UNITY_2021_3_OR_NEWER"
check "Unity layer: Linux player, Mono, legacy Input Manager (+ Editor scripts, sample, test program)" \
    variant desktop "$STANDALONE ENABLE_MONO ENABLE_LEGACY_INPUT_MANAGER" editor run
check "Unity layer: Input System only (no legacy input; versionDefines CONVAI_INPUT_SYSTEM)" \
    variant inputsystem "$STANDALONE ENABLE_MONO ENABLE_INPUT_SYSTEM CONVAI_INPUT_SYSTEM" inputsystem run
check "Unity layer: Windows player, IL2CPP, both input systems" \
    variant il2cpp "UNITY_STANDALONE UNITY_STANDALONE_WIN UNITY_2023_1_OR_NEWER ENABLE_IL2CPP ENABLE_LEGACY_INPUT_MANAGER ENABLE_INPUT_SYSTEM CONVAI_INPUT_SYSTEM" inputsystem
check "Unity layer: WebGL player (IL2CPP, no Microphone, no libzmq)" \
    variant webgl "UNITY_WEBGL ENABLE_IL2CPP ENABLE_LEGACY_INPUT_MANAGER" run
check "Unity layer: Editor with the WebGL build target (no Microphone)" \
    variant editor-webgl "UNITY_EDITOR UNITY_WEBGL ENABLE_MONO ENABLE_LEGACY_INPUT_MANAGER" editor
check "Unity layer: Android / iOS players (IL2CPP, Input System)" \
    mobile
check "tests compile" \
    compile "$B/unit.exe" mcs -nologo -out:"$B/unit.exe" -r:"$B/ConvaiBridge.Core.dll" -r:System.Core.dll \
    "$PKG/Tests~/TestFramework.cs" "$PKG/Tests~/VectorTests.cs" "$PKG/Tests~/CodecTests.cs" \
    "$PKG/Tests~/RuntimeTests.cs" "$PKG/Tests~/ClientLoopTests.cs" "$PKG/Tests~/ConnectionPathTests.cs" "$PKG/Tests~/ResampleTests.cs" \
    "$PKG/Tests~/UnitMain.cs"
check "integration program compiles" \
    compile "$B/integration.exe" mcs -nologo -out:"$B/integration.exe" -r:"$B/ConvaiBridge.Core.dll" \
    -r:System.Core.dll "$PKG/Tests~/Integration.cs"
if [ "$failed" -ne "$before_build" ]; then exit; fi # nothing to run

# Reads "RESULT passed=N failed=M" from a test program's output; a program that dies without it fails.
tally() {
    local log=$1 line
    line=$(grep -E '^RESULT passed=[0-9]+ failed=[0-9]+' "$log" | tail -n 1)
    if [ -z "$line" ]; then
        echo "FAIL  $(basename "$log" .log) ended without a result line"
        add 0 1
        return
    fi
    local p f
    p=$(echo "$line" | sed -E 's/.*passed=([0-9]+).*/\1/')
    f=$(echo "$line" | sed -E 's/.*failed=([0-9]+).*/\1/')
    add "$p" "$f"
}

# -- unit tests -----------------------------------------------------------------------------------
echo "== unit tests (vectors, codec, ring buffer, dispatch, lip sync, client loop)"
timeout 120 mono "$BUILD/unit.exe" "$REPO/protocol/vectors" >"$BUILD/unit.log" 2>&1
grep -E '^(FAIL|RESULT)' "$BUILD/unit.log"
tally "$BUILD/unit.log"

# -- conversation against the real daemon -----------------------------------------------------------
echo "== conversation against the daemon ($BACKEND backend)"
export UNITY_CI_DIR="$BUILD/run"
mkdir -p "$UNITY_CI_DIR/xdg"
export XDG_CONFIG_HOME="$UNITY_CI_DIR/xdg" # never read the user's daemon config
export UNITY_CI_BRIDGE="$VENV/bin/convai-bridge"
export UNITY_CI_CONNECTION_FILE="$UNITY_CI_DIR/connection.json"
port=$("$VENV/bin/python" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
export UNITY_CI_ENDPOINT="tcp://127.0.0.1:$port"
# The emulator runs as its own process so it outlives the daemon restart, as Convai would.
CONVAI_API_KEY=$("$VENV/bin/python" -c 'import secrets; print(secrets.token_hex(16))')
export CONVAI_API_KEY
# The stub microphone sends a tone, not words: speech recognition off, so the emulator's placeholder
# transcript "(voice input, N.N seconds)" tells the push-to-talk test how much audio it heard.
"$UNITY_CI_BRIDGE" emulator --host 127.0.0.1 --port 0 --api-key "$CONVAI_API_KEY" --no-speech-recognition >"$UNITY_CI_DIR/emulator.log" 2>&1 &
pids+=($!)
emulator_url=""
for _ in $(seq 1 300); do
    emulator_url=$(sed -nE 's/.*listening on (http:[^ ]+).*/\1/p' "$UNITY_CI_DIR/emulator.log" | head -n 1)
    [ -n "$emulator_url" ] && break
    sleep 0.1
done
if [ -z "$emulator_url" ]; then
    echo "FAIL  emulator did not start"
    tail -n 20 "$UNITY_CI_DIR/emulator.log"
    add 0 1
    exit
fi
export UNITY_CI_EMULATOR_URL="$emulator_url"
if ! "$HERE/daemon.sh" start; then
    echo "FAIL  daemon did not start"
    add 0 1
    exit
fi
timeout 150 mono "$BUILD/integration.exe" "$UNITY_CI_CONNECTION_FILE" "$HERE/daemon.sh" "$BACKEND" \
    >"$BUILD/integration.log" 2>"$BUILD/integration.stderr.log"
grep -E '^(PASS|FAIL|SKIP|RESULT|INFO)' "$BUILD/integration.log"
tally "$BUILD/integration.log"
if grep -q '^FAIL' "$BUILD/integration.log"; then
    echo "-- client log (tail):"
    tail -n 30 "$BUILD/integration.stderr.log"
fi

# -- the Unity layer executed: MonoBehaviours in the stub player loop, real daemon ----------------------
echo "== Unity layer under Mono (stub engine: player loop, DSP thread, microphone; real daemon)"
for v in desktop inputsystem webgl; do
    arg="$UNITY_CI_CONNECTION_FILE"
    [ "$v" = webgl ] && arg="-" # a WebGL player never reaches the daemon
    timeout 240 mono "$B/$v/unity_layer.exe" "$arg" >"$BUILD/unity_layer.$v.log" 2>"$BUILD/unity_layer.$v.stderr.log"
    grep -E '^(ok|FAIL|INFO)' "$BUILD/unity_layer.$v.log" | sed -E "s/^(ok|FAIL|INFO) +/\1  [$v] /"
    tally "$BUILD/unity_layer.$v.log"
    if grep -q '^FAIL' "$BUILD/unity_layer.$v.log"; then
        echo "-- $v stderr (tail):"
        tail -n 20 "$BUILD/unity_layer.$v.stderr.log"
    fi
done
