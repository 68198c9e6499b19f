"""Tests for lambda_fake: a real server on a free port, driven through boto3 as users drive it.

Run as the README does (a virtual environment with pyproject.toml's `test` extra, then pytest):
    python -m venv .venv && .venv/bin/pip install -q -e ".[test]" \
        && .venv/bin/python -m pytest -q test_lambda_fake.py
Needs Node.js (`node` on PATH) for the Node.js handler tests, and what the `test` extra names:
pytest, and a boto3 whose botocore knows every Lambda operation.
"""

import base64
import datetime
import hashlib
import html.parser
import http.client
import io
import json
import os
import random
import re
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
import uuid
import zipfile

import boto3
import botocore.loaders
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

import lambda_fake
from lambda_fake import LambdaServer


ROLE = "arn:aws:iam::123456789012:role/lambda-role"
ACCOUNT = "123456789012"
REGION = "us-east-1"
DOUBLER = (b"exports.handler = async (event, context) => "
           b"({ doubled: event.n * 2, fn: context.functionName });\n")


# ----------------------------------------------------------------------------------------------
# Fixtures and helpers
# ----------------------------------------------------------------------------------------------

@pytest.fixture(scope="session", autouse=True)
def botocore_from_test_extra():
    """Stop the run with one line when botocore predates operations the tests call.

    The minimum lives in one place, the `test` extra of pyproject.toml; the check is skipped when
    this file runs without it beside it.
    """
    pyproject = os.path.join(os.path.dirname(os.path.abspath(__file__)), "pyproject.toml")
    if not os.path.exists(pyproject):
        return
    with open(pyproject, encoding="utf-8") as file:
        wanted = re.search(r'"boto3>=([0-9.]+)"', file.read()).group(1)
    have = botocore.__version__
    if tuple(map(int, have.split(".")[:3])) < tuple(map(int, wanted.split("."))):
        pytest.exit(f"botocore {have} is older than {wanted}, the first that knows every Lambda "
                    f"operation these tests call: pip install 'boto3>={wanted}', or run the tests "
                    "with the README's command, which does", returncode=pytest.ExitCode.USAGE_ERROR)


@pytest.fixture(scope="module")
def server():
    with LambdaServer(0) as running:
        yield running


@pytest.fixture
def lam(server):
    server.reset()
    return client_for(server)


def client_for(server):
    return boto3.client("lambda", endpoint_url=server.endpoint_url, region_name=REGION,
                        aws_access_key_id="test", aws_secret_access_key="test",
                        config=Config(retries={"total_max_attempts": 1}, read_timeout=30))


def zip_of(files):
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in files.items():
            archive.writestr(name, data)
    return buffer.getvalue()


def create_function(lam, name="fn", code=DOUBLER, **overrides):
    params = dict(FunctionName=name, Runtime="nodejs20.x", Role=ROLE, Handler="index.handler",
                  Code={"ZipFile": code})
    params.update(overrides)
    return lam.create_function(**params)


def assert_error(call, code, status, fragment=""):
    with pytest.raises(ClientError) as caught:
        call()
    error = caught.value.response
    assert error["Error"]["Code"] == code, error
    assert error["ResponseMetadata"]["HTTPStatusCode"] == status
    message = error["Error"].get("Message") or ""      # AWS sends some errors without one
    assert fragment in message, message
    return message


def invoke_json(lam, name="fn", event=None, **params):
    out = lam.invoke(FunctionName=name, Payload=json.dumps(event if event is not None else {}),
                     **params)
    return out, json.loads(out["Payload"].read())


def raw(server, method, path, body=b"", headers=None):
    """A raw HTTP request (for what boto3 would never send): (status, headers, body bytes)."""
    connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=30)
    try:
        connection.request(method, path, body=body, headers=headers or {})
        response = connection.getresponse()
        return response.status, {k.lower(): v for k, v in response.getheaders()}, response.read()
    finally:
        connection.close()


def sha256_b64(data):
    return base64.b64encode(hashlib.sha256(data).digest()).decode()


def wait_for(predicate, timeout=10.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.02)
    return False


def decoded_log(out):
    return base64.b64decode(out["LogResult"]).decode()


FUNCTIONS = f"arn:aws:lambda:{REGION}:{ACCOUNT}:function"
CODE = zip_of({"index.js": DOUBLER})
STALE_REVISION = "00000000-0000-0000-0000-000000000000"
REVISION_MISMATCH = ("The Revision Id provided does not match the latest Revision Id. "
                     "Call the GetFunction/GetAlias API to retrieve the latest Revision Id")
POLICY_REVISION_MISMATCH = ("The Revision Id provided does not match the latest Revision Id. "
                            "Call the GetPolicy API to retrieve the latest Revision Id")
QUALIFIER_PATTERN = r"\$(LATEST(\.PUBLISHED)?)|[a-zA-Z0-9-_$]+"
WEIGHT_VALUE_CONSTRAINT = (
    "Map value must satisfy constraint: [Member must have value less than or equal to 1.0, "
    "Member must have value greater than or equal to 0.0, Member must not be null]")
WEIGHT_KEY_CONSTRAINT = (
    "Map keys must satisfy constraint: [Member must have length less than or equal to 1024, "
    "Member must have length greater than or equal to 1, "
    "Member must satisfy regular expression pattern: [0-9]+]")
NOT_ONLY_FUNCTIONS = ("This operation is permitted on Lambda functions only. Aliases and versions "
                      "do not support this operation. Please specify either a function name or "
                      "an unqualified function ARN.")
RESERVED_BELOW_MINIMUM = ("Specified ReservedConcurrentExecutions for function decreases account's "
                          "UnreservedConcurrentExecution below its minimum value of [100].")
NO_TAGS_ON_QUALIFIED = ("Tags on function aliases and versions are not supported. "
                        "Please specify a function ARN.")


LAYERS = f"arn:aws:lambda:{REGION}:{ACCOUNT}:layer"
CSCS = f"arn:aws:lambda:{REGION}:{ACCOUNT}:code-signing-config"
SHARED_LAYER_ZIP = zip_of({"nodejs/node_modules/shared.js":
                           b"module.exports = { shared: true };\n"})
SIGNER = f"arn:aws:signer:{REGION}:{ACCOUNT}:/signing-profiles/test"
NOT_EXIST = "The resource you requested does not exist."
DERIVED_MISMATCH = ("The derived qualifier from the function name does not match the specified "
                    "qualifier.")
URL_QUALIFIER_PATTERN = r"((?!^\d+$)^[0-9a-zA-Z-_]+$)"
DESTINATION_PATTERN = (r"$|kafka://([^.]([a-zA-Z0-9\-_.]{0,248}))|arn:(aws[a-zA-Z0-9-]*):"
                       r"([a-zA-Z0-9\-])+:((eusc-)?[a-z]{2}((-gov)|(-iso([a-z]?)))?-[a-z]+-\d{1})?"
                       r":(\d{12})?:(.*)")
LAYER_VERSION_ARN_PATTERN = (
    r"(arn:(aws[a-zA-Z-]*)?:lambda:(eusc-)?[a-z]{2}((-gov)|(-iso([a-z]?)))?-[a-z]+-\d{1}:\d{12}:"
    r"layer:[a-zA-Z0-9-_]+:[0-9]+)|(arn:[a-zA-Z0-9-]+:lambda:::awslayer:[a-zA-Z0-9-_]+)")
LAYER_REVISION_MISMATCH = ("The Revision Id provided does not match the latest Revision Id. "
                           "Call the GetLayerPolicy API to retrieve the latest Revision Id")
NO_SETTING = "You must specify at least one of error handling or destination setting."


QUEUE = f"arn:aws:sqs:{REGION}:{ACCOUNT}:jobs"
KINESIS = f"arn:aws:kinesis:{REGION}:{ACCOUNT}:stream/clicks"
DYNAMODB = f"arn:aws:dynamodb:{REGION}:{ACCOUNT}:table/orders/stream/2024-01-01T00:00:00.000"
SECRET = f"arn:aws:secretsmanager:{REGION}:{ACCOUNT}:secret:kafka-login"
KAFKA = {"Endpoints": {"KAFKA_BOOTSTRAP_SERVERS": ["kafka:1000"]}}
KAFKA_AUTH = [{"Type": "BASIC_AUTH", "URI": SECRET}]
UUID = r"[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}"
NOT_THERE = "The resource you requested does not exist."
PROVIDERS = f"arn:aws:lambda:{REGION}:{ACCOUNT}:capacity-provider"
VPC = {"SubnetIds": ["subnet-0abc"], "SecurityGroupIds": ["sg-0abc"]}
OPERATOR = {"CapacityProviderOperatorRoleArn": f"arn:aws:iam::{ACCOUNT}:role/operator"}
WRITER = (b"const fs = require('fs');\n"
          b"exports.handler = async (e) => fs.writeFileSync(e.path, 'yes');\n")
THROWER = b"exports.handler = async () => { throw new TypeError('bad input'); };"


def arn(name="fn", qualifier=None):
    return f"{FUNCTIONS}:{name}:{qualifier}" if qualifier else f"{FUNCTIONS}:{name}"


def with_versions(lam, count, name="fn"):
    """A function with `count` published versions, each with its own configuration."""
    create_function(lam, name, code=CODE)
    for number in range(1, count + 1):
        if number > 1:
            change(lam, name, number)
        lam.publish_version(FunctionName=name)


def change(lam, name="fn", value=0):
    """A configuration change, so the next PublishVersion makes a new version."""
    lam.update_function_configuration(FunctionName=name,
                                      Environment={"Variables": {"VERSION": str(value)}})


def statement_of(lam, **params):
    out = lam.add_permission(**dict(dict(FunctionName="fn", StatementId="s1",
                                         Action="lambda:InvokeFunction",
                                         Principal="s3.amazonaws.com"), **params))
    return out


def policy_statements(lam, **params):
    return json.loads(lam.get_policy(FunctionName="fn", **params)["Policy"])["Statement"]


def raw_error(server, method, path, document):
    """(status, error type header, parsed body) of a raw request boto3 would refuse to send."""
    status, headers, body = raw(server, method, path, json.dumps(document).encode(),
                                {"Content-Type": "application/json"})
    return status, headers.get("x-amzn-errortype", "").split(":")[0], json.loads(body)


def message_of(body):
    return body.get("message", body.get("Message"))


def with_alias(lam, name="fn", alias="live"):
    """A function with version 1 and an alias pointing at it."""
    create_function(lam, name, code=CODE)
    lam.publish_version(FunctionName=name)
    lam.create_alias(FunctionName=name, Name=alias, FunctionVersion="1")


def unchecked_client(server):
    """A client that sends what botocore's own validation would stop (values below a minimum)."""
    return boto3.client("lambda", endpoint_url=server.endpoint_url, region_name=REGION,
                        aws_access_key_id="test", aws_secret_access_key="test",
                        config=Config(retries={"total_max_attempts": 1},
                                      parameter_validation=False))


def body_of(response):
    return {k: v for k, v in response.items() if k != "ResponseMetadata"}


def status_of(response):
    return response["ResponseMetadata"]["HTTPStatusCode"]


def publish_layer(lam, name="lib", content=SHARED_LAYER_ZIP, **overrides):
    return lam.publish_layer_version(**dict(dict(LayerName=name, Content={"ZipFile": content}),
                                            **overrides))


def code_signing_config(lam, **overrides):
    params = dict(AllowedPublishers={"SigningProfileVersionArns": [SIGNER]})
    params.update(overrides)
    return lam.create_code_signing_config(**params)["CodeSigningConfig"]


def missing_csc_arn():
    return f"{CSCS}:csc-0123456789abcdef0"


def unvalidated_client(server):
    """A client that sends what botocore's own parameter checks would stop, to see the server's."""
    return boto3.client("lambda", endpoint_url=server.endpoint_url, region_name=REGION,
                        aws_access_key_id="test", aws_secret_access_key="test",
                        config=Config(retries={"total_max_attempts": 1},
                                      parameter_validation=False))


def create_mapping(lam, source=QUEUE, name="fn", **overrides):
    params = dict(FunctionName=name, EventSourceArn=source)
    if source in (KINESIS, DYNAMODB):
        params["StartingPosition"] = "LATEST"
    params.update(overrides)
    return lam.create_event_source_mapping(**{k: v for k, v in params.items() if v is not None})


def create_kafka_mapping(lam, name="fn", **overrides):
    params = dict(FunctionName=name, SelfManagedEventSource=KAFKA, Topics=["topic"],
                  SourceAccessConfigurations=KAFKA_AUTH)
    params.update(overrides)
    return lam.create_event_source_mapping(**params)


def mapping_body(response):
    """A response without boto3's metadata and the values that differ on every call."""
    return {k: v for k, v in response.items()
            if k not in ("ResponseMetadata", "UUID", "EventSourceMappingArn", "LastModified")}


def create_provider(lam, name="cp", **overrides):
    params = dict(CapacityProviderName=name, VpcConfig=VPC, PermissionsConfig=OPERATOR)
    params.update(overrides)
    return lam.create_capacity_provider(**params)


def on_provider(provider="cp"):
    """CapacityProviderConfig for CreateFunction, pointing at a capacity provider."""
    return {"LambdaManagedInstancesCapacityProviderConfig": {
        "CapacityProviderArn": f"{PROVIDERS}:{provider}"}}


def stream_events(out):
    return list(out["EventStream"])


# ----------------------------------------------------------------------------------------------
# Runners
# ----------------------------------------------------------------------------------------------

# Execution engine: layers, throttling, the worker pool, async delivery, invocation logs

def parlel_json(server, path):
    status, _, body = raw(server, "GET", path)
    assert status == 200, body
    return json.loads(body)


def invocations_of(server, name):
    return parlel_json(server, f"/_parlel/logs/{name}")["invocations"]


LAYER_ZIP = zip_of({"nodejs/node_modules/greet/index.js": "module.exports = (n) => 'hi ' + n;",
                    "python/greet.py": "def greet(n):\n    return 'py hi ' + n\n",
                    "bin/tool": "#!/bin/sh\necho tool\n"})


def test_invoke_node_handler_requires_a_module_from_its_layer(lam):
    layer = lam.publish_layer_version(LayerName="greeter", Content={"ZipFile": LAYER_ZIP})
    create_function(lam, "layered", Layers=[layer["LayerVersionArn"]],
                    code=b"const greet = require('greet'); exports.handler = async (e) => "
                         b"greet(e.n);")
    assert invoke_json(lam, "layered", {"n": "ada"})[1] == "hi ada"


def test_invoke_python_handler_imports_a_module_from_its_layer(lam):
    layer = lam.publish_layer_version(LayerName="greeter", Content={"ZipFile": LAYER_ZIP})
    create_function(lam, "pylayered", Runtime="python3.12", Handler="app.handler",
                    Layers=[layer["LayerVersionArn"]],
                    code=b"from greet import greet\ndef handler(event, context):\n"
                         b"    return greet(event['n'])\n")
    assert invoke_json(lam, "pylayered", {"n": "ada"})[1] == "py hi ada"


# Lambda's paths: the package at /var/task, layers at /opt (where the kernel allows it).
PATH_PROBES = {
    "nodejs20.x": ("index.handler", {
        "index.js": (
            "const fs = require('fs');\n"
            "exports.handler = async () => {\n"
            "  let write;\n"
            "  try { fs.writeFileSync('/var/task/x', '1'); write = 'wrote'; }\n"
            "  catch (error) { write = error.code; }\n"
            "  const module = await import('/opt/nodejs/node_modules/greet/index.mjs');\n"
            "  return {cwd: process.cwd(), file: __filename,\n"
            "    root: process.env.LAMBDA_TASK_ROOT, runtime: process.env.LAMBDA_RUNTIME_DIR,\n"
            "    greet: require('/opt/nodejs/node_modules/greet')('ada'), esm: module.hello,\n"
            "    tool: fs.readFileSync('/opt/bin/tool', 'utf8'), write,\n"
            "    hostVar: fs.existsSync('/var/lib'), stack: new Error('here').stack};\n"
            "};\n")}),
    "python3.12": ("app.handler", {
        "app.py": (
            "import os, traceback, boto3\n"
            "from greet import greet\n"
            "def handler(event, context):\n"
            "    try:\n"
            "        open('/var/task/x', 'w')\n"
            "        write = 'wrote'\n"
            "    except OSError as error:\n"
            "        write = error.strerror\n"
            "    return {'cwd': os.getcwd(), 'file': __file__,\n"
            "            'root': os.environ['LAMBDA_TASK_ROOT'],\n"
            "            'runtime': os.environ['LAMBDA_RUNTIME_DIR'], 'greet': greet('ada'),\n"
            "            'tool': open('/opt/bin/tool').read(), 'write': write,\n"
            "            'hostVar': os.path.isdir('/var/lib'), 'boto3': boto3.__file__,\n"
            "            'stack': ''.join(traceback.format_stack())}\n")}),
}
PATH_LAYER_ZIP = zip_of({"nodejs/node_modules/greet/index.js": "module.exports = (n) => 'hi ' + n;",
                         "nodejs/node_modules/greet/index.mjs": "export const hello = 'esm';",
                         "python/greet.py": "def greet(n):\n    return 'py hi ' + n\n",
                         "bin/tool": "#!/bin/sh\necho tool\n"})


def host_mounts_under(*tops):
    with open("/proc/self/mountinfo") as mounts:
        return [line for line in mounts if line.split()[4].startswith(tops)]


@pytest.mark.parametrize("runtime", sorted(PATH_PROBES))
def test_handlers_see_their_package_at_var_task_and_their_layers_at_opt(server, lam, runtime):
    if not server.store.runner.house.path_settings():
        pytest.skip("this kernel does not let the server make mount namespaces (not root?)")
    before = host_mounts_under("/var", "/opt")
    layer = lam.publish_layer_version(LayerName="greeter", Content={"ZipFile": PATH_LAYER_ZIP})
    handler, files = PATH_PROBES[runtime]
    lam.create_function(FunctionName="paths", Runtime=runtime, Role=ROLE, Handler=handler,
                        Layers=[layer["LayerVersionArn"]], Code={"ZipFile": zip_of(files)})
    seen = invoke_json(lam, "paths")[1]
    assert (seen["cwd"], seen["root"], seen["runtime"]) == ("/var/task", "/var/task",
                                                            "/var/runtime"), seen
    assert seen["file"] == "/var/task/" + next(iter(files))
    assert "/var/task/" + next(iter(files)) in seen["stack"]
    assert seen["greet"].endswith("hi ada") and seen["tool"] == "#!/bin/sh\necho tool\n"
    assert seen["write"] in ("EROFS", "Read-only file system")      # read-only, as on Lambda
    assert seen["hostVar"] is True                  # the rest of /var is the host's
    if runtime == "nodejs20.x":
        assert seen["esm"] == "esm"                 # an ES module named by its /opt path
    else:
        assert seen["boto3"].startswith("/var/runtime/")
    assert host_mounts_under("/var", "/opt") == before      # nothing mounted on the host


def test_es_modules_import_a_layers_packages_by_name_as_on_nodejs18_and_later(server, lam):
    if not server.store.runner.house.path_settings():
        pytest.skip("this kernel does not let the server make mount namespaces (not root?)")
    first = lam.publish_layer_version(LayerName="one", Content={"ZipFile": PATH_LAYER_ZIP})
    second = lam.publish_layer_version(LayerName="two", Content={"ZipFile": zip_of({
        "nodejs/node_modules/@acme/tool/index.js": "module.exports = 'acme';",
        "nodejs/node20/node_modules/greet/index.js": "module.exports = () => 'node20 first';"})})
    lam.create_function(FunctionName="esm", Runtime="nodejs20.x", Role=ROLE,
                        Handler="index.handler",
                        Layers=[first["LayerVersionArn"], second["LayerVersionArn"]],
                        Code={"ZipFile": zip_of({"index.mjs": (
                            "import greet from 'greet';\nimport tool from '@acme/tool';\n"
                            "import { createRequire } from 'module';\n"
                            "const where = createRequire(import.meta.url).resolve('greet');\n"
                            "export const handler = async () => [greet('ada'), tool, where];\n")})})
    assert invoke_json(lam, "esm")[1] == [
        "node20 first", "acme", "/opt/nodejs/node20/node_modules/greet/index.js"]


def test_without_lambda_paths_the_package_stays_in_the_servers_directory():
    with LambdaServer(0, lambda_paths=False) as plain:
        lam = client_for(plain)
        create_function(lam, "where", code=b"exports.handler = async () => "
                                           b"[process.cwd(), process.env.LAMBDA_TASK_ROOT];")
        cwd, root = invoke_json(lam, "where")[1]
        assert cwd == root and root.startswith(plain.store.runner.house.root)


def test_invoke_later_layers_override_earlier_ones(lam):
    first = lam.publish_layer_version(LayerName="one", Content={"ZipFile": zip_of(
        {"nodejs/node_modules/which/index.js": "module.exports = 'one';"})})
    second = lam.publish_layer_version(LayerName="two", Content={"ZipFile": zip_of(
        {"nodejs/node_modules/which/index.js": "module.exports = 'two';"})})
    create_function(lam, "stacked", Layers=[first["LayerVersionArn"], second["LayerVersionArn"]],
                    code=b"exports.handler = async () => require('which');")
    assert invoke_json(lam, "stacked")[1] == "two"


def test_invoke_with_reserved_concurrency_zero_is_throttled(lam):
    create_function(lam, "throttled")
    lam.put_function_concurrency(FunctionName="throttled", ReservedConcurrentExecutions=0)
    assert_throttled(lambda: lam.invoke(FunctionName="throttled"))


def assert_throttled(call):
    """The call fails as Lambda throttles: 429 with its Reason, and a request id."""
    with pytest.raises(ClientError) as caught:
        call()
    error = caught.value.response
    assert error["ResponseMetadata"]["HTTPStatusCode"] == 429
    assert error["Error"] == {"Code": "TooManyRequestsException", "Message": "Rate Exceeded."}
    assert error["Reason"] == "ReservedFunctionConcurrentInvocationLimitExceeded"
    assert re.fullmatch(r"[0-9a-f-]{36}", error["ResponseMetadata"]["RequestId"])


def test_invoke_more_concurrent_than_reserved_is_throttled(server, lam, tmp_path):
    gate = tmp_path / "open"
    create_function(lam, "one-at-a-time", Timeout=10, code=(
        b"const fs = require('fs');\n"
        b"exports.handler = async (e) => { while (!fs.existsSync(e.gate))"
        b" await new Promise((r) => setTimeout(r, 10)); return 'done'; };"))
    lam.put_function_concurrency(FunctionName="one-at-a-time", ReservedConcurrentExecutions=1)
    first = threading.Thread(target=invoke_json, args=(lam, "one-at-a-time", {"gate": str(gate)}))
    first.start()
    assert wait_for(lambda: server.store.runner.pool.inflight_of(arn("one-at-a-time")) == 1)
    assert_error(lambda: lam.invoke(FunctionName="one-at-a-time",
                                    Payload=json.dumps({"gate": str(gate)})),
                 "TooManyRequestsException", 429, "Rate Exceeded.")
    gate.write_text("open")
    first.join()


# What one function leaves in its environment (a global, an environment variable, a module-level
# cache, a module's state, a file in its temporary directory) and what it reports seeing of them.
LEAKY = {
    "nodejs20.x": ("index.handler", {
        "helper.js": b"exports.count = 0;\n",
        "index.js": (
            b"const fs = require('fs'), os = require('os'), path = require('path');\n"
            b"const helper = require('./helper');\n"
            b"const cache = [];\n"
            b"exports.handler = async (event) => {\n"
            b"  const mark = path.join(os.tmpdir(), 'mark');\n"
            b"  const seen = { global: globalThis.leaked ?? null, env: process.env.LEAKED ?? null,\n"
            b"    cache: cache.length, helper: helper.count, tmp: fs.existsSync(mark) };\n"
            b"  globalThis.leaked = 'yes'; process.env.LEAKED = 'yes'; cache.push(1);\n"
            b"  helper.count += 1; fs.writeFileSync(mark, 'x');\n"
            b"  if (event.ticks) {  // ticks while it runs (frozen between invocations)\n"
            b"    setInterval(() => fs.appendFileSync(event.ticks, '.'), 5);\n"
            b"    await new Promise((resolve) => setTimeout(resolve, 30));\n"
            b"  }\n"
            b"  return seen;\n"
            b"};\n")}),
    "python3.12": ("app.handler", {
        "helper.py": b"count = 0\n",
        "app.py": (
            b"import builtins, os, tempfile, threading, time\n"
            b"import helper\n"
            b"CACHE = []\n"
            b"def tick(path):\n"
            b"    while True:\n"
            b"        with open(path, 'a') as out:\n"
            b"            out.write('.')\n"
            b"        time.sleep(0.005)\n"
            b"def handler(event, context):\n"
            b"    mark = os.path.join(tempfile.gettempdir(), 'mark')\n"
            b"    seen = {'global': getattr(builtins, 'leaked', None),\n"
            b"            'env': os.environ.get('LEAKED'), 'cache': len(CACHE),\n"
            b"            'helper': helper.count, 'tmp': os.path.exists(mark)}\n"
            b"    builtins.leaked = 'yes'; os.environ['LEAKED'] = 'yes'; CACHE.append(1)\n"
            b"    helper.count += 1\n"
            b"    open(mark, 'w').write('x')\n"
            b"    if event.get('ticks'):\n"
            b"        threading.Thread(target=tick, args=(event['ticks'],), daemon=True).start()\n"
            b"    return seen\n")}),
}
FRESH = {"global": None, "env": None, "cache": 0, "helper": 0, "tmp": False}


@pytest.mark.parametrize("runtime", sorted(LEAKY))
def test_a_function_created_after_a_reset_sees_nothing_of_the_one_before(server, lam, runtime,
                                                                       tmp_path):
    handler, files = LEAKY[runtime]
    ticks = tmp_path / "ticks"
    for _ in range(2):                  # the same code, twice: as two tests of a suite create it
        lam.create_function(FunctionName="leaky", Runtime=runtime, Role=ROLE, Handler=handler,
                            Code={"ZipFile": zip_of(files)})
        out, seen = invoke_json(lam, "leaky", {"ticks": str(ticks)}, LogType="Tail")
        assert seen == FRESH
        assert "Init Duration" in decoded_log(out)                # a cold start
        assert invoke_json(lam, "leaky")[1] == {"global": "yes", "env": "yes", "cache": 1,
                                                "helper": 1, "tmp": True}   # warm: all kept
        assert "Init Duration" not in decoded_log(invoke_json(lam, "leaky", LogType="Tail")[0])
        assert wait_for(ticks.exists)
        server.reset()
    size = ticks.stat().st_size
    time.sleep(0.2)
    assert ticks.stat().st_size == size     # the timers of what ran before the reset are gone


@pytest.mark.parametrize("runtime", sorted(LEAKY))
def test_two_functions_with_the_same_code_see_nothing_of_each_other(lam, runtime):
    handler, files = LEAKY[runtime]
    for name in ("first", "second"):
        lam.create_function(FunctionName=name, Runtime=runtime, Role=ROLE, Handler=handler,
                            Code={"ZipFile": zip_of(files)})
    assert invoke_json(lam, "first")[1] == FRESH
    assert invoke_json(lam, "second")[1] == FRESH
    assert invoke_json(lam, "first")[1]["cache"] == 1


def test_a_runaway_handler_is_stopped_without_disturbing_another_function(lam):
    create_function(lam, "steady", code=b"let n = 0; exports.handler = async () => "
                                        b"({ n: ++n, pid: process.pid });")
    create_function(lam, "runaway", Timeout=1,
                    code=b"exports.handler = async () => { for (;;) {} };")
    first = invoke_json(lam, "steady")[1]
    runaway = {}
    thread = threading.Thread(target=lambda: runaway.update(invoke_json(lam, "runaway")[1]))
    thread.start()
    counts = []
    while thread.is_alive():
        started = time.monotonic()
        answer = invoke_json(lam, "steady")[1]
        assert time.monotonic() - started < 0.9 and answer["pid"] == first["pid"]
        counts.append(answer["n"])
    thread.join()
    assert runaway["errorType"] == "Sandbox.Timedout"
    assert counts and counts == list(range(2, 2 + len(counts)))
    assert invoke_json(lam, "steady")[1] == {"n": counts[-1] + 1, "pid": first["pid"]}


def test_memory_size_limits_each_environment_on_its_own(lam):
    hungry = (b"exports.handler = async () => { const kept = [];\n"
              b"  for (let i = 0; i < 2500000; i++) kept.push({ i, text: 'item ' + i });\n"
              b"  return kept.length; };")
    create_function(lam, "small", code=hungry, MemorySize=128, Timeout=20)
    create_function(lam, "large", code=hungry, MemorySize=1024, Timeout=20)
    out, _ = invoke_json(lam, "small")
    assert out.get("FunctionError") == "Unhandled"      # past its heap: the runtime dies
    assert invoke_json(lam, "large")[1] == 2500000


def test_concurrent_invokes_get_more_workers_and_warm_ones_are_reused(server, lam, tmp_path):
    gate = tmp_path / "open"
    create_function(lam, "parallel", Timeout=10, code=(
        b"const fs = require('fs');\n"
        b"exports.handler = async (e) => { while (!fs.existsSync(e.gate))"
        b" await new Promise((r) => setTimeout(r, 10)); return process.pid; };"))
    results = []
    threads = [threading.Thread(target=lambda: results.append(
        invoke_json(lam, "parallel", {"gate": str(gate)})[1])) for _ in range(3)]
    for thread in threads:
        thread.start()
    assert wait_for(lambda: server.store.runner.pool.inflight_of(arn("parallel")) == 3)
    gate.write_text("open")
    for thread in threads:
        thread.join()
    assert len(set(results)) == 3
    assert invoke_json(lam, "parallel", {"gate": str(gate)})[1] in results


def test_worker_pool_evicts_the_least_recently_used_idle_worker_at_its_cap():
    with LambdaServer(0, max_workers=2) as small:
        lam = client_for(small)
        for name in ("first", "second", "third"):
            create_function(lam, name, code=b"exports.handler = async () => process.pid;")
        pids = {name: invoke_json(lam, name)[1] for name in ("first", "second", "third")}
        serving = ("loading", "busy", "idle")           # spares stand beside them
        assert wait_for(lambda: small.store.runner.pool.count(*serving) <= 2)
        assert invoke_json(lam, "third")[1] == pids["third"]        # still warm
        assert invoke_json(lam, "first")[1] != pids["first"]        # was evicted


def test_a_new_function_starts_on_a_rehearsed_spare_that_kept_nothing_of_the_rehearsal():
    with LambdaServer(0) as fresh:
        lam = client_for(fresh)
        create_function(lam, "spared", code=(
            b"const seen = Object.keys(require.cache);\n"
            b"exports.handler = async () => ({ pid: process.pid, cwd: process.cwd(),\n"
            b"  handler: process.env._HANDLER, modules: seen });"))
        pool = fresh.store.runner.pool
        assert wait_for(lambda: pool.count("spare", kind=("node", 128)) == 2)
        spares = pool.pids("spare")
        out, seen = invoke_json(lam, "spared", LogType="Tail")
        assert seen["pid"] in spares
        assert "Init Duration" in base64.b64decode(out["LogResult"]).decode()
        assert seen["handler"] == "index.handler"
        assert seen["cwd"] == os.path.dirname(seen["modules"][-1])
        assert [m for m in seen["modules"] if "rehearsal" in m] == []


def test_at_the_cap_a_cold_start_takes_the_spare_and_the_oldest_idle_worker_leaves_after():
    with LambdaServer(0, max_workers=1) as full:
        lam = client_for(full)
        for name in ("older", "newer"):
            create_function(lam, name, code=(
                b"const alive = (pid) => { try { process.kill(pid, 0); return true; }"
                b" catch (e) { return false; } };\n"
                b"exports.handler = async (e) => ({ pid: process.pid, older: alive(e.older) });"))
        pool = full.store.runner.pool
        older = invoke_json(lam, "older", {"older": 0})[1]["pid"]
        assert wait_for(lambda: pool.count("spare", kind=("node", 128)) == 2)
        spares = pool.pids("spare")
        # a spare answers while the older worker still lives: nothing waited for an eviction
        newer = invoke_json(lam, "newer", {"older": older})[1]
        assert newer["pid"] in spares and newer["older"] is True
        assert wait_for(lambda: pool.count("loading", "busy", "idle") <= 1 and not alive(older))


def test_a_started_server_boots_one_environment_per_runtime_and_the_first_invoke_uses_it():
    with LambdaServer(0) as fresh:
        pool = fresh.store.runner.pool
        assert wait_for(lambda: pool.count("spare", kind=("node", 128)) == 1
                        and pool.count("spare", kind=("python", 0)) == 1)
        time.sleep(0.1)
        assert pool.count() == 2        # one of each, no more, until a function wants more
        prestarted = pool.pids("spare")
        lam = client_for(fresh)
        create_function(lam, "first", code=b"exports.handler = async () => process.pid;")
        out, pid = invoke_json(lam, "first", LogType="Tail")
        assert pid in prestarted
        assert "Init Duration" in base64.b64decode(out["LogResult"]).decode()


def test_without_prestart_an_idle_server_holds_no_handler_process():
    with LambdaServer(0, prestart=False) as lean:
        time.sleep(0.3)
        assert lean.store.runner.pool.count() == 0 and lean.store.runner.house.root is None
        lam = client_for(lean)
        create_function(lam, "first", code=b"exports.handler = async () => 7;")
        assert invoke_json(lam, "first")[1] == 7


def test_the_housekeeper_outlives_a_spare_it_cannot_start():
    with LambdaServer(0, prestart=False) as fresh:
        runner = fresh.store.runner
        runner.prewarm("nodejs20.x", 128)
        runner.house.node = None        # gone before the housekeeper gets to it
        runner.prewarm("python3.12", 128)
        assert wait_for(lambda: runner.pool.count("spare", kind=("python", 0)))
        assert not runner.pool.count("starting", "spare", kind=("node", 128))
        assert runner.house.thread.is_alive()


def test_a_reset_ends_what_ran_user_code_removes_its_code_and_keeps_the_spares():
    with LambdaServer(0) as fresh:
        lam = client_for(fresh)
        runner = fresh.store.runner
        for round_index in range(3):
            lam.create_function(FunctionName=f"cold-{round_index}", Runtime="python3.12",
                                Role=ROLE, Handler="app.handler",
                                Code={"ZipFile": b"def handler(e, c):\n    return 1\n"})
            assert invoke_json(lam, f"cold-{round_index}")[1] == 1
            loaded = runner.pool.pids("loading", "busy", "idle")
            code = [os.path.join(runner.house.root, d) for d in os.listdir(runner.house.root)
                    if d.startswith("code-")]
            assert loaded and code
            fresh.reset()               # within the housekeeper's moment after the cold start
            assert not runner.pool.count("loading", "busy", "idle")
            assert wait_for(lambda: not any(alive(pid) for pid in loaded))
            assert wait_for(lambda: runner.pool.count("spare") >= 1)
            assert wait_for(lambda: not any(os.path.exists(d) for d in code))
        root, housekeeper = runner.house.root, runner.house.thread
    assert not os.path.exists(root)
    assert wait_for(lambda: not housekeeper.is_alive())


def test_a_rehearsed_node_spare_still_finds_modules_in_home(tmp_path, monkeypatch):
    module = tmp_path / ".node_modules" / "from-home"
    module.mkdir(parents=True)
    (module / "index.js").write_text("module.exports = 'found in HOME';\n")
    monkeypatch.setenv("HOME", str(tmp_path))
    with LambdaServer(0) as fresh:
        lam = client_for(fresh)
        for name in ("first", "second", "third"):
            create_function(lam, name, code=b"exports.handler = async () => require('from-home');")
            assert wait_for(lambda: fresh.store.runner.pool.count("spare"))
            assert invoke_json(lam, name)[1] == "found in HOME"


def test_an_uncaught_exception_fails_its_invocation_and_the_next_one_starts_fresh(lam):
    create_function(lam, "throws", code=(
        b"exports.handler = async () => { setTimeout(() => { throw new Error('boom'); }, 5);\n"
        b"  await new Promise((resolve) => setTimeout(resolve, 50)); return 'never'; };"))
    for _ in range(5):                  # the next call at once: never on the dying environment
        out, payload = invoke_json(lam, "throws", LogType="Tail")
        assert out["FunctionError"] == "Unhandled"
        assert (payload["errorType"], payload["errorMessage"]) == ("Error", "boom")
        log = decoded_log(out)
        assert "Init Duration" in log
        assert ("\tERROR\tUncaught Exception \t{\"errorType\":\"Error\",\"errorMessage\":\"boom\","
                "\"stack\":[\"Error: boom\"") in log


def test_an_unhandled_rejection_fails_its_invocation_as_lambdas_runtime_words_it(lam):
    create_function(lam, "rejects-late", code=(
        b"exports.handler = async () => { Promise.reject(new Error('nope'));\n"
        b"  await new Promise((resolve) => setTimeout(resolve, 50)); return 'never'; };"))
    out, payload = invoke_json(lam, "rejects-late", LogType="Tail")
    assert out["FunctionError"] == "Unhandled"
    assert (payload["errorType"], payload["errorMessage"]) == (
        "Runtime.UnhandledPromiseRejection", "Error: nope")
    assert ("\tERROR\tUnhandled Promise Rejection \t{\"errorType\":"
            "\"Runtime.UnhandledPromiseRejection\",\"errorMessage\":\"Error: nope\",\"reason\":"
            "{\"errorType\":\"Error\",\"errorMessage\":\"nope\"") in decoded_log(out)


def test_an_error_after_the_answer_ends_the_environment_and_is_logged(lam, capsys):
    create_function(lam, "late", code=(
        b"exports.handler = async () => { Promise.reject(new Error('late')); "
        b"return process.pid; };"))
    pids = []
    for _ in range(12):                 # each answers, then its environment ends
        out, pid = invoke_json(lam, "late")
        assert "FunctionError" not in out, pid
        pids.append(pid)
    assert len(set(pids)) == 12
    err = capsys.readouterr().err
    assert "function late: an error after an invocation's answer ended its environment" in err
    assert "Unhandled Promise Rejection" in err and "late" in err


def test_a_handler_that_logs_after_its_answer_stays_warm_and_its_lines_are_kept(lam):
    create_function(lam, "chatty", code=(
        b"let n = 0;\n"
        b"exports.handler = async () => { n += 1; const seen = n;\n"
        b"  setImmediate(() => console.log('after answer ' + seen)); return n; };"))
    assert invoke_json(lam, "chatty")[1] == 1
    out, second = invoke_json(lam, "chatty", LogType="Tail")
    assert second == 2                  # the same environment: its module state kept
    assert "after answer 1" in decoded_log(out)
    assert invoke_json(lam, "chatty")[1] == 3


def test_a_promise_rejected_while_the_module_loads_fails_every_cold_start(lam):
    create_function(lam, "rejects", code=(
        b"Promise.reject(new Error('at load'));\n"
        b"exports.handler = async () => 'ran';\n"))
    for _ in range(3):
        out, payload = invoke_json(lam, "rejects")
        assert out.get("FunctionError") == "Unhandled", payload


def test_idle_workers_are_reaped():
    with LambdaServer(0, idle_seconds=0.2) as reaping:
        lam = client_for(reaping)
        create_function(lam, "napper")
        invoke_json(lam, "napper", {"n": 1})
        pool = reaping.store.runner.pool
        pid = pool.pids("idle")[0]
        assert wait_for(lambda: not pool.count() and not alive(pid))    # spares too


def test_invoke_event_failure_is_retried_then_sent_to_the_on_failure_function():
    with LambdaServer(0, async_retry_delay=0.05) as fast:
        lam = client_for(fast)
        create_function(lam, "sink", code=b"exports.handler = async (e) => e;")
        create_function(lam, "fails",
                        code=b"exports.handler = async () => { throw new Error('nope'); };")
        lam.put_function_event_invoke_config(
            FunctionName="fails", MaximumRetryAttempts=1,
            DestinationConfig={"OnFailure": {"Destination": f"{FUNCTIONS}:sink"}})
        out = lam.invoke(FunctionName="fails", InvocationType="Event", Payload=b'{"x": 1}')
        request_id = out["ResponseMetadata"]["HTTPHeaders"]["x-amzn-requestid"]
        assert wait_for(lambda: invocations_of(fast, "sink"))
        assert [e["status"] for e in invocations_of(fast, "fails")] == ["Unhandled", "Unhandled"]
        record = json.loads(invocations_of(fast, "sink")[0]["payload"])
        assert record["version"] == "1.0"
        assert record["requestContext"] == {"requestId": request_id,
                                            "functionArn": f"{FUNCTIONS}:fails:$LATEST",
                                            "condition": "RetriesExhausted",
                                            "approximateInvokeCount": 2}
        assert record["requestPayload"] == {"x": 1}
        assert record["responseContext"] == {"statusCode": 200, "executedVersion": "$LATEST",
                                             "functionError": "Unhandled"}
        assert record["responsePayload"]["errorMessage"] == "nope"


def test_invoke_event_default_is_two_retries():
    with LambdaServer(0, async_retry_delay=0.05) as fast:
        lam = client_for(fast)
        create_function(lam, "always-fails",
                        code=b"exports.handler = async () => { throw new Error('x'); };")
        lam.invoke(FunctionName="always-fails", InvocationType="Event")
        assert wait_for(lambda: len(invocations_of(fast, "always-fails")) == 3)


def test_invoke_event_success_goes_to_a_recorded_queue_destination():
    with LambdaServer(0, async_retry_delay=0.05) as fast:
        lam = client_for(fast)
        create_function(lam, "works", code=b"exports.handler = async (e) => ({ got: e.x });")
        queue = f"arn:aws:sqs:{REGION}:{ACCOUNT}:done"
        lam.put_function_event_invoke_config(
            FunctionName="works", DestinationConfig={"OnSuccess": {"Destination": queue}})
        lam.invoke(FunctionName="works", InvocationType="Event", Payload=b'{"x": 7}')
        assert wait_for(lambda: parlel_json(fast, "/_parlel/destinations")["deliveries"])
        delivery = parlel_json(fast, "/_parlel/destinations")["deliveries"][0]
        assert delivery["destination"] == queue
        assert delivery["message"]["requestContext"]["condition"] == "Success"
        assert delivery["message"]["responsePayload"] == {"got": 7}


def test_invoke_event_failure_goes_to_the_dead_letter_queue():
    with LambdaServer(0, async_retry_delay=0.05) as fast:
        lam = client_for(fast)
        queue = f"arn:aws:sqs:{REGION}:{ACCOUNT}:dead"
        create_function(lam, "doomed", DeadLetterConfig={"TargetArn": queue},
                        code=b"exports.handler = async () => { throw new Error('x'); };")
        lam.put_function_event_invoke_config(FunctionName="doomed", MaximumRetryAttempts=0)
        lam.invoke(FunctionName="doomed", InvocationType="Event", Payload=b'{"order": 5}')
        assert wait_for(lambda: parlel_json(fast, "/_parlel/destinations")["deliveries"])
        delivery = parlel_json(fast, "/_parlel/destinations")["deliveries"][0]
        assert (delivery["destination"], delivery["message"]) == (queue, {"order": 5})
        assert delivery["messageAttributes"] == {"RequestID": delivery["requestId"],
                                                 "ErrorCode": "200", "ErrorMessage": "x"}


def test_an_event_for_a_function_reserved_at_zero_goes_to_its_failure_destination_unrun(
        server, lam):
    create_function(lam, "stopped", code=b"exports.handler = async () => 1;")
    lam.put_function_concurrency(FunctionName="stopped", ReservedConcurrentExecutions=0)
    queue = f"arn:aws:sqs:{REGION}:{ACCOUNT}:unrun"
    lam.put_function_event_invoke_config(
        FunctionName="stopped", DestinationConfig={"OnFailure": {"Destination": queue}})
    out = lam.invoke(FunctionName="stopped", InvocationType="Event", Payload=b'{"n": 1}')
    assert out["StatusCode"] == 202
    assert wait_for(lambda: parlel_json(server, "/_parlel/destinations")["deliveries"])
    record = parlel_json(server, "/_parlel/destinations")["deliveries"][0]["message"]
    assert record["requestContext"]["condition"] == "ZeroReservedConcurrency"
    assert record["requestContext"]["approximateInvokeCount"] == 0
    assert record["requestPayload"] == {"n": 1}
    assert "responseContext" not in record and "responsePayload" not in record
    assert invocations_of(server, "stopped") == []


def test_parlel_logs_keep_each_invocation_with_its_log(server, lam):
    create_function(lam, "logged",
                    code=b"exports.handler = async (e) => { console.log('saw', e.n); return 2; };")
    out = lam.invoke(FunctionName="logged", Payload=b'{"n": 1}')
    request_id = out["ResponseMetadata"]["HTTPHeaders"]["x-amzn-requestid"]
    entries = parlel_json(server, f"/_parlel/logs?requestId={request_id}")["invocations"]
    assert len(entries) == 1
    entry = entries[0]
    assert (entry["functionName"], entry["version"], entry["status"]) == (
        "logged", "$LATEST", "Success")
    assert (entry["payload"], entry["response"]) == ('{"n": 1}', "2")
    assert "INFO\tsaw 1" in entry["log"] and entry["log"].startswith("START RequestId")


# Hot reload: code run straight from a local directory

def test_hot_reload_function_runs_from_its_directory_and_picks_up_edits(lam, tmp_path):
    handler = tmp_path / "index.js"
    handler.write_text("exports.handler = async () => 'first';")
    create_function(lam, "live", Code={"S3Bucket": "hot-reload", "S3Key": str(tmp_path)})
    assert invoke_json(lam, "live")[1] == "first"
    handler.write_text("exports.handler = async () => 'second';")
    later = time.time() + 5
    os.utime(handler, (later, later))
    assert invoke_json(lam, "live")[1] == "second"


def test_hot_reload_python_function(lam, tmp_path):
    (tmp_path / "app.py").write_text("def handler(event, context):\n    return 'py-live'\n")
    create_function(lam, "pylive", Runtime="python3.12", Handler="app.handler",
                    Code={"S3Bucket": "hot-reload", "S3Key": str(tmp_path)})
    assert invoke_json(lam, "pylive")[1] == "py-live"


def test_hot_reload_needs_an_absolute_directory(lam):
    assert_error(lambda: create_function(lam, "relative",
                                         Code={"S3Bucket": "hot-reload", "S3Key": "src"}),
                 "InvalidParameterValueException", 400,
                 "must be the absolute path of a local directory")


def test_hot_reload_missing_directory_echoes_and_says_why(lam, tmp_path):
    create_function(lam, "gone", Code={"S3Bucket": "hot-reload", "S3Key": str(tmp_path / "nope")})
    out = lam.invoke(FunctionName="gone", Payload=b'{"k": 1}', LogType="Tail")
    assert json.loads(out["Payload"].read()) == {"k": 1}
    assert "hot-reload directory" in decoded_log(out)


# ----------------------------------------------------------------------------------------------
# Functions
# ----------------------------------------------------------------------------------------------

# Functions: CreateFunction, GetFunction, ListFunctions, DeleteFunction

def test_create_function_returns_every_field_with_aws_defaults(lam):
    created = create_function(lam, "shape")
    assert created["ResponseMetadata"]["HTTPStatusCode"] == 201
    for member in ("ResponseMetadata",):
        created.pop(member)
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}\+0000", created.pop("LastModified"))
    uuid.UUID(created.pop("RevisionId"))
    assert created.pop("RuntimeVersionConfig")["RuntimeVersionArn"].startswith(
        f"arn:aws:lambda:{REGION}::runtime:")
    assert created == {
        "FunctionName": "shape", "FunctionArn": f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:shape",
        "Runtime": "nodejs20.x", "Role": ROLE, "Handler": "index.handler", "CodeSize": len(DOUBLER),
        "Description": "", "Timeout": 3, "MemorySize": 128, "CodeSha256": sha256_b64(DOUBLER),
        "Version": "$LATEST", "TracingConfig": {"Mode": "PassThrough"}, "State": "Active",
        "LastUpdateStatus": "Successful", "PackageType": "Zip", "Architectures": ["x86_64"],
        "EphemeralStorage": {"Size": 512},
        "SnapStart": {"ApplyOn": "None", "OptimizationStatus": "Off"},
        "LoggingConfig": {"LogFormat": "Text", "LogGroup": "/aws/lambda/shape"}}


def test_create_function_stores_optional_configuration(lam):
    created = create_function(
        lam, "configured", Description="d", Timeout=30, MemorySize=512,
        Environment={"Variables": {"STAGE": "test"}}, Architectures=["arm64"],
        TracingConfig={"Mode": "Active"}, EphemeralStorage={"Size": 1024},
        LoggingConfig={"LogFormat": "JSON"}, Tags={"team": "a"})
    got = lam.get_function_configuration(FunctionName="configured")
    for member, value in (("Description", "d"), ("Timeout", 30), ("MemorySize", 512),
                          ("Environment", {"Variables": {"STAGE": "test"}}),
                          ("Architectures", ["arm64"]),
                          ("TracingConfig", {"Mode": "Active"}),
                          ("EphemeralStorage", {"Size": 1024})):
        assert created[member] == value == got[member], member
    assert got["LoggingConfig"] == {"LogFormat": "JSON", "ApplicationLogLevel": "INFO",
                                    "SystemLogLevel": "INFO", "LogGroup": "/aws/lambda/configured"}
    assert lam.get_function(FunctionName="configured")["Tags"] == {"team": "a"}


def test_create_function_accepts_full_and_partial_arns(lam):
    created = create_function(lam, f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:by-arn")
    assert created["FunctionName"] == "by-arn"
    assert create_function(lam, f"{ACCOUNT}:function:by-partial")["FunctionName"] == "by-partial"


def test_create_function_duplicate_name_is_409(lam):
    create_function(lam, "twice")
    assert_error(lambda: create_function(lam, "twice"), "ResourceConflictException", 409,
                 "Function already exist: twice")


LONG_NAME = "a" * 65
RUNTIME_LIST = ", ".join(lambda_fake.USABLE_RUNTIMES)


@pytest.mark.parametrize("overrides, code, status, message", [
    ({"FunctionName": "bad name!"}, "ValidationException", 400,
     "1 validation error detected: Value 'bad name!' at 'functionName' failed to satisfy "
     "constraint: Member must satisfy regular expression pattern: "
     + lambda_fake.FUNCTION_NAME_PATTERN),
    ({"FunctionName": LONG_NAME}, "InvalidParameterValueException", 400,
     f"1 validation error detected: Value '{LONG_NAME}' at 'functionName' failed to satisfy "
     "constraint: Member must have length less than or equal to 64"),
    ({"Runtime": "nodejs1.x"}, "InvalidParameterValueException", 400,
     "Value nodejs1.x at 'runtime' failed to satisfy constraint: Member must satisfy enum value "
     f"set: [{RUNTIME_LIST}] or be a valid ARN"),
    ({"Runtime": "python3.7"}, "InvalidParameterValueException", 400,
     "The runtime parameter of python3.7 is no longer supported for creating or updating AWS "
     "Lambda functions. We recommend you use a supported runtime while creating or updating "
     "functions."),
    ({"Role": "r1"}, "ValidationException", 400,
     "1 validation error detected: Value 'r1' at 'role' failed to satisfy constraint: Member must "
     "satisfy regular expression pattern: " + lambda_fake.ROLE_PATTERN),
    ({"MemorySize": 10241}, "ValidationException", 400,
     "1 validation error detected: Value '10241' at 'memorySize' failed to satisfy constraint: "
     "Member must have value less than or equal to 10240"),
    ({"Timeout": 901}, "ValidationException", 400,
     "1 validation error detected: Value '901' at 'timeout' failed to satisfy constraint: Member "
     "must have value less than or equal to 900"),
    ({"Handler": "index handler"}, "ValidationException", 400,
     "1 validation error detected: Value 'index handler' at 'handler' failed to satisfy "
     "constraint: Member must satisfy regular expression pattern: [^\\s]+"),
    ({"Description": "d" * 257}, "ValidationException", 400,
     "at 'description' failed to satisfy constraint: Member must have length less than or equal "
     "to 256"),
    ({"Environment": {"Variables": {"1bad": "x"}}}, "ValidationException", 400,
     "1 validation error detected: Value at 'environment.variables' failed to satisfy constraint: "
     "Map keys must satisfy constraint: [Member must satisfy regular expression pattern: "
     "[a-zA-Z]([a-zA-Z0-9_])+]"),
    ({"Environment": {"Variables": {"AWS_REGION": "x"}}}, "InvalidParameterValueException", 400,
     "contains reserved keys that are currently not supported for modification. Reserved keys used "
     "in this request: AWS_REGION"),
    ({"Environment": {"Variables": {"BIG": "x" * 4096}}}, "InvalidParameterValueException", 400,
     "Lambda was unable to configure your environment variables because the environment variables "
     "you have provided exceeded the 4KB limit. String measured: {\"BIG\":\"xxx"),
    ({"Architectures": ["x86_64", "arm64"]}, "ValidationException", 400,
     "1 validation error detected: Value '[x86_64, arm64]' at 'architectures' failed to satisfy "
     "constraint: Member must have length less than or equal to 1"),
    ({"Architectures": ["X86_64"]}, "ValidationException", 400,
     "1 validation error detected: Value '[X86_64]' at 'architectures' failed to satisfy "
     "constraint: Member must satisfy constraint: [Member must satisfy enum value set: [x86_64, "
     "arm64], Member must not be null]"),
    ({"TracingConfig": {"Mode": "Loud"}}, "ValidationException", 400,
     "Value 'Loud' at 'tracingConfig.mode' failed to satisfy constraint: Member must satisfy enum "
     "value set: [Active, PassThrough]"),
    ({"Code": {}}, "InvalidParameterValueException", 400,
     "Please provide a source for function code."),
    ({"Code": {"ZipFile": DOUBLER, "S3Bucket": "bucket", "S3Key": "key"}},
     "InvalidParameterValueException", 400, "Please do not provide other FunctionCode parameters"),
    ({"Code": {"ZipFile": b"PK\x03\x04 not really a zip"}}, "InvalidParameterValueException", 400,
     "Could not unzip uploaded file. Please check your file, then try to upload again."),
    ({"Code": {"ZipFile": zip_of({})}}, "InvalidParameterValueException", 400,
     "Uploaded file must be a non-empty zip"),
    ({"Runtime": None}, "InvalidParameterValueException", 400,
     "Runtime and Handler are mandatory parameters for functions created with "
     "deployment packages."),
    ({"FunctionName": f"arn:aws:lambda:eu-west-1:{ACCOUNT}:function:elsewhere"},
     "ResourceNotFoundException", 404,
     "Functions from 'eu-west-1' are not reachable in this region "
     "('us-east-1')"),
    ({"FunctionName": "arn:aws:lambda:us-east-1:999999999999:function:theirs"},
     "AccessDeniedException", 403, ""),
])
def test_create_function_validation(lam, overrides, code, status, message):
    params = dict(FunctionName="fn", Runtime="nodejs20.x", Role=ROLE, Handler="index.handler",
                  Code={"ZipFile": DOUBLER})
    params.update(overrides)
    params = {k: v for k, v in params.items() if v is not None}
    got = assert_error(lambda: lam.create_function(**params), code, status)
    assert got == message if code == "ValidationException" and message.startswith("1 ") \
        else message in got
    assert lam.list_functions()["Functions"] == []      # bad input changes nothing


def test_create_function_wrong_json_type_is_invalid_request_content(server, lam):
    body = {"FunctionName": "typed", "Role": ROLE, "Runtime": "nodejs20.x",
            "Handler": "index.handler",
            "Code": {"ZipFile": base64.b64encode(DOUBLER).decode()}, "MemorySize": "big"}
    status, headers, reply = raw(server, "POST", "/2015-03-31/functions", json.dumps(body).encode())
    assert status == 400 and headers["x-amzn-errortype"] == "InvalidRequestContentException"
    assert "memorySize" in json.loads(reply)["message"]
    assert lam.list_functions()["Functions"] == []


def test_create_function_unknown_member_is_rejected(server, lam):
    body = {"FunctionName": "typo", "Role": ROLE, "Runtime": "nodejs20.x",
            "Handler": "index.handler",
            "Code": {"ZipFile": base64.b64encode(DOUBLER).decode()}, "MemorySise": 256}
    status, headers, reply = raw(server, "POST", "/2015-03-31/functions", json.dumps(body).encode())
    assert status == 400 and headers["x-amzn-errortype"] == "InvalidRequestContentException"
    assert '"MemorySise"' in json.loads(reply)["message"]


def test_create_function_from_parlel_handler_member(server, lam):
    body = {"FunctionName": "raw-member", "Role": ROLE, "Runtime": "nodejs20.x",
            "Handler": "index.handler", "_parlelHandler": DOUBLER.decode()}
    status, _, reply = raw(server, "POST", "/2015-03-31/functions", json.dumps(body).encode())
    assert status == 201, reply
    assert json.loads(reply)["CodeSha256"] == sha256_b64(DOUBLER)
    assert invoke_json(lam, "raw-member", {"n": 4})[1] == {"doubled": 8, "fn": "raw-member"}


def test_get_function_returns_configuration_code_location_and_tags(lam):
    package = zip_of({"index.js": DOUBLER})
    create_function(lam, "got", code=package, Tags={"k": "v"})
    got = lam.get_function(FunctionName="got")
    assert got["Configuration"]["CodeSha256"] == sha256_b64(package)
    assert got["Code"]["RepositoryType"] == "S3"
    assert got["Tags"] == {"k": "v"}
    location = got["Code"]["Location"]
    assert location.startswith(lam.meta.endpoint_url)
    connection = http.client.HTTPConnection("127.0.0.1", int(location.split(":")[2].split("/")[0]))
    connection.request("GET", location.split(lam.meta.endpoint_url, 1)[1])
    assert connection.getresponse().read() == package
    connection.close()


def test_get_function_without_tags_has_no_tags_member(lam):
    create_function(lam, "untagged")
    assert "Tags" not in lam.get_function(FunctionName="untagged")


def test_get_function_unknown_name_is_404(lam):
    assert_error(lambda: lam.get_function(FunctionName="nope"), "ResourceNotFoundException", 404,
                 f"Function not found: arn:aws:lambda:{REGION}:{ACCOUNT}:function:nope")


def test_get_function_by_arn_partial_arn_and_qualifier(lam):
    create_function(lam, "named", Publish=True)
    for ref in (f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:named", f"{ACCOUNT}:function:named",
                "named:$LATEST", f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:named:1"):
        assert lam.get_function(FunctionName=ref)["Configuration"]["FunctionName"] == "named", ref
    assert lam.get_function(FunctionName="named", Qualifier="1")["Configuration"]["Version"] == "1"


def test_get_function_qualifier_mismatch_is_400(lam):
    create_function(lam, "mismatch")
    assert_error(lambda: lam.get_function(FunctionName="mismatch:1", Qualifier="$LATEST"),
                 "InvalidParameterValueException", 400,
                 "The derived qualifier from the function name does not match the specified "
                 "qualifier.")


def test_get_function_unknown_version_is_404_naming_it(lam):
    create_function(lam, "versionless")
    assert_error(lambda: lam.get_function(FunctionName="versionless", Qualifier="1221"),
                 "ResourceNotFoundException", 404,
                 f"Function not found: arn:aws:lambda:{REGION}:{ACCOUNT}:function:versionless:1221")


def test_get_function_bad_qualifier_is_validation_error(lam):
    create_function(lam, "q")
    assert_error(lambda: lam.get_function(FunctionName="q", Qualifier="bad!"),
                 "ValidationException", 400,
                 "Value 'bad!' at 'qualifier' failed to satisfy constraint: Member must satisfy "
                 "regular expression pattern: \\$(LATEST(\\.PUBLISHED)?)|[a-zA-Z0-9-_$]+")


def test_get_function_arn_of_another_region_is_404(lam):
    create_function(lam, "here")
    assert_error(lambda: lam.get_function(FunctionName=f"arn:aws:lambda:eu-west-1:{ACCOUNT}:"
                                                       "function:here"),
                 "ResourceNotFoundException", 404, "Functions from 'eu-west-1' are not reachable")


def test_get_function_arn_of_another_account_is_refused(lam):
    create_function(lam, "mine")
    assert_error(lambda: lam.get_function(FunctionName="arn:aws:lambda:us-east-1:999999999999:"
                                                       "function:mine"),
                 "AccessDeniedException", 403)


def test_get_function_configuration_matches_create(lam):
    created = create_function(lam, "same")
    created.pop("ResponseMetadata")
    got = lam.get_function_configuration(FunctionName="same")
    got.pop("ResponseMetadata")
    assert got == created


def test_list_functions_sorted_in_pages_of_50(lam):
    names = [f"f{i:03d}" for i in range(63)]
    for name in reversed(names):
        create_function(lam, name)
    first = lam.list_functions()
    assert [f["FunctionName"] for f in first["Functions"]] == names[:50]
    second = lam.list_functions(Marker=first["NextMarker"])
    assert [f["FunctionName"] for f in second["Functions"]] == names[50:]
    assert "NextMarker" not in second
    assert "State" not in first["Functions"][0] \
        and "RuntimeVersionConfig" not in first["Functions"][0]
    small = lam.list_functions(MaxItems=5)
    assert len(small["Functions"]) == 5 and "NextMarker" in small
    paged = [f["FunctionName"] for page in lam.get_paginator("list_functions").paginate(
        PaginationConfig={"PageSize": 7}) for f in page["Functions"]]
    assert paged == names


def test_list_functions_after_deletes_and_creates_is_still_sorted_and_whole(lam):
    for name in ("m", "c", "x", "a", "q"):
        create_function(lam, name)
    for name in ("c", "q"):
        lam.delete_function(FunctionName=name)
    for name in ("b", "z", "c"):
        create_function(lam, name)
    listed = [f["FunctionName"] for page in lam.get_paginator("list_functions").paginate(
        PaginationConfig={"PageSize": 2}) for f in page["Functions"]]
    assert listed == ["a", "b", "c", "m", "x", "z"]


def test_list_functions_all_versions(lam):
    create_function(lam, "versioned", Publish=True)
    listed = lam.list_functions(FunctionVersion="ALL")["Functions"]
    assert [(f["FunctionArn"].rsplit(":", 1)[1], f["Version"]) for f in listed] == [
        ("$LATEST", "$LATEST"), ("1", "1")]


def test_list_functions_bad_arguments(lam):
    assert_error(lambda: lam.list_functions(MaxItems=10001), "ValidationException", 400,
                 "Value '10001' at 'maxItems' failed to satisfy constraint: Member must have value "
                 "less than or equal to 10000")
    assert_error(lambda: lam.list_functions(FunctionVersion="SOME"), "ValidationException", 400,
                 "Value 'SOME' at 'functionVersion' failed to satisfy constraint: Member must "
                 "satisfy enum value set: [ALL]")


def test_delete_function_removes_it(lam):
    create_function(lam, "doomed")
    assert lam.delete_function(FunctionName="doomed")["ResponseMetadata"]["HTTPStatusCode"] == 204
    assert_error(lambda: lam.get_function(FunctionName="doomed"), "ResourceNotFoundException", 404)
    assert_error(lambda: lam.delete_function(FunctionName="doomed"),
                 "ResourceNotFoundException", 404)


def test_delete_function_with_qualifier_deletes_that_version_only(lam):
    create_function(lam, "two-versions", Publish=True)
    lam.delete_function(FunctionName="two-versions", Qualifier="1")
    assert_error(lambda: lam.get_function(FunctionName="two-versions", Qualifier="1"),
                 "ResourceNotFoundException", 404)
    assert lam.get_function(FunctionName="two-versions")["Configuration"]["Version"] == "$LATEST"
    lam.delete_function(FunctionName="two-versions", Qualifier="7")     # absent: a no-op, as on AWS
    assert_error(lambda: lam.delete_function(FunctionName="two-versions", Qualifier="$LATEST"),
                 "InvalidParameterValueException", 400,
                 "$LATEST version cannot be deleted without deleting the function.")
    assert_error(lambda: lam.delete_function(FunctionName="two-versions", Qualifier="live"),
                 "InvalidParameterValueException", 400,
                 "Deletion of aliases is not currently supported.")


# Function-scoped operations on an unknown function

UNKNOWN_FUNCTION_CALLS = {
    "publish_version": lambda lam: lam.publish_version(FunctionName="doesnotexist"),
    "list_versions_by_function": lambda lam: lam.list_versions_by_function(
        FunctionName="doesnotexist"),
    "get_alias": lambda lam: lam.get_alias(FunctionName="doesnotexist", Name="live"),
    "list_aliases": lambda lam: lam.list_aliases(FunctionName="doesnotexist"),
    "get_function_concurrency": lambda lam: lam.get_function_concurrency(
        FunctionName="doesnotexist"),
    "delete_function_concurrency": lambda lam: lam.delete_function_concurrency(
        FunctionName="doesnotexist"),
    "list_provisioned_concurrency_configs": lambda lam: lam.list_provisioned_concurrency_configs(
        FunctionName="doesnotexist"),
}


@pytest.mark.parametrize("operation", sorted(UNKNOWN_FUNCTION_CALLS))
def test_unknown_function_is_404_naming_the_unqualified_arn(lam, operation):
    create_function(lam, code=CODE)
    message = assert_error(lambda: UNKNOWN_FUNCTION_CALLS[operation](lam),
                           "ResourceNotFoundException", 404)
    assert message == f"Function not found: {arn('doesnotexist')}"


# ----------------------------------------------------------------------------------------------
# Code and configuration
# ----------------------------------------------------------------------------------------------

# Code and configuration: UpdateFunctionCode, UpdateFunctionConfiguration

def test_update_function_code_changes_code_sha_and_revision(lam):
    before = create_function(lam, "coded")
    new_code = b"exports.handler = async () => 'v2';\n"
    after = lam.update_function_code(FunctionName="coded", ZipFile=new_code)
    assert after["CodeSha256"] == sha256_b64(new_code) and after["CodeSize"] == len(new_code)
    assert after["RevisionId"] != before["RevisionId"]
    assert after["LastUpdateStatus"] == "Successful"
    assert invoke_json(lam, "coded")[1] == "v2"


def test_update_function_code_without_a_source_is_invalid_parameter(lam):
    create_function(lam, "sourceless")
    assert_error(lambda: lam.update_function_code(FunctionName="sourceless"),
                 "InvalidParameterValueException", 400,
                 "Please provide a source for function code.")


def test_update_function_code_unknown_function_is_404(lam):
    assert_error(lambda: lam.update_function_code(FunctionName="ghost", ZipFile=DOUBLER),
                 "ResourceNotFoundException", 404, "function:ghost")


def test_update_function_code_stale_revision_is_412(lam):
    create_function(lam, "raced")
    assert_error(lambda: lam.update_function_code(FunctionName="raced", ZipFile=DOUBLER,
                                                  RevisionId=str(uuid.uuid4())),
                 "PreconditionFailedException", 412, "does not match the latest Revision Id")


def test_update_function_code_dry_run_changes_nothing(lam):
    created = create_function(lam, "dry")
    preview = lam.update_function_code(FunctionName="dry", ZipFile=b"exports.handler = () => 1;",
                                       DryRun=True)
    assert preview["CodeSha256"] != created["CodeSha256"]
    assert lam.get_function_configuration(FunctionName="dry")["CodeSha256"] == created["CodeSha256"]


def test_update_function_code_publish_creates_a_version(lam):
    create_function(lam, "pub")
    published = lam.update_function_code(FunctionName="pub",
                                         ZipFile=b"exports.handler = async () => 2;", Publish=True)
    assert published["Version"] == "1"
    assert invoke_json(lam, "pub", Qualifier="1")[1] == 2


def test_update_function_configuration_merges_members(lam):
    before = create_function(lam, "tuned", Description="keep me")
    after = lam.update_function_configuration(FunctionName="tuned", Timeout=10, MemorySize=256,
                                              Environment={"Variables": {"AB": "1"}})
    assert (after["Timeout"], after["MemorySize"], after["Description"]) == (10, 256, "keep me")
    assert after["Environment"] == {"Variables": {"AB": "1"}}
    assert after["RevisionId"] != before["RevisionId"]
    assert lam.get_function_configuration(FunctionName="tuned")["Timeout"] == 10


def test_a_vpc_config_as_aws_answers_and_words_it(lam):
    made = create_function(lam, VpcConfig=VPC)
    assert made["VpcConfig"]["SubnetIds"] == ["subnet-0abc"]
    assert made["VpcConfig"]["VpcId"].startswith("vpc-")
    detached = lam.update_function_configuration(
        FunctionName="fn", VpcConfig={"SubnetIds": [], "SecurityGroupIds": []})
    assert detached["VpcConfig"] == {"SubnetIds": [], "SecurityGroupIds": [],
                                     "Ipv6AllowedForDualStack": False, "VpcId": ""}
    message = assert_error(lambda: lam.update_function_configuration(
        FunctionName="fn", VpcConfig={"SubnetIds": ["bad"], "SecurityGroupIds": []}),
        "ValidationException", 400)
    assert message == ("1 validation error detected: Value '[bad]' at 'vpcConfig.subnetIds' "
                       "failed to satisfy constraint: Member must satisfy constraint: [Member "
                       "must have length less than or equal to 1024, Member must have length "
                       "greater than or equal to 0, Member must satisfy regular expression "
                       "pattern: subnet-[0-9a-z]*]")


def test_update_function_configuration_bad_input_changes_nothing(lam):
    create_function(lam, "strict", Timeout=5)
    assert_error(lambda: lam.update_function_configuration(FunctionName="strict", Timeout=1000,
                                                                   Description="d" * 300),
                 "ValidationException", 400, "2 validation errors detected: ")
    assert_error(lambda: lam.update_function_configuration(FunctionName="strict", Runtime="cobol"),
                 "InvalidParameterValueException", 400, "Value cobol at 'runtime'")
    assert lam.get_function_configuration(FunctionName="strict")["Timeout"] == 5


def test_update_function_configuration_unknown_function_is_404(lam):
    assert_error(lambda: lam.update_function_configuration(FunctionName="ghost", Timeout=5),
                 "ResourceNotFoundException", 404, "function:ghost")


# ----------------------------------------------------------------------------------------------
# Invoke
# ----------------------------------------------------------------------------------------------

def test_invoke_returns_what_the_handler_computed(lam):
    create_function(lam, "doubler")
    out, payload = invoke_json(lam, "doubler", {"n": 21})
    assert out["StatusCode"] == 200 and payload == {"doubled": 42, "fn": "doubler"}
    assert out["ExecutedVersion"] == "$LATEST"
    assert "FunctionError" not in out


def test_invoke_callback_style_handler(lam):
    create_function(lam, "cb", code=b"exports.handler = (event, context, callback) => "
                                    b"setTimeout(() => callback(null, {got: event.x}), 5);")
    assert invoke_json(lam, "cb", {"x": 1})[1] == {"got": 1}


def test_invoke_empty_payload_reaches_handler_as_empty_object(lam):
    create_function(lam, "empty", code=b"exports.handler = async (event) => event;")
    assert json.loads(lam.invoke(FunctionName="empty")["Payload"].read()) == {}


def test_invoke_context_has_lambda_fields(lam):
    create_function(lam, "ctx", Timeout=7, MemorySize=256, code=(
        b"exports.handler = async (event, c) => ({name: c.functionName, version: c.functionVersion,"
        b" arn: c.invokedFunctionArn, memory: c.memoryLimitInMB, id: c.awsRequestId,"
        b" group: c.logGroupName, stream: c.logStreamName, left: c.getRemainingTimeInMillis()});"))
    out, got = invoke_json(lam, "ctx")
    assert got["name"] == "ctx" and got["version"] == "$LATEST" and got["memory"] == "256"
    assert got["arn"] == f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:ctx"
    assert got["id"] == out["ResponseMetadata"]["HTTPHeaders"]["x-amzn-requestid"]
    assert got["group"] == "/aws/lambda/ctx" and "[$LATEST]" in got["stream"]
    assert 0 < got["left"] <= 7000


@pytest.mark.parametrize("runtime, handler, code", [
    ("nodejs20.x", "index.handler",
     b"const until = Date.now() + 1500; while (Date.now() < until) {}\n"
     b"exports.handler = async (e, c) => c.getRemainingTimeInMillis();"),
    ("python3.12", "app.handler",
     b"import time\ntime.sleep(1.5)\n"
     b"def handler(e, c):\n    return c.get_remaining_time_in_millis()\n")])
def test_invoke_timeout_counts_from_the_invocation_not_from_a_slow_init(lam, runtime, handler,
                                                                        code):
    create_function(lam, "slow-init", Runtime=runtime, Handler=handler, Timeout=3, code=code)
    out, left = invoke_json(lam, "slow-init", LogType="Tail")
    assert "Init Duration: 1" in decoded_log(out)       # 1,5xx ms of init
    assert 2500 < left <= 3000


def test_an_init_longer_than_its_10_s_has_the_invocations_timeout_as_on_lambda(server, lam,
                                                                              monkeypatch):
    """Lambda tries an on-demand init that outlasts its 10 s again within the invocation's
    Timeout; here the 10 s are made 0.5 s."""
    monkeypatch.setattr(server.store.runner, "init_seconds", 0.5)
    code = b"import time\ntime.sleep(1.5)\ndef handler(e, c):\n    return 'ready'\n"
    create_function(lam, "slow", Runtime="python3.12", Handler="app.handler", Timeout=3, code=code)
    assert invoke_json(lam, "slow")[1] == "ready"
    create_function(lam, "slower", Runtime="python3.12", Handler="app.handler", Timeout=1,
                    code=code)
    out, payload = invoke_json(lam, "slower", LogType="Tail")
    request_id = out["ResponseMetadata"]["RequestId"]
    assert payload == {"errorType": "Sandbox.Timedout", "errorMessage":
                       f"RequestId: {request_id} Error: Task timed out after 1.00 seconds"}
    assert "INIT_REPORT Init Duration: " in decoded_log(out)
    create_function(lam, "quits", Runtime="python3.12", Handler="app.handler",
                    code=b"import sys\nsys.exit(0)\n")
    out, payload = invoke_json(lam, "quits")
    assert payload == {"errorType": "Runtime.ExitError", "errorMessage":
                       f"RequestId: {out['ResponseMetadata']['RequestId']} Error: Runtime exited "
                       "without providing a reason"}


def test_a_python_modules_error_at_import_is_answered_as_the_runtime_answers_it(lam):
    create_function(lam, "broken", Runtime="python3.12", Handler="app.handler",
                    code=b"raise ValueError('at import')\n")
    payload = invoke_json(lam, "broken")[1]
    assert list(payload) == ["errorMessage", "errorType", "requestId", "stackTrace"]  # as AWS's
    assert (payload["errorType"], payload["errorMessage"], payload["requestId"]) == (
        "ValueError", "at import", "")          # init has no request id
    assert "importlib" in payload["stackTrace"][0]      # no frame of lambda_fake's own
    assert not any("bootstrap.py" in frame for frame in payload["stackTrace"])
    assert "raise ValueError('at import')" in payload["stackTrace"][-1]


def test_an_exec_wrapper_that_is_not_there_ends_the_init_as_on_lambda(lam):
    create_function(lam, "wrapped", Environment={"Variables": {
        "AWS_LAMBDA_EXEC_WRAPPER": "/idontexist.sh"}})
    out, payload = invoke_json(lam, "wrapped")
    assert payload == {"errorType": "Runtime.ExitError", "errorMessage":
                       f"RequestId: {out['ResponseMetadata']['RequestId']} Error: Runtime exited "
                       "with error: exit status 127"}
    files = {"index.js": "exports.handler = async () => 1;",
             "wrapper.sh": "#!/bin/sh\nexec \"$@\"\n"}
    wrapper = {"Variables": {"AWS_LAMBDA_EXEC_WRAPPER": "/var/task/wrapper.sh"}}
    create_function(lam, "unrunnable", code=zip_of(files), Environment=wrapper)
    assert invoke_json(lam, "unrunnable")[1]["errorMessage"].endswith("exit status 126")
    create_function(lam, "found", code=custom_zip(files), Environment=wrapper)   # executable
    assert invoke_json(lam, "found")[1] == 1           # there: the function runs

def test_invoke_console_output_goes_to_the_log_not_the_payload(lam):
    create_function(lam, "chatty",
                    code=b"exports.handler = async () => { console.log('hello', {a: 1});"
                         b" console.error('oops'); return 'done'; };")
    out = lam.invoke(FunctionName="chatty", LogType="Tail")
    assert json.loads(out["Payload"].read()) == "done"
    log = decoded_log(out)
    request_id = out["ResponseMetadata"]["HTTPHeaders"]["x-amzn-requestid"]
    lines = log.splitlines()
    assert lines[0] == f"START RequestId: {request_id} Version: $LATEST"
    assert re.fullmatch(rf"\S+Z\t{request_id}\tINFO\thello {{ a: 1 }}", lines[1])
    assert re.fullmatch(rf"\S+Z\t{request_id}\tERROR\toops", lines[2])
    assert lines[3] == f"END RequestId: {request_id}"
    assert re.fullmatch(rf"REPORT RequestId: {request_id}\tDuration: \d+\.\d\d ms\tBilled Duration:"
                        r" \d+ ms\tMemory Size: 128 MB\tMax Memory Used: \d+ MB\tInit Duration: "
                        r"\d+\.\d\d ms\t", lines[4])


def test_invoke_tail_is_the_last_4_kb_and_warm_invokes_have_no_init_duration(lam):
    create_function(lam, "loud",
                    code=b"exports.handler = async () => { console.log('x'.repeat(10000)); };")
    lam.invoke(FunctionName="loud")
    out = lam.invoke(FunctionName="loud", LogType="Tail")
    log = base64.b64decode(out["LogResult"])
    assert len(log) == 4096
    assert log.decode().endswith("\t\n") and "REPORT RequestId" in log.decode()
    assert "Init Duration" not in log.decode()


def test_invoke_tail_present_even_when_handler_prints_nothing(lam):
    create_function(lam, "quiet")
    out = lam.invoke(FunctionName="quiet", Payload=b'{"n": 1}', LogType="Tail")
    assert "END RequestId" in decoded_log(out)


def test_invoke_thrown_error_is_200_with_function_error(lam):
    create_function(lam, "thrower",
                    code=b"exports.handler = async () => { throw new TypeError('bad input'); };")
    out, payload = invoke_json(lam, "thrower")
    assert out["StatusCode"] == 200 and out["FunctionError"] == "Unhandled"
    assert payload["errorType"] == "TypeError" and payload["errorMessage"] == "bad input"
    assert payload["trace"][0] == "TypeError: bad input"


def test_invoke_timeout_kills_the_worker_and_the_next_invoke_starts_fresh(lam):
    create_function(lam, "hangs", Timeout=1, code=(
        b"let calls = 0;\n"
        b"exports.handler = async (event) => { calls += 1; if (event.hang) await new Promise(() => "
        b"setInterval(() => {}, 100)); return calls; };"))
    assert invoke_json(lam, "hangs")[1] == 1
    started = time.monotonic()
    out, payload = invoke_json(lam, "hangs", {"hang": True})
    assert time.monotonic() - started < 5
    assert out["FunctionError"] == "Unhandled" and payload["errorType"] == "Sandbox.Timedout"
    request_id = out["ResponseMetadata"]["HTTPHeaders"]["x-amzn-requestid"]
    assert payload["errorMessage"] == (f"RequestId: {request_id} Error: Task timed out after "
                                       "1.00 seconds")
    assert invoke_json(lam, "hangs")[1] == 1        # a new worker: module state starts over


def test_invoke_whose_promise_nothing_will_settle_answers_null_as_lambda_does(lam):
    create_function(lam, "stalls", Timeout=5, code=(
        b"exports.handler = async () => { await new Promise(() => {}); return 'never'; };"))
    started = time.monotonic()
    out, payload = invoke_json(lam, "stalls")
    assert "FunctionError" not in out and payload is None
    assert time.monotonic() - started < 2          # the event loop ran dry: no timeout
    assert invoke_json(lam, "stalls")[1] is None    # and the environment serves again


TRACE_ID = re.compile(r"Root=1-([0-9a-f]{8})-[0-9a-f]{24};Parent=[0-9a-f]{16};Sampled=0")


@pytest.mark.parametrize("runtime, handler, code", [
    ("nodejs20.x", "index.handler",
     b"exports.handler = async () => process.env._X_AMZN_TRACE_ID;"),
    ("python3.12", "app.handler",
     b"import os\ndef handler(event, context):\n    return os.environ['_X_AMZN_TRACE_ID']\n"),
])
def test_invoke_sets_a_trace_id_for_each_invocation(lam, runtime, handler, code):
    lam.create_function(FunctionName="traced", Runtime=runtime, Role=ROLE, Handler=handler,
                        Code={"ZipFile": code})
    ids = [invoke_json(lam, "traced")[1] for _ in range(2)]
    assert all(TRACE_ID.fullmatch(trace) for trace in ids), ids
    assert ids[0] != ids[1]
    assert abs(int(TRACE_ID.fullmatch(ids[0])[1], 16) - time.time()) < 60


CLIENT_CONTEXT = base64.b64encode(json.dumps({
    "client": {"installation_id": "install-1", "app_title": "Demo"},
    "custom": {"tier": "gold"}, "env": {"platform": "ios"}}).encode()).decode()


def test_python_context_objects_are_built_as_the_runtime_builds_them(lam):
    create_function(lam, "context", Runtime="python3.12", Handler="app.handler", code=(
        b"def handler(event, context):\n"
        b"    context.log('logged through the context\\n')\n"
        b"    cc = context.client_context\n"
        b"    return {'identity': [context.identity.cognito_identity_id,\n"
        b"                         context.identity.cognito_identity_pool_id],\n"
        b"            'client_context': None if cc is None else [cc.client.installation_id,\n"
        b"                cc.client.app_title, cc.client.app_package_name, cc.custom, cc.env]}\n"))
    out, seen = invoke_json(lam, "context", LogType="Tail")
    assert seen == {"identity": [None, None], "client_context": None}
    assert "logged through the context" in decoded_log(out)
    assert invoke_json(lam, "context", ClientContext=CLIENT_CONTEXT)[1]["client_context"] == [
        "install-1", "Demo", None, {"tier": "gold"}, {"platform": "ios"}]


def test_node_context_has_no_identity_or_client_context_unless_given(lam):
    create_function(lam, "context", code=(
        b"exports.handler = async (event, context) => ({\n"
        b"  identity: context.identity === undefined,\n"
        b"  clientContext: context.clientContext === undefined ? 'undefined'\n"
        b"                 : context.clientContext.custom });"))
    assert invoke_json(lam, "context")[1] == {"identity": True, "clientContext": "undefined"}
    assert invoke_json(lam, "context", ClientContext=CLIENT_CONTEXT)[1] == {
        "identity": True, "clientContext": {"tier": "gold"}}


def test_python_stack_trace_entries_have_no_position_markers(lam):
    create_function(lam, "raises", Runtime="python3.12", Handler="app.handler", code=(
        b"def handler(event, context):\n"
        b"    return {'x': 1}['missing'] + len(event)\n"))
    out, payload = invoke_json(lam, "raises")
    assert out["FunctionError"] == "Unhandled" and payload["errorType"] == "KeyError"
    assert payload["stackTrace"] == [
        f'  File "{payload["stackTrace"][0].split(chr(34))[1]}", line 2, in handler\n'
        "    return {'x': 1}['missing'] + len(event)\n"]


def test_a_callback_result_waits_for_the_empty_event_loop(lam):
    create_function(lam, "waits", code=(
        b"exports.handler = (event, context, callback) => {\n"
        b"  setTimeout(() => console.log('timer ran'), 300);\n"
        b"  callback(null, 'done'); };"))
    started = time.monotonic()
    out, payload = invoke_json(lam, "waits", LogType="Tail")
    assert payload == "done" and time.monotonic() - started >= 0.3
    assert "timer ran" in decoded_log(out)


def test_a_callback_result_goes_at_once_when_the_handler_says_not_to_wait(lam):
    create_function(lam, "hurries", code=(
        b"exports.handler = (event, context, callback) => {\n"
        b"  context.callbackWaitsForEmptyEventLoop = false;\n"
        b"  setTimeout(() => console.log('timer ran'), 300);\n"
        b"  callback(null, 'done'); };"))
    started = time.monotonic()
    out, payload = invoke_json(lam, "hurries", LogType="Tail")
    assert payload == "done" and time.monotonic() - started < 0.25
    assert "timer ran" not in decoded_log(out)      # frozen until the next invocation


def test_a_callback_error_and_context_methods_answer_at_once(lam):
    create_function(lam, "fails", code=(
        b"exports.handler = (event, context, callback) => {\n"
        b"  setTimeout(() => {}, 500);\n"
        b"  if (event.how === 'callback') callback(new Error('bad'));\n"
        b"  else if (event.how === 'succeed') context.succeed('ok');\n"
        b"  else context.fail(); };"))
    for how, expected in (("callback", {"errorType": "Error", "errorMessage": "bad"}),
                          ("succeed", "ok"),
                          ("fail", {"errorType": "string", "errorMessage": "handled"})):
        started = time.monotonic()
        payload = invoke_json(lam, "fails", {"how": how})[1]
        assert time.monotonic() - started < 0.4, how
        if isinstance(expected, dict):
            assert {k: payload[k] for k in expected} == expected, how
        else:
            assert payload == expected


def test_invoke_warm_worker_keeps_module_state(lam):
    create_function(lam, "counter", code=b"let n = 0; exports.handler = async () => ++n;")
    assert [invoke_json(lam, "counter")[1] for _ in range(3)] == [1, 2, 3]


def test_invoke_after_configuration_update_sees_new_environment(lam):
    create_function(lam, "env", code=b"exports.handler = async () => process.env.GREETING || null;",
                    Environment={"Variables": {"GREETING": "hi"}})
    assert invoke_json(lam, "env")[1] == "hi"
    lam.update_function_configuration(FunctionName="env",
                                      Environment={"Variables": {"GREETING": "bye"}})
    assert invoke_json(lam, "env")[1] == "bye"


def test_invoke_sandbox_environment_has_lambda_variables_and_no_server_secrets(lam, monkeypatch):
    monkeypatch.setenv("SERVER_SECRET", "do-not-leak")
    create_function(lam, "envs", code=b"exports.handler = async () => process.env;")
    env = invoke_json(lam, "envs")[1]
    assert "SERVER_SECRET" not in env
    assert env["AWS_LAMBDA_FUNCTION_NAME"] == "envs" and env["AWS_REGION"] == REGION
    assert env["AWS_LAMBDA_FUNCTION_MEMORY_SIZE"] == "128" and env["_HANDLER"] == "index.handler"
    assert env["AWS_ENDPOINT_URL_LAMBDA"] == lam.meta.endpoint_url
    # as AWS records a handler's environment: X-Ray's variables, no log format for Text, ...
    assert {name: env.get(name) for name in (
        "AWS_XRAY_CONTEXT_MISSING", "AWS_XRAY_DAEMON_ADDRESS", "_AWS_XRAY_DAEMON_ADDRESS",
        "_AWS_XRAY_DAEMON_PORT", "LC_CTYPE", "LANG", "TZ", "AWS_LAMBDA_LOG_FORMAT", "SHLVL",
        "AWS_EXECUTION_ENV")} == {
        "AWS_XRAY_CONTEXT_MISSING": "LOG_ERROR", "AWS_XRAY_DAEMON_ADDRESS": "169.254.100.1:2000",
        "_AWS_XRAY_DAEMON_ADDRESS": "169.254.100.1", "_AWS_XRAY_DAEMON_PORT": "2000",
        "LC_CTYPE": None, "LANG": "en_US.UTF-8", "TZ": ":UTC", "AWS_LAMBDA_LOG_FORMAT": None,
        "SHLVL": "0", "AWS_EXECUTION_ENV": "AWS_Lambda_nodejs20.x"}
    task, runtime = env["LAMBDA_TASK_ROOT"], env["LAMBDA_RUNTIME_DIR"]
    assert env["PWD"] == task and env["NODE_PATH"].endswith(f"{runtime}:{task}")
    assert env["LD_LIBRARY_PATH"] == (f"/var/lang/lib:/lib64:/usr/lib64:{runtime}:{runtime}/lib:"
                                      f"{task}:{task}/lib")
    create_function(lam, "pyenvs", Runtime="python3.12", Handler="app.handler",
                    code=b"import os\ndef handler(e, c):\n    return dict(os.environ)\n")
    env = invoke_json(lam, "pyenvs")[1]
    assert (env["LC_CTYPE"], env["AWS_EXECUTION_ENV"]) == ("C.UTF-8", "AWS_Lambda_python3.12")
    assert "NODE_PATH" not in env


def test_an_x_ray_trace_header_on_invoke_reaches_the_handler_as_on_lambda(lam):
    create_function(lam, "traced", Runtime="python3.12", Handler="app.handler", code=(
        b"import os\nat_init = str(os.environ.get('_X_AMZN_TRACE_ID'))\n"
        b"def handler(e, c):\n    return [at_init, os.environ['_X_AMZN_TRACE_ID']]\n"))
    at_init, own = invoke_json(lam, "traced")[1]
    assert at_init == "None"                # no trace while the module loads
    assert re.fullmatch(r"Root=1-[0-9a-f]{8}-[0-9a-f]{24};Parent=[0-9a-f]{16};Sampled=0", own)
    root = "1-3152b799-8954dae64eda91bc9a23a7e8"

    def traced(request, **kwargs):
        request.headers["X-Amzn-Trace-Id"] = f"Root={root};Parent=7fa8c0f79203be72;Sampled=1"
    lam.meta.events.register("before-send.lambda.Invoke", traced)
    try:
        passed = invoke_json(lam, "traced")[1][1]
    finally:
        lam.meta.events.unregister("before-send.lambda.Invoke", traced)
    assert re.fullmatch(rf"Root={root};Parent=[0-9a-f]{{16}};Sampled=1", passed)
    assert "7fa8c0f79203be72" not in passed     # the function's own segment is the parent


def test_invoke_event_answers_202_and_runs_in_the_background(lam, tmp_path):
    marker = tmp_path / "ran"
    create_function(lam, "async", code=b"const fs = require('fs');\n"
                                       b"exports.handler = async (e) => "
                                       b"fs.writeFileSync(e.path, 'yes');")
    out = lam.invoke(FunctionName="async", InvocationType="Event",
                     Payload=json.dumps({"path": str(marker)}))
    assert out["StatusCode"] == 202 and out["Payload"].read() == b""
    assert wait_for(marker.exists)


def test_invoke_dry_run_answers_204_and_runs_nothing(lam, tmp_path):
    marker = tmp_path / "ran"
    create_function(lam, "dry", code=b"const fs = require('fs');\n"
                                     b"exports.handler = async (e) => "
                                     b"fs.writeFileSync(e.path, 'yes');")
    out = lam.invoke(FunctionName="dry", InvocationType="DryRun",
                     Payload=json.dumps({"path": str(marker)}))
    assert out["StatusCode"] == 204
    time.sleep(0.3)
    assert not marker.exists()


def test_invoke_qualifier_runs_that_version(lam):
    create_function(lam, "staged", code=b"exports.handler = async () => 'one';", Publish=True)
    lam.update_function_code(FunctionName="staged", ZipFile=b"exports.handler = async () => 'two';")
    out, payload = invoke_json(lam, "staged", Qualifier="1")
    assert (payload, out["ExecutedVersion"]) == ("one", "1")
    assert invoke_json(lam, "staged")[1] == "two"


def test_invoke_unknown_function_is_404_naming_latest(lam):
    assert_error(lambda: lam.invoke(FunctionName="ghost"), "ResourceNotFoundException", 404,
                 f"Function not found: arn:aws:lambda:{REGION}:{ACCOUNT}:function:ghost:$LATEST")


def test_invoke_payload_that_is_not_json_is_400(lam):
    create_function(lam, "strict-json")
    assert_error(lambda: lam.invoke(FunctionName="strict-json", Payload=b"hello"),
                 "InvalidRequestContentException", 400,
                 "Could not parse request body into json: Could not parse payload into json: ")


@pytest.mark.parametrize("payload, problem, column", [
    # as AWS recorded them
    (b"n\x87r\x9e\xe9\xb5\xd7I\xee\x9bmt", "Invalid UTF-8 start byte 0x87", 3),
    (b"\x99\xeb,j\x07\xa1zYh", "Unexpected character ((CTRL-CHAR, code 153)): expected a valid "
     "value (JSON String, Number, Array, Object or token 'null', 'true' or 'false')", 1),
    # in the words of the parser AWS uses (Jackson)
    (b"hello", "Unrecognized token 'hello': was expecting (JSON String, Number, Array, Object or "
     "token 'null', 'true' or 'false')", 6),
    (b'{"a": 1 "b": 2}', "Unexpected character ('\"' (code 34)): was expecting comma to separate "
     "Object entries", 9),
    (b"{a: 1}", "Unexpected character ('a' (code 97)): was expecting double-quote to start field "
     "name", 2),
])
def test_invoke_payload_that_is_not_json_is_refused_in_jacksons_words(lam, payload, problem,
                                                                      column):
    create_function(lam, "strict-json")
    message = assert_error(lambda: lam.invoke(FunctionName="strict-json", Payload=payload),
                           "InvalidRequestContentException", 400)
    assert message == ("Could not parse request body into json: Could not parse payload into "
                       f"json: {problem}\n at [Source: REDACTED (`StreamReadFeature.INCLUDE_"
                       f"SOURCE_IN_LOCATION` disabled); line: 1, column: {column}]")


def test_invoke_bad_invocation_type_is_validation_error(lam):
    create_function(lam, "typed")
    assert_error(lambda: lam.invoke(FunctionName="typed", InvocationType="Sometimes"),
                 "ValidationException", 400,
                 "Value 'Sometimes' at 'invocationType' failed to satisfy constraint: Member must "
                 "satisfy enum value set: [Event, RequestResponse, DryRun]")


def test_invoke_payload_over_6_mb_is_413(lam):
    create_function(lam, "big")
    payload = json.dumps({"x": "a" * (6 * 1024 * 1024)})
    assert_error(lambda: lam.invoke(FunctionName="big", Payload=payload),
                 "RequestEntityTooLargeException", 413,
                 "Request must be smaller than 6291456 bytes for the InvokeFunction operation")


def test_invoke_response_over_6_mb_is_a_function_error(lam):
    create_function(lam, "huge", code=b"exports.handler = async () => 'a'.repeat(6300000);")
    out, payload = invoke_json(lam, "huge")
    assert out["FunctionError"] == "Unhandled"
    assert payload == {"errorMessage": "Response payload size exceeded maximum allowed payload "
                                       "size (6291556 bytes).",
                       "errorType": "Function.ResponseSizeTooLarge"}


@pytest.mark.parametrize("code, handler, error_type, fragment", [
    (b"exports.other = async () => 1;", "index.handler", "Runtime.HandlerNotFound",
     "index.handler is undefined or not exported"),
    (zip_of({"index.js": "exports.handler = async () => 1;"}), "missing.handler",
     "Runtime.ImportModuleError", "Error: Cannot find module 'missing'"),
    (b"require('not-installed'); exports.handler = async () => 1;", "index.handler",
     "Runtime.ImportModuleError", "Cannot find module 'not-installed'"),
    (b"exports.handler = async () => {{{", "index.handler", "Runtime.UserCodeSyntaxError",
     "SyntaxError"),
    (b"exports.handler = async () => process.exit(3);", "index.handler", "Runtime.ExitError",
     "Runtime exited with error: exit status 3"),
])
def test_invoke_runtime_errors_as_lambda_reports_them(lam, code, handler, error_type, fragment):
    create_function(lam, "broken", code=code, Handler=handler)
    out, payload = invoke_json(lam, "broken")
    assert out["FunctionError"] == "Unhandled"
    assert payload["errorType"] == error_type and fragment in payload["errorMessage"], payload


def test_invoke_es_module_raw_source_and_zip_with_local_imports(lam):
    create_function(lam, "esm", code=b"export const handler = async (e) => ({ esm: e.v });")
    assert invoke_json(lam, "esm", {"v": 1})[1] == {"esm": 1}
    package = zip_of({"src/app.mjs": "import { twice } from './lib.mjs';\n"
                                     "export const handler = async (e) => twice(e.v);\n",
                      "src/lib.mjs": "export const twice = (v) => v * 2;\n"})
    create_function(lam, "zipped", code=package, Handler="src/app.handler")
    assert invoke_json(lam, "zipped", {"v": 5})[1] == 10


def fake_node_sdk(directory):
    """A node_modules holding a stand-in for an AWS SDK v3 client, and a package beside it."""
    client = directory / "@aws-sdk" / "client-fake"
    client.mkdir(parents=True)
    (client / "package.json").write_text('{"name": "@aws-sdk/client-fake", "main": "index.js"}')
    (client / "index.js").write_text("exports.origin = 'the runtime SDK';\n")
    (directory / "left-pad").mkdir()
    (directory / "left-pad" / "index.js").write_text("module.exports = 'global';\n")
    return directory


@pytest.mark.parametrize("lambda_paths", [True, False])
def test_node_handlers_require_and_import_the_sdk_the_runtime_ships(tmp_path, lambda_paths):
    sdk = fake_node_sdk(tmp_path / "prefix" / "node_modules")
    with LambdaServer(0, node_sdk=str(sdk), lambda_paths=lambda_paths) as server:
        lam = client_for(server)
        create_function(lam, "required", code=(
            b"exports.handler = async () => require('@aws-sdk/client-fake').origin;"))
        assert invoke_json(lam, "required")[1] == "the runtime SDK"
        create_function(lam, "imported", code=(
            b"import { origin } from '@aws-sdk/client-fake';\n"
            b"export const handler = async () => origin;"))
        assert invoke_json(lam, "imported")[1] == "the runtime SDK"
        bundled = zip_of({"index.js": "exports.handler = async () => "
                                      "require('@aws-sdk/client-fake').origin;",
                          "node_modules/@aws-sdk/client-fake/index.js":
                              "exports.origin = 'bundled';"})
        create_function(lam, "bundled", code=bundled)
        assert invoke_json(lam, "bundled")[1] == "bundled"          # the package's own first
        source = tmp_path / "src"
        source.mkdir()
        (source / "index.js").write_text(
            "exports.handler = async () => require('@aws-sdk/client-fake').origin;")
        create_function(lam, "live", Code={"S3Bucket": "hot-reload", "S3Key": str(source)})
        assert invoke_json(lam, "live")[1] == "the runtime SDK"      # outside the code root
        create_function(lam, "beside", code=(
            b"const pad = require('left-pad');\nexports.handler = async () => pad;"))
        out, error = invoke_json(lam, "beside")                      # only the SDK is shipped
        assert error["errorType"] == "Runtime.ImportModuleError", error
    with pytest.raises(ValueError, match="has no @aws-sdk directory"):
        LambdaServer(0, node_sdk=str(tmp_path))


def test_without_an_sdk_a_node_handler_that_needs_it_fails_and_the_log_says_how_to_provide_it(
        capfd):
    with LambdaServer(0, prestart=False, log_level="warning") as server:
        server.store.runner.house.node_sdk = None       # whatever this machine has installed
        lam = client_for(server)
        create_function(lam, "needs-sdk", code=(
            b"const { S3Client } = require('@aws-sdk/client-s3');\n"
            b"exports.handler = async () => 1;"))
        out, error = invoke_json(lam, "needs-sdk")
        create_function(lam, "needs-requests", Runtime="python3.12", Handler="app.handler",
                        code=b"import requests\ndef handler(e, c):\n    return 1\n")
        invoke_json(lam, "needs-requests")
    assert error["errorType"] == "Runtime.ImportModuleError"
    assert "Cannot find module '@aws-sdk/client-s3'" in error["errorMessage"]
    log = capfd.readouterr().err
    assert "npm install -g @aws-sdk/client-s3, or point LAMBDA_FAKE_NODE_SDK" in log
    assert "bundle requests in the package (pip install --target) or in a layer" in log


def test_python_handlers_import_what_lambda_ships_and_not_the_servers_site_packages(lam):
    source = (b"import importlib, importlib.metadata, sys\n"
              b"def handler(event, context):\n"
              b"    found = {}\n"
              b"    for name in event['modules']:\n"
              b"        try:\n"
              b"            importlib.import_module(name)\n"
              b"            found[name] = True\n"
              b"        except ImportError:\n"
              b"            found[name] = False\n"
              b"    return {'found': found, 'boto3': importlib.metadata.version('boto3')}\n")
    create_function(lam, "imports", code=source, Runtime="python3.12", Handler="app.handler")
    shipped = ["boto3", "botocore", "s3transfer", "jmespath", "dateutil", "six", "urllib3"]
    server_only = ["pytest", "_pytest", "pluggy", "lambda_fake"]    # all importable here
    out, seen = invoke_json(lam, "imports", {"modules": shipped + server_only})
    assert seen["found"] == {**{name: True for name in shipped},
                             **{name: False for name in server_only}}, seen
    assert seen["boto3"] == boto3.__version__
    create_function(lam, "needs-pytest", code=b"import pytest\ndef handler(e, c):\n    return 1\n",
                    Runtime="python3.12", Handler="app.handler")
    out, error = invoke_json(lam, "needs-pytest")
    assert out["FunctionError"] == "Unhandled"
    assert error["errorType"] == "Runtime.ImportModuleError"
    assert error["errorMessage"] == "Unable to import module 'app': No module named 'pytest'"


def test_a_python_package_and_its_layers_come_before_the_runtimes_boto3(lam):
    shadow = {"boto3/__init__.py": "__version__ = 'bundled'\n"}
    create_function(lam, "bundled", Runtime="python3.12", Handler="app.handler",
                    code=zip_of({"app.py": "import boto3\n"
                                           "def handler(e, c):\n    return boto3.__version__\n",
                                 **shadow}))
    assert invoke_json(lam, "bundled")[1] == "bundled"
    layer = lam.publish_layer_version(LayerName="sdk", Content={"ZipFile": zip_of(
        {"python/boto3/__init__.py": "__version__ = 'from a layer'\n"})})
    create_function(lam, "layered", Runtime="python3.12", Handler="app.handler",
                    Layers=[layer["LayerVersionArn"]],
                    code=b"import boto3\ndef handler(e, c):\n    return boto3.__version__\n")
    assert invoke_json(lam, "layered")[1] == "from a layer"


def test_invoke_python_handler(lam):
    source = (b"import os\n"
              b"def handler(event, context):\n"
              b"    print('from python')\n"
              b"    return {'sum': event['a'] + event['b'], 'name': context.function_name,\n"
              b"            'left': context.get_remaining_time_in_millis() > 0}\n")
    create_function(lam, "py", code=source, Runtime="python3.12", Handler="app.handler")
    out = lam.invoke(FunctionName="py", Payload=b'{"a": 1, "b": 2}', LogType="Tail")
    assert json.loads(out["Payload"].read()) == {"sum": 3, "name": "py", "left": True}
    assert "from python\n" in decoded_log(out)


def test_invoke_python_exception_is_shaped_as_the_python_runtime_shapes_it(lam):
    create_function(lam, "pyerr", Runtime="python3.12", Handler="app.handler",
                    code=b"def handler(event, context):\n    raise ValueError('nope')\n")
    out, payload = invoke_json(lam, "pyerr")
    assert out["FunctionError"] == "Unhandled"
    request_id = out["ResponseMetadata"]["HTTPHeaders"]["x-amzn-requestid"]
    assert payload["errorMessage"] == "nope" and payload["errorType"] == "ValueError"
    assert payload["requestId"] == request_id
    assert "raise ValueError('nope')" in payload["stackTrace"][0]


@pytest.mark.parametrize("overrides, reason", [
    ({"Runtime": "java21", "Handler": "example.Handler::handleRequest"},
     "the runtime java21 cannot run here"),
    ({"Code": {"ZipFile": b"\x00\xff\xfe binary, not a zip"}},
     "neither a zip archive nor source text"),
    ({"Code": {"S3Bucket": "my-bucket", "S3Key": "code.zip"}},
     "the code is in S3 (my-bucket/code.zip)"),
])
def test_invoke_echoes_the_payload_when_code_cannot_run(lam, overrides, reason):
    params = dict(FunctionName="echo", Runtime="nodejs20.x", Role=ROLE, Handler="index.handler",
                  Code={"ZipFile": DOUBLER})
    params.update(overrides)
    lam.create_function(**params)
    out = lam.invoke(FunctionName="echo", Payload=b'{"same": true}', LogType="Tail")
    assert json.loads(out["Payload"].read()) == {"same": True}
    assert reason in decoded_log(out)


def test_invoke_echoes_when_node_is_missing(server, lam, monkeypatch):
    monkeypatch.setattr(server.store.runner.house, "node", None)
    create_function(lam, "nonode")
    out = lam.invoke(FunctionName="nonode", Payload=b'{"n": 2}', LogType="Tail")
    assert json.loads(out["Payload"].read()) == {"n": 2}
    assert "node was not found on PATH" in decoded_log(out)


# InvokeAsync and InvokeWithResponseStream

def test_invoke_async_answers_202_and_runs_in_the_background(lam, tmp_path):
    marker = tmp_path / "ran"
    create_function(lam, "async", code=WRITER)
    out = lam.invoke_async(FunctionName="async", InvokeArgs=json.dumps({"path": str(marker)}))
    assert out["Status"] == 202
    assert wait_for(marker.exists)
    assert marker.read_text() == "yes"


def test_invoke_async_unknown_function_is_404(lam):
    assert_error(lambda: lam.invoke_async(FunctionName="ghost", InvokeArgs=b"{}"),
                 "ResourceNotFoundException", 404, f"{FUNCTIONS}:ghost")


def test_invoke_with_response_stream_payload_chunks_then_invoke_complete(lam):
    create_function(lam)
    out = lam.invoke_with_response_stream(FunctionName="fn", Payload=b'{"n": 2}')
    assert (out["StatusCode"], out["ExecutedVersion"]) == (200, "$LATEST")
    events = stream_events(out)
    assert [list(e) for e in events[:-1]] == [["PayloadChunk"]] * (len(events) - 1)
    body = b"".join(e["PayloadChunk"]["Payload"] for e in events[:-1])
    assert json.loads(body) == {"doubled": 4, "fn": "fn"}
    assert events[-1] == {"InvokeComplete": {}}


def test_invoke_with_response_stream_thrown_error_is_reported_by_invoke_complete(lam):
    create_function(lam, "thrower", code=THROWER)
    out = lam.invoke_with_response_stream(FunctionName="thrower", Payload=b"{}")
    events = stream_events(out)
    assert out["StatusCode"] == 200
    assert [list(e) for e in events] == [["InvokeComplete"]]
    complete = events[0]["InvokeComplete"]
    assert complete["ErrorCode"]
    assert json.loads(complete["ErrorDetails"])["errorMessage"] == "bad input"


def test_invoke_with_response_stream_tail_puts_log_in_invoke_complete(lam):
    create_function(lam, "talker", code=b"exports.handler = async () => { console.log('hello log');"
                                         b" return 1; };")
    out = lam.invoke_with_response_stream(FunctionName="talker", Payload=b"{}", LogType="Tail")
    complete = stream_events(out)[-1]["InvokeComplete"]
    log = base64.b64decode(complete["LogResult"]).decode()
    assert "hello log" in log and "REPORT RequestId" in log


def test_invoke_with_response_stream_dry_run_answers_204_and_runs_nothing(lam, tmp_path):
    marker = tmp_path / "ran"
    create_function(lam, "dry", code=WRITER)
    out = lam.invoke_with_response_stream(FunctionName="dry", InvocationType="DryRun",
                                          Payload=json.dumps({"path": str(marker)}))
    assert out["StatusCode"] == 204
    assert not marker.exists()


def test_invoke_with_response_stream_event_invocation_type_is_validation_error(lam):
    create_function(lam)
    assert_error(lambda: lam.invoke_with_response_stream(FunctionName="fn", InvocationType="Event"),
                 "ValidationException", 400,
                 "Value 'Event' at 'invocationType' failed to satisfy constraint: Member must "
                 "satisfy enum value set: [RequestResponse, DryRun]")


def test_invoke_with_response_stream_unknown_function_is_404(lam):
    assert_error(lambda: lam.invoke_with_response_stream(FunctionName="ghost"),
                 "ResourceNotFoundException", 404, f"Function not found: {FUNCTIONS}:ghost")


# Response streaming

STREAMER = (b"exports.handler = awslambda.streamifyResponse(async (event, stream) => {\n"
            b"  for (const part of ['one;', 'two;', 'three;']) {\n"
            b"    stream.write(part); await new Promise((r) => setTimeout(r, 20)); }\n"
            b"  stream.end(); });\n")


def test_invoke_with_response_stream_sends_each_write_as_a_chunk(lam):
    create_function(lam, "streamer", code=STREAMER)
    out = lam.invoke_with_response_stream(FunctionName="streamer", LogType="Tail")
    assert out["ResponseMetadata"]["HTTPHeaders"]["content-type"] \
        == "application/vnd.amazon.eventstream"
    assert out["ExecutedVersion"] == "$LATEST"
    events = list(out["EventStream"])
    assert [e["PayloadChunk"]["Payload"] for e in events[:-1]] == [b"one;", b"two;", b"three;"]
    complete = events[-1]["InvokeComplete"]
    assert "ErrorCode" not in complete \
        and "START RequestId" in base64.b64decode(complete["LogResult"]).decode()


def test_invoke_with_response_stream_of_a_plain_handler_is_one_chunk(lam):
    create_function(lam, "plain", code=b"exports.handler = async () => ({ a: 1 });")
    events = list(lam.invoke_with_response_stream(FunctionName="plain")["EventStream"])
    assert events == [{"PayloadChunk": {"Payload": b'{"a":1}'}}, {"InvokeComplete": {}}]


def test_invoke_with_response_stream_handler_error_is_reported_in_invoke_complete(lam):
    create_function(lam, "fails",
                    code=b"exports.handler = async () => { throw new RangeError('no'); };")
    events = list(lam.invoke_with_response_stream(FunctionName="fails")["EventStream"])
    complete = events[-1]["InvokeComplete"]
    assert complete["ErrorCode"] == "Unhandled"
    assert json.loads(complete["ErrorDetails"])["errorType"] == "RangeError"


def test_invoke_of_a_streaming_handler_answers_everything_it_wrote(lam):
    create_function(lam, "streamer", code=STREAMER)
    assert lam.invoke(FunctionName="streamer")["Payload"].read() == b"one;two;three;"


def test_invoke_with_response_stream_throttled_before_streaming_is_429(lam):
    create_function(lam, "streamer", code=STREAMER)
    lam.put_function_concurrency(FunctionName="streamer", ReservedConcurrentExecutions=0)
    assert_throttled(lambda: lam.invoke_with_response_stream(FunctionName="streamer"))


def test_function_url_response_stream_sends_the_prelude_status_and_chunks(server, lam):
    create_function(lam, "web-stream", code=(
        b"exports.handler = awslambda.streamifyResponse(async (event, stream) => {\n"
        b"  stream = awslambda.HttpResponseStream.from(stream, { statusCode: 203,\n"
        b"    headers: { 'content-type': 'text/plain', 'x-kind': 'stream' } });\n"
        b"  stream.write('a'); await new Promise((r) => setTimeout(r, 20)); "
        b"stream.end('b'); });\n"))
    url = lam.create_function_url_config(FunctionName="web-stream", AuthType="NONE",
                                         InvokeMode="RESPONSE_STREAM")["FunctionUrl"]
    status, headers, body = url_request(server, url)
    assert (status, body) == (203, b"ab")
    assert ("Transfer-Encoding", "chunked") in headers and ("x-kind", "stream") in headers
    assert ("Content-Type", "text/plain") in headers


@pytest.mark.parametrize("mode", ["BUFFERED", "RESPONSE_STREAM"])
def test_function_url_throttled_answers_as_a_url_in_both_invoke_modes(server, lam, mode):
    create_function(lam, "busy-url", code=STREAMER)
    url = lam.create_function_url_config(FunctionName="busy-url", AuthType="NONE",
                                         InvokeMode=mode)["FunctionUrl"]
    lam.put_function_concurrency(FunctionName="busy-url", ReservedConcurrentExecutions=0)
    status, headers, body = url_request(server, url)
    assert (status, body) == (429, b'{"Message":"Too Many Requests"}')
    assert ("x-amzn-ErrorType", "TooManyRequestsException") in headers


def test_a_streaming_client_that_goes_away_leaves_no_busy_worker_behind():
    with LambdaServer(0, max_workers=1) as small:
        lam = client_for(small)
        create_function(lam, "long-stream", code=(
            b"exports.handler = awslambda.streamifyResponse(async (event, stream) => {\n"
            b"  for (let i = 0; i < 50; i++) { stream.write('x'.repeat(65536));\n"
            b"    await new Promise((r) => setTimeout(r, 20)); }\n"
            b"  stream.end(); });\n"))
        for _ in range(2):
            with socket.create_connection(("127.0.0.1", small.port), timeout=20) as client:
                client.sendall(b"POST /2021-11-15/functions/long-stream/"
                               b"response-streaming-invocations HTTP/1.1\r\n"
                               b"Host: x\r\nContent-Length: 2\r\n\r\n{}")
                client.recv(1000)
                client.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            pool = small.store.runner.pool
            assert wait_for(lambda: not pool.inflight_of(arn("long-stream")))
        create_function(lam, "after", code=b"exports.handler = async () => 'served';")
        assert invoke_json(lam, "after")[1] == "served"         # the pool's one place is free


# ----------------------------------------------------------------------------------------------
# Versions and aliases
# ----------------------------------------------------------------------------------------------

# Versions: PublishVersion, ListVersionsByFunction, DeleteFunction with a Qualifier

def test_publish_version_returns_version_1_with_qualified_arn(lam):
    create_function(lam, code=CODE, Description="from latest")
    out = lam.publish_version(FunctionName="fn")
    assert out["ResponseMetadata"]["HTTPStatusCode"] == 201
    assert out["FunctionArn"] == arn("fn", "1")
    assert (out["Version"], out["Description"]) == ("1", "from latest")
    assert (out["State"], out["LastUpdateStatus"]) == ("Active", "Successful")
    assert out["CodeSha256"] == sha256_b64(CODE)


def test_publish_version_uses_given_description(lam):
    create_function(lam, code=CODE, Description="from latest")
    out = lam.publish_version(FunctionName="fn", Description="First version description :)")
    assert out["Description"] == "First version description :)"


def test_publish_version_unchanged_function_returns_last_version(lam):
    create_function(lam, code=CODE)
    first = lam.publish_version(FunctionName="fn", Description="Second version :))")
    again = lam.publish_version(FunctionName="fn", Description="Third version description :)))")
    assert again["ResponseMetadata"]["HTTPStatusCode"] == 201
    assert (again["Version"], again["RevisionId"]) == ("1", first["RevisionId"])
    assert again["Description"] == "Second version :))"


def test_publish_version_after_create_with_publish_returns_version_1(lam):
    create_function(lam, code=CODE, Publish=True)
    assert lam.publish_version(FunctionName="fn")["Version"] == "1"


def test_publish_version_after_a_change_gets_the_next_number(lam):
    with_versions(lam, 1)
    change(lam, value=2)
    assert lam.publish_version(FunctionName="fn")["Version"] == "2"


def test_publish_version_never_reuses_a_deleted_number(lam):
    with_versions(lam, 2)
    lam.delete_function(FunctionName="fn:1")
    change(lam, value=3)
    assert lam.publish_version(FunctionName="fn")["Version"] == "3"


def test_publish_version_changes_latest_revision_id(lam):
    before = create_function(lam, code=CODE)["RevisionId"]
    version = lam.publish_version(FunctionName="fn")
    after = lam.get_function(FunctionName="fn")["Configuration"]["RevisionId"]
    assert after != before and version["RevisionId"] not in (before, after)


def test_publish_version_stale_revision_is_412(lam):
    create_function(lam, code=CODE)
    message = assert_error(
        lambda: lam.publish_version(FunctionName="fn", RevisionId=STALE_REVISION),
        "PreconditionFailedException", 412)
    assert message == REVISION_MISMATCH


def test_publish_version_other_code_sha_is_400(lam):
    create_function(lam, code=CODE)
    message = assert_error(
        lambda: lam.publish_version(FunctionName="fn", CodeSha256="somenonexistentsha256"),
        "InvalidParameterValueException", 400)
    assert message == ("CodeSHA256 (somenonexistentsha256) is different from current CodeSHA256 "
                       f"in $LATEST ({sha256_b64(CODE)}). Please try again with the CodeSHA256 "
                       "in $LATEST.")


def test_list_versions_by_function_latest_first_with_qualified_arns(lam):
    with_versions(lam, 2)
    versions = lam.list_versions_by_function(FunctionName="fn")["Versions"]
    assert [v["Version"] for v in versions] == ["$LATEST", "1", "2"]
    assert [v["FunctionArn"] for v in versions] == [arn("fn", "$LATEST"), arn("fn", "1"),
                                                   arn("fn", "2")]


def test_list_versions_by_function_items_omit_state_and_runtime_version(lam):
    with_versions(lam, 1)
    versions = lam.list_versions_by_function(FunctionName="fn")["Versions"]
    hidden = {"State", "StateReason", "StateReasonCode", "LastUpdateStatus",
              "LastUpdateStatusReason", "LastUpdateStatusReasonCode", "RuntimeVersionConfig"}
    assert all(not hidden & set(item) for item in versions)
    assert all({"RevisionId", "Description", "CodeSha256"} <= set(item) for item in versions)


def test_list_versions_by_function_pages_with_next_marker(lam):
    with_versions(lam, 2)
    first = lam.list_versions_by_function(FunctionName="fn", MaxItems=2)
    rest = lam.list_versions_by_function(FunctionName="fn", Marker=first["NextMarker"])
    assert [v["Version"] for v in first["Versions"]] == ["$LATEST", "1"]
    assert [v["Version"] for v in rest["Versions"]] == ["2"] and "NextMarker" not in rest


def test_delete_function_version_by_name_suffix_leaves_the_rest(lam):
    with_versions(lam, 2)
    out = lam.delete_function(FunctionName="fn:1")
    assert out["ResponseMetadata"]["HTTPStatusCode"] == 204
    versions = lam.list_versions_by_function(FunctionName="fn")["Versions"]
    assert [v["Version"] for v in versions] == ["$LATEST", "2"]


def test_delete_function_unknown_version_is_idempotent(lam):
    create_function(lam, code=CODE)
    for _ in range(2):
        out = lam.delete_function(FunctionName="fn", Qualifier="1233")
        assert out["ResponseMetadata"]["HTTPStatusCode"] == 204


@pytest.mark.parametrize("function_name, qualifier, code, status, message", [
    ("fn", "$LATEST", "InvalidParameterValueException", 400,
     "$LATEST version cannot be deleted without deleting the function."),
    ("nope", "$LATEST", "InvalidParameterValueException", 400,
     "$LATEST version cannot be deleted without deleting the function."),
    ("fn", "live", "InvalidParameterValueException", 400,
     "Deletion of aliases is not currently supported."),
    (f"{FUNCTIONS}:fn:1", "$LATEST", "InvalidParameterValueException", 400,
     "The derived qualifier from the function name does not match the specified qualifier."),
    ("nope", "1", "ResourceNotFoundException", 404, f"Function not found: {FUNCTIONS}:nope"),
])
def test_delete_function_qualifier_errors(lam, function_name, qualifier, code, status, message):
    with_versions(lam, 1)
    lam.create_alias(FunctionName="fn", Name="live", FunctionVersion="1")
    call = lambda: lam.delete_function(FunctionName=function_name, Qualifier=qualifier)  # noqa
    assert assert_error(call, code, status) == message


def test_delete_function_version_an_alias_points_at_is_409(lam):
    with_versions(lam, 1)
    lam.create_alias(FunctionName="fn", Name="live", FunctionVersion="1")
    message = assert_error(lambda: lam.delete_function(FunctionName="fn", Qualifier="1"),
                           "ResourceConflictException", 409)
    assert message == "Unable to delete version because the following aliases reference it: [live]"
    assert lam.get_function(FunctionName="fn", Qualifier="1")["Configuration"]["Version"] == "1"


def test_delete_function_without_qualifier_removes_versions_and_aliases(lam):
    with_versions(lam, 1)
    lam.create_alias(FunctionName="fn", Name="live", FunctionVersion="1")
    lam.delete_function(FunctionName="fn")
    create_function(lam, code=CODE)
    assert lam.list_aliases(FunctionName="fn")["Aliases"] == []
    assert len(lam.list_versions_by_function(FunctionName="fn")["Versions"]) == 1


# Aliases: CreateAlias, GetAlias, UpdateAlias, DeleteAlias, ListAliases, routing

def test_create_alias_returns_alias_configuration(lam):
    with_versions(lam, 1)
    out = lam.create_alias(FunctionName="fn", Name="live", FunctionVersion="1")
    assert out["ResponseMetadata"]["HTTPStatusCode"] == 201
    out.pop("ResponseMetadata")
    revision = out.pop("RevisionId")
    assert re.fullmatch(r"[0-9a-f-]{36}", revision)
    assert out == {"AliasArn": arn("fn", "live"), "Name": "live", "FunctionVersion": "1",
                   "Description": ""}


def test_create_alias_with_routing_config_echoes_it(lam):
    with_versions(lam, 2)
    out = lam.create_alias(FunctionName="fn", Name="aliasname1_1", FunctionVersion="1",
                           Description="custom-alias",
                           RoutingConfig={"AdditionalVersionWeights": {"2": 0.2}})
    assert out["Description"] == "custom-alias"
    assert out["RoutingConfig"] == {"AdditionalVersionWeights": {"2": 0.2}}


def test_create_alias_empty_routing_config_is_omitted(lam):
    with_versions(lam, 1)
    out = lam.create_alias(FunctionName="fn", Name="live", FunctionVersion="1",
                           RoutingConfig={"AdditionalVersionWeights": {}})
    assert "RoutingConfig" not in out


def test_create_alias_on_latest_is_allowed(lam):
    create_function(lam, code=CODE)
    out = lam.create_alias(FunctionName="fn", Name="latest", FunctionVersion="$LATEST")
    assert out["FunctionVersion"] == "$LATEST"


def test_create_alias_name_starting_with_a_digit_is_valid(lam):
    with_versions(lam, 1)
    assert lam.create_alias(FunctionName="fn", Name="2024-01-02", FunctionVersion="1")["Name"] \
        == "2024-01-02"


def test_create_alias_does_not_change_latest_revision_id(lam):
    with_versions(lam, 1)
    before = lam.get_function(FunctionName="fn")["Configuration"]["RevisionId"]
    lam.create_alias(FunctionName="fn", Name="live", FunctionVersion="1")
    assert lam.get_function(FunctionName="fn")["Configuration"]["RevisionId"] == before


@pytest.mark.parametrize("version, weights, code, status, message", [
    ("1", {"1": 0.8, "2": 0.2}, "InvalidParameterValueException", 400,
     "Number of items in AdditionalVersionWeights cannot be greater than 1"),
    ("1", {"2": 2}, "ValidationException", 400,
     "1 validation error detected: Value '{2=2.0}' at 'routingConfig.additionalVersionWeights' "
     f"failed to satisfy constraint: {WEIGHT_VALUE_CONSTRAINT}"),
    ("1", {"1": 0.5}, "InvalidParameterValueException", 400,
     "Invalid function version 1. Function version 1 is already included in routing "
     "configuration."),
    ("10", {}, "ResourceNotFoundException", 404, f"Function not found: {FUNCTIONS}:fn:10"),
    ("1", {"10": 0.5}, "ResourceNotFoundException", 404, f"Function not found: {FUNCTIONS}:fn:10"),
    ("$LATEST", {"1": 0.5}, "InvalidParameterValueException", 400,
     "$LATEST is not supported for an alias pointing to more than 1 version"),
    ("1", {"$LATEST": 0.5}, "ValidationException", 400,
     "1 validation error detected: Value '{$LATEST=0.5}' at "
     "'routingConfig.additionalVersionWeights' failed to satisfy constraint: "
     f"{WEIGHT_KEY_CONSTRAINT}"),
])
def test_create_alias_routing_config_validation(lam, version, weights, code, status, message):
    with_versions(lam, 2)
    call = lambda: lam.create_alias(  # noqa
        FunctionName="fn", Name="custom", FunctionVersion=version,
        RoutingConfig={"AdditionalVersionWeights": weights})
    assert assert_error(call, code, status) == message
    assert lam.list_aliases(FunctionName="fn")["Aliases"] == []


def test_create_alias_negative_weight_is_validation_error(server, lam):
    with_versions(lam, 2)
    status, code, body = raw_error(server, "POST", "/2015-03-31/functions/fn/aliases", {
        "Name": "custom", "FunctionVersion": "1",
        "RoutingConfig": {"AdditionalVersionWeights": {"2": -1}}})
    assert (status, code) == (400, "ValidationException")
    assert message_of(body) == ("1 validation error detected: Value '{2=-1.0}' at "
                                "'routingConfig.additionalVersionWeights' failed to satisfy "
                                f"constraint: {WEIGHT_VALUE_CONSTRAINT}")


def test_create_alias_unknown_function_is_404_naming_the_version(lam):
    message = assert_error(
        lambda: lam.create_alias(FunctionName="fn-unknown", Name="live", FunctionVersion="1"),
        "ResourceNotFoundException", 404)
    assert message == f"Function not found: {arn('fn-unknown', '1')}"


def test_create_alias_existing_name_is_409(lam):
    with_versions(lam, 1)
    lam.create_alias(FunctionName="fn", Name="custom", FunctionVersion="1")
    message = assert_error(
        lambda: lam.create_alias(FunctionName="fn", Name="custom", FunctionVersion="1"),
        "ResourceConflictException", 409)
    assert message == f"Alias already exists: {arn('fn', 'custom')}"


def test_create_alias_numeric_name_is_validation_error(lam):
    with_versions(lam, 1)
    message = assert_error(
        lambda: lam.create_alias(FunctionName="fn", Name="2024", FunctionVersion="1"),
        "ValidationException", 400)
    assert message == ("1 validation error detected: Value '2024' at 'name' failed to satisfy "
                       "constraint: Member must satisfy regular expression pattern: "
                       "(?!^[0-9]+$)([a-zA-Z0-9-_]+)")


def test_get_alias_returns_what_create_returned(lam):
    with_versions(lam, 2)
    created = lam.create_alias(FunctionName="fn", Name="live", FunctionVersion="1",
                               RoutingConfig={"AdditionalVersionWeights": {"2": 0.2}})
    got = lam.get_alias(FunctionName="fn", Name="live")
    assert got["ResponseMetadata"]["HTTPStatusCode"] == 200
    created.pop("ResponseMetadata"), got.pop("ResponseMetadata")
    assert got == created


def test_get_alias_unknown_alias_is_404(lam):
    create_function(lam, code=CODE)
    message = assert_error(lambda: lam.get_alias(FunctionName="fn", Name="non-existent"),
                           "ResourceNotFoundException", 404)
    assert message == f"Cannot find alias arn: {arn('fn', 'non-existent')}"


def test_update_alias_without_changes_gets_a_new_revision_id(lam):
    with_versions(lam, 1)
    created = lam.create_alias(FunctionName="fn", Name="live", FunctionVersion="1",
                               Description="kept")
    out = lam.update_alias(FunctionName="fn", Name="live")
    assert out["ResponseMetadata"]["HTTPStatusCode"] == 200
    assert out["RevisionId"] != created["RevisionId"]
    assert (out["FunctionVersion"], out["Description"]) == ("1", "kept")


def test_update_alias_moves_to_another_version_keeping_description(lam):
    with_versions(lam, 2)
    lam.create_alias(FunctionName="fn", Name="live", FunctionVersion="1", Description="kept")
    out = lam.update_alias(FunctionName="fn", Name="live", FunctionVersion="2")
    assert (out["FunctionVersion"], out["Description"]) == ("2", "kept")
    assert lam.get_alias(FunctionName="fn", Name="live")["FunctionVersion"] == "2"


def test_update_alias_empty_weights_remove_the_routing_config(lam):
    with_versions(lam, 2)
    lam.create_alias(FunctionName="fn", Name="live", FunctionVersion="1",
                     RoutingConfig={"AdditionalVersionWeights": {"2": 0.5}})
    out = lam.update_alias(FunctionName="fn", Name="live",
                           RoutingConfig={"AdditionalVersionWeights": {}})
    assert "RoutingConfig" not in out
    assert "RoutingConfig" not in lam.get_alias(FunctionName="fn", Name="live")


def test_update_alias_unknown_alias_is_404_alias_not_found(lam):
    create_function(lam, code=CODE)
    message = assert_error(
        lambda: lam.update_alias(FunctionName="fn", Name="non-existent", FunctionVersion="$LATEST"),
        "ResourceNotFoundException", 404)
    assert message == f"Alias not found: {arn('fn', 'non-existent')}"


def test_update_alias_stale_revision_is_412(lam):
    with_versions(lam, 1)
    lam.create_alias(FunctionName="fn", Name="live", FunctionVersion="1")
    message = assert_error(
        lambda: lam.update_alias(FunctionName="fn", Name="live", RevisionId=STALE_REVISION),
        "PreconditionFailedException", 412)
    assert message == REVISION_MISMATCH


@pytest.mark.parametrize("changes, code, status, message", [
    (dict(RoutingConfig={"AdditionalVersionWeights": {"1": 0.1, "2": 0.2}}),
     "InvalidParameterValueException", 400,
     "Number of items in AdditionalVersionWeights cannot be greater than 1"),
    (dict(RoutingConfig={"AdditionalVersionWeights": {"1": 0.5}}),
     "InvalidParameterValueException", 400,
     "Invalid function version 1. Function version 1 is already included in routing "
     "configuration."),
    (dict(FunctionVersion="9"), "ResourceNotFoundException", 404,
     f"Function not found: {FUNCTIONS}:fn:9"),
])
def test_update_alias_validation_changes_nothing(lam, changes, code, status, message):
    with_versions(lam, 2)
    before = lam.create_alias(FunctionName="fn", Name="live", FunctionVersion="1")
    call = lambda: lam.update_alias(FunctionName="fn", Name="live", **changes)  # noqa
    assert assert_error(call, code, status) == message
    after = lam.get_alias(FunctionName="fn", Name="live")
    assert (after["RevisionId"], "RoutingConfig" in after) == (before["RevisionId"], False)


def test_delete_alias_removes_it(lam):
    with_versions(lam, 1)
    lam.create_alias(FunctionName="fn", Name="live", FunctionVersion="1")
    out = lam.delete_alias(FunctionName="fn", Name="live")
    assert out["ResponseMetadata"]["HTTPStatusCode"] == 204
    assert lam.list_aliases(FunctionName="fn")["Aliases"] == []


def test_delete_alias_unknown_alias_is_204(lam):
    create_function(lam, code=CODE)
    out = lam.delete_alias(FunctionName="fn", Name="non-existent")
    assert out["ResponseMetadata"]["HTTPStatusCode"] == 204


def test_list_aliases_filters_by_function_version(lam):
    with_versions(lam, 2)
    for name, version in (("a", "1"), ("b", "2"), ("c", "1"), ("d", "1")):
        lam.create_alias(FunctionName="fn", Name=name, FunctionVersion=version)
    aliases = lam.list_aliases(FunctionName="fn", FunctionVersion="1")["Aliases"]
    assert sorted(a["Name"] for a in aliases) == ["a", "c", "d"]


def test_list_aliases_pages_and_includes_routing_config(lam):
    with_versions(lam, 2)
    lam.create_alias(FunctionName="fn", Name="a", FunctionVersion="1",
                     RoutingConfig={"AdditionalVersionWeights": {"2": 0.3}})
    lam.create_alias(FunctionName="fn", Name="b", FunctionVersion="2")
    pages = list(lam.get_paginator("list_aliases").paginate(FunctionName="fn",
                                                            PaginationConfig={"PageSize": 1}))
    aliases = [alias for page in pages for alias in page["Aliases"]]
    assert len(pages) == 2 and sorted(a["Name"] for a in aliases) == ["a", "b"]
    routed = {a["Name"]: a.get("RoutingConfig") for a in aliases}
    assert routed == {"a": {"AdditionalVersionWeights": {"2": 0.3}}, "b": None}


def test_get_function_via_alias_shows_alias_arn_and_target_version(lam):
    with_versions(lam, 2)
    lam.create_alias(FunctionName="fn", Name="aliasname1_1", FunctionVersion="1")
    config = lam.get_function(FunctionName="fn", Qualifier="aliasname1_1")["Configuration"]
    assert (config["FunctionArn"], config["Version"]) == (arn("fn", "aliasname1_1"), "1")


def test_get_function_unknown_alias_is_404(lam):
    create_function(lam, code=CODE)
    message = assert_error(lambda: lam.get_function(FunctionName=arn("fn", "aliasdoesnotexist")),
                           "ResourceNotFoundException", 404)
    assert message == f"Function not found: {arn('fn', 'aliasdoesnotexist')}"


def test_invoke_alias_reports_the_executed_version(lam):
    with_versions(lam, 2)
    lam.create_alias(FunctionName="fn", Name="live", FunctionVersion="1")
    out, result = invoke_json(lam, "fn:live", {"n": 4})
    assert (out["ExecutedVersion"], result["doubled"]) == ("1", 8)


def test_invoke_alias_after_update_alias_runs_the_new_version(lam):
    with_versions(lam, 2)
    lam.create_alias(FunctionName="fn", Name="live", FunctionVersion="1")
    lam.update_alias(FunctionName="fn", Name="live", FunctionVersion="2")
    out, _ = invoke_json(lam, "fn", {"n": 1}, Qualifier="live")
    assert out["ExecutedVersion"] == "2"


def test_invoke_alias_with_half_weight_runs_both_versions(lam):
    with_versions(lam, 2)
    lam.create_alias(FunctionName="fn", Name="live", FunctionVersion="1",
                     RoutingConfig={"AdditionalVersionWeights": {"2": 0.5}})
    executed = {invoke_json(lam, "fn:live", {"n": 1})[0]["ExecutedVersion"] for _ in range(60)}
    assert executed == {"1", "2"}


def test_invoke_alias_with_zero_weight_never_runs_the_extra_version(lam):
    with_versions(lam, 2)
    lam.create_alias(FunctionName="fn", Name="live", FunctionVersion="1",
                     RoutingConfig={"AdditionalVersionWeights": {"2": 0.0}})
    executed = {invoke_json(lam, "fn:live", {"n": 1})[0]["ExecutedVersion"] for _ in range(60)}
    assert executed == {"1"}


# ----------------------------------------------------------------------------------------------
# Permissions
# ----------------------------------------------------------------------------------------------

# Permissions: AddPermission, GetPolicy, RemovePermission, Put/Get/DeleteResourcePolicy

URL_CONDITIONS = dict(SourceArn="arn:aws:s3:::test-bucket", SourceAccount=ACCOUNT,
                      PrincipalOrgID="o-1234567890", FunctionUrlAuthType="NONE")
ALEXA_TOKEN = "amzn1.ask.skill.xxxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx"


@pytest.mark.parametrize("params, principal, condition", [
    (dict(Principal="s3.amazonaws.com", SourceArn="arn:aws:s3:::test-bucket"),
     {"Service": "s3.amazonaws.com"}, {"ArnLike": {"AWS:SourceArn": "arn:aws:s3:::test-bucket"}}),
    (dict(Principal="*", SourceAccount=ACCOUNT),
     "*", {"StringEquals": {"AWS:SourceAccount": ACCOUNT}}),
    (dict(Principal="lambda.amazonaws.com", SourceAccount=ACCOUNT),
     {"Service": "lambda.amazonaws.com"}, {"StringEquals": {"AWS:SourceAccount": ACCOUNT}}),
    (dict(Principal="223456789012"), {"AWS": "arn:aws:iam::223456789012:root"}, None),
    (dict(Principal="arn:aws:iam::123456789012:user/alice", SourceAccount=ACCOUNT),
     {"AWS": "arn:aws:iam::123456789012:user/alice"},
     {"StringEquals": {"AWS:SourceAccount": ACCOUNT}}),
    (dict(Principal="*", EventSourceToken=ALEXA_TOKEN),
     "*", {"StringEquals": {"lambda:EventSourceToken": ALEXA_TOKEN}}),
    (dict(Principal="*", Action="lambda:InvokeFunctionUrl", **URL_CONDITIONS), "*",
     {"StringEquals": {"AWS:SourceAccount": ACCOUNT, "lambda:FunctionUrlAuthType": "NONE",
                       "aws:PrincipalOrgID": "o-1234567890"},
      "ArnLike": {"AWS:SourceArn": "arn:aws:s3:::test-bucket"}}),
])
def test_add_permission_statement_as_aws_builds_it(lam, params, principal, condition):
    create_function(lam, code=CODE)
    out = statement_of(lam, StatementId="sid", **params)
    expected = {"Sid": "sid", "Effect": "Allow", "Principal": principal,
                "Action": params.get("Action", "lambda:InvokeFunction"), "Resource": arn("fn")}
    if condition:
        expected["Condition"] = condition
    assert out["ResponseMetadata"]["HTTPStatusCode"] == 201
    assert out["Statement"] == json.dumps(expected, separators=(",", ":"))


@pytest.mark.parametrize("qualifier", ["1", "live"])
def test_add_permission_qualified_statement_names_the_qualified_resource(lam, qualifier):
    with_versions(lam, 1)
    lam.create_alias(FunctionName="fn", Name="live", FunctionVersion="1")
    out = statement_of(lam, Qualifier=qualifier)
    assert json.loads(out["Statement"])["Resource"] == arn("fn", qualifier)
    assert json.loads(lam.get_policy(FunctionName="fn", Qualifier=qualifier)["Policy"])[
        "Statement"][0]["Resource"] == arn("fn", qualifier)


@pytest.mark.parametrize("params, code, status, message", [
    (dict(StatementId="example.com"), "ValidationException", 400,
     "1 validation error detected: Value 'example.com' at 'statementId' failed to satisfy "
     "constraint: Member must satisfy regular expression pattern: ([a-zA-Z0-9-_]+)"),
    (dict(FunctionName="fn:alias-not-42", Qualifier="42"), "InvalidParameterValueException", 400,
     "The derived qualifier from the function name does not match the specified qualifier."),
    (dict(Qualifier="$LATEST"), "InvalidParameterValueException", 400,
     "We currently do not support adding policies for $LATEST."),
    (dict(Principal="invalid.nonaws.com"), "InvalidParameterValueException", 400,
     "The provided principal was invalid. Please check the principal and try again."),
    (dict(FunctionName="doesnotexist"), "ResourceNotFoundException", 404,
     f"Function not found: {FUNCTIONS}:doesnotexist"),
    (dict(FunctionName="fn:alias-doesnotexist"), "ResourceNotFoundException", 404,
     f"Cannot find alias arn: {FUNCTIONS}:fn:alias-doesnotexist"),
    (dict(Qualifier="42"), "ResourceNotFoundException", 404,
     f"Function not found: {FUNCTIONS}:fn:42"),
    (dict(Qualifier="invalid-qualifier-with-?-char"), "ValidationException", 400,
     "1 validation error detected: Value 'invalid-qualifier-with-?-char' at 'qualifier' failed to "
     f"satisfy constraint: Member must satisfy regular expression pattern: {QUALIFIER_PATTERN}"),
    (dict(Qualifier="valid-with-$-but-doesnotexist"), "ResourceNotFoundException", 404,
     f"Function not found: {FUNCTIONS}:fn:valid-with-$-but-doesnotexist"),
])
def test_add_permission_validation(lam, params, code, status, message):
    create_function(lam, code=CODE)
    assert assert_error(lambda: statement_of(lam, **params), code, status) == message


def test_add_permission_duplicate_sid_is_409(lam):
    create_function(lam, code=CODE)
    statement_of(lam, StatementId="s3")
    message = assert_error(lambda: statement_of(lam, StatementId="s3"),
                           "ResourceConflictException", 409)
    assert message == ("The statement id (s3) provided already exists. Please provide a new "
                       "statement id, or remove the existing statement.")
    assert len(policy_statements(lam)) == 1


def test_add_permission_same_sid_in_each_scope_is_allowed(lam):
    with_versions(lam, 1)
    lam.create_alias(FunctionName="fn", Name="live", FunctionVersion="1")
    for qualifier in (None, "1", "live"):
        statement_of(lam, StatementId="s3", **({"Qualifier": qualifier} if qualifier else {}))
    assert [len(policy_statements(lam, **q)) for q in ({}, {"Qualifier": "1"},
                                                       {"Qualifier": "live"})] == [1, 1, 1]


def test_add_permission_stale_revision_is_412(lam):
    create_function(lam, code=CODE)
    statement_of(lam, StatementId="s3")
    message = assert_error(lambda: statement_of(lam, StatementId="s3_2", RevisionId=STALE_REVISION),
                           "PreconditionFailedException", 412)
    assert message == POLICY_REVISION_MISMATCH


def test_add_permission_with_policy_revision_id_succeeds(lam):
    create_function(lam, code=CODE)
    statement_of(lam, StatementId="s3")
    revision = lam.get_policy(FunctionName="fn")["RevisionId"]
    statement_of(lam, StatementId="s3_2", RevisionId=revision)
    after = lam.get_policy(FunctionName="fn")
    assert after["RevisionId"] != revision
    assert [s["Sid"] for s in json.loads(after["Policy"])["Statement"]] == ["s3", "s3_2"]


def test_add_permission_on_alias_accepts_the_alias_revision_id(lam):
    with_versions(lam, 1)
    alias = lam.create_alias(FunctionName="fn", Name="live", FunctionVersion="1")
    out = statement_of(lam, Qualifier="live", RevisionId=alias["RevisionId"])
    assert out["ResponseMetadata"]["HTTPStatusCode"] == 201


def test_get_policy_document_keeps_insertion_order(lam):
    create_function(lam, code=CODE)
    first = statement_of(lam, StatementId="b")["Statement"]
    second = statement_of(lam, StatementId="a", Principal="*")["Statement"]
    out = lam.get_policy(FunctionName="fn")
    document = {"Version": "2012-10-17", "Id": "default",
                "Statement": [json.loads(first), json.loads(second)]}
    assert out["Policy"] == json.dumps(document, separators=(",", ":"))
    assert re.fullmatch(r"[0-9a-f-]{36}", out["RevisionId"])


@pytest.mark.parametrize("function_name, qualifier", [
    ("fn", None), ("doesnotexist", None), ("fn", "77"), ("fn", "1")])
def test_get_policy_without_a_policy_is_404(lam, function_name, qualifier):
    create_function(lam, code=CODE)
    statement_of(lam, StatementId="s3")
    lam.remove_permission(FunctionName="fn", StatementId="s3")
    lam.publish_version(FunctionName="fn")
    params = {"Qualifier": qualifier} if qualifier else {}
    message = assert_error(lambda: lam.get_policy(FunctionName=function_name, **params),
                           "ResourceNotFoundException", 404)
    assert message == "The resource you requested does not exist."


def test_remove_permission_keeps_the_order_of_the_rest(lam):
    create_function(lam, code=CODE)
    for sid in ("a", "b", "c"):
        statement_of(lam, StatementId=sid)
    out = lam.remove_permission(FunctionName="fn", StatementId="b")
    assert out["ResponseMetadata"]["HTTPStatusCode"] == 204
    assert [s["Sid"] for s in policy_statements(lam)] == ["a", "c"]


@pytest.mark.parametrize("params, message", [
    (dict(FunctionName="doesnotexist"), f"No policy found for: {FUNCTIONS}:doesnotexist"),
    (dict(FunctionName="bare"), "No policy is associated with the given resource."),
    (dict(StatementId="non-existent"), "Statement non-existent is not found in resource policy."),
    (dict(FunctionName="fn:alias-doesnotexist"),
     f"Cannot find alias arn: {FUNCTIONS}:fn:alias-doesnotexist"),
])
def test_remove_permission_not_found(lam, params, message):
    create_function(lam, code=CODE)
    create_function(lam, "bare", code=CODE)
    statement_of(lam, StatementId="s3")
    call = lambda: lam.remove_permission(**dict(dict(FunctionName="fn", StatementId="s3"),  # noqa
                                                **params))
    assert assert_error(call, "ResourceNotFoundException", 404) == message


def test_remove_permission_stale_revision_is_412(lam):
    create_function(lam, code=CODE)
    statement_of(lam, StatementId="s3")
    message = assert_error(
        lambda: lam.remove_permission(FunctionName="fn", StatementId="s3",
                                      RevisionId=STALE_REVISION),
        "PreconditionFailedException", 412)
    assert message == REVISION_MISMATCH
    assert len(policy_statements(lam)) == 1


POLICY_DOCUMENT = {"Version": "2012-10-17", "Id": "default", "Statement": [
    {"Sid": "x", "Effect": "Allow", "Principal": {"AWS": "arn:aws:iam::223456789012:root"},
     "Action": "lambda:InvokeFunction", "Resource": f"{FUNCTIONS}:fn"}]}


def test_put_resource_policy_then_get_resource_policy_returns_it(lam):
    create_function(lam, code=CODE)
    put = lam.put_resource_policy(ResourceArn=arn(), Policy=json.dumps(POLICY_DOCUMENT))
    got = lam.get_resource_policy(ResourceArn=arn())
    assert put["ResponseMetadata"]["HTTPStatusCode"] == 200
    assert json.loads(got["Policy"]) == POLICY_DOCUMENT
    assert got["RevisionId"] == put["RevisionId"]


def test_put_resource_policy_stale_revision_is_412(lam):
    create_function(lam, code=CODE)
    lam.put_resource_policy(ResourceArn=arn(), Policy=json.dumps(POLICY_DOCUMENT))
    assert_error(lambda: lam.put_resource_policy(ResourceArn=arn(), RevisionId=STALE_REVISION,
                                                 Policy=json.dumps(POLICY_DOCUMENT)),
                 "PreconditionFailedException", 412)


def test_delete_resource_policy_then_get_resource_policy_is_404(lam):
    create_function(lam, code=CODE)
    lam.put_resource_policy(ResourceArn=arn(), Policy=json.dumps(POLICY_DOCUMENT))
    out = lam.delete_resource_policy(ResourceArn=arn())
    assert out["ResponseMetadata"]["HTTPStatusCode"] == 204
    assert_error(lambda: lam.get_resource_policy(ResourceArn=arn()),
                 "ResourceNotFoundException", 404)


def test_get_resource_policy_unknown_function_is_404(lam):
    assert_error(lambda: lam.get_resource_policy(ResourceArn=arn("nope")),
                 "ResourceNotFoundException", 404)


# ----------------------------------------------------------------------------------------------
# Concurrency
# ----------------------------------------------------------------------------------------------

# Concurrency: reserved and provisioned

def test_put_function_concurrency_returns_it_and_get_function_shows_it(lam):
    create_function(lam, code=CODE)
    out = lam.put_function_concurrency(FunctionName="fn", ReservedConcurrentExecutions=3)
    assert out["ResponseMetadata"]["HTTPStatusCode"] == 200
    assert out["ReservedConcurrentExecutions"] == 3
    assert lam.get_function(FunctionName="fn")["Concurrency"] == {"ReservedConcurrentExecutions": 3}
    assert lam.get_function_concurrency(FunctionName="fn")["ReservedConcurrentExecutions"] == 3


def test_get_function_concurrency_after_delete_is_an_empty_object(lam):
    create_function(lam, code=CODE)
    lam.put_function_concurrency(FunctionName="fn", ReservedConcurrentExecutions=0)
    out = lam.delete_function_concurrency(FunctionName="fn")
    assert out["ResponseMetadata"]["HTTPStatusCode"] == 204
    got = lam.get_function_concurrency(FunctionName="fn")
    got.pop("ResponseMetadata")
    assert got == {}
    assert "Concurrency" not in lam.get_function(FunctionName="fn")


@pytest.mark.parametrize("reserved", [900, 0])
def test_put_function_concurrency_up_to_leaving_100_unreserved(lam, reserved):
    create_function(lam, code=CODE)
    lam.put_function_concurrency(FunctionName="fn", ReservedConcurrentExecutions=900)
    out = lam.put_function_concurrency(FunctionName="fn", ReservedConcurrentExecutions=reserved)
    assert out["ReservedConcurrentExecutions"] == reserved


@pytest.mark.parametrize("first, second", [(0, 901), (0, 1001), (500, 401)])
def test_put_function_concurrency_below_100_unreserved_is_400(lam, first, second):
    create_function(lam, "a", code=CODE)
    create_function(lam, code=CODE)
    lam.put_function_concurrency(FunctionName="a", ReservedConcurrentExecutions=first)
    message = assert_error(
        lambda: lam.put_function_concurrency(FunctionName="fn",
                                             ReservedConcurrentExecutions=second),
        "InvalidParameterValueException", 400)
    assert message == RESERVED_BELOW_MINIMUM


def test_put_function_concurrency_unknown_function_is_404_naming_latest(lam):
    message = assert_error(
        lambda: lam.put_function_concurrency(FunctionName="doesnotexist",
                                             ReservedConcurrentExecutions=0),
        "ResourceNotFoundException", 404)
    assert message == f"Function not found: {arn('doesnotexist', '$LATEST')}"


@pytest.mark.parametrize("function_name", ["fn:$LATEST", "fn:1", f"{FUNCTIONS}:fn:live"])
def test_put_function_concurrency_qualified_name_is_400(lam, function_name):
    with_versions(lam, 1)
    lam.create_alias(FunctionName="fn", Name="live", FunctionVersion="1")
    message = assert_error(
        lambda: lam.put_function_concurrency(FunctionName=function_name,
                                             ReservedConcurrentExecutions=1),
        "InvalidParameterValueException", 400)
    assert message == NOT_ONLY_FUNCTIONS


def test_put_function_concurrency_below_provisioned_is_400(lam):
    with_versions(lam, 1)
    lam.put_provisioned_concurrency_config(FunctionName="fn", Qualifier="1",
                                           ProvisionedConcurrentExecutions=2)
    message = assert_error(
        lambda: lam.put_function_concurrency(FunctionName="fn", ReservedConcurrentExecutions=1),
        "InvalidParameterValueException", 400)
    assert message == (" ReservedConcurrentExecutions  1 should not be lower than function's total "
                       "provisioned concurrency [2].")


def test_reserved_concurrency_equal_to_provisioned_leaves_nothing_on_demand(lam):
    """As AWS records it: with reserved concurrency 1 and version 1 provisioned with 1, an
    invocation of $LATEST is throttled, while version 1 runs on its provisioned environment."""
    with_versions(lam, 1)
    lam.put_provisioned_concurrency_config(FunctionName="fn", Qualifier="1",
                                           ProvisionedConcurrentExecutions=1)
    lam.put_function_concurrency(FunctionName="fn", ReservedConcurrentExecutions=1)
    for qualifier in ("$LATEST", None):
        extra = {"Qualifier": qualifier} if qualifier else {}
        error = assert_error(lambda: lam.invoke(FunctionName="fn", **extra),
                             "TooManyRequestsException", 429)
        assert error == "Rate Exceeded."
    assert "FunctionError" not in lam.invoke(FunctionName="fn", Qualifier="1")
    lam.put_function_concurrency(FunctionName="fn", ReservedConcurrentExecutions=2)
    assert "FunctionError" not in lam.invoke(FunctionName="fn")      # one left on demand


def test_put_provisioned_concurrency_config_is_ready_at_once(lam):
    with_versions(lam, 1)
    out = lam.put_provisioned_concurrency_config(FunctionName="fn", Qualifier="1",
                                                 ProvisionedConcurrentExecutions=2)
    assert out["ResponseMetadata"]["HTTPStatusCode"] == 202
    out.pop("ResponseMetadata")
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\+0000", out.pop("LastModified"))
    assert out == {"RequestedProvisionedConcurrentExecutions": 2,
                   "AllocatedProvisionedConcurrentExecutions": 2,
                   "AvailableProvisionedConcurrentExecutions": 2, "Status": "READY"}


# Provisioned concurrency is real: its environments load before any invoke, and serve first.
PROVISIONED_PROBES = {
    "nodejs20.x": zip_of({"index.js": (
        "const loadedAt = Date.now() / 1000;\n"
        "exports.handler = async (event) => {\n"
        "  if (event.exit) process.exit(3);\n"
        "  await new Promise((done) => setTimeout(done, (event.sleep || 0) * 1000));\n"
        "  return {type: process.env.AWS_LAMBDA_INITIALIZATION_TYPE, pid: process.pid,\n"
        "          loadedAt};\n"
        "};\n")}),
    "python3.12": zip_of({"index.py": (
        "import os, time\n"
        "LOADED_AT = time.time()\n"
        "def handler(event, context):\n"
        "    if event.get('exit'):\n"
        "        os._exit(3)\n"
        "    time.sleep(event.get('sleep', 0))\n"
        "    return {'type': os.environ['AWS_LAMBDA_INITIALIZATION_TYPE'], 'pid': os.getpid(),\n"
        "            'loadedAt': LOADED_AT}\n")}),
}


def provisioned_probe(lam, runtime, count=2, qualifier="live", name="fn"):
    """A probe function with version 1, alias live -> 1, and `count` provisioned on `qualifier`."""
    create_function(lam, name, Runtime=runtime, code=PROVISIONED_PROBES[runtime])
    lam.publish_version(FunctionName=name)
    lam.create_alias(FunctionName=name, Name="live", FunctionVersion="1")
    return lam.put_provisioned_concurrency_config(FunctionName=name, Qualifier=qualifier,
                                                  ProvisionedConcurrentExecutions=count)


def invoke_together(lam, count, event, **params):
    """`count` invocations at once: their (response, payload) pairs."""
    results = [None] * count

    def call(index):
        results[index] = invoke_json(lam, event=event, **params)

    threads = [threading.Thread(target=call, args=(index,)) for index in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return results


@pytest.mark.parametrize("runtime", ["nodejs20.x", "python3.12"])
def test_provisioned_environments_init_before_any_invoke_and_serve_first(lam, runtime):
    assert provisioned_probe(lam, runtime, count=2)["Status"] == "READY"
    put_at = time.time()
    results = invoke_together(lam, 3, {"sleep": 0.3}, Qualifier="live", LogType="Tail")
    provisioned = [payload for out, payload in results
                   if payload["type"] == "provisioned-concurrency"]
    assert len(provisioned) == 2 and len({p["pid"] for p in provisioned}) == 2, results
    assert all(p["loadedAt"] < put_at for p in provisioned)
    for out, payload in results:        # a third at once spills over to a cold on-demand one
        assert ("Init Duration" in decoded_log(out)) == (payload["type"] == "on-demand")
    for _ in range(2):                  # the version the alias names: the provisioned ones first
        out, payload = invoke_json(lam, Qualifier="1")
        assert payload["pid"] in {p["pid"] for p in provisioned}
    assert invoke_json(lam)[1]["type"] == "on-demand"       # $LATEST has none


@pytest.mark.parametrize("runtime", ["nodejs20.x", "python3.12"])
def test_a_provisioned_environment_that_crashes_is_replaced(lam, runtime):
    provisioned_probe(lam, runtime, count=1, qualifier="1")
    first = invoke_json(lam, Qualifier="1")[1]
    out, _ = invoke_json(lam, event={"exit": True}, Qualifier="1")
    assert out["FunctionError"] == "Unhandled"
    assert wait_for(lambda: not alive(first["pid"]))
    time.sleep(0.5)                                         # its replacement loads meanwhile
    out, again = invoke_json(lam, Qualifier="1", LogType="Tail")
    assert again["type"] == "provisioned-concurrency" and again["pid"] != first["pid"]
    assert "Init Duration" not in decoded_log(out)


def test_provisioned_environments_outlive_idle_time_and_end_with_their_config():
    with LambdaServer(0, idle_seconds=0.2) as reaping:
        lam = client_for(reaping)
        provisioned_probe(lam, "python3.12", count=1)
        pid = invoke_json(lam, Qualifier="live")[1]["pid"]
        on_demand = invoke_json(lam)[1]["pid"]
        assert wait_for(lambda: not alive(on_demand))       # the reaper ends $LATEST's
        assert alive(pid)
        assert invoke_json(lam, Qualifier="live")[1]["pid"] == pid
        lam.delete_provisioned_concurrency_config(FunctionName="fn", Qualifier="live")
        assert wait_for(lambda: not alive(pid))


def test_provisioned_concurrency_follows_its_alias_to_another_version(lam):
    provisioned_probe(lam, "python3.12", count=1)
    before = invoke_json(lam, Qualifier="live")[1]["pid"]
    change(lam, value=2)
    lam.publish_version(FunctionName="fn")
    lam.update_alias(FunctionName="fn", Name="live", FunctionVersion="2")
    out, payload = invoke_json(lam, Qualifier="live", LogType="Tail")
    assert payload["type"] == "provisioned-concurrency" and payload["pid"] != before
    assert "Init Duration" not in decoded_log(out)
    assert wait_for(lambda: not alive(before))


@pytest.mark.parametrize("runtime", ["nodejs20.x", "python3.12"])
def test_provisioned_concurrency_whose_init_fails_is_failed(lam, runtime):
    source = {"nodejs20.x": {"index.js": "throw new Error('no init');\n"},
              "python3.12": {"index.py": "raise RuntimeError('no init')\n"}}[runtime]
    create_function(lam, Runtime=runtime, code=zip_of(source))
    lam.publish_version(FunctionName="fn")
    out = lam.put_provisioned_concurrency_config(FunctionName="fn", Qualifier="1",
                                                 ProvisionedConcurrentExecutions=1)
    assert (out["Status"], out["StatusReason"]) == ("FAILED", "FUNCTION_ERROR_INIT_FAILURE")
    got = lam.get_provisioned_concurrency_config(FunctionName="fn", Qualifier="1")
    assert got["Status"] == "FAILED" and got["AvailableProvisionedConcurrentExecutions"] == 0


def test_get_provisioned_concurrency_config_of_an_alias(lam):
    with_versions(lam, 1)
    lam.create_alias(FunctionName="fn", Name="live", FunctionVersion="1")
    put = lam.put_provisioned_concurrency_config(FunctionName="fn", Qualifier="live",
                                                 ProvisionedConcurrentExecutions=1)
    got = lam.get_provisioned_concurrency_config(FunctionName="fn", Qualifier="live")
    assert got["ResponseMetadata"]["HTTPStatusCode"] == 200
    put.pop("ResponseMetadata"), got.pop("ResponseMetadata")
    assert got == put


@pytest.mark.parametrize("operation, message", [
    ("put", "Provisioned Concurrency Configs cannot be applied to unpublished function versions."),
    ("get", "The function resource provided must be an alias or a published version."),
    ("delete", "The function resource provided must be an alias or a published version."),
])
def test_provisioned_concurrency_config_on_latest_is_400(lam, operation, message):
    create_function(lam, code=CODE)
    calls = {
        "put": lambda: lam.put_provisioned_concurrency_config(
            FunctionName="fn", Qualifier="$LATEST", ProvisionedConcurrentExecutions=1),
        "get": lambda: lam.get_provisioned_concurrency_config(FunctionName="fn",
                                                               Qualifier="$LATEST"),
        "delete": lambda: lam.delete_provisioned_concurrency_config(FunctionName="fn",
                                                                     Qualifier="$LATEST"),
    }
    assert assert_error(calls[operation], "InvalidParameterValueException", 400) == message


@pytest.mark.parametrize("operation, function_name, qualifier, message", [
    ("get", "doesnotexist", "noalias", f"Cannot find alias arn: {FUNCTIONS}:doesnotexist:noalias"),
    ("put", "doesnotexist", "noalias", f"Cannot find alias arn: {FUNCTIONS}:doesnotexist:noalias"),
    ("put", "doesnotexist", "1", f"Function not found: {FUNCTIONS}:doesnotexist:1"),
    ("delete", "doesnotexist", "1", f"Function not found: {FUNCTIONS}:doesnotexist:1"),
    ("get", "fn", "noalias", f"Cannot find alias arn: {FUNCTIONS}:fn:noalias"),
    ("put", "fn", "noalias", f"Cannot find alias arn: {FUNCTIONS}:fn:noalias"),
    ("delete", "fn", "noalias", f"Cannot find alias arn: {FUNCTIONS}:fn:noalias"),
    ("get", "fn", "10", f"Function not found: {FUNCTIONS}:fn:10"),
    ("put", "fn", "10", f"Function not found: {FUNCTIONS}:fn:10"),
    ("delete", "fn", "10", f"Function not found: {FUNCTIONS}:fn:10"),
])
def test_provisioned_concurrency_config_missing_target_is_404(lam, operation, function_name,
                                                              qualifier, message):
    with_versions(lam, 1)
    target = dict(FunctionName=function_name, Qualifier=qualifier)
    calls = {
        "put": lambda: lam.put_provisioned_concurrency_config(ProvisionedConcurrentExecutions=1,
                                                               **target),
        "get": lambda: lam.get_provisioned_concurrency_config(**target),
        "delete": lambda: lam.delete_provisioned_concurrency_config(**target),
    }
    assert assert_error(calls[operation], "ResourceNotFoundException", 404) == message


def test_get_provisioned_concurrency_config_without_config_is_404(lam):
    with_versions(lam, 1)
    message = assert_error(
        lambda: lam.get_provisioned_concurrency_config(FunctionName="fn", Qualifier="1"),
        "ProvisionedConcurrencyConfigNotFoundException", 404)
    assert message == "No Provisioned Concurrency Config found for this function"


def test_delete_provisioned_concurrency_config_without_config_is_204(lam):
    with_versions(lam, 1)
    out = lam.delete_provisioned_concurrency_config(FunctionName="fn", Qualifier="1")
    assert out["ResponseMetadata"]["HTTPStatusCode"] == 204


def test_delete_provisioned_concurrency_config_removes_it(lam):
    with_versions(lam, 1)
    lam.put_provisioned_concurrency_config(FunctionName="fn", Qualifier="1",
                                           ProvisionedConcurrentExecutions=1)
    lam.delete_provisioned_concurrency_config(FunctionName="fn", Qualifier="1")
    assert_error(lambda: lam.get_provisioned_concurrency_config(FunctionName="fn", Qualifier="1"),
                 "ProvisionedConcurrencyConfigNotFoundException", 404)


def test_delete_alias_removes_its_provisioned_concurrency_config(lam):
    with_versions(lam, 1)
    lam.create_alias(FunctionName="fn", Name="live", FunctionVersion="1")
    lam.put_provisioned_concurrency_config(FunctionName="fn", Qualifier="live",
                                           ProvisionedConcurrentExecutions=1)
    lam.delete_alias(FunctionName="fn", Name="live")
    lam.create_alias(FunctionName="fn", Name="live", FunctionVersion="1")
    assert_error(
        lambda: lam.get_provisioned_concurrency_config(FunctionName="fn", Qualifier="live"),
        "ProvisionedConcurrencyConfigNotFoundException", 404)


def test_list_provisioned_concurrency_configs_names_qualified_arns(lam):
    with_versions(lam, 2)
    lam.create_alias(FunctionName="fn", Name="BLUE", FunctionVersion="2")
    for qualifier in ("1", "BLUE"):
        lam.put_provisioned_concurrency_config(FunctionName="fn", Qualifier=qualifier,
                                               ProvisionedConcurrentExecutions=1)
    configs = lam.list_provisioned_concurrency_configs(FunctionName="fn")
    assert configs["ResponseMetadata"]["HTTPStatusCode"] == 200
    assert sorted(c["FunctionArn"] for c in configs["ProvisionedConcurrencyConfigs"]) == [
        arn("fn", "1"), arn("fn", "BLUE")]


def test_list_provisioned_concurrency_configs_without_configs_is_empty(lam):
    create_function(lam, code=CODE)
    assert lam.list_provisioned_concurrency_configs(FunctionName="fn")[
        "ProvisionedConcurrencyConfigs"] == []


@pytest.mark.parametrize("first, second, message", [
    ("1", "live", "Alias can't be used for Provisioned Concurrency configuration on an already "
                  "Provisioned version"),
    ("live", "1", "Version is pointed by a Provisioned Concurrency alias"),
])
def test_put_provisioned_concurrency_config_overlap_is_409(lam, first, second, message):
    with_versions(lam, 1)
    lam.create_alias(FunctionName="fn", Name="live", FunctionVersion="1")
    lam.put_provisioned_concurrency_config(FunctionName="fn", Qualifier=first,
                                           ProvisionedConcurrentExecutions=1)
    call = lambda: lam.put_provisioned_concurrency_config(  # noqa
        FunctionName="fn", Qualifier=second, ProvisionedConcurrentExecutions=1)
    assert assert_error(call, "ResourceConflictException", 409) == message


def test_put_provisioned_concurrency_config_zero_is_validation_error(server, lam):
    with_versions(lam, 1)
    status, code, body = raw_error(
        server, "PUT", "/2019-09-30/functions/fn/provisioned-concurrency?Qualifier=1",
        {"ProvisionedConcurrentExecutions": 0})
    assert (status, code) == (400, "ValidationException")
    assert message_of(body) == ("1 validation error detected: Value '0' at "
                                "'provisionedConcurrentExecutions' failed to satisfy constraint: "
                                "Member must have value greater than or equal to 1")


def test_put_provisioned_concurrency_config_above_reserved_is_400(lam):
    with_versions(lam, 1)
    lam.put_function_concurrency(FunctionName="fn", ReservedConcurrentExecutions=1)
    message = assert_error(
        lambda: lam.put_provisioned_concurrency_config(FunctionName="fn", Qualifier="1",
                                                       ProvisionedConcurrentExecutions=2),
        "InvalidParameterValueException", 400)
    assert message == ("Requested Provisioned Concurrency should not be greater than the "
                       "reservedConcurrentExecution for function")


@pytest.mark.parametrize("wanted, message", [
    (1001, "Specified ConcurrentExecutions for function is greater than account's unreserved "
           "concurrency [1000]."),
    (950, "Specified ConcurrentExecutions for function decreases account's "
          "UnreservedConcurrentExecution below its minimum value of [100]."),
])
def test_put_provisioned_concurrency_config_account_limits(lam, wanted, message):
    with_versions(lam, 1)
    call = lambda: lam.put_provisioned_concurrency_config(  # noqa
        FunctionName="fn", Qualifier="1", ProvisionedConcurrentExecutions=wanted)
    assert assert_error(call, "InvalidParameterValueException", 400) == message


# ----------------------------------------------------------------------------------------------
# Function URLs
# ----------------------------------------------------------------------------------------------

def test_create_function_url_config_returns_201_with_url_on_this_server(server, lam):
    create_function(lam, code=CODE)
    out = lam.create_function_url_config(FunctionName="fn", AuthType="NONE")
    assert status_of(out) == 201
    assert set(body_of(out)) == {"AuthType", "CreationTime", "FunctionArn", "FunctionUrl"}
    assert out["AuthType"] == "NONE" and out["FunctionArn"] == arn()
    assert re.fullmatch(rf"http://[a-z0-9]{{32}}\.lambda-url\.{REGION}\.localhost:{server.port}/",
                        out["FunctionUrl"]), out["FunctionUrl"]


def test_create_function_url_config_echoes_invoke_mode_when_given(lam):
    create_function(lam, code=CODE)
    out = lam.create_function_url_config(FunctionName="fn", AuthType="NONE", InvokeMode="BUFFERED")
    assert out["InvokeMode"] == "BUFFERED"


def test_create_function_url_config_for_alias_has_alias_arn(lam):
    with_alias(lam)
    out = lam.create_function_url_config(FunctionName="fn", Qualifier="live", AuthType="AWS_IAM")
    assert out["FunctionArn"] == arn("fn", "live") and out["AuthType"] == "AWS_IAM"


def test_create_function_url_config_after_delete_gets_a_new_url(lam):
    create_function(lam, code=CODE)
    old = lam.create_function_url_config(FunctionName="fn", AuthType="NONE")["FunctionUrl"]
    lam.delete_function_url_config(FunctionName="fn")
    new = lam.create_function_url_config(FunctionName="fn", AuthType="NONE")["FunctionUrl"]
    assert new != old


@pytest.mark.parametrize("qualifier", [None, "live"])
def test_create_function_url_config_twice_is_409(lam, qualifier):
    with_alias(lam)
    extra = {"Qualifier": qualifier} if qualifier else {}
    lam.create_function_url_config(FunctionName="fn", AuthType="NONE", **extra)
    message = assert_error(lambda: lam.create_function_url_config(
        FunctionName="fn", AuthType="NONE", **extra), "ResourceConflictException", 409)
    assert message == (f"Failed to create function url config for [functionArn = "
                       f"{arn('fn', qualifier)}]. Error message:  FunctionUrlConfig exists for "
                       "this Lambda function")


@pytest.mark.parametrize("name, qualifier", [
    ("doesnotexist", None), (arn("doesnotexist"), None), ("fn", "v1")])
def test_create_function_url_config_unknown_target_is_404(lam, name, qualifier):
    create_function(lam, code=CODE)
    extra = {"Qualifier": qualifier} if qualifier else {}
    message = assert_error(lambda: lam.create_function_url_config(
        FunctionName=name, AuthType="NONE", **extra), "ResourceNotFoundException", 404)
    assert message == "Function does not exist"


@pytest.mark.parametrize("operation", ["create", "get", "update", "delete"])
@pytest.mark.parametrize("name", ["fn", "doesnotexist"])
@pytest.mark.parametrize("qualifier", ["1", "$LATEST"])
def test_function_url_config_version_qualifier_is_validation_error(lam, operation, name,
                                                                    qualifier):
    with_alias(lam)
    extra = {"AuthType": "NONE"} if operation in ("create", "update") else {}
    call = getattr(lam, f"{operation}_function_url_config")
    message = assert_error(lambda: call(FunctionName=name, Qualifier=qualifier, **extra),
                           "ValidationException", 400)
    assert message == (f"1 validation error detected: Value '{qualifier}' at 'qualifier' failed "
                       "to satisfy constraint: Member must satisfy regular expression pattern: "
                       f"{URL_QUALIFIER_PATTERN}")


@pytest.mark.parametrize("operation", ["create", "get", "update"])
def test_function_url_config_derived_qualifier_mismatch_is_400(lam, operation):
    with_alias(lam)
    extra = {"AuthType": "NONE"} if operation in ("create", "update") else {}
    call = getattr(lam, f"{operation}_function_url_config")
    message = assert_error(lambda: call(FunctionName="fn:other", Qualifier="live", **extra),
                           "InvalidParameterValueException", 400)
    assert message == DERIVED_MISMATCH


@pytest.mark.parametrize("operation", ["create", "update"])
def test_function_url_config_cors_without_origins_is_refused(lam, operation):
    create_function(lam, code=CODE)
    if operation == "update":
        lam.create_function_url_config(FunctionName="fn", AuthType="NONE")
    call = getattr(lam, f"{operation}_function_url_config")
    message = assert_error(lambda: call(FunctionName="fn", AuthType="NONE",
                                        Cors={"AllowOrigins": [], "AllowMethods": ["GET"]}),
                           "InvalidParameterValueException", 400)
    assert message == "You can't leave AllowOrigins as empty when Cors is enabled."


def test_create_function_url_config_bad_invoke_mode_is_validation_error(lam):
    create_function(lam, code=CODE)
    message = assert_error(lambda: lam.create_function_url_config(
        FunctionName="fn", AuthType="NONE", InvokeMode="UNKNOWN"), "ValidationException", 400)
    assert message == ("1 validation error detected: Value 'UNKNOWN' at 'invokeMode' failed to "
                       "satisfy constraint: Member must satisfy enum value set: "
                       "[RESPONSE_STREAM, BUFFERED]")


def test_get_function_url_config_reports_buffered_until_set(lam):
    create_function(lam, code=CODE)
    created = lam.create_function_url_config(FunctionName="fn", AuthType="NONE")
    out = lam.get_function_url_config(FunctionName="fn")
    assert set(body_of(out)) == {"AuthType", "CreationTime", "FunctionArn", "FunctionUrl",
                                 "InvokeMode", "LastModifiedTime"}
    assert out["InvokeMode"] == "BUFFERED"
    assert out["FunctionUrl"] == created["FunctionUrl"]
    assert out["CreationTime"] == created["CreationTime"]


@pytest.mark.parametrize("operation, name, qualifier", [
    ("get_function_url_config", "doesnotexist", None),
    ("get_function_url_config", "fn", "doesnotexist"),
    ("get_function_url_config", "fn", None),
    ("get_function_url_config", "fn", "live"),
    ("delete_function_url_config", "doesnotexist", None),
    ("delete_function_url_config", "fn", "doesnotexist"),
    ("delete_function_url_config", "fn", None)])
def test_get_or_delete_function_url_config_without_config_is_404(lam, operation, name,
                                                                  qualifier):
    with_alias(lam)
    extra = {"Qualifier": qualifier} if qualifier else {}
    message = assert_error(lambda: getattr(lam, operation)(FunctionName=name, **extra),
                           "ResourceNotFoundException", 404)
    assert message == NOT_EXIST


def test_update_function_url_config_without_invoke_mode_does_not_echo_it(lam):
    create_function(lam, code=CODE)
    created = lam.create_function_url_config(FunctionName="fn", AuthType="NONE")
    out = lam.update_function_url_config(FunctionName="fn", AuthType="AWS_IAM")
    assert status_of(out) == 200
    assert set(body_of(out)) == {"AuthType", "CreationTime", "FunctionArn", "FunctionUrl",
                                 "LastModifiedTime"}
    assert out["AuthType"] == "AWS_IAM" and out["FunctionUrl"] == created["FunctionUrl"]


def test_update_function_url_config_keeps_invoke_mode_once_set(lam):
    create_function(lam, code=CODE)
    lam.create_function_url_config(FunctionName="fn", AuthType="NONE", InvokeMode="BUFFERED")
    lam.update_function_url_config(FunctionName="fn", InvokeMode="RESPONSE_STREAM")
    out = lam.update_function_url_config(FunctionName="fn")
    assert out["InvokeMode"] == "RESPONSE_STREAM" and out["AuthType"] == "NONE"


def test_update_function_url_config_sets_cors_and_keeps_the_rest(lam):
    create_function(lam, code=CODE)
    created = lam.create_function_url_config(FunctionName="fn", AuthType="AWS_IAM")
    cors = {"AllowOrigins": ["https://example.com"], "AllowMethods": ["GET"], "MaxAge": 60}
    out = lam.update_function_url_config(FunctionName="fn", Cors=cors)
    assert out["Cors"] == cors
    assert (out["AuthType"], out["FunctionUrl"], out["CreationTime"]) == (
        "AWS_IAM", created["FunctionUrl"], created["CreationTime"])


@pytest.mark.parametrize("name, qualifier, expected", [
    ("doesnotexist", None, "Function does not exist"),
    ("fn", "doesnotexist", "Function does not exist"),
    ("fn", None, NOT_EXIST),
    ("fn", "live", NOT_EXIST)])
def test_update_function_url_config_missing_is_404(lam, name, qualifier, expected):
    with_alias(lam)
    extra = {"Qualifier": qualifier} if qualifier else {}
    message = assert_error(lambda: lam.update_function_url_config(
        FunctionName=name, AuthType="NONE", **extra), "ResourceNotFoundException", 404)
    assert message == expected


def test_delete_function_url_config_answers_204_and_forgets_it(lam):
    create_function(lam, code=CODE)
    lam.create_function_url_config(FunctionName="fn", AuthType="NONE")
    out = lam.delete_function_url_config(FunctionName="fn")
    assert status_of(out) == 204
    assert_error(lambda: lam.get_function_url_config(FunctionName="fn"),
                 "ResourceNotFoundException", 404, NOT_EXIST)


def test_delete_function_url_config_without_qualifier_keeps_the_alias_config(lam):
    with_alias(lam)
    lam.create_function_url_config(FunctionName="fn", AuthType="NONE")
    alias_url = lam.create_function_url_config(FunctionName="fn", Qualifier="live",
                                               AuthType="NONE")["FunctionUrl"]
    lam.delete_function_url_config(FunctionName="fn")
    kept = lam.get_function_url_config(FunctionName="fn", Qualifier="live")
    assert kept["FunctionUrl"] == alias_url


def test_list_function_url_configs_has_unqualified_and_alias_configs(lam):
    with_alias(lam)
    lam.create_function_url_config(FunctionName="fn", AuthType="NONE")
    lam.create_function_url_config(FunctionName="fn", Qualifier="live", AuthType="AWS_IAM")
    items = lam.list_function_url_configs(FunctionName="fn")["FunctionUrlConfigs"]
    assert sorted((i["FunctionArn"], i["AuthType"], i["InvokeMode"]) for i in items) == [
        (arn(), "NONE", "BUFFERED"), (arn("fn", "live"), "AWS_IAM", "BUFFERED")]
    assert all("LastModifiedTime" in i and "CreationTime" in i for i in items)


def test_list_function_url_configs_pages_with_max_items(lam):
    with_alias(lam)
    lam.create_function_url_config(FunctionName="fn", AuthType="NONE")
    lam.create_function_url_config(FunctionName="fn", Qualifier="live", AuthType="NONE")
    out = lam.list_function_url_configs(FunctionName="fn", MaxItems=1)
    assert len(out["FunctionUrlConfigs"]) == 1 and out["NextMarker"]


def test_list_function_url_configs_without_urls_is_empty(lam):
    create_function(lam, code=CODE)
    assert body_of(lam.list_function_url_configs(FunctionName="fn")) == {"FunctionUrlConfigs": []}


def test_list_function_url_configs_unknown_function_is_404(lam):
    message = assert_error(lambda: lam.list_function_url_configs(FunctionName="doesnotexist"),
                           "ResourceNotFoundException", 404)
    assert message == "Function does not exist"


@pytest.mark.parametrize("operation", ["get_function_url_config",
                                       "get_function_event_invoke_config",
                                       "get_function_code_signing_config"])
def test_function_config_operations_arn_of_another_region_is_404(lam, operation):
    create_function(lam, code=CODE)
    message = assert_error(lambda: getattr(lam, operation)(
        FunctionName=f"arn:aws:lambda:eu-west-1:{ACCOUNT}:function:fn"),
        "ResourceNotFoundException", 404)
    assert message == "Functions from 'eu-west-1' are not reachable in this region ('us-east-1')"


# Function URLs served over HTTP

ECHO_REQUEST = (b"exports.handler = async (e) => ({ statusCode: 201, headers: { 'x-seen': "
                b"e.rawPath }, cookies: ['a=1', 'b=2'], body: JSON.stringify(e) });")


def url_request(server, url, method="GET", path="/", body=b"", headers=None, by_host=True):
    """(status, headers, body) of a request to a function URL, by host name or by path."""
    url_id = url.split("//")[1].split(".")[0]
    target = path if by_host else f"/_parlel/url/{url_id}{path}"
    headers = (dict(headers or {}, Host=url.split("//")[1].rstrip("/")) if by_host
               else dict(headers or {}))
    connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=30)
    try:
        connection.request(method, target, body=body, headers=headers)
        response = connection.getresponse()
        return response.status, response.getheaders(), response.read()
    finally:
        connection.close()


def test_function_url_request_by_host_name_gets_payload_v2_and_mapped_response(server, lam):
    create_function(lam, "web", code=ECHO_REQUEST)
    url = lam.create_function_url_config(FunctionName="web", AuthType="NONE")["FunctionUrl"]
    status, headers, body = url_request(server, url, "POST", "/orders/7?size=2&size=3", b"hello",
                                        {"Content-Type": "text/plain", "Cookie": "s=1; t=2"})
    assert status == 201
    assert ("x-seen", "/orders/7") in headers
    assert [v for k, v in headers if k == "Set-Cookie"] == ["a=1", "b=2"]
    event = json.loads(body)
    assert (event["version"], event["routeKey"], event["rawPath"]) == (
        "2.0", "$default", "/orders/7")
    assert event["rawQueryString"] == "size=2&size=3"
    assert event["queryStringParameters"] == {"size": "2,3"}
    assert event["cookies"] == ["s=1", "t=2"] and "cookie" not in event["headers"]
    assert (event["body"], event["isBase64Encoded"]) == ("hello", False)
    assert event["requestContext"]["http"]["method"] == "POST"
    assert event["requestContext"]["domainPrefix"] == url.split("//")[1].split(".")[0]


def test_function_url_details_as_aws_records_them(server, lam):
    create_function(lam, "web", code=ECHO_REQUEST)
    url = lam.create_function_url_config(FunctionName="web", AuthType="NONE")["FunctionUrl"]
    status, headers, body = url_request(server, url, headers={"Connection": "keep-alive"})
    assert "connection" not in json.loads(body)["headers"]     # the connection's own header
    assert re.fullmatch(r"\w{3}, \d\d \w{3} \d{4} \d\d:\d\d:\d\d GMT", dict(headers)["Date"])
    create_function(lam, "typed", code=b"exports.handler = async () => ({ statusCode: 200, "
                                         b"headers: { 'CONTENT-TYPE': 'text/html' }, body: 'x' });")
    url = lam.create_function_url_config(FunctionName="typed", AuthType="NONE")["FunctionUrl"]
    status, headers, body = url_request(server, url)
    assert [v for k, v in headers if k.lower() == "content-type"] == ["text/html"]
    create_function(lam, "unstreamed", code=b"exports.handler = async () => ({ statusCode: 201, "
                                              b"body: 'kept' });")
    url = lam.create_function_url_config(FunctionName="unstreamed", AuthType="NONE",
                                         InvokeMode="RESPONSE_STREAM")["FunctionUrl"]
    status, headers, body = url_request(server, url)
    assert (status, json.loads(body)) == (200, {"statusCode": 201, "body": "kept"})  # unmapped


def test_function_url_request_by_path_form(server, lam):
    create_function(lam, "web", code=ECHO_REQUEST)
    url = lam.create_function_url_config(FunctionName="web", AuthType="NONE")["FunctionUrl"]
    status, _, body = url_request(server, url, path="/a/b", by_host=False)
    assert status == 201 and json.loads(body)["rawPath"] == "/a/b"


def test_function_url_event_names_the_host_the_client_used_and_has_lambdas_headers(server, lam):
    create_function(lam, "web", code=ECHO_REQUEST)
    url = lam.create_function_url_config(FunctionName="web", AuthType="NONE")["FunctionUrl"]
    event = json.loads(url_request(server, url)[2])
    host = url.split("//")[1].rstrip("/").split(":")[0]
    context = event["requestContext"]
    assert (context["domainName"], context["domainPrefix"]) == (host, host.split(".")[0])
    headers = event["headers"]
    assert headers["x-forwarded-for"] == "127.0.0.1" and headers["x-forwarded-proto"] == "http"
    assert headers["x-forwarded-port"] == str(server.port)
    assert re.fullmatch(r"Root=1-[0-9a-f]{8}-[0-9a-f]{24}", headers["x-amzn-trace-id"])


@pytest.mark.parametrize("runtime, handler, code, body", [
    ("nodejs20.x", "index.handler", b"exports.handler = async () => 'hello';", b"hello"),
    ("python3.12", "app.handler", b"def handler(e, c):\n    return 'hello'\n", b"hello"),
    ("python3.12", "app.handler", b"def handler(e, c):\n    return ['hello', 3, True]\n",
     b'["hello",3,true]'),
    ("python3.12", "app.handler", b"def handler(e, c):\n    return {'caf\xc3\xa9': 1}\n",
     '{"café":1}'.encode()),
])
def test_function_url_maps_a_result_without_status_code_as_lambda_does(server, lam, runtime,
                                                                        handler, code, body):
    lam.create_function(FunctionName="plain", Runtime=runtime, Role=ROLE, Handler=handler,
                        Code={"ZipFile": code})
    url = lam.create_function_url_config(FunctionName="plain", AuthType="NONE")["FunctionUrl"]
    status, headers, data = url_request(server, url)
    assert (status, data) == (200, body)
    assert ("Content-Type", "application/json") in headers


def test_function_url_binary_body_arrives_base64_encoded(server, lam):
    create_function(lam, "web", code=ECHO_REQUEST)
    url = lam.create_function_url_config(FunctionName="web", AuthType="NONE")["FunctionUrl"]
    _, _, body = url_request(server, url, "POST", "/", b"\x00\xff", {"Content-Type": "image/png"})
    event = json.loads(body)
    assert (event["body"], event["isBase64Encoded"]) == ("AP8=", True)


def test_function_url_bare_result_is_a_200_json_body(server, lam):
    create_function(lam, "plain", code=b"exports.handler = async () => ({ hello: 'world' });")
    url = lam.create_function_url_config(FunctionName="plain", AuthType="NONE")["FunctionUrl"]
    status, headers, body = url_request(server, url)
    assert (status, json.loads(body)) == (200, {"hello": "world"})
    assert ("Content-Type", "application/json") in headers


def test_function_url_base64_response_body_is_decoded(server, lam):
    create_function(lam, "png", code=b"exports.handler = async () => ({ statusCode: 200, "
                                     b"headers: { 'content-type': 'image/png' }, body: 'AP8=', "
                                     b"isBase64Encoded: true });")
    url = lam.create_function_url_config(FunctionName="png", AuthType="NONE")["FunctionUrl"]
    status, headers, body = url_request(server, url)
    assert (status, body) == (200, b"\x00\xff") and ("Content-Type", "image/png") in headers


URL_FORBIDDEN = (b'{"Message":"Forbidden. For troubleshooting Function URL authorization issues, '
                 b'see: https://docs.aws.amazon.com/lambda/latest/dg/urls-auth.html"}')


@pytest.mark.parametrize("runtime, handler, code", [
    ("nodejs20.x", "index.handler", b"exports.handler = async () => { throw new Error('x'); };"),
    ("python3.12", "app.handler", b"def handler(e, c):\n    raise ValueError('x')\n"),
])
def test_function_url_handler_error_is_502_internal_server_error(server, lam, runtime, handler,
                                                                  code):
    lam.create_function(FunctionName="broken", Runtime=runtime, Role=ROLE, Handler=handler,
                        Code={"ZipFile": code})
    url = lam.create_function_url_config(FunctionName="broken", AuthType="NONE")["FunctionUrl"]
    status, headers, body = url_request(server, url)
    assert (status, body) == (502, b"Internal Server Error")      # as AWS answers: plain text
    assert not any(name == "x-amzn-ErrorType" for name, _ in headers)


def test_function_url_result_that_is_not_json_is_sent_as_it_is():
    reply = lambda_fake.function_url_response(b"{")         # as AWS answers a custom runtime's
    assert (reply.status, reply.body) == (200, b"{")


def test_function_url_replies_carry_the_invocations_request_id(server, lam):
    create_function(lam, "web", code=b"exports.handler = async (e, context) => "
                                     b"context.awsRequestId;")
    url = lam.create_function_url_config(FunctionName="web", AuthType="NONE")["FunctionUrl"]
    status, headers, body = url_request(server, url)
    assert status == 200 and ("x-amzn-RequestId", body.decode()) in headers


def test_function_url_aws_iam_refuses_unsigned_requests(server, lam):
    create_function(lam, "private", code=b"exports.handler = async () => 'ok';")
    url = lam.create_function_url_config(FunctionName="private", AuthType="AWS_IAM")["FunctionUrl"]
    status, headers, body = url_request(server, url)
    assert (status, body) == (403, URL_FORBIDDEN)
    assert ("x-amzn-ErrorType", "AccessDeniedException") in headers
    signed = {"Authorization": "AWS4-HMAC-SHA256 "
                               "Credential=test/20260101/us-east-1/lambda/aws4_request, "
                               "SignedHeaders=host, Signature=abc"}
    assert url_request(server, url, headers=signed)[0] == 200


def test_function_url_cors_preflight_and_simple_request(server, lam):
    create_function(lam, "shared", code=b"exports.handler = async () => 'ok';")
    cors = {"AllowOrigins": ["https://app.test"], "AllowMethods": ["GET", "POST"],
            "AllowHeaders": ["x-token"], "MaxAge": 60, "ExposeHeaders": ["x-id"]}
    url = lam.create_function_url_config(FunctionName="shared", AuthType="NONE",
                                         Cors=cors)["FunctionUrl"]
    status, headers, _ = url_request(server, url, "OPTIONS", headers={
        "Origin": "https://app.test", "Access-Control-Request-Method": "POST"})
    assert status == 200
    assert ("Access-Control-Allow-Origin", "https://app.test") in headers
    assert ("Access-Control-Allow-Methods", "GET,POST") in headers
    assert ("Access-Control-Max-Age", "60") in headers
    _, headers, _ = url_request(server, url, headers={"Origin": "https://app.test"})
    assert ("Access-Control-Expose-Headers", "x-id") in headers
    _, headers, _ = url_request(server, url, headers={"Origin": "https://evil.test"})
    assert not any(k.startswith("Access-Control") for k, _ in headers)


def test_function_url_of_an_alias_runs_its_version_and_unknown_urls_are_403(server, lam):
    create_function(lam, "aliased", code=b"exports.handler = async () => 'v1';", Publish=True)
    lam.update_function_code(FunctionName="aliased",
                             ZipFile=b"exports.handler = async () => 'latest';")
    lam.create_alias(FunctionName="aliased", Name="live", FunctionVersion="1")
    url = lam.create_function_url_config(FunctionName="aliased", Qualifier="live",
                                         AuthType="NONE")["FunctionUrl"]
    assert url_request(server, url)[2] == b"v1"       # a string result is sent as its text
    lam.delete_alias(FunctionName="aliased", Name="live")
    status, headers, body = url_request(server, url)  # its alias deleted: AWS's Forbidden
    assert (status, body) == (403, URL_FORBIDDEN)
    assert ("x-amzn-ErrorType", "AccessDeniedException") in headers
    lam.create_alias(FunctionName="aliased", Name="live", FunctionVersion="1")
    url = lam.create_function_url_config(FunctionName="aliased", Qualifier="live",
                                         AuthType="NONE")["FunctionUrl"]
    lam.delete_function_url_config(FunctionName="aliased", Qualifier="live")
    status, headers, body = url_request(server, url)  # a URL that is not there
    assert (status, body) == (403, b'{"Message":null}')
    assert ("x-amzn-ErrorType", "AccessDeniedException") in headers
    assert ("Content-Type", "application/json") in headers


# ----------------------------------------------------------------------------------------------
# Asynchronous invocation configuration
# ----------------------------------------------------------------------------------------------

def test_put_function_event_invoke_config_answers_the_aws_shape(lam):
    create_function(lam, code=CODE)
    out = lam.put_function_event_invoke_config(FunctionName="fn", MaximumRetryAttempts=0)
    assert status_of(out) == 200
    assert isinstance(out.pop("LastModified"), datetime.datetime)
    assert body_of(out) == {"DestinationConfig": {"OnFailure": {}, "OnSuccess": {}},
                            "FunctionArn": arn("fn", "$LATEST"), "MaximumRetryAttempts": 0}


def test_put_function_event_invoke_config_overwrites_members_left_out(lam):
    create_function(lam, code=CODE)
    lam.put_function_event_invoke_config(FunctionName="fn", MaximumRetryAttempts=2,
                                         MaximumEventAgeInSeconds=60)
    out = lam.put_function_event_invoke_config(FunctionName="fn", MaximumRetryAttempts=0)
    assert out["MaximumRetryAttempts"] == 0 and "MaximumEventAgeInSeconds" not in out


def test_update_function_event_invoke_config_merges_members(lam):
    create_function(lam, code=CODE)
    lam.put_function_event_invoke_config(FunctionName="fn", MaximumEventAgeInSeconds=60)
    out = lam.update_function_event_invoke_config(FunctionName="fn", MaximumRetryAttempts=1)
    assert (out["MaximumEventAgeInSeconds"], out["MaximumRetryAttempts"]) == (60, 1)
    assert out["DestinationConfig"] == {"OnFailure": {}, "OnSuccess": {}}


@pytest.mark.parametrize("member, value, constraint", [
    ("MaximumRetryAttempts", 3, "Member must have value less than or equal to 2"),
    ("MaximumRetryAttempts", -1, "Member must have value greater than or equal to 0"),
    ("MaximumEventAgeInSeconds", 59, "Member must have value greater than or equal to 60"),
    ("MaximumEventAgeInSeconds", 21601, "Member must have value less than or equal to 21600")])
def test_put_function_event_invoke_config_out_of_range_is_validation_error(server, lam, member,
                                                                            value, constraint):
    create_function(lam, code=CODE)
    client = unchecked_client(server)
    message = assert_error(lambda: client.put_function_event_invoke_config(
        FunctionName="fn", **{member: value}), "ValidationException", 400)
    path = member[0].lower() + member[1:]
    assert message == (f"1 validation error detected: Value '{value}' at '{path}' failed to "
                       f"satisfy constraint: {constraint}")


@pytest.mark.parametrize("name", ["fn", "doesnotexist"])
def test_put_function_event_invoke_config_without_settings_is_400(lam, name):
    create_function(lam, code=CODE)
    message = assert_error(lambda: lam.put_function_event_invoke_config(FunctionName=name),
                           "InvalidParameterValueException", 400)
    assert message == NO_SETTING


@pytest.mark.parametrize("name, qualifier", [
    ("doesnotexist", None), (arn("doesnotexist"), None), ("fn", "doesnotexist")])
def test_put_function_event_invoke_config_unknown_target_is_404(lam, name, qualifier):
    with_alias(lam)
    extra = {"Qualifier": qualifier} if qualifier else {}
    message = assert_error(lambda: lam.put_function_event_invoke_config(
        FunctionName=name, MaximumRetryAttempts=1, **extra), "ResourceNotFoundException", 404)
    assert message == "The function doesn't exist."


@pytest.mark.parametrize("destinations, expected", [
    ({"OnSuccess": {"Destination": arn("doesnotexist")}},
     f"The destination ARN {arn('doesnotexist')} is invalid."),
    ({"OnFailure": {"Destination": arn("fn")}},
     "You can't specify the function as a destination for itself."),
    ({"OnSuccess": {"Destination": f"arn:aws:iam::{ACCOUNT}:role/r"}},
     f"The provided destination config DestinationConfig(onSuccess=OnSuccess(destination="
     f"arn:aws:iam::{ACCOUNT}:role/r), onFailure=null) is invalid."),
    ({"OnFailure": {"Destination": f"arn:aws:iam::{ACCOUNT}:role/r"}},
     f"The provided destination config DestinationConfig(onSuccess=null, onFailure=OnFailure("
     f"destination=arn:aws:iam::{ACCOUNT}:role/r)) is invalid."),
])
def test_put_function_event_invoke_config_bad_destination_is_400(lam, destinations, expected):
    create_function(lam, code=CODE)
    message = assert_error(lambda: lam.put_function_event_invoke_config(
        FunctionName="fn", DestinationConfig=destinations), "InvalidParameterValueException", 400)
    assert message == expected


def test_put_function_event_invoke_config_destination_not_an_arn_is_validation_error(lam):
    create_function(lam, code=CODE)
    message = assert_error(lambda: lam.put_function_event_invoke_config(
        FunctionName="fn", DestinationConfig={"OnFailure": {"Destination": "not-an-arn"}}),
        "ValidationException", 400)
    assert message == ("1 validation error detected: Value 'not-an-arn' at "
                       "'destinationConfig.onFailure.destination' failed to satisfy constraint: "
                       f"Member must satisfy regular expression pattern: {DESTINATION_PATTERN}")


@pytest.mark.parametrize("destinations, expected", [
    ({"OnSuccess": {"Destination": arn("target")}},
     {"OnFailure": {}, "OnSuccess": {"Destination": arn("target")}}),
    ({"OnFailure": {"Destination": f"arn:aws:sqs:{REGION}:{ACCOUNT}:dlq"}},
     {"OnFailure": {"Destination": f"arn:aws:sqs:{REGION}:{ACCOUNT}:dlq"}, "OnSuccess": {}}),
    ({"OnSuccess": {}}, {"OnFailure": {}, "OnSuccess": {}}),
    ({"OnFailure": {}}, {"OnFailure": {}, "OnSuccess": {}})])
def test_put_function_event_invoke_config_destinations_are_echoed_with_both_sides(
        lam, destinations, expected):
    create_function(lam, code=CODE)
    create_function(lam, "target", code=CODE)
    out = lam.put_function_event_invoke_config(FunctionName="fn", DestinationConfig=destinations)
    assert out["DestinationConfig"] == expected


@pytest.mark.parametrize("name, qualifier, suffix", [
    ("fn", "live", "live"), ("fn:live", None, "live"), (arn("fn", "live"), None, "live"),
    ("fn", "1", "1"), ("fn:$LATEST", "$LATEST", "$LATEST")])
def test_put_function_event_invoke_config_qualified_targets(lam, name, qualifier, suffix):
    with_alias(lam)
    extra = {"Qualifier": qualifier} if qualifier else {}
    out = lam.put_function_event_invoke_config(FunctionName=name, MaximumRetryAttempts=1, **extra)
    assert out["FunctionArn"] == arn("fn", suffix)


@pytest.mark.parametrize("name, qualifier", [
    ("fn:1", "$LATEST"), ("fn:$LATEST", "1"), ("fn:1", "live"), (arn("fn", "live"), "other")])
def test_put_function_event_invoke_config_derived_qualifier_mismatch_is_400(lam, name, qualifier):
    with_alias(lam)
    message = assert_error(lambda: lam.put_function_event_invoke_config(
        FunctionName=name, Qualifier=qualifier, MaximumRetryAttempts=1),
        "InvalidParameterValueException", 400)
    assert message == DERIVED_MISMATCH


@pytest.mark.parametrize("operation", ["get", "delete"])
@pytest.mark.parametrize("name, qualifier, shown", [
    ("doesnotexist", None, "doesnotexist:$LATEST"), ("fn", None, "fn:$LATEST"),
    ("fn", "1", "fn:1"), ("fn", "live", "fn:live")])
def test_function_event_invoke_config_missing_is_404_naming_the_qualified_arn(
        lam, operation, name, qualifier, shown):
    with_alias(lam)
    extra = {"Qualifier": qualifier} if qualifier else {}
    call = getattr(lam, f"{operation}_function_event_invoke_config")
    message = assert_error(lambda: call(FunctionName=name, **extra),
                           "ResourceNotFoundException", 404)
    assert message == f"The function {FUNCTIONS}:{shown} doesn't have an EventInvokeConfig"


def test_get_function_event_invoke_config_is_not_carried_to_a_new_version(lam):
    create_function(lam, code=CODE)
    lam.put_function_event_invoke_config(FunctionName="fn", MaximumRetryAttempts=1)
    lam.publish_version(FunctionName="fn")
    assert_error(lambda: lam.get_function_event_invoke_config(FunctionName="fn", Qualifier="1"),
                 "ResourceNotFoundException", 404,
                 f"The function {arn('fn', '1')} doesn't have an EventInvokeConfig")


@pytest.mark.parametrize("name, expected", [
    ("doesnotexist", "The function doesn't exist."),
    ("fn", f"The function {FUNCTIONS}:fn:$LATEST doesn't have an EventInvokeConfig")])
def test_update_function_event_invoke_config_missing_is_404(lam, name, expected):
    create_function(lam, code=CODE)
    message = assert_error(lambda: lam.update_function_event_invoke_config(
        FunctionName=name, MaximumRetryAttempts=1), "ResourceNotFoundException", 404)
    assert message == expected


def test_delete_function_event_invoke_config_answers_204_and_forgets_it(lam):
    create_function(lam, code=CODE)
    lam.put_function_event_invoke_config(FunctionName="fn", MaximumRetryAttempts=1)
    assert status_of(lam.delete_function_event_invoke_config(FunctionName="fn")) == 204
    assert lam.list_function_event_invoke_configs(FunctionName="fn")[
        "FunctionEventInvokeConfigs"] == []


def test_list_function_event_invoke_configs_one_per_qualifier(lam):
    with_alias(lam)
    for qualifier in ("$LATEST", "1", "live"):
        lam.put_function_event_invoke_config(FunctionName="fn", Qualifier=qualifier,
                                             MaximumRetryAttempts=1)
    items = lam.list_function_event_invoke_configs(FunctionName="fn")["FunctionEventInvokeConfigs"]
    assert sorted(i["FunctionArn"] for i in items) == sorted(
        [arn("fn", "$LATEST"), arn("fn", "1"), arn("fn", "live")])
    assert all(i["DestinationConfig"] == {"OnFailure": {}, "OnSuccess": {}} for i in items)


def test_list_function_event_invoke_configs_without_configs_is_empty(lam):
    create_function(lam, code=CODE)
    out = lam.list_function_event_invoke_configs(FunctionName="fn")
    assert body_of(out) == {"FunctionEventInvokeConfigs": []}


def test_list_function_event_invoke_configs_unknown_function_is_404(lam):
    message = assert_error(lambda: lam.list_function_event_invoke_configs(
        FunctionName="doesnotexist"), "ResourceNotFoundException", 404)
    assert message == "The function doesn't exist."


# ----------------------------------------------------------------------------------------------
# Event source mappings
# ----------------------------------------------------------------------------------------------

def test_create_event_source_mapping_sqs_answers_202_creating_with_sqs_defaults(lam):
    create_function(lam)
    out = create_mapping(lam)
    assert out["ResponseMetadata"]["HTTPStatusCode"] == 202
    assert mapping_body(out) == {
        "BatchSize": 10, "EventSourceArn": QUEUE, "FunctionArn": f"{FUNCTIONS}:fn",
        "FunctionResponseTypes": [], "MaximumBatchingWindowInSeconds": 0, "State": "Creating",
        "StateTransitionReason": "USER_INITIATED"}


@pytest.mark.parametrize("source", [KINESIS, DYNAMODB])
def test_create_event_source_mapping_stream_defaults(lam, source):
    create_function(lam)
    out = create_mapping(lam, source)
    assert mapping_body(out) == {
        "BatchSize": 100, "BisectBatchOnFunctionError": False,
        "DestinationConfig": {"OnFailure": {}},
        "EventSourceArn": source, "FunctionArn": f"{FUNCTIONS}:fn", "FunctionResponseTypes": [],
        "LastProcessingResult": "No records processed", "MaximumBatchingWindowInSeconds": 0,
        "MaximumRecordAgeInSeconds": -1, "MaximumRetryAttempts": -1, "ParallelizationFactor": 1,
        "StartingPosition": "LATEST", "State": "Creating", "StateTransitionReason": "User action",
        "TumblingWindowInSeconds": 0}


def test_create_event_source_mapping_self_managed_kafka_consumer_group_is_the_uuid(lam):
    create_function(lam)
    out = create_kafka_mapping(lam)
    assert out["SelfManagedKafkaEventSourceConfig"] == {"ConsumerGroupId": out["UUID"]}
    assert mapping_body(out) == {
        "BatchSize": 100, "FunctionArn": f"{FUNCTIONS}:fn",
        "LastProcessingResult": "No records processed", "SelfManagedEventSource": KAFKA,
        "SelfManagedKafkaEventSourceConfig": {"ConsumerGroupId": out["UUID"]},
        "SourceAccessConfigurations": KAFKA_AUTH, "StartingPosition": "TRIM_HORIZON",
        "State": "Creating", "StateTransitionReason": "USER_INITIATED", "Topics": ["topic"]}


def test_create_event_source_mapping_uuid_and_arn_formats(lam):
    create_function(lam)
    out = create_mapping(lam)
    assert re.fullmatch(UUID, out["UUID"])
    assert out["EventSourceMappingArn"] == (
        f"arn:aws:lambda:{REGION}:{ACCOUNT}:event-source-mapping:{out['UUID']}")
    assert isinstance(out["LastModified"], datetime.datetime)


@pytest.mark.parametrize("function_name, function_arn", [
    ("fn", f"{FUNCTIONS}:fn"),
    (f"{FUNCTIONS}:fn", f"{FUNCTIONS}:fn"),
    (f"{ACCOUNT}:function:fn:$LATEST", f"{FUNCTIONS}:fn:$LATEST"),
    (f"{FUNCTIONS}:fn:1", f"{FUNCTIONS}:fn:1"),
    ("fn:live", f"{FUNCTIONS}:fn:live"),
])
def test_create_event_source_mapping_function_arn_keeps_the_given_qualifier(lam, function_name,
                                                                            function_arn):
    create_function(lam, Publish=True)
    lam.create_alias(FunctionName="fn", Name="live", FunctionVersion="1")
    assert create_mapping(lam, name=function_name)["FunctionArn"] == function_arn


@pytest.mark.parametrize("enabled, state", [(True, "Enabled"), (False, "Disabled")])
def test_get_event_source_mapping_after_create_is_enabled_or_disabled(lam, enabled, state):
    create_function(lam)
    created = create_mapping(lam, Enabled=enabled)
    got = lam.get_event_source_mapping(UUID=created["UUID"])
    assert created["State"] == ("Creating" if enabled else "Disabled")     # as AWS records
    assert got["State"] == state
    assert mapping_body(got) == dict(mapping_body(created), State=state)


def test_create_event_source_mapping_function_missing_is_invalid_parameter(lam):
    message = assert_error(lambda: create_mapping(lam, name="ghost"),
                           "InvalidParameterValueException", 400)
    assert message == "Function does not exist"


def test_create_event_source_mapping_unknown_source_is_invalid_parameter(lam):
    create_function(lam)
    message = assert_error(lambda: lam.create_event_source_mapping(FunctionName="fn"),
                           "InvalidParameterValueException", 400)
    assert message == "Unrecognized event source."


@pytest.mark.parametrize("source, overrides, code, expected", [
    (KINESIS, {"StartingPosition": None}, "InvalidParameterValueException",
     "1 validation error detected: Value null at 'startingPosition' failed to satisfy constraint: "
     "Member must not be null."),
    (DYNAMODB, {"StartingPosition": None}, "InvalidParameterValueException",
     "1 validation error detected: Value null at 'startingPosition' failed to satisfy constraint: "
     "Member must not be null."),
    (KINESIS, {"StartingPosition": "invalid"}, "ValidationException",
     "1 validation error detected: Value 'invalid' at 'startingPosition' failed to satisfy "
     "constraint: Member must satisfy enum value set: [LATEST, AT_TIMESTAMP, TRIM_HORIZON]"),
    (DYNAMODB, {"StartingPosition": "AT_TIMESTAMP"}, "InvalidParameterValueException",
     f"Unsupported starting position for arn type: {DYNAMODB}"),
    (QUEUE, {"BatchSize": 11}, "InvalidParameterValueException",
     "Maximum batch window in seconds must be greater than 0 if maximum batch size is greater "
     "than 10"),
    (QUEUE, {"DestinationConfig": {"OnSuccess": {"Destination": QUEUE}}},
     "InvalidParameterValueException",
     "Unsupported DestinationConfig parameter for given event source mapping type."),
    (KINESIS, {"MaximumRecordAgeInSeconds": 30}, "InvalidParameterValueException",
     "MaximumRecordAgeInSeconds must be either -1 (forever) or between 60 and 604800 (inclusive)"),
    (KINESIS, {"MaximumRetryAttempts": -2}, "ValidationException",
     "1 validation error detected: Value '-2' at 'maximumRetryAttempts' failed to satisfy "
     "constraint: Member must have value greater than or equal to -1"),
    (QUEUE, {"BatchSize": 0}, "ValidationException",
     "1 validation error detected: Value '0' at 'batchSize' failed to satisfy constraint: "
     "Member must have value greater than or equal to 1"),
], ids=[
    "kinesis-no-position", "dynamodb-no-position", "bad-position", "dynamodb-at-timestamp",
    "sqs-batch-11-no-window", "sqs-on-success", "record-age-30", "retries-minus-2", "batch-0"])
def test_create_event_source_mapping_validation(server, lam, source, overrides, code, expected):
    create_function(lam)
    unchecked = unvalidated_client(server)
    message = assert_error(lambda: create_mapping(unchecked, source, **overrides), code, 400)
    assert message == expected
    assert lam.list_event_source_mappings()["EventSourceMappings"] == []


def test_create_event_source_mapping_kinesis_at_timestamp_is_accepted(lam):
    create_function(lam)
    out = create_mapping(lam, KINESIS, StartingPosition="AT_TIMESTAMP",
                         StartingPositionTimestamp=datetime.datetime(2024, 1, 1))
    assert out["StartingPosition"] == "AT_TIMESTAMP"


@pytest.mark.parametrize("pattern", ["not json", "{\"body\": ", "null", "[1, 2]",
                                     '{"body": "order"}', '{"body": []}',
                                     '{"body": [{"nearly": "x"}]}', '{"n": [{"numeric": [">"]}]}',
                                     '{"$or": {"a": [1]}}', '{"a": [{"exists": "yes"}]}'])
def test_create_event_source_mapping_invalid_filter_pattern(lam, pattern):
    create_function(lam)
    criteria = {"Filters": [{"Pattern": pattern}]}
    message = assert_error(lambda: create_mapping(lam, FilterCriteria=criteria),
                           "InvalidParameterValueException", 400)
    assert message == "Invalid filter pattern definition."


@pytest.mark.parametrize("pattern, record, matches", [
    ({"body": {"kind": ["order"]}}, {"body": {"kind": "order"}}, True),
    ({"body": {"kind": ["order"]}}, {"body": {"kind": "refund"}}, False),
    ({"body": {"kind": ["order"]}}, {"body": "kind: order"}, False),
    ({"body": ["plain text"]}, {"body": "plain text"}, True),
    ({"a": [1]}, {"a": True}, False),                    # true is not 1
    ({"a": [None]}, {"a": None}, True), ({"a": [None]}, {}, False),
    ({"a": [""]}, {"a": ""}, True),
    ({"tags": ["x"]}, {"tags": ["w", "x"]}, True),       # a list matches by any member
    ({"a": [{"prefix": "ord"}]}, {"a": "order"}, True),
    ({"a": [{"suffix": "er"}]}, {"a": "order"}, True),
    ({"a": [{"equals-ignore-case": "ORDER"}]}, {"a": "order"}, True),
    ({"a": [{"wildcard": "o*r"}]}, {"a": "order"}, True),
    ({"a": [{"wildcard": "o*x"}]}, {"a": "order"}, False),
    ({"a": [{"anything-but": ["x", "y"]}]}, {"a": "z"}, True),
    ({"a": [{"anything-but": "z"}]}, {"a": "z"}, False),
    ({"a": [{"anything-but": {"prefix": "or"}}]}, {"a": "order"}, False),
    ({"n": [{"numeric": [">", 0, "<=", 5]}]}, {"n": 5}, True),
    ({"n": [{"numeric": [">", 0, "<=", 5]}]}, {"n": 6}, False),
    ({"n": [{"numeric": ["=", 5]}]}, {"n": "5"}, False),
    ({"a": [{"exists": True}]}, {"a": 0}, True),
    ({"a": [{"exists": False}]}, {"b": 0}, True),
    ({"a": [{"exists": False}]}, {"a": 0}, False),
    ({"a": [{"exists": False}]}, {"a": {"S": "v"}}, True),    # an object is not a leaf
    ({"$or": [{"a": [1]}, {"b": [2]}]}, {"b": 2}, True),
    ({"$or": [{"a": [1]}, {"b": [2]}]}, {"b": 3}, False),
    ({"dynamodb": {"NewImage": {"state": {"S": ["paid"]}}}, "eventName": ["INSERT", "MODIFY"]},
     {"eventName": "MODIFY", "dynamodb": {"NewImage": {"state": {"S": "paid"}}}}, True),
])
def test_filter_patterns_match_as_lambda_matches_them(pattern, record, matches):
    mapping = {"FilterCriteria": {"Filters": [{"Pattern": json.dumps(pattern)}]}}
    lambda_fake.check_filters(mapping["FilterCriteria"])    # each is a valid pattern
    assert lambda_fake.passes_filters(mapping, record) is matches


def test_create_event_source_mapping_valid_filter_is_echoed(lam):
    create_function(lam)
    criteria = {"Filters": [{"Pattern": "{\"body\": {\"kind\": [\"order\"]}}"}]}
    assert create_mapping(lam, FilterCriteria=criteria)["FilterCriteria"] == criteria


def test_create_event_source_mapping_sqs_large_batch_with_window_is_accepted(lam):
    create_function(lam)
    out = create_mapping(lam, BatchSize=10000, MaximumBatchingWindowInSeconds=1)
    assert (out["BatchSize"], out["MaximumBatchingWindowInSeconds"]) == (10000, 1)


def test_create_event_source_mapping_kafka_without_access_configurations_is_refused(lam):
    create_function(lam)
    message = assert_error(lambda: lam.create_event_source_mapping(
        FunctionName="fn", SelfManagedEventSource=KAFKA, Topics=["topic"]),
        "InvalidParameterValueException", 400)
    assert message == "Required 'sourceAccessConfigurations' parameter is missing."


@pytest.mark.parametrize("source, template", [
    (QUEUE, "An event source mapping with SQS arn (\" {source} \") and function (\" fn \") already "
            "exists. Please update or delete the existing mapping with UUID {uuid}"),
    (KINESIS, "The event source arn (\" {source} \") and function (\" fn \") provided mapping "
              "already exists. Please update or delete the existing mapping with UUID {uuid}"),
    (DYNAMODB, "The event source arn (\" {source} \") and function (\" fn \") provided mapping "
               "already exists. Please update or delete the existing mapping with UUID {uuid}"),
])
def test_create_event_source_mapping_duplicate_is_409(lam, source, template):
    create_function(lam)
    first = create_mapping(lam, source)
    message = assert_error(lambda: create_mapping(lam, source), "ResourceConflictException", 409)
    assert message == template.format(source=source, uuid=first["UUID"])


def test_create_event_source_mapping_duplicate_kafka_is_409_naming_servers_and_topics(lam):
    create_function(lam)
    first = create_kafka_mapping(lam)
    message = assert_error(lambda: create_kafka_mapping(lam), "ResourceConflictException", 409)
    assert message == (
        f"An event source mapping with event source (\"kafka:1000\"), function "
        f"(\"{FUNCTIONS}:fn\"), topics (\"topic\") already exists. Please update or delete the "
        f"existing mapping with UUID {first['UUID']}")


def test_create_event_source_mapping_same_source_for_another_function_is_allowed(lam):
    create_function(lam, "one")
    create_function(lam, "two")
    create_mapping(lam, name="one")
    assert create_mapping(lam, name="two")["FunctionArn"] == f"{FUNCTIONS}:two"


def test_create_event_source_mapping_tags_are_readable_via_list_tags(lam):
    create_function(lam)
    out = create_mapping(lam, Tags={"team": "data"})
    assert lam.list_tags(Resource=out["EventSourceMappingArn"])["Tags"] == {"team": "data"}


@pytest.mark.parametrize("operation", ["get_event_source_mapping", "update_event_source_mapping",
                                       "delete_event_source_mapping"])
def test_event_source_mapping_unknown_uuid_is_404(lam, operation):
    call = getattr(lam, operation)
    message = assert_error(lambda: call(UUID="11111111-2222-4333-8444-555555555555"),
                           "ResourceNotFoundException", 404)
    assert message == NOT_THERE


def test_update_event_source_mapping_answers_updating_then_enabled(lam):
    create_function(lam)
    esm = create_mapping(lam)["UUID"]
    out = lam.update_event_source_mapping(UUID=esm, BatchSize=5)
    assert out["ResponseMetadata"]["HTTPStatusCode"] == 202
    assert (out["State"], out["BatchSize"]) == ("Updating", 5)
    got = lam.get_event_source_mapping(UUID=esm)
    assert (got["State"], got["BatchSize"]) == ("Enabled", 5)


@pytest.mark.parametrize("target", ["ghost", "fn:nope"])
def test_update_event_source_mapping_to_a_missing_function_or_qualifier_is_refused(lam, target):
    create_function(lam)
    esm = create_mapping(lam)["UUID"]
    assert_error(lambda: lam.update_event_source_mapping(UUID=esm, FunctionName=target),
                 "InvalidParameterValueException", 400, "Function does not exist")
    assert lam.get_event_source_mapping(UUID=esm)["FunctionArn"].endswith(":function:fn")


def test_update_event_source_mapping_disable_answers_disabling_then_disabled(lam):
    create_function(lam)
    esm = create_mapping(lam)["UUID"]
    assert lam.update_event_source_mapping(UUID=esm, Enabled=False)["State"] == "Disabling"
    assert lam.get_event_source_mapping(UUID=esm)["State"] == "Disabled"


def test_update_event_source_mapping_enable_answers_enabling_then_enabled(lam):
    create_function(lam)
    made = create_mapping(lam, Enabled=False)
    assert made["State"] == "Disabled"          # as AWS answers a mapping made disabled
    esm = made["UUID"]
    assert lam.update_event_source_mapping(UUID=esm, Enabled=True)["State"] == "Enabling"
    assert lam.get_event_source_mapping(UUID=esm)["State"] == "Enabled"


def test_update_event_source_mapping_sqs_batch_without_window_is_refused_and_changes_nothing(lam):
    create_function(lam)
    esm = create_mapping(lam)["UUID"]
    message = assert_error(lambda: lam.update_event_source_mapping(UUID=esm, BatchSize=11),
                           "InvalidParameterValueException", 400)
    assert message == ("Maximum batch window in seconds must be greater than 0 if maximum batch "
                       "size is greater than 10")
    assert lam.get_event_source_mapping(UUID=esm)["BatchSize"] == 10


def test_update_event_source_mapping_unknown_function_is_invalid_parameter(lam):
    create_function(lam)
    esm = create_mapping(lam)["UUID"]
    message = assert_error(lambda: lam.update_event_source_mapping(UUID=esm, FunctionName="ghost"),
                           "InvalidParameterValueException", 400)
    assert message == "Function does not exist"


def test_delete_event_source_mapping_answers_deleting_then_404(lam):
    create_function(lam)
    created = create_mapping(lam)
    out = lam.delete_event_source_mapping(UUID=created["UUID"])
    assert out["ResponseMetadata"]["HTTPStatusCode"] == 202
    assert mapping_body(out) == dict(mapping_body(created), State="Deleting")
    message = assert_error(lambda: lam.get_event_source_mapping(UUID=created["UUID"]),
                           "ResourceNotFoundException", 404)
    assert message == NOT_THERE


def test_delete_event_source_mapping_makes_its_tags_unreachable(lam):
    create_function(lam)
    esm_arn = create_mapping(lam, Tags={"team": "data"})["EventSourceMappingArn"]
    lam.delete_event_source_mapping(UUID=esm_arn.rsplit(":", 1)[1])
    message = assert_error(lambda: lam.list_tags(Resource=esm_arn),
                           "ResourceNotFoundException", 404)
    assert message == f"Event source mapping not found: {esm_arn}"


def test_get_event_source_mapping_survives_delete_function(lam):
    create_function(lam)
    esm = create_mapping(lam)["UUID"]
    lam.delete_function(FunctionName="fn")
    assert lam.get_event_source_mapping(UUID=esm)["State"] == "Enabled"


def test_list_event_source_mappings_filters_by_function_name(lam):
    create_function(lam, "one")
    create_function(lam, "two")
    wanted = create_mapping(lam, name="one")["UUID"]
    create_mapping(lam, KINESIS, name="two")
    listed = lam.list_event_source_mappings(FunctionName="one")["EventSourceMappings"]
    assert [m["UUID"] for m in listed] == [wanted]


def test_list_event_source_mappings_filters_by_event_source_arn(lam):
    create_function(lam)
    create_mapping(lam)
    wanted = create_mapping(lam, KINESIS)["UUID"]
    listed = lam.list_event_source_mappings(EventSourceArn=KINESIS)["EventSourceMappings"]
    assert [m["UUID"] for m in listed] == [wanted]


@pytest.mark.parametrize("query", [{"FunctionName": "doesnotexist"},
                                   {"EventSourceArn": f"arn:aws:sqs:{REGION}:{ACCOUNT}:nothing"}])
def test_list_event_source_mappings_filter_naming_nothing_is_200_empty(lam, query):
    create_function(lam)
    create_mapping(lam)
    out = lam.list_event_source_mappings(**query)
    assert out["ResponseMetadata"]["HTTPStatusCode"] == 200
    assert out["EventSourceMappings"] == []


def test_list_event_source_mappings_pages_with_max_items(lam):
    create_function(lam)
    uuids = {create_mapping(lam, source)["UUID"] for source in (QUEUE, KINESIS, DYNAMODB)}
    first = lam.list_event_source_mappings(MaxItems=2)
    rest = lam.list_event_source_mappings(MaxItems=2, Marker=first["NextMarker"])
    assert len(first["EventSourceMappings"]) == 2 and "NextMarker" not in rest
    assert {m["UUID"] for m in first["EventSourceMappings"] + rest["EventSourceMappings"]} == uuids


# ----------------------------------------------------------------------------------------------
# Layers
# ----------------------------------------------------------------------------------------------

def test_publish_layer_version_returns_201_with_an_integer_version(lam):
    out = publish_layer(lam, CompatibleRuntimes=["nodejs20.x"], CompatibleArchitectures=["x86_64"],
                        Description="shared code", LicenseInfo="MIT")
    assert status_of(out) == 201
    assert set(body_of(out)) == {"CompatibleArchitectures", "CompatibleRuntimes", "Content",
                                 "CreatedDate", "Description", "LayerArn", "LayerVersionArn",
                                 "LicenseInfo", "Version"}
    assert out["Version"] == 1 and isinstance(out["Version"], int)
    assert (out["LayerArn"], out["LayerVersionArn"]) == (f"{LAYERS}:lib", f"{LAYERS}:lib:1")
    assert (out["Content"]["CodeSha256"], out["Content"]["CodeSize"]) == (
        sha256_b64(SHARED_LAYER_ZIP), len(SHARED_LAYER_ZIP))
    assert (out["CompatibleRuntimes"], out["CompatibleArchitectures"], out["LicenseInfo"]) == (
        ["nodejs20.x"], ["x86_64"], "MIT")


@pytest.mark.parametrize("overrides, expected", [
    ({}, {"Description": ""}),          # as AWS records it: Description "", the rest left out
    ({"CompatibleRuntimes": [], "CompatibleArchitectures": [], "Description": "a"},
     {"Description": "a", "CompatibleRuntimes": [], "CompatibleArchitectures": []})])
def test_publish_layer_version_optional_members_only_when_given(lam, overrides, expected):
    out = publish_layer(lam, **overrides)
    optional = {"Description", "CompatibleRuntimes", "CompatibleArchitectures", "LicenseInfo"}
    assert {k: v for k, v in out.items() if k in optional} == expected


def test_publish_layer_version_content_location_serves_the_zip(server, lam):
    location = publish_layer(lam)["Content"]["Location"]
    assert location.startswith(server.endpoint_url + "/")
    status, _, body = raw(server, "GET", location[len(server.endpoint_url):])
    assert (status, body) == (200, SHARED_LAYER_ZIP)


def test_publish_layer_version_numbers_are_never_reused(lam):
    publish_layer(lam)
    publish_layer(lam)
    lam.delete_layer_version(LayerName="lib", VersionNumber=1)
    lam.delete_layer_version(LayerName="lib", VersionNumber=2)
    out = publish_layer(lam)
    assert (out["Version"], out["LayerVersionArn"]) == (3, f"{LAYERS}:lib:3")


def test_publish_layer_version_bad_architecture_is_validation_error(lam):
    message = assert_error(lambda: publish_layer(lam, CompatibleArchitectures=["invalidarch"]),
                           "ValidationException", 400)
    assert message == ("1 validation error detected: Value '[invalidarch]' at "
                       "'compatibleArchitectures' failed to satisfy constraint: Member must "
                       "satisfy constraint: [Member must satisfy enum value set: [x86_64, arm64], "
                       "Member must not be null]")


def test_publish_layer_version_bad_runtime_and_architecture_are_both_reported(lam):
    message = assert_error(lambda: publish_layer(lam, CompatibleRuntimes=["invalidruntime"],
                                                 CompatibleArchitectures=["invalidarch"]),
                           "ValidationException", 400)
    assert message.startswith("2 validation errors detected: Value '[invalidruntime]' at "
                              "'compatibleRuntimes' failed to satisfy constraint: Member must "
                              "satisfy enum value set: [nodejs20.x, python3.14, provided.al2023, "
                              "python3.12, ")      # the usable runtimes, as CreateFunction's
    assert message.endswith("; Value '[invalidarch]' at 'compatibleArchitectures' failed to "
                            "satisfy constraint: Member must satisfy constraint: [Member must "
                            "satisfy enum value set: [x86_64, arm64], Member must not be null]")


@pytest.mark.parametrize("get", [
    lambda lam: lam.get_layer_version(LayerName="lib", VersionNumber=1),
    lambda lam: lam.get_layer_version(LayerName=f"{LAYERS}:lib", VersionNumber=1),
    lambda lam: lam.get_layer_version_by_arn(Arn=f"{LAYERS}:lib:1")],
    ids=["by-name", "by-layer-arn", "by-arn"])
def test_get_layer_version_answers_what_publish_answered(lam, get):
    published = body_of(publish_layer(lam, CompatibleRuntimes=["python3.12"]))
    out = get(lam)
    assert status_of(out) == 200 and body_of(out) == published


@pytest.mark.parametrize("name, number, code, status, expected", [
    ("doesnotexist", 1, "ResourceNotFoundException", 404, NOT_EXIST),
    ("lib", 2, "ResourceNotFoundException", 404, NOT_EXIST),
    ("lib", 0, "InvalidParameterValueException", 400, "Layer Version Cannot be less than 1"),
    ("lib", -1, "InvalidParameterValueException", 400, "Layer Version Cannot be less than 1")])
def test_get_layer_version_errors(lam, name, number, code, status, expected):
    publish_layer(lam)
    message = assert_error(lambda: lam.get_layer_version(LayerName=name, VersionNumber=number),
                           code, status)
    assert message == expected


def test_get_layer_version_by_arn_unknown_version_is_404(lam):
    publish_layer(lam)
    message = assert_error(lambda: lam.get_layer_version_by_arn(Arn=f"{LAYERS}:lib:2"),
                           "ResourceNotFoundException", 404)
    assert message == NOT_EXIST


def test_get_layer_version_by_arn_without_version_is_validation_error(lam):
    message = assert_error(lambda: lam.get_layer_version_by_arn(Arn=f"{LAYERS}:lib"),
                           "ValidationException", 400)
    assert message == (f"1 validation error detected: Value '{LAYERS}:lib' at 'arn' failed to "
                       "satisfy constraint: Member must satisfy regular expression pattern: "
                       f"{LAYER_VERSION_ARN_PATTERN}")


def test_list_layer_versions_newest_first_without_content(lam):
    publish_layer(lam, Description="one")
    publish_layer(lam, Description="two")
    items = lam.list_layer_versions(LayerName="lib")["LayerVersions"]
    assert [(i["Version"], i["Description"]) for i in items] == [(2, "two"), (1, "one")]
    assert not {"Content", "LayerArn"} & set(items[0])
    assert items[0]["LayerVersionArn"] == f"{LAYERS}:lib:2"


def test_list_layer_versions_leaves_out_deleted_versions(lam):
    publish_layer(lam)
    publish_layer(lam)
    lam.delete_layer_version(LayerName="lib", VersionNumber=2)
    assert [i["Version"] for i in lam.list_layer_versions(LayerName="lib")["LayerVersions"]] == [1]


def test_list_layer_versions_unknown_layer_is_empty(lam):
    out = lam.list_layer_versions(LayerName="doesnotexist")
    assert status_of(out) == 200 and body_of(out) == {"LayerVersions": []}


@pytest.mark.parametrize("query, versions", [
    ({"CompatibleRuntime": "python3.12"}, [2]),
    ({"CompatibleRuntime": "nodejs20.x"}, [3, 1]),
    ({"CompatibleArchitecture": "arm64"}, [3]),
    ({"CompatibleRuntime": "nodejs20.x", "CompatibleArchitecture": "x86_64"}, [1])])
def test_list_layer_versions_filters(lam, query, versions):
    publish_layer(lam, CompatibleRuntimes=["nodejs20.x"], CompatibleArchitectures=["x86_64"])
    publish_layer(lam, CompatibleRuntimes=["python3.12"], CompatibleArchitectures=["x86_64"])
    publish_layer(lam, CompatibleRuntimes=["nodejs20.x"], CompatibleArchitectures=["arm64"])
    items = lam.list_layer_versions(LayerName="lib", **query)["LayerVersions"]
    assert [i["Version"] for i in items] == versions


@pytest.mark.parametrize("query, expected", [
    ({}, [("lib", 2), ("other", 1)]),
    ({"CompatibleRuntime": "nodejs20.x"}, [("lib", 1)]),
    ({"CompatibleRuntime": "python3.12"}, [("lib", 2), ("other", 1)]),
    ({"CompatibleArchitecture": "arm64"}, [])])
def test_list_layers_shows_each_layers_latest_matching_version(lam, query, expected):
    publish_layer(lam, "lib", CompatibleRuntimes=["nodejs20.x"])
    publish_layer(lam, "lib", CompatibleRuntimes=["python3.12"])
    publish_layer(lam, "other", CompatibleRuntimes=["python3.12"])
    layers = lam.list_layers(**query)["Layers"]
    found = sorted((i["LayerName"], i["LatestMatchingVersion"]["Version"]) for i in layers)
    assert found == expected
    for item in layers:
        latest = item["LatestMatchingVersion"]
        assert item["LayerArn"] == f"{LAYERS}:{item['LayerName']}"
        assert latest["LayerVersionArn"] == f"{item['LayerArn']}:{latest['Version']}"
        assert "Content" not in latest


@pytest.mark.parametrize("query, path, values", [
    ({"CompatibleArchitecture": "archdoesnotexist"}, "compatibleArchitecture", "x86_64, arm64"),
    ({"CompatibleRuntime": "runtimedoesnotexist"}, "compatibleRuntime", None)])
def test_list_layers_bad_filter_is_validation_error(lam, query, path, values):
    message = assert_error(lambda: lam.list_layers(**query), "ValidationException", 400)
    value = next(iter(query.values()))
    prefix = (f"1 validation error detected: Value '{value}' at '{path}' failed to satisfy "
              "constraint: Member must satisfy enum value set: [")
    assert message.startswith(prefix)
    if values:
        assert message == prefix + values + "]"


@pytest.mark.parametrize("name, number", [("doesnotexist", 1), ("lib", 7), ("lib", 1)])
def test_delete_layer_version_is_idempotent(lam, name, number):
    publish_layer(lam)
    lam.delete_layer_version(LayerName="lib", VersionNumber=1)
    assert status_of(lam.delete_layer_version(LayerName=name, VersionNumber=number)) == 204


def test_delete_layer_version_below_one_is_400(lam):
    message = assert_error(lambda: lam.delete_layer_version(LayerName="lib", VersionNumber=-1),
                           "InvalidParameterValueException", 400)
    assert message == "Layer Version Cannot be less than 1"


def test_add_layer_version_permission_returns_the_statement_and_revision(lam):
    publish_layer(lam)
    out = lam.add_layer_version_permission(LayerName="lib", VersionNumber=1, StatementId="s1",
                                           Action="lambda:GetLayerVersion", Principal="*")
    assert status_of(out) == 201
    assert json.loads(out["Statement"]) == {
        "Sid": "s1", "Effect": "Allow", "Principal": "*", "Action": "lambda:GetLayerVersion",
        "Resource": f"{LAYERS}:lib:1"}
    assert out["RevisionId"] == lam.get_layer_version_policy(LayerName="lib",
                                                             VersionNumber=1)["RevisionId"]


def test_add_layer_version_permission_account_principal_becomes_root_arn(lam):
    publish_layer(lam)
    out = lam.add_layer_version_permission(LayerName="lib", VersionNumber=1, StatementId="s1",
                                           Action="lambda:GetLayerVersion",
                                           Principal="223456789012")
    assert json.loads(out["Statement"])["Principal"] == {"AWS": "arn:aws:iam::223456789012:root"}


@pytest.mark.parametrize("overrides, code, status, expected", [
    ({"Action": "*"}, "ValidationException", 400,
     "1 validation error detected: Value '*' at 'action' failed to satisfy constraint: Member "
     "must satisfy regular expression pattern: lambda:GetLayerVersion"),
    ({"StatementId": "s1"}, "ResourceConflictException", 409,
     "The statement id (s1) provided already exists. Please provide a new statement id, or "
     "remove the existing statement."),
    ({"RevisionId": "00000000-0000-0000-0000-000000000000"}, "PreconditionFailedException", 412,
     LAYER_REVISION_MISMATCH),
    ({"LayerName": "doesnotexist"}, "ResourceNotFoundException", 404,
     f"Layer version {LAYERS}:doesnotexist:1 does not exist."),
    ({"VersionNumber": 2}, "ResourceNotFoundException", 404,
     f"Layer version {LAYERS}:lib:2 does not exist."),
])
def test_add_layer_version_permission_errors(lam, overrides, code, status, expected):
    publish_layer(lam)
    lam.add_layer_version_permission(LayerName="lib", VersionNumber=1, StatementId="s1",
                                     Action="lambda:GetLayerVersion", Principal="*")
    params = dict(LayerName="lib", VersionNumber=1, StatementId="s2",
                  Action="lambda:GetLayerVersion", Principal="*")
    params.update(overrides)
    message = assert_error(lambda: lam.add_layer_version_permission(**params), code, status)
    assert message == expected


@pytest.mark.parametrize("name, number, expected", [
    ("lib", 1, "No policy is associated with the given resource."),
    ("doesnotexist", 1, f"Layer version {LAYERS}:doesnotexist:1 does not exist."),
    ("lib", 2, f"Layer version {LAYERS}:lib:2 does not exist.")])
def test_get_layer_version_policy_missing_is_404(lam, name, number, expected):
    publish_layer(lam)
    message = assert_error(lambda: lam.get_layer_version_policy(LayerName=name,
                                                                VersionNumber=number),
                           "ResourceNotFoundException", 404)
    assert message == expected


def test_remove_layer_version_permission_drops_the_statement(lam):
    publish_layer(lam)
    for sid in ("s1", "s2"):
        lam.add_layer_version_permission(LayerName="lib", VersionNumber=1, StatementId=sid,
                                         Action="lambda:GetLayerVersion", Principal="*")
    out = lam.remove_layer_version_permission(LayerName="lib", VersionNumber=1, StatementId="s1")
    assert status_of(out) == 204
    policy = json.loads(lam.get_layer_version_policy(LayerName="lib", VersionNumber=1)["Policy"])
    assert [s["Sid"] for s in policy["Statement"]] == ["s2"]


@pytest.mark.parametrize("overrides, code, status, expected", [
    ({"StatementId": "doesnotexist"}, "ResourceNotFoundException", 404,
     "Statement doesnotexist is not found in resource policy."),
    ({"RevisionId": "00000000-0000-0000-0000-000000000000"}, "PreconditionFailedException", 412,
     LAYER_REVISION_MISMATCH),
    ({"LayerName": "doesnotexist"}, "ResourceNotFoundException", 404,
     f"Layer version {LAYERS}:doesnotexist:1 does not exist."),
    ({"VersionNumber": 2}, "ResourceNotFoundException", 404,
     f"Layer version {LAYERS}:lib:2 does not exist.")])
def test_remove_layer_version_permission_errors(lam, overrides, code, status, expected):
    publish_layer(lam)
    lam.add_layer_version_permission(LayerName="lib", VersionNumber=1, StatementId="s1",
                                     Action="lambda:GetLayerVersion", Principal="*")
    params = dict(LayerName="lib", VersionNumber=1, StatementId="s1")
    params.update(overrides)
    message = assert_error(lambda: lam.remove_layer_version_permission(**params), code, status)
    assert message == expected


def set_layers(lam, operation, layers):
    """Create "fn" with `layers`, or create it bare and give it `layers` by an update."""
    if operation == "create":
        return create_function(lam, code=CODE, Layers=layers)
    create_function(lam, code=CODE)
    return lam.update_function_configuration(FunctionName="fn", Layers=layers)


@pytest.mark.parametrize("operation", ["create", "update"])
def test_function_layers_show_arn_and_code_size(lam, operation):
    publish_layer(lam, "lib")
    publish_layer(lam, "other", content=CODE)
    out = set_layers(lam, operation, [f"{LAYERS}:lib:1", f"{LAYERS}:other:1"])
    assert out["Layers"] == [{"Arn": f"{LAYERS}:lib:1", "CodeSize": len(SHARED_LAYER_ZIP)},
                             {"Arn": f"{LAYERS}:other:1", "CodeSize": len(CODE)}]
    assert lam.get_function_configuration(FunctionName="fn")["Layers"] == out["Layers"]


def test_delete_layer_version_leaves_functions_using_it_unchanged(lam):
    publish_layer(lam)
    create_function(lam, code=CODE, Layers=[f"{LAYERS}:lib:1"])
    lam.delete_layer_version(LayerName="lib", VersionNumber=1)
    assert lam.get_function_configuration(FunctionName="fn")["Layers"] == [
        {"Arn": f"{LAYERS}:lib:1", "CodeSize": len(SHARED_LAYER_ZIP)}]


LAYER_REFERENCE_ERRORS = [
    ([f"{LAYERS}:l{n}:1" for n in range(6)], "Cannot reference more than 5 layers."),
    ([f"{LAYERS}:l0:1", f"{LAYERS}:l0:2"],
     f"Two different versions of the same layer are not allowed to be referenced in the same "
     f"function. {LAYERS}:l0:1 and {LAYERS}:l0:2 are versions of the same layer."),
    ([f"{LAYERS}:l0:1", f"{LAYERS}:l0:1"],
     f"Two different versions of the same layer are not allowed to be referenced in the same "
     f"function. {LAYERS}:l0:1 and {LAYERS}:l0:1 are versions of the same layer."),
    ([f"{LAYERS}:doesnotexist:1"], f"Layer version {LAYERS}:doesnotexist:1 does not exist."),
    ([f"{LAYERS}:l0:9"], f"Layer version {LAYERS}:l0:9 does not exist."),
    ([f"arn:aws:lambda:eu-west-1:{ACCOUNT}:layer:l0:1"],
     "Layers are not in the same region as the function. Layers are expected to be in region "
     "us-east-1."),
]


@pytest.mark.parametrize("operation", ["create", "update"])
@pytest.mark.parametrize("layers, expected", LAYER_REFERENCE_ERRORS)
def test_function_bad_layer_references_are_refused(lam, operation, layers, expected):
    for n in range(6):
        publish_layer(lam, f"l{n}")
    publish_layer(lam, "l0")
    message = assert_error(lambda: set_layers(lam, operation, layers),
                           "InvalidParameterValueException", 400)
    assert message == expected
    functions = lam.list_functions()["Functions"]
    assert [f.get("Layers") for f in functions] == ([] if operation == "create" else [None])


def test_a_layer_of_another_region_is_refused_before_a_taken_name(lam):
    """As AWS records it: the layer's region is checked first."""
    publish_layer(lam, "l0")
    create_function(lam, "taken")
    message = assert_error(lambda: create_function(
        lam, "taken", Layers=[f"arn:aws:lambda:eu-west-1:{ACCOUNT}:layer:l0:1"]),
        "InvalidParameterValueException", 400)
    assert message.startswith("Layers are not in the same region as the function.")


# ----------------------------------------------------------------------------------------------
# Tags
# ----------------------------------------------------------------------------------------------

# Tags: TagResource, UntagResource, ListTags

def test_tag_resource_merges_and_overwrites(lam):
    create_function(lam, code=CODE, Tags={"a": "1", "b": "2"})
    out = lam.tag_resource(Resource=arn(), Tags={"b": "two", "c": "3"})
    assert out["ResponseMetadata"]["HTTPStatusCode"] == 204
    tags = lam.list_tags(Resource=arn())
    assert tags["ResponseMetadata"]["HTTPStatusCode"] == 200
    assert tags["Tags"] == {"a": "1", "b": "two", "c": "3"}


def test_tag_resource_changes_the_function_revision_id(lam):
    before = create_function(lam, code=CODE)["RevisionId"]
    lam.tag_resource(Resource=arn(), Tags={"a": "1"})
    tagged = lam.get_function(FunctionName="fn")["Configuration"]["RevisionId"]
    lam.untag_resource(Resource=arn(), TagKeys=["a"])
    untagged = lam.get_function(FunctionName="fn")["Configuration"]["RevisionId"]
    assert len({before, tagged, untagged}) == 3


@pytest.mark.parametrize("existing, added", [(0, 51), (50, 1), (30, 21)])
def test_tag_resource_over_50_tags_is_400(lam, existing, added):
    create_function(lam, code=CODE)
    if existing:
        lam.tag_resource(Resource=arn(), Tags={f"old{i}": "v" for i in range(existing)})
    message = assert_error(
        lambda: lam.tag_resource(Resource=arn(), Tags={f"new{i}": "v" for i in range(added)}),
        "InvalidParameterValueException", 400)
    assert message == "Number of tags exceeds resource tag limit."
    assert len(lam.list_tags(Resource=arn())["Tags"]) == existing


def test_tag_resource_up_to_50_tags_is_fine(lam):
    create_function(lam, code=CODE)
    lam.tag_resource(Resource=arn(), Tags={f"k{i}": "v" for i in range(50)})
    lam.tag_resource(Resource=arn(), Tags={"k0": "overwritten"})
    assert len(lam.list_tags(Resource=arn())["Tags"]) == 50


def test_create_function_with_51_tags_is_400(lam):
    message = assert_error(
        lambda: create_function(lam, code=CODE, Tags={f"k{i}": "v" for i in range(51)}),
        "InvalidParameterValueException", 400)
    assert message == "Number of tags exceeds resource tag limit."


@pytest.mark.parametrize("qualifier", ["1", "live", "$LATEST", "v1"])
@pytest.mark.parametrize("operation", ["tag", "untag", "list"])
def test_tags_on_a_qualified_arn_are_refused(lam, qualifier, operation):
    with_versions(lam, 1)
    lam.create_alias(FunctionName="fn", Name="live", FunctionVersion="1")
    resource = arn("fn", qualifier)
    calls = {"tag": lambda: lam.tag_resource(Resource=resource, Tags={"a": "1"}),
             "untag": lambda: lam.untag_resource(Resource=resource, TagKeys=["a"]),
             "list": lambda: lam.list_tags(Resource=resource)}
    assert assert_error(calls[operation], "InvalidParameterValueException", 400) == \
        NO_TAGS_ON_QUALIFIED


def test_tag_resource_empty_tags_is_400(lam):
    create_function(lam, code=CODE)
    message = assert_error(lambda: lam.tag_resource(Resource=arn(), Tags={}),
                           "InvalidParameterValueException", 400)
    assert message == "An error occurred and the request cannot be processed."


def test_untag_resource_ignores_missing_keys(lam):
    create_function(lam, code=CODE, Tags={"a": "1", "b": "2"})
    out = lam.untag_resource(Resource=arn(), TagKeys=["a", "missing"])
    assert out["ResponseMetadata"]["HTTPStatusCode"] == 204
    assert lam.list_tags(Resource=arn())["Tags"] == {"b": "2"}


def test_untag_resource_without_keys_is_validation_error(lam):
    create_function(lam, code=CODE, Tags={"a": "1"})
    message = assert_error(lambda: lam.untag_resource(Resource=arn(), TagKeys=[]),
                           "ValidationException", 400)
    assert message == ("1 validation error detected: Value null at 'tagKeys' failed to satisfy "
                       "constraint: Member must not be null")


@pytest.mark.parametrize("operation", ["tag", "untag", "list"])
def test_tags_unknown_function_is_404(lam, operation):
    resource = arn("doesnotexist")
    calls = {"tag": lambda: lam.tag_resource(Resource=resource, Tags={"a": "1"}),
             "untag": lambda: lam.untag_resource(Resource=resource, TagKeys=["a"]),
             "list": lambda: lam.list_tags(Resource=resource)}
    message = assert_error(calls[operation], "ResourceNotFoundException", 404)
    assert message == f"Function not found: {resource}"


def test_tag_resource_malformed_arn_is_validation_error(lam):
    assert_error(lambda: lam.tag_resource(Resource="arn:aws:something", Tags={"a": "1"}),
                 "ValidationException", 400,
                 "1 validation error detected: Value 'arn:aws:something' at 'resource' failed to "
                 "satisfy constraint: Member must satisfy regular expression pattern: "
                 "arn:(aws[a-zA-Z-]*):lambda:")


def test_list_tags_of_an_untagged_function_is_empty(lam):
    create_function(lam, code=CODE)
    assert lam.list_tags(Resource=arn())["Tags"] == {}


def test_get_function_shows_tags_only_while_there_are_any(lam):
    create_function(lam, code=CODE)
    lam.tag_resource(Resource=arn(), Tags={"a": "1"})
    assert lam.get_function(FunctionName="fn")["Tags"] == {"a": "1"}
    lam.untag_resource(Resource=arn(), TagKeys=["a"])
    assert "Tags" not in lam.get_function(FunctionName="fn")


# ----------------------------------------------------------------------------------------------
# Code signing
# ----------------------------------------------------------------------------------------------

def test_create_code_signing_config_returns_201_with_id_arn_and_warn(lam):
    out = lam.create_code_signing_config(
        AllowedPublishers={"SigningProfileVersionArns": [SIGNER]}, Description="Testing")
    assert status_of(out) == 201
    config = out["CodeSigningConfig"]
    assert re.fullmatch(r"csc-[a-z0-9]{17}", config["CodeSigningConfigId"])
    assert config["CodeSigningConfigArn"] == f"{CSCS}:{config['CodeSigningConfigId']}"
    assert config["CodeSigningPolicies"] == {"UntrustedArtifactOnDeployment": "Warn"}
    assert config["AllowedPublishers"] == {"SigningProfileVersionArns": [SIGNER]}
    assert config["Description"] == "Testing" and isinstance(config["LastModified"], str)


def test_get_code_signing_config_returns_what_create_answered(lam):
    config = code_signing_config(lam, CodeSigningPolicies={"UntrustedArtifactOnDeployment":
                                                           "Enforce"})
    out = lam.get_code_signing_config(CodeSigningConfigArn=config["CodeSigningConfigArn"])
    assert status_of(out) == 200 and out["CodeSigningConfig"] == config


def test_update_code_signing_config_changes_only_the_policy(lam):
    config = code_signing_config(lam, Description="kept")
    out = lam.update_code_signing_config(
        CodeSigningConfigArn=config["CodeSigningConfigArn"],
        CodeSigningPolicies={"UntrustedArtifactOnDeployment": "Enforce"})["CodeSigningConfig"]
    assert out["CodeSigningPolicies"] == {"UntrustedArtifactOnDeployment": "Enforce"}
    assert (out["Description"], out["AllowedPublishers"]) == ("kept", config["AllowedPublishers"])


def test_update_code_signing_config_without_fields_changes_nothing(lam):
    config = code_signing_config(lam, Description="kept")
    out = lam.update_code_signing_config(CodeSigningConfigArn=config["CodeSigningConfigArn"])
    assert status_of(out) == 200
    changed = {k for k in config if out["CodeSigningConfig"][k] != config[k]}
    assert changed <= {"LastModified"}


@pytest.mark.parametrize("operation", ["get_code_signing_config", "update_code_signing_config",
                                       "delete_code_signing_config",
                                       "list_functions_by_code_signing_config"])
def test_code_signing_config_unknown_arn_is_404(lam, operation):
    message = assert_error(lambda: getattr(lam, operation)(
        CodeSigningConfigArn=missing_csc_arn()), "ResourceNotFoundException", 404)
    assert message == (f"The Lambda code signing configuration {missing_csc_arn()} can not be "
                       "found.")


def test_delete_code_signing_config_answers_204_and_forgets_it(lam):
    config = code_signing_config(lam)
    out = lam.delete_code_signing_config(CodeSigningConfigArn=config["CodeSigningConfigArn"])
    assert status_of(out) == 204
    assert lam.list_code_signing_configs()["CodeSigningConfigs"] == []


def test_delete_code_signing_config_in_use_is_409(lam):
    config = code_signing_config(lam)
    create_function(lam, code=CODE, CodeSigningConfigArn=config["CodeSigningConfigArn"])
    assert_error(lambda: lam.delete_code_signing_config(
        CodeSigningConfigArn=config["CodeSigningConfigArn"]), "ResourceConflictException", 409)
    assert lam.get_code_signing_config(CodeSigningConfigArn=config["CodeSigningConfigArn"])


def test_list_code_signing_configs_lists_every_config_unwrapped(lam):
    first, second = code_signing_config(lam), code_signing_config(lam)
    items = lam.list_code_signing_configs()["CodeSigningConfigs"]
    assert sorted(items, key=lambda c: c["CodeSigningConfigId"]) == sorted(
        [first, second], key=lambda c: c["CodeSigningConfigId"])


def test_put_function_code_signing_config_answers_arn_and_plain_name(lam):
    config = code_signing_config(lam)
    create_function(lam, code=CODE)
    out = lam.put_function_code_signing_config(
        FunctionName=arn("fn"), CodeSigningConfigArn=config["CodeSigningConfigArn"])
    assert status_of(out) == 200
    assert body_of(out) == {"CodeSigningConfigArn": config["CodeSigningConfigArn"],
                            "FunctionName": "fn"}


def test_get_function_code_signing_config_after_put(lam):
    config = code_signing_config(lam)
    create_function(lam, code=CODE)
    lam.put_function_code_signing_config(FunctionName="fn",
                                         CodeSigningConfigArn=config["CodeSigningConfigArn"])
    out = lam.get_function_code_signing_config(FunctionName="fn")
    assert body_of(out) == {"CodeSigningConfigArn": config["CodeSigningConfigArn"],
                            "FunctionName": "fn"}


def test_get_function_code_signing_config_without_one_is_empty(server, lam):
    create_function(lam, code=CODE)
    status, _, body = raw(server, "GET", "/2020-06-30/functions/fn/code-signing-config")
    assert (status, json.loads(body)) == (200, {})


def test_list_functions_by_code_signing_config_gives_unqualified_arns(lam):
    config = code_signing_config(lam)
    unused = code_signing_config(lam)
    create_function(lam, "a", code=CODE, CodeSigningConfigArn=config["CodeSigningConfigArn"])
    create_function(lam, "b", code=CODE)
    lam.put_function_code_signing_config(FunctionName="b",
                                         CodeSigningConfigArn=config["CodeSigningConfigArn"])
    out = lam.list_functions_by_code_signing_config(
        CodeSigningConfigArn=config["CodeSigningConfigArn"])
    assert sorted(out["FunctionArns"]) == [arn("a"), arn("b")]
    assert lam.list_functions_by_code_signing_config(
        CodeSigningConfigArn=unused["CodeSigningConfigArn"])["FunctionArns"] == []


@pytest.mark.parametrize("name", ["fn", "doesnotexist"])
def test_put_function_code_signing_config_unknown_config_is_checked_first(lam, name):
    create_function(lam, code=CODE)
    message = assert_error(lambda: lam.put_function_code_signing_config(
        FunctionName=name, CodeSigningConfigArn=missing_csc_arn()),
        "CodeSigningConfigNotFoundException", 404)
    assert message == ("The code signing configuration cannot be found. Check that the provided "
                       f"configuration is not deleted: {missing_csc_arn()}.")


@pytest.mark.parametrize("operation", ["put", "get", "delete"])
def test_function_code_signing_config_unknown_function_is_404(lam, operation):
    config = code_signing_config(lam)
    extra = {"CodeSigningConfigArn": config["CodeSigningConfigArn"]} if operation == "put" else {}
    call = getattr(lam, f"{operation}_function_code_signing_config")
    message = assert_error(lambda: call(FunctionName="doesnotexist", **extra),
                           "ResourceNotFoundException", 404)
    assert message == f"Function not found: {arn('doesnotexist')}"


@pytest.mark.parametrize("attached", [True, False])
def test_delete_function_code_signing_config_answers_204(lam, attached):
    config = code_signing_config(lam)
    create_function(lam, code=CODE)
    if attached:
        lam.put_function_code_signing_config(FunctionName="fn",
                                             CodeSigningConfigArn=config["CodeSigningConfigArn"])
    out = lam.delete_function_code_signing_config(FunctionName="fn")
    assert status_of(out) == 204
    assert body_of(lam.get_function_code_signing_config(FunctionName="fn")) == {}


# ----------------------------------------------------------------------------------------------
# Recursion and runtime management
# ----------------------------------------------------------------------------------------------

def test_get_function_recursion_config_defaults_to_terminate(lam):
    create_function(lam, code=CODE)
    out = lam.get_function_recursion_config(FunctionName="fn")
    assert status_of(out) == 200 and body_of(out) == {"RecursiveLoop": "Terminate"}


def test_put_function_recursion_config_allow_is_kept(lam):
    create_function(lam, code=CODE)
    out = lam.put_function_recursion_config(FunctionName="fn", RecursiveLoop="Allow")
    assert body_of(out) == {"RecursiveLoop": "Allow"}
    assert lam.get_function_recursion_config(FunctionName="fn")["RecursiveLoop"] == "Allow"


def test_put_function_recursion_config_bad_value_is_validation_error(lam):
    create_function(lam, code=CODE)
    message = assert_error(lambda: lam.put_function_recursion_config(
        FunctionName="fn", RecursiveLoop="InvalidValue"), "ValidationException", 400)
    assert message == ("1 validation error detected: Value 'InvalidValue' at 'recursiveLoop' "
                       "failed to satisfy constraint: Member must satisfy enum value set: "
                       "[Terminate, Allow]")


def test_get_runtime_management_config_defaults_to_auto(lam):
    create_function(lam, code=CODE)
    out = lam.get_runtime_management_config(FunctionName="fn")
    assert status_of(out) == 200
    assert out["UpdateRuntimeOn"] == "Auto" and out.get("RuntimeVersionArn") is None
    assert out["FunctionArn"].startswith(arn())


def test_put_runtime_management_config_manual_is_kept_with_its_arn(lam):
    create_function(lam, code=CODE)
    runtime = f"arn:aws:lambda:{REGION}::runtime:" + "0" * 64
    out = lam.put_runtime_management_config(FunctionName="fn", UpdateRuntimeOn="Manual",
                                            RuntimeVersionArn=runtime)
    assert (out["UpdateRuntimeOn"], out["RuntimeVersionArn"]) == ("Manual", runtime)
    got = lam.get_runtime_management_config(FunctionName="fn")
    assert (got["UpdateRuntimeOn"], got["RuntimeVersionArn"]) == ("Manual", runtime)


@pytest.mark.parametrize("mode, code, fragment", [
    ("Manual", "InvalidParameterValueException", ""),
    ("Sometimes", "ValidationException", "1 validation error detected: Value 'Sometimes' at "
     "'updateRuntimeOn' failed to satisfy constraint: Member must satisfy enum value set: [")])
def test_put_runtime_management_config_bad_input_is_400(lam, mode, code, fragment):
    create_function(lam, code=CODE)
    assert_error(lambda: lam.put_runtime_management_config(FunctionName="fn",
                                                           UpdateRuntimeOn=mode),
                 code, 400, fragment)
    assert lam.get_runtime_management_config(FunctionName="fn")["UpdateRuntimeOn"] == "Auto"


# ----------------------------------------------------------------------------------------------
# Capacity providers and scaling
# ----------------------------------------------------------------------------------------------

def test_create_capacity_provider_answers_202_active(lam):
    out = create_provider(lam)
    assert out["ResponseMetadata"]["HTTPStatusCode"] == 202
    provider = out["CapacityProvider"]
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}\+0000",
                        provider.pop("LastModified"))
    assert provider == {"CapacityProviderArn": f"{PROVIDERS}:cp", "State": "Active",
                        "VpcConfig": VPC, "PermissionsConfig": OPERATOR}


def test_create_capacity_provider_duplicate_name_is_409(lam):
    create_provider(lam)
    assert_error(lambda: create_provider(lam), "ResourceConflictException", 409)


@pytest.mark.parametrize("overrides, fragment", [
    ({"PermissionsConfig": {"CapacityProviderOperatorRoleArn": "not-a-role"}},
     "Value 'not-a-role' at 'permissionsConfig.capacityProviderOperatorRoleArn' failed to satisfy "
     "constraint: Member must satisfy regular expression pattern: "),
    ({"CapacityProviderScalingConfig": {"MaxVCpuCount": 1}},
     "Value '1' at 'capacityProviderScalingConfig.maxVCpuCount' failed to satisfy constraint: "
     "Member must have value greater than or equal to 2"),
    ({"CapacityProviderName": "bad name"},
     "Value 'bad name' at 'capacityProviderName' failed to satisfy constraint: "),
])
def test_create_capacity_provider_validation(server, lam, overrides, fragment):
    unchecked = unvalidated_client(server)
    assert_error(lambda: create_provider(unchecked, **overrides), "ValidationException", 400,
                 fragment)
    assert lam.list_capacity_providers()["CapacityProviders"] == []


@pytest.mark.parametrize("reference", ["cp", f"{PROVIDERS}:cp"])
def test_get_capacity_provider_by_name_or_arn(lam, reference):
    created = create_provider(lam)["CapacityProvider"]
    got = lam.get_capacity_provider(CapacityProviderName=reference)
    assert got["ResponseMetadata"]["HTTPStatusCode"] == 200
    assert got["CapacityProvider"] == created


@pytest.mark.parametrize("operation", ["get_capacity_provider", "update_capacity_provider",
                                       "delete_capacity_provider",
                                       "list_function_versions_by_capacity_provider"])
def test_capacity_provider_unknown_name_is_404(lam, operation):
    call = getattr(lam, operation)
    message = assert_error(lambda: call(CapacityProviderName="ghost"),
                           "ResourceNotFoundException", 404)
    assert message == f"Capacity provider not found: {PROVIDERS}:ghost"


def test_update_capacity_provider_answers_202_with_new_scaling(lam):
    create_provider(lam)
    policy = {"PredefinedMetricType": "LambdaCapacityProviderAverageCPUUtilization",
              "TargetValue": 50.0}
    scaling = {"MaxVCpuCount": 64, "ScalingMode": "Manual", "ScalingPolicies": [policy]}
    out = lam.update_capacity_provider(CapacityProviderName="cp",
                                       CapacityProviderScalingConfig=scaling)
    assert out["ResponseMetadata"]["HTTPStatusCode"] == 202
    assert out["CapacityProvider"]["CapacityProviderScalingConfig"] == scaling
    got = lam.get_capacity_provider(CapacityProviderName="cp")["CapacityProvider"]
    assert got["CapacityProviderScalingConfig"] == scaling


def test_delete_capacity_provider_answers_deleting_then_404(lam):
    create_provider(lam)
    out = lam.delete_capacity_provider(CapacityProviderName="cp")
    assert out["ResponseMetadata"]["HTTPStatusCode"] == 202
    assert out["CapacityProvider"]["State"] == "Deleting"
    assert_error(lambda: lam.get_capacity_provider(CapacityProviderName="cp"),
                 "ResourceNotFoundException", 404, f"Capacity provider not found: {PROVIDERS}:cp")


def test_delete_capacity_provider_in_use_is_409_and_keeps_it(lam):
    create_provider(lam)
    create_function(lam, CapacityProviderConfig=on_provider(), Publish=True)
    assert_error(lambda: lam.delete_capacity_provider(CapacityProviderName="cp"),
                 "ResourceConflictException", 409)
    got = lam.get_capacity_provider(CapacityProviderName="cp")["CapacityProvider"]
    assert got["State"] == "Active"


@pytest.mark.parametrize("state, names", [(None, ["a", "b"]), ("Active", ["a", "b"]),
                                          ("Pending", [])])
def test_list_capacity_providers_state_filter(lam, state, names):
    create_provider(lam, "b")
    create_provider(lam, "a")
    query = {"State": state} if state else {}
    listed = lam.list_capacity_providers(**query)["CapacityProviders"]
    assert [p["CapacityProviderArn"] for p in listed] == [f"{PROVIDERS}:{n}" for n in names]


def test_list_capacity_providers_bad_state_is_validation_error(lam):
    assert_error(lambda: lam.list_capacity_providers(State="Sleeping"), "ValidationException", 400,
                 "Value 'Sleeping' at 'state' failed to satisfy constraint: Member must satisfy "
                 "enum value set: ")


def test_list_function_versions_by_capacity_provider_lists_published_version(lam):
    create_provider(lam)
    create_function(lam, CapacityProviderConfig=on_provider())
    lam.publish_version(FunctionName="fn")
    out = lam.list_function_versions_by_capacity_provider(CapacityProviderName="cp")
    assert out["CapacityProviderArn"] == f"{PROVIDERS}:cp"
    assert {"FunctionArn": f"{FUNCTIONS}:fn:1", "State": "Active"} in out["FunctionVersions"]


def test_list_function_versions_by_capacity_provider_unused_is_empty(lam):
    create_provider(lam)
    create_function(lam)
    out = lam.list_function_versions_by_capacity_provider(CapacityProviderName="cp")
    assert out["FunctionVersions"] == []


def test_put_function_scaling_config_answers_202_and_get_reads_it(lam):
    create_function(lam, Publish=True)
    config = {"MinExecutionEnvironments": 1, "MaxExecutionEnvironments": 4}
    out = lam.put_function_scaling_config(FunctionName="fn", Qualifier="1",
                                          FunctionScalingConfig=config)
    assert out["ResponseMetadata"]["HTTPStatusCode"] == 202
    assert out["FunctionState"] == "Active"
    got = lam.get_function_scaling_config(FunctionName="fn", Qualifier="1")
    assert got["FunctionArn"] == f"{FUNCTIONS}:fn:1"
    assert got["RequestedFunctionScalingConfig"] == config


def test_put_function_scaling_config_latest_published_names_newest_version(lam):
    create_function(lam, Publish=True)
    config = {"MinExecutionEnvironments": 0, "MaxExecutionEnvironments": 2}
    lam.put_function_scaling_config(FunctionName="fn", Qualifier="$LATEST.PUBLISHED",
                                    FunctionScalingConfig=config)
    got = lam.get_function_scaling_config(FunctionName="fn", Qualifier="1")
    assert got["RequestedFunctionScalingConfig"] == config


@pytest.mark.parametrize("qualifier", ["$LATEST", "live"])
def test_put_function_scaling_config_qualifier_must_be_version_or_latest_published(lam, qualifier):
    create_function(lam, Publish=True)
    lam.create_alias(FunctionName="fn", Name="live", FunctionVersion="1")
    assert_error(lambda: lam.put_function_scaling_config(
        FunctionName="fn", Qualifier=qualifier, FunctionScalingConfig={}),
        "ValidationException", 400,
        f"Value '{qualifier}' at 'qualifier' failed to satisfy constraint: Member must satisfy "
        "regular expression pattern: (\\$LATEST\\.PUBLISHED|[0-9]+)")


def test_get_function_scaling_config_unknown_function_is_404(lam):
    assert_error(lambda: lam.get_function_scaling_config(FunctionName="ghost", Qualifier="1"),
                 "ResourceNotFoundException", 404)


# ----------------------------------------------------------------------------------------------
# Durable executions
# ----------------------------------------------------------------------------------------------

# Durable executions, driven through the durable SDKs' protocol

# A durable handler that speaks the protocol the durable SDKs speak, with boto3: it checkpoints
# a step, then a WAIT (when the event asks for one), then a CALLBACK it waits for, and returns the
# SDK's {"Status", "Result", "Error"} envelope. Each invocation records the envelope it was given.
DURABLE_HANDLER = b'''
import json, os, boto3
lam = boto3.client("lambda")

def handler(event, context):
    with open(os.environ["SEEN"], "a") as seen:
        seen.write(json.dumps(event) + "\\n")
    arn, token = event["DurableExecutionArn"], event["CheckpointToken"]
    operations = event["InitialExecutionState"]["Operations"]
    data = json.loads(operations[0]["ExecutionDetails"]["InputPayload"])
    by_name = {op.get("Name"): op for op in operations}

    def checkpoint(*updates):
        nonlocal token
        out = lam.checkpoint_durable_execution(DurableExecutionArn=arn, CheckpointToken=token,
                                               Updates=list(updates))
        token = out.get("CheckpointToken", token)
        return {op["Id"]: op for op in out["NewExecutionState"]["Operations"]}

    if "double" not in by_name:
        checkpoint({"Id": "s1", "Type": "STEP", "Action": "START", "Name": "double"},
                   {"Id": "s1", "Type": "STEP", "Action": "SUCCEED", "Name": "double",
                    "Payload": json.dumps(data["n"] * 2)})
    if data.get("wait") and "pause" not in by_name:
        checkpoint({"Id": "w1", "Type": "WAIT", "Action": "START", "Name": "pause",
                    "WaitOptions": {"WaitSeconds": data["wait"]}})
        return {"Status": "PENDING"}
    if "approval" not in by_name:
        options = {"TimeoutSeconds": data.get("timeout", 0), "HeartbeatTimeoutSeconds": 0}
        state = checkpoint({"Id": "c1", "Type": "CALLBACK", "Action": "START", "Name": "approval",
                            "CallbackOptions": options})
        with open(os.environ["SEEN"] + ".callback", "w") as out:
            out.write(state["c1"]["CallbackDetails"]["CallbackId"])
        return {"Status": "PENDING"}
    callback = by_name["approval"]
    if callback["Status"] == "STARTED":
        return {"Status": "PENDING"}
    if callback["Status"] != "SUCCEEDED":
        return {"Status": "FAILED", "Error": callback["CallbackDetails"].get("Error", {})}
    doubled = json.loads(checkpoint()["s1"]["StepDetails"]["Result"])
    answer = {"doubled": doubled, "approval": json.loads(callback["CallbackDetails"]["Result"])}
    return {"Status": "SUCCEEDED", "Result": json.dumps(answer)}
'''
DURABLE_CONFIG = {"ExecutionTimeout": 60, "RetentionPeriodInDays": 1}


def create_durable_function(lam, tmp_path, name="durable"):
    create_function(lam, name, code=DURABLE_HANDLER, Runtime="python3.12", Handler="app.handler",
                    Timeout=30, DurableConfig=DURABLE_CONFIG,
                    Environment={"Variables": {"SEEN": str(tmp_path / "seen")}})
    return tmp_path / "seen"


def envelopes(seen):
    return [json.loads(line) for line in seen.read_text().splitlines()] if seen.exists() else []


def callback_id_of(seen):
    path = seen.with_name(seen.name + ".callback")
    assert wait_for(path.exists)
    return path.read_text()


def test_durable_invoke_waits_for_the_callback_and_answers_the_execution_result(lam, tmp_path):
    seen = create_durable_function(lam, tmp_path)
    results = []
    caller = threading.Thread(target=lambda: results.append(
        lam.invoke(FunctionName="durable", Payload=b'{"n": 21}')))
    caller.start()
    lam.send_durable_execution_callback_success(CallbackId=callback_id_of(seen), Result=b'"yes"')
    caller.join(30)
    out = results[0]
    assert json.loads(out["Payload"].read()) == {"doubled": 42, "approval": "yes"}
    assert "FunctionError" not in out
    arn = out["DurableExecutionArn"]
    assert re.fullmatch(rf"{FUNCTIONS}:durable:\$LATEST/durable-execution/[\w-]+/[\w-]+", arn)
    execution = lam.get_durable_execution(DurableExecutionArn=arn)
    assert (execution["Status"], execution["InputPayload"]) == ("SUCCEEDED", '{"n": 21}')
    assert json.loads(execution["Result"]) == {"doubled": 42, "approval": "yes"}
    assert len(envelopes(seen)) == 2                # invoked again once the callback completed


def test_durable_handler_gets_the_sdk_envelope(lam, tmp_path):
    seen = create_durable_function(lam, tmp_path)
    arn = lam.invoke(FunctionName="durable", InvocationType="Event",
                     Payload=b'{"n": 1}')["DurableExecutionArn"]
    callback_id_of(seen)
    first = envelopes(seen)[0]
    assert first["DurableExecutionArn"] == arn and first["CheckpointToken"]
    execution_op = first["InitialExecutionState"]["Operations"][0]
    assert execution_op["Id"] == arn.rsplit("/", 1)[1]
    assert (execution_op["Type"], execution_op["Status"]) == ("EXECUTION", "STARTED")
    assert execution_op["ExecutionDetails"]["InputPayload"] == '{"n": 1}'
    assert isinstance(execution_op["StartTimestamp"], int) \
        and execution_op["StartTimestamp"] > 10 ** 12


def test_durable_wait_elapses_then_the_handler_is_invoked_again(lam, tmp_path):
    seen = create_durable_function(lam, tmp_path)
    lam.invoke(FunctionName="durable", InvocationType="Event", Payload=b'{"n": 1, "wait": 1}')
    callback_id_of(seen)
    second = envelopes(seen)[1]
    wait = next(op for op in second["InitialExecutionState"]["Operations"] if op["Type"] == "WAIT")
    assert wait["Status"] == "SUCCEEDED" and wait["Id"] in second["UpdatedOperationIds"]
    assert wait["WaitDetails"]["ScheduledEndTimestamp"] - wait["StartTimestamp"] == 1000


def test_durable_callback_failure_fails_the_execution(lam, tmp_path):
    seen = create_durable_function(lam, tmp_path)
    arn = lam.invoke(FunctionName="durable", InvocationType="Event",
                     Payload=b'{"n": 1}')["DurableExecutionArn"]
    lam.send_durable_execution_callback_failure(CallbackId=callback_id_of(seen),
                                                Error={"ErrorType": "Denied", "ErrorMessage": "no"})
    assert wait_for(
        lambda: lam.get_durable_execution(DurableExecutionArn=arn)["Status"] == "FAILED")
    assert lam.get_durable_execution(DurableExecutionArn=arn)["Error"] == {"ErrorType": "Denied",
                                                                           "ErrorMessage": "no"}
    events = [e["EventType"]
              for e in lam.get_durable_execution_history(DurableExecutionArn=arn)["Events"]]
    assert events[:4] == ["ExecutionStarted", "StepStarted", "StepSucceeded", "CallbackStarted"]
    assert "CallbackFailed" in events and events[-1] == "ExecutionFailed"


def test_durable_callback_timeout_fails_it_with_callback_timeout(lam, tmp_path):
    seen = create_durable_function(lam, tmp_path)
    arn = lam.invoke(FunctionName="durable", InvocationType="Event",
                     Payload=b'{"n": 1, "timeout": 1}')["DurableExecutionArn"]
    callback_id_of(seen)
    assert wait_for(
        lambda: lam.get_durable_execution(DurableExecutionArn=arn)["Status"] == "FAILED")
    assert lam.get_durable_execution(DurableExecutionArn=arn)["Error"]["ErrorType"] \
        == "Callback.Timeout"


def test_durable_sync_invoke_of_a_failed_execution_is_a_function_error(lam, tmp_path):
    create_function(lam, "plain-durable", code=b"exports.handler = async () => 'not an envelope';",
                    DurableConfig=DURABLE_CONFIG)
    out = lam.invoke(FunctionName="plain-durable")
    assert out["FunctionError"] == "Unhandled"
    assert json.loads(out["Payload"].read())["errorType"] == "InvalidParameterValueException"
    execution = lam.get_durable_execution(DurableExecutionArn=out["DurableExecutionArn"])
    assert execution["Status"] == "FAILED"


def test_durable_checkpoint_with_a_stale_token_is_refused(lam, tmp_path):
    seen = create_durable_function(lam, tmp_path)
    arn = lam.invoke(FunctionName="durable", InvocationType="Event",
                     Payload=b'{"n": 1}')["DurableExecutionArn"]
    callback_id_of(seen)
    stale = envelopes(seen)[0]["CheckpointToken"]
    assert_error(lambda: lam.checkpoint_durable_execution(DurableExecutionArn=arn,
                                                          CheckpointToken=stale, Updates=[]),
                 "InvalidParameterValueException", 400, "Invalid checkpoint token")
    assert_error(lambda: lam.get_durable_execution_state(DurableExecutionArn=arn,
                                                         CheckpointToken=stale),
                 "InvalidParameterValueException", 400, "Invalid checkpoint token")


def test_durable_stop_pause_resume_and_delete_follow_the_status(lam, tmp_path):
    seen = create_durable_function(lam, tmp_path)
    arn = lam.invoke(FunctionName="durable", InvocationType="Event",
                     Payload=b'{"n": 1}')["DurableExecutionArn"]
    callback_id_of(seen)
    assert_error(lambda: lam.resume_durable_execution(DurableExecutionArn=arn),
                 "ResourceConflictException", 409)
    assert_error(lambda: lam.delete_durable_execution(DurableExecutionArn=arn),
                 "ResourceConflictException", 409)
    assert lam.pause_durable_execution(
        DurableExecutionArn=arn)["ResponseMetadata"]["HTTPStatusCode"] == 202
    assert lam.get_durable_execution(DurableExecutionArn=arn)["Status"] == "PAUSED"
    lam.resume_durable_execution(DurableExecutionArn=arn)
    stopped = lam.stop_durable_execution(DurableExecutionArn=arn,
                                         Error={"ErrorType": "Cancelled",
                                                "ErrorMessage": "by test"})
    assert "StopTimestamp" in stopped
    execution = lam.get_durable_execution(DurableExecutionArn=arn)
    assert (execution["Status"], execution["Error"]["ErrorType"]) == ("STOPPED", "Cancelled")
    assert_error(lambda: lam.stop_durable_execution(DurableExecutionArn=arn),
                 "InvalidParameterValueException", 400)
    assert lam.delete_durable_execution(
        DurableExecutionArn=arn)["ResponseMetadata"]["HTTPStatusCode"] == 202
    assert_error(lambda: lam.get_durable_execution(DurableExecutionArn=arn),
                 "ResourceNotFoundException", 404)


def test_durable_execution_names_are_idempotent_for_the_same_payload(lam, tmp_path):
    create_durable_function(lam, tmp_path)
    first = lam.invoke(FunctionName="durable", InvocationType="Event", Payload=b'{"n": 1}',
                       DurableExecutionName="order-1")["DurableExecutionArn"]
    again = lam.invoke(FunctionName="durable", InvocationType="Event", Payload=b'{"n": 1}',
                       DurableExecutionName="order-1")["DurableExecutionArn"]
    assert again == first and "/durable-execution/order-1/" in first
    assert_error(lambda: lam.invoke(FunctionName="durable", InvocationType="Event",
                                    Payload=b'{"n": 2}', DurableExecutionName="order-1"),
                 "DurableExecutionAlreadyStartedException", 409)


def test_durable_listing_is_newest_first_and_filters_by_status(lam, tmp_path):
    create_function(lam, "quick",
                    code=b"exports.handler = async () => ({ Status: 'SUCCEEDED', Result: '1' });",
                    DurableConfig=DURABLE_CONFIG)
    arns = [lam.invoke(FunctionName="quick", Payload=json.dumps({"i": i}))["DurableExecutionArn"]
            for i in range(3)]
    listed = lam.list_durable_executions_by_function(FunctionName="quick")["DurableExecutions"]
    assert [e["DurableExecutionArn"] for e in listed] == arns[::-1]
    oldest_first = lam.list_durable_executions_by_function(FunctionName="quick", ReverseOrder=True)
    assert [e["DurableExecutionArn"] for e in oldest_first["DurableExecutions"]] == arns
    failed = lam.list_durable_executions_by_function(FunctionName="quick",
                                                     Statuses=["FAILED", "STOPPED"])
    assert failed["DurableExecutions"] == []


@pytest.mark.parametrize("operation", ["get_durable_execution", "get_durable_execution_history",
                                       "stop_durable_execution", "delete_durable_execution"])
def test_durable_execution_unknown_arn_is_404(lam, operation):
    arn = f"{FUNCTIONS}:nope:$LATEST/durable-execution/name/id"
    assert_error(lambda: getattr(lam, operation)(DurableExecutionArn=arn),
                 "ResourceNotFoundException", 404)


def test_durable_callback_unknown_id_is_404(lam):
    assert_error(lambda: lam.send_durable_execution_callback_heartbeat(CallbackId="bm9wZQ=="),
                 "ResourceNotFoundException", 404, "Callback not found")


# ----------------------------------------------------------------------------------------------
# Account
# ----------------------------------------------------------------------------------------------

# Account: GetAccountSettings

def test_get_account_settings_limits_of_an_empty_account(lam):
    out = lam.get_account_settings()
    assert out["ResponseMetadata"]["HTTPStatusCode"] == 200
    assert out["AccountLimit"] == {"TotalCodeSize": 80530636800, "CodeSizeUnzipped": 262144000,
                                   "CodeSizeZipped": 52428800, "ConcurrentExecutions": 1000,
                                   "UnreservedConcurrentExecutions": 1000}
    assert out["AccountUsage"] == {"FunctionCount": 0, "TotalCodeSize": 0}


def test_get_account_settings_counts_functions_and_every_published_package(lam):
    with_versions(lam, 2)
    create_function(lam, "other", code=CODE)
    usage = lam.get_account_settings()["AccountUsage"]
    assert usage == {"FunctionCount": 2, "TotalCodeSize": 4 * len(CODE)}


def test_get_account_settings_unreserved_subtracts_reserved_concurrency(lam):
    create_function(lam, code=CODE)
    create_function(lam, "other", code=CODE)
    lam.put_function_concurrency(FunctionName="fn", ReservedConcurrentExecutions=300)
    lam.put_function_concurrency(FunctionName="other", ReservedConcurrentExecutions=200)
    limit = lam.get_account_settings()["AccountLimit"]
    assert (limit["ConcurrentExecutions"], limit["UnreservedConcurrentExecutions"]) == (1000, 500)


def test_get_account_settings_total_code_size_counts_layer_versions(lam):
    create_function(lam, code=CODE)
    publish_layer(lam)
    publish_layer(lam)
    usage = lam.get_account_settings()["AccountUsage"]
    assert usage == {"FunctionCount": 1, "TotalCodeSize": len(CODE) + 2 * len(SHARED_LAYER_ZIP)}


# ----------------------------------------------------------------------------------------------
# Fake-only operations
# ----------------------------------------------------------------------------------------------

# Inspector page (GET /_parlel/), rendered in headless Chromium

# Needs /usr/bin/chromium (Debian: apt-get install -y chromium, which .ci/run does); skipped
# without it.

CHROMIUM = "/usr/bin/chromium"


class VisibleText(html.parser.HTMLParser):
    """What a person sees in a rendered DOM: text outside script and style, rows, and links."""

    def __init__(self):
        super().__init__()
        self.parts, self.rows, self.links, self.tags, self.skip, self.row = [], [], [], [], 0, None

    def handle_starttag(self, tag, attrs):
        self.tags.append(tag)
        if tag in ("script", "style"):
            self.skip += 1
        elif tag == "tr":
            self.row = []
        elif tag == "a":
            self.links.append(dict(attrs).get("href"))

    def handle_endtag(self, tag):
        if tag in ("script", "style"):
            self.skip -= 1
        elif tag == "tr" and self.row is not None:
            self.rows.append(" ".join(" ".join(self.row).split()))
            self.row = None

    def handle_data(self, data):
        if not self.skip:
            self.parts.append(data)
            if self.row is not None:
                self.row.append(data)

    @property
    def text(self):
        return " ".join(" ".join(self.parts).split())


def render_inspector(server):
    """The page at /_parlel/ after its scripts ran and its first fetch of /_parlel/inspect."""
    if not os.path.exists(CHROMIUM):
        pytest.skip("needs /usr/bin/chromium (apt-get install -y chromium)")
    for budget in (3000, 10000):        # virtual time; retried once with more if the fetch was slow
        profile = tempfile.mkdtemp(prefix="inspector-chromium-")
        try:
            dom = subprocess.run(
                [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                 "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 f"--user-data-dir={profile}", f"--virtual-time-budget={budget}", "--dump-dom",
                 server.endpoint_url + "/_parlel/"],
                capture_output=True, text=True, timeout=90, check=True).stdout
        finally:
            shutil.rmtree(profile, ignore_errors=True)
        page = VisibleText()
        page.feed(dom)
        if "Updated" in page.text:      # the status line says so once a fetch succeeded
            return page
    raise AssertionError("the inspector never showed data:\n" + dom[:3000])


def test_inspector_says_when_there_are_no_functions(server, lam):
    page = render_inspector(server)
    assert "lambda_fake inspector" in page.text
    assert "No functions yet" in page.text
    assert "No invocations yet" in page.text
    assert server.endpoint_url in page.text and "us-east-1" in page.text \
        and "123456789012" in page.text


def test_inspector_shows_functions_versions_aliases_and_invocations(server, lam):
    create_function(lam, "doubler",
                    Environment={"Variables": {"TABLE": "orders", "API_KEY": "hush-hush-42"}},
                    Tags={"team": "payments"}, MemorySize=256)
    lam.publish_version(FunctionName="doubler")
    lam.update_function_configuration(FunctionName="doubler", Timeout=7)
    lam.get_waiter("function_updated_v2").wait(FunctionName="doubler")
    lam.publish_version(FunctionName="doubler")
    lam.create_alias(FunctionName="doubler", Name="live", FunctionVersion="1",
                     RoutingConfig={"AdditionalVersionWeights": {"2": 0.1}})
    url = lam.create_function_url_config(FunctionName="doubler", AuthType="NONE")["FunctionUrl"]
    create_function(lam, "thrower",
                    code=b"exports.handler = async (e) => { throw new Error('boom ' + e.why); };")
    create_function(lam, "gated")
    lam.put_function_concurrency(FunctionName="gated", ReservedConcurrentExecutions=0)

    lam.invoke(FunctionName="doubler", Payload=json.dumps({"n": 21}))
    lam.invoke(FunctionName="doubler", Qualifier="live", Payload=json.dumps({"n": 5}))
    lam.invoke(FunctionName="thrower", Payload=json.dumps({"why": "<img src=x onerror=alert(1)>"}))
    with pytest.raises(lam.exceptions.TooManyRequestsException):
        lam.invoke(FunctionName="gated", Payload=b"{}")

    page = render_inspector(server)
    text = page.text
    assert "No functions yet" not in text
    for name in ("doubler", "thrower", "gated"):
        assert name in text
    assert "nodejs20.x" in text and "index.handler" in text and "256 MB" in text and "7 s" in text
    assert "v1 v2" in text                                       # published versions
    assert re.search(r"live → v1 90%.*v2 10%", text), text       # alias with its routing weights
    assert url in page.links                                     # the function URL is a link
    assert "team=payments" in text
    assert "API_KEY" in text and "TABLE" in text                 # variable names, values hidden
    assert "hush-hush-42" not in text and "orders" not in text

    invocations = [row for row in page.rows if "RequestResponse" in row]
    assert len(invocations) == 4, page.rows
    assert "gated" in invocations[0] and "Throttled" in invocations[0]          # newest first
    assert "thrower" in invocations[1] and "Unhandled" in invocations[1] \
        and "<img" in invocations[1]
    assert "doubler" in invocations[2] and "Success" in invocations[2] \
        and '{"doubled":10' in invocations[2]
    assert "doubler" in invocations[3] and "Success" in invocations[3] \
        and '{"n": 21}' in invocations[3]
    assert "img" not in page.tags                               # the payload was shown as text,
                                                                # not markup


def test_handler_errors_are_logged_as_the_runtimes_log_them(lam):
    create_function(lam, "jsfail",
                    code=b"exports.handler = async () => { throw new RangeError('too far'); };")
    log = decoded_log(lam.invoke(FunctionName="jsfail", LogType="Tail"))
    assert re.search(r"\tERROR\tInvoke Error \t"
                     r"\{\"errorType\":\"RangeError\",\"errorMessage\":\"too far\"", log)
    create_function(lam, "pyfail", Runtime="python3.12", Handler="app.handler",
                    code=b"def handler(event, context):\n    raise ValueError('nope')\n")
    log = decoded_log(lam.invoke(FunctionName="pyfail", LogType="Tail"))
    assert log.startswith("START RequestId: ")     # INIT_START is CloudWatch's, not the tail's
    assert "[ERROR] ValueError: nope\nTraceback (most recent call last):\n" in log
    assert '\n\u00a0\u00a0File "/var/task/app.py", line 2, in handler\n' in log
    assert "\n\u00a0\u00a0\u00a0\u00a0raise ValueError('nope')\n" in log


def json_lines(log):
    """A JSON-format log's lines, each parsed (a plain print's line stays text)."""
    lines = []
    for line in log.splitlines():
        try:
            lines.append(json.loads(line))
        except ValueError:
            lines.append(line)
    return lines


def test_the_json_log_format_writes_platform_lines_and_the_runtimes_json(lam):
    lam.create_function(
        FunctionName="pyjson", Runtime="python3.12", Role=ROLE, Handler="app.handler",
        LoggingConfig={"LogFormat": "JSON", "ApplicationLogLevel": "INFO"}, Code={"ZipFile": (
            b"import logging, os\n"
            b"def handler(event, context):\n"
            b"    print('plain', os.environ['AWS_LAMBDA_LOG_FORMAT'],\n"
            b"          os.environ['AWS_LAMBDA_LOG_LEVEL'])\n"
            b"    logging.getLogger().debug('below the level')\n"
            b"    logging.getLogger('orders').info('hi', extra={'order': 7})\n"
            b"    raise ValueError('bad')\n")})
    out = lam.invoke(FunctionName="pyjson", LogType="Tail")
    start, plain, info, error, report = json_lines(decoded_log(out))
    request_id = out["ResponseMetadata"]["RequestId"]
    assert (start["type"], start["record"]["requestId"], start["record"]["version"]) == (
        "platform.start", request_id, "$LATEST")
    assert plain == "plain JSON INFO"
    assert {key: info[key] for key in ("level", "message", "logger", "requestId", "order")} == {
        "level": "INFO", "message": "hi", "logger": "orders", "requestId": request_id,
        "order": 7}
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", info["timestamp"])
    assert (error["log_level"], error["errorType"], error["errorMessage"]) == (
        "ERROR", "ValueError", "bad")
    assert report["type"] == "platform.report" and report["record"]["status"] == "error"
    assert report["record"]["metrics"]["memorySizeMB"] == 128
    create_function(lam, "jsjson", LoggingConfig={
        "LogFormat": "JSON", "ApplicationLogLevel": "WARN", "SystemLogLevel": "WARN"},
        code=b"exports.handler = async (e) => { console.info('below the level'); "
             b"console.warn('careful', 2); console.error({nested: [1]}); "
             b"console.error(new TypeError('typed')); return 1; };")
    out = lam.invoke(FunctionName="jsjson", LogType="Tail")
    request_id = out["ResponseMetadata"]["RequestId"]
    warned, nested, typed = json_lines(decoded_log(out))    # a success: no platform line at WARN
    assert {key: warned[key] for key in ("level", "requestId", "message")} == {
        "level": "WARN", "requestId": request_id, "message": "careful 2"}
    assert nested["message"] == {"nested": [1]}
    assert (typed["message"]["errorType"], typed["message"]["errorMessage"]) == (
        "TypeError", "typed")
    lam.update_function_configuration(FunctionName="jsjson", LoggingConfig={"LogFormat": "Text"})
    log = decoded_log(lam.invoke(FunctionName="jsjson", LogType="Tail"))
    assert log.startswith("START RequestId: ") and "\tINFO\tbelow the level" in log


# ----------------------------------------------------------------------------------------------
# Route table
# ----------------------------------------------------------------------------------------------

# Wire protocol and the route table

# Where real Lambda answers another 2xx than the model's responseCode.
REAL_STATUS = {"DeleteFunction": 204}


def test_route_table_matches_botocore_model():
    model = botocore.loaders.Loader().load_service_model("lambda", "service-2")["operations"]
    for method, uri, handler, status in lambda_fake.ROUTES:
        if uri.startswith("/_parlel"):
            continue
        name = lambda_fake.operation_name(handler)
        assert name in model, name
        http_spec = model[name]["http"]
        assert (method, uri) == (http_spec["method"], http_spec["requestUri"]), name
        assert status == REAL_STATUS.get(name, http_spec.get("responseCode", 200)), name


def test_unknown_route_is_json_error_naming_method_and_path(server):
    status, headers, body = raw(server, "GET", "/2015-03-31/nothing-here")
    assert status == 404
    assert headers["content-type"] == "application/json"
    assert headers["x-amzn-errortype"] == "UnknownOperationException"
    assert "GET /2015-03-31/nothing-here" in json.loads(body)["message"]


def test_wrong_method_is_405_json_error(server):
    status, headers, body = raw(server, "PATCH", "/2015-03-31/functions")
    assert status == 405
    assert json.loads(body)["__type"] == "UnknownOperationException"


def test_error_reply_has_header_type_and_lowercase_message(server, lam):
    status, headers, body = raw(server, "GET", "/2015-03-31/functions/missing")
    assert status == 404
    assert headers["x-amzn-errortype"] == "ResourceNotFoundException"
    assert json.loads(body) == {"__type": "ResourceNotFoundException", "message":
                                "Function not found: "
                                f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:missing"}


def test_body_that_is_not_json_is_invalid_request_content(server, lam):
    status, headers, body = raw(server, "POST", "/2015-03-31/functions", b"{not json",
                                {"Content-Type": "application/json"})
    assert status == 400
    reply = json.loads(body)
    assert reply["__type"] == "InvalidRequestContentException"
    assert reply["message"].startswith("Could not parse request body into json: ")


def test_unexpected_exception_is_service_exception_and_server_keeps_serving(server, lam,
                                                                            monkeypatch, capsys):
    def broken(*args):
        raise RuntimeError("a bug")
    monkeypatch.setattr(lambda_fake, "find_function", broken)
    assert_error(lambda: lam.get_function(FunctionName="fn"), "ServiceException", 500)
    assert "RuntimeError: a bug" in capsys.readouterr().err
    monkeypatch.undo()
    assert raw(server, "GET", "/_parlel/health")[0] == 200


def test_oversized_request_is_refused_before_it_is_read(server):
    status, headers, body = raw(server, "POST", "/2015-03-31/functions", b"",
                                {"Content-Length": str(lambda_fake.MAX_REQUEST_BYTES + 1)})
    assert status == 413
    assert json.loads(body)["message"] == (
        "Request must be smaller than 70167211 bytes for the CreateFunction operation")


# ----------------------------------------------------------------------------------------------
# HTTP handler
# ----------------------------------------------------------------------------------------------

# Optional SigV4 verification

@pytest.fixture(scope="module")
def signing_server():
    with LambdaServer(0, verify_signatures={"AKIDEXAMPLE": "s3cret"}) as running:
        yield running


def signed_client(server, key="AKIDEXAMPLE", secret="s3cret"):
    return boto3.client("lambda", endpoint_url=server.endpoint_url, region_name=REGION,
                        aws_access_key_id=key, aws_secret_access_key=secret,
                        config=Config(retries={"total_max_attempts": 1}))


def test_signed_requests_with_a_known_key_pass(signing_server):
    signing_server.reset()
    lam = signed_client(signing_server)
    create_function(lam, "signed")
    assert lam.get_function(FunctionName=f"{FUNCTIONS}:signed",
                            Qualifier="$LATEST")["Configuration"]["Version"] == "$LATEST"
    assert invoke_json(lam, "signed", {"n": 3})[1]["doubled"] == 6


@pytest.mark.parametrize("key, secret, code, message", [
    ("AKIDEXAMPLE", "wrong", "InvalidSignatureException",
     "The request signature we calculated does not match"),
    ("AKIDUNKNOWN", "s3cret", "UnrecognizedClientException",
     "The security token included in the request is invalid."),
])
def test_badly_signed_requests_are_refused(signing_server, key, secret, code, message):
    assert_error(lambda: signed_client(signing_server, key, secret).list_functions(), code, 403,
                 message)


def test_unsigned_and_expired_requests_are_refused(signing_server):
    status, headers, body = raw(signing_server, "GET", "/2015-03-31/functions")
    assert (status, headers["x-amzn-errortype"]) == (403, "MissingAuthenticationTokenException")
    stale = {"X-Amz-Date": "20200101T000000Z",
             "Authorization": "AWS4-HMAC-SHA256 "
                              "Credential=AKIDEXAMPLE/20200101/us-east-1/lambda/aws4_request, "
                              "SignedHeaders=host;x-amz-date, Signature=" + "0" * 64}
    status, headers, body = raw(signing_server, "GET", "/2015-03-31/functions", headers=stale)
    assert (status, headers["x-amzn-errortype"]) == (403, "InvalidSignatureException")
    assert json.loads(body)["message"].startswith("Signature expired: 20200101T000000Z is now "
                                                  "earlier than")


def test_fake_paths_need_no_signature(signing_server):
    assert raw(signing_server, "GET", "/_parlel/health")[0] == 200


@pytest.mark.parametrize("name, attributes", [("../../escaped.js", 0), ("/etc/cron.d/x", 0),
                                              ("index.js", 0o120777 << 16)])
def test_create_function_with_unsafe_zip_entries_is_refused(lam, name, attributes):
    package = io.BytesIO()
    with zipfile.ZipFile(package, "w") as archive:
        entry = zipfile.ZipInfo(name)
        entry.external_attr = attributes
        archive.writestr(entry, "/etc/passwd")
    assert_error(lambda: create_function(lam, "slip", code=package.getvalue()),
                 "InvalidParameterValueException", 400,
                 f"The package holds an unsafe entry: {name}")
    assert lam.list_functions()["Functions"] == []


def test_cli_warns_when_not_bound_to_loopback():
    process = subprocess.Popen([sys.executable, lambda_fake.__file__, "0", "--host", "0.0.0.0",
                                "--quiet"],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        process.stdout.readline()
        assert "WARNING: listening on 0.0.0.0, not loopback" in process.stderr.readline()
    finally:
        process.terminate()
        process.wait()
        close_pipes(process)


def test_retired_workers_leave_no_process_behind(server, lam):
    create_function(lam, "retiring", code=(
        b"const { spawn } = require('child_process');\n"
        b"exports.handler = async () => "
        b"({ worker: process.pid, child: spawn('sleep', ['60']).pid });"))
    first = invoke_json(lam, "retiring")[1]
    lam.update_function_configuration(FunctionName="retiring", Timeout=5)
    assert wait_for(lambda: not alive(first["worker"]) and not alive(first["child"]))
    assert invoke_json(lam, "retiring")[1]["worker"] != first["worker"]


# Where requests come from: cross-site requests and DNS rebinding are refused

EVIL = {"Origin": "http://evil.example", "Sec-Fetch-Site": "cross-site",
        "Content-Type": "text/plain"}
RUNS_ID = (b"const { execSync } = require('child_process');\n"
           b"exports.handler = async () => execSync('id').toString();\n")


def assert_refused(status, headers, body, fragment):
    assert status == 403, body
    assert headers["x-amzn-errortype"] == "AccessDeniedException"
    reply = json.loads(body)
    assert reply["__type"] == "AccessDeniedException" and fragment in reply["message"], reply
    assert "access-control-allow-origin" not in headers


def test_a_cross_site_page_can_neither_create_nor_invoke_a_function(server, lam, tmp_path):
    marker = tmp_path / "ran"
    create_function(lam, "victim", code=(
        b"exports.handler = async () => require('fs').writeFileSync('%s', 'x');"
        % str(marker).encode()))
    attack = json.dumps({"FunctionName": "evil", "Runtime": "nodejs20.x", "Role": ROLE,
                         "Handler": "index.handler",
                         "Code": {"ZipFile": base64.b64encode(RUNS_ID).decode()}}).encode()
    assert_refused(*raw(server, "POST", "/2015-03-31/functions", attack, EVIL),
                   "it comes from a web page at http://evil.example")
    assert_refused(*raw(server, "POST", "/2015-03-31/functions/victim/invocations", b"{}", EVIL),
                   "--allow-origin http://evil.example")
    assert [f["FunctionName"] for f in lam.list_functions()["Functions"]] == ["victim"]
    assert not marker.exists()
    assert invoke_json(lam, "victim")[0]["StatusCode"] == 200 and marker.exists()   # SDKs pass


@pytest.mark.parametrize("headers, fragment", [
    ({"Sec-Fetch-Site": "cross-site"}, "the browser marks it cross-site"),
    ({"Sec-Fetch-Site": "same-site"}, "the browser marks it same-site"),
    ({"Origin": "http://localhost:3000"}, "a web page at http://localhost:3000"),
    ({"Origin": "null"}, "a web page at null"),
    ({"Referer": "https://evil.example/page.html"}, "a web page at https://evil.example"),
    ({"Origin": "http://127.0.0.1:1", "Sec-Fetch-Site": "same-site"}, "http://127.0.0.1:1"),
])
@pytest.mark.parametrize("method, path", [
    ("GET", "/2015-03-31/functions"), ("POST", "/_parlel/reset"), ("GET", "/_parlel/inspect"),
    ("GET", "/_parlel/"), ("GET", "/_parlel/health")])
def test_requests_from_web_pages_are_refused_and_change_nothing(server, lam, headers, fragment,
                                                                method, path):
    create_function(lam, "kept")
    assert_refused(*raw(server, method, path, b"", headers), fragment)
    assert lam.get_function(FunctionName="kept")["Configuration"]["FunctionName"] == "kept"


def test_a_refusal_is_logged_with_how_to_allow_it(server, lam, capsys):
    raw(server, "POST", "/2015-03-31/functions", b"{}", EVIL)
    assert ("lambda_fake: refused POST /2015-03-31/functions: it comes from a web page at "
            "http://evil.example; to allow it, start lambda_fake with --allow-origin "
            "http://evil.example (or LAMBDA_FAKE_ALLOW_ORIGINS)") in capsys.readouterr().err


def test_the_fakes_own_page_calling_home_is_answered(server, lam):
    own = f"http://127.0.0.1:{server.port}"
    status, _, body = raw(server, "GET", "/_parlel/inspect", b"",
                          {"Referer": own + "/_parlel/", "Sec-Fetch-Site": "same-origin"})
    assert status == 200 and "functions" in json.loads(body)
    status, _, _ = raw(server, "POST", "/_parlel/reset", b"",
                       {"Origin": own, "Sec-Fetch-Site": "same-origin"})
    assert status == 200


@pytest.mark.parametrize("host", ["evil.example:4593", "evil.example", "localhost.evil.example",
                                  "127.0.0.1.nip.io:80", "lambda-fake:4571"])
def test_a_rebinding_host_is_refused(server, lam, host):
    lam.create_function(FunctionName="secret", Runtime="nodejs20.x", Role=ROLE,
                        Handler="index.handler", Code={"ZipFile": DOUBLER},
                        Environment={"Variables": {"TOKEN": "s3cret"}})
    for path in ("/_parlel/inspect", "/2015-03-31/functions/secret", "/_parlel/health"):
        status, headers, body = raw(server, "GET", path, b"", {"Host": host})
        assert_refused(status, headers, body, f"its Host header names {host.split(':')[0]!r}")
        assert b"s3cret" not in body


@pytest.mark.parametrize("host", ["localhost", "LOCALHOST:4571", "127.0.0.1:80", "127.1.2.3",
                                  "[::1]:4571", "10.0.0.7:4571", "app.localhost:4571",
                                  "localhost.:4571"])
def test_loopback_names_and_ip_addresses_are_answered(server, host):
    status, _, body = raw(server, "GET", "/_parlel/health", b"", {"Host": host})
    assert status == 200 and json.loads(body)["status"] == "ok"


def test_allow_hosts_admits_a_service_name():
    with LambdaServer(0, allow_hosts="lambda-fake,other") as running:
        for host in ("lambda-fake:4571", "other", "LAMBDA-FAKE"):
            assert raw(running, "GET", "/_parlel/health", b"", {"Host": host})[0] == 200
        assert raw(running, "GET", "/_parlel/health", b"", {"Host": "third:4571"})[0] == 403


def test_an_allowed_origin_gets_its_preflight_and_cors_headers():
    app = "http://localhost:3000"
    with LambdaServer(0, allow_origins=[app]) as running:
        lam = client_for(running)
        status, headers, _ = raw(running, "OPTIONS", "/2015-03-31/functions", b"", {
            "Origin": app, "Sec-Fetch-Site": "same-site", "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "authorization,content-type,x-amz-date",
            "Access-Control-Request-Private-Network": "true"})
        assert status == 204
        assert headers["access-control-allow-origin"] == app
        assert "POST" in headers["access-control-allow-methods"]
        assert headers["access-control-allow-headers"] == "authorization,content-type,x-amz-date"
        assert headers["access-control-allow-private-network"] == "true"
        body = json.dumps({"FunctionName": "fromweb", "Runtime": "nodejs20.x", "Role": ROLE,
                           "Handler": "index.handler",
                           "Code": {"ZipFile": base64.b64encode(DOUBLER).decode()}}).encode()
        status, headers, _ = raw(running, "POST", "/2015-03-31/functions", body, {
            "Origin": app, "Sec-Fetch-Site": "same-site", "Content-Type": "application/json"})
        assert status == 201
        assert headers["access-control-allow-origin"] == app
        assert "x-amz-function-error" in headers["access-control-expose-headers"]
        assert invoke_json(lam, "fromweb", {"n": 2})[1]["doubled"] == 4
        status, headers, body = raw(running, "OPTIONS", "/2015-03-31/functions", b"", {
            "Origin": "http://evil.example", "Access-Control-Request-Method": "POST"})
        assert_refused(status, headers, body, "http://evil.example")


def test_allow_origin_star_admits_any_page():
    with LambdaServer(0, allow_origins="*") as running:
        status, headers, _ = raw(running, "GET", "/2015-03-31/functions", b"",
                                 {"Origin": "http://anything.example", "Sec-Fetch-Site": "cross-site"})
        assert status == 200 and headers["access-control-allow-origin"] == "http://anything.example"


def test_cli_allow_options_come_from_the_environment():
    process, endpoint = start_cli("0", env={"LAMBDA_FAKE_ALLOW_HOSTS": "lambda-fake",
                                            "LAMBDA_FAKE_ALLOW_ORIGINS": "http://localhost:5173"})
    try:
        port = int(endpoint.rsplit(":", 1)[1])
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        for headers, expected in (({"Host": "lambda-fake:4571"}, 200),
                                  ({"Host": "elsewhere:4571"}, 403),
                                  ({"Origin": "http://localhost:5173"}, 200),
                                  ({"Origin": "http://localhost:5174"}, 403)):
            connection.request("GET", "/2015-03-31/functions", headers=headers)
            response = connection.getresponse()
            response.read()
            assert response.status == expected, headers
            if response.getheader("Connection") == "close":
                connection.close()
        connection.close()
    finally:
        stop_cli(process)


def test_a_function_url_called_cross_origin_answers_with_its_own_cors(server, lam):
    create_function(lam, "web", code=b"exports.handler = async () => ({ ok: true });")
    url = lam.create_function_url_config(FunctionName="web", AuthType="NONE", Cors={
        "AllowOrigins": ["http://app.example"], "AllowMethods": ["POST"]})["FunctionUrl"]
    page = {"Origin": "http://app.example", "Sec-Fetch-Site": "cross-site"}
    for by_host in (True, False):
        status, headers, body = url_request(server, url, "POST", "/", b"{}", page, by_host=by_host)
        assert (status, json.loads(body)) == (200, {"ok": True})
        assert ("Access-Control-Allow-Origin", "http://app.example") in headers
        status, headers, _ = url_request(server, url, "OPTIONS", "/", b"", dict(
            page, **{"Access-Control-Request-Method": "POST"}), by_host=by_host)
        assert ("Access-Control-Allow-Methods", "POST") in headers
        status, headers, body = url_request(server, url, "POST", "/", b"{}", {
            "Origin": "http://other.example", "Sec-Fetch-Site": "cross-site"}, by_host=by_host)
        assert status == 200 and "Access-Control-Allow-Origin" not in dict(headers)
    status, _, _ = url_request(server, url, "POST", "/", b"{}", dict(page, Host="evil.example"),
                               by_host=False)
    assert status == 403                # a rebinding page cannot reach a URL by its path form


# ----------------------------------------------------------------------------------------------
# LambdaServer
# ----------------------------------------------------------------------------------------------

# LambdaServer and the command line

def test_server_port_zero_exposes_real_port_and_endpoint_url():
    with LambdaServer(0) as first, LambdaServer(0) as second:
        assert first.port != 0 and second.port != first.port
        assert first.endpoint_url == f"http://127.0.0.1:{first.port}"
        create_function(client_for(first), "only-in-first")
        names = [f["FunctionName"] for f in client_for(second).list_functions()["Functions"]]
        assert names == []


def test_server_stop_closes_socket(tmp_path):
    running = LambdaServer(0).start()
    port = running.port
    running.stop()
    with pytest.raises(OSError):
        http.client.HTTPConnection("127.0.0.1", port, timeout=2).request("GET", "/_parlel/health")


def test_stop_ends_every_worker_process():
    running = LambdaServer(0).start()
    lam = client_for(running)
    create_function(lam, "keeps-a-child", code=(
        b"const { spawn } = require('child_process');\n"
        b"exports.handler = async () => { const c = spawn('sleep', ['60']); return c.pid; };\n"))
    _, child_pid = invoke_json(lam, "keeps-a-child")
    worker_pids = running.store.runner.pool.pids()
    assert worker_pids and os.path.exists(f"/proc/{child_pid}")
    running.stop()
    assert wait_for(lambda: not any(alive(pid) for pid in worker_pids + [child_pid]))


def alive(pid):
    try:
        with open(f"/proc/{pid}/status") as status:
            return "State:\tZ" not in status.read()
    except (FileNotFoundError, ProcessLookupError):     # gone, or reaped while being read
        return False


def test_health_counts_functions(server, lam):
    create_function(lam, "one")
    create_function(lam, "two")
    status, _, body = raw(server, "GET", "/_parlel/health")
    assert status == 200
    assert json.loads(body) == {"status": "ok", "service": "lambda", "functions": 2}


def test_reset_path_clears_all_state(server, lam):
    create_function(lam, "gone")
    status, _, _ = raw(server, "POST", "/_parlel/reset")
    assert status == 200
    assert lam.list_functions()["Functions"] == []


def test_keep_alive_serves_several_requests_on_one_connection(server, lam):
    connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
    for _ in range(3):
        connection.request("GET", "/_parlel/health")
        response = connection.getresponse()
        assert response.status == 200 and json.loads(response.read())["status"] == "ok"
    connection.close()


def test_cli_prints_endpoint_serves_and_stops_on_sigterm():
    process = subprocess.Popen([sys.executable, lambda_fake.__file__, "0", "--quiet"],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        line = process.stdout.readline()
        match = re.search(r"listening on (http://127\.0\.0\.1:(\d+))", line)
        assert match, line
        connection = http.client.HTTPConnection("127.0.0.1", int(match[2]), timeout=10)
        connection.request("GET", "/_parlel/health")
        assert connection.getresponse().status == 200
        connection.close()
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=10) == 0
    finally:
        process.kill()
        process.wait()
        close_pipes(process)


def test_cli_logs_one_line_per_request_unless_quiet():
    process = subprocess.Popen([sys.executable, lambda_fake.__file__, "0"],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        port = int(re.search(r":(\d+)$", process.stdout.readline().strip())[1])
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        connection.request("GET", "/_parlel/health")
        connection.getresponse().read()
        connection.close()
        line = process.stderr.readline()
        assert re.fullmatch(r"GET /_parlel/health 200 \d+\.\dms\n", line), line
    finally:
        process.send_signal(signal.SIGINT)
        assert process.wait(timeout=10) == 0
        close_pipes(process)


def test_cli_busy_port_says_what_to_do():
    with LambdaServer(0) as running:
        result = subprocess.run([sys.executable, lambda_fake.__file__, str(running.port)],
                                capture_output=True, text=True, timeout=10)
    assert result.returncode == 1
    assert "Is another server using that port?" in result.stderr


# Reliability and security: quotas, malformed requests, hostile handlers, processes, races

def test_invoke_event_payload_over_1_mb_is_413(lam):
    create_function(lam, "quota")
    payload = json.dumps({"x": "a" * (1024 * 1024)})
    assert_error(lambda: lam.invoke(FunctionName="quota", InvocationType="Event", Payload=payload),
                 "RequestEntityTooLargeException", 413,
                 f"{len(payload)} byte payload is too large for the Event invocation type (limit "
                 "1048576 bytes)")


def test_invoke_async_payload_over_256_kb_is_413(lam):
    create_function(lam, "quota")
    assert_error(lambda: lam.invoke_async(FunctionName="quota",
                                          InvokeArgs=b'"' + b"a" * 262144 + b'"'),
                 "RequestEntityTooLargeException", 413, "limit 262144 bytes")


def test_create_function_zip_over_50_mb_is_413(lam):
    too_big = b"PK\x03\x04" + bytes(50 * 1024 * 1024)
    assert_error(lambda: create_function(lam, "huge", code=too_big),
                 "RequestEntityTooLargeException", 413,
                 "Zipped size must be smaller than 52428800 bytes")
    assert lam.list_functions()["Functions"] == []


@pytest.mark.parametrize("method, path, body, headers, code", [
    ("POST", "/2015-03-31/functions", b'{"FunctionName": "\xff\xfe"}', {},
     "InvalidRequestContentException"),
    ("POST", "/2015-03-31/functions", b"{}", {"Content-Length": "two"},
     "InvalidRequestContentException"),
    ("GET", "/2015-03-31/functions/..%2F..%2Fetc%2Fpasswd", b"", {}, "ValidationException"),
    ("GET", "/2015-03-31/functions/%E2%98%83", b"", {}, "ValidationException"),
    ("GET", "/2015-03-31/functions/" + "a" * 10000, b"", {}, "ValidationException"),
    ("GET", "/2015-03-31/functions/fn%ZZ", b"", {}, "ValidationException"),
    ("DELETE", "/2015-03-31/functions/%00", b"", {}, "ValidationException"),
])
def test_malformed_requests_get_a_json_error_and_change_nothing(server, lam, method, path, body,
                                                                headers, code):
    create_function(lam, "keep")
    status, reply_headers, reply = raw(server, method, path, body, headers)
    assert 400 <= status < 500 and reply_headers["content-type"] == "application/json"
    assert json.loads(reply)["__type"] == code
    assert [f["FunctionName"] for f in lam.list_functions()["Functions"]] == ["keep"]


def test_chunked_request_body_is_read(server, lam):
    body = json.dumps({"FunctionName": "chunked", "Role": ROLE, "Runtime": "nodejs20.x",
                       "Handler": "index.handler",
                       "Code": {"ZipFile": base64.b64encode(DOUBLER).decode()}}).encode()
    chunks = b"".join(b"%x\r\n%s\r\n" % (len(body[i:i + 100]), body[i:i + 100])
                      for i in range(0, len(body), 100))
    connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
    connection.putrequest("POST", "/2015-03-31/functions")
    connection.putheader("Transfer-Encoding", "chunked")
    connection.endheaders()
    connection.send(chunks + b"0\r\n\r\n")
    assert connection.getresponse().status == 201
    connection.close()
    assert lam.get_function(FunctionName="chunked")["Configuration"]["CodeSize"] == len(DOUBLER)


def test_a_burst_of_200_connections_is_served(server, lam):
    results = []

    def one():
        status, _, _ = raw(server, "GET", "/_parlel/health")
        results.append(status)
    threads = [threading.Thread(target=one) for _ in range(200)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert results == [200] * 200


def test_a_slow_client_does_not_block_others(server, lam):
    import socket
    slow = socket.create_connection(("127.0.0.1", server.port))
    slow.sendall(b"POST /2015-03-31/functions HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n{")
    try:
        assert raw(server, "GET", "/_parlel/health")[0] == 200
    finally:
        slow.close()


def mutated(rng, method, path, body):
    """One random mutation of a valid request: its bytes, its JSON values or its path."""
    choice = rng.randrange(6)
    if choice == 0 and body:
        position = rng.randrange(len(body))
        return method, path, body[:position] + bytes([rng.randrange(256)]) + body[position + 1:]
    if choice == 1 and body:
        return method, path, body[:rng.randrange(len(body))]
    if choice in (2, 3) and body.startswith(b"{"):
        document = json.loads(body)
        key = rng.choice(sorted(document))
        document[key] = rng.choice([None, [], {}, -1, 2 ** 40, 1.5, True, "", "x" * 3000, "\u2603",
                                    {"nested": [1, {"deep": None}]}, [None], "../../etc"])
        return method, path, json.dumps(document).encode()
    if choice == 4:
        segments = path.split("/")
        index = rng.randrange(1, len(segments))
        segments[index] = rng.choice(["..", "%2F", "%00", "%C3%A9", "a" * 300, "", "%",
                                      "%zz", "$LATEST"])
        return method, "/".join(segments), body
    return rng.choice(["GET", "PUT", "POST", "DELETE", "PATCH"]), path, body


def test_a_body_nested_100000_levels_deep_gets_a_4xx_from_every_operation(server, lam):
    create_function(lam, "fn")
    deep = b"[" * 100000 + b"]" * 100000
    for method, uri, handler, _ in lambda_fake.ROUTES:
        path = re.sub(r"\{[^}]+\}", "fn", uri)
        status, headers, body = raw(server, method, path, deep,
                                    {"Content-Type": "application/json"})
        name = lambda_fake.operation_name(handler)
        assert 400 <= status < 500, (name, status, body[:200])
        if status == 400:
            assert json.loads(body)["__type"] == "InvalidRequestContentException", name
            assert "nesting depth" in json.loads(body)["message"], name
    assert invoke_json(lam, "fn", {"n": 2})[1]["doubled"] == 4


def test_random_mutations_of_valid_requests_never_break_the_server(server, lam):
    rng = random.Random(20261128)
    create_function(lam, "target", code=b"exports.handler = async (e) => e;")
    code = base64.b64encode(b"exports.handler = async () => 1;").decode()
    valid = [
        ("POST", "/2015-03-31/functions", json.dumps({
            "FunctionName": "made", "Role": ROLE, "Runtime": "nodejs20.x",
            "Handler": "index.handler",
            "Code": {"ZipFile": code}, "Timeout": 3,
            "Environment": {"Variables": {"AB": "c"}}}).encode()),
        ("PUT", "/2015-03-31/functions/target/configuration", b'{"Timeout": 5, "MemorySize": 256}'),
        ("POST", "/2015-03-31/functions/target/invocations", b'{"hello": "world"}'),
        ("POST", "/2015-03-31/functions/target/aliases",
         b'{"Name": "live", "FunctionVersion": "$LATEST"}'),
        ("PUT", "/2017-10-31/functions/target/concurrency", b'{"ReservedConcurrentExecutions": 5}'),
        ("POST", f"/2017-03-31/tags/{FUNCTIONS}:target", b'{"Tags": {"k": "v"}}'),
        ("POST", "/2015-03-31/functions/target/policy",
         b'{"StatementId": "s", "Action": "lambda:InvokeFunction", '
         b'"Principal": "s3.amazonaws.com"}'),
        ("PUT", "/2019-09-25/functions/target/event-invoke-config", b'{"MaximumRetryAttempts": 1}'),
        ("POST", "/2018-10-31/layers/lib/versions",
         json.dumps({"Content": {"ZipFile": base64.b64encode(
            zip_of({"a.txt": "a"})).decode()}}).encode()),
        ("GET", "/2015-03-31/functions?MaxItems=5", b""),
    ]

    def snapshot():
        return json.dumps([lam.list_functions()["Functions"],
                           lam.list_tags(Resource=f"{FUNCTIONS}:target")["Tags"]], sort_keys=True)

    for _ in range(250):
        method, path, body = mutated(rng, *rng.choice(valid))
        before = snapshot()
        status, headers, reply = raw(server, method, path, body,
                                     {"Content-Type": "application/json"})
        assert status < 500, (method, path, body[:200], reply)
        if reply:
            assert headers.get("content-type", "").startswith("application/json"), \
                (path, reply[:200])
            assert b"Traceback" not in reply and b"<html" not in reply.lower()
        if status >= 400:
            assert snapshot() == before, (method, path, body[:200], reply)
    assert raw(server, "GET", "/_parlel/health")[0] == 200


def test_busy_handler_never_stalls_the_server(server, lam):
    create_function(lam, "spinner", Timeout=2, code=b"exports.handler = () => { while (true) {} };")
    spinning = threading.Thread(target=invoke_json, args=(lam, "spinner"))
    spinning.start()
    assert wait_for(lambda: server.store.runner.pool.inflight_of(arn("spinner")) == 1)
    started = time.monotonic()
    assert raw(server, "GET", "/_parlel/health")[0] == 200
    assert time.monotonic() - started < 1
    spinning.join()


def test_handler_flooding_output_is_capped(server, lam):
    create_function(lam, "flood", Timeout=30, code=(
        b"exports.handler = async () => { const mb = 'x'.repeat(1 << 20);"
        b" for (let i = 0; i < 100; i++) process.stdout.write(mb); return 'survived'; };"))
    out = lam.invoke(FunctionName="flood", LogType="Tail")
    assert json.loads(out["Payload"].read()) == "survived"
    entry = invocations_of(server, "flood")[-1]
    assert len(entry["log"]) <= lambda_fake.MAX_RECORDED_LOG_CHARS
    assert len(base64.b64decode(out["LogResult"])) == 4096


@pytest.mark.parametrize("runtime, handler, code, message", [
    ("nodejs20.x", "index.handler",
     b"exports.handler = async () => process.kill(process.pid, 'SIGSEGV');",
     "Runtime exited with error: signal: segmentation fault"),
    ("nodejs20.x", "index.handler",
     b"exports.handler = async () => process.kill(process.pid, 'SIGKILL');",
     "Runtime exited with error: signal: killed"),
    ("python3.12", "app.handler", b"import os\ndef handler(event, context):\n    os._exit(7)\n",
     "Runtime exited with error: exit status 7"),
])
def test_handler_that_kills_its_runtime_is_an_exit_error_and_the_next_invoke_works(lam, runtime,
                                                                                   handler,
                                                                                   code, message):
    create_function(lam, "dies", Runtime=runtime, Handler=handler, code=code)
    out, payload = invoke_json(lam, "dies")
    request_id = out["ResponseMetadata"]["HTTPHeaders"]["x-amzn-requestid"]
    assert out["FunctionError"] == "Unhandled"
    assert payload == {"errorType": "Runtime.ExitError",
                       "errorMessage": f"RequestId: {request_id} Error: {message}"}
    out, _ = invoke_json(lam, "dies")
    assert out["FunctionError"] == "Unhandled"          # a fresh worker, dying the same way


def test_reset_ends_every_worker_and_the_children_they_started(server, lam):
    create_function(lam, "parent", code=(
        b"const { spawn } = require('child_process');\n"
        b"exports.handler = async () => spawn('sleep', ['60']).pid;"))
    _, child = invoke_json(lam, "parent")
    workers = server.store.runner.pool.pids("loading", "busy", "idle")
    server.reset()
    assert wait_for(lambda: not any(alive(pid) for pid in workers + [child]))
    create_function(lam, "after")
    assert invoke_json(lam, "after", {"n": 1})[1]["doubled"] == 2


def test_stop_removes_the_temporary_directory():
    running = LambdaServer(0).start()
    lam = client_for(running)
    create_function(lam, "fn")
    invoke_json(lam, "fn", {"n": 1})
    root = running.store.runner.house.root
    assert os.path.isdir(root)
    running.stop()
    assert not os.path.exists(root)


def test_the_temporary_directory_of_a_killed_server_is_removed_by_the_next_one(server, lam):
    create_function(lam, "fn")          # a live server's directory, which must stay
    base = lambda_fake.workdir_base() or tempfile.gettempdir()
    workdirs = lambda: {name for name in os.listdir(base) if name.startswith("lambda_fake-")}
    before = workdirs()
    process, endpoint = start_cli("0", "--quiet")
    killed = client_for(type("Server", (), {"endpoint_url": endpoint})())
    create_function(killed, "fn")
    held = set()                        # the directory of its .owner lock, among its files
    for fd in os.listdir(f"/proc/{process.pid}/fd"):
        try:
            held.add(os.path.basename(os.path.dirname(os.readlink(f"/proc/{process.pid}/fd/{fd}"))))
        except FileNotFoundError:       # a file it closed meanwhile
            pass
    abandoned = (workdirs() - before) & held      # (another suite's may come and go meanwhile)
    assert len(abandoned) == 1
    process.kill()                      # no stop(): its directory stays behind
    stop_cli(process)
    assert workdirs() >= abandoned
    with LambdaServer(0) as running:    # the next server removes it, and only it
        create_function(client_for(running), "fn")
        assert not workdirs() & abandoned
        assert os.path.basename(server.store.runner.house.root) in workdirs()


def descendants(pid):
    """Every live process whose ancestry leads to pid."""
    parents = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as stat:
                    parents[int(entry)] = int(stat.read().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                pass
    found, frontier = set(), {pid}
    while frontier:
        frontier = {child for child, parent in parents.items() if parent in frontier} - found
        found |= frontier
    return {p for p in found if alive(p)}


@pytest.mark.parametrize("stop_signal", [signal.SIGTERM, signal.SIGINT])
def test_cli_signal_leaves_no_process_behind(stop_signal):
    process = subprocess.Popen([sys.executable, lambda_fake.__file__, "0", "--quiet"],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        port = int(re.search(r":(\d+)$", process.stdout.readline().strip())[1])
        lam = boto3.client("lambda", endpoint_url=f"http://127.0.0.1:{port}", region_name=REGION,
                           aws_access_key_id="test", aws_secret_access_key="test")
        create_function(lam, "parent", code=(
            b"const { spawn } = require('child_process');\n"
            b"exports.handler = async () => spawn('sleep', ['60']).pid;"))
        invoke_json(lam, "parent")
        family = descendants(process.pid)
        assert len(family) >= 2                         # the worker and its child
        process.send_signal(stop_signal)
        assert process.wait(timeout=10) == 0
        assert wait_for(lambda: not any(alive(pid) for pid in family))
    finally:
        process.kill()
        process.wait()
        close_pipes(process)


def test_concurrent_creates_of_one_name_one_wins(server, lam):
    body = json.dumps({"FunctionName": "racer", "Role": ROLE, "Runtime": "nodejs20.x",
                       "Handler": "index.handler",
                       "Code": {"ZipFile": base64.b64encode(DOUBLER).decode()}})
    statuses = []
    threads = [threading.Thread(target=lambda: statuses.append(raw(server, "POST",
                                                                   "/2015-03-31/functions",
                                                                   body.encode())[0]))
               for _ in range(10)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(statuses) == [201] + [409] * 9


def test_concurrent_publishes_give_distinct_gap_free_versions(server, lam):
    create_function(lam, "versions")
    versions = []

    def publish(i):
        versions.append(lam.update_function_code(
            FunctionName="versions", Publish=True,
            ZipFile=f"exports.handler = async () => {i};".encode())["Version"])
    threads = [threading.Thread(target=publish, args=(i,)) for i in range(10)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(versions, key=int) == [str(n) for n in range(1, 11)]


def test_200_concurrent_creates_are_all_listed(server, lam):
    def create(i):
        body = json.dumps({"FunctionName": f"many-{i:03d}", "Role": ROLE, "Runtime": "nodejs20.x",
                           "Handler": "index.handler",
                           "Code": {"ZipFile": base64.b64encode(DOUBLER).decode()}})
        assert raw(server, "POST", "/2015-03-31/functions", body.encode())[0] == 201
    threads = [threading.Thread(target=create, args=(i,)) for i in range(200)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    names = [f["FunctionName"] for page in lam.get_paginator("list_functions").paginate()
             for f in page["Functions"]]
    assert names == [f"many-{i:03d}" for i in range(200)]


def test_code_updates_racing_invokes_never_mix_or_fail(lam):
    create_function(lam, "swapped", code=b"exports.handler = async () => 'v1';")
    results, stop = [], threading.Event()

    def invoker():
        client = client_for_endpoint(lam.meta.endpoint_url)
        while not stop.is_set():
            try:
                out = client.invoke(FunctionName="swapped")
                results.append((out.get("FunctionError"), json.loads(out["Payload"].read())))
            except Exception as error:  # a transport error is a failure, not a thread warning
                results.append(("raised", repr(error)))
    threads = [threading.Thread(target=invoker) for _ in range(3)]
    for thread in threads:
        thread.start()
    for i in range(8):
        lam.update_function_code(FunctionName="swapped",
                                 ZipFile=f"exports.handler = async () => 'v{i % 2 + 1}';".encode())
    stop.set()
    for thread in threads:
        thread.join()
    assert results
    assert [r for r in results if r[0] is not None or r[1] not in ("v1", "v2")] == []


def test_packages_with_the_same_bytes_unpack_concurrently_into_one_directory(tmp_path):
    source = b"exports.handler = async () => 'same';"
    packages = [lambda_fake.Package(source) for _ in range(8)]   # each with its own lock
    results, gate = [], threading.Barrier(len(packages))

    def unpack(package):
        gate.wait()
        try:
            results.append(lambda_fake.unpack(package, str(tmp_path), "nodejs20.x",
                                              "index.handler"))
        except Exception as error:
            results.append(error)
    threads = [threading.Thread(target=unpack, args=(p,)) for p in packages]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(set(results)) == 1 and os.path.isdir(results[0])
    assert os.listdir(tmp_path) == [os.path.basename(results[0])]   # no staging left behind


def client_for_endpoint(endpoint_url):
    return boto3.client("lambda", endpoint_url=endpoint_url, region_name=REGION,
                        aws_access_key_id="test",
                        aws_secret_access_key="test",
                        config=Config(retries={"total_max_attempts": 1}))


def test_reset_during_in_flight_invokes_leaves_a_healthy_server(server, lam):
    create_function(lam, "slow", Timeout=10,
                    code=b"exports.handler = () => new Promise((r) => setTimeout(r, 3000));")
    outcomes = []
    threads = [threading.Thread(target=lambda: outcomes.append(
        raw(server, "POST", "/2015-03-31/functions/slow/invocations", b"{}")[0])) for _ in range(3)]
    for thread in threads:
        thread.start()
    assert wait_for(lambda: server.store.runner.pool.inflight_of(arn("slow")) == 3)
    server.reset()
    for thread in threads:
        thread.join()
    assert all(status in (200, 500) for status in outcomes)
    create_function(lam, "fresh")
    assert invoke_json(lam, "fresh", {"n": 2})[1]["doubled"] == 4


# ----------------------------------------------------------------------------------------------
# pytest plugin and command line
# ----------------------------------------------------------------------------------------------

# Configuration, the pytest plugin and messages for newcomers

def start_cli(*args, env=None):
    """A CLI server; returns (process, endpoint url)."""
    process = subprocess.Popen([sys.executable, lambda_fake.__file__, *args],
                               stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True,
                               env=dict(os.environ, **(env or {})))
    line = process.stdout.readline()
    match = re.search(r"listening on (http://\S+)", line)
    assert match, (line, process.stderr.read() if process.poll() is not None else "")
    return process, match[1]


def stop_cli(process):
    """End a CLI server; returns what it wrote to stderr that was not read yet."""
    process.send_signal(signal.SIGTERM)
    return process.communicate(timeout=10)[1]


def close_pipes(process):
    for pipe in (process.stdout, process.stderr):
        if pipe is not None:
            pipe.close()


def test_cli_options_come_from_environment_variables():
    process, endpoint = start_cli(env={"LAMBDA_FAKE_PORT": "0", "LAMBDA_FAKE_REGION": "eu-west-2",
                                       "LAMBDA_FAKE_ACCOUNT_ID": "111122223333",
                                       "LAMBDA_FAKE_QUIET": "1"})
    try:
        lam = boto3.client("lambda", endpoint_url=endpoint, region_name="eu-west-2",
                           aws_access_key_id="test", aws_secret_access_key="test")
        created = create_function(lam, "regional")
        assert created["FunctionArn"] == "arn:aws:lambda:eu-west-2:111122223333:function:regional"
        assert_error(lambda: lam.get_function(FunctionName="arn:aws:lambda:us-east-1:111122223333:"
                                                           "function:regional"),
                     "ResourceNotFoundException", 404,
                     "Functions from 'us-east-1' are not reachable in this "
                     "region ('eu-west-2')")
    finally:
        stderr = stop_cli(process)
    assert stderr == ""                                 # quiet: no line per request


def test_cli_flags_override_environment_and_bad_values_are_refused():
    process, endpoint = start_cli("0", "--quiet", "--region", "ap-south-1",
                                  env={"LAMBDA_FAKE_REGION": "eu-west-2"})
    try:
        lam = boto3.client("lambda", endpoint_url=endpoint, region_name="ap-south-1",
                           aws_access_key_id="test", aws_secret_access_key="test")
        assert ":ap-south-1:" in create_function(lam, "flagged")["FunctionArn"]
    finally:
        stop_cli(process)
    result = subprocess.run([sys.executable, lambda_fake.__file__, "0", "--account-id", "12"],
                            capture_output=True, text=True, timeout=10)
    assert result.returncode == 2 and "is not a 12-digit account id" in result.stderr


def test_cli_debug_log_has_a_line_per_invocation_and_a_hint_for_a_bad_handler():
    process, endpoint = start_cli("0", "--log-level", "debug")
    try:
        lam = boto3.client("lambda", endpoint_url=endpoint, region_name=REGION,
                           aws_access_key_id="test", aws_secret_access_key="test")
        create_function(lam, "misnamed", Handler="main.handler", code=zip_of({"index.js": DOUBLER}))
        lam.invoke(FunctionName="misnamed")
    finally:
        log = stop_cli(process)
    assert "lambda_fake: function misnamed: handler 'main.handler' could not be loaded" in log
    assert "lambda_fake: invoked misnamed:$LATEST -> Unhandled" in log


def test_cli_refuses_a_node_sdk_without_the_sdk_and_unknown_choices(tmp_path):
    for option, words in ((["--node-sdk", str(tmp_path)], "has no @aws-sdk directory"),
                          (["--prestart", "maybe"], "invalid choice: 'maybe'"),
                          (["--lambda-paths", "yes"], "invalid choice: 'yes'")):
        result = subprocess.run([sys.executable, lambda_fake.__file__, "0", *option],
                                capture_output=True, text=True, timeout=10)
        assert result.returncode == 2 and words in result.stderr, result.stderr


def test_cli_says_when_node_is_missing(tmp_path):
    process, endpoint = start_cli("0", "--quiet", env={"PATH": str(tmp_path)})
    assert "node was not found on PATH" in stop_cli(process)


def run_users_suite(directory, tests, **variables):
    """Run a user's test file, `tests`, with pytest and this plugin, in a process of its own."""
    (directory / "conftest.py").write_text('pytest_plugins = ["lambda_fake"]\n')
    (directory / "test_user.py").write_text(tests)
    env = dict(os.environ, PYTHONPATH=os.path.dirname(lambda_fake.__file__), **variables)
    return subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                           str(directory)],
                          capture_output=True, text=True, timeout=120, env=env, cwd=directory)


def test_pytest_plugin_fixtures_run_a_users_test(tmp_path):
    result = run_users_suite(
        tmp_path,
        "import json\n"
        "def test_user(lambda_client):\n"
        "    lambda_client.create_function(FunctionName='f', Runtime='python3.12', "
        "Handler='app.handler',\n"
        "        Role='arn:aws:iam::123456789012:role/r',\n"
        "        Code={'ZipFile': b'def handler(e, c):\\n    return e[\"n\"] * 2\\n'})\n"
        "    out = lambda_client.invoke(FunctionName='f', Payload=b'{\"n\": 4}')\n"
        "    assert json.loads(out['Payload'].read()) == 8\n"
        "def test_reset_between_tests(lambda_server):\n"
        "    import boto3\n"
        "    assert boto3.client('lambda').list_functions()['Functions'] == []\n")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "2 passed" in result.stdout


def test_the_pytest_plugin_starts_a_strict_server_when_asked(tmp_path):
    result = run_users_suite(
        tmp_path,
        "def test_strict(lambda_client):\n"
        "    made = lambda_client.create_function(FunctionName='f', Runtime='python3.12', "
        "Handler='app.handler',\n"
        "        Role='arn:aws:iam::123456789012:role/r', Code={'ZipFile': b'x = 1'})\n"
        "    assert made['State'] == 'Pending'\n"
        "    lambda_client.get_waiter('function_active_v2').wait(FunctionName='f',\n"
        "        WaiterConfig={'Delay': 1})\n", LAMBDA_FAKE_STRICT_AWS="1")
    assert result.returncode == 0 and "1 passed" in result.stdout, result.stdout + result.stderr


def test_importing_lambda_fake_without_pytest_stays_standard_library_only():
    code = ("import sys, lambda_fake; assert 'pytest' not in sys.modules; "
            "assert not hasattr(lambda_fake, 'lambda_client'); print('ok')")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            timeout=30, cwd=os.path.dirname(lambda_fake.__file__))
    assert result.stdout.strip() == "ok", result.stderr


# ----------------------------------------------------------------------------------------------
# Custom runtimes, through the Runtime API
# ----------------------------------------------------------------------------------------------
# A bootstrap written against the Runtime API alone (a tiny runtime client), in Python so that
# every machine that runs these tests can run it. What an event asks of it, it does.

CUSTOM_BOOTSTRAP = f"""#!{sys.executable}
import http.client, json, os, sys, time
API = os.environ["AWS_LAMBDA_RUNTIME_API"]


def call(method, path, body=None, headers=None):
    connection = http.client.HTTPConnection(API, timeout=30)
    connection.request(method, "/2018-06-01/runtime" + path, body=body, headers=headers or {{}})
    response = connection.getresponse()
    answer = (response.status, dict(response.getheaders()), response.read())
    connection.close()
    return answer


def probe(method, path, body=None):
    status, _, answer = call(method, path, body)
    return [status, answer.decode()]


def stream(request_id, chunks, error=None):
    connection = http.client.HTTPConnection(API, timeout=30)
    connection.putrequest("POST", f"/2018-06-01/runtime/invocation/{{request_id}}/response")
    for name, value in (("Lambda-Runtime-Function-Response-Mode", "streaming"),
                        ("Transfer-Encoding", "chunked"), ("Content-Type", "text/plain"),
                        ("Trailer", "Lambda-Runtime-Function-Error-Type, "
                                    "Lambda-Runtime-Function-Error-Body")):
        connection.putheader(name, value)
    connection.endheaders()
    for chunk in chunks:
        connection.send(b"%x\\r\\n%s\\r\\n" % (len(chunk), chunk.encode()))
        time.sleep(0.3)
    trailer = b""
    if error:
        trailer = (b"Lambda-Runtime-Function-Error-Type: Function.Broke\\r\\n"
                   b"Lambda-Runtime-Function-Error-Body: eyJlcnJvck1lc3NhZ2UiOiJtaWQtc3RyZWFtIn0=\\r\\n")
    connection.send(b"0\\r\\n" + trailer + b"\\r\\n")
    connection.getresponse().read()


if os.environ.get("FAIL_INIT"):
    print(call("POST", "/init/error", json.dumps({{"errorType": "Custom.Init",
                                                   "errorMessage": "cannot start"}}),
               {{"Lambda-Runtime-Function-Error-Type": "Runtime.Custom"}})[0], flush=True)
    sys.exit(1)
print("bootstrap starting", flush=True)
seen = {{}}
while True:
    status, headers, body = call("GET", "/invocation/next")
    request_id = headers["Lambda-Runtime-Aws-Request-Id"]
    event = json.loads(body)
    if "rawPath" in event:              # from a function URL: what its request's body asks
        event = json.loads(event.get("body") or "{{}}")
    action = event.get("action")
    print("invoked with", action, flush=True)
    if action == "error":
        call("POST", f"/invocation/{{request_id}}/error",
             json.dumps({{"errorType": "Oops", "errorMessage": "it broke"}}),
             {{"Lambda-Runtime-Function-Error-Type": "Function.Oops"}})
        continue
    if action == "exit":
        sys.exit(3)
    if action == "stream":
        stream(request_id, event["chunks"], event.get("fail"))
        continue
    if action == "big":
        seen["big"] = probe("POST", f"/invocation/{{request_id}}/response", b"x" * (7 << 20))
        continue
    time.sleep(event.get("sleep", 0))
    if action == "probe":
        seen["wrong id"] = probe("POST", "/invocation/not-an-id/response", b"{{}}")
        seen["init error now"] = probe("POST", "/init/error", b"{{}}")
        seen["unknown path"] = probe("GET", "/invocation/nothing")[0]
        seen["wrong method"] = probe("POST", "/invocation/next")[0]
    result = {{"pid": os.getpid(), "cwd": os.getcwd(), "headers": headers, "event": event,
               "env": {{name: os.environ.get(name) for name in (
                   "_HANDLER", "LAMBDA_TASK_ROOT", "AWS_LAMBDA_FUNCTION_NAME", "GREETING",
                   "AWS_LAMBDA_RUNTIME_API", "AWS_EXECUTION_ENV", "PWD", "OLDPWD")}},
               "seen": seen}}
    seen["answered"] = probe("POST", f"/invocation/{{request_id}}/response", json.dumps(result))
    seen["again"] = probe("POST", f"/invocation/{{request_id}}/response", b"{{}}")
"""


def custom_zip(files=None, executable=True):
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, data in (files if files is not None
                           else {"bootstrap": CUSTOM_BOOTSTRAP}).items():
            info = zipfile.ZipInfo(name)
            info.external_attr = (0o755 if executable else 0o644) << 16
            archive.writestr(info, data)
    return buffer.getvalue()


def create_custom(lam, name="custom", code=None, **overrides):
    params = dict(FunctionName=name, Runtime="provided.al2023", Role=ROLE,
                  Handler="function.handler", Code={"ZipFile": code or custom_zip()})
    params.update(overrides)
    return lam.create_function(**params)


def test_a_custom_runtime_runs_its_bootstrap_through_the_runtime_api(server, lam):
    create_custom(lam, Environment={"Variables": {"GREETING": "hello"}})
    out, first = invoke_json(lam, "custom", {"n": 1}, LogType="Tail",
                             ClientContext=base64.b64encode(b'{"custom": {"a": 1}}').decode())
    assert "FunctionError" not in out, first
    headers = first["headers"]
    assert headers["Content-Type"] == "application/json"
    assert headers["Lambda-Runtime-Aws-Request-Id"] == out["ResponseMetadata"]["RequestId"]
    assert headers["Lambda-Runtime-Invoked-Function-Arn"] == arn("custom")
    assert re.fullmatch(r"Root=1-[0-9a-f]{8}-[0-9a-f]{24};Parent=[0-9a-f]{16};Sampled=0",
                        headers["Lambda-Runtime-Trace-Id"])
    assert 0 < int(headers["Lambda-Runtime-Deadline-Ms"]) - time.time() * 1000 <= 3000
    assert json.loads(headers["Lambda-Runtime-Client-Context"])["custom"] == {"a": 1}
    assert first["event"] == {"n": 1}
    env = first["env"]
    assert (env["_HANDLER"], env["GREETING"], env["AWS_LAMBDA_FUNCTION_NAME"]) == (
        "function.handler", "hello", "custom")
    assert first["cwd"] == env["LAMBDA_TASK_ROOT"]
    assert re.fullmatch(r"127\.0\.0\.1:\d+", env["AWS_LAMBDA_RUNTIME_API"])
    assert (env["AWS_EXECUTION_ENV"], env["PWD"], env["OLDPWD"]) == (None, None, None)  # as AWS
    log = decoded_log(out)
    assert "bootstrap starting" in log and "invoked with None" in log and "Init Duration" in log
    out, second = invoke_json(lam, "custom", {"n": 2}, LogType="Tail")
    assert second["pid"] == first["pid"]            # warm: the bootstrap's loop goes on
    assert "Init Duration" not in decoded_log(out)
    assert second["seen"]["answered"] == [202, '{"status":"OK"}\n']
    assert second["seen"]["again"][0] in (400, 403)     # answered once only


def test_the_runtime_api_refuses_what_lambda_refuses(server, lam):
    create_custom(lam)
    invoke_json(lam, "custom", {})
    seen = invoke_json(lam, "custom", {"action": "probe"})[1]["seen"]
    assert seen["wrong id"] == [400, '{"errorMessage": "Invalid request ID", '
                                     '"errorType": "InvalidRequestID"}\n']
    status, body = seen["init error now"]
    assert status == 403 and json.loads(body)["errorType"] == "InvalidStateTransition"
    assert (seen["unknown path"], seen["wrong method"]) == (404, 405)


def test_a_custom_runtimes_errors_are_function_errors(server, lam):
    create_custom(lam)
    out, payload = invoke_json(lam, "custom", {"action": "error"})
    assert out["FunctionError"] == "Unhandled"
    assert payload == {"errorType": "Oops", "errorMessage": "it broke"}
    out, payload = invoke_json(lam, "custom", {"action": "big"})
    assert out["FunctionError"] == "Unhandled"
    assert payload["errorType"] == "Function.ResponseSizeTooLarge"
    seen = invoke_json(lam, "custom", {})[1]["seen"]
    assert seen["big"][0] == 413 and "RequestEntityTooLarge" in seen["big"][1]
    out, payload = invoke_json(lam, "custom", {"action": "exit"})
    assert payload == {"errorType": "Runtime.ExitError", "errorMessage":
                       f"RequestId: {out['ResponseMetadata']['RequestId']} Error: "
                       "Runtime exited with error: exit status 3"}
    assert "FunctionError" not in invoke_json(lam, "custom", {})[0]   # a new environment


def test_a_custom_runtimes_init_error_and_a_missing_bootstrap(server, lam):
    create_custom(lam, Environment={"Variables": {"FAIL_INIT": "1"}})
    out, payload = invoke_json(lam, "custom", {})
    assert out["FunctionError"] == "Unhandled"
    assert payload == {"errorType": "Custom.Init", "errorMessage": "cannot start"}
    create_custom(lam, "empty", code=custom_zip({"readme.txt": "no bootstrap"}))
    out, payload = invoke_json(lam, "empty", {})
    assert payload == {"errorType": "Runtime.InvalidEntrypoint", "errorMessage":
                       f"RequestId: {out['ResponseMetadata']['RequestId']} Error: Couldn't find "
                       "valid bootstrap(s): [/var/task/bootstrap /opt/bootstrap]"}
    create_custom(lam, "plain", code=custom_zip(executable=False))
    payload = invoke_json(lam, "plain", {})[1]
    assert payload["errorType"] == "Runtime.InvalidEntrypoint"
    assert payload["errorMessage"].endswith("fork/exec /var/task/bootstrap: permission denied")


def test_a_custom_runtimes_bootstrap_can_come_from_a_layer(server, lam):
    layer = lam.publish_layer_version(LayerName="runtime", Content={"ZipFile": custom_zip()})
    create_custom(lam, code=custom_zip({"function.sh": "echo"}),
                  Layers=[layer["LayerVersionArn"]])
    out, payload = invoke_json(lam, "custom", {"n": 5})
    assert "FunctionError" not in out and payload["event"] == {"n": 5}


def test_a_custom_runtime_times_out_and_runs_concurrently_in_separate_processes(server, lam):
    create_custom(lam, Timeout=1)
    out, payload = invoke_json(lam, "custom", {"sleep": 3})
    assert payload["errorType"] == "Sandbox.Timedout"
    results = invoke_together(lam, 2, {"sleep": 0.3}, name="custom")
    pids = {payload["pid"] for _, payload in results}
    assert len(pids) == 2
    server.reset()
    assert wait_for(lambda: not any(alive(pid) for pid in pids))


def test_a_custom_runtime_streams_its_response_chunk_by_chunk(server, lam):
    create_custom(lam)
    url = lam.create_function_url_config(FunctionName="custom", AuthType="NONE",
                                         InvokeMode="RESPONSE_STREAM")["FunctionUrl"]
    started = time.monotonic()
    out = lam.invoke_with_response_stream(
        FunctionName="custom", Payload=json.dumps({"action": "stream", "chunks": ["a", "b", "c"]}))
    arrivals = []
    for event in out["EventStream"]:
        arrivals.append((round(time.monotonic() - started, 1), event))
    chunks = [event["PayloadChunk"]["Payload"] for _, event in arrivals if "PayloadChunk" in event]
    assert chunks == [b"a", b"b", b"c"]
    times = [at for at, event in arrivals if "PayloadChunk" in event]
    assert times[-1] - times[0] >= 0.4              # each as it was written, not all at the end
    assert arrivals[-1][1]["InvokeComplete"].get("ErrorCode") is None
    out = lam.invoke_with_response_stream(FunctionName="custom", Payload=json.dumps(
        {"action": "stream", "chunks": ["a"], "fail": True}))
    complete = [event for event in out["EventStream"] if "InvokeComplete" in event][0]
    assert complete["InvokeComplete"]["ErrorCode"] == "Unhandled"
    assert json.loads(complete["InvokeComplete"]["ErrorDetails"]) == {
        "errorMessage": "mid-stream", "errorType": "Function.Broke"}
    status, headers, body = url_request(server, url, "POST", "/", json.dumps(
        {"action": "stream", "chunks": ["x", "y"]}).encode())
    assert (status, body) == (200, b"xy") and ("Content-Type", "text/plain") in headers


def test_a_custom_runtime_runs_without_lambda_paths_in_its_package_directory():
    with LambdaServer(0, lambda_paths=False) as plain:
        lam = client_for(plain)
        create_custom(lam)
        out, payload = invoke_json(lam, "custom", {"n": 1})
        assert payload["event"] == {"n": 1}
        assert payload["cwd"] == payload["env"]["LAMBDA_TASK_ROOT"] != "/var/task"
        assert payload["cwd"].startswith(plain.store.runner.house.root)


def test_a_custom_runtime_has_versions_aliases_event_invokes_and_throttles():
    with LambdaServer(0, async_retry_delay=0.05) as fresh:
        lam = client_for(fresh)
        create_custom(lam, Publish=True)
        lam.create_alias(FunctionName="custom", Name="live", FunctionVersion="1")
        out, payload = invoke_json(lam, "custom", {"n": 1}, Qualifier="live")
        assert out["ExecutedVersion"] == "1" and payload["event"] == {"n": 1}
        lam.invoke(FunctionName="custom", InvocationType="Event", Payload=b'{"action": "error"}')
        assert wait_for(lambda: len(invocations_of(fresh, "custom")) == 1 + 3)  # 2 retries
        lam.put_function_concurrency(FunctionName="custom", ReservedConcurrentExecutions=0)
        assert_throttled(lambda: lam.invoke(FunctionName="custom", Payload=b"{}"))
        pids = fresh.store.runner.pool.pids()
        assert pids
    assert not any(alive(pid) for pid in pids)          # stop() ended every bootstrap


# ----------------------------------------------------------------------------------------------
# Debugging handlers
# ----------------------------------------------------------------------------------------------

def listening_on_loopback_only(port):
    """Whether every socket listening on `port` is bound to 127.0.0.1 (from /proc/net/tcp*)."""
    found = []
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with open(table) as lines:
            for line in list(lines)[1:]:
                local, state = line.split()[1], line.split()[3]
                address, _, hex_port = local.partition(":")
                if state == "0A" and int(hex_port, 16) == port:
                    found.append(address)
    return bool(found) and all(address == "0100007F" for address in found)


def test_a_debugged_node_function_has_the_inspector_and_no_timeout():
    slow = b"exports.handler = async () => { await new Promise(r => setTimeout(r, 1500)); " \
           b"return 'slow but done'; };"
    with LambdaServer(0, debug="debugged") as debugging:
        lam = client_for(debugging)
        create_function(lam, "debugged", code=slow, Timeout=1)
        create_function(lam, "plain", code=slow, Timeout=1)
        out, payload = invoke_json(lam, "debugged", LogType="Tail")
        assert payload == "slow but done"
        assert "Timeout is suspended" in decoded_log(out)
        assert invoke_json(lam, "plain")[1]["errorType"] == "Sandbox.Timedout"
        listed = parlel_json(debugging, "/_parlel/debug")
        assert listed == [{"function": "debugged", "runtime": "nodejs20.x", "kind": "inspector",
                           "port": listed[0]["port"], "waiting": False}]
        port = listed[0]["port"]
        assert port >= 9229 and listening_on_loopback_only(port)
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/json/list", timeout=10) as answer:
            targets = json.loads(answer.read())
        assert targets and targets[0]["type"] == "node"


def test_pdb_over_tcp_stops_a_debugged_python_handler_and_lets_it_go_on():
    code = (b"def handler(event, context):\n    secret = event['n'] * 7\n    breakpoint()\n"
            b"    return secret\n")
    with LambdaServer(0, debug=["stepped"]) as debugging:
        lam = client_for(debugging)
        if debugging.store.runner.house.debugpy():
            pytest.skip("the server's interpreter has debugpy, which then takes pdb's place")
        lam.create_function(FunctionName="stepped", Runtime="python3.12", Role=ROLE,
                            Handler="app.handler", Code={"ZipFile": code})
        result = {}
        caller = threading.Thread(target=lambda: result.update(
            answer=invoke_json(lam, "stepped", {"n": 6})[1]))
        caller.start()
        waiting = []
        assert wait_for(lambda: waiting.extend(
            e for e in parlel_json(debugging, "/_parlel/debug") if e["waiting"]) or waiting)
        assert (waiting[0]["function"], waiting[0]["kind"]) == ("stepped", "pdb")
        assert listening_on_loopback_only(waiting[0]["port"])
        with socket.create_connection(("127.0.0.1", waiting[0]["port"]), timeout=10) as session:
            seen = b""
            session.sendall(b"p secret\n")
            while b"42" not in seen:
                seen += session.recv(4096)
            session.sendall(b"c\n")
            caller.join(10)
        assert result["answer"] == 42 and b"app.py" in seen
        assert not parlel_json(debugging, "/_parlel/debug")[0]["waiting"]


def test_the_debug_options_take_names_and_the_break_flag(monkeypatch):
    args = lambda_fake.parse_options(["0", "--debug", "a,b", "--debug-break"])
    assert (args.debug, args.debug_break) == ("a,b", True)
    monkeypatch.setenv("LAMBDA_FAKE_DEBUG", "*")
    args = lambda_fake.parse_options(["0"])
    assert (args.debug, args.debug_break, args.strict_aws) == ("*", False, False)
    monkeypatch.setenv("LAMBDA_FAKE_STRICT_AWS", "1")
    assert lambda_fake.parse_options(["0"]).strict_aws is True


# ----------------------------------------------------------------------------------------------
# Every region and account
# ----------------------------------------------------------------------------------------------

OTHER_ACCOUNT = "111111111111"
WHERE_AM_I = (b"exports.handler = async (event, context) => ({arn: context.invokedFunctionArn, "
              b"region: process.env.AWS_REGION, key: process.env.AWS_ACCESS_KEY_ID});")


def client_in(server, region=REGION, account=None):
    """A client of one region, and of one account when its access key id is that account's."""
    return boto3.client("lambda", endpoint_url=server.endpoint_url, region_name=region,
                        aws_access_key_id=account or "test", aws_secret_access_key="test",
                        config=Config(retries={"total_max_attempts": 1}, read_timeout=30))


def test_each_region_and_account_keeps_its_own_functions_with_its_own_arns(server, lam):
    europe, other = client_in(server, "eu-west-1"), client_in(server, account=OTHER_ACCOUNT)
    for client in (lam, europe, other):
        create_function(client, "where", code=WHERE_AM_I)
    made = europe.get_function(FunctionName="where")["Configuration"]
    assert made["FunctionArn"] == f"arn:aws:lambda:eu-west-1:{ACCOUNT}:function:where"
    assert other.get_function_configuration(FunctionName="where")["FunctionArn"] == (
        f"arn:aws:lambda:{REGION}:{OTHER_ACCOUNT}:function:where")
    seen = invoke_json(europe, "where")[1]
    assert seen == {"arn": f"arn:aws:lambda:eu-west-1:{ACCOUNT}:function:where",
                    "region": "eu-west-1", "key": "test"}
    assert invoke_json(other, "where")[1]["key"] == OTHER_ACCOUNT
    europe.delete_function(FunctionName="where")
    assert [f["FunctionName"] for f in lam.list_functions()["Functions"]] == ["where"]
    assert parlel_json(server, "/_parlel/health")["functions"] == 2
    logs = parlel_json(server, "/_parlel/logs")["invocations"]
    assert {(e["account"], e["region"]) for e in logs} == {
        (ACCOUNT, "eu-west-1"), (OTHER_ACCOUNT, REGION)}
    server.reset()
    assert parlel_json(server, "/_parlel/health")["functions"] == 0
    assert other.list_functions()["Functions"] == []


def test_a_presigned_request_and_a_function_url_carry_their_region(server, lam):
    europe = client_in(server, "eu-west-1")
    create_function(europe, "where", code=WHERE_AM_I)
    presigned = europe.generate_presigned_url("list_functions", ExpiresIn=60)
    with urllib.request.urlopen(presigned, timeout=10) as answer:
        assert [f["FunctionName"] for f in json.loads(answer.read())["Functions"]] == ["where"]
    assert lam.list_functions()["Functions"] == []
    url = europe.create_function_url_config(FunctionName="where", AuthType="NONE")["FunctionUrl"]
    assert ".lambda-url.eu-west-1.localhost:" in url
    assert json.loads(url_request(server, url)[2])["region"] == "eu-west-1"


def test_an_arn_of_another_region_or_account_is_answered_as_aws_answers_it(server, lam):
    other = client_in(server, account=OTHER_ACCOUNT)
    create_function(other, "theirs", code=WHERE_AM_I)
    create_function(lam, "mine", code=WHERE_AM_I)
    message = assert_error(lambda: lam.get_function(
        FunctionName=f"arn:aws:lambda:eu-west-1:{ACCOUNT}:function:mine"),
        "ResourceNotFoundException", 404)
    assert message == f"Functions from 'eu-west-1' are not reachable in this region ('{REGION}')"
    theirs = f"arn:aws:lambda:{REGION}:{OTHER_ACCOUNT}:function:theirs"
    message = assert_error(lambda: lam.invoke(FunctionName=theirs), "AccessDeniedException", 403)
    assert message == (f"User: arn:aws:iam::{ACCOUNT}:root is not authorized to perform: "
                       f"lambda:InvokeFunction on resource: {theirs} because no resource-based "
                       "policy allows the lambda:InvokeFunction action")
    assert_error(lambda: lam.create_function(
        FunctionName=f"arn:aws:lambda:{REGION}:{OTHER_ACCOUNT}:function:new", Runtime="nodejs20.x",
        Role=ROLE, Handler="index.handler", Code={"ZipFile": WHERE_AM_I}),
        "AccessDeniedException", 403)
    other.add_permission(FunctionName="theirs", StatementId="share", Principal=ACCOUNT,
                         Action="lambda:InvokeFunction")
    assert invoke_json(lam, theirs)[1]["arn"] == theirs     # it runs in its own account
    assert_error(lambda: lam.get_function(FunctionName=theirs), "AccessDeniedException", 403,
                 "lambda:GetFunction")


def test_a_layer_of_another_account_is_used_once_it_is_shared(server, lam):
    other = client_in(server, account=OTHER_ACCOUNT)
    layer = other.publish_layer_version(LayerName="greeter", Content={"ZipFile": LAYER_ZIP})
    arn_of_it = layer["LayerVersionArn"]
    assert f":{OTHER_ACCOUNT}:layer:greeter:1" in arn_of_it
    code = b"const greet = require('greet'); exports.handler = async (e) => greet(e.n);"
    message = assert_error(lambda: create_function(lam, "layered", code=code, Layers=[arn_of_it]),
                           "AccessDeniedException", 403)
    assert message == (f"User: arn:aws:iam::{ACCOUNT}:root is not authorized to perform: "
                       f"lambda:GetLayerVersion on resource: {arn_of_it} because no "
                       "resource-based policy allows the lambda:GetLayerVersion action")
    assert_error(lambda: lam.get_layer_version_by_arn(Arn=arn_of_it), "AccessDeniedException", 403)
    other.add_layer_version_permission(LayerName="greeter", VersionNumber=1, StatementId="all",
                                       Action="lambda:GetLayerVersion", Principal=ACCOUNT)
    create_function(lam, "layered", code=code, Layers=[arn_of_it])
    assert invoke_json(lam, "layered", {"n": "ada"})[1] == "hi ada"
    assert lam.get_layer_version_by_arn(Arn=arn_of_it)["Version"] == 1


def test_the_servers_own_region_and_account_are_those_of_unsigned_and_test_key_requests():
    with LambdaServer(0, region="eu-central-1", account_id="222222222222") as own:
        lam = client_in(own, "eu-central-1")
        made = create_function(lam, "where", code=WHERE_AM_I)
        assert made["FunctionArn"] == "arn:aws:lambda:eu-central-1:222222222222:function:where"
        status, _, body = raw(own, "GET", "/2015-03-31/functions/where")
        assert status == 200 and json.loads(body)["Configuration"]["FunctionArn"] == (
            made["FunctionArn"])


# Shapes and validation as AWS recorded them (AWS-verified suites).

def test_each_update_of_the_code_publishes_a_new_version_even_with_the_same_code(lam):
    assert create_function(lam, code=CODE, Publish=True)["Version"] == "1"
    for expected in ("2", "3"):
        out = lam.update_function_code(FunctionName="fn", ZipFile=CODE, Publish=True)
        assert out["Version"] == expected
    assert lam.publish_version(FunctionName="fn")["Version"] == "3"    # nothing new since


def test_a_layer_may_name_deprecated_runtimes_as_compatible(lam):
    deprecated = ["nodejs12.x", "python3.7", "java8", "go1.x", "provided"]
    out = publish_layer(lam, CompatibleRuntimes=deprecated)
    assert out["CompatibleRuntimes"] == deprecated


def test_an_empty_filter_criteria_is_left_out_and_an_image_function_has_no_code_size(lam):
    create_function(lam, code=CODE)
    mapping = lam.create_event_source_mapping(FunctionName="fn", EventSourceArn=QUEUE,
                                              FilterCriteria={})
    assert "FilterCriteria" not in mapping
    assert "FilterCriteria" not in lam.get_event_source_mapping(UUID=mapping["UUID"])
    image = lam.create_function(FunctionName="img", PackageType="Image", Role=ROLE, Code={
        "ImageUri": f"{ACCOUNT}.dkr.ecr.{REGION}.amazonaws.com/repo:latest"})
    assert image["CodeSize"] == 0


def test_strict_aws_error_bodies_carry_each_error_shapes_members_as_the_model_names_them():
    model = botocore.loaders.Loader().load_service_model("lambda", "service-2")
    shapes = {name: shape for name, shape in model["shapes"].items() if shape.get("exception")}
    assert len(shapes) > 50
    for name, shape in shapes.items():
        status = shape.get("error", {}).get("httpStatusCode", 400)
        body = json.loads(lambda_fake.error_reply(
            lambda_fake.LambdaError(name, status, "what went wrong"), strict=True).body)
        text = "message" if "message" in shape["members"] else "Message"
        assert body[text] == "what went wrong", name
        assert body["Type"] == ("Service" if name == "ServiceException" else "User")
        assert set(body) - {"__type"} <= set(shape["members"]), name
        plain = json.loads(lambda_fake.error_reply(
            lambda_fake.LambdaError(name, status, "what went wrong")).body)
        assert plain == {"__type": name, "message": "what went wrong"}     # the spec's default


def test_a_strict_aws_server_answers_errors_as_aws_and_botocore_reads_their_members():
    with LambdaServer(0, strict_aws=True) as strict:
        lam = client_for(strict)
        with pytest.raises(ClientError) as caught:
            lam.get_function(FunctionName="missing")
        answer = caught.value.response
        assert (answer["Error"]["Code"], answer["Type"]) == ("ResourceNotFoundException", "User")
        assert answer["Message"] == f"Function not found: {arn('missing')}"
        create_function(lam, code=CODE)
        with pytest.raises(ClientError) as caught:
            create_function(lam, code=CODE)
        assert caught.value.response["message"].startswith("Function already exist")
        # a few errors AWS sends without their Type, as it records them
        for call in (lambda: lam.put_function_concurrency(FunctionName="fn",
                                                          ReservedConcurrentExecutions=1000),
                     lambda: lam.get_code_signing_config(CodeSigningConfigArn=(
                         f"arn:aws:lambda:{REGION}:{ACCOUNT}:code-signing-config:"
                         "csc-0123456789abcdef0"))):
            with pytest.raises(ClientError) as caught:
                call()
            assert "Type" not in caught.value.response
            assert (caught.value.response.get("message")
                    or caught.value.response.get("Message"))


def test_strictly_a_function_is_pending_then_active_and_an_update_in_progress_then_successful():
    with LambdaServer(0, strict_aws=True, settle_seconds=0.3) as strict:
        lam = client_for(strict)
        made = create_function(lam, code=CODE)
        assert (made["State"], made["StateReason"], made["StateReasonCode"]) == (
            "Pending", "The function is being created.", "Creating")
        assert "LastUpdateStatus" not in made
        message = assert_error(lambda: lam.invoke(FunctionName="fn"),
                               "ResourceConflictException", 409)
        assert message == ("The operation cannot be performed at this time. The function is "
                           "currently in the following state: Pending")
        assert_error(lambda: lam.update_function_code(FunctionName="fn", ZipFile=CODE),
                     "ResourceConflictException", 409, "currently in the following state: "
                                                       "'Pending'. StateReasonCode: 'Creating'")
        lam.get_waiter("function_active_v2").wait(FunctionName="fn",
                                                  WaiterConfig={"Delay": 1})
        active = lam.get_function(FunctionName="fn")["Configuration"]
        assert (active["State"], active["LastUpdateStatus"]) == ("Active", "Successful")
        assert "StateReason" not in active and active["RevisionId"] != made["RevisionId"]
        updated = lam.update_function_configuration(FunctionName="fn", Timeout=9)
        assert (updated["LastUpdateStatus"], updated["LastUpdateStatusReasonCode"]) == (
            "InProgress", "Creating")
        message = assert_error(lambda: lam.publish_version(FunctionName="fn"),
                               "ResourceConflictException", 409)
        assert message == ("The operation cannot be performed at this time. An update is in "
                           f"progress for resource: {arn('fn')}")
        lam.get_waiter("function_updated_v2").wait(FunctionName="fn",
                                                   WaiterConfig={"Delay": 1})
        done = lam.get_function_configuration(FunctionName="fn")
        assert done["LastUpdateStatus"] == "Successful" and "LastUpdateStatusReason" not in done
        assert done["RevisionId"] != updated["RevisionId"]
        version = lam.publish_version(FunctionName="fn")["Version"]
        lam.get_waiter("published_version_active").wait(
            FunctionName="fn", Qualifier=version, WaiterConfig={"Delay": 1})
        assert "FunctionError" not in invoke_json(lam, Qualifier=version)[0]
        provisioned = lam.put_provisioned_concurrency_config(
            FunctionName="fn", Qualifier=version, ProvisionedConcurrentExecutions=1)
        assert provisioned["Status"] == "IN_PROGRESS"
        assert provisioned["AvailableProvisionedConcurrentExecutions"] == 0
        assert wait_for(lambda: lam.get_provisioned_concurrency_config(
            FunctionName="fn", Qualifier=version)["Status"] == "READY")
        # a version published with an update is being created, as AWS records it, then settles
        published = lam.update_function_code(FunctionName="fn", ZipFile=CODE, Publish=True)
        assert (published["State"], published["StateReasonCode"]) == ("Pending", "Creating")
        assert "LastUpdateStatus" not in published
        lam.get_waiter("function_updated_v2").wait(
            FunctionName="fn", Qualifier=published["Version"], WaiterConfig={"Delay": 1})
        settled = lam.get_function_configuration(FunctionName="fn",
                                                 Qualifier=published["Version"])
        assert (settled["State"], settled["LastUpdateStatus"]) == ("Active", "Successful")


def test_by_default_the_waiters_find_functions_active_at_once(lam):
    made = create_function(lam, code=CODE, Publish=True)
    assert (made["State"], made["LastUpdateStatus"]) == ("Active", "Successful")
    once = {"Delay": 1, "MaxAttempts": 1}           # each must succeed at its first look
    lam.get_waiter("function_active_v2").wait(FunctionName="fn", WaiterConfig=once)
    lam.update_function_configuration(FunctionName="fn", Timeout=9)
    lam.get_waiter("function_updated_v2").wait(FunctionName="fn", WaiterConfig=once)
    lam.get_waiter("published_version_active").wait(FunctionName="fn", Qualifier="1",
                                                    WaiterConfig=once)


@pytest.mark.parametrize("call", [
    lambda lam, name, qualifier: lam.get_function(FunctionName=name, Qualifier=qualifier),
    lambda lam, name, qualifier: lam.invoke(FunctionName=name, Qualifier=qualifier),
    lambda lam, name, qualifier: lam.delete_function(FunctionName=name, Qualifier=qualifier)])
def test_an_invalid_name_and_an_invalid_qualifier_are_reported_together_as_aws_did(server, call):
    lam = unchecked_client(server)
    name = f"arn:aws:lambda:invalid-region:{ACCOUNT}:function:my-function-" + "a" * 170
    message = assert_error(lambda: call(lam, name, "a" * 129), "ValidationException", 400)
    assert message.startswith("2 validation errors detected: ")
    errors = message[len("2 validation errors detected: "):].split("; Value")
    assert any(error.endswith("at 'qualifier' failed to satisfy constraint: Member must have "
                              "length less than or equal to 128") for error in errors)
    assert any(error.endswith("(:(\\$LATEST(\\.PUBLISHED)?|[a-zA-Z0-9-_]+))?")    # the pattern
               for error in errors)
    assert "length less than or equal to 170" not in message    # only once the pattern holds


def test_a_layer_arn_without_a_version_gets_awss_constraint_list(lam):
    create_function(lam, code=CODE)
    message = assert_error(lambda: lam.update_function_configuration(
        FunctionName="fn", Layers=[f"{LAYERS}:lib"]), "ValidationException", 400)
    assert message.endswith(":[a-zA-Z0-9-_]+), Member must not be null]")


def test_a_malformed_code_signing_config_arn_is_the_same_validation_error_everywhere(server, lam):
    create_function(lam, code=CODE)
    unchecked = unchecked_client(server)
    messages = [assert_error(call, "ValidationException", 400) for call in (
        lambda: create_function(unchecked, "other", code=CODE, CodeSigningConfigArn="bad-arn"),
        lambda: unchecked.put_function_code_signing_config(FunctionName="fn",
                                                           CodeSigningConfigArn="bad-arn"))]
    assert messages[0] == messages[1]
    assert "Value 'bad-arn' at 'codeSigningConfigArn'" in messages[0]


def test_a_null_layer_is_a_validation_error_not_a_crash(server, lam):
    create_function(lam, code=CODE)
    for layers in ([None], [None, f"{LAYERS}:lib:1"]):
        status, code, body = raw_error(server, "PUT", "/2015-03-31/functions/fn/configuration",
                                       {"Layers": layers})
        assert (status, code) == (400, "ValidationException")
        assert body["message"].startswith("1 validation error detected: Value '[null") and \
            body["message"].endswith("Member must not be null]")
    for member in ({"Environment": {"Variables": {"A": None}}},
                   {"VpcConfig": {"SubnetIds": [None]}}):
        status, code, _ = raw_error(server, "PUT", "/2015-03-31/functions/fn/configuration",
                                    member)
        assert (status, code) == (400, "ValidationException"), member


# ----------------------------------------------------------------------------------------------
# Other local AWS services (moto's server), where moto is installed
# ----------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def moto_endpoint():
    """A moto server on a free port (these tests are skipped where moto is not installed)."""
    pytest.importorskip("moto.server", reason="moto[server] is not installed (.ci/run installs "
                                              "it in a virtual environment of its own)")
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    process = subprocess.Popen([sys.executable, "-m", "moto.server", "-p", str(port)],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    endpoint = f"http://127.0.0.1:{port}"
    try:
        assert wait_for(lambda: socket.socket().connect_ex(("127.0.0.1", port)) == 0, 30)
        yield endpoint
    finally:
        process.terminate()
        process.wait(10)


def test_requests_to_other_services_are_signed_as_botocore_signs_them():
    """moto checks no signature; LocalStack and MinIO do: each request the fake sends must carry
    the Authorization botocore's own SigV4 signer computes for it."""
    import http.server
    from botocore.auth import S3SigV4Auth, SigV4Auth
    from botocore.awsrequest import AWSRequest
    from botocore.credentials import Credentials
    seen = []

    class Recorder(http.server.BaseHTTPRequestHandler):
        def answer(self):
            seen.append((self.command, self.path, self.headers, self.rfile.read(
                int(self.headers.get("Content-Length") or 0))))
            self.send_response(200)
            self.send_header("Content-Length", "0")
            self.end_headers()
        do_GET = do_PUT = do_POST = answer

        def log_message(self, *args):
            pass
    recorder = http.server.HTTPServer(("127.0.0.1", 0), Recorder)
    threading.Thread(target=recorder.serve_forever, daemon=True).start()
    endpoint = f"http://127.0.0.1:{recorder.server_port}"
    store = lambda_fake.Store(region="eu-west-2")
    store.aws_endpoints = {"AWS_ENDPOINT_URL": endpoint}
    store.aws_credentials = ("AKIDEXAMPLE", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY")
    try:
        for service, signer, name, method, path, body in (
                ("SQS", SigV4Auth, "sqs", "POST", "/", b'{"QueueUrl": "q"}'),
                ("DYNAMODB_STREAMS", SigV4Auth, "dynamodb", "POST", "/", b"{}"),
                ("EVENTBRIDGE", SigV4Auth, "events", "POST", "/", b"{}"),
                ("S3", S3SigV4Auth, "s3", "GET", "/code/fn%20v1.zip?versionId=a%2Fb&x=1", b""),
                ("S3", S3SigV4Auth, "s3", "PUT", "/bucket/aws/lambda/a.json", b"{}")):
            status, _ = lambda_fake.aws_request(store, service, method, endpoint + path, body)
            assert status == 200
            _, got_path, headers, got_body = seen.pop()
            assert (got_path, got_body) == (path, body)
            request = AWSRequest(method=method, url=endpoint + path, data=body, headers={
                "X-Amz-Content-SHA256": headers["x-amz-content-sha256"]})
            request.context["timestamp"] = headers["x-amz-date"]
            signer(Credentials(*store.aws_credentials), name, "eu-west-2").add_auth(request)
            assert headers["Authorization"] == request.headers["Authorization"], service
    finally:
        recorder.shutdown()


def test_code_from_s3_is_read_from_the_local_s3_and_handlers_reach_it(moto_endpoint):
    s3 = boto3.client("s3", endpoint_url=moto_endpoint, region_name=REGION,
                      aws_access_key_id="test", aws_secret_access_key="test")
    s3.create_bucket(Bucket="code")
    package = zip_of({"app.py": (
        "import os, boto3\n"
        "def handler(event, context):\n"
        "    s3 = boto3.client('s3')\n"
        "    return {'endpoint': os.environ.get('AWS_ENDPOINT_URL_S3'),\n"
        "            'buckets': [b['Name'] for b in s3.list_buckets()['Buckets']]}\n")})
    s3.put_object(Bucket="code", Key="fn.zip", Body=package)
    with LambdaServer(0, aws_endpoints={"S3": moto_endpoint}) as fake:
        lam = client_for(fake)
        made = lam.create_function(FunctionName="from-s3", Runtime="python3.12", Role=ROLE,
                                   Handler="app.handler",
                                   Code={"S3Bucket": "code", "S3Key": "fn.zip"})
        assert (made["CodeSha256"], made["CodeSize"]) == (sha256_b64(package), len(package))
        assert invoke_json(lam, "from-s3")[1] == {"endpoint": moto_endpoint, "buckets": ["code"]}
        for bucket, key, code, text in (("nothing", "fn.zip", "NoSuchBucket",
                                         "The specified bucket does not exist"),
                                        ("code", "nothing.zip", "NoSuchKey",
                                         "The specified key does not exist.")):
            message = assert_error(lambda: lam.update_function_code(
                FunctionName="from-s3", S3Bucket=bucket, S3Key=key),
                "InvalidParameterValueException", 400)
            assert message == (f"Error occurred while GetObject. S3 Error Code: {code}. "
                               f"S3 Error Message: {text}")
        layer = lam.publish_layer_version(LayerName="from-s3", Content={
            "S3Bucket": "code", "S3Key": "fn.zip"})
        assert layer["Content"]["CodeSha256"] == sha256_b64(package)


def test_invocation_logs_reach_the_local_cloudwatch_logs_and_a_dead_one_slows_nothing(
        moto_endpoint):
    logs = boto3.client("logs", endpoint_url=moto_endpoint, region_name=REGION,
                        aws_access_key_id="test", aws_secret_access_key="test")
    with LambdaServer(0, aws_endpoints={"LOGS": moto_endpoint}) as fake:
        lam = client_for(fake)
        create_function(lam, "talker", code=b"exports.handler = async () => { "
                                             b"console.log('hello logs'); return 1; };")
        request_id = lam.invoke(FunctionName="talker")["ResponseMetadata"]["RequestId"]

        def messages():
            try:
                return [e["message"] for e in logs.filter_log_events(
                    logGroupName="/aws/lambda/talker")["events"]]
            except logs.exceptions.ResourceNotFoundException:
                return []
        assert wait_for(lambda: any(m.startswith("REPORT") for m in messages()))
        seen = messages()                # as AWS records them: a line each, newline kept
        assert re.fullmatch(r"INIT_START Runtime Version: nodejs:20\.v\d+\tRuntime Version ARN: "
                            rf"arn:aws:lambda:{REGION}::runtime:[0-9a-f]{{64}}\n", seen[0])
        assert seen[1] == f"START RequestId: {request_id} Version: $LATEST\n"
        assert seen[2].endswith("\tINFO\thello logs\n")
        assert seen[3] == f"END RequestId: {request_id}\n"
        assert seen[4].startswith(f"REPORT RequestId: {request_id}\t")
        assert "Init Duration" in seen[4]
        streams = logs.describe_log_streams(logGroupName="/aws/lambda/talker")["logStreams"]
        assert re.fullmatch(r"\d{4}/\d\d/\d\d/\[\$LATEST\][0-9a-f]{32}",
                            streams[0]["logStreamName"])
        create_function(lam, "pyfails", Runtime="python3.12", Handler="app.handler",
                        code=b"def handler(event, context):\n    raise ValueError('no')\n")
        lam.invoke(FunctionName="pyfails")

        def errors():
            try:
                return [e["message"] for e in logs.filter_log_events(
                    logGroupName="/aws/lambda/pyfails")["events"] if "[ERROR]" in e["message"]]
            except logs.exceptions.ResourceNotFoundException:
                return []
        assert wait_for(errors)         # the error and its traceback: one event, as on AWS
        assert errors() == ["[ERROR] ValueError: no\nTraceback (most recent call last):\n"
                            "\u00a0\u00a0File \"/var/task/app.py\", line 2, in handler\n"
                            "\u00a0\u00a0\u00a0\u00a0raise ValueError('no')"]
        lam.update_function_configuration(FunctionName="talker", LoggingConfig={
            "LogFormat": "JSON", "LogGroup": "/json/talker"})
        request_id = lam.invoke(FunctionName="talker")["ResponseMetadata"]["RequestId"]

        def json_events():
            try:
                return [json.loads(e["message"]) for e in logs.filter_log_events(
                    logGroupName="/json/talker")["events"]]
            except logs.exceptions.ResourceNotFoundException:
                return []
        assert wait_for(lambda: len(json_events()) == 4)
        init, start, said, report = json_events()
        assert (init["type"], init["record"]["functionName"], init["record"]["phase"]) == (
            "platform.initStart", "talker", "init")
        assert (start["type"], start["record"]["requestId"]) == ("platform.start", request_id)
        assert (said["level"], said["message"], said["requestId"]) == (
            "INFO", "hello logs", request_id)
        assert report["type"] == "platform.report"
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        nowhere = f"http://127.0.0.1:{closed.getsockname()[1]}"
    with LambdaServer(0, aws_endpoints={"LOGS": nowhere}) as fake:
        lam = client_for(fake)
        create_function(lam, "talker", code=CODE)
        for _ in range(3):              # the logs go nowhere; the invokes are as ever
            out, _ = invoke_json(lam, "talker", {"n": 2})
            assert "FunctionError" not in out


def test_a_destination_record_reaches_the_local_sqs(moto_endpoint):
    sqs = boto3.client("sqs", endpoint_url=moto_endpoint, region_name=REGION,
                       aws_access_key_id="test", aws_secret_access_key="test")
    queue_url = sqs.create_queue(QueueName="failures")["QueueUrl"]
    with LambdaServer(0, async_retry_delay=0.05, aws_endpoints={"SQS": moto_endpoint}) as fake:
        lam = client_for(fake)
        create_function(lam, "fails",
                        code=b"exports.handler = async () => { throw new Error('nope'); };")
        lam.put_function_event_invoke_config(
            FunctionName="fails", MaximumRetryAttempts=0,
            DestinationConfig={"OnFailure": {
                "Destination": f"arn:aws:sqs:{REGION}:{ACCOUNT}:failures"}})
        lam.invoke(FunctionName="fails", InvocationType="Event", Payload=b'{"x": 1}')
        received = []
        assert wait_for(lambda: received.extend(sqs.receive_message(
            QueueUrl=queue_url, WaitTimeSeconds=1).get("Messages", [])) or received)
        record = json.loads(received[0]["Body"])
        assert record["requestContext"]["condition"] == "RetriesExhausted"
        assert record["requestPayload"] == {"x": 1}
        assert record["responsePayload"]["errorMessage"] == "nope"
        lam.update_function_configuration(FunctionName="fails", DeadLetterConfig={
            "TargetArn": f"arn:aws:sqs:{REGION}:{ACCOUNT}:failures"})
        lam.delete_function_event_invoke_config(FunctionName="fails")
        lam.put_function_event_invoke_config(FunctionName="fails", MaximumRetryAttempts=0)
        request_id = lam.invoke(FunctionName="fails", InvocationType="Event", Payload=b'{"x": 2}')[
            "ResponseMetadata"]["RequestId"]
        dead = []
        assert wait_for(lambda: dead.extend(sqs.receive_message(
            QueueUrl=queue_url, WaitTimeSeconds=1, MessageAttributeNames=["All"]).get(
            "Messages", [])) or dead)
        assert json.loads(dead[0]["Body"]) == {"x": 2}     # the event, the error beside it
        assert dead[0]["MessageAttributes"] == {
            "RequestID": {"DataType": "String", "StringValue": request_id},
            "ErrorCode": {"DataType": "Number", "StringValue": "200"},
            "ErrorMessage": {"DataType": "String", "StringValue": "nope"}}


def test_an_sqs_mapping_polls_the_local_sqs_and_keeps_only_what_failed(moto_endpoint):
    sqs = boto3.client("sqs", endpoint_url=moto_endpoint, region_name=REGION,
                       aws_access_key_id="test", aws_secret_access_key="test")
    queue_url = sqs.create_queue(QueueName="jobs-in", Attributes={"VisibilityTimeout": "1"})[
        "QueueUrl"]
    with LambdaServer(0, aws_endpoints={"SQS": moto_endpoint}) as fake:
        lam = client_for(fake)
        lam.create_function(FunctionName="worker", Runtime="python3.12", Role=ROLE,
                            Handler="app.handler", Timeout=1, Code={"ZipFile": (
                                b"def handler(event, context):\n"
                                b"    return {'batchItemFailures': [\n"
                                b"        {'itemIdentifier': r['messageId']}\n"
                                b"        for r in event['Records'] if r['body'] == 'fail']}\n")})
        mapping = lam.create_event_source_mapping(
            FunctionName="worker", EventSourceArn=f"arn:aws:sqs:{REGION}:{ACCOUNT}:jobs-in",
            BatchSize=10, FunctionResponseTypes=["ReportBatchItemFailures"])
        for body in ("a", "fail", "b"):
            sqs.send_message(QueueUrl=queue_url, MessageBody=body, MessageAttributes={
                "Author": {"DataType": "String", "StringValue": "Grisham"}})

        def left():
            attributes = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=[
                "ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"])
            return sum(int(v) for v in attributes["Attributes"].values())

        def in_flight():
            return int(sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=[
                "ApproximateNumberOfMessagesNotVisible"])["Attributes"][
                "ApproximateNumberOfMessagesNotVisible"])
        assert wait_for(lambda: invocations_of(fake, "worker") and left() == 1, 20)
        event = json.loads(invocations_of(fake, "worker")[0]["payload"])
        assert {r["eventSource"] for r in event["Records"]} == {"aws:sqs"}
        record = event["Records"][0]
        assert list(record) == ["messageId", "receiptHandle", "body", "attributes",
                                "messageAttributes", "md5OfMessageAttributes", "md5OfBody",
                                "eventSource", "eventSourceARN", "awsRegion"]    # AWS's order
        assert record["messageAttributes"] == {"Author": {
            "stringValue": "Grisham", "stringListValues": [], "binaryListValues": [],
            "dataType": "String"}}
        assert {"ApproximateReceiveCount", "SentTimestamp"} <= set(record["attributes"])
        lam.update_event_source_mapping(UUID=mapping["UUID"], Enabled=False)
        seen = len(invocations_of(fake, "worker"))
        time.sleep(2.5)                 # the failed one comes back each second; nobody polls
        assert len(invocations_of(fake, "worker")) <= seen + 1 and left() == 1
        lam.update_event_source_mapping(UUID=mapping["UUID"], Enabled=True)
        assert wait_for(lambda: in_flight() == 1)    # polled again
        fake.reset()                    # and reset ends its poller
        time.sleep(1.5)
        assert in_flight() == 0
        create_function(lam, "worker2", Timeout=1, code=b"exports.handler = async () => 1;")
        lam.create_event_source_mapping(
            FunctionName="worker2", EventSourceArn=f"arn:aws:sqs:{REGION}:{ACCOUNT}:jobs-in")
        assert wait_for(lambda: in_flight() == 1 or left() == 0)
    time.sleep(1.5)                     # a long poll under way at stop() ends within a second
    sqs.send_message(QueueUrl=queue_url, MessageBody="after the stop")
    time.sleep(1.5)
    assert (in_flight(), left()) == (0, 1)


def moto_client(service, endpoint):
    return boto3.client(service, endpoint_url=endpoint, region_name=REGION,
                        aws_access_key_id="test", aws_secret_access_key="test")


def iso_seconds(stamp):
    return datetime.datetime.fromisoformat(stamp.replace("Z", "+00:00")).timestamp()


def enabled_soon(lam, mapping):
    """A new mapping is Creating until its poller runs, then Enabled."""
    assert mapping["State"] == "Creating"
    assert wait_for(lambda: lam.get_event_source_mapping(UUID=mapping["UUID"])["State"]
                    == "Enabled")


def test_a_mapping_of_the_local_kinesis_bisects_a_failing_batch_and_sends_what_failed_to_s3(
        moto_endpoint):
    kinesis, s3 = moto_client("kinesis", moto_endpoint), moto_client("s3", moto_endpoint)
    kinesis.create_stream(StreamName="clicks", ShardCount=1)
    stream = kinesis.describe_stream(StreamName="clicks")["StreamDescription"]["StreamARN"]
    s3.create_bucket(Bucket="failed-clicks")
    with LambdaServer(0, aws_endpoints={"": moto_endpoint}) as fake:
        lam = client_for(fake)
        create_function(lam, "clicks", Runtime="python3.12", Handler="app.handler", code=(
            b"import base64\n"
            b"def handler(event, context):\n"
            b"    seen = [base64.b64decode(r['kinesis']['data']).decode()\n"
            b"            for r in event['Records']]\n"
            b"    if 'bad' in seen:\n"
            b"        raise ValueError('bad click')\n"
            b"    return seen\n"))
        mapping = lam.create_event_source_mapping(
            FunctionName="clicks", EventSourceArn=stream, StartingPosition="LATEST", BatchSize=4,
            MaximumBatchingWindowInSeconds=1, BisectBatchOnFunctionError=True,
            MaximumRetryAttempts=1,
            DestinationConfig={"OnFailure": {"Destination": "arn:aws:s3:::failed-clicks"}})
        enabled_soon(lam, mapping)
        for data in ("a", "b", "bad", "c"):
            kinesis.put_record(StreamName="clicks", Data=data.encode(), PartitionKey="p")

        def objects():
            return s3.list_objects_v2(Bucket="failed-clicks").get("Contents", [])
        assert wait_for(lambda: objects() and len(invocations_of(fake, "clicks")) >= 6, 20)
        batches = [[base64.b64decode(r["kinesis"]["data"]).decode()
                    for r in json.loads(i["payload"])["Records"]]
                   for i in invocations_of(fake, "clicks")]
        # the batch fails, its halves are tried (not a retry), 'bad' once more, then it is given up
        assert batches == [["a", "b", "bad", "c"], ["a", "b"], ["bad", "c"], ["bad"], ["bad"],
                           ["c"]]
        first = json.loads(invocations_of(fake, "clicks")[0]["payload"])["Records"][0]
        assert (first["eventSource"], first["eventName"], first["eventSourceARN"],
                first["invokeIdentityArn"]) == ("aws:kinesis", "aws:kinesis:record", stream, ROLE)
        assert first["eventID"] == f"shardId-000000000000:{first['kinesis']['sequenceNumber']}"
        (found,) = objects()
        assert re.fullmatch(rf"aws/lambda/{mapping['UUID']}/shardId-000000000000/"
                            r"\d{4}/\d\d/\d\d/\d{4}-\d\d-\d\dT\d\d\.\d\d\.\d\d-[0-9a-f-]{36}",
                            found["Key"])
        record = json.loads(s3.get_object(Bucket="failed-clicks", Key=found["Key"])["Body"].read())
        assert record["requestContext"]["condition"] == "RetryAttemptsExhausted"
        assert record["requestContext"]["approximateInvokeCount"] == 2
        assert record["responseContext"]["functionError"] == "Unhandled"
        assert record["KinesisBatchInfo"]["batchSize"] == 1
        assert record["KinesisBatchInfo"]["streamArn"] == stream
        assert [r["kinesis"]["data"] for r in record["payload"]["Records"]] == [
            base64.b64encode(b"bad").decode()]
        assert lam.get_event_source_mapping(UUID=mapping["UUID"])[
            "LastProcessingResult"] == "OK"
        assert lam.update_event_source_mapping(UUID=mapping["UUID"], Enabled=False)[
            "State"] == "Disabling"
        assert wait_for(lambda: lam.get_event_source_mapping(UUID=mapping["UUID"])["State"]
                        == "Disabled")
        kinesis.put_record(StreamName="clicks", Data=b"d", PartitionKey="p")
        assert lam.update_event_source_mapping(UUID=mapping["UUID"], Enabled=True)[
            "State"] == "Enabling"
        assert wait_for(lambda: len(invocations_of(fake, "clicks")) == 7)
        time.sleep(0.5)                 # it goes on from where it was: 'd' alone, once
        assert [base64.b64decode(r["kinesis"]["data"]) for r in json.loads(
            invocations_of(fake, "clicks")[-1]["payload"])["Records"]] == [b"d"]
        assert len(invocations_of(fake, "clicks")) == 7


def test_a_mapping_of_the_local_dynamodb_stream_retries_from_the_first_reported_failure(
        moto_endpoint):
    dynamodb, sqs = moto_client("dynamodb", moto_endpoint), moto_client("sqs", moto_endpoint)
    stream = dynamodb.create_table(
        TableName="orders", KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST", StreamSpecification={
            "StreamEnabled": True, "StreamViewType": "NEW_AND_OLD_IMAGES"})[
        "TableDescription"]["LatestStreamArn"]
    queue_url = sqs.create_queue(QueueName="order-failures")["QueueUrl"]
    for key in ("1", "2", "3"):
        dynamodb.put_item(TableName="orders", Item={"id": {"S": key}})
    with LambdaServer(0, aws_endpoints={"": moto_endpoint}) as fake:
        lam = client_for(fake)
        create_function(lam, "orders", Runtime="python3.12", Handler="app.handler", code=(
            b"def handler(event, context):\n"
            b"    failed = [r['dynamodb']['SequenceNumber'] for r in event['Records']\n"
            b"              if r['dynamodb']['Keys']['id']['S'] == '2']\n"
            b"    return {'batchItemFailures': [{'itemIdentifier': n} for n in failed]}\n"))
        mapping = lam.create_event_source_mapping(
            FunctionName="orders", EventSourceArn=stream, StartingPosition="TRIM_HORIZON",
            BatchSize=10, MaximumRetryAttempts=1, FunctionResponseTypes=[
                "ReportBatchItemFailures"], DestinationConfig={"OnFailure": {
                    "Destination": f"arn:aws:sqs:{REGION}:{ACCOUNT}:order-failures"}})
        enabled_soon(lam, mapping)
        received = []
        assert wait_for(lambda: received.extend(sqs.receive_message(
            QueueUrl=queue_url, WaitTimeSeconds=1).get("Messages", [])) or received, 20)
        keys = [[r["dynamodb"]["Keys"]["id"]["S"] for r in json.loads(i["payload"])["Records"]]
                for i in invocations_of(fake, "orders")]
        assert keys == [["1", "2", "3"], ["2", "3"]]      # from the first failure on, once more
        first = json.loads(invocations_of(fake, "orders")[0]["payload"])["Records"][0]
        assert (first["eventSource"], first["eventName"], first["eventSourceARN"]) == (
            "aws:dynamodb", "INSERT", stream)
        record = json.loads(received[0]["Body"])
        info = record["DDBStreamBatchInfo"]
        assert (info["batchSize"], info["streamArn"], record["requestContext"]["condition"]) == (
            2, stream, "RetryAttemptsExhausted")
        assert record["responseContext"]["functionError"] is None      # failed by its answer
        assert "payload" not in record
        assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ",   # to the second, as AWS's
                            info["approximateArrivalOfFirstRecord"])


def test_a_mapping_of_the_local_sqs_gathers_a_batch_over_its_window_and_keeps_to_its_concurrency(
        moto_endpoint):
    sqs = moto_client("sqs", moto_endpoint)
    queue_url = sqs.create_queue(QueueName="gathered")["QueueUrl"]
    busy_url = sqs.create_queue(QueueName="busy")["QueueUrl"]
    with LambdaServer(0, aws_endpoints={"SQS": moto_endpoint}) as fake:
        lam = client_for(fake)
        create_function(lam, "gather",
                        code=b"exports.handler = async (e) => e.Records.map(r => r.body);")
        create_function(lam, "slow", code=b"exports.handler = async (e) => "
                                          b"new Promise(r => setTimeout(() => r(1), 600));")
        for number in range(25):
            sqs.send_message(QueueUrl=queue_url, MessageBody=str(number))
        gathered = lam.create_event_source_mapping(
            FunctionName="gather", EventSourceArn=f"arn:aws:sqs:{REGION}:{ACCOUNT}:gathered",
            BatchSize=25, MaximumBatchingWindowInSeconds=2,
            ScalingConfig={"MaximumConcurrency": 2})   # two pollers: one gathers more than 10
        enabled_soon(lam, gathered)
        def batches():
            return [json.loads(i["response"]) for i in invocations_of(fake, "gather")
                    if "response" in i]
        assert wait_for(lambda: len({body for batch in batches() for body in batch}) == 25, 20), \
            batches()                   # (moto may hand a message to both pollers: a set)
        assert max(len(batch) for batch in batches()) > 10
        for number in range(8):
            sqs.send_message(QueueUrl=busy_url, MessageBody=str(number))
        lam.create_event_source_mapping(
            FunctionName="slow", EventSourceArn=f"arn:aws:sqs:{REGION}:{ACCOUNT}:busy",
            BatchSize=1, ScalingConfig={"MaximumConcurrency": 2})
        assert wait_for(lambda: len(invocations_of(fake, "slow")) == 8, 30)
        spans = [(iso_seconds(i["timestamp"]),
                  iso_seconds(i["timestamp"]) + i["durationMs"] / 1000)
                 for i in invocations_of(fake, "slow")]
        overlapping = max(sum(start <= moment < end for start, end in spans)
                          for moment, _ in spans)
        assert overlapping == 2


def test_destinations_reach_the_local_sns_eventbridge_and_s3(moto_endpoint):
    sqs, sns = moto_client("sqs", moto_endpoint), moto_client("sns", moto_endpoint)
    events, s3 = moto_client("events", moto_endpoint), moto_client("s3", moto_endpoint)
    urls = {name: sqs.create_queue(QueueName=name)["QueueUrl"] for name in ("via-sns", "via-bus")}
    topic = sns.create_topic(Name="results")["TopicArn"]
    sns.subscribe(TopicArn=topic, Protocol="sqs",
                  Endpoint=f"arn:aws:sqs:{REGION}:{ACCOUNT}:via-sns",
                  Attributes={"RawMessageDelivery": "true"})
    events.put_rule(Name="results", EventPattern=json.dumps({"source": ["lambda"]}))
    events.put_targets(Rule="results", Targets=[{
        "Id": "q", "Arn": f"arn:aws:sqs:{REGION}:{ACCOUNT}:via-bus"}])
    s3.create_bucket(Bucket="async-failures")
    with LambdaServer(0, async_retry_delay=0.05, aws_endpoints={"": moto_endpoint}) as fake:
        lam = client_for(fake)
        create_function(lam, "ok", code=b"exports.handler = async (e) => ({ doubled: e.n * 2 });")
        create_function(lam, "broken", code=b"exports.handler = async () => { throw new "
                                            b"Error('broken'); };")
        lam.put_function_event_invoke_config(FunctionName="ok", DestinationConfig={
            "OnSuccess": {"Destination": topic}})
        lam.put_function_event_invoke_config(FunctionName="broken", MaximumRetryAttempts=0,
                                             DestinationConfig={"OnFailure": {
                                                 "Destination": "arn:aws:s3:::async-failures"}})
        lam.invoke(FunctionName="ok", InvocationType="Event", Payload=b'{"n": 4}')
        lam.invoke(FunctionName="broken", InvocationType="Event", Payload=b'{"n": 5}')

        def first(url):
            received = sqs.receive_message(QueueUrl=url, WaitTimeSeconds=1).get("Messages")
            return received and json.loads(received[0]["Body"])
        by_sns = {}
        assert wait_for(lambda: by_sns.update(first(urls["via-sns"]) or {}) or by_sns, 20)
        assert by_sns["requestContext"]["condition"] == "Success"
        assert by_sns["responsePayload"] == {"doubled": 8}
        lam.put_function_event_invoke_config(FunctionName="ok", DestinationConfig={
            "OnSuccess": {"Destination": f"arn:aws:events:{REGION}:{ACCOUNT}:event-bus/default"}})
        lam.invoke(FunctionName="ok", InvocationType="Event", Payload=b'{"n": 6}')
        by_bus = {}
        assert wait_for(lambda: by_bus.update(first(urls["via-bus"]) or {}) or by_bus, 20)
        assert (by_bus["source"], by_bus["detail-type"]) == (
            "lambda", "Lambda Function Invocation Result - Success")
        assert by_bus["detail"]["responsePayload"] == {"doubled": 12}
        assert by_bus["resources"] == [    # as AWS records them: the bus, then the function
            f"arn:aws:events:{REGION}:{ACCOUNT}:event-bus/default",
            f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:ok:$LATEST"]
        stored = []
        assert wait_for(lambda: stored.extend(s3.list_objects_v2(Bucket="async-failures").get(
            "Contents", [])) or stored, 20)
        assert re.fullmatch(r"aws/lambda/async/broken/\d{4}/\d\d/\d\d/"
                            r"\d{4}-\d\d-\d\dT\d\d\.\d\d\.\d\d-[0-9a-f-]{36}", stored[0]["Key"])
        record = json.loads(s3.get_object(Bucket="async-failures", Key=stored[0]["Key"])[
            "Body"].read())
        assert record["requestContext"]["condition"] == "RetriesExhausted"
        assert record["requestPayload"] == {"n": 5}


def test_mappings_of_the_local_sqs_and_kinesis_pass_only_what_their_filters_match(
        moto_endpoint):
    sqs, kinesis = moto_client("sqs", moto_endpoint), moto_client("kinesis", moto_endpoint)
    queue_url = sqs.create_queue(QueueName="filtered")["QueueUrl"]
    kinesis.create_stream(StreamName="filtered", ShardCount=1)
    stream = kinesis.describe_stream(StreamName="filtered")["StreamDescription"]["StreamARN"]
    orders = {"Filters": [{"Pattern": json.dumps({"body": {"kind": ["order"]}})}]}
    with LambdaServer(0, aws_endpoints={"": moto_endpoint}) as fake:
        lam = client_for(fake)
        create_function(lam, "orders", code=b"exports.handler = async (e) => e.Records.length;")
        create_function(lam, "big", code=b"exports.handler = async (e) => e.Records.length;")
        sqs_mapping = lam.create_event_source_mapping(
            FunctionName="orders", EventSourceArn=f"arn:aws:sqs:{REGION}:{ACCOUNT}:filtered",
            FilterCriteria=orders)
        stream_mapping = lam.create_event_source_mapping(
            FunctionName="big", EventSourceArn=stream, StartingPosition="TRIM_HORIZON",
            FilterCriteria={"Filters": [{"Pattern": json.dumps(
                {"data": {"amount": [{"numeric": [">=", 100]}]}})}]})
        for mapping in (sqs_mapping, stream_mapping):
            enabled_soon(lam, mapping)
        for body in ({"kind": "order"}, {"kind": "refund"}, "not json", {"kind": "order"}):
            sqs.send_message(QueueUrl=queue_url, MessageBody=json.dumps(body))
        for amount in (5, 150, 99, 100):
            kinesis.put_record(StreamName="filtered", PartitionKey="p",
                               Data=json.dumps({"amount": amount}).encode())

        def left():
            return sum(int(v) for v in sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=[
                "ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"])[
                "Attributes"].values())
        def amounts():
            return [json.loads(base64.b64decode(r["kinesis"]["data"]))["amount"]
                    for i in invocations_of(fake, "big")
                    for r in json.loads(i["payload"])["Records"]]
        assert wait_for(lambda: left() == 0 and len(amounts()) == 2, 20)
        bodies = [json.loads(r["body"]) for i in invocations_of(fake, "orders")
                  for r in json.loads(i["payload"])["Records"]]
        assert bodies == [{"kind": "order"}, {"kind": "order"}]     # the rest deleted unseen
        time.sleep(0.5)
        assert amounts() == [150, 100]


def test_a_mapping_of_the_local_sqs_or_streams_needs_its_source_as_aws_does(moto_endpoint):
    sqs = moto_client("sqs", moto_endpoint)
    sqs.create_queue(QueueName="short", Attributes={"VisibilityTimeout": "2"})
    with LambdaServer(0, aws_endpoints={"": moto_endpoint}) as fake:
        lam = client_for(fake)
        create_function(lam, "consumer", Timeout=5)
        for source, message in (
                (f"arn:aws:sqs:{REGION}:{ACCOUNT}:nowhere",
                 "Error occurred while ReceiveMessage. SQS Error Code: "
                 "AWS.SimpleQueueService.NonExistentQueue. SQS Error Message: "
                 "The specified queue does not exist."),
                (f"arn:aws:sqs:{REGION}:{ACCOUNT}:short",
                 "Queue visibility timeout: 2 seconds is less than Function timeout: 5 seconds"),
                (f"arn:aws:kinesis:{REGION}:{ACCOUNT}:stream/nowhere",
                 f"Stream not found: arn:aws:kinesis:{REGION}:{ACCOUNT}:stream/nowhere"),
                (f"arn:aws:dynamodb:{REGION}:{ACCOUNT}:table/t/stream/2026-01-01T00:00:00.000",
                 f"Stream not found: arn:aws:dynamodb:{REGION}:{ACCOUNT}:table/t/stream/"
                 "2026-01-01T00:00:00.000")):
            extra = {} if ":sqs:" in source else {"StartingPosition": "LATEST"}
            assert assert_error(lambda: lam.create_event_source_mapping(
                FunctionName="consumer", EventSourceArn=source, **extra),
                "InvalidParameterValueException", 400) == message
        assert lam.list_event_source_mappings()["EventSourceMappings"] == []


def test_a_mapping_of_the_local_kinesis_carries_a_tumbling_windows_state_to_its_end(
        moto_endpoint):
    kinesis = moto_client("kinesis", moto_endpoint)
    kinesis.create_stream(StreamName="counted", ShardCount=1)
    stream = kinesis.describe_stream(StreamName="counted")["StreamDescription"]["StreamARN"]
    with LambdaServer(0, aws_endpoints={"": moto_endpoint}) as fake:
        lam = client_for(fake)
        create_function(lam, "counter", code=(
            b"exports.handler = async (e) => ({ state: { count: (e.state.count || 0) + "
            b"e.Records.length } });"))
        mapping = lam.create_event_source_mapping(
            FunctionName="counter", EventSourceArn=stream, StartingPosition="LATEST",
            BatchSize=1, TumblingWindowInSeconds=2)
        enabled_soon(lam, mapping)
        for number in range(3):
            kinesis.put_record(StreamName="counted", Data=str(number).encode(), PartitionKey="p")

        def events():
            return [json.loads(i["payload"]) for i in invocations_of(fake, "counter")]

        def finals():
            return [e for e in events() if e["isFinalInvokeForWindow"]]
        assert wait_for(lambda: sum(e["state"]["count"] for e in finals()) == 3, 20)
        for event in events():
            start, end = (iso_seconds(event["window"][edge]) for edge in ("start", "end"))
            assert (end - start, start % 2) == (2, 0)
            assert (event["shardId"], event["eventSourceARN"]) == ("shardId-000000000000", stream)
        assert all(e["Records"] == [] for e in finals())
        assert [len(e["Records"]) for e in events() if not e["isFinalInvokeForWindow"]] == [1] * 3
        first = events()[0]
        assert first["state"] == {} and first["isWindowTerminatedEarly"] is False
        create_function(lam, "stateless", code=b"exports.handler = async () => 1;")
        other = lam.create_event_source_mapping(
            FunctionName="stateless", EventSourceArn=stream, StartingPosition="LATEST",
            TumblingWindowInSeconds=2, MaximumRetryAttempts=0)
        enabled_soon(lam, other)
        kinesis.put_record(StreamName="counted", Data=b"x", PartitionKey="p")
        assert wait_for(lambda: lam.get_event_source_mapping(UUID=other["UUID"])[
            "LastProcessingResult"] == "PROBLEM: Function call failed")  # an answer with no state


# A Kinesis stream stood in for (stream_call replaced), for what moto's server cannot show.
STAND_IN = {"KINESIS": "http://127.0.0.1:9"}    # an endpoint, so that mappings poll; never asked
STAND_IN_STREAM = f"arn:aws:kinesis:{REGION}:{ACCOUNT}:stream/s"


def kinesis_record(number, key="p", data=b"x", age=0):
    """A record as Kinesis's GetRecords answers it, `age` seconds old."""
    return {"SequenceNumber": str(number), "PartitionKey": key,
            "ApproximateArrivalTimestamp": time.time() - age,
            "Data": base64.b64encode(data).decode()}


def one_shard_stream(monkeypatch, reads):
    """The stand-in stream as one shard: each read gives the last of `reads`, then nothing."""
    def stream_call(store, kind, action, body):
        if action == "ListShards":
            return {"Shards": [{"ShardId": "0"}]}
        if action == "GetShardIterator":
            return {"ShardIterator": "0"}
        return {"Records": reads.pop() if reads else [], "NextShardIterator": "0"}
    monkeypatch.setattr(lambda_fake, "stream_call", stream_call)


def test_a_stream_mapping_gives_up_on_records_too_old_before_invoking_and_takes_an_empty_answer(
        monkeypatch):
    """As AWS records it: records older than MaximumRecordAgeInSeconds go to the OnFailure
    destination unseen (their record has no responseContext), the rest are invoked, and an
    empty answer to ReportBatchItemFailures is a success."""
    one_shard_stream(monkeypatch, [[kinesis_record(1, age=120), kinesis_record(2),
                                     kinesis_record(3)]])
    failures = f"arn:aws:sqs:{REGION}:{ACCOUNT}:old"
    with LambdaServer(0, aws_endpoints=STAND_IN) as fake:
        lam = client_for(fake)
        create_function(lam, "reader", code=b"exports.handler = async (e) => [];")
        lam.create_event_source_mapping(
            FunctionName="reader", EventSourceArn=STAND_IN_STREAM,
            StartingPosition="TRIM_HORIZON", MaximumRecordAgeInSeconds=60, MaximumRetryAttempts=1,
            FunctionResponseTypes=["ReportBatchItemFailures"],
            DestinationConfig={"OnFailure": {"Destination": failures}})
        assert wait_for(lambda: invocations_of(fake, "reader")
                        and parlel_json(fake, "/_parlel/destinations")["deliveries"])
        time.sleep(0.5)
        (invoked,) = invocations_of(fake, "reader")        # once: [] is a success
        assert [r["kinesis"]["sequenceNumber"] for r in json.loads(invoked["payload"])[
            "Records"]] == ["2", "3"]
        (given_up,) = parlel_json(fake, "/_parlel/destinations")["deliveries"]
        message = given_up["message"]
        assert message["requestContext"]["condition"] == "RecordAgeExceeded"
        assert message["KinesisBatchInfo"]["startSequenceNumber"] == "1"
        assert message["KinesisBatchInfo"]["batchSize"] == 1
        assert "responseContext" not in message


def test_a_stream_mappings_parallelization_factor_runs_a_shards_keys_at_once(monkeypatch):
    """ParallelizationFactor 3: one shard's records for three partition keys are handled in up to
    three batches at once, each key's records in order."""
    one_shard_stream(monkeypatch, [[kinesis_record(n, key) for n, key in enumerate("abcabc", 1)]])
    with LambdaServer(0, aws_endpoints=STAND_IN) as fake:
        lam = client_for(fake)
        create_function(lam, "keys", code=(
            b"exports.handler = async (e) => { await new Promise(r => setTimeout(r, 500)); "
            b"return e.Records.map(r => r.kinesis.partitionKey + r.kinesis.sequenceNumber); };"))
        lam.create_event_source_mapping(
            FunctionName="keys", EventSourceArn=STAND_IN_STREAM,
            StartingPosition="TRIM_HORIZON", ParallelizationFactor=3)
        assert wait_for(lambda: sum(len(json.loads(i.get("response") or "[]"))
                                    for i in invocations_of(fake, "keys")) == 6, 15)
        calls = invocations_of(fake, "keys")
        handled = [item for i in calls for item in json.loads(i["response"])]
        for key in "abc":                       # each key's records in order
            assert [item for item in handled if item[0] == key] == sorted(
                item for item in handled if item[0] == key)
        starts = sorted(iso_seconds(i["timestamp"]) for i in calls)
        assert len(calls) >= 2 and starts[1] - starts[0] < 0.4     # at once, not one by one


def test_a_stream_record_the_poller_cannot_read_is_said_and_polling_goes_on(monkeypatch, capsys):
    one_shard_stream(monkeypatch, [[kinesis_record(2)],
                                   [{"SequenceNumber": "1"}]])   # no data: a local surprise
    with LambdaServer(0, quiet=False, aws_endpoints=STAND_IN) as fake:
        lam = client_for(fake)
        create_function(lam, "reader", code=b"exports.handler = async (e) => e.Records.length;")
        lam.create_event_source_mapping(
            FunctionName="reader", EventSourceArn=STAND_IN_STREAM,
            StartingPosition="LATEST")
        assert wait_for(lambda: invocations_of(fake, "reader"), 15)
        assert json.loads(invocations_of(fake, "reader")[0]["payload"])["Records"][0][
            "kinesis"]["sequenceNumber"] == "2"
    assert "met KeyError" in capsys.readouterr().err


def test_a_stream_mapping_reads_the_shards_a_reshard_makes_from_their_start(monkeypatch):
    """moto's server does not close shards when it reshards, so a stream stands in for it: its
    shard 0 ends after one record, and shard 1, which takes over, holds the next."""
    reads = {"0": [kinesis_record(1, data=b"r1")], "1": [kinesis_record(2, data=b"r2")]}
    asked = []

    def stream_call(store, kind, action, body):
        asked.append((action, body.get("ShardId"), body.get("ShardIteratorType")))
        if action == "ListShards":
            return {"Shards": [{"ShardId": "0"}] + ([{"ShardId": "1"}] if not reads["0"] else [])}
        if action == "GetShardIterator":
            return {"ShardIterator": body["ShardId"]}
        shard = body["ShardIterator"]
        records, reads[shard] = reads[shard], []
        ended = shard == "0" and not records
        return {"Records": records, "NextShardIterator": None if ended else shard}
    monkeypatch.setattr(lambda_fake, "stream_call", stream_call)
    with LambdaServer(0, aws_endpoints=STAND_IN) as fake:
        lam = client_for(fake)
        create_function(lam, "reader", code=b"exports.handler = async (e) => e.Records.map("
                                            b"r => Buffer.from(r.kinesis.data, 'base64') + '');")
        lam.create_event_source_mapping(
            FunctionName="reader", EventSourceArn=STAND_IN_STREAM,
            StartingPosition="LATEST")
        assert wait_for(lambda: len(invocations_of(fake, "reader")) == 2)
        assert [json.loads(i["response"]) for i in invocations_of(fake, "reader")] == [
            ["r1"], ["r2"]]
        assert ("GetShardIterator", "0", "LATEST") in asked
        assert ("GetShardIterator", "1", "TRIM_HORIZON") in asked


def test_a_message_a_poller_receives_after_a_reset_is_seen_again_at_once_on_the_local_sqs(
        moto_endpoint):
    """A suite resets between tests while the pollers long-poll: what they receive after the
    reset must not stay hidden for the queue's visibility timeout (30 s) from the next test."""
    sqs = moto_client("sqs", moto_endpoint)
    queue_url = sqs.create_queue(QueueName="shared-between-tests")["QueueUrl"]
    with LambdaServer(0, aws_endpoints={"SQS": moto_endpoint}) as fake:
        lam = client_for(fake)
        create_function(lam, "consumer")
        enabled_soon(lam, lam.create_event_source_mapping(
            FunctionName="consumer",
            EventSourceArn=f"arn:aws:sqs:{REGION}:{ACCOUNT}:shared-between-tests"))
        time.sleep(0.5)                 # its five pollers are waiting on the queue
        fake.reset()
        sqs.send_message(QueueUrl=queue_url, MessageBody="for the next test")
        time.sleep(1.5)                 # an old poller took it, and gave it back
        received = sqs.receive_message(QueueUrl=queue_url, WaitTimeSeconds=3).get("Messages")
        assert received and received[0]["Body"] == "for the next test"
