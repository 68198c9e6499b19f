# Shared by the smoke scripts, sourced with NAME set (the prefix of every line they print).
# Gives fail, step, PY, ROOT, WORK (removed on exit), and start_server PORT / stop_server for a
# fake that is always stopped on exit; on a failure the server's stderr is printed.
ROOT=$PWD
STEP="setup"
START=$SECONDS
fail() { echo "$NAME: FAIL [$STEP]: $*" >&2; exit 1; }
step() { STEP=$1; echo "$NAME: [$((SECONDS - START))s] $1"; }

PY=$(python -c 'import sys; print(sys.executable)')   # the real interpreter: pyenv shims cost ~0.5 s a call
WORK=$(mktemp -d "${TMPDIR:-/tmp}/lambda_fake_$NAME.XXXXXX")
SERVER_PID=""
SERVER_LOG=""
CHILD=""        # a command the script waits for in the background (killed on exit)

stop_server() {
    [ -n "$SERVER_PID" ] || return 0
    if kill -0 "$SERVER_PID" 2>/dev/null; then
        kill -TERM "$SERVER_PID" 2>/dev/null || true
        for _ in $(seq 1 100); do kill -0 "$SERVER_PID" 2>/dev/null || break; sleep 0.1; done
        if kill -0 "$SERVER_PID" 2>/dev/null; then
            echo "$NAME: server $SERVER_PID ignored SIGTERM for 10 s; killing it" >&2
            kill -KILL "$SERVER_PID" 2>/dev/null || true
        fi
    fi
    wait "$SERVER_PID" 2>/dev/null || true
    SERVER_PID=""
}

# start_server PORT: starts the fake (stopping any earlier one), sets SERVER_PID and ENDPOINT.
start_server() {
    stop_server
    SERVER_LOG="$WORK/server-$1"
    "$PY" "$ROOT/lambda_fake.py" "$1" --quiet >"$SERVER_LOG.out" 2>"$SERVER_LOG.err" &
    SERVER_PID=$!
    ENDPOINT=""
    for _ in $(seq 1 200); do   # up to 20 s
        ENDPOINT=$(sed -n 's/^lambda_fake .* listening on \(http:\/\/127\.0\.0\.1:[0-9][0-9]*\)$/\1/p' "$SERVER_LOG.out")
        [ -n "$ENDPOINT" ] && break
        if ! kill -0 "$SERVER_PID" 2>/dev/null; then
            wait "$SERVER_PID" 2>/dev/null || true
            SERVER_PID=""
            fail "server on port $1 exited before listening: $(cat "$SERVER_LOG.err")"
        fi
        sleep 0.1
    done
    [ -n "$ENDPOINT" ] || fail "server on port $1 printed no 'listening on' line within 20 s"
    echo "$NAME: server $SERVER_PID at $ENDPOINT"
}

cleanup() {
    local rc=$?
    [ "$rc" -eq 0 ] || echo "$NAME: FAILED at step [$STEP] (exit $rc)" >&2
    if [ -n "$CHILD" ]; then kill -TERM "$CHILD" 2>/dev/null || true; wait "$CHILD" 2>/dev/null || true; fi
    stop_server
    if [ "$rc" -ne 0 ] && [ -n "$SERVER_LOG" ] && [ -s "$SERVER_LOG.err" ]; then
        echo "$NAME: server stderr:" >&2; sed 's/^/    /' "$SERVER_LOG.err" >&2
    fi
    rm -rf "$WORK"
    exit "$rc"
}
trap cleanup EXIT
trap 'echo "$NAME: interrupted [$STEP]" >&2; exit 130' INT
trap 'echo "$NAME: terminated [$STEP]" >&2; exit 143' TERM

# The fake reads LAMBDA_FAKE_* (region, account, signature checks, ...): run it with its defaults.
while read -r name; do unset "$name"; done < <(compgen -e | grep '^LAMBDA_FAKE_' || true)
