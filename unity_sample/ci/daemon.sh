#!/usr/bin/env bash
# Start, stop or kill the daemon of the Unity integration test. test.sh starts and finally stops it;
# the test program calls `kill` + `start` to restart it on the same endpoint mid-conversation.
# Settings come from the environment that test.sh exports (UNITY_CI_*); the Convai key for the
# emulator is in CONVAI_API_KEY and is never printed.
set -u
: "${UNITY_CI_DIR:?}" "${UNITY_CI_ENDPOINT:?}" "${UNITY_CI_CONNECTION_FILE:?}" "${UNITY_CI_EMULATOR_URL:?}"
: "${UNITY_CI_BRIDGE:?}"
pidfile="$UNITY_CI_DIR/daemon.pid"

case "${1:-}" in
start)
    n=$(find "$UNITY_CI_DIR" -maxdepth 1 -name 'daemon.*.log' | wc -l)
    log="$UNITY_CI_DIR/daemon.$((n + 1)).log"
    : >"$log"
    # Own session and process group (pgid = pid): `kill` takes the daemon down with its worker
    # processes, as a crash of the whole daemon would, and nothing is left behind.
    setsid "$UNITY_CI_BRIDGE" serve --endpoint "$UNITY_CI_ENDPOINT" --connection-file "$UNITY_CI_CONNECTION_FILE" \
        --rest-url "$UNITY_CI_EMULATOR_URL" --live-url "$UNITY_CI_EMULATOR_URL" --log-level INFO >"$log" 2>&1 &
    echo $! >"$pidfile"
    for _ in $(seq 1 300); do # 30 s
        if grep -q '^READY ' "$log"; then exit 0; fi
        if ! kill -0 "$(cat "$pidfile")" 2>/dev/null; then
            echo "daemon exited during start:" >&2
            tail -n 20 "$log" >&2
            exit 1
        fi
        sleep 0.1
    done
    echo "daemon not ready after 30 s" >&2
    tail -n 20 "$log" >&2
    exit 1
    ;;
stop | kill)
    [ -f "$pidfile" ] || exit 0
    pid=$(cat "$pidfile")
    if [ "$1" = kill ]; then
        kill -s KILL -- "-$pid" 2>/dev/null || true # the whole group, at once
    else
        kill -s TERM "$pid" 2>/dev/null || true # a clean shutdown of the front, which stops its workers
    fi
    for _ in $(seq 1 50); do # 5 s
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
    done
    kill -s KILL -- "-$pid" 2>/dev/null || true # whatever is left of the group
    rm -f "$pidfile"
    ;;
*)
    echo "usage: daemon.sh start|stop|kill" >&2
    exit 2
    ;;
esac
