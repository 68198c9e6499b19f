#!/usr/bin/env bash
# The tests of lambda_fake with other local AWS services, against moto's server: they are skipped
# by the README's test command (it installs pytest and boto3 only), so they run here, in a virtual
# environment that has moto[server] too.
set -euo pipefail
cd "$(dirname "$0")/.."
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

python -m venv "$work/venv"
"$work/venv/bin/python" -m pip install --quiet --disable-pip-version-check \
    "moto[server]" "boto3>=1.44.5" pytest
"$work/venv/bin/python" -m pytest -q -p no:cacheprovider -k "local_s3 or local_cloudwatch or local_sqs" test_lambda_fake.py
echo "smoke_moto: ok"
