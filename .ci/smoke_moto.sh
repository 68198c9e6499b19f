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
"$work/venv/bin/python" -m pytest -q -p no:cacheprovider -k "the_local_" test_lambda_fake.py
echo "smoke_moto: ok"

# The README's "With other local AWS services" example, run as written against moto's server and
# this fake on the ports it names.
example=$(awk '/^## With other local AWS services/{on=1} on && /^```python$/{grab=1; next}
               grab && /^```$/{exit} grab{print}' README.md)
[ -n "$example" ] || { echo "smoke_moto: no example found in README.md"; exit 1; }
"$work/venv/bin/python" -m moto.server -p 5000 >"$work/moto.log" 2>&1 &
moto=$!
AWS_ENDPOINT_URL=http://127.0.0.1:5000 "$work/venv/bin/python" lambda_fake.py 4571 --quiet \
    >"$work/fake.log" 2>&1 &
fake=$!
trap 'kill $moto $fake 2>/dev/null || true; rm -rf "$work"' EXIT
for _ in $(seq 1 100); do
    if "$work/venv/bin/python" -c "import socket; [socket.create_connection(('127.0.0.1', p), 1)
                                    for p in (5000, 4571)]" 2>/dev/null; then break; fi
    sleep 0.2
done
printf '%s\n' "$example" > "$work/example.py"
output=$(timeout 120 "$work/venv/bin/python" "$work/example.py")
echo "$output" | sed 's/^/smoke_moto:   /'
echo "$output" | grep -q "b'hello from SQS'" || { echo "smoke_moto: the example did not copy the message"; exit 1; }
echo "$output" | grep -q "^REPORT RequestId" || { echo "smoke_moto: the example read back no log"; exit 1; }
echo "smoke_moto: README example ok"
