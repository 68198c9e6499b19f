#!/usr/bin/env bash
# Smoke test of custom runtimes with AWS's own runtime interface clients as their bootstrap, as
# real clients nobody here wrote: awslambdaric (PyPI) for a Python handler, aws-lambda-ric (npm)
# for a Node.js one. Each is skipped, with the reason, where it cannot be installed or built.
set -euo pipefail
cd "$(dirname "$0")/.."
NAME=smoke_ric
source .ci/smoke_lib.sh

step "awslambdaric (PyPI) in a fresh virtual environment"
PY_RIC=""
if "$PY" -m venv "$WORK/venv" && "$WORK/venv/bin/python" -m pip install --quiet \
        --disable-pip-version-check awslambdaric boto3 >"$WORK/pip.log" 2>&1; then
    PY_RIC="$WORK/venv/bin/python"
else
    echo "$NAME: SKIP awslambdaric: it did not install here: $(tail -1 "$WORK/pip.log")"
fi

step "aws-lambda-ric (npm), which builds native code"
NODE_RIC=""
if ! command -v autoreconf >/dev/null 2>&1 || ! command -v cmake >/dev/null 2>&1; then
    (apt-get update -qq && apt-get install -y -qq autoconf automake libtool cmake make g++ \
        >/dev/null 2>&1) || echo "$NAME: the build tools could not be installed"
fi
if (cd "$WORK" && npm install --no-audit --no-fund --loglevel=error aws-lambda-ric \
        >"$WORK/npm.log" 2>&1); then
    NODE_RIC="$WORK/node_modules/.bin/aws-lambda-ric"
else
    echo "$NAME: SKIP aws-lambda-ric: it did not build here (it needs autoconf, automake," \
         "libtool, cmake, make and a C++ compiler): $(grep -m1 -i error "$WORK/npm.log" || true)"
fi
[ -n "$PY_RIC$NODE_RIC" ] || { echo "$NAME: nothing to run"; exit 0; }
CLIENT_PY=${PY_RIC:-$PY}

start_server 4597
step "invoke handlers whose bootstrap is a runtime interface client"
PY_RIC="$PY_RIC" NODE_RIC="$NODE_RIC" ENDPOINT="$ENDPOINT" "$CLIENT_PY" - <<'PY'
import io, json, os, zipfile
import boto3

lam = boto3.client("lambda", endpoint_url=os.environ["ENDPOINT"], region_name="us-east-1",
                   aws_access_key_id="test", aws_secret_access_key="test")


def package(files):
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, data in files.items():
            info = zipfile.ZipInfo(name)
            info.external_attr = (0o755 if name == "bootstrap" else 0o644) << 16
            archive.writestr(info, data)
    return buffer.getvalue()


CLIENTS = {
    "python": (os.environ["PY_RIC"], "app.handler", {"app.py": (
        "def handler(event, context):\n"
        "    if event.get('fail'):\n"
        "        raise ValueError('refused')\n"
        "    return {'n': event['n'] * 2, 'id': context.aws_request_id,\n"
        "            'arn': context.invoked_function_arn}\n")},
        '#!/bin/sh\nexec "{client}" -m awslambdaric "$_HANDLER"\n'),
    "node": (os.environ["NODE_RIC"], "index.handler", {"index.js": (
        "exports.handler = async (event, context) => {\n"
        "  if (event.fail) throw new Error('refused');\n"
        "  return {n: event.n * 2, id: context.awsRequestId,\n"
        "          arn: context.invokedFunctionArn};\n"
        "};\n")},
        '#!/bin/sh\nexec "{client}" "$_HANDLER"\n'),
}
for name, (client, handler, files, bootstrap) in CLIENTS.items():
    if not client:
        continue
    files = dict(files, bootstrap=bootstrap.format(client=client))
    lam.create_function(FunctionName=name, Runtime="provided.al2023", Handler=handler,
                        Role="arn:aws:iam::123456789012:role/r",
                        Code={"ZipFile": package(files)})
    for n in (1, 2):
        out = lam.invoke(FunctionName=name, Payload=json.dumps({"n": n}))
        answer = json.loads(out["Payload"].read())
        assert "FunctionError" not in out, answer
        assert answer == {"n": n * 2, "id": out["ResponseMetadata"]["RequestId"],
                          "arn": f"arn:aws:lambda:us-east-1:123456789012:function:{name}"}, answer
    out = lam.invoke(FunctionName=name, Payload=b'{"fail": true}')
    answer = json.loads(out["Payload"].read())
    assert out["FunctionError"] == "Unhandled" and answer["errorMessage"] == "refused", answer
    print(f"smoke_ric:   {name}: results, the context, and an error as the client reports it")
PY
echo "$NAME: OK ($((SECONDS - START))s)"
