#!/usr/bin/env bash
# Smoke test of packaging, as a new user meets it: `pip install .` into a fresh virtual environment
# gives the `lambda-fake` command, `python -m lambda_fake`, and the pytest plugin (no configuration).
set -euo pipefail
cd "$(dirname "$0")/.."
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

python -m venv "$work/venv"
mkdir "$work/src"                       # build from a copy, so the checkout gets no build/ or egg-info
cp lambda_fake.py pyproject.toml README.md LICENSE "$work/src/"
"$work/venv/bin/python" -m pip install --quiet --disable-pip-version-check "$work/src" pytest boto3
"$work/venv/bin/lambda-fake" --help | grep -q "LAMBDA_FAKE_PORT"
"$work/venv/bin/python" -m lambda_fake --help | grep -q "LAMBDA_FAKE_REGION"

# The plugin's fixtures appear by themselves once installed.
cat > "$work/test_user.py" <<'PY'
import json


def test_plugin_fixtures_run_a_handler(lambda_client):
    lambda_client.create_function(
        FunctionName="doubler", Runtime="python3.12", Handler="app.handler",
        Role="arn:aws:iam::123456789012:role/r",
        Code={"ZipFile": b"def handler(event, context):\n    return event['n'] * 2\n"})
    out = lambda_client.invoke(FunctionName="doubler", Payload=b'{"n": 21}')
    assert json.loads(out["Payload"].read()) == 42


def test_plugin_points_sdk_clients_at_the_fake(lambda_server):
    import boto3
    assert boto3.client("lambda").list_functions()["Functions"] == []
PY
(cd "$work" && "$work/venv/bin/python" -m pytest -q -p no:cacheprovider test_user.py)
echo "smoke_package: ok"
