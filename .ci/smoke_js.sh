#!/usr/bin/env bash
# Smoke test: @aws-sdk/client-lambda (v3, latest) against lambda_fake.
#  1. installs the SDK into a temporary directory and runs .ci/smoke_js.mjs against a fake on a free port;
#  2. runs the README's JavaScript Quick Start exactly as written against a fake on port 4571.
# Usage (from anywhere): bash .ci/smoke_js.sh. Exits non-zero on the first failure.
set -euo pipefail
cd "$(dirname "$0")/.."

NAME=smoke_js.sh
source .ci/smoke_lib.sh

command -v node >/dev/null 2>&1 || fail "node is not on PATH"
command -v npm >/dev/null 2>&1 || fail "npm is not on PATH"
echo "smoke_js.sh: node $(node --version), npm $(npm --version)"

# in_work LIMIT CMD...: runs CMD in $WORK under `timeout LIMIT`, in the background and waited for,
# so that a signal to this script is handled at once (cleanup ends the command too).
in_work() {
    local limit=$1 rc=0
    shift
    (cd "$WORK" && exec timeout "$limit" "$@") &
    CHILD=$!
    wait "$CHILD" || rc=$?
    CHILD=""
    return "$rc"
}

# --- Install the SDK in the temporary directory ----------------------------------------------------
step "npm install @aws-sdk/client-lambda"
echo '{ "name": "lambda-fake-smoke-js", "private": true }' >"$WORK/package.json"
rc=0
in_work 300 npm install --silent --no-audit --no-fund --no-package-lock @aws-sdk/client-lambda \
    >/dev/null || rc=$?
[ "$rc" -eq 0 ] || fail "npm install @aws-sdk/client-lambda exited $rc$([ "$rc" -eq 124 ] && echo ' (timed out after 300 s)')"
SDK_VERSION=$(cd "$WORK" && node -p 'require("@aws-sdk/client-lambda/package.json").version') \
    || fail "@aws-sdk/client-lambda is not importable after npm install"
echo "smoke_js.sh: @aws-sdk/client-lambda $SDK_VERSION"

# --- smoke_js.mjs against a fake on a free port -----------------------------------------------------
step "smoke_js.mjs"
cp "$ROOT/.ci/smoke_js.mjs" "$WORK/smoke_js.mjs"
export LAMBDA_FAKE_NODE_SDK="$WORK/node_modules"   # handlers find the SDK there, as on Lambda
start_server 0
rc=0
in_work 180 node smoke_js.mjs "$ENDPOINT" || rc=$?
[ "$rc" -ne 124 ] || fail "node smoke_js.mjs timed out after 180 s"
[ "$rc" -eq 0 ] || fail "node smoke_js.mjs exited $rc"
stop_server

step "smoke_js.mjs --strict: the SDK's waiters through AWS's lifecycle"
LAMBDA_FAKE_STRICT_AWS=1 start_server 0
rc=0
in_work 120 node smoke_js.mjs "$ENDPOINT" --strict || rc=$?
[ "$rc" -eq 0 ] || fail "node smoke_js.mjs --strict exited $rc"
stop_server

unset LAMBDA_FAKE_NODE_SDK

# --- The README's JavaScript Quick Start, exactly as written -----------------------------------------
step "README JavaScript Quick Start"
"$PY" - "$ROOT/README.md" "$WORK/quickstart.mjs" <<'PY' || fail "could not extract the Quick Start from README.md"
import sys
heading = "## Quick Start (JavaScript, `@aws-sdk/client-lambda` v3)"
lines = open(sys.argv[1], encoding="utf-8").read().splitlines()
if heading not in lines:
    sys.exit(f"README.md has no line {heading!r}")
i = lines.index(heading) + 1
while i < len(lines) and not lines[i].startswith("## ") and lines[i].strip() != "```js":
    i += 1
if i == len(lines) or lines[i].strip() != "```js":
    sys.exit("no ```js block follows the JavaScript Quick Start heading")
end = i + 1
while end < len(lines) and lines[end].strip() != "```":
    end += 1
if end == len(lines):
    sys.exit("the Quick Start's ```js block is not closed")
open(sys.argv[2], "w", encoding="utf-8").write("\n".join(lines[i + 1:end]) + "\n")
PY
grep -q '127.0.0.1:4571' "$WORK/quickstart.mjs" \
    || fail "the Quick Start no longer uses http://127.0.0.1:4571; update this script's port"
if "$PY" -c 'import socket, sys; s = socket.socket(); s.settimeout(2); sys.exit(s.connect_ex(("127.0.0.1", 4571)) != 0)'; then
    fail "port 4571 is busy (something already listens on 127.0.0.1:4571), and the README's Quick Start needs it. Stop that process and rerun."
fi
start_server 4571
rc=0
in_work 60 node quickstart.mjs >"$WORK/quickstart.out" 2>"$WORK/quickstart.err" || rc=$?
if [ "$rc" -ne 0 ]; then
    echo "smoke_js.sh: quickstart.mjs stdout:" >&2; sed 's/^/    /' "$WORK/quickstart.out" >&2
    echo "smoke_js.sh: quickstart.mjs stderr:" >&2; sed 's/^/    /' "$WORK/quickstart.err" >&2
    fail "node quickstart.mjs exited $rc$([ "$rc" -eq 124 ] && echo ' (timed out after 60 s)')"
fi
expected="{ doubled: 42, fn: 'doubler' }"
actual=$(cat "$WORK/quickstart.out")
[ "$actual" = "$expected" ] \
    || fail "the Quick Start printed [$actual], expected [$expected]; stderr: $(cat "$WORK/quickstart.err")"
echo "smoke_js.sh:   printed $actual"

STEP="stop server"
stop_server
echo "smoke_js.sh: OK ($((SECONDS - START))s)"
