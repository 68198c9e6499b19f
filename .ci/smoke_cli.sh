#!/usr/bin/env bash
# Smoke test: the AWS CLI (v1) against lambda_fake, end to end.
# Starts the fake on a free port, drives it with `aws lambda ...`, exits non-zero on the first failure.
# Usage (from anywhere): bash .ci/smoke_cli.sh
set -euo pipefail
cd "$(dirname "$0")/.."

NAME=smoke_cli
source .ci/smoke_lib.sh

# find_aws: the aws on PATH (past a pyenv shim, to the real script), else the one pip put in this
# interpreter's scripts directory (a fresh pip install may not be on PATH or shimmed yet).
find_aws() {
    local found
    found=$(command -v aws 2>/dev/null || true)
    case "$found" in */shims/*) found=$(pyenv which aws 2>/dev/null || echo "$found") ;; esac
    if [ -z "$found" ]; then
        for dir in "$("$PY" -c 'import sysconfig; print(sysconfig.get_path("scripts"))')" \
                   "$("$PY" -c 'import os, sysconfig; print(sysconfig.get_path("scripts", os.name + "_user"))')"; do
            [ -x "$dir/aws" ] && { found=$dir/aws; break; }
        done
    fi
    echo "$found"
}
AWS=$(find_aws)
if [ -z "$AWS" ]; then
    echo "smoke_cli: installing the AWS CLI v1"
    python -m pip install --quiet --disable-pip-version-check awscli
    hash -r
    AWS=$(find_aws)
fi
[ -n "$AWS" ] || fail "no aws command, even after 'python -m pip install awscli'"
echo "smoke_cli: $("$AWS" --version 2>&1)"

# --- Isolate the CLI from the host's AWS configuration ---------------------------------------
unset AWS_PROFILE AWS_DEFAULT_PROFILE AWS_SESSION_TOKEN AWS_SECURITY_TOKEN AWS_ENDPOINT_URL AWS_REGION
export AWS_CONFIG_FILE="$WORK/aws-config" AWS_SHARED_CREDENTIALS_FILE="$WORK/aws-credentials"
export AWS_ACCESS_KEY_ID=test AWS_SECRET_ACCESS_KEY=test AWS_DEFAULT_REGION=us-east-1
export AWS_EC2_METADATA_DISABLED=true AWS_PAGER="" AWS_MAX_ATTEMPTS=1 AWS_RETRY_MODE=standard

# --- Start the fake on a free port --------------------------------------------------------------
step "start server"
start_server 0
export AWS_ENDPOINT_URL_LAMBDA=$ENDPOINT

# --- Helpers -----------------------------------------------------------------------------------
# awsl ARGS...: `aws lambda ARGS...` with a time limit; stdout to stdout, stderr kept in $WORK/last.err.
awsl() {
    local rc=0
    timeout 120 "$AWS" lambda "$@" 2>"$WORK/last.err" || rc=$?
    if [ "$rc" -ne 0 ]; then
        [ "$rc" -eq 124 ] && echo "smoke_cli: 'aws lambda $*' timed out after 120 s" >&2
        echo "smoke_cli: 'aws lambda $*' exited $rc; stderr:" >&2
        sed 's/^/    /' "$WORK/last.err" >&2
    fi
    return "$rc"
}
# pj EXPR: read JSON on stdin, print the Python expression EXPR evaluated with d bound to it.
pj() { "$PY" -c 'import json,sys; d=json.load(sys.stdin); v=eval(sys.argv[1]); print(v if isinstance(v,str) else json.dumps(v, sort_keys=True))' "$1"; }
expect_eq() {   # expect_eq ACTUAL EXPECTED WHAT
    [ "$1" = "$2" ] || fail "$3: expected [$2], got [$1]"
}

# --cli-binary-format exists only in CLI v2 (where blobs default to base64); v1 sends --payload
# text as it is and rejects the option as unknown.
BINFMT=()
case "$("$AWS" --version 2>&1)" in aws-cli/1.*) ;; *) BINFMT=(--cli-binary-format raw-in-base64-out) ;; esac

ROLE=arn:aws:iam::123456789012:role/lambda-role
ZIP_FN=smoke-cli-zip
SRC_FN=smoke-cli-src

# --- create-function from a real zip (two modules: index.js requires ./lib.js) -------------------
step "create-function from a zip"
mkdir -p "$WORK/pkg"
cat >"$WORK/pkg/index.js" <<'EOF'
const { triple } = require("./lib");
exports.handler = async (event, context) => {
  console.log("zip handler got", JSON.stringify(event));
  return { tripled: triple(event.n), fn: context.functionName, version: context.functionVersion };
};
EOF
echo 'exports.triple = (n) => n * 3;' >"$WORK/pkg/lib.js"
(cd "$WORK/pkg" && "$PY" -m zipfile -c "$WORK/fn.zip" index.js lib.js)
"$PY" -m zipfile -l "$WORK/fn.zip" >/dev/null || fail "could not build fn.zip"
out=$(awsl create-function --function-name "$ZIP_FN" --runtime nodejs20.x --handler index.handler \
        --role "$ROLE" --zip-file "fileb://$WORK/fn.zip" --timeout 10)
expect_eq "$(pj 'd["FunctionName"]' <<<"$out")" "$ZIP_FN" "create-function FunctionName"
expect_eq "$(pj 'd["FunctionArn"]' <<<"$out")" "arn:aws:lambda:us-east-1:123456789012:function:$ZIP_FN" "FunctionArn"
expect_eq "$(pj 'd["Runtime"]' <<<"$out")" "nodejs20.x" "Runtime"

# --- create-function from raw source (fileb:// of a .js file) ------------------------------------
step "create-function from raw source (--cli-input-json)"
cat >"$WORK/doubler.js" <<'EOF'
exports.handler = async (event, context) => ({ doubled: event.n * 2, fn: context.functionName });
EOF
# AWS CLI v1 checks client-side that --zip-file is a zip ("--zip-file must be a zip file with the
# fileb:// prefix", awscli/customizations/awslambda.py) and refuses ZipFile inside --code, so
# `--zip-file fileb://doubler.js` never reaches the server. The source goes as Code.ZipFile in
# --cli-input-json instead: a JSON string for a blob member, which botocore sends base64-encoded.
"$PY" - "$WORK/doubler.js" "$SRC_FN" "$ROLE" >"$WORK/create-src.json" <<'PY'
import json, sys
source, name, role = sys.argv[1:]
print(json.dumps({"FunctionName": name, "Runtime": "nodejs20.x", "Handler": "index.handler",
                  "Role": role, "Code": {"ZipFile": open(source).read()}}))
PY
out=$(awsl create-function --cli-input-json "file://$WORK/create-src.json")
expect_eq "$(pj 'd["FunctionName"]' <<<"$out")" "$SRC_FN" "create-function FunctionName"

# --- wait function-active-v2 ---------------------------------------------------------------------
step "wait function-active-v2"
awsl wait function-active-v2 --function-name "$ZIP_FN"
awsl wait function-active-v2 --function-name "$SRC_FN"

# --- invoke, checking the output file ------------------------------------------------------------
step "invoke (zip function)"
meta=$(awsl invoke --function-name "$ZIP_FN" "${BINFMT[@]}" \
        --payload '{"n": 7}' "$WORK/out-zip.json")
expect_eq "$(pj 'd["StatusCode"]' <<<"$meta")" "200" "invoke StatusCode"
expect_eq "$(pj 'd.get("FunctionError")' <<<"$meta")" "null" "invoke FunctionError"
expect_eq "$(pj 'd.get("ExecutedVersion")' <<<"$meta")" '$LATEST' "invoke ExecutedVersion"
expect_eq "$(pj 'd' <"$WORK/out-zip.json")" '{"fn": "smoke-cli-zip", "tripled": 21, "version": "$LATEST"}' "invoke payload"

step "invoke (raw-source function)"
awsl invoke --function-name "$SRC_FN" "${BINFMT[@]}" \
    --payload '{"n": 21}' "$WORK/out-src.json" >/dev/null
expect_eq "$(pj 'd' <"$WORK/out-src.json")" '{"doubled": 42, "fn": "smoke-cli-src"}' "invoke payload"

# --- invoke --log-type Tail ----------------------------------------------------------------------
step "invoke --log-type Tail"
meta=$(awsl invoke --function-name "$ZIP_FN" "${BINFMT[@]}" \
        --payload '{"n": 1}' --log-type Tail "$WORK/out-tail.json")
log=$(pj 'd["LogResult"]' <<<"$meta" | "$PY" -c 'import base64,sys; print(base64.b64decode(sys.stdin.read()).decode())')
grep -q "START RequestId" <<<"$log" || fail "decoded LogResult lacks 'START RequestId': $log"
grep -q "REPORT RequestId" <<<"$log" || fail "decoded LogResult lacks 'REPORT RequestId': $log"
grep -q 'zip handler got {"n":1}' <<<"$log" || fail "decoded LogResult lacks the handler's console.log: $log"
expect_eq "$(pj 'd["tripled"]' <"$WORK/out-tail.json")" "3" "invoke --log-type Tail payload"

# --- get-function / list-functions ---------------------------------------------------------------
step "get-function"
out=$(awsl get-function --function-name "$ZIP_FN")
expect_eq "$(pj 'd["Configuration"]["State"]' <<<"$out")" "Active" "get-function State"
expect_eq "$(pj 'd["Configuration"]["Handler"]' <<<"$out")" "index.handler" "get-function Handler"
expect_eq "$(pj 'd["Code"]["RepositoryType"]' <<<"$out")" "S3" "get-function Code.RepositoryType"
location=$(pj 'd["Code"]["Location"]' <<<"$out")
"$PY" - "$location" "$WORK/fn.zip" <<'EOF' || fail "Code.Location does not serve the uploaded zip ($location)"
import sys, urllib.request
with urllib.request.urlopen(sys.argv[1], timeout=30) as r:
    served = r.read()
sys.exit(0 if served == open(sys.argv[2], "rb").read() else 1)
EOF

step "list-functions"
out=$(awsl list-functions)
expect_eq "$(pj 'sorted(f["FunctionName"] for f in d["Functions"])' <<<"$out")" \
    "[\"$SRC_FN\", \"$ZIP_FN\"]" "list-functions names"
# The CLI paginates on its own: a page size of 1 must still list both.
out=$(awsl list-functions --page-size 1)
expect_eq "$(pj 'sorted(f["FunctionName"] for f in d["Functions"])' <<<"$out")" \
    "[\"$SRC_FN\", \"$ZIP_FN\"]" "list-functions --page-size 1 names"

# --- update-function-code, then publish-version and create-alias ---------------------------------
step "update-function-code"
echo 'exports.triple = (n) => n * 3 + 1000;' >"$WORK/pkg/lib.js"
rm -f "$WORK/fn2.zip"
(cd "$WORK/pkg" && "$PY" -m zipfile -c "$WORK/fn2.zip" index.js lib.js)
out=$(awsl update-function-code --function-name "$ZIP_FN" --zip-file "fileb://$WORK/fn2.zip")
expect_eq "$(pj 'd["FunctionName"]' <<<"$out")" "$ZIP_FN" "update-function-code FunctionName"
awsl wait function-updated-v2 --function-name "$ZIP_FN"
awsl invoke --function-name "$ZIP_FN" "${BINFMT[@]}" \
    --payload '{"n": 7}' "$WORK/out-updated.json" >/dev/null
expect_eq "$(pj 'd["tripled"]' <"$WORK/out-updated.json")" "1021" "invoke after update-function-code"

step "publish-version"
out=$(awsl publish-version --function-name "$ZIP_FN" --description "smoke v1")
expect_eq "$(pj 'd["Version"]' <<<"$out")" "1" "publish-version Version"
expect_eq "$(pj 'd["FunctionArn"]' <<<"$out")" "arn:aws:lambda:us-east-1:123456789012:function:$ZIP_FN:1" "publish-version FunctionArn"

step "create-alias"
out=$(awsl create-alias --function-name "$ZIP_FN" --name live --function-version 1)
expect_eq "$(pj 'd["AliasArn"]' <<<"$out")" "arn:aws:lambda:us-east-1:123456789012:function:$ZIP_FN:live" "create-alias AliasArn"
expect_eq "$(pj 'd["FunctionVersion"]' <<<"$out")" "1" "create-alias FunctionVersion"
meta=$(awsl invoke --function-name "$ZIP_FN" --qualifier live "${BINFMT[@]}" \
        --payload '{"n": 2}' "$WORK/out-alias.json")
expect_eq "$(pj 'd.get("ExecutedVersion")' <<<"$meta")" "1" "invoke via alias ExecutedVersion"
expect_eq "$(pj 'd' <"$WORK/out-alias.json")" '{"fn": "smoke-cli-zip", "tripled": 1006, "version": "1"}' "invoke via alias payload"

# --- a deliberate error --------------------------------------------------------------------------
step "get-function on a missing function fails"
rc=0
timeout 120 "$AWS" lambda get-function --function-name smoke-cli-missing >"$WORK/err.out" 2>"$WORK/err.err" || rc=$?
[ "$rc" -ne 0 ] || fail "get-function on a missing function exited 0: $(cat "$WORK/err.out")"
[ "$rc" -ne 124 ] || fail "get-function on a missing function timed out"
grep -q "ResourceNotFoundException" "$WORK/err.err" \
    || fail "get-function on a missing function (exit $rc) did not print ResourceNotFoundException: $(cat "$WORK/err.err")"
echo "smoke_cli:   exit $rc: $(tr -s '\n' ' ' <"$WORK/err.err")"

# --- delete-function ---------------------------------------------------------------------------
step "delete-function"
awsl delete-function --function-name "$ZIP_FN" >/dev/null
awsl delete-function --function-name "$SRC_FN" >/dev/null
out=$(awsl list-functions)
expect_eq "$(pj 'len(d["Functions"])' <<<"$out")" "0" "functions left after delete-function"
rc=0
timeout 120 "$AWS" lambda get-function --function-name "$ZIP_FN" >/dev/null 2>"$WORK/err.err" || rc=$?
[ "$rc" -ne 0 ] && grep -q "ResourceNotFoundException" "$WORK/err.err" \
    || fail "get-function after delete-function: exit $rc, $(cat "$WORK/err.err")"

STEP="stop server"
stop_server
echo "smoke_cli: OK"
