"""lambda_fake: a local fake of AWS Lambda that speaks the real REST-JSON API and runs handlers.

Copyright (c) 2026 the lambda_fake authors. MIT licence (see LICENSE). One file, standard library.

Run it:

    python lambda_fake.py 4571            # serves http://127.0.0.1:4571

Use it from tests:

    server = LambdaServer(0); server.start()          # port 0 picks a free port
    lam = boto3.client("lambda", endpoint_url=server.endpoint_url, region_name="us-east-1",
                       aws_access_key_id="test", aws_secret_access_key="test")
    server.reset(); server.stop()                      # clear all state; stop and end every worker

Handlers really run: Node.js handlers in `node`, Python handlers in this interpreter, each in a
process of its own. Code.ZipFile takes a real zip or raw source text. Runtimes that cannot run
here answer Invoke by echoing the payload, and the invocation log says why.

Paths of the fake's own: `GET /_parlel/health`, `POST /_parlel/reset`, `GET /_parlel/` (the
inspector page) and a few more (README.md lists them, with the table of supported operations).
This is not a security boundary: handlers run as the server's user, without a container. It
does refuse web pages (cross-site requests, DNS rebinding): see RequestSources.

Contents (grep for the banner titles):
    1. Constants and limits            9. Invocations
    2. Errors                         10. Operations
    3. Names, ARNs and qualifiers     11. Route table
    4. Store                          12. HTTP handler
    5. Validation                     13. LambdaServer
    6. Code packages                  14. pytest plugin
    7. Runtimes                       15. Command line
    8. Environments and the pool
"""

import base64
import binascii
import bisect
import collections
import datetime
import fcntl
import functools
import hashlib
import hmac
import http.server
import io
import json
import operator
import os
import queue
import random
import re
import select
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
import zipfile
import zlib

__version__ = "0.1.0"
__all__ = ["LambdaServer", "LambdaError", "main"]


# ----------------------------------------------------------------------------------------------
# 1. Constants and limits
# ----------------------------------------------------------------------------------------------
# The AWS facts we emulate. Each quota names the AWS limit it copies.

DEFAULT_ACCOUNT_ID = "123456789012"
DEFAULT_REGION = "us-east-1"
DEFAULT_PORT = 4571

DEFAULT_TIMEOUT_SECONDS = 3            # CreateFunction's default Timeout
MAX_TIMEOUT_SECONDS = 900              # "Function timeout: 900 seconds (15 minutes)"
DEFAULT_MEMORY_MB = 128                # CreateFunction's default MemorySize
MIN_MEMORY_MB = 128
MAX_MEMORY_MB = 10240                  # the documented maximum; the API model allows more
DEFAULT_EPHEMERAL_STORAGE_MB = 512
MAX_FUNCTION_NAME_LENGTH = 64          # a plain name; ARNs may be longer
MAX_ENVIRONMENT_BYTES = 4096           # "Function environment variables: 4 KB, for all variables"
MAX_SYNC_PAYLOAD_BYTES = 6 * 1024 * 1024       # Invoke request and response, RequestResponse
MAX_ASYNC_PAYLOAD_BYTES = 1024 * 1024          # Invoke request, Event (raised from 256 KB in 2025)
MAX_INVOKE_ASYNC_PAYLOAD_BYTES = 256 * 1024    # the deprecated InvokeAsync keeps the old 256 KB
MAX_ZIP_UPLOAD_BYTES = 50 * 1024 * 1024        # "Deployment package (.zip) size: 50 MB (zipped,
                                               # direct upload)"
MAX_RESPONSE_BYTES = 6291556                   # the response limit AWS states in its error message
MAX_UNZIPPED_BYTES = 250 * 1024 * 1024         # "250 MB (unzipped)", layers included
MAX_REQUEST_BYTES = 70167211                   # CreateFunction's request limit; larger is never
                                               # read
HOT_RELOAD_BUCKET = "hot-reload"       # LocalStack's convention: S3Key names a local directory
LOG_TAIL_BYTES = 4096                  # X-Amz-Log-Result holds the last 4 KB of the log
LIST_PAGE_SIZE = 50                    # ListFunctions and friends answer at most 50 items a page
MAX_LOG_BYTES_PER_INVOKE = 1024 * 1024 # our own cap on one invocation's captured output
INIT_TIMEOUT_SECONDS = 10              # Lambda gives the init phase 10 s of its own
DEBUG_TIMEOUT_SECONDS = 24 * 3600      # our own: what a debugged function's Timeout becomes
DEFAULT_SETTLE_SECONDS = 0.2           # our own: how long a change takes with --strict-aws
DEBUG_PORTS = {"inspector": 9229, "debugpy": 5678, "pdb": 5678, "custom": 2345}   # first tried
DEFAULT_ASYNC_RETRY_DELAY_SECONDS = 0.5  # between async retries (AWS waits 1 then 2 minutes)
DEFAULT_DURABLE_TIMEOUT_SECONDS = 86400  # a durable execution's ExecutionTimeout when none is set
MAX_DURABLE_INVOCATION_FAILURES = 5    # a handler that keeps crashing fails its durable execution
MAX_SPARES = 6                         # our own: spares kept beside max_workers, in all
SPARES_PER_KIND = 2                    # and of each kind (runtime family and Node.js heap)
SPARE_WAIT_SECONDS = 0.25              # a cold start waits this long at most for a booting spare
HOUSEKEEPING_DELAY_SECONDS = 0.005     # our own: spares start, retired workers end, after
                                       # the reply of the request that made them
MAX_INVALID_PENDING = 3                # PENDING with nothing pending, this often, fails it too
MAX_JSON_NESTING_DEPTH = 1000          # the JSON parser's limit behind the API (Jackson's)
MAX_RECORDED_INVOCATIONS = 1000        # our own: invocations kept for /_parlel/logs
MAX_RECORDED_PAYLOAD_BYTES = 16 * 1024 # our own: payload and response kept per invocation
MAX_RECORDED_LOG_CHARS = 64 * 1024     # our own: log tail kept per invocation
ACCOUNT_CONCURRENCY = 1000             # "Concurrent executions: 1,000" per account and region
MIN_UNRESERVED_CONCURRENCY = 100       # reservations must leave 100 for everything else
MAX_TAGS = 50                          # "Tags per resource: 50"
TOTAL_CODE_STORAGE_BYTES = 80530636800 # "Function and layer storage: 75 GB"

# Runtimes that run here, by family; every other runtime of the model is accepted and echoes.
NODE_RUNTIMES = ("nodejs16.x", "nodejs18.x", "nodejs20.x", "nodejs22.x", "nodejs24.x")
CUSTOM_RUNTIMES = ("provided", "provided.al2", "provided.al2023")     # through the Runtime API
PYTHON_RUNTIMES = ("python3.8", "python3.9", "python3.10", "python3.11", "python3.12", "python3.13",
                   "python3.14")

# The runtimes AWS accepts for new and updated functions, in the order its error message lists them.
USABLE_RUNTIMES = (
    "nodejs20.x", "python3.14", "provided.al2023", "python3.12", "python3.13", "nodejs24.x",
    "nodejs22.x", "java25", "python3.10", "python3.11", "java21", "ruby3.3", "ruby3.4", "ruby3.2",
    "python3.8", "python3.9", "java17", "nodejs16.x", "dotnet10", "dotnet8", "java11", "dotnet6",
    "nodejs18.x", "provided.al2", "java8.al2", "ruby4.0",
)

# The Runtime enum of the API model; those not usable above are deprecated and blocked.
RUNTIMES = (
    "nodejs", "nodejs4.3", "nodejs6.10", "nodejs8.10", "nodejs10.x", "nodejs12.x", "nodejs14.x",
    "nodejs16.x", "java8", "java8.al2", "java11", "python2.7", "python3.6", "python3.7",
    "python3.8", "python3.9", "dotnetcore1.0", "dotnetcore2.0", "dotnetcore2.1", "dotnetcore3.1",
    "dotnet6", "dotnet8", "nodejs4.3-edge", "go1.x", "ruby2.5", "ruby2.7", "provided",
    "provided.al2", "nodejs18.x", "python3.10", "java17", "ruby3.2", "ruby3.3", "ruby3.4",
    "python3.11", "nodejs20.x", "provided.al2023", "python3.12", "java21", "python3.13",
    "nodejs22.x", "nodejs24.x", "python3.14", "java25", "dotnet10", "ruby4.0",
)

# Patterns from the API model, used both to validate and in AWS's own error messages.
FUNCTION_NAME_PATTERN = (r"(arn:(aws[a-zA-Z-]*)?:lambda:)?((eusc-)?[a-z]{2}((-gov)|(-iso([a-z]?)))?"
                         r"-[a-z]+-\d{1}:)?(\d{12}:)?(function:)?([a-zA-Z0-9-_]+)(:(\$LATEST|"
                         r"[a-zA-Z0-9-_]+))?")
ROLE_PATTERN = r"arn:(aws[a-zA-Z-]*)?:iam::\d{12}:role/?[a-zA-Z_0-9+=,.@\-_/]+"
NAMESPACED_FUNCTION_NAME_PATTERN = (
    r"(arn:(aws[a-zA-Z-]*)?:lambda:)?((eusc-)?[a-z]{2}((-gov)|(-iso([a-z]?)))?-[a-z]+-\d{1}:)?"
    r"(\d{12}:)?(function:)?([a-zA-Z0-9-_\.]+)(:(\$LATEST(\.PUBLISHED)?|[a-zA-Z0-9-_]+))?")
HANDLER_PATTERN = r"[^\s]+"
ENV_NAME_PATTERN = r"[a-zA-Z]([a-zA-Z0-9_])+"
QUALIFIER_PATTERN = r"\$(LATEST(\.PUBLISHED)?)|[a-zA-Z0-9-_$]+"
KMS_KEY_PATTERN = r"(arn:(aws[a-zA-Z-]*)?:[a-z0-9-.]+:.*)|()"

# Variables Lambda reserves: a function may not set them (AWS answers
# InvalidParameterValueException).
RESERVED_ENV_NAMES = frozenset((
    "_HANDLER", "_X_AMZN_TRACE_ID", "AWS_DEFAULT_REGION", "AWS_REGION", "AWS_EXECUTION_ENV",
    "AWS_LAMBDA_FUNCTION_NAME", "AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "AWS_LAMBDA_FUNCTION_VERSION",
    "AWS_LAMBDA_INITIALIZATION_TYPE", "AWS_LAMBDA_LOG_GROUP_NAME", "AWS_LAMBDA_LOG_STREAM_NAME",
    "AWS_ACCESS_KEY", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN",
    "AWS_LAMBDA_RUNTIME_API", "LAMBDA_TASK_ROOT", "LAMBDA_RUNTIME_DIR",
))


# ----------------------------------------------------------------------------------------------
# 2. Errors
# ----------------------------------------------------------------------------------------------
# One error class for every AWS error we answer; the builders keep AWS's recurring wording.

class LambdaError(Exception):
    """An AWS error reply: `code` is the model's shape name, `status` the HTTP status."""

    def __init__(self, code, status, message, headers=None, extra=None, typed=True):
        super().__init__(message)
        self.code = code
        self.status = status
        self.message = message
        self.headers = headers or {}
        self.extra = extra or {}        # further body members, e.g. Reason of a throttle
        self.typed = typed              # strictly, whether AWS's body has its Type (most do)


def not_found(message, typed=True):
    return LambdaError("ResourceNotFoundException", 404, message, typed=typed)


def function_not_found(arn):
    return not_found(f"Function not found: {arn}")


def conflict(message):
    return LambdaError("ResourceConflictException", 409, message)


def invalid_parameter(message, typed=True):
    return LambdaError("InvalidParameterValueException", 400, message, typed=typed)


def invalid_content(message):
    return LambdaError("InvalidRequestContentException", 400, message)


def precondition_failed(message):
    return LambdaError("PreconditionFailedException", 412, message)


SENSITIVE = object()        # stands for a value AWS does not repeat in its messages (secrets)


def constraint_text(value, path, constraint):
    """AWS's wording of one failed constraint: Value 'x' at 'path' failed to satisfy ..."""
    if value is SENSITIVE:
        return f"Value at '{path}' failed to satisfy constraint: {constraint}"
    shown = "null" if value is None else f"'{java_text(value)}'"
    return f"Value {shown} at '{path}' failed to satisfy constraint: {constraint}"


def validation_error(problems):
    """A ValidationException listing every failed constraint, as AWS's request validator does."""
    count = len(problems)
    noun = "error" if count == 1 else "errors"
    return LambdaError("ValidationException", 400,
                       f"{count} validation {noun} detected: " + "; ".join(problems))


def java_text(value):
    """A value as AWS's (Java) error messages print it: lists as [a, b], maps as {k=v}."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return "null"
    if isinstance(value, list):
        return "[" + ", ".join(java_text(item) for item in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k}={java_text(v)}" for k, v in value.items()) + "}"
    return str(value)


# ----------------------------------------------------------------------------------------------
# 3. Names, ARNs and qualifiers
# ----------------------------------------------------------------------------------------------
# A FunctionName may be a name, a partial ARN (account:function:name) or a full ARN, each with an
# optional :qualifier. Everything resolves to (name, qualifier) in this server's region and account.

FUNCTION_REF = re.compile(
    r"(?:arn:(?P<partition>aws[a-zA-Z-]*)?:lambda:)?"
    r"(?:(?P<region>(?:eusc-)?[a-z]{2}(?:-gov|-iso[a-z]?)?-[a-z]+-\d):)?(?:(?P<account>\d{12}):)?"
    r"(?:function:)?(?P<name>[a-zA-Z0-9_.-]+)(?::(?P<qualifier>\$LATEST(?:\.PUBLISHED)?|"
    r"[a-zA-Z0-9_-]+))?")
FUNCTION_NAME = re.compile(FUNCTION_NAME_PATTERN)
NAMESPACED_FUNCTION_NAME = re.compile(NAMESPACED_FUNCTION_NAME_PATTERN)


CREDENTIAL_SCOPE = re.compile(r"Credential=(?P<key>[^/,\s]+)/\d{8}/(?P<region>[^/]+)/")
REGION_NAME = re.compile(r"[a-z]{2}(-gov|-iso[a-z]?)?-[a-z]+-\d")


def function_arn(ctx, name, qualifier=None):
    arn = f"arn:aws:lambda:{ctx.region}:{ctx.account}:function:{name}"
    return f"{arn}:{qualifier}" if qualifier else arn


def parse_function_ref(ctx, ref, namespaced=True, max_length=170, also=()):
    """(name, qualifier or None) of a FunctionName in any of its forms; raises AWS's errors, with
    `also` (a Qualifier's) in the same ValidationException.

    Operations that create or change a function take the model's FunctionName shape (140 chars, no
    dots); those that read, invoke or delete take NamespacedFunctionName, whose length AWS reports
    only when its pattern holds."""
    pattern = NAMESPACED_FUNCTION_NAME if namespaced else FUNCTION_NAME
    problems = []
    matches = pattern.fullmatch(ref)
    if len(ref) > max_length and (matches or not namespaced):
        problems.append(constraint_text(
            ref, "functionName", f"Member must have length less than or equal to {max_length}"))
    if not matches:
        problems.append(constraint_text(
            ref, "functionName",
            f"Member must satisfy regular expression pattern: {pattern.pattern}"))
    problems += also
    match = FUNCTION_REF.fullmatch(ref)
    if problems or match is None:
        raise validation_error(problems or [constraint_text(
            ref, "functionName",
            f"Member must satisfy regular expression pattern: {pattern.pattern}")])
    region, account = match["region"], match["account"]
    if region and region != ctx.region:
        raise not_found(f"Functions from '{region}' are not reachable in this region "
                        f"('{ctx.region}')")
    if match["partition"] not in (None, "aws"):
        raise not_found(f"Functions from partition '{match['partition']}' are not reachable here")
    if account and account != ctx.account:     # in a body (paths go through Stores.route)
        raise LambdaError("AccessDeniedException", 403, None)   # AWS gives no message
    return match["name"], match["qualifier"]


def allows(policy, account, action):
    """Whether a resource policy lets another account take an action (lambda:Name)."""
    return policy is not None and any(
        statement.get("Effect", "Allow") == "Allow"
        and statement.get("Action") in (action, "lambda:*")
        and (statement.get("Principal") == "*"
             or (statement.get("Principal") or {}).get("AWS") in (
                 account, f"arn:aws:iam::{account}:root"))
        for statement in policy.statements)


def denied(account, action, arn):
    return LambdaError("AccessDeniedException", 403,
                       f"User: arn:aws:iam::{account}:root is not authorized to perform: {action} "
                       f"on resource: {arn} because no resource-based policy allows the {action} "
                       "action")


# ----------------------------------------------------------------------------------------------
# 4. Store
# ----------------------------------------------------------------------------------------------
# All state lives in plain dicts behind one lock. Records are kept in the API's own response shape,
# so a Get answers a copy of what is stored.

def copied(record):
    """A deep copy of a record of JSON values (dicts, lists, text, numbers): a JSON round trip."""
    return json.loads(json.dumps(record))


class Function:
    """One function: $LATEST and its published versions, with everything attached to it."""

    def __init__(self, name):
        self.name = name
        self.versions = {}          # "$LATEST", "1", "2", ... -> FunctionConfiguration
        self.packages = {}          # the same keys -> Package
        self.next_version = 1       # version numbers are never reused
        self.published = None      # fingerprint of $LATEST when it was last published
        self.aliases = {}           # name -> AliasConfiguration
        self.policies = {}          # qualifier ("" = unqualified) -> Policy
        self.reserved_concurrency = None
        self.provisioned = {}       # qualifier -> ProvisionedConcurrencyConfig
        self.url_configs = {}       # qualifier ("" = unqualified) -> FunctionUrlConfig
        self.event_invoke_configs = {}      # qualifier -> FunctionEventInvokeConfig
        self.code_signing_config_arn = None
        self.recursive_loop = "Terminate"
        self.runtime_management = {}        # qualifier -> {UpdateRuntimeOn, RuntimeVersionArn}
        self.scaling_configs = {}           # qualifier -> FunctionScalingConfig
        self.job_key = (None, None)         # ((version, RevisionId), Job.key) of the last Job

    def provisioned_total(self):
        """The provisioned concurrency all its configs ask for."""
        return sum(c["RequestedProvisionedConcurrentExecutions"] for c in self.provisioned.values())

    def has_qualifier(self, qualifier):
        """Whether a qualifier names something of this function: none at all, $LATEST, one of
        its versions or one of its aliases."""
        return (qualifier in (None, "$LATEST") or qualifier in self.versions
                or qualifier in self.aliases)


class Store:
    """The fake's whole state. Operations take `lock` once, holding it to check and to write."""

    def __init__(self, region=DEFAULT_REGION, account=DEFAULT_ACCOUNT_ID):
        self.lock = threading.Lock()
        self.region = region
        self.account = account
        self.endpoint_url = ""          # set by LambdaServer once its socket is bound
        self.runner = None              # the Runner that executes handlers
        self.async_retry_delay = DEFAULT_ASYNC_RETRY_DELAY_SECONDS
        self.credentials = None         # access key id -> secret when signatures are verified
        self.log_level = "info"         # of the server's own log on stderr (see LOG_LEVELS)
        self.warned = set()             # one-time warnings already given
        self.debug = frozenset()        # names of the functions debugged ("*": all)
        self.strict_aws = False         # AWS's error shapes and lifecycle, not the spec's
        self.settle_seconds = DEFAULT_SETTLE_SECONDS    # strictly, how long a change takes
        self.aws_endpoints = {}         # AWS_ENDPOINT_URL(_<SERVICE>) -> URL: other local services
        self.aws_credentials = ("test", "test")         # what requests to them are signed with
        self.log_shipper = None         # a LogShipper, when CloudWatch Logs has an endpoint
        self.generation = 0
        self.reset()
        self.stores = None              # the Stores of every account and region it is among

    def reset(self):
        """Forget every function and everything attached to it."""
        self.functions = {}             # name -> Function
        self.function_names = []        # its keys, kept sorted: ListFunctions pages never sort
        self.packages = {}              # CodeSha256 (hex) -> Package, served at /_parlel/code/<hex>
        self.tags = {}                  # resource ARN -> {key: value}
        self.layers = {}                # layer name -> {version number: LayerVersion}
        self.event_source_mappings = {}         # UUID -> EventSourceMappingConfiguration
        self.pollers = {}                       # UUID -> its running Poller
        self.checkpoints = {}                   # UUID -> {shard: last sequence number handled}
        self.code_signing_configs = {}          # ARN -> CodeSigningConfig
        self.capacity_providers = {}            # name -> CapacityProvider
        self.function_urls = {}                 # url id -> (function name, qualifier)
        self.durable_executions = {}            # ARN -> DurableExecution
        self.invocations = collections.deque(maxlen=MAX_RECORDED_INVOCATIONS)   # for /_parlel/logs
        self.deliveries = collections.deque(maxlen=MAX_RECORDED_INVOCATIONS)    # non-Lambda
                                                                                # destinations
        self.generation += 1                    # in-flight async retries stop when this changes
        self.callbacks = {}                     # callback id -> (execution ARN, operation id)


class Stores:
    """One Store per account and region, as AWS keeps them apart: a request's credentials say
    which (see for_request). The server's own account and region come first, and give every
    Store made later their settings and the Runner (one pool of environments for all)."""

    SHARED = ("endpoint_url", "runner", "async_retry_delay", "credentials", "log_level", "warned",
              "debug", "strict_aws", "settle_seconds", "aws_endpoints", "aws_credentials",
              "log_shipper")

    def __init__(self, default):
        self.default = default
        self.lock = threading.Lock()
        self.stores = {(default.account, default.region): default}
        default.stores = self

    def get(self, account, region):
        """The Store of an account and region, made on first use."""
        store = self.stores.get((account, region))
        if store is not None:
            return store
        with self.lock:
            store = self.stores.get((account, region))
            if store is None:
                store = Store(region, account)
                for name in self.SHARED:
                    setattr(store, name, getattr(self.default, name))
                store.stores = self
                self.stores[(account, region)] = store
            return store

    def existing(self, account, region):
        """The Store of an account and region, or None when none has been made."""
        return self.stores.get((account, region))

    def for_request(self, headers, query):
        """The Store a request is for: the region of its SigV4 credential scope (the
        Authorization header, or a presigned request's X-Amz-Credential), and the account its
        access key id names when that is 12 digits (as LocalStack does); the server's own
        account and region otherwise."""
        scope = CREDENTIAL_SCOPE.search(headers.get("Authorization") or "")
        if scope is None and "X-Amz-Credential" in query:
            scope = CREDENTIAL_SCOPE.search("Credential=" + urllib.parse.unquote(
                query.partition("X-Amz-Credential=")[2].partition("&")[0]))
        if scope is None:
            return self.default
        key, region = scope["key"], scope["region"]
        if not REGION_NAME.fullmatch(region):
            return self.default
        return self.get(key if re.fullmatch(r"\d{12}", key) else self.default.account, region)

    def each(self):
        """Every account's and region's Store, the server's own first."""
        with self.lock:
            return list(self.stores.values())

    def route(self, store, params, operation):
        """The Store an operation on a function runs in: the caller's, or, when its FunctionName
        is an ARN of another account in the same region whose resource policy lets the caller's
        account take the action, that account's (AWS's AccessDeniedException otherwise)."""
        match = FUNCTION_REF.fullmatch(params.get("FunctionName") or "")
        if match is None or not match["account"] or match["account"] == store.account or (
                match["region"] or store.region) != store.region:
            return store
        name = operation_name(operation)
        action = "lambda:" + ("InvokeFunction" if name.startswith("Invoke") else name)
        owner = self.existing(match["account"], store.region)
        function = owner.functions.get(match["name"]) if owner else None
        if function is None or not allows(function.policies.get(
                params.get("Qualifier") or match["qualifier"] or ""), store.account, action):
            arn = f"arn:aws:lambda:{store.region}:{match['account']}:function:{match['name']}"
            raise denied(store.account, action,
                         f"{arn}:{match['qualifier']}" if match["qualifier"] else arn)
        return owner

    def shared_layer(self, store, arn):
        """A layer version of another account (`arn`) that its permissions let `store`'s account
        use: (its Layer, its version number); AWS's AccessDeniedException when it is not there
        or not shared. Read without the owner's lock (a dict lookup), which nothing here ever
        holds together with another Store's."""
        parts = arn.split(":")
        owner = self.existing(parts[4], parts[3])
        layer = owner.layers.get(parts[6]) if owner else None
        number = int(parts[7])
        if layer is None or number not in layer.versions or not allows(
                layer.policies.get(number), store.account, "lambda:GetLayerVersion"):
            raise denied(store.account, "lambda:GetLayerVersion", arn)
        return layer, number

    def owner_of_url(self, url_id):
        """The Store that holds a function URL (its id is unique across them), else the
        server's own."""
        for store in self.each():
            if url_id in store.function_urls:
                return store
        return self.default

    def reset(self):
        """Every account and region forgets everything; only the server's own Store stays."""
        for store in self.each():
            with store.lock:
                store.reset()
        with self.lock:
            self.stores = {(self.default.account, self.default.region): self.default}


class Policy:
    """A resource policy: its statements in order and the RevisionId that guards changes."""

    def __init__(self):
        self.statements = []
        self.revision_id = new_revision_id()

    def document(self):
        return json.dumps({"Version": "2012-10-17", "Id": "default", "Statement": self.statements},
                          separators=(",", ":"))


def find_function(store, name, shown_qualifier=None):
    """The Function called `name`, or ResourceNotFoundException naming the ARN (with the qualifier
    AWS shows for that operation). Caller holds store.lock."""
    function = store.functions.get(name)
    if function is None:
        raise function_not_found(function_arn(store, name, shown_qualifier))
    return function


def find_version(store, function, qualifier):
    """(version, FunctionConfiguration, alias name or None) that a qualifier names: $LATEST, a
    version number or an alias. Caller holds store.lock."""
    if qualifier in (None, "$LATEST"):
        return "$LATEST", function.versions["$LATEST"], None
    alias = function.aliases.get(qualifier)
    version = alias["FunctionVersion"] if alias else qualifier
    config = function.versions.get(version)
    if config is None:
        raise function_not_found(function_arn(store, function.name, qualifier))
    return version, config, (qualifier if alias else None)


def find_alias(store, function, name, wording="Cannot find alias arn"):
    """An alias, or AWS's ResourceNotFoundException (whose wording varies by operation)."""
    alias = function.aliases.get(name)
    if alias is None:
        raise not_found(f"{wording}: {function_arn(store, function.name, name)}")
    return alias


def routing_weights(alias):
    """An alias's AdditionalVersionWeights, version -> weight; {} when it has none."""
    return (alias.get("RoutingConfig") or {}).get("AdditionalVersionWeights") or {}


def alias_versions(alias):
    """Every version an alias routes to: its own and the one in its routing weights."""
    return [alias["FunctionVersion"], *routing_weights(alias)]


def pick_weighted_version(alias, version):
    """The version one invocation of an alias runs: the extra version with its weight's chance."""
    for other, weight in routing_weights(alias).items():
        if random.random() < weight:
            return other
    return version


class DurableExecution:
    """One durable execution: its GetDurableExecution record, its operations (the EXECUTION one
    first), history events, the checkpoint token of the invocation under way, and timers.
    Timestamps are kept as epoch seconds; the handler's envelope gets them in milliseconds."""

    def __init__(self, arn, name, function_arn_, version, payload, durable_config):
        self.arn = arn
        self.id = arn.rsplit("/", 1)[1]
        now = time.time()
        self.record = {"DurableExecutionArn": arn, "DurableExecutionName": name,
                       "FunctionArn": function_arn_, "InputPayload": payload, "StartTimestamp": now,
                       "Status": "RUNNING", "Version": version, "DurableConfig": durable_config}
        self.timeout_at = now + durable_config.get("ExecutionTimeout",
                                                   DEFAULT_DURABLE_TIMEOUT_SECONDS)
        self.operations = {self.id: {"Id": self.id, "Type": "EXECUTION", "Status": "STARTED",
                                     "Name": name, "StartTimestamp": now,
                                     "ExecutionDetails": {"InputPayload": payload}}}
        self.events = []
        self.token = None               # minted for each invocation of the handler
        self.timers = {}                # callback operation id -> (deadline, is it the heartbeat's)
        self.changed = set()            # operation ids changed since the handler last saw them
        self.finished = threading.Event()
        self.wake = threading.Event()
        self.driving = False            # one handler invocation at a time
        self.add_event("ExecutionStarted", name, ExecutionStartedDetails={
            "Input": {"Payload": payload, "Truncated": False},
            "ExecutionTimeout": durable_config.get("ExecutionTimeout",
                                                   DEFAULT_DURABLE_TIMEOUT_SECONDS)})

    def add_event(self, event_type, event_id, parent=None, name=None, **details):
        event = {"EventType": event_type, "EventId": len(self.events) + 1, "Id": event_id,
                 "EventTimestamp": time.time(), **details}
        if parent:
            event["ParentId"] = parent
        if name:
            event["Name"] = name
        self.events.append(event)

    def status(self):
        return self.record["Status"]

    def finish(self, status, event_type, result=None, error=None):
        """End the execution: SUCCEEDED with a result, or FAILED, TIMED_OUT or STOPPED."""
        if self.status() not in ("RUNNING", "PAUSED"):
            return
        now = time.time()
        self.record.update(Status=status, EndTimestamp=now)
        execution_op = self.operations[self.id]
        execution_op.update(Status=status, EndTimestamp=now)
        if status == "SUCCEEDED":
            self.record["Result"] = result
            details = {"ExecutionSucceededDetails": {"Result": {"Payload": result,
                                                                "Truncated": False}}}
        else:
            self.record["Error"] = error
            key = {"FAILED": "ExecutionFailedDetails", "TIMED_OUT": "ExecutionTimedOutDetails",
                   "STOPPED": "ExecutionStoppedDetails"}[status]
            details = {key: {"Error": {"Payload": error, "Truncated": False}}}
        self.add_event(event_type, self.id, name=self.record["DurableExecutionName"], **details)
        self.token = None
        self.finished.set()
        self.wake.set()

    def mint_token(self):
        self.token = base64.b64encode(os.urandom(16)).decode()
        return self.token

    def envelope(self):
        """The event a durable handler receives: ARN, checkpoint token and every operation, with
        timestamps in epoch milliseconds as the durable SDKs read them."""
        operations = [millisecond_timestamps(op) for op in self.operations.values()]
        updated, self.changed = sorted(self.changed), set()
        return {"DurableExecutionArn": self.arn, "CheckpointToken": self.mint_token(),
                "InitialExecutionState": {"Operations": operations, "NextMarker": ""},
                "UpdatedOperationIds": updated}

    def pending(self):
        """Whether a wait, retry, callback or chained invoke can still wake the handler."""
        return any((op["Type"] == "STEP" and op["Status"] == "PENDING")
                   or (op["Type"] in ("WAIT", "CALLBACK", "CHAINED_INVOKE")
                       and op["Status"] == "STARTED")
                   for op in self.operations.values())

    def next_deadline(self):
        deadlines = [self.timeout_at]
        for op in self.operations.values():
            if op["Type"] == "WAIT" and op["Status"] == "STARTED":
                deadlines.append(op["WaitDetails"]["ScheduledEndTimestamp"])
            elif op["Type"] == "STEP" and op["Status"] == "PENDING":
                deadlines.append(op["StepDetails"]["NextAttemptTimestamp"])
        deadlines.extend(deadline for deadline, _ in self.timers.values())
        return min(deadlines)

    def fire_due_timers(self):
        """Complete what is due: waits succeed, retries become READY, callbacks time out, and the
        whole execution times out. Caller holds store.lock."""
        now = time.time()
        if now >= self.timeout_at:
            self.finish("TIMED_OUT", "ExecutionTimedOut", error={
                "ErrorType": "Execution.Timeout",
                "ErrorMessage": "The durable execution timed out"})
            return
        for op in self.operations.values():
            if (op["Type"] == "WAIT" and op["Status"] == "STARTED"
                    and op["WaitDetails"]["ScheduledEndTimestamp"] <= now):
                op.update(Status="SUCCEEDED", EndTimestamp=now)
                self.add_event("WaitSucceeded", op["Id"], op.get("ParentId"), op.get("Name"),
                               WaitSucceededDetails={"Duration": int(now - op["StartTimestamp"])})
                self.changed.add(op["Id"])
            elif (op["Type"] == "STEP" and op["Status"] == "PENDING"
                    and op["StepDetails"]["NextAttemptTimestamp"] <= now):
                op["Status"] = "READY"
                del op["StepDetails"]["NextAttemptTimestamp"]
                self.changed.add(op["Id"])
        for op_id, (deadline, heartbeat) in list(self.timers.items()):
            if deadline <= now:
                kind = "Callback.Heartbeat" if heartbeat else "Callback.Timeout"
                message = "Callback timed out on heartbeat" if heartbeat else "Callback timed out"
                self.complete_callback(op_id, "TIMED_OUT",
                                       error={"ErrorType": kind, "ErrorMessage": message})

    def complete_callback(self, op_id, status, result=None, error=None):
        op = self.operations[op_id]
        op.update(Status=status, EndTimestamp=time.time())
        self.timers.pop(op_id, None)
        event, details = {"SUCCEEDED": ("CallbackSucceeded",
                                        {"Result": {"Payload": result, "Truncated": False}}),
                          "FAILED": ("CallbackFailed",
                                     {"Error": {"Payload": error, "Truncated": False}}),
                          "TIMED_OUT": ("CallbackTimedOut",
                                        {"Error": {"Payload": error, "Truncated": False}})}[status]
        if result is not None:
            op["CallbackDetails"]["Result"] = result
        if error is not None:
            op["CallbackDetails"]["Error"] = error
        self.add_event(event, op_id, op.get("ParentId"), op.get("Name"),
                       **{f"{event}Details": details})
        self.changed.add(op_id)
        self.wake.set()


def millisecond_timestamps(operation):
    """A copy of an operation with its timestamps in epoch milliseconds (integers)."""
    copy = copied(operation)
    for holder, key in ((copy, "StartTimestamp"), (copy, "EndTimestamp"),
                        (copy.get("StepDetails") or {}, "NextAttemptTimestamp"),
                        (copy.get("WaitDetails") or {}, "ScheduledEndTimestamp")):
        if key in holder:
            holder[key] = int(holder[key] * 1000)
    return copy


def start_durable_execution(store, job, payload, name):
    """The durable execution an invocation of a function with DurableConfig runs: a new one, or
    (same name, same payload) the one already started. Caller holds store.lock."""
    name = name or new_uuid()
    qualified = function_arn(store, job.function_name, job.version)
    text = payload.decode()
    for execution in store.durable_executions.values():
        if (execution.record["FunctionArn"] == qualified
                and execution.record["DurableExecutionName"] == name):
            if execution.record["InputPayload"] == text:
                return execution        # the same request again: the same execution
            raise LambdaError("DurableExecutionAlreadyStartedException", 409,
                              f"A durable execution named {name} was already started for "
                              f"{qualified} with another payload")
    arn = f"{qualified}/durable-execution/{name}/{new_uuid()}"
    execution = DurableExecution(arn, name, qualified, job.version, text, job.durable_config)
    store.durable_executions[arn] = execution
    return execution


LOG_LEVELS = ("debug", "info", "warning", "error")


def say(store, level, text, once=None):
    """A line on the server's own log (stderr) when `level` is at or above the server's log level;
    with `once`, a warning given only the first time."""
    if LOG_LEVELS.index(level) < LOG_LEVELS.index(store.log_level):
        return
    if once is not None:
        if once in store.warned:
            return
        store.warned.add(once)
    sys.stderr.write(f"lambda_fake: {text}\n")


def iso_timestamp(seconds=None, zone="Z"):
    """2026-01-01T00:00:00.000Z, as destination records and invocation logs write time (now,
    unless seconds are given); LastModified is written with zone="+0000"."""
    moment = datetime.datetime.fromtimestamp(time.time() if seconds is None else seconds,
                                             datetime.timezone.utc)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}{zone}"


def iso_second(seconds):
    """2026-01-01T00:00:00Z: a time to the second, as DynamoDB records and windows write it."""
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(seconds))


def new_uuid():
    """A random (version 4) UUID, in the same shape as str(uuid.uuid4()) would give it: the
    uuid module would import platform, which costs start-up time."""
    value = bytearray(os.urandom(16))
    value[6] = value[6] & 0x0F | 0x40       # version 4
    value[8] = value[8] & 0x3F | 0x80       # the RFC 4122 variant
    text = value.hex()
    return f"{text[:8]}-{text[8:12]}-{text[12:16]}-{text[16:20]}-{text[20:]}"


def new_revision_id():
    return new_uuid()


# ----------------------------------------------------------------------------------------------
# 5. Validation
# ----------------------------------------------------------------------------------------------
# Request bodies are checked against small specs that mirror the API model's shapes: wrong JSON
# types and unknown members are InvalidRequestContentException (the body cannot be read into the
# request), and broken constraints are one ValidationException listing all of them, as AWS words it.

class Spec:
    """What one member of a request may hold: a sketch of an API-model shape."""

    def __init__(self, kind, lo=None, hi=None, pattern=None, enum=None, member=None, key=None,
                 members=None, required=(), sensitive=False, flat=(), nulls_noted=True):
        self.kind = kind
        self.lo = lo                    # minimum length, count or value
        self.hi = hi                    # maximum length, count or value
        self.pattern = pattern          # compiled on first use (re caches it)
        self.enum = enum
        self.member = member            # list items, map values
        self.key = key                  # map keys
        self.members = members or {}    # structure members
        self.required = required
        self.sensitive = sensitive      # AWS leaves the value out of its messages
        self.flat = flat                # a list whose items' enum AWS reports at the list
                                        # itself, listing these values
        self.nulls_noted = nulls_noted  # a list whose broken member AWS says may not be null


def text(lo=None, hi=None, pattern=None, enum=None):
    return Spec("string", lo, hi, pattern, enum)


def integer(lo=None, hi=None):
    return Spec("integer", lo, hi)


def number(lo=None, hi=None):
    return Spec("double", lo, hi)


def boolean():
    return Spec("boolean")


def blob():
    return Spec("blob")


def list_of(member, lo=None, hi=None, flat=(), nulls_noted=True):
    return Spec("list", lo, hi, member=member, flat=flat, nulls_noted=nulls_noted)


def map_of(key, value, lo=None, hi=None, sensitive=False):
    return Spec("map", lo, hi, key=key, member=value, sensitive=sensitive)


def struct(required=(), **members):
    return Spec("structure", members=members, required=required)


JSON_TYPES = {"string": str, "integer": int, "double": (int, float), "boolean": bool, "blob": str,
              "list": list, "map": dict, "structure": dict}


def wire_path(path, member):
    """AWS names members in messages with a lower-case first letter: MemorySize -> memorySize."""
    name = member[:1].lower() + member[1:]
    return f"{path}.{name}" if path else name


def check_value(value, spec, path, problems):
    """Check `value` against `spec`; type errors raise, constraint failures are collected."""
    if value is None:
        return
    expected = JSON_TYPES[spec.kind]
    if not isinstance(value, expected) or (isinstance(value, bool) and spec.kind != "boolean"):
        raise invalid_content("Could not parse request body into json: Could not parse payload "
                              f"into json: '{path}' must be a JSON {spec.kind}, not "
                              f"{json_type(value)}")
    if spec.kind == "structure":
        check_struct(value, spec, path, problems)
        return
    shown = SENSITIVE if spec.sensitive else value
    for constraint in constraint_failures(value, spec):
        problems.append(constraint_text(shown, path, constraint))
    if spec.kind == "list" and spec.flat:
        if any(item not in spec.member.enum for item in value):
            problems.append(constraint_text(shown, path, "Member must satisfy enum value set: ["
                                            + ", ".join(spec.flat) + "]"))
    elif spec.kind == "list":
        if any(item is None or constraint_failures(item, spec.member) for item in value):
            described = describe(spec.member)
            if spec.nulls_noted and "Member must not be null" not in described:
                described.append("Member must not be null")  # as AWS recorded for Layers
            problems.append(constraint_text(shown, path, "Member must satisfy constraint: ["
                                            + ", ".join(described) + "]"))
        if spec.member.kind == "structure":
            for index, item in enumerate(value):
                check_value(item, spec.member, f"{path}.{index + 1}.member", problems)
    elif spec.kind == "map":
        for key, item in value.items():
            check_value(key, spec.key, path, [])      # raises on a wrong type
            check_value(item, spec.member, path, [])
            if spec.member.kind == "double" and item is not None:
                value[key] = float(item)                # Java prints doubles as 2.0
        for label, member, items in (("keys", spec.key, value.keys()),
                                     ("value", spec.member, value.values())):
            if any(item is None or constraint_failures(item, member) for item in items):
                problems.append(constraint_text(shown, path,
                                                f"Map {label} must satisfy constraint: ["
                                                + ", ".join(describe(member)) + "]"))


def describe(spec):
    """Every constraint of a list item or map key/value, as AWS lists them in a nested failure."""
    parts = []
    if spec.hi is not None and spec.kind == "string":
        parts.append(f"Member must have length less than or equal to {spec.hi}")
    if spec.lo is not None and spec.kind == "string":
        parts.append(f"Member must have length greater than or equal to {spec.lo}")
    if spec.kind in ("integer", "double"):
        if spec.hi is not None:
            parts.append(f"Member must have value less than or equal to {spec.hi}")
        if spec.lo is not None:
            parts.append(f"Member must have value greater than or equal to {spec.lo}")
        parts.append("Member must not be null")
    if spec.pattern is not None:
        parts.append(f"Member must satisfy regular expression pattern: {spec.pattern}")
    if spec.enum is not None:
        parts.append(f"Member must satisfy enum value set: [{', '.join(spec.enum)}]")
        parts.append("Member must not be null")
    return parts


def constraint_failures(value, spec):
    """The constraint texts `value` breaks (lengths, counts, ranges, patterns, enums)."""
    failures = []
    if spec.kind in ("string", "list", "map"):
        size = len(value)
        if spec.hi is not None and size > spec.hi:
            failures.append(f"Member must have length less than or equal to {spec.hi}")
        if spec.lo is not None and size < spec.lo:
            failures.append(f"Member must have length greater than or equal to {spec.lo}")
    elif spec.kind in ("integer", "double"):
        if spec.hi is not None and value > spec.hi:
            failures.append(f"Member must have value less than or equal to {spec.hi}")
        if spec.lo is not None and value < spec.lo:
            failures.append(f"Member must have value greater than or equal to {spec.lo}")
    if spec.pattern is not None and isinstance(value, str) and not re.fullmatch(
            spec.pattern.replace(r"\p{L}\p{Z}\p{N}", r"\w\s"), value):      # Java's classes, in re
        failures.append(f"Member must satisfy regular expression pattern: {spec.pattern}")
    if spec.enum is not None and value not in spec.enum:
        failures.append(f"Member must satisfy enum value set: [{', '.join(spec.enum)}]")
    return failures


def check_struct(body, spec, path, problems):
    for member in body:
        if member not in spec.members:
            where = f" in '{path}'" if path else ""
            raise invalid_content(f"Could not parse request body into json: Unrecognized field "
                                  f"\"{member}\"{where}, not marked as ignorable")
    for member, member_spec in spec.members.items():       # AWS reports in the model's order
        if member in body:
            check_value(body[member], member_spec, wire_path(path, member), problems)
    for member in spec.required:
        if body.get(member) is None:
            problems.append(constraint_text(None, wire_path(path, member),
                                            "Member must not be null"))


def check_body(body, spec):
    """Check a parsed request body against its operation's spec; raise AWS's error on failure."""
    if not isinstance(body, dict):
        raise invalid_content("Could not parse request body into json: the body must be a JSON "
                              "object")
    problems = []
    check_struct(body, spec, "", problems)
    if problems:
        raise validation_error(problems)
    return body


def json_type(value):
    if value is None:
        return "null"
    return {bool: "boolean", int: "number", float: "number", str: "string", list: "array",
            dict: "object"}[type(value)]


def decode_blob(value, member):
    """Bytes of a base64 blob member; bad base64 cannot be read into the request."""
    try:
        return base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        raise invalid_content("Could not parse request body into json: Could not parse payload "
                              f"into json: '{member}' is not valid base64") from None


def check_environment(environment):
    """AWS's own rules for Environment.Variables beyond the model: reserved names, 4 KB in all."""
    variables = (environment or {}).get("Variables") or {}
    reserved = [name for name in variables if name in RESERVED_ENV_NAMES]
    if reserved:
        raise invalid_parameter(
            "Lambda was unable to configure your environment variables because the environment "
            "variables you have provided contains reserved keys that are currently not supported "
            f"for modification. Reserved keys used in this request: {', '.join(reserved)}")
    measured = json.dumps(variables, separators=(",", ":"))
    if len(measured.encode()) > MAX_ENVIRONMENT_BYTES:
        raise invalid_parameter(
            "Lambda was unable to configure your environment variables because the environment "
            "variables you have provided exceeded the 4KB limit. String measured: " + measured)


def check_runtime(runtime):
    """Runtime from the usable set (AWS words this one without quotes, as InvalidParameterValue)."""
    if runtime is None or runtime in USABLE_RUNTIMES:
        return
    if runtime in RUNTIMES:
        raise invalid_parameter(
            f"The runtime parameter of {runtime} is no longer supported for creating or updating "
            "AWS Lambda functions. We recommend you use a supported runtime while creating or "
            "updating functions.")
    raise invalid_parameter(
        f"Value {runtime} at 'runtime' failed to satisfy constraint: Member must satisfy enum "
        f"value set: [{', '.join(USABLE_RUNTIMES)}] or be a valid ARN")


def check_revision(given, current, api="GetFunction/GetAlias"):
    """A request's RevisionId precondition: when given, it must be the current one (None when
    there is none yet). AWS's message names the API that gives the latest."""
    if given is not None and given != current:
        raise precondition_failed("The Revision Id provided does not match the latest Revision "
                                  f"Id. Call the {api} API to retrieve the latest Revision Id")


# ----------------------------------------------------------------------------------------------
# 6. Code packages
# ----------------------------------------------------------------------------------------------
# A package is the bytes a client uploaded: a zip, or (the fake's own addition) raw source text.
# It is unpacked once into a directory of its own that never changes afterwards, so a code update
# never disturbs a worker still running the old code.

ZIP_SIGNATURES = (b"PK\x03\x04", b"PK\x05\x06", b"PK\x07\x08")    # local file, empty, spanned


class Package:
    """Deployment package bytes, their CodeSha256, and the directories they were unpacked into."""

    def __init__(self, data, s3_location=None, hot_dir=None):
        self.data = data
        self.hot_dir = hot_dir                  # code run straight from a local directory
        digest = hashlib.sha256(data)
        self.sha256 = base64.b64encode(digest.digest()).decode()     # CodeSha256 as AWS gives it
        self.hex = digest.hexdigest()
        self.size = len(data)
        self.s3_location = s3_location          # "bucket/key" when the code lives in S3
        self.is_zip = data[:4] in ZIP_SIGNATURES
        self.is_text = not self.is_zip and is_utf8(data)     # raw source a runtime can load
        self.unpack_lock = threading.Lock()


def is_utf8(data):
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


def take_package(data):
    """A Package for uploaded bytes; zips are checked now, as AWS checks them on upload."""
    if len(data) > MAX_ZIP_UPLOAD_BYTES:
        raise LambdaError("RequestEntityTooLargeException", 413,
                          f"Zipped size must be smaller than {MAX_ZIP_UPLOAD_BYTES} bytes")
    if not data:
        raise invalid_parameter("Uploaded file must be a non-empty zip")
    package = Package(data)
    if package.is_zip:
        try:
            with zipfile.ZipFile(io.BytesIO(data)) as archive:
                entries = archive.infolist()
        except (zipfile.BadZipFile, ValueError, EOFError):
            raise invalid_parameter("Could not unzip uploaded file. Please check your file, then "
                                    "try to upload again.") from None
        if not entries:
            raise invalid_parameter("Uploaded file must be a non-empty zip")
        for entry in entries:
            name = entry.filename
            if name.startswith("/") or ".." in name.replace("\\", "/").split("/") or (
                    (entry.external_attr >> 16) & 0o170000) == 0o120000:
                raise invalid_parameter(f"The package holds an unsafe entry: {name} (an absolute "
                                        "path, a '..' segment or a symbolic link)")
        if sum(entry.file_size for entry in entries) > MAX_UNZIPPED_BYTES:
            raise invalid_parameter("Unzipped size must be smaller than "
                                    f"{MAX_UNZIPPED_BYTES} bytes")
    return package


def raw_source_name(source, runtime, handler):
    """The file raw source becomes: the handler's module, with the runtime's extension."""
    module = handler.rsplit(".", 1)[0] if "." in handler else "index"
    if runtime in PYTHON_RUNTIMES:
        return module + ".py"
    looks_esm = re.search(rb"^\s*(export\s|import\s[^(])", source, re.MULTILINE)
    return module + (".mjs" if looks_esm else ".js")


def unpack(package, root, runtime, handler):
    """The directory holding the package's files, unpacked on first use. Safe against zip-slip."""
    if package.hot_dir:
        return package.hot_dir
    if package.is_zip:
        target = os.path.join(root, package.hex)
    else:
        source_name = raw_source_name(package.data, runtime, handler)
        target = os.path.join(root, package.hex + "-" + source_name.replace("/", "_"))
    with package.unpack_lock:
        if os.path.isdir(target):
            return target
        staging = tempfile.mkdtemp(dir=root)
        if package.is_zip:
            extract_zip(package.data, staging)
        else:
            path = os.path.normpath(os.path.join(staging, source_name))
            if not path.startswith(staging + os.sep):     # a fresh directory: no links in it
                shutil.rmtree(staging, ignore_errors=True)
                raise invalid_parameter(f"Handler {handler} points outside the package")
            if os.path.dirname(path) != staging:
                os.makedirs(os.path.dirname(path), exist_ok=True)
            with open(path, "wb") as out:
                out.write(package.data)
        settle(staging, target)
    return target


def settle(staging, target):
    """Move a finished staging directory to `target` in one step, so a directory is complete or
    absent. When another thread got there first with the same content, keep its copy."""
    try:
        os.rename(staging, target)
    except OSError:
        shutil.rmtree(staging, ignore_errors=True)
        if not os.path.isdir(target):
            raise


def extract_zip(data, target):
    """Extract a zip into `target`: no entry lands outside it, no links, every entry's size and
    CRC as the archive declares them (take_package() capped their sum). Entries are checked by
    name, since nothing here makes a link that could lead out. A deflated entry is inflated
    straight from the archive's bytes, a third of what zipfile's file objects cost for the
    thousands of small files of a node_modules."""
    target = os.path.realpath(target)
    made = {target}                     # directories that exist already
    view = memoryview(data)
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        for entry in archive.infolist():
            mode = entry.external_attr >> 16
            path = os.path.normpath(os.path.join(target, entry.filename))
            if not path.startswith(target + os.sep) or (mode & 0o170000) == 0o120000:
                raise invalid_parameter(f"The package holds an unsafe entry: {entry.filename}")
            folder = path if entry.is_dir() else os.path.dirname(path)
            if folder not in made:
                os.makedirs(folder, exist_ok=True)
                made.add(folder)
            if entry.is_dir():
                continue
            if entry.compress_type == zipfile.ZIP_DEFLATED and not entry.flag_bits & 1:
                header = entry.header_offset        # its local header: 30 bytes, name, extra
                start = (header + 30 + int.from_bytes(data[header + 26:header + 28], "little")
                         + int.from_bytes(data[header + 28:header + 30], "little"))
                content = zlib.decompressobj(-15).decompress(
                    view[start:start + entry.compress_size], entry.file_size)
            else:                       # stored, bzip2, lzma (or encrypted: zipfile says so)
                content = archive.read(entry)
            if len(content) != entry.file_size or zlib.crc32(content) != entry.CRC:
                raise zipfile.BadZipFile(f"Bad CRC-32 or size for {entry.filename}")
            out = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC,
                          0o755 if mode & 0o111 else 0o644)
            try:
                written = 0
                while written < len(content):
                    written += os.write(out, content[written:])
            finally:
                os.close(out)


# ----------------------------------------------------------------------------------------------
# 7. Runtimes
# ----------------------------------------------------------------------------------------------
# What runs inside an execution environment, as source: the Node.js bootstrap, which a new `node`
# process runs, and the Python one, which runs as the zygote that forks each Python environment.
# Both load one handler, then answer invocations (the protocol is in the next section).

NODE_BOOTSTRAP = r"""// lambda_fake's Node.js runtime: loads one handler, then runs the invocations
// sent on its request pipe.
"use strict";
const fs = require("fs");
const path = require("path");
const util = require("util");

// Warm what the first invocation would otherwise pay for (a spare is started before it is needed;
// its rehearsal warms the loaders).
util.format("%s %j", {}, {});

// The protocol's two pipes, reopened close-on-exec (as Node opens every file) so that no process a
// handler starts holds them: the server sees this environment end when it ends.
function reopen(variable, flags) {
  const inherited = Number(process.env[variable]);
  delete process.env[variable];
  const fd = fs.openSync(`/dev/fd/${inherited}`, flags);
  fs.closeSync(inherited);
  return fd;
}
const OUT = reopen("_LAMBDA_FAKE_FD", "w");
const REQUESTS = reopen("_LAMBDA_FAKE_REQUESTS", "r");
let TASK_ROOT = null;       // set by the load message, like the environment
// HOME and NODE_PATH set where require() looks besides node_modules: as Module._initPaths() last
// read them (at start, for a spare that has loaded nothing yet).
let pathsFrom = `${process.env.HOME}:${process.env.NODE_PATH}`;
let current = null;         // the invocation under way: {id, done}
let handler = null;
let loadedModule = false;   // whether the handler is an ES module (the server's spares then
                            // rehearse one too)

function send(kind, data, extra) {
  const body = Buffer.isBuffer(data) ? data : Buffer.from(data, "utf8");
  const head = extra === undefined ? `${kind} ${body.length}\n`
                                    : `${kind} ${body.length} ${extra}\n`;
  const frame = Buffer.concat([Buffer.from(head), body]);
  for (let off = 0; off < frame.length; ) off += fs.writeSync(OUT, frame, off);
}

// Console output becomes log lines as the Node.js runtime writes them: tab-separated text (its
// newlines become \r), or with LoggingConfig's JSON format one JSON object a line, the levels
// below AWS_LAMBDA_LOG_LEVEL left out.
const LOG_LEVELS = ["TRACE", "DEBUG", "INFO", "WARN", "ERROR", "FATAL"];
let logJson = false, logFloor = 0;
function log(level, args) {
  if (logJson) return send("L", jsonLogLine(level, args) + "\n");
  const id = current ? current.id : "undefined";
  const message = util.format(...args).replace(/\n/g, "\r");
  send("L", `${new Date().toISOString()}\t${id}\t${level}\t${message}\n`);
}
function errorFields(err) {
  return { errorType: err.name, errorMessage: err.message,
           stackTrace: typeof err.stack === "string" ? err.stack.split("\n") : err.stack };
}
function jsonLogLine(level, args) {
  const line = { timestamp: new Date().toISOString(), level };
  if (current) line.requestId = current.id;
  if (args.length === 1) {
    line.message = args[0] instanceof Error ? errorFields(args[0]) : args[0];
  } else {
    line.message = util.format(...args);
    const err = args.find((arg) => arg instanceof Error);
    if (err) Object.assign(line, errorFields(err));
  }
  try {
    return JSON.stringify(line, (key, value) => value instanceof Error
      ? Object.assign(errorFields(value), value) : value);
  } catch (e) {             // circular: the message as text
    line.message = util.format(...args);
    return JSON.stringify(line);
  }
}
function setLogging(format, level) {
  logJson = format === "JSON";
  logFloor = logJson ? Math.max(0, LOG_LEVELS.indexOf(level || "INFO")) : 0;
  for (const [method, name] of [["log", "INFO"], ["info", "INFO"], ["warn", "WARN"],
                                ["error", "ERROR"], ["debug", "DEBUG"], ["trace", "TRACE"],
                                ["fatal", "FATAL"]]) {
    console[method] = LOG_LEVELS.indexOf(name) < logFloor ? () => {}
                                                          : (...args) => log(name, args);
  }
}
setLogging("Text");
for (const stream of [process.stdout, process.stderr]) {
  stream.write = (chunk, encoding, done) => {
    send("L", typeof chunk === "string" ? chunk : Buffer.from(chunk).toString("utf8"));
    if (typeof encoding === "function") encoding(); else if (typeof done === "function") done();
    return true;
  };
}

// Response streaming, as the Node.js runtime offers it through the awslambda global.
const STREAMING = Symbol("streaming");
const HTTP_PRELUDE_TYPE = "application/vnd.awslambda.http-integration-response";
globalThis.awslambda = {
  streamifyResponse(fn) { fn[STREAMING] = true; return fn; },
  HttpResponseStream: {
    from(stream, prelude) {
      stream.setContentType(HTTP_PRELUDE_TYPE);
      stream.write(JSON.stringify(prelude || {}));
      stream.write(Buffer.alloc(8));
      return stream;
    },
  },
};

function responseStream(onEnd) {
  const { Writable } = require("stream");      // here: most handlers never stream
  const stream = new Writable({
    write(chunk, encoding, done) {
      send("C", Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk, encoding));
      done();
    },
  });
  stream.setContentType = (type) => send("T", String(type));
  stream.on("finish", onEnd);
  return stream;
}

function errorRecord(err, type) {
  if (err instanceof Error) {
    const trace = String(err.stack || "").split("\n");
    const ours = trace.findIndex((line) => line.includes(__filename));
    return { errorType: type || err.name, errorMessage: err.message,
             trace: ours > 0 ? trace.slice(0, ours) : trace };
  }
  if (err && typeof err === "object" && err.errorType) return err;
  return { errorType: type || typeof err, errorMessage: String(err), trace: [] };
}

function isModuleFile(file) {
  if (file.endsWith(".mjs")) return true;
  if (file.endsWith(".cjs")) return false;
  for (let dir = path.dirname(file); dir.startsWith(TASK_ROOT); dir = path.dirname(dir)) {
    const manifest = path.join(dir, "package.json");
    if (fs.existsSync(manifest)) {
      try { return JSON.parse(fs.readFileSync(manifest, "utf8")).type === "module"; }
      catch (e) { return false; }
    }
    if (dir === TASK_ROOT) break;
  }
  return false;
}

async function loadHandler(spec) {
  const slash = spec.lastIndexOf("/");
  const dot = spec.indexOf(".", slash + 1);
  if (dot < 0) {
    throw { errorType: "Runtime.MalformedHandlerName", errorMessage: "Bad handler", trace: [] };
  }
  const modulePath = spec.slice(0, dot), exportPath = spec.slice(dot + 1);
  const base = path.resolve(TASK_ROOT, modulePath);
  const file = [".js", ".mjs", ".cjs"].map((ext) => base + ext).find((f) => fs.existsSync(f));
  if (!base.startsWith(TASK_ROOT + path.sep) || !file) {
    throw { errorType: "Runtime.ImportModuleError", trace: [],
            errorMessage: `Error: Cannot find module '${modulePath}'\n` +
                          "Require stack:\n- /var/runtime/index.mjs" };
  }
  let mod;
  try {
    loadedModule = isModuleFile(file);
    mod = loadedModule ? await import(require("url").pathToFileURL(file).href) : require(file);
  } catch (err) {
    if (err instanceof SyntaxError) {
      const record = errorRecord(err, "Runtime.UserCodeSyntaxError");
      record.errorMessage = `SyntaxError: ${err.message}`;
      throw record;
    }
    if (err && (err.code === "MODULE_NOT_FOUND" || err.code === "ERR_MODULE_NOT_FOUND")) {
      const record = errorRecord(err, "Runtime.ImportModuleError");
      record.errorMessage = `Error: ${err.message}`;
      throw record;
    }
    throw err;
  }
  let fn = mod;
  for (const part of exportPath.split(".")) fn = fn == null ? undefined : fn[part];
  if (typeof fn !== "function") {
    throw { errorType: "Runtime.HandlerNotFound", trace: [],
            errorMessage: `${modulePath}.${exportPath} is undefined or not exported` };
  }
  return fn;
}

function invoke(request, payload) {
  const invocation = current = { id: request.requestId, done: false, waiting: null };
  process.env._X_AMZN_TRACE_ID = request.traceId;     // as Lambda's runtime sets it, each time
  const deadlineMs = Date.now() + request.timeoutMs;      // the timeout runs from here, not init
  const thrown = (err) => finish(err == null ? new Error(String(err)) : err);  // throw null, too
  const finish = (err, result) => {
    if (invocation.done) return;
    invocation.done = true;
    const peak = process.resourceUsage().maxRSS;
    if (err != null) {
      const record = errorRecord(err);
      if (logJson) console.error({ errorType: record.errorType,    // below the level: unlogged
                                   errorMessage: record.errorMessage, stackTrace: record.trace });
      else log("ERROR", ["Invoke Error \t" + JSON.stringify(
        { errorType: record.errorType, errorMessage: record.errorMessage, stack: record.trace })]);
      send("E", JSON.stringify(record), peak);
    } else {
      let body;
      try { body = JSON.stringify(result === undefined ? null : result); }
      catch (e) { body = undefined; send("E", JSON.stringify(errorRecord(e)), peak); }
      if (body !== undefined) send("R", body, peak);
    }
    current = null;
    setImmediate(pump);
  };
  invocation.finish = finish;
  // The handler's callback: an error goes at once; a result waits, as Lambda's runtime has it
  // wait, until the event loop is empty (see beforeExit), unless the handler set
  // context.callbackWaitsForEmptyEventLoop to false. The context's done, succeed and fail, and
  // a returned promise, answer at once.
  const callback = (err, result) => {
    if (err != null || !context.callbackWaitsForEmptyEventLoop) finish(err, result);
    else if (!invocation.waiting) invocation.waiting = { result };
  };
  const context = {
    callbackWaitsForEmptyEventLoop: true,
    functionName: process.env.AWS_LAMBDA_FUNCTION_NAME,
    functionVersion: process.env.AWS_LAMBDA_FUNCTION_VERSION,
    invokedFunctionArn: request.invokedFunctionArn,
    memoryLimitInMB: process.env.AWS_LAMBDA_FUNCTION_MEMORY_SIZE,
    awsRequestId: request.requestId,
    logGroupName: process.env.AWS_LAMBDA_LOG_GROUP_NAME,
    logStreamName: process.env.AWS_LAMBDA_LOG_STREAM_NAME,
    identity: undefined,
    clientContext: request.clientContext === null ? undefined : request.clientContext,
    getRemainingTimeInMillis: () => Math.max(0, deadlineMs - Date.now()),
    done: (err, result) => finish(err, result),
    succeed: (result) => finish(null, result),
    fail: (err) => finish(err == null ? "handled" : err),
  };
  if (handler[STREAMING]) {
    let ended = false, returned = false;
    const done = () => {
      if (ended && returned && !invocation.done) {
        invocation.done = true;
        send("S", "", process.resourceUsage().maxRSS);
        current = null;
        setImmediate(pump);
      }
    };
    const stream = responseStream(() => { ended = true; done(); });
    Promise.resolve()
      .then(() => handler(JSON.parse(payload), stream, context))
      .then(() => { returned = true; if (!stream.writableEnded) stream.end(); else done(); },
            thrown);
    return;
  }
  try {
    const out = handler(JSON.parse(payload), context, callback);
    if (out && typeof out.then === "function") out.then((result) => finish(null, result), thrown);
  } catch (err) {
    thrown(err);
  }
}

// An error as Lambda's Node.js runtime logs it: after a tab, its name, message, code and own
// properties, and its stack as lines (nested errors alike).
function formatted(error) {
  const expand = (key, value) => !(value instanceof Error) ? value : Object.assign(
    { errorType: value.name, errorMessage: value.message, code: value.code }, value,
    typeof value.stack === "string" ? { stack: value.stack.split("\n") } : {});
  try { return "\t" + JSON.stringify(error, expand); }
  catch (err) { return "\t" + JSON.stringify(errorRecord(error)); }
}

class UnhandledPromiseRejection extends Error {
  constructor(reason, promise) { super(reason); this.reason = reason; this.promise = promise; }
}
UnhandledPromiseRejection.prototype.name = "Runtime.UnhandledPromiseRejection";

// An error that escapes the handler ends the environment, as on Lambda: it is logged, answered as
// the invocation's error when one is under way, and announced ("X"), so that the server never
// sends this environment another invocation, even when the error came after the answer.
function fatal(title, error, record, status) {
  log("ERROR", [title, formatted(error)]);
  const requestId = current && !current.done ? current.id : null;   // null: after its answer
  send("X", JSON.stringify({ requestId, error: record }), process.resourceUsage().maxRSS);
  if (current) current.done = true;
  process.exit(status);
}
process.on("uncaughtException", (err) => {
  fatal("Uncaught Exception", err instanceof Error ? err : new Error(err), errorRecord(err), 129);
});
process.on("unhandledRejection", (reason, promise) => {
  const error = new UnhandledPromiseRejection(reason, promise);
  fatal("Unhandled Promise Rejection", error, errorRecord(error), 128);
});
// The event loop ran dry during an invocation that has not answered: the result a callback gave
// goes now; without one (a promise nothing will settle, a callback never called, a handler that
// returned no promise), Lambda's runtime answers null, and so does this.
process.on("beforeExit", () => {
  if (current && !current.done) current.finish(null, current.waiting && current.waiting.result);
});

// A worker starts generic; its first message loads a function: the environment Lambda would give
// it, its task root and handler. A pre-started spare thus serves a cold start in milliseconds.
function load(request) {
  for (const name of Object.keys(process.env)) delete process.env[name];
  Object.assign(process.env, request.env);
  setLogging(process.env.AWS_LAMBDA_LOG_FORMAT, process.env.AWS_LAMBDA_LOG_LEVEL);
  TASK_ROOT = request.env.LAMBDA_TASK_ROOT;
  process.chdir(TASK_ROOT);
  const paths = `${process.env.HOME}:${process.env.NODE_PATH}`;
  if (paths !== pathsFrom) {
    require("module").Module._initPaths();     // NODE_PATH (layers) as if set at start
    pathsFrom = paths;
  }
  // Init ends a turn of the event loop later: a promise that the module rejected while it loaded
  // is reported first (by fatal()), as the init error it is.
  loadHandler(request.env._HANDLER).then(
    (fn) => setImmediate(() => {
      handler = fn;
      send("I", loadedModule ? '{"module":true}' : "{}");
      pump();
    }),
    (err) => { send("I", JSON.stringify(errorRecord(err))); process.exit(1); });
}

// Requests are read with blocking reads, when the environment has nothing left to do for an
// invocation: it waits frozen, as a Lambda environment does between invocations (its timers run
// again with the next one), and it spares the ~9 ms that a stream on a pipe costs at start.
let input = Buffer.alloc(0);
const chunk = Buffer.allocUnsafe(1 << 16);
function nextRequest() {
  for (;;) {
    const newline = input.indexOf(10);
    if (newline >= 0) {
      const request = JSON.parse(input.subarray(0, newline).toString("utf8"));
      const end = newline + 1 + request.length;
      if (input.length >= end) {
        const payload = input.subarray(newline + 1, end).toString("utf8");
        input = input.subarray(end);
        return [request, payload];
      }
    }
    let size;
    try { size = fs.readSync(REQUESTS, chunk, 0, chunk.length, null); }
    catch (err) {
      if (err.code !== "EOF") throw err;
      size = 0;
    }
    if (size === 0) process.exit(0);      // the server closed the pipe: this environment ends
    input = Buffer.concat([input, chunk.subarray(0, size)]);
  }
}

let loading = false;
function pump() {
  while (!current && (handler || !loading)) {
    const [request, payload] = nextRequest();
    if (request.load) { loading = true; load(request); return; }
    if (request.unload) {       // forget the rehearsed function: the spare is generic again
      for (const file of Object.keys(require.cache)) {
        if (file !== __filename) delete require.cache[file];
      }
      handler = null;
      loading = false;
      continue;
    }
    invoke(request, payload);
  }
}
setImmediate(pump);
"""

PYTHON_BOOTSTRAP = r'''"""lambda_fake's Python runtime. Started as `bootstrap.py zygote FD`, it
imports what an environment needs once, then forks a new environment for each request on the
control socket FD: a process that loads one handler and answers the invocations sent on its
request pipe."""
import atexit
import ctypes
import gc
import importlib
import json
import logging
import os
import resource
import select
import signal
import socket
import sys
import time
import traceback

OUT = None                  # an environment's result pipe, and its requests
REQUESTS = None
current_id = None


def send(kind, data, peak=None):
    if peak is None:
        head = b"%s %d\n" % (kind, len(data))
    else:
        head = b"%s %d %d\n" % (kind, len(data), peak)
    frame = head + data
    while frame:
        frame = frame[os.write(OUT, frame):]


class LogStream:
    """sys.stdout and sys.stderr: print() output goes to the invocation's log as it is."""
    encoding = "utf-8"

    def write(self, text):
        send(b"L", text.encode("utf-8", "replace"))
        return len(text)

    def flush(self):
        pass

    def isatty(self):
        return False


class JsonFormatter(logging.Formatter):
    """A log record as one JSON line, as the Python runtime writes it with LoggingConfig's
    JSON format: its fields, then the exception's, then what `extra` gave."""

    PLAIN = set(vars(logging.makeLogRecord({}))) | {"aws_request_id", "message", "asctime"}

    @staticmethod
    def now(seconds=None):
        return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(seconds))

    def format(self, record):
        level = logging.getLevelName(min(50, max(0, record.levelno)) // 10 * 10)   # a custom
        line = {"timestamp": self.now(record.created), "level": level,    # level: its tens
                "message": record.getMessage(), "logger": record.name}
        if record.exc_info and record.exc_info[1] is not None:
            error = record.exc_info[1]
            line.update(stackTrace=traceback.format_tb(error.__traceback__),
                        errorType=type(error).__name__, errorMessage=str(error))
        line["requestId"] = record.aws_request_id
        if record.exc_info:
            line["location"] = f"{record.pathname}:{record.funcName}:{record.lineno}"
        line.update((key, value) for key, value in vars(record).items()
                    if key not in self.PLAIN)
        return json.dumps({key: value for key, value in line.items() if value is not None},
                          default=str, ensure_ascii=False) + "\n"


class RequestIdFilter(logging.Filter):
    def filter(self, record):
        record.aws_request_id = current_id
        return True


class Fields:
    """An object of named fields, each None unless the dict given has it, as the Python runtime
    builds context.identity and context.client_context."""
    __slots__ = ()

    def __init__(self, values):
        for name in self.__slots__:
            setattr(self, name, values.get(name))


class CognitoIdentity(Fields):
    __slots__ = ("cognito_identity_id", "cognito_identity_pool_id")


class Client(Fields):
    __slots__ = ("installation_id", "app_title", "app_version_name", "app_version_code",
                 "app_package_name")


class ClientContext(Fields):
    __slots__ = ("custom", "env", "client")

    def __init__(self, values):
        super().__init__(values)
        self.client = Client(self.client) if isinstance(self.client, dict) else None


class LambdaContext:
    def __init__(self, request):
        self.function_name = os.environ["AWS_LAMBDA_FUNCTION_NAME"]
        self.function_version = os.environ["AWS_LAMBDA_FUNCTION_VERSION"]
        self.invoked_function_arn = request["invokedFunctionArn"]
        self.memory_limit_in_mb = os.environ["AWS_LAMBDA_FUNCTION_MEMORY_SIZE"]
        self.aws_request_id = request["requestId"]
        self.log_group_name = os.environ["AWS_LAMBDA_LOG_GROUP_NAME"]
        self.log_stream_name = os.environ["AWS_LAMBDA_LOG_STREAM_NAME"]
        self.identity = CognitoIdentity({})
        context = request.get("clientContext")
        self.client_context = ClientContext(context) if isinstance(context, dict) else None
        self._deadline_ms = time.time() * 1000 + request["timeoutMs"]     # from here, not from init

    def get_remaining_time_in_millis(self):
        return max(0, int(self._deadline_ms - time.time() * 1000))

    def log(self, message):
        sys.stdout.write(str(message))


def stack_trace(frames):
    """Stack entries as the Python runtime writes them: from (file, line, function, text) tuples,
    so without the ^^^ markers that Python 3.11 adds to a traceback."""
    return traceback.format_list([(f.filename, f.lineno, f.name, f.line) for f in frames])


def error_lines(error_type, message, frames):
    """A handler's error as the Python runtime logs it: the type and message, the traceback, its
    lines indented with no-break spaces."""
    lines = ["[ERROR] " + error_type + (f": {message}" if message else ""),
             "Traceback (most recent call last):"]
    for frame in frames:
        for line in frame.splitlines():
            stripped = line.lstrip(" ")
            lines.append("\u00a0" * (len(line) - len(stripped)) + stripped)
    return "\n".join(lines)


def error_record(error, error_type=None, message=None, request_id="", stack=None):
    """An error as the Python runtime answers it: the request's id ("" during init), and the
    stack without this bootstrap's frames (`stack`, when the caller has it already)."""
    record = {"errorMessage": str(error) if message is None else message,
              "errorType": error_type or type(error).__name__,
              "requestId": request_id,
              "stackTrace": user_stack(error) if stack is None else stack}
    if os.environ.get("AWS_EXECUTION_ENV") == "AWS_Lambda_python3.8":
        del record["requestId"]         # python3.8's runtime predates it
    return json.dumps(record).encode()


def user_stack(error):
    """An error's stack as the runtime shows it: without this bootstrap's frames."""
    return stack_trace([frame for frame in traceback.extract_tb(error.__traceback__)
                        if frame.filename != os.path.abspath(__file__)])


def load_handler(spec):
    try:
        module_name, function_name = spec.rsplit(".", 1)
    except ValueError as error:
        raise Failure(error, "Runtime.MalformedHandlerName", f"Bad handler '{spec}': {error}")
    module_name = module_name.replace("/", ".")
    try:
        module = importlib.import_module(module_name)
    except SyntaxError as error:
        raise Failure(error, "Runtime.UserCodeSyntaxError",
                      f"Syntax error in module '{module_name}': {error}")
    except ImportError as error:
        raise Failure(error, "Runtime.ImportModuleError",
                      f"Unable to import module '{module_name}': {error}")
    function = getattr(module, function_name, None)
    if not callable(function):
        raise Failure(None, "Runtime.HandlerNotFound",
                      f"Handler '{function_name}' missing on module '{module_name}'")
    return function


class Failure(Exception):
    def __init__(self, cause, error_type, message):
        super().__init__(message)
        self.cause, self.error_type, self.message = cause, error_type, message


def load(request):
    """The first message: the function's environment, task root and handler (an environment
    starts generic, so that a forked spare serves a cold start quickly), and the paths it sees
    in a private mount namespace, when it has one."""
    if request.get("paths"):
        place_paths(request["paths"])
        runtime = request["paths"]["runtime"]
        sys.path[:] = ["/var/runtime" + entry[len(runtime):] if entry.startswith(runtime + "/")
                       else entry for entry in sys.path]
    os.environ.clear()
    os.environ.update(request["env"])
    time.tzset()
    os.chdir(os.environ["LAMBDA_TASK_ROOT"])
    for entry in reversed(os.environ.get("PYTHONPATH", "").split(":")):
        if entry:
            sys.path.insert(0, entry)
    sys.path.insert(0, os.environ["LAMBDA_TASK_ROOT"])
    if request.get("debug"):
        debug(**request["debug"])


def debug(port, wait, debugpy=None):
    """A debugged function's environment: debugpy listening on 127.0.0.1:port when the server
    found it (`debugpy` is where), else breakpoint() opens pdb for one client on that port. With
    `wait`, it stops before the handler's module loads."""
    if debugpy:
        sys.path.append(debugpy)
        import debugpy as client
        client.listen(("127.0.0.1", port))
        debugger_state("debugpy", port, wait)
        if wait:
            client.wait_for_client()
            debugger_state("debugpy", port, False)
            client.breakpoint()
        return
    sys.breakpointhook = lambda *args, **kwargs: remote_pdb(port, sys._getframe(1))
    debugger_state("pdb", port, False)
    if wait:
        remote_pdb(port, sys._getframe(2))


def debugger_state(kind, port, waiting):
    """Tell the server (GET /_parlel/debug) whether the debugger waits for a client."""
    send(b"D", json.dumps({"kind": kind, "port": port, "waiting": waiting}).encode())


def remote_pdb(port, frame):
    """breakpoint() in a debugged environment: pdb, for the first client that connects to
    127.0.0.1:port (`nc 127.0.0.1 PORT`); the invocation goes on when the session continues."""
    import pdb
    with socket.create_server(("127.0.0.1", port)) as listener:
        debugger_state("pdb", port, True)
        connection, _ = listener.accept()
    debugger_state("pdb", port, False)
    stream = connection.makefile("rw")
    debugger = pdb.Pdb(stdin=stream, stdout=stream)
    debugger.use_rawinput = False
    debugger.set_trace(frame)


def peak_kb():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


# Lambda's paths, where the kernel lets an environment have a mount namespace of its own (as
# root, or in a user namespace of its own): its package at /var/task, its layers at /opt and the
# runtime at /var/runtime, all read-only. /var and /opt are covered with new directories that
# keep the host's entries an environment needs (all of /var's; of /opt's, those holding the
# interpreters and the SDK), so nothing else changes. /tmp stays the host's (TMPDIR is the
# environment's own directory). An environment is prepared as it boots (its namespace, and
# /var), and its function's paths are placed as it loads. PATHS: what all share (from the
# server), or None without Lambda's paths.
PATHS = json.loads(os.environ.get("LAMBDA_FAKE_PATHS") or "null")
MS_RDONLY, MS_REMOUNT, MS_BIND, MS_REC, MS_PRIVATE = 1, 32, 4096, 16384, 1 << 18
CLONE_NEWNS, CLONE_NEWUSER = 0x20000, 0x10000000
libc = ctypes.CDLL(None, use_errno=True)


def checked(result, what):
    if result != 0:
        number = ctypes.get_errno()
        raise OSError(number, f"{what}: {os.strerror(number)}")


def mount(source, target, flags, kind=None, options=None):
    checked(libc.mount(source and source.encode(), target.encode(), kind and kind.encode(),
                       flags, options and options.encode()), f"mount {target}")


def cover(target, keep, add):
    """Cover `target` with a read-only tmpfs holding the entries of the covered directory that
    `keep` names (all when None) as they are, and `add`, name -> source: a directory or file to
    bind read-only, a symlink ("->target"), or None for an empty directory (to mount on)."""
    covered = os.open(target, os.O_PATH | os.O_DIRECTORY)    # still reaches what is covered
    try:
        names = [name for name in os.listdir(f"/proc/self/fd/{covered}")
                 if keep is None or name in keep]
        mount("tmpfs", target, 0, "tmpfs", "mode=755")
        places = [(f"/proc/self/fd/{covered}/{name}", name, False) for name in names]
        places += [(source, name, True) for name, source in add.items()]
        for source, name, frozen in places:
            path = os.path.join(target, name)
            if source is None:
                os.mkdir(path)
                continue
            if source.startswith("->") or os.path.islink(source):
                os.symlink(source[2:] if source.startswith("->") else os.readlink(source), path)
                continue
            if os.path.isdir(source):
                os.mkdir(path)
            else:
                open(path, "w").close()
            if frozen:
                bind_read_only(source, path)
            else:
                mount(source, path, MS_BIND | MS_REC)
        mount(None, target, MS_REMOUNT | MS_RDONLY)
    finally:
        os.close(covered)


def bind_read_only(source, target):
    mount(source, target, MS_BIND | MS_REC)
    mount(None, target, MS_REMOUNT | MS_BIND | MS_RDONLY)


def enter(pid, kind="mnt", flag=CLONE_NEWNS):
    namespace = os.open(f"/proc/{pid}/ns/{kind}", os.O_RDONLY)
    try:
        checked(libc.setns(namespace, flag), "setns")
    finally:
        os.close(namespace)


def own_namespace():
    """A mount namespace of this process's own; without root, in a user namespace of its own
    too, where this user is itself (PATHS["user"])."""
    uid, gid = os.getuid(), os.getgid()
    checked(libc.unshare(CLONE_NEWNS | (CLONE_NEWUSER if PATHS["user"] else 0)), "unshare")
    if PATHS["user"]:
        for name, text in (("setgroups", "deny"), ("uid_map", f"{uid} {uid} 1"),
                           ("gid_map", f"{gid} {gid} 1")):
            with open(f"/proc/self/{name}", "w") as file:
                file.write(text)
    mount(None, "/", MS_REC | MS_PRIVATE)


def prepare_paths(node=False):
    """As an environment boots, in its mount namespace: /var covered, with the runtime and the
    mount point of the package (a Node.js one's /var/node_modules too: see
    Runner.node_modules), and /opt covered, empty but for what the host keeps there."""
    cover("/var", None, dict(task=None, runtime=PATHS["runtime"],
                             **({"node_modules": None} if node else {})))
    cover_opt({})


def cover_opt(add):
    cover("/opt", {path.split("/")[2] for path in PATHS["keep"] if path.startswith("/opt/")}, add)


def place_paths(paths):
    """As a function loads, in its environment's mount namespace: its package, and its layers,
    where Lambda has them."""
    for name in ("task", "node_modules"):
        if paths.get(name):
            bind_read_only(paths[name], f"/var/{name}")
    if paths["opt"]:
        cover_opt({name: os.path.join(paths["opt"], name) for name in os.listdir(paths["opt"])})


def give_paths(pid, paths, home):
    """In the zygote, for a Node.js environment (which cannot mount): enter its mount namespace,
    prepare it and place its function's paths, as `paths` asks, and come back to `home` (the
    zygote's own namespace); a user namespace cannot be left, so without root a child process
    the zygote forks does it. The answer: "paths ok", or what failed."""
    try:
        waited = time.monotonic() + 2   # a new one may not have made its namespace yet
        while in_namespace(pid, home):
            if time.monotonic() > waited:
                raise OSError(f"process {pid} has no mount namespace of its own")
            time.sleep(0.0005)
        if not PATHS["user"]:
            try:
                arrange(pid, paths, home)
            finally:
                if libc.setns(home, CLONE_NEWNS) != 0:
                    os._exit(70)        # never fork environments in another's namespace
            return b"paths ok"
        helper = os.fork()
        if helper == 0:
            code = 1
            try:
                enter(pid, "user", CLONE_NEWUSER)
                arrange(pid, paths, home)
                code = 0
            except BaseException:
                traceback.print_exc()
            os._exit(code)
        status = os.waitpid(helper, 0)[1]
        return b"paths ok" if status == 0 else b"paths failed in the process that mounts them"
    except Exception as error:
        return b"paths " + str(error).encode()[:200]


def in_namespace(pid, namespace):
    """Whether process `pid` is in the mount namespace open as the descriptor `namespace`."""
    return os.stat(f"/proc/{pid}/ns/mnt").st_ino == os.fstat(namespace).st_ino


def arrange(pid, paths, home):
    enter(pid)
    if in_namespace("self", home):
        raise OSError(f"process {pid} has no mount namespace of its own")     # never ours
    if paths["prepare"]:
        prepare_paths(node=True)
    if paths.get("place"):
        place_paths(paths["place"])


def serve():
    """An environment's life: the load message, the handler's init, then invocations until the
    server closes its request pipe."""
    global current_id
    sys.stdout = sys.stderr = LogStream()
    log_handler = logging.StreamHandler(sys.stdout)
    log_handler.terminator = ""
    log_handler.addFilter(RequestIdFilter())
    logging.getLogger().addHandler(log_handler)
    load(json.loads(REQUESTS.readline()))
    if os.environ.get("AWS_LAMBDA_LOG_FORMAT") == "JSON":
        log_handler.setFormatter(JsonFormatter())
        level = os.environ.get("AWS_LAMBDA_LOG_LEVEL", "INFO")
        logging.getLogger().setLevel({"TRACE": "DEBUG", "WARN": "WARNING",
                                      "FATAL": "CRITICAL"}.get(level, level))
    else:
        log_handler.setFormatter(logging.Formatter(
            "[%(levelname)s]\t%(asctime)s.%(msecs)03dZ\t%(aws_request_id)s\t%(message)s\n",
            "%Y-%m-%dT%H:%M:%S"))
        log_handler.formatter.converter = time.gmtime
    try:
        handler = load_handler(os.environ["_HANDLER"])
    except Failure as failure:
        send(b"I", error_record(failure.cause or failure, failure.error_type, failure.message))
        return 1
    except Exception as error:
        send(b"I", error_record(error))
        return 1
    send(b"I", b"{}")
    environment_pid = os.getpid()
    while True:
        line = REQUESTS.readline()
        if not line:
            return 0
        request = json.loads(line)
        payload = REQUESTS.read(request["length"])
        current_id = request["requestId"]
        os.environ["_X_AMZN_TRACE_ID"] = request["traceId"]     # as Lambda's runtime sets it
        try:
            result = handler(json.loads(payload), LambdaContext(request))
        except Exception as error:
            if os.getpid() != environment_pid:
                os._exit(1)             # a process the handler forked: it never answers
            frames = user_stack(error)
            if isinstance(log_handler.formatter, JsonFormatter):
                print(json.dumps({"timestamp": JsonFormatter.now(), "log_level": "ERROR",
                                  "errorMessage": str(error), "errorType": type(error).__name__,
                                  "requestId": current_id, "stackTrace": frames},
                                 ensure_ascii=False))
            else:
                print(error_lines(type(error).__name__, str(error), frames))
            send(b"E", error_record(error, request_id=current_id, stack=frames), peak_kb())
            continue
        if os.getpid() != environment_pid:
            os._exit(0)
        try:
            body = json.dumps(result).encode()
        except (TypeError, ValueError) as error:
            message = f"Unable to marshal response: {error}"
            send(b"E", error_record(error, "Runtime.MarshalError", message, current_id), peak_kb())
            continue
        send(b"R", body, peak_kb())


def rehearse():
    """Import and forget a throwaway module, and set the environment variables, as a cold start
    will: the memory that touches is copied from the zygote now, while this spare waits, rather
    than during the cold start (it halves the handler's import)."""
    root = os.path.dirname(os.path.abspath(__file__))
    sys.path.insert(0, root)
    try:
        importlib.import_module("rehearsal").handler(json.loads('{"a": [1, 2.5, null]}'), None)
    finally:
        sys.modules.pop("rehearsal", None)
        sys.path.remove(root)
        sys.path_importer_cache.pop(root, None)
    os.environ.update(dict(os.environ))


def environment(request_fd, result_fd, output_fd):
    """In a child the zygote forked: a session of its own, stdin from /dev/null and output to
    the server, the protocol's pipes kept from any process a handler starts, then serve(). Ends
    the process itself, as an interpreter would (atexit functions run), never returning into the
    zygote's loop."""
    global OUT, REQUESTS
    code = 1
    try:
        os.setsid()
        null = os.open(os.devnull, os.O_RDONLY)
        os.dup2(null, 0)
        os.dup2(output_fd, 1)
        os.dup2(output_fd, 2)
        for fd in (null, output_fd):
            if fd > 2:
                os.close(fd)
        os.set_inheritable(request_fd, False)
        os.set_inheritable(result_fd, False)
        OUT, REQUESTS = result_fd, open(request_fd, "rb")
        sys.argv = [os.path.abspath(__file__)]
        if PATHS:                       # a mount namespace of its own, for Lambda's paths
            own_namespace()
            prepare_paths()
        rehearse()
        code = serve()
    except SystemExit as exit:
        code = exit.code if isinstance(exit.code, int) else (exit.code is not None)
    except BaseException:
        traceback.print_exc()
    finally:
        try:
            atexit._run_exitfuncs()
        finally:
            os._exit(code or 0)


def zygote(control):
    """Fork an environment for each "fork" message (its three pipe ends come with it: requests,
    results, output), answer "pid <pid>", and report each "exit <pid> <status>" once it has
    ended every process the environment started (its process group, while the environment's
    unreaped pid still holds the group's id); give a Node.js environment Lambda's paths for
    each "paths <pid> <json>". When the server closes the socket, end every
    environment, and then itself."""
    children = set()
    wake_read, wake_write = os.pipe()
    os.set_blocking(wake_write, False)
    signal.set_wakeup_fd(wake_write)
    signal.signal(signal.SIGCHLD, lambda *_: None)

    def kill(pid):
        try:
            os.killpg(pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass

    def report(message):
        try:
            control.send(message)
        except OSError:             # the server has gone: the loop sees it next
            pass

    def reap():
        while children:
            ended = os.waitid(os.P_ALL, 0, os.WEXITED | os.WNOHANG | os.WNOWAIT)
            if ended is None:
                return
            kill(ended.si_pid)
            pid, status = os.waitpid(ended.si_pid, 0)
            children.discard(pid)
            report(b"exit %d %d" % (pid, os.waitstatus_to_exitcode(status)))

    home = os.open("/proc/self/ns/mnt", os.O_RDONLY) if PATHS else None
    gc.freeze()                 # a child's collections skip what it shares with the zygote
    try:
        while True:
            ready = select.select([control, wake_read], [], [])[0]
            if wake_read in ready:
                os.read(wake_read, 4096)
                reap()
            if control not in ready:
                continue
            message, fds, _, _ = socket.recv_fds(control, 1 << 16, 3)
            if not message:
                return
            word, _, rest = message.partition(b" ")
            if word == b"fork" and len(fds) == 3:
                pid = os.fork()
                if pid == 0:
                    signal.set_wakeup_fd(-1)
                    signal.signal(signal.SIGCHLD, signal.SIG_DFL)
                    for fd in (wake_read, wake_write, control.fileno(), home):
                        if fd is not None:
                            os.close(fd)
                    environment(*fds)
                children.add(pid)
                report(b"pid %d" % pid)
            elif word == b"paths":
                target, _, paths = rest.partition(b" ")
                report(give_paths(int(target), json.loads(paths), home))
            for fd in fds:
                os.close(fd)
    finally:                    # the server is gone (or this failed): so is every environment
        for pid in children:
            kill(pid)
        for pid in children:
            os.waitpid(pid, 0)


if __name__ == "__main__":
    # Started with -S: the standard library, and no site-packages of the server's interpreter.
    # What Lambda's runtime ships besides (boto3 and its dependencies) is linked in
    # python-runtime/, which comes before the standard library as /var/runtime does on Lambda;
    # a handler's package and layers go before it. exit() and quit() as `site` would make them.
    import site
    site.setquit()
    sys.path[0] = os.path.join(sys.path[0], "python-runtime")
    zygote(socket.socket(fileno=int(sys.argv[2])))
'''


# ----------------------------------------------------------------------------------------------
# 8. Environments and the pool
# ----------------------------------------------------------------------------------------------
# An execution environment is one handler process: a `node` process, or a Python process forked
# from the zygote. It loads one function once and answers its invocations one at a time, so
# module state persists as in a warm Lambda. Requests go in on a pipe as a JSON header line plus
# the payload; everything comes back on another as frames "<kind> <length> [peak KB]\n<bytes>":
# L = log text, I = init done ({"module":true} for an ES module; else an error), R = result JSON,
# E = error JSON; a streaming handler sends C = a chunk, T = its content type, S = the stream's
# end. Logs thus arrive in band and in order, and the end of an invocation is an explicit frame.
# Its stdin is /dev/null, and whatever it writes to stdout and stderr is kept for its log.
#
# Each environment has an explicit state, and the Pool is the one place where it changes:
#
#     starting -> spare -> loading -> busy <-> idle -> retiring -> dead
#
# A spare has booted but never run user code, so it outlives a reset; a cold start with no spare
# starts a process straight into `loading`. Any state may go straight to `dead` (a timeout, a
# crash, a reset, a stop). The Housekeeper starts environments and ends them; the Runner runs
# invocations in them.

STARTING, SPARE, LOADING, BUSY, IDLE, RETIRING, DEAD = (
    "starting", "spare", "loading", "busy", "idle", "retiring", "dead")
NEXT_STATES = {
    STARTING: (SPARE, LOADING, DEAD),
    SPARE: (LOADING, RETIRING, DEAD),
    LOADING: (BUSY, DEAD),
    BUSY: (IDLE, RETIRING, DEAD),
    IDLE: (BUSY, RETIRING, DEAD),
    RETIRING: (DEAD,),
    DEAD: (),
}


def worker_message(header, payload):
    """A message to an environment: a JSON header line whose "length" counts the payload after
    it."""
    return json.dumps(header).encode() + b"\n" + payload


def invocation_message(request_id, invoked_arn, timeout_ms, client_context, payload, trace=None):
    """worker_message() for an invocation, its header written out by hand: this is on the path of
    every invoke, where json.dumps of the whole header costs several microseconds."""
    context = "null" if client_context is None else json.dumps(client_context)
    header = (f'{{"requestId":{json.dumps(request_id)},'
              f'"invokedFunctionArn":{json.dumps(invoked_arn)},"length":{len(payload)},'
              f'"timeoutMs":{timeout_ms},"clientContext":{context},'
              f'"traceId":"{trace_id(trace)}"}}\n')     # hex digits and ;=-
    return header.encode() + payload


TRACE_ROOT = re.compile(r"(?:^|;)\s*Root=(1-[0-9a-f]{8}-[0-9a-f]{24})")
TRACE_SAMPLED = re.compile(r"(?:^|;)\s*Sampled=([01])")


def trace_id(given=None):
    """An invocation's X-Ray trace header, as Lambda sets _X_AMZN_TRACE_ID: the root of the
    X-Amzn-Trace-Id the request carried (and its sampling), else a new root made of the time (8
    hex digits) and 24 random hex digits, not sampled; a new parent segment."""
    root = TRACE_ROOT.search(given or "")
    sampled = TRACE_SAMPLED.search(given or "") if root else None
    return (f"Root={root[1] if root else f'1-{int(time.time()):08x}-{os.urandom(12).hex()}'};"
            f"Parent={os.urandom(8).hex()};Sampled={sampled[1] if sampled else 0}")


class WorkerDied(Exception):
    """The environment's process ended (or broke the protocol) before answering."""


# X-Ray's variables as Lambda sets them (with Sampled=0 in _X_AMZN_TRACE_ID, nothing is sent).
LAMBDA_XRAY_VARIABLES = {"AWS_XRAY_CONTEXT_MISSING": "LOG_ERROR",
                         "AWS_XRAY_DAEMON_ADDRESS": "169.254.100.1:2000",
                         "_AWS_XRAY_DAEMON_ADDRESS": "169.254.100.1",
                         "_AWS_XRAY_DAEMON_PORT": "2000"}


def bare_environment():
    """What of the server's environment a handler process starts with: PATH and HOME only."""
    return {"PATH": os.environ.get("PATH", "/usr/local/bin:/usr/bin:/bin"),
            "HOME": os.environ.get("HOME", "/tmp"), "LANG": "en_US.UTF-8"}


class Spawned(subprocess.Popen):
    """An environment process started from its executable (Node.js). It is reaped only once its
    process group has been killed: until then its pid still names it, and the group."""

    def running(self):
        return self.status(0) is None

    def status(self, timeout):
        """Its exit status (negative: the signal that ended it) once it has ended, within
        `timeout` seconds, or None; it stays unreaped."""
        deadline = time.monotonic() + timeout
        while self.returncode is None:
            try:
                ended = os.waitid(os.P_PID, self.pid, os.WEXITED | os.WNOHANG | os.WNOWAIT)
            except ChildProcessError:
                return self.poll()
            if ended is not None:
                return (ended.si_status if ended.si_code == os.CLD_EXITED
                        else -ended.si_status)
            if time.monotonic() >= deadline:
                return None
            time.sleep(0.005)
        return self.returncode

    def kill_group(self):
        if self.returncode is None:
            os.killpg(self.pid, signal.SIGKILL)

    def reap(self, timeout):
        try:
            self.wait(timeout)
        except subprocess.TimeoutExpired:
            pass


class Forked:
    """An environment process the zygote forked (Python): what Environment needs of a Popen. The
    zygote is its parent: it reaps it, after killing its process group, and reports its exit."""

    def __init__(self, pid, output_fd):
        self.pid = pid
        self.stdout = open(output_fd, "rb")
        self.returncode = None
        self.ended = threading.Event()

    def running(self):
        return self.returncode is None

    def status(self, timeout):
        self.ended.wait(timeout)
        return self.returncode

    def kill_group(self):
        if self.returncode is None:     # not reported yet: not reaped, so the pid is still its
            os.killpg(self.pid, signal.SIGKILL)

    def reap(self, timeout):
        self.ended.wait(timeout)

    def exited(self, code):
        self.returncode = code
        self.ended.set()


class Zygote:
    """The Python runtime's zygote: one `bootstrap.py zygote` process that has imported the
    runtime once, and forks each new Python environment from itself: a fresh process in about a
    millisecond, where a new interpreter takes some 40. Closing its socket ends it and every
    environment it forked, so none outlives the server."""

    def __init__(self, root, paths):
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        env = dict(bare_environment(), PYTHONDONTWRITEBYTECODE="1")
        if paths:                       # what Lambda's paths need (see Housekeeper.path_settings)
            env["LAMBDA_FAKE_PATHS"] = json.dumps(paths)
        with theirs:
            self.process = subprocess.Popen(
                [sys.executable, "-S", "-u", os.path.join(root, "bootstrap.py"), "zygote",
                 str(theirs.fileno())], cwd=root, env=env, pass_fds=(theirs.fileno(),),
                stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, start_new_session=True)
        self.control = ours
        self.fork_lock = threading.Lock()       # one request at a time: an answer is the last's
        self.answers = queue.SimpleQueue()
        self.lock = threading.Lock()
        self.children = {}                      # pid -> Forked, until its exit is reported
        self.exits = {}                         # exit codes reported before their Forked exists
        threading.Thread(target=self.listen, daemon=True).start()

    def alive(self):
        return self.process.poll() is None

    def fork(self):
        """A new environment process: (Forked, the write end of its request pipe, the read end of
        its result pipe). OSError when the zygote does not answer (then it is ended: the next
        fork starts another)."""
        request_read, request_write = os.pipe()
        result_read, result_write = os.pipe()
        output_read, output_write = os.pipe()
        try:
            process = self.forked(self.request(b"fork", [request_read, result_write,
                                                         output_write]), output_read)
        except OSError:
            for fd in (request_write, result_read, output_read):
                os.close(fd)
            raise
        finally:
            for fd in (request_read, result_write, output_write):
                os.close(fd)
        return process, request_write, result_read

    def give_paths(self, pid, paths):
        """Give the Node.js environment `pid` Lambda's paths (see give_paths in
        PYTHON_BOOTSTRAP): the zygote enters its mount namespace, and comes back. Raises OSError
        when that fails."""
        answer = self.request(b"paths %d %s" % (pid, json.dumps(paths).encode()), [])
        if answer != b"ok":
            raise OSError(f"Lambda's paths could not be mounted: {answer.decode()}")

    def request(self, message, fds):
        """Send the zygote a request, and return its answer: the pid of a fork, or the text of
        a paths answer."""
        answer = None
        try:
            with self.fork_lock:
                socket.send_fds(self.control, [message], fds)
                answer = self.answers.get(timeout=INIT_TIMEOUT_SECONDS)
        except (OSError, queue.Empty):
            pass
        if answer is None:
            self.process.kill()         # a late answer must not pass for the next request's
            raise OSError("the Python zygote did not answer")
        return answer

    def forked(self, pid, output_fd):
        """The Forked of a new environment, its exit already noted if the zygote reported it."""
        process = Forked(pid, output_fd)
        with self.lock:
            if pid in self.exits:
                process.exited(self.exits.pop(pid))
            else:
                self.children[pid] = process
        return process

    def listen(self):
        """Read the zygote's answers: the pid of each fork, the exit status of each environment."""
        while True:
            try:
                message = self.control.recv(64)
            except OSError:
                message = b""
            if not message:
                break
            word, _, rest = message.partition(b" ")
            if word == b"pid":
                self.answers.put(int(rest))
            elif word == b"paths":
                self.answers.put(rest)
            elif word == b"exit":
                pid, code = map(int, rest.split())
                with self.lock:
                    child = self.children.pop(pid, None)
                    if child is None:
                        self.exits[pid] = code
                if child is not None:
                    child.exited(code)
        self.answers.put(None)
        with self.lock:                 # gone: end what it forked, as it would have
            orphans, self.children = list(self.children.values()), {}
        for child in orphans:
            try:
                os.killpg(child.pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
            child.exited(-signal.SIGKILL)

    def stop(self):
        """End the zygote and, through it, every environment it forked."""
        try:
            self.control.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        try:
            self.process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self.control.close()


class Environment:
    """One execution environment: a handler process, loaded with one function at most, answering
    invocations one at a time over pipes. Its `state` changes only in the Pool. One thread owns
    it at a time (the invocation it serves, the housekeeper that boots or ends it), and only that
    thread calls kill(), which closes its pipes; others may only signal_end() it."""

    def __init__(self, kind, process, request_fd, result_fd, start_env):
        self.kind = kind                # (runtime family, memory): what a spare can serve
        self.state = STARTING
        self.key = None                 # Job.key once a function is loaded
        self.generation = None          # the Pool's generation it was loaded in
        self.tmpdir = None              # its TMPDIR, removed when it ends
        self.peak_kb = 0                # peak resident memory, as the process last reported it
        self.start_env = start_env      # what it started with, before any function's
        self.process = process
        self.requests = request_fd
        self.fd = result_fd
        self.frames = bytearray()
        self.buffer = bytearray(1 << 18)   # read into (os.read would allocate its size each time)
        self.poller = select.poll()
        self.poller.register(result_fd, select.POLLIN)
        self.stray = bytearray()        # output written around the runtime: native, children
        self.log_stream = None          # AWS_LAMBDA_LOG_STREAM_NAME of its function
        self.stray_lock = threading.Lock()
        self.kill_lock = threading.Lock()
        self.signalled = False          # SIGKILL sent
        self.killed = False             # and the process waited for
        self.last_used = time.monotonic()
        self.prepared = False           # a Node.js one's mount namespace, for Lambda's paths
        self.debug = None               # {kind, port, waiting, runtime} while debugged
        self.provision = None           # (function, qualifier) whose provisioned concurrency
                                        # keeps it loaded: never reaped or trimmed
        os.set_blocking(request_fd, False)
        threading.Thread(target=self._drain, daemon=True).start()

    @classmethod
    def spawn(cls, kind, argv, env, cwd):
        """An environment in a new process started from `argv` (Node.js): stdin from /dev/null,
        the protocol's pipes passed by number (the process reopens them close-on-exec)."""
        request_read, request_write = os.pipe()
        result_read, result_write = os.pipe()
        start_env = dict(env, _LAMBDA_FAKE_FD=str(result_write),
                         _LAMBDA_FAKE_REQUESTS=str(request_read))
        try:
            process = Spawned(argv, cwd=cwd, env=start_env, stdin=subprocess.DEVNULL,
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                              pass_fds=(result_write, request_read), start_new_session=True)
        except OSError:
            os.close(result_read)
            os.close(request_write)
            raise
        finally:
            os.close(result_write)
            os.close(request_read)
        return cls(kind, process, request_write, result_read, env)

    def _drain(self):
        """Collect what the process writes to its real stdout/stderr as it comes."""
        stream = self.process.stdout
        os.set_blocking(stream.fileno(), False)
        poller = select.poll()
        poller.register(stream.fileno(), select.POLLIN)
        while True:
            poller.poll()
            if self.read_output() is False:
                break
        with self.stray_lock:
            stream.close()

    def read_output(self):
        """Move what the process has written to its stdout/stderr so far into `stray`, keeping
        the last part: True when something was read, None when nothing was there, False once the
        pipe is closed. Reading and keeping go together, under stray_lock, so that once this
        returns None everything written before is in `stray`."""
        with self.stray_lock:
            try:
                chunk = os.read(self.process.stdout.fileno(), 1 << 16)
            except BlockingIOError:
                return None
            except (OSError, ValueError):   # closed
                return False
            if not chunk:
                return False
            self.stray += chunk
            if len(self.stray) > MAX_LOG_BYTES_PER_INVOKE:
                del self.stray[:len(self.stray) - MAX_LOG_BYTES_PER_INVOKE]
            return True

    def drained(self):
        """Bring into `stray` all the process has written so far: a custom runtime logs only
        there, and its answer may come before its output has been read."""
        while self.read_output():
            pass

    def take_stray(self):
        with self.stray_lock:
            text, self.stray = bytes(self.stray), bytearray()
        return text

    def write(self, data, deadline):
        """Write encoded messages; False if the process does not read them by the deadline."""
        data = memoryview(data)
        fd = self.requests
        while data:
            try:
                data = data[os.write(fd, data):]       # usually all at once: no select needed
                continue
            except BlockingIOError:
                pass
            except OSError:
                raise WorkerDied() from None
            remaining = deadline - time.monotonic()
            if remaining <= 0 or not select.select([], [fd], [], remaining)[1]:
                return False
        return True

    def receive(self, deadline):
        """The next frame as (kind, bytes), or None once the deadline passes."""
        while True:
            newline = self.frames.find(b"\n")
            if newline > 0:
                kind, _, rest = bytes(self.frames[:newline]).partition(b" ")
                length, _, peak = rest.partition(b" ")
                if not length.isdigit():
                    raise WorkerDied()
                if peak.isdigit():
                    self.peak_kb = int(peak)
                end = newline + 1 + int(length)
                if len(self.frames) >= end:
                    data = bytes(self.frames[newline + 1:end])
                    del self.frames[:end]
                    if kind == b"D" and self.debug is not None:     # its debugger's state
                        self.debug.update(json.loads(data))
                        continue
                    return kind, data
            fd = self.fd                # read once: kill() may set it to None meanwhile
            if fd is None:
                raise WorkerDied()
            if not self.poller.poll(max(0.0, deadline - time.monotonic()) * 1000):
                return None             # (past the deadline, what is there is still read)
            try:
                size = os.readv(fd, [self.buffer])
            except OSError:             # closed under us (POLLNVAL): as good as gone
                raise WorkerDied() from None
            if not size:
                raise WorkerDied()
            self.frames += memoryview(self.buffer)[:size]

    def rehearse(self, root, modules):
        """Load and invoke a throwaway handler on a new Node.js spare, then unload it: CommonJS,
        and an ES module too once functions of this server have used them. V8 compiles each
        function on its first call, so this first pass costs the few milliseconds that a real cold
        start would otherwise pay (an ES module's first load, some 12 ms: a spare that does not
        need it boots that much faster). False if the process did not play along."""
        deadline = time.monotonic() + INIT_TIMEOUT_SECONDS
        invocation = invocation_message("rehearsal", "", INIT_TIMEOUT_SECONDS * 1000, None, b"{}")
        unload = worker_message({"unload": True, "length": 0}, b"")
        try:
            for handler in ("rehearsal.handler", "rehearsal_module.handler")[:1 + modules]:
                load = worker_message({"load": True, "length": 0, "env": dict(
                    self.start_env, LAMBDA_TASK_ROOT=root, _HANDLER=handler)}, b"")
                for message, answer in ((load, b"I"), (invocation, b"R")):
                    if not self.write(message, deadline):
                        return False
                    frame = self.receive(deadline)
                    while frame is not None and frame[0] == b"L":     # a log line: not the answer
                        frame = self.receive(deadline)
                    if frame is None or frame[0] != answer:
                        return False
                if not self.write(unload, deadline):
                    return False
            return True
        except WorkerDied:
            return False

    def alive(self):
        return self.process.running()

    def news(self):
        """What an idle environment wrote since its last answer, read without waiting: (whether
        it is ending, an error having escaped its handler or its pipe closed, and the log lines
        it wrote meanwhile)."""
        lines = []
        try:
            while (frame := self.receive(0)) is not None:
                if frame[0] == b"X":
                    return True, b"".join(lines)
                if frame[0] == b"L":
                    lines.append(frame[1])
        except WorkerDied:
            return True, b"".join(lines)
        return False, b"".join(lines)

    def max_memory_mb(self):
        """Peak resident memory of the process, as REPORT's Max Memory Used: as the process
        reported it with its result, else read from /proc (VmHWM)."""
        if self.peak_kb:
            return max(1, self.peak_kb // 1024)
        try:
            with open(f"/proc/{self.process.pid}/status") as status:
                for line in status:
                    if line.startswith("VmHWM:"):
                        return max(1, int(line.split()[1]) // 1024)
        except OSError:
            pass
        return 0

    def signal_end(self):
        """SIGKILL the process and everything it started (its own process group), once. Any
        thread may; kill() also waits for it and closes its pipes."""
        with self.kill_lock:
            if not self.signalled:
                self.signalled = True
                try:
                    self.process.kill_group()
                except (ProcessLookupError, PermissionError):
                    pass

    def kill(self):
        """End the process and everything it started, wait until it has gone, close its pipes and
        remove its TMPDIR, once. Only the thread that owns the environment calls this: a
        descriptor closed under a reader may be reused by another file."""
        self.signal_end()
        with self.kill_lock:
            if self.killed:
                return
            self.killed = True
            self.process.reap(5)
            os.close(self.requests)
            os.close(self.fd)
            self.fd = None
            if self.tmpdir:
                shutil.rmtree(self.tmpdir, ignore_errors=True)


# -- The Runtime API, for custom runtimes ------------------------------------------------------
# A provided.* function's environment is its `bootstrap` executable, which asks for invocations
# over HTTP (AWS_LAMBDA_RUNTIME_API). Each such environment gets a RuntimeApi of its own, on a
# port of its own: in the server, it plays the part that the bootstraps above play in Node.js
# and Python processes, reading the same messages and writing the same frames, so the Runner and
# the Pool treat a custom runtime as any other environment. Status codes, error types and texts
# are those of AWS's runtime interface emulator.

RUNTIME_API_PREFIX = "/2018-06-01/runtime/"
STATE_ERROR = ("State transition from {} to {} failed for runtime. Error: State transition is "
               "not allowed")
ERROR_TYPE = re.compile(r"(Runtime|Function)\.[A-Z][a-zA-Z]+")


def runtime_error_type(header):
    """The error type a runtime gave, as Lambda keeps it: Runtime.Unknown (or Function.Unknown)
    unless it reads `Category.Reason`."""
    header = header or ""
    if ERROR_TYPE.search(header):
        return header
    return "Function.Unknown" if header.startswith("Function.") else "Runtime.Unknown"


class RuntimeApi:
    """The Runtime API of one custom-runtime environment. It reads the Runner's messages from
    `requests` (a load, then invocations) and writes frames to `results`: I when the runtime
    first asks for an invocation (or posts an init error), then R, E, or for a streamed response
    T, C... and S. When the runtime's process ends, or the Runner closes its end, it closes."""

    def __init__(self, requests, results):
        self.requests = requests
        self.results = results
        self.lock = threading.Condition()
        self.write_lock = threading.Lock()  # frames go out whole, and never to a closed pipe
        self.state = "Started"          # then Ready (waiting), Running (an invocation out)
        self.waiting = None             # the invocation the runner sent, not yet asked for
        self.current = None             # the invocation the runtime is working on
        self.answered = None            # (request id, state) of the last one answered
        self.closed = False
        self.server = RuntimeApiServer(("127.0.0.1", 0), RuntimeApiHandler)
        self.server.api = self
        self.address = "127.0.0.1:%d" % self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True).start()
        threading.Thread(target=self.read_requests, daemon=True).start()

    def watch(self, process):
        """Close once `process` (the bootstrap) has ended: the Runner then sees it gone."""
        def wait():
            try:
                os.waitid(os.P_PID, process.pid, os.WEXITED | os.WNOWAIT)
            except ChildProcessError:
                pass
            self.close()
        threading.Thread(target=wait, daemon=True).start()

    def read_requests(self):
        reader = open(self.requests, "rb")
        try:
            while line := reader.readline():
                header = json.loads(line)
                payload = reader.read(header["length"])
                if "requestId" in header:
                    with self.lock:
                        self.waiting = (header, payload, time.time())
                        self.lock.notify_all()
        except (OSError, ValueError):
            pass
        finally:
            reader.close()
            self.close()

    def send(self, kind, data):
        """A frame to the Runner (dropped once closed)."""
        frame = b"%s %d\n" % (kind, len(data)) + data
        with self.write_lock:
            if self.closed:
                return
            try:
                while frame:
                    frame = frame[os.write(self.results, frame):]
            except OSError:
                pass

    def close(self):
        with self.lock:
            if self.closed:
                return
            self.closed = True
            self.lock.notify_all()
        with self.write_lock:
            os.close(self.results)
        threading.Thread(target=self.stop_serving, daemon=True).start()

    def stop_serving(self):
        self.server.shutdown()
        self.server.server_close()

    # -- What the runtime asks ------------------------------------------------------------------

    def next_invocation(self):
        """GET .../invocation/next: the next invocation (header, payload), waited for; None once
        closed. The first call ends the init phase; a call during an invocation gets it again."""
        with self.lock:
            if self.state == "Started":
                self.state = "Ready"
                init_done = True
            else:
                init_done = False
        if init_done:
            self.send(b"I", b"{}")
        with self.lock:
            if self.state == "Running" and self.current is not None:
                return self.current
            while self.waiting is None and not self.closed:
                self.lock.wait()
            if self.closed:
                return None
            self.current, self.waiting = self.waiting, None
            self.state = "Running"
            return self.current

    def finish(self, request_id, target):
        """Whether `request_id` may be answered now (as `target`: InvocationResponse or
        InvocationErrorResponse): (status, error body) when it may not."""
        with self.lock:
            if self.current is not None and self.current[0]["requestId"] == request_id:
                self.answered = (request_id, "RuntimeResponseSentState"
                                 if target == "InvocationResponse"
                                 else "RuntimeInvocationErrorResponseState")
                self.current = None
                self.state = "Ready"
                return None
            if self.answered and self.answered[0] == request_id:
                return 403, runtime_api_error("InvalidStateTransition",
                                              STATE_ERROR.format(self.answered[1], target))
            return 400, runtime_api_error("InvalidRequestID", "Invalid request ID")

    def init_error(self, body, error_type):
        """POST .../init/error: the init failed (only before the first next)."""
        with self.lock:
            if self.state != "Started":
                return 403, runtime_api_error("InvalidStateTransition",
                                              STATE_ERROR.format(self.state, "InitError"))
            self.state = "InitError"
        self.send(b"I", runtime_error_body(body, error_type))
        return 202, b'{"status":"OK"}\n'


class RuntimeApiServer(http.server.ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request, client_address):
        """Silent: a runtime that goes away mid-request (killed at a timeout) is no news."""


def runtime_api_error(error_type, message):
    return json.dumps({"errorMessage": message, "errorType": error_type}).encode() + b"\n"


def runtime_error_body(body, error_type):
    """The error an invoker gets from a runtime's error post: its body as it is (JSON or not;
    an AWS error-cause document without its errorCause), or, when it is empty, one made of the
    error type."""
    if not body.strip():
        return json.dumps({"errorType": error_type, "errorMessage": ""}).encode()
    return body


class RuntimeApiHandler(http.server.BaseHTTPRequestHandler):
    """One connection of a runtime to its RuntimeApi."""

    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True      # a reply's head and body go out at once: no 40 ms stall

    def log_message(self, format, *args):
        """Silent: the runtime's own output is its log."""

    def reply(self, status, body=b"", headers=(), content_type="application/json"):
        self.send_response_only(status)
        self.send_header("Date", http_date())
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        for name, value in headers:
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(body)

    def route(self):
        """(what, request id) of the request's path, or None: next, response, error, init."""
        path = self.path.partition("?")[0]
        if not path.startswith(RUNTIME_API_PREFIX):
            return None
        parts = path[len(RUNTIME_API_PREFIX):].split("/")
        if parts == ["invocation", "next"]:
            return "next", None
        if len(parts) == 3 and parts[0] == "invocation" and parts[2] in ("response", "error"):
            return parts[2], urllib.parse.unquote(parts[1])
        if parts == ["init", "error"]:
            return "init", None
        return None

    def do_GET(self):
        self.handle_request("GET")

    def do_POST(self):
        self.handle_request("POST")

    def handle_request(self, method):
        route = self.route()
        if route is None:
            self.reply(404, b"404 page not found\n", content_type="text/plain; charset=utf-8")
            return
        what, request_id = route
        if (method == "GET") != (what == "next"):
            self.close_connection = True
            self.reply(405, headers=[("Allow", "GET" if what == "next" else "POST")])
            return
        api = self.server.api
        if what == "next":
            self.next_invocation(api)
        elif what == "init":
            self.reply(*api.init_error(self.read_body(), runtime_error_type(
                self.headers.get("Lambda-Runtime-Function-Error-Type"))))
        else:
            self.answer(api, what, request_id)

    def next_invocation(self, api):
        invocation = api.next_invocation()
        if invocation is None:          # the environment is ending
            self.close_connection = True
            return
        header, payload, received = invocation
        headers = [("Lambda-Runtime-Aws-Request-Id", header["requestId"]),
                   ("Lambda-Runtime-Deadline-Ms", str(int(received * 1000) + header["timeoutMs"])),
                   ("Lambda-Runtime-Invoked-Function-Arn", header["invokedFunctionArn"]),
                   ("Lambda-Runtime-Trace-Id", header["traceId"])]
        if header.get("clientContext") is not None:
            headers.append(("Lambda-Runtime-Client-Context", json.dumps(header["clientContext"])))
        self.reply(200, payload, headers)

    def answer(self, api, what, request_id):
        """POST .../invocation/{id}/response or /error."""
        mode = self.headers.get("Lambda-Runtime-Function-Response-Mode")
        if what == "response" and mode is not None and mode != "streaming":
            self.read_body()
            refused = api.finish(request_id, "InvocationResponse")
            if refused is None:
                api.send(b"E", json.dumps({"errorType": "Runtime.InvalidResponseModeHeader",
                                           "errorMessage": "Invalid function response mode"})
                         .encode())
            self.reply(400, runtime_api_error("InvalidFunctionResponseMode",
                                              "Invalid function response mode"))
            return
        if what == "response" and mode == "streaming":
            self.stream(api, request_id)
            return
        body = self.read_body(limit=MAX_RESPONSE_BYTES)
        refused = api.finish(request_id, "InvocationResponse" if what == "response"
                             else "InvocationErrorResponse")
        if refused is not None:
            self.reply(*refused)
        elif body is None:              # over the limit: the invocation fails, as on Lambda
            self.close_connection = True
            api.send(b"E", error_payload(
                "Function.ResponseSizeTooLarge", "Response payload size exceeded maximum "
                f"allowed payload size ({MAX_RESPONSE_BYTES} bytes)."))
            self.reply(413, runtime_api_error(
                "RequestEntityTooLarge",
                f"Exceeded maximum allowed payload size ({MAX_RESPONSE_BYTES} bytes)."))
        else:
            if what == "response":
                api.send(b"R", body)
            else:
                api.send(b"E", runtime_error_body(body, runtime_error_type(
                    self.headers.get("Lambda-Runtime-Function-Error-Type"))))
            self.reply(202, b'{"status":"OK"}\n')

    def stream(self, api, request_id):
        """A streamed response: each chunk goes to the Runner as it comes; an error in the
        trailers (its body base64-encoded) ends it as a function error."""
        with api.lock:
            current = api.current is not None and api.current[0]["requestId"] == request_id
        if not current:
            self.read_body()
            self.reply(*api.finish(request_id, "InvocationResponse"))
            return
        api.send(b"T", self.headers.get("Content-Type", "application/octet-stream").encode())
        trailers = {}
        for chunk in self.read_chunks(trailers):
            api.send(b"C", chunk)
        api.finish(request_id, "InvocationResponse")
        error_type = trailers.get("lambda-runtime-function-error-type")
        if error_type:
            try:
                detail = json.loads(base64.b64decode(
                    trailers.get("lambda-runtime-function-error-body", "")))
            except ValueError:          # binascii.Error and JSON's errors alike
                detail = {}
            if not isinstance(detail, dict):
                detail = {"errorMessage": str(detail)}
            detail.setdefault("errorType", runtime_error_type(error_type))
            api.send(b"E", json.dumps(detail).encode())
        else:
            api.send(b"S", b"")
        self.reply(202, b'{"status":"OK"}\n')

    def read_body(self, limit=None):
        """The request body (Content-Length or chunked); None when it is over `limit`."""
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            chunks, size = [], 0
            for chunk in self.read_chunks({}):
                size += len(chunk)
                if limit is None or size <= limit:
                    chunks.append(chunk)
            return b"".join(chunks) if limit is None or size <= limit else None
        length = int(self.headers.get("Content-Length") or 0)
        if limit is None or length <= limit:
            return self.rfile.read(length)
        while length > 0:               # read and dropped: the runtime is told 413
            data = self.rfile.read(min(length, 1 << 20))
            if not data:
                break
            length -= len(data)
        return None

    def read_chunks(self, trailers):
        """The chunks of a chunked body as they arrive; the trailers go into `trailers`."""
        while True:
            size = int(self.rfile.readline(1024).split(b";")[0].strip() or b"0", 16)
            if size == 0:
                while (line := self.rfile.readline(8192).strip()):
                    name, _, value = line.decode("latin-1").partition(":")
                    trailers[name.strip().lower()] = value.strip()
                return
            chunk = self.rfile.read(size)
            self.rfile.readline(1024)
            yield chunk


class Pool:
    """Every execution environment of a server, by state, and the one owner of their states:
    each change goes through move(), under one lock. At most `max_environments` serve functions
    (loading, busy or idle; the least recently used idle one makes room), beside at most
    MAX_SPARES spares, SPARES_PER_KIND of each kind. Environments of provisioned concurrency
    (env.provision) serve their function first, and stay until it is deleted: neither idle time
    nor a trim ends them, and room for another function is made with them last. A reset (clear())
    starts a new generation: every environment that loaded a function ends, and the spares stay.

    One pool serves every account and region: a function is named by its unqualified ARN here
    (Job.key[0]). Counters for tests: count(), inflight_of(), pids().
    """

    def __init__(self, max_environments=16, idle_seconds=300):
        self.lock = threading.Condition()
        self.max_environments = max_environments
        self.idle_seconds = idle_seconds
        self.live = set()               # every environment that is not dead
        self.idle = {}                  # Job.key -> [idle Environment], most recently used last
        self.spares = {}                # kind -> [spare Environment]
        self.retiring = []              # to be ended by the housekeeper
        self.reserved = 0               # cold starts with room kept for a process not started yet
        self.inflight = {}              # function ARN -> on-demand invocations under way;
                                        # (its ARN, qualifier) -> provisioned ones
        self.generation = 0             # one per reset: older environments never serve again
        self.trim_due = False           # a cold start took a spare at the cap: trim() follows it
        self.closed = False             # set for good by close()
        self.on_retire = None           # called (under the lock) when an environment retires
        self.on_lost = None             # called (under the lock) with the target of a provisioned
                                        # environment that a crash or a timeout ended

    # -- The one place states change --------------------------------------------------------

    def move(self, env, state):
        """Change an environment's state and the indexes that find it. Caller holds self.lock."""
        if state not in NEXT_STATES[env.state]:
            raise RuntimeError(f"environment {env.process.pid}: {env.state} -> {state}")
        if env.state == IDLE:
            self.idle[env.key].remove(env)
            if not self.idle[env.key]:
                del self.idle[env.key]
        elif env.state == SPARE:
            self.spares[env.kind].remove(env)
        elif env.state == RETIRING:
            self.retiring.remove(env)
        env.state = state
        if state == IDLE:
            env.last_used = time.monotonic()
            self.idle.setdefault(env.key, []).append(env)
        elif state == SPARE:
            env.last_used = time.monotonic()
            self.spares.setdefault(env.kind, []).append(env)
        elif state == RETIRING:
            self.retiring.append(env)
            if self.on_retire is not None:
                self.on_retire()
        if (state == DEAD and env.provision and self.on_lost is not None
                and not self.closed and env.generation == self.generation):
            self.on_lost(env.provision)
        if state == DEAD:
            self.live.discard(env)
        else:
            self.live.add(env)
        self.lock.notify_all()

    # -- Counters ---------------------------------------------------------------------------

    def count(self, *states, kind=None):
        """How many environments are in these states (all live ones when none are named)."""
        with self.lock:
            return sum(1 for env in self.live if (not states or env.state in states)
                       and kind in (None, env.kind))

    def pids(self, *states):
        """The process ids of the environments in these states (all live ones when none)."""
        with self.lock:
            return [env.process.pid for env in self.live if not states or env.state in states]

    def inflight_of(self, function_name):
        with self.lock:
            return self.inflight.get(function_name, 0)

    def serving(self):
        """Environments that count against max_environments: those loading, busy or idle, and
        the cold starts whose process is being started. Caller holds self.lock."""
        return self.reserved + sum(1 for env in self.live if env.state in (LOADING, BUSY, IDLE))

    # -- Invocations ------------------------------------------------------------------------

    def admit(self, job):
        """Count an invocation in, and return what leave() takes back: a place of its
        qualifier's provisioned concurrency while one is free, else an on-demand one, of which
        a function with reserved concurrency has what its provisioned concurrency leaves (as on
        AWS: reserved equal to provisioned leaves none); none left raises the throttle."""
        with self.lock:
            if self.closed:
                raise LambdaError("ServiceException", 500, "The server is stopping")
            if job.provisioned_target is not None:
                target, count = job.provisioned_target
                if self.inflight.get(target, 0) < count:
                    self.inflight[target] = self.inflight.get(target, 0) + 1
                    return target
            running = self.inflight.get(job.key[0], 0)
            if (job.reserved is not None
                    and running >= job.reserved - job.provisioned_total):
                raise LambdaError("TooManyRequestsException", 429, "Rate Exceeded.", extra={
                    "Reason": "ReservedFunctionConcurrentInvocationLimitExceeded", "Type": "User"})
            self.inflight[job.key[0]] = running + 1
            return job.key[0]

    def leave(self, place):
        with self.lock:
            self.inflight[place] -= 1

    def acquire(self, key, kind, reuse=True, patience=None):
        """An environment for an invocation of `key`, as (environment, cold, generation): an idle
        one (a provisioned one first), now busy; or a spare, now loading; or None, with room
        reserved for a new process that the caller starts in that generation (see adopt). Idle
        environments of the function's older code retire. At the cap, a spare of this kind comes
        in at once and the least recently used idle environment leaves after the invocation
        (trim); without a spare, that one makes room now (a provisioned one last); with nothing
        idle, this waits. A spare of this kind still booting is waited for a moment rather than
        another process started beside it. With reuse False, never an idle one; with
        `patience`, a ServiceException once that many seconds have passed with no room."""
        waited_for_spare = time.monotonic() + SPARE_WAIT_SECONDS
        given_up = None if patience is None else time.monotonic() + patience
        with self.lock:
            for older in [env for k in self.idle if k[:2] == key[:2] and k != key
                          for env in self.idle[k]]:
                self.move(older, RETIRING)
            while True:
                if self.closed:
                    raise LambdaError("ServiceException", 500, "The server is stopping")
                for env in sorted(reversed(self.idle.get(key, ()) if reuse else ()),
                                  key=lambda env: env.provision is None):
                    if env.alive():
                        self.move(env, BUSY)
                        return env, False, self.generation
                    self.move(env, RETIRING)        # it died while idle
                    break
                else:
                    spares = self.spares.get(kind)
                    while spares and not spares[-1].alive():
                        self.move(spares[-1], RETIRING)     # it died waiting (its zygote did?)
                    idle = [env for envs in self.idle.values() for env in envs]
                    if self.serving() < self.max_environments or (idle and spares):
                        if spares:
                            self.trim_due = self.serving() >= self.max_environments
                            return self.claim(spares[-1], key), True, self.generation
                        if (time.monotonic() < waited_for_spare and any(
                                env.state == STARTING and env.kind == kind for env in self.live)):
                            self.lock.wait(max(0.0, waited_for_spare - time.monotonic()))
                            continue
                        self.reserved += 1
                        return None, True, self.generation
                    if idle:
                        leaving = min(idle, key=lambda env: (bool(env.provision), env.last_used))
                        leaving.provision = None        # gives up its provisioned place
                        self.move(leaving, RETIRING)
                        continue
                    if given_up is not None and time.monotonic() > given_up:
                        raise LambdaError("ServiceException", 500, "No room for an environment")
                    self.lock.wait(0.5)

    def claim(self, env, key):
        """A spare (or a new process) for key's function: loading, in this generation. Caller
        holds self.lock."""
        env.key, env.generation = key, self.generation
        self.move(env, LOADING)
        return env

    def adopt(self, env, key, generation):
        """The new process of a cold start with no spare takes its reserved room and starts
        loading; False when a reset or a stop came meanwhile (the caller ends it)."""
        with self.lock:
            self.reserved -= 1
            if self.closed or generation != self.generation:
                self.lock.notify_all()
                return False
            self.live.add(env)
            self.claim(env, key)
            return True

    def unreserve(self):
        """A reserved cold start that started no process."""
        with self.lock:
            self.reserved -= 1
            self.lock.notify_all()

    def loaded(self, env):
        """Its init is done: busy with the invocation sent behind the load. False when a reset
        or a stop ended it meanwhile."""
        with self.lock:
            if env.state != LOADING:
                return False
            self.move(env, BUSY)
            return True

    def release(self, env):
        """An invocation is done: the environment is idle for its function's next one, unless a
        reset or a stop came meanwhile or it died (then it retires). A reset or a stop that
        ended it mid-invocation left it to this thread, its owner, to close."""
        with self.lock:
            if env.state == DEAD:
                ended = True
            elif env.state != BUSY:
                return
            elif self.closed or env.generation != self.generation or not env.alive():
                self.move(env, RETIRING)
                return
            else:
                ended = False
                self.move(env, IDLE)
                if self.serving() > self.max_environments:
                    self.trim()         # the room a cold start at the cap took
        if ended:
            env.kill()

    def discard(self, env):
        """End an environment now (a timeout, a crash, a failed init)."""
        with self.lock:
            if env.state != DEAD:
                self.move(env, DEAD)
            self.trim()                 # (also ends the trim a failed cold start at the cap owed)
        env.kill()                      # the invocation's own thread: its owner

    def retire(self, function_name):
        """The idle environments of a function (after an update or a delete) retire, but those
        of its provisioned concurrency (see unpin)."""
        with self.lock:
            for env in [env for k in self.idle if k[0] == function_name for env in self.idle[k]
                        if not env.provision]:
                self.move(env, RETIRING)

    def pinned(self, target=None, key=None):
        """How many environments provisioned concurrency keeps: for one target and Job.key, or in
        all. Caller holds self.lock."""
        return sum(1 for env in self.live if env.provision and target in (None, env.provision)
                   and key in (None, env.key) and env.state in (LOADING, BUSY, IDLE))

    def unpin(self, function_name, keep):
        """The provisioned environments of a function whose (target, key) is not in `keep` are
        provisioned no more: the idle ones retire, the busy ones after their invocation."""
        with self.lock:
            for env in list(self.live):
                if env.provision and env.provision[0] == function_name and (
                        (env.provision, env.key) not in keep):
                    env.provision = None
                    if env.state == IDLE:
                        self.move(env, RETIRING)

    def provisioned(self, env, target):
        """A function loaded for provisioned concurrency: idle, kept for it. False when a reset
        or a stop ended it meanwhile."""
        with self.lock:
            if env.state != BUSY:
                return False
            env.provision = target
        self.release(env)
        return True

    def trim(self):
        """Retire least recently used idle environments until within max_environments."""
        with self.lock:
            self.trim_due = False
            idle = sorted((env for envs in self.idle.values() for env in envs
                           if not env.provision), key=lambda env: env.last_used)
            for env in idle[:max(0, self.serving() - self.max_environments)]:
                self.move(env, RETIRING)

    # -- Spares and housekeeping ------------------------------------------------------------

    def spares_wanted(self, kind, wanted=SPARES_PER_KIND):
        """How many more spares of this kind to start now, to have `wanted` of it."""
        with self.lock:
            if self.closed:
                return 0
            spares = [env for env in self.live if env.state in (STARTING, SPARE)]
            of_kind = sum(1 for env in spares if env.kind == kind)
            return max(0, min(wanted - of_kind, MAX_SPARES - len(spares)))

    def starting(self, env):
        """A spare's process started: it boots (a Node.js spare rehearses). False once closed."""
        with self.lock:
            if self.closed:
                return False
            self.live.add(env)
            self.lock.notify_all()
            return True

    def booted(self, env, ready):
        """A spare finished booting: ready to serve, or (it failed, or the pool closed) dead."""
        with self.lock:
            if ready and env.state == STARTING and not self.closed:
                self.move(env, SPARE)
                return True
            if env.state != DEAD:
                self.move(env, DEAD)
        env.kill()                      # the housekeeper booted it: its owner
        return False

    def take_retiring(self):
        """The retiring environments, now dead, for the housekeeper to end."""
        with self.lock:
            retiring = list(self.retiring)
            for env in retiring:
                self.move(env, DEAD)
            return retiring

    def reap(self):
        """Retire environments (spares too) idle for longer than idle_seconds."""
        with self.lock:
            limit = time.monotonic() - self.idle_seconds
            for env in [env for env in self.live if env.state in (IDLE, SPARE)
                        and env.last_used < limit and not env.provision]:
                self.move(env, RETIRING)

    # -- Reset and stop ---------------------------------------------------------------------

    def clear(self):
        """A reset: a new generation; every environment that loaded a function is sent SIGKILL
        now (busy ones too: their invocations fail), and the spares stay. Returns the old
        generation and the idle ones, now the caller's to kill(); the threads of the busy ones
        kill theirs."""
        with self.lock:
            old, self.generation = self.generation, self.generation + 1
            resting = [env for env in self.live if env.state in (IDLE, RETIRING)]
            running = [env for env in self.live if env.state in (LOADING, BUSY)]
            for env in resting + running:
                self.move(env, DEAD)
        for env in resting + running:
            env.signal_end()
        return old, resting

    def close(self):
        """A stop: every environment ends, spares included, and nothing starts again. The
        resting ones are killed here; those a thread owns (booting, loading, busy) are waited
        for, and their threads close them."""
        with self.lock:
            self.closed = True
            self.generation += 1
            owned = {env for env in self.live if env.state in (STARTING, LOADING, BUSY)}
            ending = list(self.live)
            for env in ending:
                self.move(env, DEAD)
        for env in ending:
            env.signal_end()            # all at once: they go in parallel
        for env in ending:
            if env in owned:
                env.process.reap(5)
            else:
                env.kill()


class Job:
    """What one invocation needs, copied from the store so it runs without the lock."""

    def __init__(self, store, function, version, config, package, qualifier):
        self.function_name = function.name
        self.version = version
        self.runtime = config.get("Runtime", "")
        self.handler = config.get("Handler", "")
        self.memory = config["MemorySize"]
        self.timeout = config["Timeout"]
        self.variables = dict((config.get("Environment") or {}).get("Variables") or {})
        self.log_group = config["LoggingConfig"]["LogGroup"]
        logging_config = config["LoggingConfig"]
        self.log_format = logging_config.get("LogFormat") or "Text"
        self.application_log_level = self.system_log_level = None       # Text: no levels
        if self.log_format == "JSON":
            self.application_log_level = logging_config.get("ApplicationLogLevel", "INFO")
            self.system_log_level = logging_config.get("SystemLogLevel", "INFO")
        self.role = config.get("Role")
        self.package = package
        self.layers = []                # packages of its layers (another account's: as shared)
        for layer in config.get("Layers") or []:
            parts = layer["Arn"].split(":")
            owner = store.stores.existing(parts[4], parts[3])   # or another account's, shared
            found = owner.layers.get(parts[6]) if owner else None
            package = found.packages.get(int(parts[7])) if found else None
            if package is not None:
                self.layers.append(package)
        # Environments are shared by invocations whose code and runtime settings are the same;
        # the key is remembered per revision, since computing it costs more than the rest of a Job.
        memo = (version, config["RevisionId"])
        if function.job_key[0] != memo:
            settings = [package.hex, self.runtime, self.handler, self.memory, self.variables,
                        [layer.hex for layer in self.layers], self.application_log_level]
            function.job_key = (memo, (function_arn(store, function.name), version,
                                       hashlib.sha256(json.dumps(settings).encode()).hexdigest()))
        self.key = function.job_key[1]
        self.invoked_arn = function_arn(store, function.name, qualifier)
        self.function_arn = function_arn(store, function.name, version)
        self.region = store.region
        # A handler's SDK calls back as its own account: another account's key is its id.
        default = store.stores.default.account
        self.access_key = "test" if store.account == default else store.account
        self.aws_endpoints = store.aws_endpoints        # other local AWS services
        self.endpoint_url = store.endpoint_url
        self.reserved = function.reserved_concurrency
        self.provisioned_total = function.provisioned_total()
        here = function.provisioned.get(qualifier) if qualifier else None
        self.provisioned_target = None if here is None else (
            (self.key[0], qualifier), here["RequestedProvisionedConcurrentExecutions"])
        self.async_config = dict(function.event_invoke_configs.get(qualifier or "$LATEST") or {})
        self.dead_letter = (config.get("DeadLetterConfig") or {}).get("TargetArn")
        self.durable = None             # the DurableExecution this invocation runs, if any
        self.trace_header = None        # the X-Amzn-Trace-Id its request carried
        self.durable_config = config.get("DurableConfig")
        self.initialization = "on-demand"   # or "provisioned-concurrency": what loads it
        self.debug = bool(store.debug) and ("*" in store.debug or function.name in store.debug)
        self.kind = environment_kind(self.runtime, self.memory, self.debug)  # what may serve it

    def allowed(self, seconds):
        """How long its init or invocation may take: `seconds`, or a day when it is debugged."""
        return DEBUG_TIMEOUT_SECONDS if self.debug else seconds


class Outcome:
    """The result of one invocation: payload bytes, function error kind, its LogBuffer (or None),
    version. The log's text is made only when something reads it."""

    def __init__(self, payload, function_error=None, log=None, version="$LATEST"):
        self.payload = payload
        self.function_error = function_error
        self.log_buffer = log
        self.version = version
        self.streamed = False           # a streaming handler's output (payload: what was written)
        self.echo_reason = None         # why the payload was echoed instead of run
        self.cold = False               # whether an environment was loaded for this invocation
        self.content_type = None        # what it set with responseStream.setContentType()
        self.log_stream = None          # its environment's log stream (CloudWatch Logs)

    @property
    def log(self):
        return self.log_buffer.text() if self.log_buffer is not None else ""


MIN_SHARED_MEMORY_BYTES = 1 << 30      # our own: /dev/shm holds unpacked code if it has this


# What Lambda's Python runtimes ship besides the standard library, as module -> distribution: the
# AWS SDK and what it needs. Handlers import these from the server interpreter's own copies.
PYTHON_RUNTIME_MODULES = {"boto3": "boto3", "botocore": "botocore", "s3transfer": "s3transfer",
                          "jmespath": "jmespath", "dateutil": "python_dateutil", "six": "six",
                          "urllib3": "urllib3"}


def link_python_runtime(directory):
    """Fill `directory` with links to the server interpreter's copies of PYTHON_RUNTIME_MODULES
    and their .dist-info metadata (importlib.metadata finds versions there). A module this
    interpreter lacks stays missing, so a handler that imports it fails as on a runtime without
    it: the server says so when it does."""
    import importlib.util
    os.makedirs(directory)
    for module, distribution in PYTHON_RUNTIME_MODULES.items():
        try:
            spec = importlib.util.find_spec(module)
        except (ImportError, ValueError):
            spec = None
        if spec is None or not spec.origin or not os.path.isabs(spec.origin):
            continue
        source = (spec.submodule_search_locations[0] if spec.submodule_search_locations
                  else spec.origin)
        parent = os.path.dirname(source)
        found = [source] + [os.path.join(parent, name) for name in os.listdir(parent)
                            if name.startswith(distribution + "-") and name.endswith(".dist-info")]
        for path in found:
            os.symlink(path, os.path.join(directory, os.path.basename(path)))


def find_node_sdk(node, given=None):
    """The node_modules directory whose @aws-sdk packages Node.js handlers can require and import
    without bundling them, as Lambda's nodejs18.x and later runtimes ship the SDK v3: `given`
    (or LAMBDA_FAKE_NODE_SDK), else npm's global packages beside this node
    (<prefix>/lib/node_modules), or None when that has none. ValueError when the directory
    named holds no @aws-sdk."""
    named = given or os.environ.get("LAMBDA_FAKE_NODE_SDK")
    if named:
        if not os.path.isdir(os.path.join(named, "@aws-sdk")):
            raise ValueError(f"{named} has no @aws-sdk directory: name the node_modules that "
                             "holds the AWS SDK v3 packages")
        return os.path.abspath(named)
    if node:
        prefix = os.path.dirname(os.path.dirname(os.path.realpath(node)))
        directory = os.path.join(prefix, "lib", "node_modules")
        if os.path.isdir(os.path.join(directory, "@aws-sdk")):
            return directory
    return None


def workdir_base():
    """Where the temporary directory goes: /dev/shm when it has room (a node_modules is thousands
    of small files, which a memory file system writes several times faster than a disk), unless
    TMPDIR says where; else the system's temporary directory."""
    if "TMPDIR" not in os.environ and os.access("/dev/shm", os.W_OK):
        stats = os.statvfs("/dev/shm")
        if stats.f_bavail * stats.f_frsize >= MIN_SHARED_MEMORY_BYTES:
            return "/dev/shm"
    return None


def own_workdir(root):
    """Hold a lock on the temporary directory for as long as this process lives; returns its
    descriptor. The lock goes with the process however it ends."""
    lock = os.open(os.path.join(root, ".owner"), os.O_CREAT | os.O_RDWR | os.O_CLOEXEC, 0o600)
    fcntl.flock(lock, fcntl.LOCK_EX)
    return lock


def remove_abandoned_workdirs(base):
    """Remove the temporary directories of servers that ended without a stop (killed): their
    lock is free. In /dev/shm they would hold memory until a reboot."""
    for name in os.listdir(base):
        owner = os.path.join(base, name, ".owner")
        if not name.startswith("lambda_fake-") or not os.path.exists(owner):
            continue
        try:
            lock = os.open(owner, os.O_RDWR | os.O_CLOEXEC)
        except OSError:
            continue
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            continue                    # a live server's
        finally:
            os.close(lock)
        shutil.rmtree(os.path.join(base, name), ignore_errors=True)


def environment_kind(runtime, memory, debug=False):
    """What a spare must match to serve a function: the runtime family, and for Node.js the heap
    limit (a process-wide flag) that MemorySize sets. A custom runtime has no spares: its
    bootstrap starts with its function's environment; nor has a debugged Node.js function: its
    process starts with the inspector."""
    if runtime in CUSTOM_RUNTIMES:
        return ("custom", 0)
    if runtime in NODE_RUNTIMES:
        return ("node", memory, "debug") if debug else ("node", memory)
    return ("python", 0)


class PortHeld:
    """A debugger port given out for an environment that does not exist yet."""

    @staticmethod
    def alive():
        return True


PORT_HELD = PortHeld()


class Housekeeper:
    """Where environments come from and where they go. It keeps the temporary directory (the
    bootstraps, and the code unpacked in this generation), starts environments (a `node` process,
    or a fork of the Python zygote, which it starts on first need), and runs one background
    thread: a moment after the request that called for it has been answered, it ends retired
    environments, removes code unpacked before a reset, tops up the spares of the kinds wanted
    lately, and now and then retires environments idle for longer than idle_seconds."""

    def __init__(self, pool, node_sdk=None, lambda_paths=True):
        self.pool = pool
        pool.on_retire = self.wake
        self.lock = threading.Lock()    # the workdir, the zygote and the lists below
        self.root = None                # temporary directory: bootstraps and unpacked code
        self.root_lock = None           # own_workdir()'s lock on it
        self.zygote = None              # the Python zygote, started on first need
        self.thread = None              # the thread of keep_house()
        self.call = threading.Event()   # wakes it
        self.spare_kinds = {}           # kind -> (when it was last wanted, how many spares)
        self.old_code = []              # code directories of generations before a reset
        self.ending = []                # idle environments a reset signalled, to kill
        self.made_code_root = None      # the last code_root() made
        self.rehearse_modules = False   # whether Node.js spares rehearse an ES module too
        self.node = shutil.which("node")
        self.node_sdk = find_node_sdk(self.node, node_sdk)   # a node_modules with @aws-sdk
        self.lambda_paths = lambda_paths    # wanted: then `paths` says whether it can be had
        self.debug_break = False        # debugged environments stop before the handler loads
        self.debug_ports = {}           # port -> the environment it was given to
        self.debugpy_path = None        # where debugpy is linked, once looked for ("" if not)
        self.paths = None               # what lambda_paths needs: False when it cannot be had

    def workdir(self):
        with self.lock:
            if self.pool.closed:
                raise LambdaError("ServiceException", 500, "The server is stopping")
            if self.root is None:
                base = workdir_base() or tempfile.gettempdir()
                remove_abandoned_workdirs(base)
                self.root = tempfile.mkdtemp(prefix="lambda_fake-", dir=base)
                self.root_lock = own_workdir(self.root)
                for name, source in (("bootstrap.js", NODE_BOOTSTRAP),
                                     ("bootstrap.py", PYTHON_BOOTSTRAP),
                                     ("rehearsal.js", "exports.handler = async (e) => e;\n"),
                                     ("rehearsal_module.mjs",
                                      "export const handler = async (e) => e;\n"),
                                     ("rehearsal.py", "def handler(event, context):\n"
                                                      "    return event\n")):
                    with open(os.path.join(self.root, name), "w") as out:
                        out.write(source)
                link_python_runtime(os.path.join(self.root, "python-runtime"))
                if self.node_sdk:       # the SDK alone, not every global package
                    os.makedirs(os.path.join(self.root, "node-runtime"))
                    os.symlink(os.path.join(self.node_sdk, "@aws-sdk"),
                               os.path.join(self.root, "node-runtime", "@aws-sdk"))
                self.thread = threading.Thread(target=self.keep_house, daemon=True)
                self.thread.start()
            return self.root

    def code_root(self):
        """Where this generation's packages and layers are unpacked. A reset starts another
        generation, and the housekeeper removes the directory of the old one."""
        root = self.workdir()
        path = os.path.join(root, f"code-{self.pool.generation}")
        if path != self.made_code_root:
            try:
                os.makedirs(path, exist_ok=True)
                if self.node_sdk:       # the packages in it find the SDK by walking up, from
                    os.symlink(os.path.join(root, "node-runtime"),   # require() and import alike
                               os.path.join(path, "node_modules"))
            except FileExistsError:
                pass
            except OSError:             # the workdir went with a stop
                raise LambdaError("ServiceException", 500, "The server is stopping") from None
            self.made_code_root = path
        return path

    def launch(self, kind):
        """A new environment of this kind that has loaded no function: a `node` process (its
        environment minimal until a load message brings the function's), or a fork of the
        zygote, which is started on first need. OSError when it cannot be had."""
        root = self.workdir()
        if kind[0] != "node":
            return Environment(kind, *self.the_zygote().fork(), {})
        env = bare_environment()
        heap_mb = max(64, kind[1] * 9 // 10)
        argv = [self.node, f"--max-old-space-size={heap_mb}", os.path.join(root, "bootstrap.js")]
        debug = None
        if kind[-1] == "debug":         # a debugged function's: with the inspector
            debug = {"kind": "inspector", "port": self.debug_port("inspector"), "waiting": False}
            argv.insert(1, f"--inspect{'-brk' if self.debug_break else ''}"
                           f"=127.0.0.1:{debug['port']}")
        paths = self.path_settings()
        if paths:                       # in a mount namespace of its own, for Lambda's paths
            argv = [*paths["unshare"], *argv]
        made = Environment.spawn(kind, argv, env, root)
        made.debug = debug
        if debug:
            self.hold_debug_port(debug["port"], made)
        return made

    def debug_port(self, kind, env=None):
        """A free port on 127.0.0.1 for a debugger of this kind, from the usual one upward, not
        given to another live environment; held for `env`, or until hold_debug_port() names
        the environment it was for."""
        with self.lock:
            for port in range(DEBUG_PORTS[kind], DEBUG_PORTS[kind] + 1000):
                holder = self.debug_ports.get(port)
                if holder is not None and holder.alive():
                    continue
                try:
                    with socket.create_server(("127.0.0.1", port)):
                        pass
                except OSError:
                    continue
                self.debug_ports[port] = env or PORT_HELD
                return port
        raise OSError(f"no free port for a {kind} debugger")

    def hold_debug_port(self, port, env):
        with self.lock:
            self.debug_ports[port] = env

    def debugpy(self):
        """Where debugpy is linked for debugged Python environments, when the server's
        interpreter has it; else None (they get pdb over TCP)."""
        if self.debugpy_path is None:
            import importlib.util
            spec = importlib.util.find_spec("debugpy")
            self.debugpy_path = ""
            if spec is not None and spec.submodule_search_locations:
                folder = os.path.join(self.workdir(), "python-debug")
                os.makedirs(folder, exist_ok=True)
                try:
                    os.symlink(spec.submodule_search_locations[0], os.path.join(folder, "debugpy"))
                except FileExistsError:     # another thread's, a moment ago
                    pass
                self.debugpy_path = folder
        return self.debugpy_path or None

    def the_zygote(self):
        """The Python zygote, started on first need. OSError once the server is stopping."""
        root, paths = self.workdir(), self.path_settings()
        with self.lock:
            if self.pool.closed:
                raise OSError("the server is stopping")
            if self.zygote is None or not self.zygote.alive():
                self.zygote = Zygote(root, paths)
            return self.zygote

    def path_settings(self):
        """What every environment's Lambda paths share, or False where the kernel does not let
        this process make a mount namespace (or they were not wanted): how to start a process in
        one (without root, in a user namespace too, where the user is itself), and the host
        paths to keep under /opt (the interpreters, the runtime's libraries and the SDK). Found
        out once, by trying, in a process of its own (mount(8) refuses users other than root,
        so theirs only makes the namespaces)."""
        with self.lock:
            if self.paths is not None:
                return self.paths
        root = self.workdir()
        unshare, mount = shutil.which("unshare"), shutil.which("mount")
        settings = False
        if self.lambda_paths and sys.platform.startswith("linux") and unshare and mount:
            user = os.geteuid() != 0    # then in a user namespace, where this user is itself
            command = [unshare, *(["--user", "--map-current-user"] if user else []), "--mount",
                       "--propagation", "private"]
            probe = subprocess.run(command + (["true"] if user else [mount, "-t", "tmpfs",
                                                                    "tmpfs", root]),
                                   stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                   stderr=subprocess.DEVNULL)
            if probe.returncode == 0:
                runtime = os.path.join(root, "python-runtime")
                keep = {sys.prefix, sys.base_prefix, os.path.dirname(sys.executable),
                        *(os.readlink(os.path.join(runtime, name)) for name in os.listdir(runtime)),
                        *(path for path in (self.node, self.node_sdk) if path)}
                settings = {"unshare": command, "user": user, "runtime": root,
                            "keep": sorted({variant for path in keep for variant in
                                            (os.path.abspath(path), os.path.realpath(path))})}
        with self.lock:
            if self.paths is None:
                self.paths = settings
            return self.paths

    def want_spares(self, kind, count=SPARES_PER_KIND):
        """Keep `count` spares of this kind from now on (a function of that kind was created,
        updated or cold-started: two; the server started: one), so that its first invoke does
        not wait for a process to boot."""
        self.workdir()                  # which starts the thread
        with self.lock:
            _, wanted = self.spare_kinds.get(kind, (0, 0))
            self.spare_kinds[kind] = (time.monotonic(), max(count, wanted))
        self.wake()

    def wake(self):
        self.call.set()

    def keep_house(self):
        """The housekeeping thread, until the server stops (see the class docstring)."""
        reap_every = min(10, max(0.05, self.pool.idle_seconds))
        reap_at = time.monotonic() + reap_every
        while True:
            called = self.call.wait(max(0.0, reap_at - time.monotonic()))
            self.call.clear()
            if self.pool.closed:
                return
            try:
                if called:
                    time.sleep(HOUSEKEEPING_DELAY_SECONDS)  # the reply that called goes first
                if not self.pool.trim_due:     # else the invocation's end trims
                    self.pool.trim()
                for env in self.pool.take_retiring():
                    env.kill()
                with self.lock:
                    old_code, self.old_code = self.old_code, []
                    ending, self.ending = self.ending, []
                for env in ending:
                    env.kill()
                for path in old_code:
                    shutil.rmtree(path, ignore_errors=True)
                self.start_spares()
                if time.monotonic() >= reap_at:
                    reap_at = time.monotonic() + reap_every
                    self.pool.reap()    # the retired end at the next round
            except Exception:           # a bug here must not end the housekeeping for good
                import traceback
                traceback.print_exc(file=sys.stderr)

    def start_spares(self):
        """Top up the spares of each kind wanted within idle_seconds, most recent first (a
        Node.js spare rehearses before it serves)."""
        horizon = time.monotonic() - self.pool.idle_seconds
        with self.lock:
            kinds = [(kind, count) for kind, (wanted, count)
                     in sorted(self.spare_kinds.items(), key=lambda item: -item[1][0])
                     if wanted >= horizon]
        for kind, count in kinds:
            if kind[0] == "node" and self.node is None:
                continue                    # no node to start it with
            booting = []                    # started together, they boot in parallel
            for _ in range(self.pool.spares_wanted(kind, count)):
                try:
                    env = self.launch(kind)
                except (OSError, LambdaError):
                    break                   # stopping, or no zygote: the next call tries again
                if not self.pool.starting(env):
                    env.kill()
                    break
                booting.append(env)
            for env in booting:
                self.pool.booted(env, self.boot(env))

    def boot(self, env):
        """Whether a new spare is ready to serve: a Node.js one rehearses, and its mount namespace
        is prepared for Lambda's paths (a Python one does both itself)."""
        if env.kind[0] != "node":
            return True
        zygote = None
        if self.path_settings():
            try:                        # it boots while the node process rehearses
                zygote = self.the_zygote()
            except (OSError, LambdaError):
                return False
        if not env.rehearse(self.root or "", self.rehearse_modules):
            return False
        if zygote is not None:
            try:
                zygote.give_paths(env.process.pid, {"prepare": True})
            except (OSError, LambdaError):
                return False
            env.prepared = True
        return True

    def clear(self):
        """A reset: every environment that loaded a function is sent SIGKILL (the housekeeper
        waits for the idle ones and closes them; a busy one's invocation does), the spares stay,
        and the code unpacked so far is removed in the background."""
        old, ending = self.pool.clear()
        with self.lock:
            if self.root is not None:
                self.old_code.append(os.path.join(self.root, f"code-{old}"))
            self.ending.extend(ending)
        self.wake()

    def stop(self):
        """End every environment and the zygote, and remove the temporary directory; nothing
        starts again."""
        self.pool.close()
        with self.lock:
            zygote, self.zygote = self.zygote, None
            root, self.root = self.root, None
            root_lock, self.root_lock = self.root_lock, None
            ending, self.ending = self.ending, []
        for env in ending:
            env.kill()
        self.wake()         # it sees the pool closed, and ends
        if zygote is not None:
            zygote.stop()
        if root:
            shutil.rmtree(root, ignore_errors=True)
            os.close(root_lock)


class Runner:
    """Runs invocations in the Pool's environments, which the Housekeeper starts and ends: loads
    a function into an environment on a cold start (a spare's, or a new process's), sends it the
    invocation, and gathers what comes back into an Outcome."""

    def __init__(self, max_workers=16, idle_seconds=300, node_sdk=None, lambda_paths=True):
        self.pool = Pool(max_workers, idle_seconds)
        self.house = Housekeeper(self.pool, node_sdk, lambda_paths)
        self.init_seconds = INIT_TIMEOUT_SECONDS    # a function's init phase (tests shorten it)
        self.notes = collections.deque(maxlen=100)  # (function, log) of environments that an
                                                    # error ended after their last answer
        self.say = lambda text: sys.stderr.write(f"lambda_fake: {text}\n")   # the server's log
        self.provisions = {}            # (function, qualifier) -> [(Job, count)]: what
                                        # provisioned concurrency keeps loaded (pool.lock)
        self.provision_lock = threading.Lock()      # one top-up at a time
        self.pool.on_lost = self.replace_provisioned

    @property
    def closed(self):
        return self.pool.closed

    def runs_here(self, runtime):
        return (runtime in PYTHON_RUNTIMES or (runtime in NODE_RUNTIMES and bool(self.house.node))
                or (runtime in CUSTOM_RUNTIMES and os.name == "posix"))

    def prepare(self, package, runtime, handler):
        """Unpack a function's code as it arrives (CreateFunction, UpdateFunctionCode), so that
        its first invoke does not. A zip whose entries will not inflate is refused here, as AWS
        refuses it on upload; a handler that points outside its raw source fails at invoke, as
        before. Code that cannot run here stays packed."""
        if (package.hot_dir or package.s3_location or not (package.is_zip or package.is_text)
                or not self.runs_here(runtime)):
            return
        try:
            unpack(package, self.house.code_root(), runtime, handler)
        except (zipfile.BadZipFile, zlib.error, NotImplementedError, RuntimeError):
            raise invalid_parameter("Could not unzip uploaded file. Please check your file, then "
                                    "try to upload again.") from None
        except LambdaError as error:
            if package.is_zip or error.code == "ServiceException":
                raise
        except OSError:                 # a reset removed the directory meanwhile: the first
            pass                        # invoke unpacks it again

    def cannot_run(self, job):
        """Why this job's code cannot run here (then Invoke echoes), or None."""
        if job.package.s3_location:
            return f"the code is in S3 ({job.package.s3_location}), which this fake cannot read"
        if job.package.hot_dir and not os.path.isdir(job.package.hot_dir):
            return f"the hot-reload directory {job.package.hot_dir} does not exist"
        if job.runtime in NODE_RUNTIMES:
            if self.house.node is None:
                return "node was not found on PATH"
        elif job.runtime in CUSTOM_RUNTIMES:
            if not (job.package.is_zip or job.package.hot_dir):
                return ("a custom runtime runs the bootstrap executable of a zip (or of a layer), "
                        "and this code is not a zip")
        elif job.runtime not in PYTHON_RUNTIMES:
            return f"the runtime {job.runtime or '(none)'} cannot run here"
        if not (job.package.is_zip or job.package.hot_dir or job.package.is_text):
            return "the code is neither a zip archive nor source text"
        return None

    def invoke(self, job, payload, request_id, client_context=None, on_chunk=None):
        """Run one invocation to its end and return its Outcome. Raises TooManyRequestsException
        when the function's reserved concurrency is used up; handler faults are Outcomes. A
        streaming handler's chunks go to on_chunk as they come (or are gathered into the payload
        when there is none). After a cold start, the spare it used is replaced."""
        place = self.pool.admit(job)
        try:
            outcome = self.run(job, payload, request_id, client_context, on_chunk)
        finally:
            self.pool.leave(place)
        if outcome.cold:
            self.prewarm(job.runtime, job.memory)
        return outcome

    def run(self, job, payload, request_id, client_context, on_chunk, retried=False):
        started = time.monotonic()
        log = LogBuffer(request_id, job)
        reason = self.cannot_run(job)
        if reason:
            log.append(f"lambda_fake: echoing the payload because {reason}\n".encode())
            outcome = self.finish(job, request_id, log, started, None, None, payload, None)
            outcome.echo_reason = reason
            return outcome
        init_ms = None
        if job.package.hot_dir:         # edited files make a new key: old environments retire
            job.key = job.key + (tree_stamp(job.package.hot_dir),)
        message = invocation_message(request_id, job.invoked_arn, int(job.timeout * 1000),
                                     client_context, payload, job.trace_header)
        while True:
            env, cold, generation = self.pool.acquire(job.key, job.kind)
            if cold:
                break
            ending, lines = env.news()
            if not ending:
                log.append(lines)           # logged after its last answer: shown with this one
                break
            self.pool.discard(env)          # an error after its last answer ended it
            self.notes.append((job.function_name, lines.decode("utf-8", "replace")))
        if cold:                        # the invocation goes out right behind the load
            try:
                env, init_ms, init_error = self.load(job, log, env, generation, message)
            except LambdaError as error:
                if error.code == "ServiceException":
                    raise
                return self.finish(job, request_id, log, started, None, None,
                                   load_error_payload(error, f"RequestId: {request_id} Error: "),
                                   "Unhandled")
            if init_error is not None:
                self.pool.discard(env)
                return self.finish(job, request_id, log, started, env, init_ms, init_error,
                                   "Unhandled")
        deadline = time.monotonic() + job.allowed(job.timeout)
        if job.debug:
            log.append(b"lambda_fake: this function is debugged: its Timeout is suspended\n")
        chunks, content_type = [], None
        try:
            if not cold and not env.write(message, deadline):
                return self.time_out(job, request_id, log, started, env, init_ms)
            while True:
                frame = env.receive(deadline)
                if frame is None:
                    return self.time_out(job, request_id, log, started, env, init_ms)
                kind, data = frame
                if kind == b"L":
                    log.append(data)
                elif kind == b"C":
                    if on_chunk is not None:
                        on_chunk(data, content_type)
                    else:
                        chunks.append(data)
                elif kind == b"T":
                    content_type = data.decode("utf-8", "replace")
                elif kind == b"X":          # an error escaped the handler: the environment ends
                    self.pool.discard(env)
                    ending = json.loads(data)
                    if ending["requestId"] != request_id and not retried:   # after its last
                        self.notes.append((job.function_name,   # answer, before it read this
                                           log.text().partition("\n")[2]))
                        return self.run(job, payload, request_id, client_context, on_chunk,
                                        retried=True)
                    return self.finish(job, request_id, log, started, env, init_ms,
                                       json.dumps(ending["error"]).encode(), "Unhandled")
                elif kind in (b"R", b"E", b"S"):
                    self.pool.release(env)
                    error = "Unhandled" if kind == b"E" else None
                    outcome = self.finish(job, request_id, log, started, env, init_ms,
                                          b"".join(chunks) if kind == b"S" else data, error)
                    outcome.streamed = kind == b"S"
                    outcome.content_type = content_type
                    return outcome
        except WorkerDied:
            self.pool.discard(env)
            return self.finish(job, request_id, log, started, env, init_ms,
                               exit_error(request_id, env.process), "Unhandled")
        except BaseException:           # on_chunk's client went away: it is mid-answer
            self.pool.discard(env)
            raise

    def load(self, job, log, env, generation, invocation):
        """Load the job's function into `env`, a claimed spare, or into a new process started in
        the room that acquire() reserved (env None). The invocation message goes out in the same
        write as the load message (one round trip less), and is read once the function is
        loaded. Returns (environment, init ms, init error or None)."""
        reset = LambdaError("ServiceException", 500, "The server was reset during this invocation")
        kind = job.kind
        try:
            code_root = self.house.code_root()
            code_dir = unpack(job.package, code_root, job.runtime, job.handler)
            opt = self.layers_dir(code_root, job.layers)
            bootstrap = find_bootstrap(code_dir, opt) if kind[0] == "custom" else None
            if kind[0] != "custom":
                check_exec_wrapper(job.variables.get("AWS_LAMBDA_EXEC_WRAPPER"), code_dir, opt)
        except BaseException:
            if env is None:
                self.pool.unreserve()
            else:
                self.pool.discard(env)
            raise
        started = time.monotonic()
        if env is None:
            try:
                env = (self.start_custom(job, bootstrap, code_dir, opt) if kind[0] == "custom"
                       else self.house.launch(kind))
            except BaseException as error:
                self.pool.unreserve()
                if isinstance(error, (OSError, TypeError)):     # stopping (the workdir is
                    raise reset from None                       # gone), or cannot start
                raise
            if not self.pool.adopt(env, job.key, generation):
                env.kill()
                raise reset
        if env.tmpdir is None:
            try:
                env.tmpdir = tempfile.mkdtemp(prefix="tmp-", dir=self.house.root)
            except (OSError, TypeError):    # the workdir went with a stop
                self.pool.discard(env)
                raise reset from None
        try:
            header = self.load_header(job, env, code_dir, opt)
        except (OSError, TypeError):    # the workdir went with a stop, or no debugger port
            self.pool.discard(env)
            raise reset from None
        except BaseException:
            self.pool.discard(env)
            raise
        # An on-demand init that outlasts its 10 s is tried again by Lambda within the
        # invocation's Timeout: so it may take as long as the longer of the two.
        on_demand = bool(log.request_id)
        deadline = started + job.allowed(max(self.init_seconds, job.timeout) if on_demand
                                         else self.init_seconds)
        try:
            if "paths" in header and env.kind[0] == "node":     # node cannot mount: the zygote
                try:
                    self.house.the_zygote().give_paths(env.process.pid, {
                        "prepare": not env.prepared, "place": header.pop("paths")})
                except OSError as error:
                    return (env, (time.monotonic() - started) * 1000,
                            error_payload("Runtime.Unknown", f"lambda_fake: {error}"))
            load = worker_message(header, b"")
            if not env.write(load + invocation, deadline):
                raise WorkerDied()
            while True:
                frame = env.receive(deadline)
                if frame is None:
                    init_ms = (time.monotonic() - started) * 1000
                    report = (f"INIT_REPORT Init Duration: {init_ms:.2f} ms\tPhase: init\t"
                              "Status: timeout")
                    log.append(f"{report}\n".encode())
                    if not on_demand:
                        return env, init_ms, error_payload("Sandbox.Timedout", report)
                    message = f"Task timed out after {job.timeout:.2f} seconds"
                    log.append(f"{iso_timestamp()} {log.request_id} {message}\n".encode())
                    return env, init_ms, error_payload(
                        "Sandbox.Timedout", f"RequestId: {log.request_id} Error: {message}")
                kind, data = frame
                if kind == b"L":
                    log.append(data)
                elif kind == b"X":          # an error escaped the module while it loaded
                    return (env, (time.monotonic() - started) * 1000,
                            json.dumps(json.loads(data)["error"]).encode())
                elif kind == b"I":
                    init_ms = (time.monotonic() - started) * 1000
                    if data == b'{"module":true}':     # ES modules in use: spares warm
                        self.house.rehearse_modules = True  # their loader from now on
                    elif data != b"{}":
                        return env, init_ms, data
                    if not self.pool.loaded(env):       # a reset ended it meanwhile
                        raise WorkerDied()
                    return env, init_ms, None
        except WorkerDied:
            return (env, (time.monotonic() - started) * 1000,
                    exit_error(log.request_id or None, env.process))

    def debug(self, job, env, header):
        """Start debugging a function's new environment: a Node.js one started with the inspector
        (see Housekeeper.launch); a Python one gets debugpy (when the server's interpreter has
        it) or pdb on breakpoint(), through its load message; a custom runtime's bootstrap got a
        port in LAMBDA_FAKE_DEBUG_PORT. The server's log says how to attach."""
        if env.kind[0] == "python":         # a spare, or a new fork: debugged from its load
            kind = "debugpy" if self.house.debugpy() else "pdb"
            env.debug = {"kind": kind, "port": self.house.debug_port(kind, env), "waiting": False}
            header["debug"] = {"port": env.debug["port"], "wait": self.house.debug_break,
                               "debugpy": self.house.debugpy()}
        env.debug["runtime"] = job.runtime
        port = env.debug["port"]
        self.say(f"debugging {job.function_name}: " + {
            "inspector": f"Node.js inspector on 127.0.0.1:{port}; attach from VS Code "
                         f'({{"type": "node", "request": "attach", "port": {port}}}) '
                         "or chrome://inspect",
            "debugpy": f"debugpy on 127.0.0.1:{port}; attach from VS Code "
                       f'({{"type": "debugpy", "request": "attach", "connect": '
                       f'{{"host": "127.0.0.1", "port": {port}}}}})',
            "pdb": f"breakpoint() opens pdb on 127.0.0.1:{port}; attach with: nc 127.0.0.1 {port}",
            "custom": f"its bootstrap's debugger may listen on 127.0.0.1:{port} "
                      "(LAMBDA_FAKE_DEBUG_PORT), e.g. dlv exec --headless "
                      f"--listen=127.0.0.1:{port}",
        }[env.debug["kind"]] + "; its Timeout is suspended")

    def debugged(self):
        """The environments being debugged, for GET /_parlel/debug."""
        with self.pool.lock:
            return sorted(({"function": env.key[0].rsplit(":", 1)[1],
                            "runtime": env.debug.get("runtime"),
                            "port": env.debug["port"], "kind": env.debug["kind"],
                            "waiting": env.debug.get("waiting", False)}
                           for env in self.pool.live if env.debug and env.key),
                          key=lambda entry: (entry["function"], entry["port"]))

    def start_custom(self, job, bootstrap, code_dir, opt):
        """A custom runtime's environment: its bootstrap, started in its package's directory with
        its function's environment and a RuntimeApi of its own (AWS_LAMBDA_RUNTIME_API). With
        Lambda's paths, a shell holds it back until they are placed in its mount namespace."""
        root = self.house.workdir()
        settings = self.house.path_settings()
        debug = None
        if job.debug:                   # a port its own debugger may listen on
            debug = {"kind": "custom", "port": self.house.debug_port("custom"), "waiting": False}
        tmpdir = tempfile.mkdtemp(prefix="tmp-", dir=root)
        variables = self.environment(job, code_dir, opt, tmpdir)
        if debug:
            variables["LAMBDA_FAKE_DEBUG_PORT"] = str(debug["port"])
        requests_read, requests_write = os.pipe()
        results_read, results_write = os.pipe()
        api = RuntimeApi(requests_read, results_write)     # its ends are the RuntimeApi's
        variables["AWS_LAMBDA_RUNTIME_API"] = api.address
        argv, gate = [bootstrap], (None, None)
        if settings:                    # the bootstrap as the function sees it, behind a gate
            gate = os.pipe()
            seen = ("/var/task/bootstrap" if bootstrap.startswith(code_dir + os.sep)
                    else "/opt/bootstrap")
            argv = [*settings["unshare"], "/bin/sh", "-c",     # its stdin: the gate
                    'read -r _ && cd /var/task && unset PWD OLDPWD && exec "$0" </dev/null',
                    seen]
        try:
            process = Spawned(argv, cwd=code_dir, env=variables,
                              stdin=gate[0] if settings else subprocess.DEVNULL,
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                              start_new_session=True)
        except BaseException:
            for fd in (requests_write, results_read, gate[1]):
                if fd is not None:
                    os.close(fd)
            api.close()
            shutil.rmtree(tmpdir, ignore_errors=True)
            raise
        finally:
            if gate[0] is not None:
                os.close(gate[0])
        env = Environment(("custom", 0), process, requests_write, results_read, variables)
        env.tmpdir = tmpdir
        env.log_stream = variables["AWS_LAMBDA_LOG_STREAM_NAME"]
        env.debug = debug
        if debug:
            self.house.hold_debug_port(debug["port"], env)
        api.watch(process)
        if settings:
            try:
                self.house.the_zygote().give_paths(process.pid, {"prepare": True, "place": {
                    "task": code_dir, "runtime": root, "opt": opt}})
                os.write(gate[1], b"go\n")
            except OSError as error:
                env.kill()
                raise LambdaError("Runtime.Unknown", 200, f"lambda_fake: {error}") from None
            finally:
                os.close(gate[1])
        return env

    # -- Provisioned concurrency ------------------------------------------------------------

    def provide(self, function_name, wanted):
        """Make a function's provisioned concurrency what `wanted` says, (function, qualifier)
        -> [(Job, count)]: environments no longer wanted are unpinned, and the missing ones are
        loaded now, their init run before any invocation. Returns {target: init error payload}
        for the targets whose init failed."""
        wanted = {target: [(job, count) for job, count in jobs
                           if count > 0 and not self.cannot_run(job)]
                  for target, jobs in wanted.items()}
        for job, _ in (item for jobs in wanted.values() for item in jobs):
            if job.package.hot_dir:
                job.key = job.key + (tree_stamp(job.package.hot_dir),)
        keep = {(target, job.key) for target, jobs in wanted.items() for job, _ in jobs}
        with self.pool.lock:
            for target in [t for t in self.provisions if t[0] == function_name]:
                del self.provisions[target]
            self.provisions.update(wanted)
        self.pool.unpin(function_name, keep)
        failures = {}
        for target in wanted:
            error = self.top_up(target)
            if error is not None:
                failures[target] = error
        return failures

    def replace_provisioned(self, target):
        """A crash or a timeout ended a provisioned environment: another is loaded in its place,
        in the background. Called under pool.lock."""
        if target in self.provisions:
            threading.Thread(target=self.top_up, args=(target,), daemon=True).start()

    def top_up(self, target):
        """Load the environments a target misses, in parallel; at most max_environments are
        provisioned in all. Returns the first init error payload, or None."""
        with self.provision_lock:
            with self.pool.lock:
                jobs = list(self.provisions.get(target, ()))
                room = self.pool.max_environments - self.pool.pinned()
                missing = []
                for job, count in jobs:
                    wanted = min(count - self.pool.pinned(target, job.key), room)
                    room -= max(0, wanted)
                    missing += [job] * wanted
            errors = [None] * len(missing)

            def load_one(index, job):
                errors[index] = self.load_provisioned(job, target)

            threads = [threading.Thread(target=load_one, args=item, daemon=True)
                       for item in enumerate(missing)]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()
            return next((error for error in errors if error is not None), None)

    def load_provisioned(self, job, target):
        """One environment loaded with the job's function and no invocation, idle and kept for
        the target. Returns its init error payload, or None."""
        try:
            env, _, generation = self.pool.acquire(job.key, job.kind, False,
                                                   patience=INIT_TIMEOUT_SECONDS)
            env, _, error = self.load(job, LogBuffer("", job), env, generation, b"")
        except LambdaError as failure:
            if failure.code == "ServiceException":      # a reset, a stop, or no room: not an
                return None                             # init error of its function
            return load_error_payload(failure)
        if error is not None:
            self.pool.discard(env)
            return error
        self.pool.provisioned(env, target)
        return None

    def load_header(self, job, env, code_dir, opt):
        """The header of a load message: the function's environment as the environment sees
        it, with Lambda's paths the paths to place in its namespace, and its debugger's."""
        header = {"load": True, "length": 0, "env": {}}    # a custom runtime's: its process's
        if env.kind[0] != "custom":
            header["env"] = self.environment(job, code_dir, opt, env.tmpdir)
            if self.house.path_settings():      # Lambda's paths, in its mount namespace
                header["paths"] = {"task": code_dir, "runtime": self.house.root, "opt": opt}
                if env.kind[0] == "node":
                    header["paths"]["node_modules"] = self.node_modules(opt, job.runtime)
        if job.debug:
            self.debug(job, env, header)
        env.log_stream = header["env"].get("AWS_LAMBDA_LOG_STREAM_NAME") or env.log_stream
        return header

    def time_out(self, job, request_id, log, started, env, init_ms):
        self.pool.discard(env)
        message = f"Task timed out after {job.timeout:.2f} seconds"
        log.append(f"{iso_timestamp()} {request_id} {message}\n".encode())
        payload = error_payload("Sandbox.Timedout", f"RequestId: {request_id} Error: {message}")
        return self.finish(job, request_id, log, started, env, init_ms, payload, "Unhandled",
                           status="timeout")

    def finish(self, job, request_id, log, started, env, init_ms, payload, error, status=None):
        """Close the log (its END and REPORT lines) and wrap up the Outcome."""
        if env is not None and env.kind[0] == "custom":
            env.drained()
        if env is not None and env.stray:
            log.append(env.take_stray())
        log.close(error is not None,
                  duration_ms=(time.monotonic() - started) * 1000 - (init_ms or 0),
                  memory_mb=job.memory, used_mb=env.max_memory_mb() if env else 0,
                  init_ms=init_ms, status=status)
        outcome = Outcome(payload, error, log, job.version)
        outcome.cold = init_ms is not None
        outcome.log_stream = env.log_stream if env is not None else None
        return outcome

    def layers_dir(self, root, layers):
        """The /opt of a function: its layers unpacked in order, later ones over earlier ones."""
        if not layers:
            return None
        target = os.path.join(root, "opt-" + hashlib.sha256(
            "".join(p.hex for p in layers).encode()).hexdigest())
        if not os.path.isdir(target):
            staging = tempfile.mkdtemp(dir=root)
            for package in layers:
                if package.is_zip:
                    extract_zip(package.data, staging)
            settle(staging, target)
        return target

    def node_modules(self, opt, runtime):
        """With Lambda's paths, the /var/node_modules of a Node.js function, which ES modules reach
        by walking up from /var/task as CommonJS modules do: links to its layers' packages (in
        NODE_PATH's order, the first of a name wins) and to the runtime's @aws-sdk, as Lambda's
        nodejs18.x and later resolve ES module imports from layers. None when there is nothing."""
        major = runtime[len("nodejs"):].split(".")[0]
        sources = [("/var/runtime/node-runtime", os.path.join(self.house.root, "node-runtime"))]
        if opt:
            sources[:0] = [(f"/opt/{path}", os.path.join(opt, path)) for path in
                           (f"nodejs/node{major}/node_modules", "nodejs/node_modules")]
        found = [(seen, path, sorted(os.listdir(path))) for seen, path in sources
                 if os.path.isdir(path)]
        shared = {name for name, count in collections.Counter(
            name for _, _, names in found for name in names if name.startswith("@")).items()
            if count > 1}               # a scope in two places: merged package by package
        links = {}                      # name (or @scope/name) -> where the function sees it
        for seen, path, names in found:
            for name in names:
                for entry in ([f"{name}/{inner}" for inner in
                               sorted(os.listdir(os.path.join(path, name)))]
                              if name in shared else [name]):
                    links.setdefault(entry, f"{seen}/{entry}")
        if not links:
            return None
        target = os.path.join(self.house.root, "modules-" + hashlib.sha256(
            json.dumps(sorted(links.items())).encode()).hexdigest()[:32])
        if not os.path.isdir(target):
            staging = tempfile.mkdtemp(dir=self.house.root)
            for entry, seen in links.items():
                os.makedirs(os.path.dirname(os.path.join(staging, entry)), exist_ok=True)
                os.symlink(seen, os.path.join(staging, entry))
            settle(staging, target)
        return target

    def environment(self, job, code_dir, opt, tmp):
        """The sandbox's environment: Lambda's variables, the function's, PATH and HOME only, and
        TMPDIR: a temporary directory of this environment's own, as Lambda's /tmp is. Its paths
        are those the environment sees: Lambda's, where it has them."""
        root = self.house.root
        if self.house.path_settings():
            root, code_dir, opt = "/var/runtime", "/var/task", opt and "/opt"
        stream = new_log_stream(job.version)
        env = bare_environment()
        env.update(job.aws_endpoints)   # other local AWS services, as the server was given them
        env.update({
            "PATH": f"{opt}/bin:{env['PATH']}" if opt else env["PATH"],
            "TZ": ":UTC",
            "AWS_LAMBDA_FUNCTION_NAME": job.function_name,
            "AWS_LAMBDA_FUNCTION_VERSION": job.version,
            "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(job.memory),
            "AWS_LAMBDA_LOG_GROUP_NAME": job.log_group,
            "AWS_LAMBDA_LOG_STREAM_NAME": stream,
            "AWS_LAMBDA_INITIALIZATION_TYPE": job.initialization,
            "AWS_REGION": job.region,
            "AWS_DEFAULT_REGION": job.region,
            "AWS_ACCESS_KEY_ID": job.access_key,
            "AWS_SECRET_ACCESS_KEY": "test",
            "AWS_SESSION_TOKEN": "test",
            "AWS_ENDPOINT_URL_LAMBDA": job.endpoint_url,
            "LAMBDA_TASK_ROOT": code_dir,
            "LAMBDA_RUNTIME_DIR": root,
            "TMPDIR": tmp,
            "_HANDLER": job.handler,
            **LAMBDA_XRAY_VARIABLES,
        })
        if job.runtime not in CUSTOM_RUNTIMES:      # as AWS records a managed runtime's
            env.update(AWS_EXECUTION_ENV=f"AWS_Lambda_{job.runtime}", PWD=code_dir, SHLVL="0")
        if job.runtime in ("python3.12", "python3.13", "python3.14"):
            env["LC_CTYPE"] = "C.UTF-8"
        if job.application_log_level:   # the JSON format's; AWS sets neither for Text
            env.update(AWS_LAMBDA_LOG_FORMAT="JSON",
                       AWS_LAMBDA_LOG_LEVEL=job.application_log_level)
        node_path = []                  # as Lambda's: the layers', the runtime's SDK, the task
        env["LD_LIBRARY_PATH"] = ":".join([                                 # Lambda's, in
            *(() if job.runtime in CUSTOM_RUNTIMES else ("/var/lang/lib",)),   # its paths
            "/lib64", "/usr/lib64", root, f"{root}/lib", code_dir, f"{code_dir}/lib",
            *((f"{opt}/lib",) if opt else ())])
        if opt:
            env["LAMBDA_LAYERS_DIR"] = opt      # what Lambda mounts at /opt
            if job.runtime in NODE_RUNTIMES:
                major = job.runtime[len("nodejs"):].split(".")[0]
                node_path += [f"{opt}/nodejs/node{major}/node_modules",
                              f"{opt}/nodejs/node_modules"]
            else:
                env["PYTHONPATH"] = f"{opt}/python/lib/{job.runtime}/site-packages:{opt}/python"
        if job.runtime in NODE_RUNTIMES:
            if self.house.node_sdk:
                node_path.append(os.path.join(root, "node-runtime"))
            env["NODE_PATH"] = ":".join([*node_path, root, code_dir])
        env.update(job.variables)
        return env

    def prewarm(self, runtime, memory, count=SPARES_PER_KIND):
        """Keep spares for functions of this runtime and memory from now on (see
        Housekeeper.want_spares), when such functions can run here."""
        if not self.closed and self.runs_here(runtime) and runtime not in CUSTOM_RUNTIMES:
            self.house.want_spares(environment_kind(runtime, memory), count)

    def retire(self, function_name):
        """End the idle environments of a function (after an update or a delete): the
        housekeeper does, a moment later, so that their teardown (milliseconds of a core) does
        not compete with the invocation that usually follows an update."""
        self.pool.retire(function_name)

    def clear(self):
        with self.pool.lock:
            self.provisions.clear()
        self.house.clear()

    def stop(self):
        self.house.stop()


def tree_stamp(directory):
    """The newest modification time under a directory (node_modules and .git aside)."""
    newest = 0.0
    for root, dirs, files in os.walk(directory):
        dirs[:] = [d for d in dirs if d not in ("node_modules", ".git", "__pycache__")]
        for name in files:
            try:
                newest = max(newest, os.stat(os.path.join(root, name)).st_mtime_ns)
            except OSError:
                pass
    return newest


class LogBuffer:
    """An invocation's log, kept within MAX_LOG_BYTES_PER_INVOKE however much a handler prints:
    its first half and its last half, with a note of what was dropped between them. The text,
    with its START, END and REPORT lines, is made when text() is called: most invocations are
    never asked for their log."""

    def __init__(self, request_id, job):
        self.request_id = request_id
        self.version = job.version
        self.system_level = job.system_log_level    # with LoggingConfig's JSON format, else None
        self.function_arn = job.key[0]
        self.runtime, self.region, self.memory = job.runtime, job.region, job.memory
        self.started = time.time()
        self.failed = False
        self.head = bytearray()
        self.tail = collections.deque()
        self.tail_size = 0
        self.dropped = 0
        self.report = None              # the REPORT line's figures, once the invocation ends

    def append(self, data):
        half = MAX_LOG_BYTES_PER_INVOKE // 2
        room = half - len(self.head)
        if room > 0:
            self.head += data[:room]
            data = data[room:]
        if not data:
            return
        self.tail.append(bytes(data))
        self.tail_size += len(data)
        while self.tail_size > half:
            excess = self.tail_size - half
            oldest = self.tail[0]
            if len(oldest) <= excess:
                self.tail.popleft()
                self.tail_size -= len(oldest)
                self.dropped += len(oldest)
            else:
                self.tail[0] = oldest[excess:]
                self.tail_size -= excess
                self.dropped += excess

    def size(self):
        return len(self.head) + self.tail_size

    def init_start(self):
        """The line an on-demand cold start's log begins with in CloudWatch Logs (LogType Tail
        leaves it out, as AWS's does): INIT_START, or platform.initStart; else ""."""
        if self.report is None or self.report["init_ms"] is None:
            return ""
        if not self.system_level:
            return (f"INIT_START Runtime Version: {runtime_version(self.runtime)}\tRuntime "
                    f"Version ARN: {runtime_version_arn(self.region, self.runtime)}\n")
        if not self.shows("INFO"):
            return ""
        return platform_line(self.started, "platform.initStart", {
            "initializationType": "on-demand", "phase": "init",
            "runtimeVersion": runtime_version(self.runtime),
            "runtimeVersionArn": runtime_version_arn(self.region, self.runtime),
            "functionName": self.function_arn.split(":")[6], "functionVersion": self.version,
            "instanceMaxMemory": self.memory * 1024 * 1024})

    def close(self, failed, **figures):
        """Record whether the invocation failed, and what the REPORT line says: duration_ms,
        memory_mb, used_mb, init_ms, status."""
        self.failed = failed
        self.report = figures
        self.ended = time.time()

    def text(self):
        """The log as it reads (made anew on each call: a copy kept here would double the memory
        of the invocation records that hold the buffer)."""
        note = (f"\n[lambda_fake: {self.dropped} bytes of output left out]\n".encode()
                if self.dropped else b"")
        output = (bytes(self.head) + note + b"".join(self.tail)).decode("utf-8", "replace")
        if self.system_level:
            return self.json_text(output)
        lines = [f"START RequestId: {self.request_id} Version: {self.version}\n", output]
        if self.report is not None:
            lines.append(f"END RequestId: {self.request_id}\n"
                         f"{report_line(self.request_id, **self.report)}\n")
        return "".join(lines)

    def shows(self, level):
        """Whether a platform line of this level is at or above the SystemLogLevel."""
        return SYSTEM_LOG_LEVELS.index(level) >= SYSTEM_LOG_LEVELS.index(self.system_level)

    def json_text(self, output):
        """The log with LoggingConfig's JSON format: Lambda's platform.start and platform.report
        lines (as JSON), those below the SystemLogLevel left out, around the output."""
        lines = []
        if self.shows("INFO"):
            lines.append(platform_line(self.started, "platform.start", {
                "requestId": self.request_id, "functionArn": self.function_arn,
                "version": self.version}))
        lines.append(output)
        if self.report is not None:
            status = self.report["status"] or ("error" if self.failed else "success")
            if self.shows("INFO" if status == "success" else "WARN"):
                lines.append(platform_line(self.ended, "platform.report", {
                    "requestId": self.request_id, "metrics": report_metrics(**self.report),
                    "status": status}))
        return "".join(lines)


SYSTEM_LOG_LEVELS = ["DEBUG", "INFO", "WARN"]     # LoggingConfig's SystemLogLevel, lowest first


def platform_line(seconds, kind, record):
    """One of Lambda's own log lines in the JSON log format."""
    return json.dumps({"time": iso_timestamp(seconds), "type": kind, "record": record},
                      separators=(",", ":")) + "\n"


def report_metrics(duration_ms, memory_mb, used_mb, init_ms, status):
    """platform.report's metrics: the REPORT line's figures."""
    metrics = {"durationMs": round(duration_ms, 3),
               "billedDurationMs": max(1, int(duration_ms + 0.999999)),
               "memorySizeMB": memory_mb, "maxMemoryUsedMB": used_mb}
    if init_ms is not None:
        metrics["initDurationMs"] = round(init_ms, 3)
    return metrics


def report_line(request_id, duration_ms, memory_mb, used_mb, init_ms, status):
    """The REPORT line that ends an invocation's log, as Lambda writes it."""
    line = (f"REPORT RequestId: {request_id}\tDuration: {duration_ms:.2f} ms\t"
            f"Billed Duration: {max(1, int(duration_ms + 0.999999))} ms\t"
            f"Memory Size: {memory_mb} MB\tMax Memory Used: {used_mb} MB\t")
    if init_ms is not None:
        line += f"Init Duration: {init_ms:.2f} ms\t"
    if status:
        line += f"Status: {status}\t"
    return line


def new_log_stream(version):
    """A log stream's name, as Lambda names an environment's: date/[version]random."""
    return time.strftime("%Y/%m/%d/", time.gmtime()) + f"[{version}]" + os.urandom(16).hex()


def error_payload(error_type, message):
    return json.dumps({"errorType": error_type, "errorMessage": message},
                      separators=(",", ":")).encode()


def load_error_payload(error, prefix=""):
    """The error payload of a function its environment could not load (a LambdaError): the
    runtime's own error, its message after `prefix`, or else Runtime.ImportModuleError."""
    if error.code.startswith("Runtime."):
        return error_payload(error.code, prefix + error.message)
    return error_payload("Runtime.ImportModuleError", error.message)


# How Lambda (whose runtime manager is written in Go) names the signal that ended a runtime.
SIGNAL_WORDS = {signal.SIGKILL: "killed", signal.SIGSEGV: "segmentation fault",
                signal.SIGABRT: "aborted",
                signal.SIGTERM: "terminated", signal.SIGBUS: "bus error",
                signal.SIGILL: "illegal instruction", signal.SIGFPE: "floating point exception"}


def find_bootstrap(code_dir, opt):
    """A custom runtime's bootstrap: the package's, else a layer's; AWS's init error when there
    is none, or when it is not executable."""
    for folder, seen in ((code_dir, "/var/task"), (opt, "/opt")):
        path = os.path.join(folder or "", "bootstrap")
        if folder and os.path.isfile(path):
            if not os.access(path, os.X_OK):
                raise LambdaError("Runtime.InvalidEntrypoint", 200,
                                  f"fork/exec {seen}/bootstrap: permission denied")
            return path
    raise LambdaError("Runtime.InvalidEntrypoint", 200,
                      "Couldn't find valid bootstrap(s): [/var/task/bootstrap /opt/bootstrap]")


def check_exec_wrapper(path, code_dir, opt):
    """A managed runtime starts through AWS_LAMBDA_EXEC_WRAPPER: one that is not there (or
    cannot run) ends its init as the shell's exec would, with exit status 127 (or 126). (One that
    is there is not run here: see the README.)"""
    if not path:
        return
    for prefix, directory in (("/var/task/", code_dir), ("/opt/", opt)):
        if path.startswith(prefix):
            path = os.path.join(directory or "/nonexistent", path[len(prefix):])
    if not os.path.isfile(path) or not os.access(path, os.X_OK):
        status = 126 if os.path.isfile(path) else 127
        raise LambdaError("Runtime.ExitError", 200,
                          f"Runtime exited with error: exit status {status}")


def exit_error(request_id, process):
    """Runtime.ExitError as Lambda reports a process that ended mid-invocation."""
    code = process.status(2)
    if code is None or code == 0:
        reason = "Runtime exited without providing a reason"
    elif code < 0:
        name = SIGNAL_WORDS.get(-code) or signal.Signals(-code).name.lower()[3:]
        reason = f"Runtime exited with error: signal: {name}"
    else:
        reason = f"Runtime exited with error: exit status {code}"
    prefix = f"RequestId: {request_id} Error: " if request_id else ""
    return error_payload("Runtime.ExitError", prefix + reason)


# ----------------------------------------------------------------------------------------------
# 9. Invocations
# ----------------------------------------------------------------------------------------------
# What an invocation needs beyond an environment, however it starts (Invoke, the async queue,
# destinations, function URLs, a durable execution's chained invokes): invocation_job() is the one
# way in, from a function reference to a Job, with none of the HTTP-level checks; run_invocation()
# runs it and keeps its record. Then Event delivery and destinations, function URLs as they are
# served, and the driver of durable executions.

def invocation_job(store, ref, qualifier=None, payload=b"{}", invocation_type="RequestResponse",
                   durable_name=None):
    """The Job of an invocation of `ref` (a name, an ARN or a partial ARN) at `qualifier`, an
    alias's routing weights applied; a durable function's execution starts here. Raises AWS's
    errors for a function, version or alias that is not there."""
    name, qualified = parse_function_ref(store, ref)
    qualifier = qualifier or qualified
    with store.lock:
        function = find_function(store, name, qualifier or "$LATEST")
        check_settled(store, function, "invoke")
        version, config, alias = find_version(store, function, qualifier)
        if alias:
            version = pick_weighted_version(function.aliases[alias], version)
            config = function.versions[version]
        job = Job(store, function, version, config, function.packages[version], qualifier)
        if config.get("DurableConfig") and invocation_type != "DryRun":
            job.durable = start_durable_execution(store, job, payload, durable_name)
    return job


def run_invocation(store, job, payload, request_id, context=None, invocation_type="RequestResponse",
                   on_chunk=None):
    """Run a Job to its end; record it for /_parlel/logs (and its durable execution). A throttle
    raises TooManyRequestsException."""
    if job.durable is not None:
        return drive_durable_execution(store, job, request_id)
    started = time.time()
    try:
        outcome = store.runner.invoke(job, payload, request_id, context, on_chunk)
    except LambdaError:
        record_invocation(store, job, request_id, invocation_type, started, payload, None)
        raise
    if len(outcome.payload) > MAX_RESPONSE_BYTES:
        outcome.payload = json.dumps({"errorMessage": "Response payload size exceeded maximum "
                                                      f"allowed payload size ({MAX_RESPONSE_BYTES} "
                                                      "bytes).",
                                      "errorType": "Function.ResponseSizeTooLarge"}).encode()
        outcome.function_error = "Unhandled"
    record_invocation(store, job, request_id, invocation_type, started, payload, outcome)
    ship_logs(store, job, outcome)
    explain_outcome(store, job, outcome)
    return outcome


def explain_outcome(store, job, outcome):
    """Tell a newcomer, once, on the server's log what went wrong and what to do; and tell of
    every environment that an error ended after its last answer (with the lines it logged)."""
    while store.runner.notes:
        try:
            name, words = store.runner.notes.popleft()
        except IndexError:              # another invocation told it
            break
        say(store, "warning", f"function {name}: an error after an invocation's answer ended "
            f"its environment; it logged: {words.strip() or '(nothing)'}")
    if outcome.echo_reason:
        say(store, "warning",
            f"function {job.function_name}: {outcome.echo_reason}, so Invoke echoes the "
            "payload; use a nodejs or python runtime with zip or source code to run it.",
            once=(job.function_name, outcome.echo_reason))
    elif outcome.function_error:
        try:
            error = json.loads(outcome.payload)
        except ValueError:
            error = {}
        if isinstance(error, dict) and error.get("errorType") in ("Runtime.ImportModuleError",
                                                                  "Runtime.HandlerNotFound",
                                                                  "Runtime.MalformedHandlerName"):
            message = str(error.get("errorMessage", "")).splitlines()[0]
            say(store, "warning",
                f"function {job.function_name}: handler {job.handler!r} could not be loaded "
                f"({message}); {load_advice(store, job.runtime, message)}",
                once=(job.function_name, job.key))
    if store.log_level == "debug":
        say(store, "debug",
            f"invoked {job.function_name}:{job.version} -> {outcome.function_error or 'Success'}")


def load_advice(store, runtime, message):
    """What to do about a handler that could not be loaded, from its error message."""
    missing = re.search(r"No module named '([^'.]+)", message)
    if missing and runtime in PYTHON_RUNTIMES:
        name = missing.group(1)
        if name in PYTHON_RUNTIME_MODULES:
            return (f"{name} is part of Lambda's Python runtime, but the Python this server runs "
                    f"with ({sys.executable}) does not have it: pip install boto3 there.")
        return (f"Lambda's Python runtime has the standard library and boto3 only, and so do "
                f"handlers here (not the server's site-packages): bundle {name} in the package "
                "(pip install --target) or in a layer (python/).")
    missing = re.search(r"Cannot find (?:module|package) '([^']+)'", message)
    if missing and not missing.group(1).startswith((".", "/")) and runtime in NODE_RUNTIMES:
        name = missing.group(1)
        if name.startswith("@aws-sdk/"):
            where = store.runner.house.node_sdk
            found = f"({where} has no {name})" if where else "(none was found)"
            return (f"Lambda's {runtime} runtime ships the AWS SDK v3; here handlers find it in "
                    f"the global npm packages {found}: npm install -g {name}, or point "
                    "LAMBDA_FAKE_NODE_SDK at a node_modules that has it, and restart.")
        return (f"bundle {name} in the package's node_modules or in a layer "
                "(nodejs/node_modules/).")
    return "check Handler (file.export, e.g. index.handler) against the files in the package."


def record_invocation(store, job, request_id, invocation_type, started, payload, outcome):
    """Keep a bounded record of an invocation, readable at GET /_parlel/logs."""
    record = Invocation(request_id, job.function_name, job.version, invocation_type, started,
                        payload, outcome)
    record.account, record.region = store.account, store.region
    with store.lock:
        store.invocations.append(record)


class Invocation:
    """One invocation as GET /_parlel/logs shows it. Its text (timestamp, payloads, a short log)
    is made when it is read, off the invocation's own path; a longer log is cut to its tail at
    once, so that reading many records never holds two copies of many long logs."""

    def __init__(self, request_id, function_name, version, invocation_type, started, payload,
                 outcome):
        self.request_id = request_id
        self.function_name = function_name
        self.account = self.region = None   # of its function, set by record_invocation
        self.version = version
        self.invocation_type = invocation_type
        self.started = started
        self.duration_ms = round((time.time() - started) * 1000, 2)
        self.payload = payload[:MAX_RECORDED_PAYLOAD_BYTES]
        self.status = "Throttled" if outcome is None else (outcome.function_error or "Success")
        self.response = self.log = None
        if outcome is not None:
            self.response = outcome.payload[:MAX_RECORDED_PAYLOAD_BYTES]
            buffer = outcome.log_buffer     # kept as is when small: the usual few lines
            small = buffer is not None and buffer.size() <= LOG_TAIL_BYTES
            self.log = buffer if small else outcome.log[-MAX_RECORDED_LOG_CHARS:]

    def view(self):
        entry = {"requestId": self.request_id, "functionName": self.function_name,
                 "account": self.account, "region": self.region,
                 "version": self.version, "invocationType": self.invocation_type,
                 "timestamp": iso_timestamp(self.started), "durationMs": self.duration_ms,
                 "status": self.status, "payload": self.payload.decode("utf-8", "replace")}
        if self.response is not None:
            entry["response"] = self.response.decode("utf-8", "replace")
            log = self.log if isinstance(self.log, str) else self.log.text()
            entry["log"] = log[-MAX_RECORDED_LOG_CHARS:]
        return entry


# -- Event delivery and destinations -----------------------------------------------------------

def start_in_background(store, job, payload):
    """An Event invocation: answered at once, delivered on a thread of its own."""
    request_id = new_uuid()
    threading.Thread(target=deliver_event, args=(store, job, payload, request_id),
                     daemon=True).start()
    return request_id


def deliver_event(store, job, payload, request_id):
    """Run an Event invocation as Lambda's async queue does: function errors are retried per the
    async configuration (default 2 retries), throttles until the event is too old; then the
    outcome goes to the OnSuccess / OnFailure destination and, on failure, the dead-letter queue.
    Retries wait `store.async_retry_delay` seconds (AWS waits minutes)."""
    generation = store.generation
    max_retries = job.async_config.get("MaximumRetryAttempts", 2)
    max_age = job.async_config.get("MaximumEventAgeInSeconds", 21600)
    queued = time.monotonic()
    attempts = 0
    outcome = None
    while True:
        if job.reserved == 0:           # it can never run: Lambda gives up at once
            condition = "ZeroReservedConcurrency"
            break
        try:
            attempts += 1
            outcome = run_invocation(store, job, payload, request_id, invocation_type="Event")
            if outcome.function_error is None:
                condition = "Success"
                break
            if attempts > max_retries:
                condition = "RetriesExhausted"
                break
        except LambdaError:             # throttled: retried, not counted as an attempt
            attempts -= 1
            outcome = None
        if time.monotonic() - queued + store.async_retry_delay > max_age:
            condition = "EventAgeExceeded"
            break
        time.sleep(store.async_retry_delay)
        if store.generation != generation:
            return                      # the server was reset or stopped meanwhile
    send_to_destinations(store, job, payload, request_id, outcome, condition,
                         attempts if condition == "ZeroReservedConcurrency" else max(attempts, 1))


def send_to_destinations(store, job, payload, request_id, outcome, condition, attempts):
    """Deliver the destination record (and, on failure, the event to the dead-letter queue):
    Lambda destinations are invoked; others are recorded at GET /_parlel/destinations."""
    side = "OnSuccess" if condition == "Success" else "OnFailure"
    target = (((job.async_config.get("DestinationConfig") or {}).get(side))
              or {}).get("Destination")
    record = {"version": "1.0", "timestamp": iso_timestamp(),
              "requestContext": {"requestId": request_id, "functionArn": job.function_arn,
                                 "condition": condition, "approximateInvokeCount": attempts},
              "requestPayload": json.loads(payload)}
    if condition != "ZeroReservedConcurrency":      # else it never ran
        record["responseContext"] = {"statusCode": 200, "executedVersion": job.version}
    if outcome is not None:
        if outcome.function_error:
            record["responseContext"]["functionError"] = outcome.function_error
        try:
            record["responsePayload"] = json.loads(outcome.payload)
        except ValueError:
            record["responsePayload"] = outcome.payload.decode("utf-8", "replace")
    deliveries = [(target, record, None)] if target else []
    if condition != "Success" and job.dead_letter:      # the event, the error in its attributes
        answer = record.get("responsePayload")
        error = answer.get("errorMessage") if isinstance(answer, dict) else answer
        deliveries.append((job.dead_letter, json.loads(payload), {
            "RequestID": ("String", request_id), "ErrorCode": ("Number", "200"),
            "ErrorMessage": ("String", str(error or condition))}))
    for arn, message, attributes in deliveries:
        if arn.split(":")[2] == "lambda":
            body = json.dumps(message).encode()
            try:
                start_in_background(store, invocation_job(store, arn, None, body, "Event"), body)
                continue
            except LambdaError:
                pass                    # the destination function is gone: record the attempt
        deliver_elsewhere(store, arn, message, condition, job.function_arn, request_id,
                          f"aws/lambda/async/{job.function_name}", attributes)


FORM = {"Content-Type": "application/x-www-form-urlencoded"}


def query_form(form, prefix, attributes):
    """A query-protocol request body: `form`, and message `attributes` {name: (type, value)} as
    <prefix>.N.Name, <prefix>.N.Value.DataType and <prefix>.N.Value.StringValue."""
    for number, (name, (kind, value)) in enumerate((attributes or {}).items(), 1):
        form.update({f"{prefix}.{number}.Name": name, f"{prefix}.{number}.Value.DataType": kind,
                     f"{prefix}.{number}.Value.StringValue": value})
    return urllib.parse.urlencode(form).encode()


def sqs_delivery(endpoint, arn, text, condition, function, place, attributes):
    queue_url = f"{endpoint}/{arn.split(':')[4]}/{arn.split(':')[5]}"
    return "POST", endpoint + "/", query_form({
        "Action": "SendMessage", "Version": "2012-11-05", "QueueUrl": queue_url,
        "MessageBody": text}, "MessageAttribute", attributes), FORM


def sns_delivery(endpoint, arn, text, condition, function, place, attributes):
    return "POST", endpoint + "/", query_form({
        "Action": "Publish", "Version": "2010-03-31", "TopicArn": arn, "Message": text},
        "MessageAttributes.entry", attributes), FORM


def eventbridge_delivery(endpoint, arn, text, condition, function, place, attributes):
    outcome = "Success" if condition == "Success" else "Failure"
    return "POST", endpoint + "/", json.dumps({"Entries": [{
        "Source": "lambda", "Resources": [arn, function], "EventBusName": arn, "Detail": text,
        "DetailType": f"Lambda Function Invocation Result - {outcome}"}]}).encode(), {
        "X-Amz-Target": "AWSEvents.PutEvents", "Content-Type": "application/x-amz-json-1.1"}


def s3_delivery(endpoint, arn, text, condition, function, place, attributes):
    """An object in the bucket, its key as Lambda names it: `place` (aws/lambda/async/<function>
    or aws/lambda/<mapping UUID>/<shard>), the date, the time and a UUID."""
    key = f"{place}/{time.strftime('%Y/%m/%d/%Y-%m-%dT%H.%M.%S', time.gmtime())}-{new_uuid()}"
    return "PUT", f"{endpoint}/{arn.split(':')[5]}/{key}", text.encode(), {
        "Content-Type": "application/json"}


# A destination's service (from its ARN) -> the suffix of its endpoint variable, and the
# request (method, URL, body, headers) that delivers a record there.
DELIVERY_SERVICES = {"sqs": ("SQS", sqs_delivery), "sns": ("SNS", sns_delivery),
                     "events": ("EVENTBRIDGE", eventbridge_delivery), "s3": ("S3", s3_delivery)}
DELIVERY_ATTEMPTS = 3                  # our own: a local service that is down is tried again


def deliver_elsewhere(store, arn, message, condition, function, request_id, place,
                      attributes=None):
    """Record a destination record (or a dead-letter event, with its message `attributes`
    {name: (type, value)}) at /_parlel/destinations, and send it to SQS, SNS, EventBridge or S3
    when that service has an endpoint, tried a few times; the server's log says when it could
    not be."""
    entry = {"destination": arn, "timestamp": iso_timestamp(), "functionArn": function,
             "requestId": request_id, "message": message}
    if attributes:
        entry["messageAttributes"] = {name: value for name, (_, value) in attributes.items()}
    with store.lock:
        store.deliveries.append(entry)
    variable, delivery = DELIVERY_SERVICES.get(arn.split(":")[2], (None, None))
    endpoint = variable and endpoint_of(store, variable)
    if not endpoint:
        return
    endpoint = endpoint.rstrip("/")
    request = delivery(endpoint, arn, json.dumps(message), condition, function, place,
                       attributes)
    for attempt in range(DELIVERY_ATTEMPTS):
        try:
            if aws_request(store, variable, *request)[0] == 200:
                return
        except OSError:
            pass
        time.sleep(0.2 * 2 ** attempt)
    say(store, "warning", f"the destination {arn} could not be reached at {endpoint}; the "
                          "record is at /_parlel/destinations")


def log_tail(outcome):
    """X-Amz-Log-Result (and InvokeComplete's LogResult): the log's last 4 KB, base64."""
    return base64.b64encode(outcome.log.encode()[-LOG_TAIL_BYTES:]).decode()


# -- Function URLs, served ---------------------------------------------------------------------
# An HTTP request to a URL becomes an invocation with Lambda's payload
# format 2.0 event, and the result becomes the HTTP response as Lambda maps it.

TEXT_CONTENT_TYPES = ("text/", "application/json", "application/xml", "application/javascript",
                      "application/x-www-form-urlencoded", "application/graphql")
# What a URL answers when it does not run the function, or the function fails, as AWS recorded
# it: status, body, content type, x-amzn-ErrorType.
URL_ERRORS = {
    "no such url": (403, b'{"Message":null}', "application/json", "AccessDeniedException"),
    "forbidden": (403, b'{"Message":"Forbidden. For troubleshooting Function URL authorization '
                       b'issues, see: https://docs.aws.amazon.com/lambda/latest/dg/urls-auth.html"}',
                  "application/json", "AccessDeniedException"),
    "too large": (413, b'{"Message":"Request Entity Too Large"}', "application/json", None),
    "throttled": (429, b'{"Message":"Too Many Requests"}', "application/json",
                  "TooManyRequestsException"),
    "failed": (502, b"Internal Server Error", "text/plain; charset=utf-8", None),
}


def url_error(name):
    status, body, content_type, code = URL_ERRORS[name]
    return Reply(status, {"x-amzn-ErrorType": code} if code else {}, body, content_type)


def url_error_for(error):
    """What a URL answers when its invocation could not run: a throttle, or a failure."""
    return url_error("throttled" if error.status == 429 else "failed")


def host_name(host):
    """The name in a Host header, lowercase, without its port: `127.0.0.1`, `[::1]`, `localhost`."""
    host = host.lower()
    if host.startswith("["):
        return host.partition("]")[0] + "]"
    return host.partition(":")[0].rstrip(".")


HOP_BY_HOP_HEADERS = frozenset(("connection", "keep-alive", "proxy-connection", "te", "trailer",
                                "upgrade"))


def function_url_event(store, url_id, request):
    """Lambda's payload format 2.0 for one HTTP request (request: method, path, query, headers,
    body, source_ip)."""
    headers, cookies = {}, []
    for name, value in request["headers"]:
        name = name.lower()
        if name in HOP_BY_HOP_HEADERS:  # the connection's, not the request's: Lambda drops them
            continue
        if name == "cookie":
            cookies.extend(c.strip() for c in value.split(";") if c.strip())
        else:
            headers[name] = f"{headers[name]},{value}" if name in headers else value
    # The domain is the one the client used, and Lambda adds the x-forwarded-* and trace headers.
    domain = host_name(headers.get("host", "")) or f"{url_id}.lambda-url.{store.region}.on.aws"
    now = time.time()
    headers.update({"x-forwarded-for": request["source_ip"], "x-forwarded-proto": "http",
                    "x-forwarded-port": str(request["port"]),
                    "x-amzn-trace-id": f"Root=1-{int(now):08x}-{os.urandom(12).hex()}"})
    event = {"version": "2.0", "routeKey": "$default", "rawPath": request["path"],
             "rawQueryString": request["query"], "headers": headers,
             "requestContext": {
                 "accountId": "anonymous", "apiId": url_id, "domainName": domain,
                 "domainPrefix": domain.split(".")[0],
                 "http": {"method": request["method"], "path": request["path"],
                          "protocol": "HTTP/1.1",
                          "sourceIp": request["source_ip"],
                          "userAgent": headers.get("user-agent", "")},
                 "requestId": new_uuid(), "routeKey": "$default", "stage": "$default",
                 "time": time.strftime("%d/%b/%Y:%H:%M:%S +0000", time.gmtime(now)),
                 "timeEpoch": int(now * 1000)},
             "isBase64Encoded": False}
    if cookies:
        event["cookies"] = cookies
    if request["query"]:
        parameters = {}
        for key, value in urllib.parse.parse_qsl(request["query"], keep_blank_values=True):
            parameters[key] = f"{parameters[key]},{value}" if key in parameters else value
        event["queryStringParameters"] = parameters
    if request["body"]:
        content_type = headers.get("content-type", "")
        if content_type.startswith(TEXT_CONTENT_TYPES) or not content_type:
            try:
                event["body"] = request["body"].decode("utf-8")
            except UnicodeDecodeError:
                pass
        if "body" not in event:
            event["body"] = base64.b64encode(request["body"]).decode()
            event["isBase64Encoded"] = True
    return event


def function_url_response(payload):
    """The HTTP response Lambda makes of a URL invocation's result: a {statusCode, headers, body,
    isBase64Encoded, cookies} object; a string as its text; any other JSON value, compact, as a
    200 application/json body; a result that is not JSON, as it is."""
    try:
        result = json.loads(payload)
    except ValueError:
        return Reply(200, {}, payload, "application/json")
    if not isinstance(result, dict) or "statusCode" not in result:
        body = result if isinstance(result, str) else compact_json(result)
        return Reply(200, {}, body.encode(), "application/json")
    try:
        status = int(result["statusCode"])
        headers = {str(k): str(v) for k, v in (result.get("headers") or {}).items()}
        body = result.get("body") or ""
        if not isinstance(body, str):
            body = compact_json(body)
        data = base64.b64decode(body) if result.get("isBase64Encoded") else body.encode()
    except (TypeError, ValueError, AttributeError, binascii.Error):
        return url_error("failed")
    content_type = "application/json"
    for name in [name for name in headers if name.lower() == "content-type"]:   # any case
        content_type = headers.pop(name)
    reply = Reply(status, headers, data, content_type)
    reply.cookies = [str(c) for c in result.get("cookies") or []]
    return reply


def compact_json(value):
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


def cors_headers(cors, origin, preflight):
    """The CORS response headers a URL's Cors configuration gives a request from `origin`."""
    allowed = cors.get("AllowOrigins") or []
    if not origin or not ("*" in allowed or origin in allowed):
        return {}
    headers = {"Access-Control-Allow-Origin": ("*" if "*" in allowed
                                               and not cors.get("AllowCredentials") else origin)}
    if cors.get("AllowCredentials"):
        headers["Access-Control-Allow-Credentials"] = "true"
    if preflight:
        if cors.get("AllowMethods"):
            headers["Access-Control-Allow-Methods"] = ",".join(cors["AllowMethods"])
        if cors.get("AllowHeaders"):
            headers["Access-Control-Allow-Headers"] = ",".join(cors["AllowHeaders"])
        if cors.get("MaxAge"):
            headers["Access-Control-Max-Age"] = str(cors["MaxAge"])
    elif cors.get("ExposeHeaders"):
        headers["Access-Control-Expose-Headers"] = ",".join(cors["ExposeHeaders"])
    return headers


def serve_function_url(store, url_id, request):
    """Answer an HTTP request to a function URL (the fake's data plane for URLs), its
    x-amzn-RequestId the invocation's."""
    request_id = new_uuid()
    reply = answer_function_url(store, url_id, request, request_id)
    reply.headers["x-amzn-RequestId"] = request_id
    return reply


def answer_function_url(store, url_id, request, request_id):
    with store.lock:
        if url_id not in store.function_urls:
            return url_error("no such url")
        name, qualifier = store.function_urls[url_id]
        function = store.functions.get(name)
        config = function and function.url_configs.get(qualifier or "")
        if not config or (qualifier and qualifier not in function.aliases):
            return url_error("forbidden")       # the alias it served was deleted
        config = copied(config)
    header_map = {k.lower(): v for k, v in request["headers"]}
    origin = header_map.get("origin")
    cors = config.get("Cors")
    if cors and request["method"] == "OPTIONS" and "access-control-request-method" in header_map:
        return Reply(200, cors_headers(cors, origin, preflight=True), b"", "text/plain")
    if config["AuthType"] == "AWS_IAM" and not header_map.get("authorization", "").startswith(
            "AWS4-HMAC-SHA256 "):
        return url_error("forbidden")
    payload = json.dumps(function_url_event(store, url_id, request)).encode()
    if len(payload) > MAX_SYNC_PAYLOAD_BYTES:
        return url_error("too large")
    extra = cors_headers(cors, origin, preflight=False) if cors else {}
    try:
        job = invocation_job(store, name, qualifier, payload)
        if config.get("InvokeMode") == "RESPONSE_STREAM":
            return stream_function_url(store, job, payload, extra, request_id)
        outcome = run_invocation(store, job, payload, request_id, invocation_type="FunctionUrl")
    except LambdaError as error:
        return url_error_for(error)
    reply = (url_error("failed") if outcome.function_error
             else function_url_response(outcome.payload))
    reply.headers.update(extra)
    return reply


HTTP_PRELUDE_TYPE = "application/vnd.awslambda.http-integration-response"


def stream_function_url(store, job, payload, extra_headers, request_id):
    """A RESPONSE_STREAM URL: the handler's writes go out as they come. A handler that opens with
    awslambda.HttpResponseStream.from(stream, {statusCode, headers, cookies}) sets the status and
    headers; a handler that does not stream has its result sent as it is, not mapped as a
    buffered URL maps it (as AWS records it)."""
    reply = StreamReply(200, dict(extra_headers), "application/octet-stream", None)

    def produce(emit):
        prelude = bytearray()
        reading_prelude = [True]

        def chunk(data, content_type):
            if content_type == HTTP_PRELUDE_TYPE and reading_prelude[0]:
                prelude.extend(data)
                end = prelude.find(b"\0" * 8)
                if end < 0:
                    return
                reading_prelude[0] = False
                try:
                    meta = json.loads(prelude[:end] or b"{}")
                    reply.status = int(meta.get("statusCode", 200))
                    headers = {str(k): str(v) for k, v in (meta.get("headers") or {}).items()}
                    reply.content_type = headers.pop(
                        "content-type", headers.pop("Content-Type", reply.content_type))
                    reply.headers.update(headers)
                    reply.cookies = [str(c) for c in meta.get("cookies") or []]
                except (ValueError, TypeError, AttributeError):
                    pass
                emit(bytes(prelude[end + 8:]))
                return
            if content_type and content_type != HTTP_PRELUDE_TYPE:
                reply.content_type = content_type
            emit(data)

        try:
            outcome = run_invocation(store, job, payload, request_id,
                                     invocation_type="FunctionUrl", on_chunk=chunk)
        except LambdaError as error:    # a throttle, before anything was sent: as a URL says it
            mapped = url_error_for(error)
        else:
            if not outcome.function_error:
                if not outcome.streamed:
                    emit(outcome.payload)
                return
            mapped = url_error("failed")
        reply.status, reply.content_type, reply.cookies = (mapped.status, mapped.content_type,
                                                           mapped.cookies)
        reply.headers.update(mapped.headers)
        emit(mapped.body)

    reply.produce = produce
    return reply


# -- Durable executions, driven ----------------------------------------------------------------

# Which actions each operation type takes, and the history event each one writes.
OPERATION_EVENTS = {
    ("STEP", "START"): "StepStarted", ("STEP", "SUCCEED"): "StepSucceeded",
    ("STEP", "FAIL"): "StepFailed",
    ("STEP", "RETRY"): None, ("WAIT", "START"): "WaitStarted", ("WAIT", "CANCEL"): "WaitCancelled",
    ("CONTEXT", "START"): "ContextStarted", ("CONTEXT", "SUCCEED"): "ContextSucceeded",
    ("CONTEXT", "FAIL"): "ContextFailed", ("CALLBACK", "START"): "CallbackStarted",
    ("CHAINED_INVOKE", "START"): "ChainedInvokeStarted",
}


def drive_durable_execution(store, job, request_id):
    """Run a durable execution to its end (or until the server resets), invoking the handler
    whenever there is something for it; answer the Outcome a synchronous Invoke returns."""
    execution = job.durable
    generation = store.generation
    with store.lock:
        driver = not execution.driving and not execution.finished.is_set()
        execution.driving = execution.driving or driver
    if not driver:                      # another invocation drives it: wait for the end
        execution.finished.wait(MAX_TIMEOUT_SECONDS)
        return durable_outcome(execution, job)
    failures = invalid_pending = 0
    try:
        while store.generation == generation and not store.runner.closed:
            with store.lock:
                execution.fire_due_timers()
                if execution.finished.is_set():
                    break
                runnable = execution.status() == "RUNNING" and (execution.changed
                                                                or execution.token is None)
                if runnable:
                    envelope = json.dumps(execution.envelope()).encode()
                else:
                    execution.wake.clear()
                    delay = max(0.0, min(execution.next_deadline() - time.time(), 1.0))
            if not runnable:
                execution.wake.wait(delay)
                continue
            invocation_id = new_uuid()
            started = time.time()
            outcome = store.runner.invoke(job, envelope, invocation_id)
            record_invocation(store, job, invocation_id, "Durable", started, envelope, outcome)
            with store.lock:
                error = settle_durable_invocation(execution, outcome, invocation_id, started)
                if error == "crashed":
                    failures += 1
                    if failures >= MAX_DURABLE_INVOCATION_FAILURES:
                        execution.finish("FAILED", "ExecutionFailed", error=handler_error(outcome))
                    execution.changed.add(execution.id)     # invoke again
                elif error == "idle-pending":
                    invalid_pending += 1
                    if invalid_pending >= MAX_INVALID_PENDING:
                        execution.finish("FAILED", "ExecutionFailed", error={
                            "ErrorType": "InvalidParameterValueException",
                            "ErrorMessage": "Cannot return PENDING status with no pending "
                                            "operations."})
                    execution.changed.add(execution.id)
                else:
                    failures = invalid_pending = 0
            if error == "crashed":
                time.sleep(store.async_retry_delay)
    except LambdaError:
        pass                            # throttled, or the server is stopping
    finally:
        with store.lock:
            execution.driving = False
    return durable_outcome(execution, job)


def settle_durable_invocation(execution, outcome, request_id, started):
    """Apply what one handler invocation answered; None, "crashed" or "idle-pending". Caller holds
    store.lock."""
    execution.add_event("InvocationCompleted", execution.id, InvocationCompletedDetails={
        "StartTimestamp": started, "EndTimestamp": time.time(), "RequestId": request_id})
    execution.token = None if execution.finished.is_set() else execution.token
    if execution.finished.is_set():
        return None                     # completed by a checkpoint (or stopped) meanwhile
    if outcome.function_error:
        return "crashed"
    try:
        answer = json.loads(outcome.payload)
        status = answer.get("Status") if isinstance(answer, dict) else None
    except ValueError:
        status = None
    if status == "SUCCEEDED":
        execution.finish("SUCCEEDED", "ExecutionSucceeded", result=answer.get("Result"))
    elif status == "FAILED":
        execution.finish("FAILED", "ExecutionFailed", error=answer.get("Error") or {})
    elif status == "PENDING":
        return None if execution.pending() or execution.changed else "idle-pending"
    else:
        execution.finish("FAILED", "ExecutionFailed", error={
            "ErrorType": "InvalidParameterValueException",
            "ErrorMessage": "The durable handler's output is not a durable execution result; wrap "
                            "the handler with the durable execution SDK."})
    return None


def handler_error(outcome):
    try:
        error = json.loads(outcome.payload)
    except ValueError:
        error = {}
    return {"ErrorType": str(error.get("errorType", "Error")),
            "ErrorMessage": str(error.get("errorMessage", ""))}


def durable_outcome(execution, job):
    """What a synchronous Invoke answers once the execution ended: its Result, or its error."""
    record = execution.record
    if record["Status"] == "SUCCEEDED":
        return Outcome((record.get("Result") or "null").encode(), None, None, job.version)
    if record["Status"] in ("RUNNING", "PAUSED"):
        return Outcome(b"null", None, None, job.version)
    error = record.get("Error") or {}
    payload = {"errorType": error.get("ErrorType", record["Status"]),
               "errorMessage": error.get("ErrorMessage", "")}
    return Outcome(json.dumps(payload).encode(), "Unhandled", None, job.version)


def callback_deadline(started, timeout, beat, heartbeat):
    """(when, whether it is the heartbeat's) a callback times out: Timeout seconds after it
    started or HeartbeatTimeout seconds after the last heartbeat (beat), whichever comes first.
    A zero stands for a timeout the callback does not have; it must have one of them."""
    deadlines = [(started + timeout, False)] if timeout else []
    deadlines += [(beat + heartbeat, True)] if heartbeat else []
    return min(deadlines)


def apply_operation_update(store, execution, update):
    """One OperationUpdate, as the service applies it. Caller holds store.lock."""
    kind, action, op_id = update["Type"], update["Action"], update["Id"]
    now = time.time()
    if kind == "EXECUTION":             # an oversized result, checkpointed before the answer
        if action == "SUCCEED":
            execution.finish("SUCCEEDED", "ExecutionSucceeded", result=update.get("Payload"))
        elif action == "FAIL":
            execution.finish("FAILED", "ExecutionFailed", error=update.get("Error") or {})
        return
    if (kind, action) not in OPERATION_EVENTS and (kind, action) not in (
            ("STEP", "RETRY"), ("CONTEXT", "SUCCEED"), ("CONTEXT", "FAIL")):
        raise invalid_parameter(f"Action {action} is not valid for an operation of type {kind}.")
    op = execution.operations.get(op_id)
    if op is None:
        if action != "START":
            raise invalid_parameter(f"Operation {op_id} has not been started.")
        op = {"Id": op_id, "Type": kind, "StartTimestamp": now}
        for member in ("ParentId", "Name", "SubType"):
            if update.get(member):
                op[member] = update[member]
        execution.operations[op_id] = op
    elif op["Type"] != kind:
        raise invalid_parameter(f"Operation {op_id} is of type {op['Type']}, not {kind}.")
    details = {}
    if kind == "STEP":
        step = op.setdefault("StepDetails", {"Attempt": 0})
        if action == "START":
            op["Status"] = "STARTED"
        else:
            step["Attempt"] += 1
            if update.get("Payload") is not None:
                step["Result"] = update["Payload"]
            if update.get("Error"):
                step["Error"] = update["Error"]
            retry = {"CurrentAttempt": step["Attempt"]}
            if action == "RETRY":
                delay = (update.get("StepOptions") or {}).get("NextAttemptDelaySeconds", 1)
                op["Status"] = "PENDING"
                step["NextAttemptTimestamp"] = now + delay
                retry["NextAttemptDelaySeconds"] = delay
                execution.add_event("StepFailed", op_id, op.get("ParentId"), op.get("Name"),
                                    StepFailedDetails={
                                        "Error": {"Payload": update.get("Error") or {},
                                                  "Truncated": False},
                                        "RetryDetails": retry})
                return
            op.update(Status="SUCCEEDED" if action == "SUCCEED" else "FAILED", EndTimestamp=now)
            details = ({"StepSucceededDetails": {"Result": {"Payload": update.get("Payload"),
                                                            "Truncated": False},
                                                 "RetryDetails": retry}} if action == "SUCCEED" else
                       {"StepFailedDetails": {"Error": {"Payload": update.get("Error") or {},
                                                        "Truncated": False},
                                              "RetryDetails": retry}})
    elif kind == "WAIT":
        if action == "START":
            seconds = (update.get("WaitOptions") or {}).get("WaitSeconds", 0)
            op.update(Status="STARTED", WaitDetails={"ScheduledEndTimestamp": now + seconds})
            details = {"WaitStartedDetails": {"Duration": seconds,
                                              "ScheduledEndTimestamp": now + seconds}}
        else:
            op.update(Status="CANCELLED", EndTimestamp=now)
    elif kind == "CALLBACK":
        callback_id = base64.b64encode(os.urandom(32)).decode()
        options = update.get("CallbackOptions") or {}
        op.update(Status="STARTED", CallbackDetails={"CallbackId": callback_id})
        store.callbacks[callback_id] = (execution.arn, op_id)
        timeout, heartbeat = (options.get("TimeoutSeconds") or 0,
                              options.get("HeartbeatTimeoutSeconds") or 0)
        if timeout or heartbeat:
            execution.timers[op_id] = callback_deadline(now, timeout, now, heartbeat)
        details = {"CallbackStartedDetails": {"CallbackId": callback_id,
                                              **({"Timeout": timeout} if timeout else {}),
                                              **({"HeartbeatTimeout": heartbeat}
                                                 if heartbeat else {})}}
    elif kind == "CONTEXT":
        if action == "START":
            op["Status"] = "STARTED"
        else:
            context = op.setdefault("ContextDetails", {})
            context.update((update.get("ContextOptions") or {}))
            if action == "SUCCEED":
                context["Result"] = update.get("Payload")
                details = {"ContextSucceededDetails": {"Result": {"Payload": update.get("Payload"),
                                                                  "Truncated": False}}}
            else:
                context["Error"] = update.get("Error") or {}
                details = {"ContextFailedDetails": {"Error": {"Payload": context["Error"],
                                                              "Truncated": False}}}
            op.update(Status="SUCCEEDED" if action == "SUCCEED" else "FAILED", EndTimestamp=now)
            execution.add_event("ContextSucceeded" if action == "SUCCEED" else "ContextFailed",
                                op_id, op.get("ParentId"), op.get("Name"), **details)
            return
    elif kind == "CHAINED_INVOKE":
        options = update["ChainedInvokeOptions"]
        op.update(Status="STARTED", ChainedInvokeDetails={})
        details = {"ChainedInvokeStartedDetails": {"FunctionName": options["FunctionName"]}}
        threading.Thread(target=run_chained_invoke,
                         args=(store, execution, op_id, options["FunctionName"],
                               update.get("Payload") or "{}"), daemon=True).start()
    event_type = OPERATION_EVENTS.get((kind, action))
    if event_type:
        execution.add_event(event_type, op_id, op.get("ParentId"), op.get("Name"), **details)


def run_chained_invoke(store, execution, op_id, function_name, payload):
    """A CHAINED_INVOKE: run the target function and record its result on the operation."""
    try:
        body = payload.encode() if payload.strip() else b"{}"
        parse_json_body(body)
        outcome = run_invocation(store, invocation_job(store, function_name, None, body), body,
                                 new_uuid())
        error = handler_error(outcome) if outcome.function_error else None
        result = None if error else outcome.payload.decode("utf-8", "replace")
    except LambdaError as failure:
        error, result = {"ErrorType": failure.code, "ErrorMessage": failure.message}, None
    with store.lock:
        op = execution.operations.get(op_id)
        if op is None or op["Status"] != "STARTED":
            return
        op.update(Status="FAILED" if error else "SUCCEEDED", EndTimestamp=time.time())
        op["ChainedInvokeDetails"] = {"Error": error} if error else {"Result": result}
        if error:
            execution.add_event("ChainedInvokeFailed", op_id, op.get("ParentId"), op.get("Name"),
                                ChainedInvokeFailedDetails={"Error": {"Payload": error,
                                                                      "Truncated": False}})
        else:
            execution.add_event("ChainedInvokeSucceeded", op_id, op.get("ParentId"), op.get("Name"),
                                ChainedInvokeSucceededDetails={"Result": {"Payload": result,
                                                                          "Truncated": False}})
        execution.changed.add(op_id)
        execution.wake.set()


# -- Other local AWS services ------------------------------------------------------------------
# Where the SDKs' own variables name other (local) AWS services, AWS_ENDPOINT_URL and
# AWS_ENDPOINT_URL_<SERVICE>, the fake reads code from S3 there, and handlers get the same
# variables, so their SDK clients reach the same services. Unset, nothing of this happens.

ENDPOINT_VARIABLE = re.compile(r"AWS_ENDPOINT_URL(_[A-Z0-9_]+)?")


def other_endpoints(environ, given=None):
    """{variable: URL} of the other AWS services: AWS_ENDPOINT_URL and AWS_ENDPOINT_URL_<SERVICE>
    from the environment, then `given` ({service or "": URL}); never ..._LAMBDA, which is this
    server."""
    found = {name: url for name, url in environ.items() if ENDPOINT_VARIABLE.fullmatch(name)}
    for service, url in (given or {}).items():
        found["AWS_ENDPOINT_URL" + (f"_{service.upper()}" if service else "")] = url
    found.pop("AWS_ENDPOINT_URL_LAMBDA", None)
    return found


def endpoint_of(store, service):
    """The URL of a service ("S3") where its requests go, or None (then they do not happen)."""
    return (store.aws_endpoints.get(f"AWS_ENDPOINT_URL_{service}")
            or store.aws_endpoints.get("AWS_ENDPOINT_URL"))


SIGNING_NAMES = {"EVENTBRIDGE": "events", "DYNAMODB_STREAMS": "dynamodb"}   # else lowercase


def aws_request(store, service, method, url, body=b"", extra=None):
    """(status, body) of a request to another AWS service (`service`: the suffix of its endpoint
    variable, "S3", "DYNAMODB_STREAMS"), SigV4-signed as the SDKs sign it (in this server's
    region, with its AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, else test), with `extra`
    headers."""
    import urllib.error
    import urllib.request
    parsed = urllib.parse.urlsplit(url)
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    payload = hashlib.sha256(body).hexdigest()
    headers = {"host": parsed.netloc, "x-amz-content-sha256": payload, "x-amz-date": stamp}
    signed = ";".join(sorted(headers))
    query = "&".join(sorted(f"{urllib.parse.quote(k, safe='-_.~')}="
                            f"{urllib.parse.quote(v, safe='-_.~')}" for k, v in
                            urllib.parse.parse_qsl(parsed.query, keep_blank_values=True)))
    canonical = "\n".join([method, parsed.path or "/", query,
                           "".join(f"{name}:{headers[name]}\n" for name in sorted(headers)),
                           signed, payload])
    signing_name = SIGNING_NAMES.get(service, service.lower())
    scope = f"{stamp[:8]}/{store.region}/{signing_name}/aws4_request"
    key, secret = store.aws_credentials
    headers["Authorization"] = (f"AWS4-HMAC-SHA256 Credential={key}/{scope}, SignedHeaders="
                                f"{signed}, Signature="
                                f"{sigv4_signature(secret, scope, stamp, canonical)}")
    request = urllib.request.Request(url, data=body or None, method=method,
                                     headers=dict(headers, **(extra or {})))
    try:
        with urllib.request.urlopen(request, timeout=30) as answer:
            return answer.status, answer.read()
    except urllib.error.HTTPError as error:
        return error.code, error.read()


def aws_json_request(store, service, target, version, body):
    """(status, body) of a call to another AWS service's JSON protocol (its `version`) at its
    endpoint: the operation `target` (X-Amz-Target) with the JSON `body`."""
    return aws_request(store, service, "POST", endpoint_of(store, service).rstrip("/") + "/",
                       json.dumps(body).encode(), {
                           "X-Amz-Target": target,
                           "Content-Type": f"application/x-amz-json-{version}"})


class LogShipper:
    """Invocation logs on their way to CloudWatch Logs (AWS_ENDPOINT_URL(_LOGS)), into the
    function's log group and its environment's stream, as Lambda names them: queued as each
    invocation ends, and sent in batches by one thread a moment later, so that a slow or absent
    endpoint never slows or fails an invoke. What cannot be sent is dropped, and the server's log
    says so once."""

    BATCH_SECONDS = 0.2

    def __init__(self):
        self.queue = queue.Queue(maxsize=10000)
        self.made = set()               # (group, stream) created already
        threading.Thread(target=self.run, daemon=True).start()

    def stop(self):
        self.queue.put(None)

    def add(self, store, group, stream, text):
        """One invocation's log, its events stamped now."""
        now = int(time.time() * 1000)
        try:
            self.queue.put_nowait((store, group, stream, [
                {"timestamp": now, "message": event} for event in log_events(text)]))
        except queue.Full:
            say(store, "warning", "CloudWatch Logs is not keeping up: invocation logs dropped",
                once="logs-full")

    def run(self):
        while True:
            batch = [self.queue.get()]
            if batch[0] is None:        # stop()
                return
            time.sleep(self.BATCH_SECONDS)
            while not self.queue.empty():
                batch.append(self.queue.get_nowait())
            batch = [item for item in batch if item is not None]
            streams = {}
            for store, group, stream, events in batch:
                streams.setdefault((store, group, stream), []).extend(events)
            for (store, group, stream), events in streams.items():
                try:
                    self.send(store, group, stream, events)
                except (OSError, ValueError, LambdaError) as error:
                    say(store, "warning", f"invocation logs could not be sent to CloudWatch Logs "
                                          f"({error}); they stay in LogType Tail and "
                                          "/_parlel/logs", once="logs-down")

    def send(self, store, group, stream, events):
        if (group, stream) not in self.made:
            for action, body in (("CreateLogGroup", {"logGroupName": group}),
                                 ("CreateLogStream", {"logGroupName": group,
                                                      "logStreamName": stream})):
                status, answer = self.call(store, action, body)
                if status != 200 and b"ResourceAlreadyExists" not in answer:
                    raise LambdaError("ServiceException", 500, f"{action}: HTTP {status}")
            self.made.add((group, stream))
        status, _ = self.call(store, "PutLogEvents", {
            "logGroupName": group, "logStreamName": stream, "logEvents": events})
        if status != 200:
            raise LambdaError("ServiceException", 500, f"PutLogEvents: HTTP {status}")

    @staticmethod
    def call(store, action, body):
        return aws_json_request(store, "LOGS", f"Logs_20140328.{action}", "1.1", body)


def log_events(text):
    """A log as the CloudWatch Logs events Lambda makes of it: a line each, newline kept, but a
    Python handler's error and its traceback (lines indented with no-break spaces) one event,
    with no newline at its end."""
    events = []
    for line in re.findall(r"[^\n]*\n|[^\n]+$", text):
        if events and events[-1].startswith("[ERROR] ") and (
                line.startswith("\u00a0") or line == "Traceback (most recent call last):\n"):
            events[-1] += line
        else:
            events.append(line)
    return [event.rstrip("\n") if event.startswith("[ERROR] ") and "\n" in event.rstrip("\n")
            else event for event in events]


def ship_logs(store, job, outcome):
    """Send an invocation's log to CloudWatch Logs when an endpoint for it is set."""
    if store.log_shipper is not None and outcome.log_buffer is not None:
        stream = outcome.log_stream or new_log_stream(job.version)
        store.log_shipper.add(store, job.log_group, stream,
                              outcome.log_buffer.init_start() + outcome.log)


# -- Event source pollers ----------------------------------------------------------------------
# An enabled mapping whose source has an endpoint is polled by a thread of its own, as Lambda's
# pollers do: SQS queues, Kinesis streams and DynamoDB streams. It runs while it is its mapping's
# current Poller: disabling, updating or deleting the mapping, and reset() and stop(), end it.

class Poller:
    """One mapping's poller: the mapping's State follows it (Creating, Enabling and Updating
    become Enabled once it runs; Disabling becomes Disabled once it has ended)."""

    def __init__(self, store, mapping):
        self.store = store
        self.mapping = mapping
        self.generation = store.generation

    def current(self):
        return (self.store.generation == self.generation and not self.store.runner.closed
                and self.store.pollers.get(self.mapping["UUID"]) is self)

    def running(self):
        with self.store.lock:
            if self.current():
                self.mapping["State"] = "Enabled"

    def ended(self):
        with self.store.lock:
            if (self.mapping["State"] == "Disabling"
                    and self.mapping["UUID"] not in self.store.pollers):
                self.mapping["State"] = "Disabled"

    def invoke(self, event):
        """Invoke the mapping's function with an event (its Kinesis records naming the role the
        function runs as); its Outcome, or None when it could not run (gone, or throttled)."""
        try:
            job = invocation_job(self.store, self.mapping["FunctionArn"])
            for record in event["Records"]:
                if "invokeIdentityArn" in record:
                    record["invokeIdentityArn"] = job.role
            return run_invocation(self.store, job, json.dumps(event).encode(), new_uuid())
        except LambdaError as error:
            say(self.store, "warning", f"the event source mapping {self.mapping['UUID']} could not "
                                       f"invoke its function ({error.code}: {error.message}); its "
                                       "batch is tried again", once=f"poll {error.code}")
            return None

    def processed(self, ran):
        """LastProcessingResult after a batch (whether the function ran it), as streams show
        it."""
        with self.store.lock:
            if "LastProcessingResult" in self.mapping:
                self.mapping["LastProcessingResult"] = ("OK" if ran
                                                        else "PROBLEM: Function call failed")


def start_polling(store, mapping, enabled):
    """Start (or restart) a mapping's poller when it is enabled and its source has an endpoint,
    else settle its State. Caller holds store.lock."""
    earlier = store.pollers.pop(mapping["UUID"], None)     # an earlier poller of it ends
    kind = mapping.get("EventSourceArn", "::").split(":")[2]
    source = POLLED_SOURCES.get(kind)
    if enabled and source and endpoint_of(store, source[0]):
        store.pollers[mapping["UUID"]] = poller = Poller(store, mapping)
        for _ in range(source[2](store, mapping)):
            threading.Thread(target=keep_polling, args=(poller, source[1]), daemon=True).start()
    elif not (earlier and mapping["State"] == "Disabling"):  # else Disabled when it ends
        mapping["State"] = "Enabled" if enabled else "Disabled"


def keep_polling(poller, poll):
    """Run a poller's loop until it is current no more; an answer it cannot read (a local
    service's surprise) is said on the server's log, and the loop starts again."""
    try:
        while poller.current():
            try:
                poll(poller)
            except Exception as error:      # a poller thread must not die
                say(poller.store, "warning", f"the event source mapping "
                                             f"{poller.mapping['UUID']} met {error!r}; it polls "
                                             "again", once=f"poll {type(error).__name__}")
                time.sleep(1)
    finally:
        poller.ended()


def queue_url_of(store, arn):
    """An SQS queue's URL at the local SQS endpoint."""
    return endpoint_of(store, "SQS").rstrip("/") + f"/{arn.split(':')[4]}/{arn.split(':')[5]}"


def probe_event_source(store, kind, arn):
    """What the local service says of a new mapping's source: (AWS's error for a source that
    is not there, or None; an SQS queue's visibility timeout, or None). A service with no
    endpoint, or one that does not answer, is not asked."""
    source = POLLED_SOURCES.get(kind)
    if source is None or not endpoint_of(store, source[0]):
        return None, None
    if kind == "sqs":
        request = ("AmazonSQS.GetQueueAttributes", "1.0", {
            "QueueUrl": queue_url_of(store, arn), "AttributeNames": ["VisibilityTimeout"]})
    else:
        _, prefix, version = STREAM_APIS[kind]
        action = "DescribeStreamSummary" if kind == "kinesis" else "DescribeStream"
        request = (f"{prefix}.{action}", version, stream_named(kind, arn))
    try:
        status, answer = aws_json_request(store, source[0], *request)
        answer = json.loads(answer or b"{}")
    except (OSError, ValueError):
        return None, None
    if status == 200:
        visibility = (answer.get("Attributes") or {}).get("VisibilityTimeout")
        return None, int(visibility) if visibility else None
    missing = answer.get("__type", "").split("#")[-1]
    if missing == "QueueDoesNotExist":
        return invalid_parameter(
            "Error occurred while ReceiveMessage. SQS Error Code: "
            "AWS.SimpleQueueService.NonExistentQueue. SQS Error Message: "
            f"{answer.get('message') or answer.get('Message')}"), None
    if missing == "ResourceNotFoundException":
        return invalid_parameter(f"Stream not found: {arn}"), None
    return None, None


def sqs_call(store, action, body):
    """A request to SQS (its JSON protocol), and its parsed answer; {} when it failed."""
    status, answer = aws_json_request(store, "SQS", f"AmazonSQS.{action}", "1.0", body)
    return json.loads(answer or b"{}") if status == 200 else {}


SQS_POLLERS = 5                         # Lambda starts five long polls at once per SQS queue
MAX_BATCH_BYTES = 6 * 1024 * 1024       # an invocation's payload limit ends a batch


def sqs_pollers(store, mapping):
    """How many batches of a queue may run at once: ScalingConfig.MaximumConcurrency, else as
    many as Lambda starts with; never more than the environments the server may run."""
    wanted = (mapping.get("ScalingConfig") or {}).get("MaximumConcurrency") or SQS_POLLERS
    return max(1, min(wanted, store.runner.pool.max_environments))


def poll_sqs(poller):
    """Lambda's SQS poller: gather up to BatchSize messages (waiting up to the batching
    window), invoke the function with them as Lambda's SQS event, and delete those it
    handled: all of them, or with ReportBatchItemFailures all but the batchItemFailures it
    returned; the others come back after their visibility timeout, as on AWS."""
    store, mapping = poller.store, poller.mapping
    arn = mapping["EventSourceArn"]
    queue_url = queue_url_of(store, arn)
    poller.running()
    while poller.current():
        try:
            received = gather_messages(poller, queue_url)
        except (OSError, ValueError):
            time.sleep(1)
            continue
        if not received:
            continue
        if not poller.current():        # ended meanwhile: the messages are seen again at once
            sqs_in_tens(store, "ChangeMessageVisibilityBatch", queue_url, [
                {"ReceiptHandle": message["ReceiptHandle"], "VisibilityTimeout": 0}
                for message in received])
            continue
        kept, done = [], []             # what the filters pass; what is deleted (unseen)
        for message in received:
            record = sqs_record(store, arn, message)
            seen = passes_filters(mapping, dict(record, body=json_or_text(record["body"])))
            (kept if seen else done).append(record)
        if kept:
            outcome = poller.invoke({"Records": kept})
            handled = failed_from(outcome, mapping, [record["messageId"] for record in kept])
            done += [kept[index] for index in sorted(handled)]
        sqs_in_tens(store, "DeleteMessageBatch", queue_url,
                    [{"ReceiptHandle": record["receiptHandle"]} for record in done])


def sqs_in_tens(store, action, queue_url, entries):
    """A batch action on messages, ten at most per request as SQS takes them; what fails is
    left to the messages' visibility timeout."""
    for start in range(0, len(entries), 10):
        try:
            sqs_call(store, action, {"QueueUrl": queue_url, "Entries": [
                dict(entry, Id=str(index))
                for index, entry in enumerate(entries[start:start + 10])]})
        except (OSError, ValueError):
            pass


def sqs_record(store, arn, message):
    """A received SQS message as a record of Lambda's SQS event (its message attributes as
    Lambda spells them)."""
    record = {"messageId": message["MessageId"], "receiptHandle": message["ReceiptHandle"],
              "body": message["Body"], "attributes": message.get("Attributes", {}),
              "messageAttributes": {
                  name: {("binaryValue" if "BinaryValue" in value else "stringValue"):
                         value.get("BinaryValue", value.get("StringValue")),
                         "stringListValues": value.get("StringListValues", []),
                         "binaryListValues": value.get("BinaryListValues", []),
                         "dataType": value.get("DataType")}
                  for name, value in (message.get("MessageAttributes") or {}).items()}}
    if message.get("MD5OfMessageAttributes"):
        record["md5OfMessageAttributes"] = message["MD5OfMessageAttributes"]
    record.update(md5OfBody=message.get("MD5OfBody"), eventSource="aws:sqs",
                  eventSourceARN=arn, awsRegion=store.region)
    return record


def gather_messages(poller, queue_url):
    """One batch of messages: until BatchSize, the batching window's end or 6 MB, whichever
    comes first (with no window, what one long poll brings)."""
    mapping = poller.mapping
    window = mapping.get("MaximumBatchingWindowInSeconds") or 0
    deadline = time.monotonic() + window
    batch, size = [], 0
    while poller.current() and len(batch) < mapping["BatchSize"] and size < MAX_BATCH_BYTES:
        left = deadline - time.monotonic()
        if batch and left <= 0:
            break
        wanted = min(10, mapping["BatchSize"] - len(batch))
        received = sqs_call(poller.store, "ReceiveMessage", {
            "QueueUrl": queue_url, "MaxNumberOfMessages": wanted,
            "WaitTimeSeconds": max(0, min(1, int(left + 0.999))) if batch else 1,
            "MessageSystemAttributeNames": ["All"], "AttributeNames": ["All"],    # (older SQS)
            "MessageAttributeNames": ["All"]}).get(
            "Messages", [])
        batch += received
        size += sum(len(m["Body"]) for m in received)
        if not batch or not window:
            break
    return batch


def failed_from(outcome, mapping, identifiers):
    """The indexes of a batch's items the function handled: none when it failed or could not
    run; with ReportBatchItemFailures, all but those its batchItemFailures name (for a stream,
    all before the first it names), and none when that answer cannot be read."""
    if outcome is None or outcome.function_error:
        return set()
    everything = set(range(len(identifiers)))
    if "ReportBatchItemFailures" not in mapping.get("FunctionResponseTypes", ()):
        return everything
    try:
        answer = json.loads(outcome.payload)
        if answer in (None, "", []):    # an empty answer: all handled, as AWS records it
            return everything
        failures = answer.get("batchItemFailures") or []
        positions = [identifiers.index(failure["itemIdentifier"]) for failure in failures]
    except (ValueError, AttributeError, TypeError, KeyError):
        return set()                    # an answer Lambda cannot read fails the whole batch
    if mapping["EventSourceArn"].split(":")[2] == "sqs":
        return everything - set(positions)
    return set(range(min(positions, default=len(identifiers))))


# Kinesis and DynamoDB Streams: each shard is read in order from StartingPosition; a batch the
# function fails is retried (MaximumRetryAttempts, -1 for ever, bisected with
# BisectBatchOnFunctionError, from the first failed record with ReportBatchItemFailures) until
# it succeeds, runs out of tries or grows too old (MaximumRecordAgeInSeconds); then its
# description goes to the OnFailure destination and the shard moves on.
STREAM_APIS = {"kinesis": ("KINESIS", "Kinesis_20131202", "1.1"),
               "dynamodb": ("DYNAMODB_STREAMS", "DynamoDBStreams_20120810", "1.0")}
STREAM_IDLE_SECONDS = 0.25              # between reads of a stream that had nothing new
STREAM_RETRY_SECONDS = 0.2              # before a failed batch is first tried again, then
STREAM_MAX_RETRY_SECONDS = 5.0          # doubling up to this (AWS: 8 tries in a minute)


def stream_call(store, kind, action, body):
    variable, prefix, version = STREAM_APIS[kind]
    status, answer = aws_json_request(store, variable, f"{prefix}.{action}", version, body)
    if status != 200:
        raise OSError(f"{action}: HTTP {status}: {answer[:300].decode('utf-8', 'replace')}")
    return json.loads(answer)


def stream_named(kind, arn):
    """The part of a request that names the stream."""
    return {"StreamName": arn.split("/", 1)[1]} if kind == "kinesis" else {"StreamArn": arn}


def shard_iterators(poller, kind, known=(), position=None):
    """{shard id: iterator} for every shard but those `known`: after the last record handled, as
    Lambda keeps its place across a disable or an update, else at `position` (by default the
    mapping's StartingPosition)."""
    store, mapping = poller.store, poller.mapping
    position = position or mapping["StartingPosition"]
    named = stream_named(kind, mapping["EventSourceArn"])
    if kind == "kinesis":
        shards = stream_call(store, kind, "ListShards", named)["Shards"]
    else:
        shards = stream_call(store, kind, "DescribeStream", named)["StreamDescription"]["Shards"]
    with store.lock:
        handled = dict(store.checkpoints.get(mapping["UUID"], {}))
    iterators = {}
    for shard in shards:
        if shard["ShardId"] in known:
            continue
        request = dict(named, ShardId=shard["ShardId"], ShardIteratorType=position)
        if shard["ShardId"] in handled:
            request.update(ShardIteratorType="AFTER_SEQUENCE_NUMBER",
                           StartingSequenceNumber=handled[shard["ShardId"]])
        elif position == "AT_TIMESTAMP":
            request["Timestamp"] = mapping.get("StartingPositionTimestamp")
        iterators[shard["ShardId"]] = stream_call(store, kind, "GetShardIterator",
                                                  request)["ShardIterator"]
    return iterators


def poll_stream(poller):
    """Read every shard of a Kinesis or DynamoDB stream in turn, gathering each shard's records
    into batches (BatchSize, or what the batching window has gathered) and handing them over."""
    store, mapping = poller.store, poller.mapping
    kind = mapping["EventSourceArn"].split(":")[2]
    iterators, gathered, first_at, windows = None, {}, {}, {}
    ended, resharded = set(), False     # shards read to their end; whether one just was
    while poller.current():
        try:
            if iterators is None:
                iterators = shard_iterators(poller, kind)
                poller.running()
            elif resharded and not gathered:    # the shards that took over, read whole
                iterators.update(shard_iterators(poller, kind, set(iterators) | ended,
                                                 "TRIM_HORIZON"))
                resharded = False
            quiet = True
            for shard, iterator in list(iterators.items()):
                answer = stream_call(store, kind, "GetRecords", {
                    "ShardIterator": iterator,      # (GetRecords' own limits: 10,000 and 1,000)
                    "Limit": min(mapping["BatchSize"] - len(gathered.get(shard, ())),
                                 10000 if kind == "kinesis" else 1000)})
                if answer.get("NextShardIterator"):
                    iterators[shard] = answer["NextShardIterator"]
                else:
                    del iterators[shard]                    # a closed shard, read to its end
                    ended.add(shard)
                    resharded = True
                if answer.get("Records"):
                    quiet = False
                    gathered.setdefault(shard, []).extend(answer["Records"])
                    first_at.setdefault(shard, time.monotonic())
        except (OSError, ValueError, KeyError, TypeError):
            with store.lock:
                mapping["LastProcessingResult"] = "PROBLEM: Could not read the event source"
            time.sleep(1)
            continue
        batching = mapping.get("MaximumBatchingWindowInSeconds") or 0
        for shard in list(gathered):
            if (len(gathered[shard]) >= mapping["BatchSize"]
                    or time.monotonic() - first_at[shard] >= batching):
                records = gathered.pop(shard)
                del first_at[shard]
                hand_over(poller, kind, shard, records, windows)
        for shard in [shard for shard, window in windows.items()
                      if time.time() >= window["end"] and shard not in gathered]:
            close_window(poller, kind, shard, windows)
        if quiet:
            time.sleep(STREAM_IDLE_SECONDS)


def hand_over(poller, kind, shard, records, windows):
    """Hand a shard's batch to the function: as it is, or with TumblingWindowInSeconds split at
    the windows' edges (windows follow the records' arrival times), each window's state passed
    from one invocation to the next and ended by a final invocation."""
    size = poller.mapping.get("TumblingWindowInSeconds") or 0
    factor = poller.mapping.get("ParallelizationFactor") or 1
    if factor > 1 and not size:
        return hand_over_in_parallel(poller, kind, shard, records, factor)
    if not size:
        return handle_stream_batch(poller, kind, shard, records)
    while records and poller.current():
        start = int(arrival(kind, records[0]) // size * size)
        if shard in windows and windows[shard]["start"] < start:
            close_window(poller, kind, shard, windows)
        window = windows.setdefault(shard, {"start": start, "end": start + size, "state": {}})
        inside = next((index for index, record in enumerate(records)
                       if arrival(kind, record) >= window["end"]), len(records))
        handle_stream_batch(poller, kind, shard, records[:inside], window)
        records = records[inside:]


def hand_over_in_parallel(poller, kind, shard, records, factor):
    """ParallelizationFactor: a shard's batch split by partition key into up to `factor` batches
    handled at once (a key's records stay in order, in one of them); the shard moves on once all
    are done."""
    groups = {}
    for record in records:
        key = (record["PartitionKey"] if kind == "kinesis"
               else json.dumps(record["dynamodb"].get("Keys"), sort_keys=True))
        groups.setdefault(zlib.crc32(key.encode()) % factor, []).append(record)
    done = []

    def handle(group):
        done.append(handle_stream_batch(poller, kind, shard, group, keep_place=False))
    threads = [threading.Thread(target=handle, args=(group,), daemon=True)
               for group in groups.values()]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if all(done) and len(done) == len(threads):
        checkpoint(poller, shard, sequence_number(kind, records[-1]))


def window_fields(poller, shard, window, final=False):
    """What a tumbling window adds to an event."""
    return {"window": {"start": iso_second(window["start"]), "end": iso_second(window["end"])},
            "state": window["state"], "shardId": shard,
            "eventSourceARN": poller.mapping["EventSourceArn"],
            "isFinalInvokeForWindow": final, "isWindowTerminatedEarly": False}


def close_window(poller, kind, shard, windows):
    """A window's final invocation, with its state and no records; the shard waits until it
    succeeds, as on AWS."""
    window = windows[shard]
    while poller.current():
        outcome = poller.invoke(dict(Records=[], **window_fields(poller, shard, window, True)))
        poller.processed(outcome is not None and not outcome.function_error)
        if outcome is not None and not outcome.function_error:
            break
        time.sleep(STREAM_RETRY_SECONDS)
    del windows[shard]


def window_state(outcome):
    """The state a windowed invocation returned, or None (then the invocation failed)."""
    try:
        state = json.loads(outcome.payload).get("state")
    except (ValueError, AttributeError):
        return None
    return state if isinstance(state, dict) else None


def stream_event(poller, kind, shard, records):
    """Lambda's event for a batch of stream records (Poller.invoke names the role)."""
    store, arn = poller.store, poller.mapping["EventSourceArn"]
    if kind == "dynamodb":
        return {"Records": [dict(record, eventSourceARN=arn) for record in records]}
    return {"Records": [{
        "kinesis": {"kinesisSchemaVersion": "1.0", "partitionKey": record["PartitionKey"],
                    "sequenceNumber": record["SequenceNumber"], "data": record["Data"],
                    "approximateArrivalTimestamp": record["ApproximateArrivalTimestamp"]},
        "eventSource": "aws:kinesis", "eventVersion": "1.0",
        "eventID": f"{shard}:{record['SequenceNumber']}", "eventName": "aws:kinesis:record",
        "invokeIdentityArn": None, "awsRegion": store.region, "eventSourceARN": arn}
        for record in records]}


def filter_view(kind, record):
    """A stream record as FilterCriteria see it: a Kinesis record's data (its JSON, else its
    text), a DynamoDB record whole."""
    if kind == "dynamodb":
        return record
    return {"data": json_or_text(base64.b64decode(record["Data"]).decode("utf-8", "replace"))}


def sequence_number(kind, record):
    return record["SequenceNumber"] if kind == "kinesis" else record["dynamodb"]["SequenceNumber"]


def arrival(kind, record):
    """When a stream record arrived (epoch seconds)."""
    value = (record.get("ApproximateArrivalTimestamp") if kind == "kinesis"
             else record["dynamodb"].get("ApproximateCreationDateTime"))
    return float(value) if isinstance(value, (int, float)) else time.time()


def handle_stream_batch(poller, kind, shard, records, window=None, keep_place=True):
    """Invoke with a shard's batch until it is handled, retried as the mapping says (in a
    tumbling window: with its state, which the answer then replaces); the shard's place moves on
    as its records are done, unless keep_place is False. Whether all of them were done."""
    mapping = poller.mapping

    def reached(record):
        if keep_place:
            checkpoint(poller, shard, sequence_number(kind, record))

    kept = [record for record in records if passes_filters(mapping, filter_view(kind, record))]
    pending = [(kept, 0)] if kept else []   # (records, retries so far), in the shard's order
    max_age = mapping.get("MaximumRecordAgeInSeconds", -1)
    max_retries = mapping.get("MaximumRetryAttempts", -1)
    pause = STREAM_RETRY_SECONDS
    while pending and poller.current():
        batch, retries = pending.pop(0)
        expired = 0 if max_age == -1 else next((index for index, record in enumerate(batch)
                                                if time.time() - arrival(kind, record) <= max_age),
                                               len(batch))
        if expired:                     # too old already: given up on before any invocation
            stream_failure(poller, kind, shard, batch[:expired], None, retries + 1,
                           "RecordAgeExceeded", stream_event(poller, kind, shard, batch[:expired]))
            reached(batch[expired - 1])
            if batch[expired:]:
                pending.insert(0, (batch[expired:], retries))
            continue
        event = stream_event(poller, kind, shard, batch)
        if window is not None:
            event.update(window_fields(poller, shard, window))
        outcome = poller.invoke(event)
        handled = failed_from(outcome, mapping, [sequence_number(kind, r) for r in batch])
        ran = outcome is not None and not outcome.function_error
        if window is not None and ran:
            state = window_state(outcome)
            if state is None:           # a windowed answer without its state failed
                ran, handled = False, set()
            else:
                window["state"] = state
        poller.processed(ran)
        if handled:
            reached(batch[len(handled) - 1])
        rest = batch[len(handled):]
        if not rest:
            continue
        given_up = None
        if outcome is None:             # throttled: tried again, and not counted
            pending.insert(0, (rest, retries))
        elif max_age != -1 and time.time() - arrival(kind, rest[0]) > max_age:
            given_up = "RecordAgeExceeded"
        elif (outcome.function_error and mapping.get("BisectBatchOnFunctionError")
              and len(rest) > 1):       # halves do not use up the retries
            half = len(rest) // 2
            pending[:0] = [(rest[:half], retries), (rest[half:], retries)]
        elif max_retries != -1 and retries >= max_retries:
            given_up = "RetryAttemptsExhausted"
        else:
            pending.insert(0, (rest, retries + 1))
        if given_up:
            stream_failure(poller, kind, shard, rest, outcome, retries + 1, given_up, event)
            reached(rest[-1])
        elif pending and pending[0][0] is rest:    # the same records again, a moment later,
            time.sleep(pause)                       # backing off as Lambda does
            pause = min(pause * 2, STREAM_MAX_RETRY_SECONDS)
    if not pending:                     # all handled, given up on, or filtered out
        reached(records[-1])
    return not pending


def checkpoint(poller, shard, number):
    """Remember that a shard was handled up to the record `number` (and given up on are
    handled too: the shard moves on)."""
    with poller.store.lock:
        if poller.current():
            poller.store.checkpoints.setdefault(poller.mapping["UUID"], {})[shard] = number


def stream_failure(poller, kind, shard, records, outcome, attempts, condition, event):
    """Send the description of a batch that was given up on (`event`: the event it was last
    invoked with, or would have been) to the OnFailure destination."""
    store, mapping = poller.store, poller.mapping
    target = ((mapping.get("DestinationConfig") or {}).get("OnFailure") or {}).get("Destination")
    if not target:
        return
    stamp = iso_timestamp if kind == "kinesis" else iso_second     # DynamoDB's: to the second
    stamps = [stamp(arrival(kind, record)) for record in records]
    record = {"requestContext": {"requestId": new_uuid(), "functionArn": mapping["FunctionArn"],
                                 "condition": condition, "approximateInvokeCount": attempts},
              "responseContext": {"statusCode": 200, "executedVersion": "$LATEST",
                                  "functionError": None},
              "version": "1.0", "timestamp": iso_timestamp(),
              ("KinesisBatchInfo" if kind == "kinesis" else "DDBStreamBatchInfo"): {
                  "shardId": shard, "startSequenceNumber": sequence_number(kind, records[0]),
                  "endSequenceNumber": sequence_number(kind, records[-1]),
                  "approximateArrivalOfFirstRecord": stamps[0],
                  "approximateArrivalOfLastRecord": stamps[-1], "batchSize": len(records),
                  "streamArn": mapping["EventSourceArn"]}}
    if outcome is not None:
        record["responseContext"].update(executedVersion=outcome.version,
                                         functionError=outcome.function_error)
    if condition == "RecordAgeExceeded":    # as AWS records it: no response, ran or not
        del record["responseContext"]
    if target.split(":")[2] == "s3":   # S3 keeps the event too
        record["payload"] = event
    deliver_elsewhere(store, target, record, condition, mapping["FunctionArn"],
                      record["requestContext"]["requestId"],
                      f"aws/lambda/{mapping['UUID']}/{shard}")


# A polled source's kind -> the suffix of its endpoint variable, its poll, how many pollers.
POLLED_SOURCES = {"sqs": ("SQS", poll_sqs, sqs_pollers),
                  "kinesis": ("KINESIS", poll_stream, lambda store, mapping: 1),
                  "dynamodb": ("DYNAMODB_STREAMS", poll_stream, lambda store, mapping: 1)}


def s3_package(store, bucket, key, version=None):
    """The Package of an S3 object, read where AWS_ENDPOINT_URL(_S3) says; AWS's error when it
    is not there."""
    endpoint = endpoint_of(store, "S3").rstrip("/")
    url = (f"{endpoint}/{urllib.parse.quote(bucket, safe='')}/{urllib.parse.quote(key, safe='/~')}"
           + (f"?versionId={urllib.parse.quote(version, safe='')}" if version else ""))
    try:
        status, data = aws_request(store, "S3", "GET", url)
    except OSError as error:
        raise LambdaError("ServiceException", 500,
                          f"lambda_fake could not reach S3 at {endpoint}: {error}") from None
    if status != 200:
        code, message = (re.search(rb"<%s>(.*?)</%s>" % (tag, tag), data, re.S)
                         for tag in (b"Code", b"Message"))
        raise invalid_parameter(
            "Error occurred while GetObject. S3 Error Code: "
            f"{code[1].decode() if code else status}. S3 Error Message: "
            f"{message[1].decode() if message else ''}")
    return take_package(data)


# ----------------------------------------------------------------------------------------------
# 10. Operations
# ----------------------------------------------------------------------------------------------
# One plain function per AWS operation, named as AWS names it: op(store, params, body). `params`
# holds the path labels, the query arguments and the header members; `body` is the parsed JSON
# (raw bytes for the Invoke family). An operation returns the response dict, None for an empty
# body, or a Reply when it sets its own status or headers.

class Reply:
    """A response an operation shapes itself: status, extra headers, raw body bytes."""

    def __init__(self, status, headers=None, body=b"", content_type="application/json"):
        self.status = status
        self.headers = headers or {}
        self.body = body
        self.content_type = content_type
        self.cookies = []               # Set-Cookie values (function URL responses)


class StreamReply(Reply):
    """A response sent in chunks as it is produced: produce(emit) calls emit(bytes) per chunk.
    Nothing is sent until the first chunk, so an error raised before it is an ordinary reply."""

    def __init__(self, status, headers, content_type, produce):
        super().__init__(status, headers, b"", content_type)
        self.produce = produce


# Shared request shapes (from the API model).
ENVIRONMENT = struct(Variables=map_of(text(pattern=ENV_NAME_PATTERN), text(), sensitive=True))
VPC_CONFIG = struct(SubnetIds=list_of(text(0, 1024, pattern=r"subnet-[0-9a-z]*"), 0, 16,
                                      nulls_noted=False),           # as AWS words it
                    SecurityGroupIds=list_of(text(0, 1024, pattern=r"sg-[0-9a-zA-Z]*"), 0, 5,
                                             nulls_noted=False),
                    Ipv6AllowedForDualStack=boolean())
DEAD_LETTER_CONFIG = struct(TargetArn=text(pattern=r"(arn:(aws[a-zA-Z-]*)?:[a-z0-9-.]+:.*)|()"))
TRACING_CONFIG = struct(Mode=text(enum=("Active", "PassThrough")))
LAYER_ARNS = list_of(text(1, 2048, pattern=(
    r"(arn:(aws[a-zA-Z-]*)?:lambda:(eusc-)?[a-z]{2}((-gov)|(-iso([a-z]?)))?-[a-z]+-\d{1}:\d{12}:"
    r"layer:[a-zA-Z0-9-_]+:[0-9]+)|(arn:[a-zA-Z0-9-]+:lambda:::awslayer:[a-zA-Z0-9-_]+)")))
FILE_SYSTEM_CONFIGS = list_of(struct(
    ("Arn", "LocalMountPath"),
    Arn=text(hi=200,
             pattern=r"arn:aws[a-zA-Z-]*:(elasticfilesystem:[a-z]{2}((-gov)|(-iso(b?)))?-[a-z]+"
                     r"-\d{1}:\d{12}:access-point/fsap-[a-f0-9]{17}|s3files:[a-z]{2}((-gov)|"
                     r"(-iso(b?)))?-[a-z]+-\d{1}:\d{12}:file-system/fs-[a-f0-9]{17}/"
                     r"access-point/fsap-[a-f0-9]{17})"),
    LocalMountPath=text(hi=160, pattern=r"/mnt/[a-zA-Z0-9-_.]+"),
    S3FilesConfig=struct()), hi=1)
IMAGE_CONFIG = struct(EntryPoint=list_of(text(), hi=1500), Command=list_of(text(), hi=1500),
                      WorkingDirectory=text(hi=1000))
ARCHITECTURES = list_of(text(enum=("x86_64", "arm64")), 1, 1)
EPHEMERAL_STORAGE = struct(("Size",), Size=integer(512, 10240))
SNAP_START = struct(ApplyOn=text(enum=("PublishedVersions", "None")))
LOGGING_CONFIG = struct(
    LogFormat=text(enum=("JSON", "Text")),
    ApplicationLogLevel=text(enum=("TRACE", "DEBUG", "INFO", "WARN", "ERROR", "FATAL")),
    SystemLogLevel=text(enum=("DEBUG", "INFO", "WARN")),
    LogGroup=text(1, 512, pattern=r"[\.\-_/#A-Za-z0-9]+"))
TAG_KEY = text(1, 128, pattern=r"([\p{L}\p{Z}\p{N}_.:/=+\-@]*)")
TAGS = map_of(TAG_KEY, text(0, 256, pattern=r"([\p{L}\p{Z}\p{N}_.:/=+\-@]*)"))
CAPACITY_PROVIDER_CONFIG = struct(("LambdaManagedInstancesCapacityProviderConfig",),
                                  LambdaManagedInstancesCapacityProviderConfig=struct(
                                      ("CapacityProviderArn",),
                                      CapacityProviderArn=text(1, 1024),
                                      PerExecutionEnvironmentMaxConcurrency=integer(1, 1600),
                                      ExecutionEnvironmentMemoryGiBPerVCpu=number(2.0, 8.0)))
DURABLE_CONFIG = struct(KMSKeyArn=text(pattern=KMS_KEY_PATTERN),
                        RetentionPeriodInDays=integer(1, 90), ExecutionTimeout=integer(1, 31622400))
TENANCY_CONFIG = struct(("TenantIsolationMode",), TenantIsolationMode=text(enum=("PER_TENANT",)))
FUNCTION_CODE = struct(ZipFile=blob(), S3Bucket=text(3, 63, pattern=r"[0-9A-Za-z\.\-_]*(?<!\.)"),
                       S3Key=text(1, 1024), S3ObjectVersion=text(1, 1024), ImageUri=text(),
                       SourceKMSKeyArn=text(pattern=KMS_KEY_PATTERN))

# Configuration members CreateFunction and UpdateFunctionConfiguration share.
CONFIGURATION_MEMBERS = dict(
    Runtime=text(), Role=text(pattern=ROLE_PATTERN),      # Runtime: see check_runtime
    Handler=text(0, 128, pattern=HANDLER_PATTERN), Description=text(0, 256),
    Timeout=integer(1, MAX_TIMEOUT_SECONDS), MemorySize=integer(MIN_MEMORY_MB, MAX_MEMORY_MB),
    VpcConfig=VPC_CONFIG,
    DeadLetterConfig=DEAD_LETTER_CONFIG, Environment=ENVIRONMENT,
    KMSKeyArn=text(pattern=KMS_KEY_PATTERN),
    TracingConfig=TRACING_CONFIG, Layers=LAYER_ARNS, FileSystemConfigs=FILE_SYSTEM_CONFIGS,
    ImageConfig=IMAGE_CONFIG, EphemeralStorage=EPHEMERAL_STORAGE, SnapStart=SNAP_START,
    LoggingConfig=LOGGING_CONFIG, CapacityProviderConfig=CAPACITY_PROVIDER_CONFIG,
    DurableConfig=DURABLE_CONFIG)


def runtime_version_arn(region, runtime):
    """A stable, made-up runtime version ARN per runtime, in AWS's format."""
    digest = hashlib.sha256(runtime.encode()).hexdigest()
    return f"arn:aws:lambda:{region}::runtime:{digest}"


def runtime_version(runtime):
    """A runtime's version as INIT_START names it: python:3.12.v1, nodejs:20.v1,
    provided:al2023.v1 (ours are all v1)."""
    name, number = re.fullmatch(r"([a-z]+)(.*?)(\.x)?", runtime).group(1, 2)
    return f"{name}:{number.lstrip('.') or 'al1'}.v1"


def apply_configuration(store, config, body):
    """Copy the configuration members of a request onto a FunctionConfiguration, in AWS's shapes."""
    for member in ("Runtime", "Role", "Handler", "Description", "Timeout", "MemorySize",
                   "KMSKeyArn", "DeadLetterConfig", "FileSystemConfigs", "CapacityProviderConfig",
                   "DurableConfig"):
        if member in body:
            config[member] = body[member]
    if "Runtime" in body:
        config["RuntimeVersionConfig"] = {
            "RuntimeVersionArn": runtime_version_arn(store.region, body["Runtime"])}
    if "Environment" in body:
        config["Environment"] = {
            "Variables": dict((body["Environment"] or {}).get("Variables") or {})}
    if "TracingConfig" in body:
        config["TracingConfig"] = {"Mode": body["TracingConfig"].get("Mode") or "PassThrough"}
    if "VpcConfig" in body:
        vpc = body["VpcConfig"]
        config["VpcConfig"] = {"SubnetIds": list(vpc.get("SubnetIds") or []),
                               "SecurityGroupIds": list(vpc.get("SecurityGroupIds") or []),
                               "Ipv6AllowedForDualStack": bool(vpc.get("Ipv6AllowedForDualStack"))}
        subnets = config["VpcConfig"]["SubnetIds"]     # none: detached, VpcId "" as on AWS
        config["VpcConfig"]["VpcId"] = (
            "vpc-" + hashlib.sha256(subnets[0].encode()).hexdigest()[:17] if subnets else "")
    if "ImageConfig" in body:
        config["ImageConfigResponse"] = {"ImageConfig": body["ImageConfig"]}
    if "EphemeralStorage" in body:
        config["EphemeralStorage"] = {"Size": body["EphemeralStorage"]["Size"]}
    if "SnapStart" in body:
        config["SnapStart"] = {"ApplyOn": body["SnapStart"].get("ApplyOn") or "None",
                               "OptimizationStatus": "Off"}
    if "LoggingConfig" in body:
        logging_config = dict(config["LoggingConfig"])
        logging_config.update(body["LoggingConfig"])
        if logging_config.get("LogFormat") == "JSON":
            logging_config.setdefault("ApplicationLogLevel", "INFO")
            logging_config.setdefault("SystemLogLevel", "INFO")
        else:
            logging_config.pop("ApplicationLogLevel", None)
            logging_config.pop("SystemLogLevel", None)
        config["LoggingConfig"] = logging_config


def set_code(config, package):
    config["CodeSha256"] = package.sha256
    config["CodeSize"] = 0 if config.get("PackageType") == "Image" else package.size


def touch(config):
    """Mark a change: a new RevisionId and LastModified, as every successful update gets."""
    config["LastModified"] = iso_timestamp(zone="+0000")
    config["RevisionId"] = new_revision_id()


def package_from_request(store, code, raw_source):
    """The Package a request uploads: Code.ZipFile, an S3 object (read from S3 when its endpoint
    is set, else only its location is kept), an image, or _parlelHandler."""
    if raw_source is not None:
        return take_package(raw_source.encode("utf-8"))
    sources = [member for member in ("ZipFile", "S3Bucket", "ImageUri")
               if code.get(member) is not None]
    if code.get("S3Key") is not None and "S3Bucket" not in sources:
        sources.append("S3Bucket")
    if not sources:
        raise invalid_parameter("Please provide a source for function code.")
    if len(sources) > 1:
        raise invalid_parameter("Please do not provide other FunctionCode parameters when "
                                "providing a ZipFile, S3 location or image URI.")
    if sources == ["ZipFile"]:
        return take_package(decode_blob(code["ZipFile"], "ZipFile"))
    if sources == ["S3Bucket"]:
        if not code.get("S3Bucket") or not code.get("S3Key"):
            raise invalid_parameter("Please provide both S3Bucket and S3Key for function code.")
        if code["S3Bucket"] == HOT_RELOAD_BUCKET:
            if not os.path.isabs(code["S3Key"]):
                raise invalid_parameter(f"With S3Bucket {HOT_RELOAD_BUCKET}, S3Key must be the "
                                        "absolute path of a local directory holding the code.")
            return Package(code["S3Key"].encode(), hot_dir=os.path.normpath(code["S3Key"]))
        if endpoint_of(store, "S3"):
            return s3_package(store, code["S3Bucket"], code["S3Key"], code.get("S3ObjectVersion"))
        location = f"{code['S3Bucket']}/{code['S3Key']}"
        return Package(location.encode(), s3_location=location)
    return Package(code["ImageUri"].encode(), s3_location=code["ImageUri"])


VOLATILE_MEMBERS = ("RevisionId", "LastModified", "Version", "FunctionArn", "State",
                    "StateReason", "StateReasonCode", "LastUpdateStatus", "LastUpdateStatusReason",
                    "LastUpdateStatusReasonCode")


def fingerprint(config):
    """What must differ for PublishVersion to publish anew: code and configuration."""
    return json.dumps({k: v for k, v in config.items() if k not in VOLATILE_MEMBERS},
                      sort_keys=True)


def snapshot_latest(store, function, description=None):
    """Snapshot $LATEST as the next version; when nothing changed since the last version, that
    version is the answer, as on AWS. Caller holds store.lock."""
    latest = function.versions["$LATEST"]
    last = str(function.next_version - 1)
    current = fingerprint(latest)
    if function.published == current and last in function.versions:
        return function.versions[last]
    number = str(function.next_version)
    function.next_version += 1
    function.published = current
    snapshot = copied(latest)
    snapshot.update(Version=number, FunctionArn=function_arn(store, function.name, number),
                    Description=latest["Description"] if description is None else description,
                    RevisionId=new_revision_id())
    if snapshot.get("SnapStart"):
        snapshot["SnapStart"]["OptimizationStatus"] = (
            "On" if snapshot["SnapStart"].get("ApplyOn") == "PublishedVersions" else "Off")
    if latest.get("State") == "Pending" or latest.get("LastUpdateStatus") == "InProgress":
        for member in (*CHANGING[False], "LastUpdateStatus"):   # strictly, a version published
            snapshot.pop(member, None)                          # with a change is being created
        snapshot.update(CHANGING[True])
    function.versions[number] = snapshot
    function.packages[number] = function.packages["$LATEST"]
    latest["RevisionId"] = new_revision_id()        # publishing is a change to $LATEST too
    return snapshot


# -- The lifecycle in strict AWS mode ----------------------------------------------------------
# AWS creates and updates a function asynchronously: it answers Pending (a create) or InProgress
# (an update), and the function becomes Active / Successful moments later, each change with a new
# RevisionId; an update or a publish before then is refused. With --strict-aws so does this server,
# after store.settle_seconds; by default, as the spec says, a function is Active at once.

CHANGING = {True: {"State": "Pending", "StateReason": "The function is being created.",
                   "StateReasonCode": "Creating"},
            False: {"LastUpdateStatus": "InProgress",
                    "LastUpdateStatusReason": "The function is being created.",    # AWS's text
                    "LastUpdateStatusReasonCode": "Creating"}}
SETTLED = {"State": "Active", "LastUpdateStatus": "Successful"}


def begin_change(store, function, creating):
    """Strictly, $LATEST answers as AWS's does while it is being created or updated, until it
    settles. Caller holds store.lock."""
    if not store.strict_aws:
        return
    latest = function.versions["$LATEST"]
    latest.update(CHANGING[creating])
    if creating:
        latest.pop("LastUpdateStatus", None)
    after_settling(store, settle_change, store, function)


def after_settling(store, call, *args):
    """Strictly: call(*args) once AWS's asynchronous work would be done (store.settle_seconds)."""
    timer = threading.Timer(store.settle_seconds, call, args)
    timer.daemon = True
    timer.start()


def settle_change(store, function):
    """The change is done: $LATEST (and a version published meanwhile) Active and Successful,
    with a new RevisionId."""
    with store.lock:
        if store.functions.get(function.name) is not function:
            return                      # deleted, or a reset, meanwhile
        for config in function.versions.values():
            if config is function.versions["$LATEST"] or config.get("State") == "Pending":
                for member in (*CHANGING[True], *CHANGING[False]):
                    config.pop(member, None)
                config.update(SETTLED, RevisionId=new_revision_id())


def check_settled(store, function, operation):
    """Strictly, what AWS answers an operation ("invoke", "update", "publish") on a function that
    has not settled. Caller holds store.lock."""
    if not store.strict_aws:
        return
    latest = function.versions["$LATEST"]
    arn = function_arn(store, function.name)
    if latest.get("State") == "Pending":
        if operation == "invoke":
            raise conflict("The operation cannot be performed at this time. The function is "
                           "currently in the following state: Pending")
        raise conflict(f"The operation cannot be performed at this time. The resource {arn} is "
                       "currently in the following state: 'Pending'. StateReasonCode: 'Creating'")
    if latest.get("LastUpdateStatus") == "InProgress" and operation != "invoke":
        raise conflict("The operation cannot be performed at this time. An update is in "
                       f"progress for resource: {arn}")


# -- Helpers shared by the operations ----------------------------------------------------------

def function_target(store, params, namespaced=True, max_length=170):
    """(name, qualifier) from the FunctionName path label and an optional Qualifier argument."""
    given = params.get("Qualifier")
    name, qualifier = parse_function_ref(store, params["FunctionName"], namespaced, max_length,
                                         also=qualifier_problems(given) if given else ())
    if given is not None:
        check_qualifier(given)
        if qualifier and qualifier != given:
            raise invalid_parameter("The derived qualifier from the function name does not match "
                                    "the specified qualifier.")
        qualifier = given
    return name, qualifier


def check_qualifier(qualifier):
    problems = qualifier_problems(qualifier)
    if problems:
        raise validation_error(problems)


def qualifier_problems(qualifier):
    problems = []
    if len(qualifier) > 128:
        problems.append(constraint_text(qualifier, "qualifier",
                                        "Member must have length less than or equal to 128"))
    if not re.fullmatch(QUALIFIER_PATTERN, qualifier):
        problems.append(constraint_text(qualifier, "qualifier",
                                        "Member must satisfy regular expression pattern: "
                                        f"{QUALIFIER_PATTERN}"))
    return problems


def query_members(params, spec, integers=()):
    """The query arguments an operation takes, typed and checked like a body."""
    values = {}
    for member in spec.members:
        if member in params:
            value = params[member]
            if spec.members[member].kind == "list" and isinstance(value, str):
                value = [value]         # a repeated query argument that came once
            if member in integers:
                try:
                    value = int(value)
                except ValueError:
                    raise invalid_content(f"Could not parse request body into json: {member} must "
                                          "be an integer") from None
            values[member] = value
    check_body(values, spec)
    return values


# -- Functions ---------------------------------------------------------------------------------

# A code signing config's ARN, as CreateFunction and the code signing operations check it.
CSC_ARN = text(0, 200, pattern=(r"arn:(aws[a-zA-Z-]*)?:lambda:(eusc-)?[a-z]{2}((-gov)|(-iso([a-z]?)"
                                r"))?-[a-z]+-\d{1}:\d{12}:code-signing-config:csc-[a-z0-9]{17}"))
CREATE_FUNCTION = struct(
    ("FunctionName", "Role", "Code"),
    FunctionName=text(1, 140, pattern=FUNCTION_NAME_PATTERN), Code=FUNCTION_CODE, Publish=boolean(),
    PackageType=text(enum=("Zip", "Image")), Tags=TAGS,
    CodeSigningConfigArn=CSC_ARN, Architectures=ARCHITECTURES,
    PublishTo=text(enum=("LATEST_PUBLISHED",)), TenancyConfig=TENANCY_CONFIG,
    _parlelHandler=text(), **CONFIGURATION_MEMBERS)


def create_function(store, params, body):
    """CreateFunction. The function is Active at once (AWS passes through Pending first)."""
    if isinstance(body, dict) and "_parlelHandler" in body and "Code" not in body:
        body = dict(body, Code={})          # raw source may stand in for Code entirely
    check_body(body, CREATE_FUNCTION)
    name, qualifier = parse_function_ref(store, body["FunctionName"], namespaced=False,
                                         max_length=140)
    if len(name) > MAX_FUNCTION_NAME_LENGTH:
        raise invalid_parameter(validation_error([constraint_text(
            name, "functionName",
            f"Member must have length less than or equal to {MAX_FUNCTION_NAME_LENGTH}")]).message)
    if qualifier:
        raise invalid_parameter("Function name can not contain a qualifier when creating a "
                                "function.")
    package_type = body.get("PackageType", "Zip")
    if package_type == "Zip" and (not body.get("Runtime") or not body.get("Handler")):
        raise invalid_parameter("Runtime and Handler are mandatory parameters for functions "
                                "created with deployment packages.")
    if package_type == "Image" and not body["Code"].get("ImageUri"):
        raise invalid_parameter("Please provide ImageUri when updating a function with packageType "
                                "of Image.")
    check_runtime(body.get("Runtime"))
    check_environment(body.get("Environment"))
    if len(body.get("Tags") or {}) > MAX_TAGS:
        raise invalid_parameter("Number of tags exceeds resource tag limit.")
    package = package_from_request(store, body["Code"], body.get("_parlelHandler"))
    config = {
        "FunctionName": name, "FunctionArn": function_arn(store, name),
        "Role": body["Role"], "CodeSize": 0, "Description": "",
        "Timeout": DEFAULT_TIMEOUT_SECONDS, "MemorySize": DEFAULT_MEMORY_MB, "LastModified": "",
        "CodeSha256": "", "Version": "$LATEST", "TracingConfig": {"Mode": "PassThrough"},
        "RevisionId": "", "State": "Active", "LastUpdateStatus": "Successful",
        "PackageType": package_type, "Architectures": list(body.get("Architectures") or ["x86_64"]),
        "EphemeralStorage": {"Size": DEFAULT_EPHEMERAL_STORAGE_MB},
        "SnapStart": {"ApplyOn": "None", "OptimizationStatus": "Off"},
        "LoggingConfig": {"LogFormat": "Text", "LogGroup": f"/aws/lambda/{name}"},
    }
    apply_configuration(store, config, body)
    set_code(config, package)
    touch(config)
    store.runner.prepare(package, config.get("Runtime"), config.get("Handler", ""))
    with store.lock:
        if body.get("Layers") is not None:      # AWS checks them before the name is taken
            config["Layers"] = check_function_layers(store, body["Layers"])
        if name in store.functions:
            raise conflict(f"Function already exist: {name}")
        if body.get("CodeSigningConfigArn"):
            check_code_signing_config(store, body["CodeSigningConfigArn"])
        function = Function(name)
        function.code_signing_config_arn = body.get("CodeSigningConfigArn") or None
        function.versions["$LATEST"] = config
        function.packages["$LATEST"] = package
        if body.get("Tags"):
            store.tags[config["FunctionArn"]] = dict(body["Tags"])
        store.functions[name] = function
        bisect.insort(store.function_names, name)
        store.packages[package.hex] = package
        begin_change(store, function, creating=True)
        if body.get("Publish"):
            # ARN unqualified
            result = dict(config, Version=snapshot_latest(store, function)["Version"])
        else:
            result = dict(config)
    store.runner.prewarm(config.get("Runtime"), config["MemorySize"])   # its first invoke: no boot
    return result


def get_function(store, params, body):
    """GetFunction: configuration, a Code.Location on this server that serves the package, tags."""
    name, qualifier = function_target(store, params)
    with store.lock:
        function = find_function(store, name, qualifier)
        version, config, alias = find_version(store, function, qualifier)
        package = function.packages[version]
        configuration = dict(config)
        if qualifier:
            configuration["FunctionArn"] = function_arn(store, name, qualifier)
        reply = {"Configuration": configuration,
                 "Code": {"RepositoryType": "S3",
                          "Location": f"{store.endpoint_url}/_parlel/code/{package.hex}"}}
        tags = store.tags.get(function_arn(store, name))
        if tags:
            reply["Tags"] = dict(tags)
        if function.reserved_concurrency is not None:
            reply["Concurrency"] = {"ReservedConcurrentExecutions": function.reserved_concurrency}
        return reply


def get_function_configuration(store, params, body):
    """GetFunctionConfiguration."""
    name, qualifier = function_target(store, params)
    with store.lock:
        function = find_function(store, name, qualifier)
        config = dict(find_version(store, function, qualifier)[1])
        if qualifier:
            config["FunctionArn"] = function_arn(store, name, qualifier)
        return config


def delete_function(store, params, body):
    """DeleteFunction: the whole function, or with a numeric Qualifier just that version (deleting a
    version that does not exist succeeds, as on AWS)."""
    name, qualifier = function_target(store, params, max_length=140)
    with store.lock:
        if qualifier == "$LATEST":
            raise invalid_parameter("$LATEST version cannot be deleted without deleting the "
                                    "function.")
        function = find_function(store, name)
        if qualifier is None:
            del store.functions[name]
            del store.function_names[bisect.bisect_left(store.function_names, name)]
            store.tags.pop(function_arn(store, name), None)
            for url_config in function.url_configs.values():
                store.function_urls.pop(url_config["UrlId"], None)
        elif not qualifier.isdigit():
            raise invalid_parameter("Deletion of aliases is not currently supported.")
        elif qualifier in function.versions:
            users = sorted(alias["Name"] for alias in function.aliases.values()
                           if qualifier in alias_versions(alias))
            if users:
                raise conflict("Unable to delete version because the following aliases reference "
                               f"it: [{', '.join(users)}]")
            del function.versions[qualifier]
            del function.packages[qualifier]
            for attached in (function.policies, function.provisioned, function.event_invoke_configs,
                             function.runtime_management, function.scaling_configs):
                attached.pop(qualifier, None)
    provide_concurrency(store, name)
    store.runner.retire(function_arn(store, name))
    return Reply(204)


LIST_FUNCTIONS_QUERY = struct(
    MasterRegion=text(pattern=r"ALL|[a-z]{2}(-gov)?-[a-z]+-\d{1}"),
    FunctionVersion=text(enum=("ALL",)), Marker=text(), MaxItems=integer(1, 10000))


def list_functions(store, params, body):
    """ListFunctions: by name, at most 50 a page; FunctionVersion=ALL lists every version."""
    query = query_members(params, LIST_FUNCTIONS_QUERY, integers=("MaxItems",))
    limit = min(query.get("MaxItems") or LIST_PAGE_SIZE, LIST_PAGE_SIZE)
    with store.lock:
        if query.get("FunctionVersion") != "ALL":      # one entry per function: build just the page
            return paginate(store.function_names, query.get("Marker"), limit, "Functions",
                            "NextMarker", show=lambda name: listed(
                                store.functions[name].versions["$LATEST"]))
        items = []
        for name in store.function_names:
            function = store.functions[name]
            items.append(listed(function.versions["$LATEST"],
                                FunctionArn=function_arn(store, name, "$LATEST")))
            items.extend(listed(config) for version, config in function.versions.items()
                         if version != "$LATEST")
    return paginate(items, query.get("Marker"), limit, "Functions", "NextMarker")


UNLISTED_MEMBERS = ("State", "StateReason", "StateReasonCode", "LastUpdateStatus",
                    "LastUpdateStatusReason", "LastUpdateStatusReasonCode", "RuntimeVersionConfig")


def listed(config, **changes):
    """A FunctionConfiguration as list operations show it: without state and runtime version."""
    entry = {k: v for k, v in config.items() if k not in UNLISTED_MEMBERS}
    entry.update(changes)
    return entry


def paginate(items, marker, limit, key, marker_key, show=None):
    """One page of `items`, each passed through `show` when given (so only the page's entries are
    built); the marker is the position of the next item, opaque to clients."""
    start = page_start(marker)
    shown = items[start:start + limit]
    page = {key: shown if show is None else [show(item) for item in shown]}
    if start + limit < len(items):
        page[marker_key] = page_marker(start + limit)
    return page


def page_start(marker):
    if not marker:
        return 0
    try:
        return int(base64.b64decode(marker, validate=True).decode())
    except (binascii.Error, ValueError, UnicodeDecodeError):
        raise invalid_parameter("Invalid value for Marker") from None


def page_marker(position):
    return base64.b64encode(str(position).encode()).decode()


# -- Code and configuration --------------------------------------------------------------------

UPDATE_FUNCTION_CODE = struct(
    ZipFile=blob(), S3Bucket=text(3, 63, pattern=r"[0-9A-Za-z\.\-_]*(?<!\.)"), S3Key=text(1, 1024),
    S3ObjectVersion=text(1, 1024), ImageUri=text(), Publish=boolean(), DryRun=boolean(),
    RevisionId=text(), Architectures=ARCHITECTURES, SourceKMSKeyArn=text(pattern=KMS_KEY_PATTERN),
    PublishTo=text(enum=("LATEST_PUBLISHED",)), _parlelHandler=text())


def update_function_code(store, params, body):
    """UpdateFunctionCode: new code for $LATEST; Publish snapshots it; DryRun changes nothing."""
    check_body(body, UPDATE_FUNCTION_CODE)
    name, qualifier = function_target(store, params, namespaced=False, max_length=140)
    if qualifier:
        raise invalid_parameter("Qualifier is not supported for UpdateFunctionCode.")
    package = package_from_request(store, body, body.get("_parlelHandler"))
    with store.lock:
        config = find_function(store, name).versions["$LATEST"]
        runtime, handler = config.get("Runtime"), config.get("Handler", "")
    if not body.get("DryRun"):
        store.runner.prepare(package, runtime, handler)
    with store.lock:
        function = find_function(store, name)
        config = function.versions["$LATEST"]
        check_revision(body.get("RevisionId"), config["RevisionId"])
        check_settled(store, function, "update")
        if config["PackageType"] == "Image" and not package.s3_location:
            raise invalid_parameter("Please provide ImageUri when updating a function with "
                                    "packageType of Image.")
        if body.get("DryRun"):
            preview = dict(config)
            set_code(preview, package)
            return preview
        set_code(config, package)
        if body.get("Architectures"):
            config["Architectures"] = list(body["Architectures"])
        touch(config)
        function.packages["$LATEST"] = package
        function.published = None       # new code, the same or not: the next publish is new
        store.packages[package.hex] = package
        begin_change(store, function, creating=False)
        result = snapshot_latest(store, function) if body.get("Publish") else config
        result = dict(result)
    store.runner.retire(function_arn(store, name))
    store.runner.prewarm(result.get("Runtime"), result["MemorySize"])
    return result


UPDATE_FUNCTION_CONFIGURATION = struct(RevisionId=text(), **CONFIGURATION_MEMBERS)


def update_function_configuration(store, params, body):
    """UpdateFunctionConfiguration: merges the given members into $LATEST."""
    check_body(body, UPDATE_FUNCTION_CONFIGURATION)
    name, qualifier = function_target(store, params, namespaced=False, max_length=140)
    if qualifier:
        raise invalid_parameter("Qualifier is not supported for UpdateFunctionConfiguration.")
    check_runtime(body.get("Runtime"))
    check_environment(body.get("Environment"))
    with store.lock:
        function = find_function(store, name)
        config = function.versions["$LATEST"]
        check_revision(body.get("RevisionId"), config["RevisionId"])
        check_settled(store, function, "update")
        if config["PackageType"] == "Zip" and (body.get("Runtime") == ""
                                               or body.get("Handler") == ""):
            raise invalid_parameter("Runtime and Handler are mandatory parameters for functions "
                                    "created with deployment packages.")
        layers = (check_function_layers(store, body["Layers"])
                  if body.get("Layers") is not None else None)
        apply_configuration(store, config, body)
        if layers is not None:
            config["Layers"] = layers
        touch(config)
        begin_change(store, function, creating=False)
        result = dict(config)
    store.runner.retire(function_arn(store, name))
    store.runner.prewarm(result.get("Runtime"), result["MemorySize"])
    return result


# -- Invoke ------------------------------------------------------------------------------------

INVOCATION_TYPES = ("Event", "RequestResponse", "DryRun")
LOG_TYPES = ("None", "Tail")


def prepare_invocation(store, params, body, invocation_types, operation):
    """The checks the Invoke family shares: (invocation type, log type, Job, payload bytes)."""
    invocation_type = params.get("InvocationType") or "RequestResponse"
    log_type = params.get("LogType") or "None"
    problems = []
    if invocation_type not in invocation_types:
        problems.append(constraint_text(invocation_type, "invocationType",
                                        "Member must satisfy enum "
                                        f"value set: [{', '.join(invocation_types)}]"))
    if log_type not in LOG_TYPES:
        problems.append(constraint_text(log_type, "logType",
                                        "Member must satisfy enum value set: "
                                        f"[{', '.join(LOG_TYPES)}]"))
    if params.get("DurableExecutionName") is not None and not re.fullmatch(
            r"[a-zA-Z0-9-_]{1,64}", params["DurableExecutionName"]):
        problems.append(constraint_text(params["DurableExecutionName"], "durableExecutionName",
                                        "Member must satisfy regular expression pattern: "
                                        "[a-zA-Z0-9-_]+"))
    if problems:
        raise validation_error(problems)
    event_limit = (MAX_INVOKE_ASYNC_PAYLOAD_BYTES if operation == "InvokeAsync"
                   else MAX_ASYNC_PAYLOAD_BYTES)
    if invocation_type == "Event" and len(body) > event_limit:
        raise LambdaError("RequestEntityTooLargeException", 413,
                          f"{len(body)} byte payload is too large for the Event invocation type "
                          f"(limit {event_limit} bytes)")
    if len(body) > MAX_SYNC_PAYLOAD_BYTES:
        raise LambdaError("RequestEntityTooLargeException", 413,
                          f"Request must be smaller than {MAX_SYNC_PAYLOAD_BYTES} bytes for the "
                          f"{operation} operation")
    payload = body if body.strip() else b"{}"       # an empty payload reaches the handler as {}
    parse_json_body(payload)
    name, qualifier = function_target(store, params)
    job = invocation_job(store, name, qualifier, payload, invocation_type,
                         params.get("DurableExecutionName"))
    job.trace_header = params.get("TraceHeader")
    return invocation_type, log_type, job, payload


def invocation_headers(job, outcome, log_type, request_id):
    headers = {"X-Amz-Executed-Version": outcome.version, "x-amzn-RequestId": request_id}
    if outcome.function_error:
        headers["X-Amz-Function-Error"] = outcome.function_error
    if log_type == "Tail":
        headers["X-Amz-Log-Result"] = log_tail(outcome)
    if job.durable is not None:
        headers["X-Amz-Durable-Execution-Arn"] = job.durable.arn
    return headers


def invoke(store, params, body):
    """Invoke: RequestResponse runs the handler and answers its result; Event answers 202 and runs
    it in the background; DryRun only checks."""
    invocation_type, log_type, job, payload = prepare_invocation(
        store, params, body, INVOCATION_TYPES, "InvokeFunction")
    if invocation_type == "DryRun":
        return Reply(204)
    if invocation_type == "Event":
        request_id = start_in_background(store, job, payload)
        headers = {"x-amzn-RequestId": request_id}
        if job.durable is not None:
            headers["X-Amz-Durable-Execution-Arn"] = job.durable.arn
        return Reply(202, headers)
    request_id = new_uuid()
    outcome = run_invocation(store, job, payload, request_id, client_context(params))
    return Reply(200, invocation_headers(job, outcome, log_type, request_id), outcome.payload)


def invoke_async(store, params, body):
    """InvokeAsync (deprecated): an Event invocation answered with 202, payload at most 256 KB."""
    invocation_type, log_type, job, payload = prepare_invocation(
        store, dict(params, InvocationType="Event"), body, INVOCATION_TYPES, "InvokeAsync")
    request_id = start_in_background(store, job, payload)
    return Reply(202, {"x-amzn-RequestId": request_id}, b"{}")     # Status is the HTTP status


def invoke_with_response_stream(store, params, body):
    """InvokeWithResponseStream: the result as an event stream sent as it is produced, PayloadChunk
    events then one InvokeComplete. Handlers wrapped in awslambda.streamifyResponse stream each
    write; others send their result as one chunk."""
    invocation_type, log_type, job, payload = prepare_invocation(
        store, params, body, ("RequestResponse", "DryRun"), "InvokeWithResponseStream")
    if invocation_type == "DryRun":
        return Reply(204)
    request_id = new_uuid()
    headers = {"X-Amz-Executed-Version": job.version, "x-amzn-RequestId": request_id}
    context = client_context(params)

    def produce(emit):
        def chunk(data, content_type):
            emit(event_stream_message("PayloadChunk", data, "application/octet-stream"))
        outcome = run_invocation(store, job, payload, request_id, context, on_chunk=chunk)
        complete = {}
        if outcome.function_error:
            complete = {"ErrorCode": outcome.function_error,
                        "ErrorDetails": outcome.payload.decode("utf-8", "replace")}
        elif not outcome.streamed:
            chunk(outcome.payload, None)
        if log_type == "Tail":
            complete["LogResult"] = log_tail(outcome)
        emit(event_stream_message("InvokeComplete", json.dumps(complete).encode(),
                                  "application/json"))

    return StreamReply(200, headers, "application/vnd.amazon.eventstream", produce)


def event_stream_message(event_type, payload, content_type):
    """One application/vnd.amazon.eventstream message: prelude, headers, payload and CRCs."""
    headers = b""
    for name, value in ((":event-type", event_type), (":content-type", content_type),
                        (":message-type", "event")):
        raw_name, raw_value = name.encode(), value.encode()
        headers += (bytes([len(raw_name)]) + raw_name + b"\x07"
                    + len(raw_value).to_bytes(2, "big") + raw_value)
    total = 12 + len(headers) + len(payload) + 4
    prelude = total.to_bytes(4, "big") + len(headers).to_bytes(4, "big")
    message = prelude + binascii.crc32(prelude).to_bytes(4, "big") + headers + payload
    return message + binascii.crc32(message).to_bytes(4, "big")


def client_context(params):
    """The decoded X-Amz-Client-Context header (base64 JSON), as context.clientContext."""
    raw = params.get("ClientContext")
    if not raw:
        return None
    try:
        return json.loads(base64.b64decode(raw, validate=True))
    except (binascii.Error, ValueError):
        raise invalid_parameter("Client context must be a valid Base64-encoded JSON "
                                "object.") from None


# -- Versions and aliases ----------------------------------------------------------------------

PUBLISH_VERSION = struct(CodeSha256=text(), Description=text(0, 256), RevisionId=text(),
                         PublishTo=text(enum=("LATEST_PUBLISHED",)))


def publish_version(store, params, body):
    """PublishVersion: an immutable snapshot of $LATEST; unchanged code and configuration give back
    the last version instead of a new one."""
    check_body(body, PUBLISH_VERSION)
    name, qualifier = function_target(store, params, namespaced=False, max_length=140)
    with store.lock:
        function = find_function(store, name)
        latest = function.versions["$LATEST"]
        check_revision(body.get("RevisionId"), latest["RevisionId"])
        check_settled(store, function, "publish")
        if body.get("CodeSha256") is not None and body["CodeSha256"] != latest["CodeSha256"]:
            raise invalid_parameter(
                f"CodeSHA256 ({body['CodeSha256']}) is different from current CodeSHA256 in "
                f"$LATEST ({latest['CodeSha256']}). Please try again with the CodeSHA256 in "
                "$LATEST.")
        return dict(snapshot_latest(store, function, body.get("Description")))


PAGE_QUERY = struct(Marker=text(), MaxItems=integer(1, 10000))


def list_versions_by_function(store, params, body):
    """ListVersionsByFunction: $LATEST first, then the versions in order, 50 a page."""
    query = query_members(params, PAGE_QUERY, integers=("MaxItems",))
    name, qualifier = function_target(store, params)
    with store.lock:
        function = find_function(store, name)
        items = [listed(function.versions["$LATEST"],
                        FunctionArn=function_arn(store, name, "$LATEST"))]
        items.extend(listed(function.versions[v]) for v in sorted(
            (v for v in function.versions if v != "$LATEST"), key=int))
    return paginate(items, query.get("Marker"), min(query.get("MaxItems") or 50, 50), "Versions",
                    "NextMarker")


ALIAS_NAME = text(1, 128, pattern=r"(?!^[0-9]+$)([a-zA-Z0-9-_]+)")
FUNCTION_VERSION = text(1, 1024, pattern=r"(\$LATEST(\.PUBLISHED)?|[0-9]+)")
ROUTING_CONFIG = struct(AdditionalVersionWeights=map_of(text(1, 1024, pattern=r"[0-9]+"),
                                                        number(0.0, 1.0)))
ALIAS_PATH = struct(Name=ALIAS_NAME)
CREATE_ALIAS = struct(("Name", "FunctionVersion"), Name=ALIAS_NAME,
                      FunctionVersion=FUNCTION_VERSION,
                      Description=text(0, 256), RoutingConfig=ROUTING_CONFIG)
UPDATE_ALIAS = struct(FunctionVersion=FUNCTION_VERSION, Description=text(0, 256),
                      RoutingConfig=ROUTING_CONFIG, RevisionId=text())


def check_routing(store, function, version, routing):
    """AWS's rules for an alias's target and its one weighted extra version."""
    weights = (routing or {}).get("AdditionalVersionWeights") or {}
    if len(weights) > 1:
        raise invalid_parameter("Number of items in AdditionalVersionWeights cannot be greater "
                                "than 1")
    if version in weights:
        raise invalid_parameter(f"Invalid function version {version}. Function version {version} "
                                "is already included in routing configuration.")
    if weights and version == "$LATEST":
        raise invalid_parameter("$LATEST is not supported for an alias pointing to more than 1 "
                                "version", typed=False)
    for target in (version, *weights):
        if target not in function.versions:
            raise function_not_found(function_arn(store, function.name, target))


def set_routing(alias, routing):
    weights = (routing or {}).get("AdditionalVersionWeights")
    if weights:
        alias["RoutingConfig"] = {"AdditionalVersionWeights": dict(weights)}
    else:
        alias.pop("RoutingConfig", None)


def create_alias(store, params, body):
    """CreateAlias: a name for a version, optionally splitting traffic with one more version."""
    check_body(body, CREATE_ALIAS)
    name, qualifier = function_target(store, params, namespaced=False, max_length=140)
    version = body["FunctionVersion"]
    with store.lock:
        function = find_function(store, name, version)
        check_routing(store, function, version, body.get("RoutingConfig"))
        if body["Name"] in function.aliases:
            raise conflict(f"Alias already exists: {function_arn(store, name, body['Name'])}")
        alias = {"AliasArn": function_arn(store, name, body["Name"]), "Name": body["Name"],
                 "FunctionVersion": version, "Description": body.get("Description", ""),
                 "RevisionId": new_revision_id()}
        set_routing(alias, body.get("RoutingConfig"))
        function.aliases[body["Name"]] = alias
        return dict(alias)


def get_alias(store, params, body):
    """GetAlias."""
    query_members(params, ALIAS_PATH)
    name, qualifier = function_target(store, params, namespaced=False, max_length=140)
    with store.lock:
        return dict(find_alias(store, find_function(store, name), params["Name"]))


def update_alias(store, params, body):
    """UpdateAlias: every update gets a new RevisionId, even one that changes nothing."""
    check_body(body, UPDATE_ALIAS)
    query_members(params, ALIAS_PATH)
    name, qualifier = function_target(store, params, namespaced=False, max_length=140)
    with store.lock:
        function = find_function(store, name)
        alias = find_alias(store, function, params["Name"], "Alias not found")
        check_revision(body.get("RevisionId"), alias["RevisionId"])
        version = body.get("FunctionVersion", alias["FunctionVersion"])
        routing = body.get("RoutingConfig", alias.get("RoutingConfig"))
        check_routing(store, function, version, routing)
        alias["FunctionVersion"] = version
        alias["Description"] = body.get("Description", alias["Description"])
        set_routing(alias, routing)
        alias["RevisionId"] = new_revision_id()
        provisioned = alias["Name"] in function.provisioned
        reply = dict(alias)
    if provisioned:                     # its provisioned concurrency follows it
        provide_concurrency(store, name)
    return reply


def delete_alias(store, params, body):
    """DeleteAlias: deleting an alias that does not exist succeeds, as on AWS."""
    query_members(params, ALIAS_PATH)
    name, qualifier = function_target(store, params, namespaced=False, max_length=140)
    with store.lock:
        function = find_function(store, name)
        provisioned = params["Name"] in function.provisioned
        if function.aliases.pop(params["Name"], None) is not None:
            for attached in (function.policies, function.provisioned, function.url_configs,
                             function.event_invoke_configs):
                attached.pop(params["Name"], None)
    if provisioned:
        provide_concurrency(store, name)
    return Reply(204)


LIST_ALIASES_QUERY = struct(FunctionVersion=FUNCTION_VERSION, Marker=text(),
                            MaxItems=integer(1, 10000))


def list_aliases(store, params, body):
    """ListAliases: by name, optionally only those pointing at FunctionVersion."""
    query = query_members(params, LIST_ALIASES_QUERY, integers=("MaxItems",))
    name, qualifier = function_target(store, params, namespaced=False, max_length=140)
    with store.lock:
        function = find_function(store, name)
        items = [dict(function.aliases[a]) for a in sorted(function.aliases)
                 if query.get("FunctionVersion") in (None, function.aliases[a]["FunctionVersion"])]
    return paginate(items, query.get("Marker"), min(query.get("MaxItems") or 50, 50), "Aliases",
                    "NextMarker")


# -- Permissions -------------------------------------------------------------------------------
# Each qualifier (the unqualified function, a version, an alias) has a policy of its own.

STATEMENT_ID = text(1, 100, pattern=r"([a-zA-Z0-9-_]+)")
ADD_PERMISSION = struct(
    ("StatementId", "Action", "Principal"), StatementId=STATEMENT_ID,
    Action=text(0, 10000, pattern=r"(lambda:[*]|lambda:[a-zA-Z]+|[*])"),
    Principal=text(0, 2048, pattern=r"[^\s]+"),
    SourceArn=text(0, 10000,
                   pattern=r"arn:(aws[a-zA-Z0-9-]*):([a-zA-Z0-9\-])+:((eusc-)?[a-z]{2}((-gov)|"
                           r"(-iso([a-z]?)))?-[a-z]+-\d{1})?:(\d{12})?:(.*)"),
    FunctionUrlAuthType=text(enum=("NONE", "AWS_IAM")), InvokedViaFunctionUrl=boolean(),
    SourceAccount=text(0, 12, pattern=r"\d{12}"),
    EventSourceToken=text(0, 256, pattern=r"[a-zA-Z0-9._\-]+"), RevisionId=text(),
    PrincipalOrgID=text(12, 34, pattern=r"o-[a-z0-9]{10,32}"))
REMOVE_PERMISSION_PATH = struct(StatementId=text(1, 100, pattern=r"([a-zA-Z0-9-_.]+)"),
                                RevisionId=text())


def statement_principal(principal):
    """A Principal as AWS writes it into a policy: "*", {"Service": ...} or {"AWS": arn}."""
    if principal == "*":
        return "*"
    if re.fullmatch(r"\d{12}", principal):
        return {"AWS": f"arn:aws:iam::{principal}:root"}
    if principal.startswith("arn:"):
        return {"AWS": principal}
    if re.fullmatch(r"[a-z0-9.-]+\.(amazonaws\.com|amazon\.com)", principal):
        return {"Service": principal}
    raise invalid_parameter("The provided principal was invalid. Please check the principal and "
                            "try again.")


def policy_scope(store, function, qualifier):
    """The RevisionId of what a policy belongs to; the qualifier must exist. Caller holds lock."""
    if qualifier is None:
        return function.versions["$LATEST"]["RevisionId"]
    if qualifier in function.aliases:
        return function.aliases[qualifier]["RevisionId"]
    if qualifier.isdigit() and qualifier in function.versions:
        return function.versions[qualifier]["RevisionId"]
    if qualifier.isdigit() or not re.fullmatch(r"[a-zA-Z0-9-_]+", qualifier):
        raise function_not_found(function_arn(store, function.name, qualifier))
    raise not_found(f"Cannot find alias arn: {function_arn(store, function.name, qualifier)}")


def add_permission(store, params, body):
    """AddPermission: one statement in the policy of the function, a version or an alias."""
    check_body(body, ADD_PERMISSION)
    name, qualifier = function_target(store, params)
    if qualifier == "$LATEST":
        raise invalid_parameter("We currently do not support adding policies for $LATEST.")
    principal = statement_principal(body["Principal"])
    with store.lock:
        function = find_function(store, name)
        scope_revision = policy_scope(store, function, qualifier)
        policy = function.policies.get(qualifier or "")
        expected = policy.revision_id if policy else scope_revision
        check_revision(body.get("RevisionId"), expected, "GetPolicy")
        if policy and any(s.get("Sid") == body["StatementId"] for s in policy.statements):
            raise conflict(f"The statement id ({body['StatementId']}) provided already exists. "
                           "Please provide a new statement id, or remove the existing statement.")
        statement = {"Sid": body["StatementId"], "Effect": "Allow", "Principal": principal,
                     "Action": body["Action"], "Resource": function_arn(store, name, qualifier)}
        equals = {}
        for member, key in (("SourceAccount", "AWS:SourceAccount"),
                            ("FunctionUrlAuthType", "lambda:FunctionUrlAuthType"),
                            ("PrincipalOrgID", "aws:PrincipalOrgID"),
                            ("EventSourceToken", "lambda:EventSourceToken")):
            if body.get(member):
                equals[key] = body[member]
        condition = {}
        if equals:
            condition["StringEquals"] = equals
        if body.get("SourceArn"):
            condition["ArnLike"] = {"AWS:SourceArn": body["SourceArn"]}
        if body.get("InvokedViaFunctionUrl"):
            condition["Bool"] = {"lambda:InvokedViaFunctionUrl": "true"}
        if condition:
            statement["Condition"] = condition
        policy = function.policies.setdefault(qualifier or "", Policy())
        policy.statements.append(statement)
        policy.revision_id = new_revision_id()
        return {"Statement": json.dumps(statement, separators=(",", ":"))}


def get_policy(store, params, body):
    """GetPolicy: the policy document of the function, a version or an alias."""
    name, qualifier = function_target(store, params)
    with store.lock:
        function = store.functions.get(name)
        policy = function and function.policies.get(qualifier or "")
        if not policy:
            raise not_found("The resource you requested does not exist.")
        return {"Policy": policy.document(), "RevisionId": policy.revision_id}


def remove_permission(store, params, body):
    """RemovePermission: the last statement removed takes the policy with it."""
    query_members(params, REMOVE_PERMISSION_PATH)
    name, qualifier = function_target(store, params)
    with store.lock:
        function = store.functions.get(name)
        if function is None:
            raise not_found(f"No policy found for: {function_arn(store, name)}")
        policy_scope(store, function, qualifier)
        policy = function.policies.get(qualifier or "")
        if policy is None:
            raise not_found("No policy is associated with the given resource.")
        check_revision(params.get("RevisionId"), policy.revision_id)
        kept = [s for s in policy.statements if s.get("Sid") != params["StatementId"]]
        if len(kept) == len(policy.statements):
            raise not_found(f"Statement {params['StatementId']} is not found in resource policy.")
        policy.statements = kept
        policy.revision_id = new_revision_id()
        if not kept:
            del function.policies[qualifier or ""]
    return Reply(204)


RESOURCE_POLICY_ARN = text(0, 512, pattern=(
    r"arn:(aws[a-zA-Z-]*)?:lambda:(eusc-)?[a-z]{2}((-gov)|(-iso([a-z]?)))?-[a-z]+-\d{1}:\d{12}:"
    r"(function:[a-zA-Z0-9-_]+(:(\$LATEST(\.PUBLISHED)?|[a-zA-Z0-9-_])+)?|"
    r"runtime/[a-zA-Z0-9-_./]+)"))
REVISION_ID = text(36, 36, pattern=r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
RESOURCE_POLICY_PATH = struct(ResourceArn=RESOURCE_POLICY_ARN, RevisionId=REVISION_ID)
PUT_RESOURCE_POLICY = struct(("Policy",), Policy=text(1, 20480, pattern=r"[\s\S]+"),
                             RevisionId=REVISION_ID)


def resource_policy_target(store, params):
    """(function, qualifier) of a resource-policy ARN. Caller holds store.lock."""
    query_members(params, RESOURCE_POLICY_PATH)
    arn = params["ResourceArn"]
    if ":function:" not in arn:
        raise invalid_parameter(f"Resource policies of {arn} are not supported by this fake; "
                                "use a function ARN.")
    name, qualifier = parse_function_ref(store, arn)
    function = find_function(store, name)
    policy_scope(store, function, qualifier)
    return function, qualifier


def put_resource_policy(store, params, body):
    """PutResourcePolicy: replaces a function's whole policy (the one AddPermission adds to)."""
    check_body(body, PUT_RESOURCE_POLICY)
    try:
        document = json.loads(body["Policy"])
        statements = document["Statement"]
        statements = [statements] if isinstance(statements, dict) else list(statements)
        if not all(isinstance(s, dict) for s in statements):
            raise TypeError
    except (ValueError, KeyError, TypeError):
        raise invalid_parameter("The policy is not a valid JSON policy document with a "
                                "Statement.") from None
    with store.lock:
        function, qualifier = resource_policy_target(store, params)
        policy = function.policies.get(qualifier or "")
        check_revision(body.get("RevisionId"), policy.revision_id if policy else None,
                       "GetResourcePolicy")
        policy = function.policies.setdefault(qualifier or "", Policy())
        policy.statements = statements
        policy.revision_id = new_revision_id()
        return {"Policy": policy.document(), "RevisionId": policy.revision_id}


def find_resource_policy(store, params):
    """(function, qualifier, Policy) of a resource-policy ARN that has one. Caller holds lock."""
    function, qualifier = resource_policy_target(store, params)
    policy = function.policies.get(qualifier or "")
    if policy is None:
        raise not_found("The resource you requested does not exist.")
    return function, qualifier, policy


def get_resource_policy(store, params, body):
    """GetResourcePolicy."""
    with store.lock:
        policy = find_resource_policy(store, params)[2]
        return {"Policy": policy.document(), "RevisionId": policy.revision_id}


def delete_resource_policy(store, params, body):
    """DeleteResourcePolicy."""
    with store.lock:
        function, qualifier, policy = find_resource_policy(store, params)
        check_revision(params.get("RevisionId"), policy.revision_id, "GetResourcePolicy")
        del function.policies[qualifier or ""]
    return Reply(204)


# -- Concurrency -------------------------------------------------------------------------------

PUT_FUNCTION_CONCURRENCY = struct(("ReservedConcurrentExecutions",),
                                  ReservedConcurrentExecutions=integer(0))
PROVISIONED_QUERY = struct(Qualifier=text(1, 128, pattern=r"(|[a-zA-Z0-9$_-]+)"))
PUT_PROVISIONED_CONCURRENCY = struct(("ProvisionedConcurrentExecutions",),
                                     ProvisionedConcurrentExecutions=integer(1))


def unqualified_target(store, params):
    """The function name of an operation AWS permits on unqualified functions only."""
    name, qualifier = function_target(store, params, namespaced=False, max_length=140)
    if qualifier:
        raise invalid_parameter("This operation is permitted on Lambda functions only. Aliases and "
                                "versions do not support this operation. Please specify either a "
                                "function name or an unqualified function ARN.")
    return name


def unreserved_concurrency(store, leaving_out=None):
    """The account's concurrency not reserved by any function (but `leaving_out`)."""
    reserved = sum(f.reserved_concurrency or 0 for f in store.functions.values()
                   if f is not leaving_out)
    return ACCOUNT_CONCURRENCY - reserved


def put_function_concurrency(store, params, body):
    """PutFunctionConcurrency: reserved concurrency; at least 100 must stay unreserved."""
    check_body(body, PUT_FUNCTION_CONCURRENCY)
    name = unqualified_target(store, params)
    wanted = body["ReservedConcurrentExecutions"]
    with store.lock:
        function = find_function(store, name, "$LATEST")
        if unreserved_concurrency(store, function) - wanted < MIN_UNRESERVED_CONCURRENCY:
            raise invalid_parameter("Specified ReservedConcurrentExecutions for function decreases "
                                    "account's UnreservedConcurrentExecution below its minimum "
                                    f"value of [{MIN_UNRESERVED_CONCURRENCY}].", typed=False)
        provisioned = function.provisioned_total()
        if wanted < provisioned:
            raise invalid_parameter(f" ReservedConcurrentExecutions  {wanted} should not be lower "
                                    "than function's total provisioned concurrency "
                                    f"[{provisioned}].", typed=False)
        function.reserved_concurrency = wanted
        return {"ReservedConcurrentExecutions": wanted}


def get_function_concurrency(store, params, body):
    """GetFunctionConcurrency: an empty object when nothing is reserved, as on AWS."""
    name = unqualified_target(store, params)
    with store.lock:
        function = find_function(store, name)
        if function.reserved_concurrency is None:
            return {}
        return {"ReservedConcurrentExecutions": function.reserved_concurrency}


def delete_function_concurrency(store, params, body):
    """DeleteFunctionConcurrency."""
    name = unqualified_target(store, params)
    with store.lock:
        find_function(store, name).reserved_concurrency = None
    return Reply(204)


def provisioned_target(store, params, operation):
    """(name, qualifier) of a provisioned-concurrency operation; $LATEST refused as on AWS."""
    query_members(params, PROVISIONED_QUERY)
    name, qualifier = function_target(store, params, namespaced=False, max_length=140)
    if qualifier is None:
        raise validation_error([constraint_text(None, "qualifier", "Member must not be null")])
    if qualifier == "$LATEST":
        raise invalid_parameter("Provisioned Concurrency Configs cannot be applied to unpublished "
                                "function versions." if operation == "put" else
                                "The function resource provided must be an alias or a published "
                                "version.")
    return name, qualifier


def check_provisioned_target(store, function, qualifier):
    """The qualifier must be an existing alias or version. Caller holds store.lock."""
    if qualifier in function.aliases:
        return
    if not qualifier.isdigit():
        raise not_found(f"Cannot find alias arn: {function_arn(store, function.name, qualifier)}")
    if qualifier not in function.versions:
        raise function_not_found(function_arn(store, function.name, qualifier))


def provisioned_timestamp():
    return time.strftime("%Y-%m-%dT%H:%M:%S+0000", time.gmtime())


def provide_concurrency(store, name):
    """Load the environments a function's provisioned concurrency configs ask for, and end those
    no longer asked for (after a change to the configs, to an alias, or a deletion). A config on
    a weighted alias splits its count between the alias's versions by weight. A config whose
    environments fail their init is FAILED, as on AWS."""
    wanted = {}
    with store.lock:
        function = store.functions.get(name)
        for qualifier, config in (function.provisioned.items() if function else ()):
            alias = function.aliases.get(qualifier)
            count = config["RequestedProvisionedConcurrentExecutions"]
            split = {v: round(count * w) for v, w in routing_weights(alias or {}).items()}
            split[alias["FunctionVersion"] if alias else qualifier] = count - sum(split.values())
            jobs = wanted[(function_arn(store, name), qualifier)] = []
            for version, share in split.items():
                job = Job(store, function, version, function.versions[version],
                          function.packages[version], qualifier)
                job.initialization = "provisioned-concurrency"
                jobs.append((job, share))
    failures = store.runner.provide(function_arn(store, name), wanted)
    with store.lock:
        for (_, qualifier), error in failures.items():
            config = function.provisioned.get(qualifier)
            if config is not None:
                config.update(Status="FAILED", StatusReason="FUNCTION_ERROR_INIT_FAILURE",
                              AvailableProvisionedConcurrentExecutions=0)
                say(store, "error", f"provisioned concurrency of {name}:{qualifier} failed its "
                                    f"init: {error.decode('utf-8', 'replace')}")


def put_provisioned_concurrency_config(store, params, body):
    """PutProvisionedConcurrencyConfig: READY at once (AWS allocates over minutes)."""
    check_body(body, PUT_PROVISIONED_CONCURRENCY)
    name, qualifier = provisioned_target(store, params, "put")
    wanted = body["ProvisionedConcurrentExecutions"]
    with store.lock:
        function = store.functions.get(name)
        if function is None:
            shown = function_arn(store, name, qualifier)
            raise (function_not_found(shown) if qualifier.isdigit()
                   else not_found(f"Cannot find alias arn: {shown}"))
        check_provisioned_target(store, function, qualifier)
        alias = function.aliases.get(qualifier)
        if alias and alias["FunctionVersion"] in function.provisioned:
            raise conflict("Alias can't be used for Provisioned Concurrency configuration on an "
                           "already Provisioned version")
        if not alias and any(a["FunctionVersion"] == qualifier and a["Name"] in function.provisioned
                             for a in function.aliases.values()):
            raise conflict("Version is pointed by a Provisioned Concurrency alias")
        others = sum(c["RequestedProvisionedConcurrentExecutions"]
                     for q, c in function.provisioned.items() if q != qualifier)
        if (function.reserved_concurrency is not None
                and others + wanted > function.reserved_concurrency):
            raise invalid_parameter("Requested Provisioned Concurrency should not be greater than "
                                    "the reservedConcurrentExecution for function")
        if wanted > ACCOUNT_CONCURRENCY:
            raise invalid_parameter("Specified ConcurrentExecutions for function is greater than "
                                    f"account's unreserved concurrency [{ACCOUNT_CONCURRENCY}].",
                                    typed=False)
        if function.reserved_concurrency is None:
            # Outside a reservation, provisioned concurrency comes out of the unreserved pool.
            provisioned_elsewhere = sum(
                c["RequestedProvisionedConcurrentExecutions"] for f in store.functions.values()
                if f.reserved_concurrency is None for q, c in f.provisioned.items()
                if not (f is function and q == qualifier))
            if (unreserved_concurrency(store) - provisioned_elsewhere - wanted
                    < MIN_UNRESERVED_CONCURRENCY):
                raise invalid_parameter("Specified ConcurrentExecutions for function decreases "
                                        "account's UnreservedConcurrentExecution below its minimum "
                                        f"value of [{MIN_UNRESERVED_CONCURRENCY}].", typed=False)
        config = {"RequestedProvisionedConcurrentExecutions": wanted,
                  "AvailableProvisionedConcurrentExecutions": wanted,
                  "AllocatedProvisionedConcurrentExecutions": wanted,
                  "Status": "READY", "LastModified": provisioned_timestamp()}
        function.provisioned[qualifier] = config
    provide_concurrency(store, name)
    with store.lock:
        if not store.strict_aws or config["Status"] != "READY":
            return dict(config)
        settled = dict(config)          # strictly, AWS's allocation takes a moment
        config.update(Status="IN_PROGRESS", AllocatedProvisionedConcurrentExecutions=0,
                      AvailableProvisionedConcurrentExecutions=0)
        after_settling(store, settle_allocation, store, config, settled)
        return dict(config)


def settle_allocation(store, config, settled):
    """Strictly: provisioned concurrency allocated, READY (unless replaced meanwhile)."""
    with store.lock:
        if config["Status"] == "IN_PROGRESS":
            config.update(settled)


def get_provisioned_concurrency_config(store, params, body):
    """GetProvisionedConcurrencyConfig."""
    name, qualifier = provisioned_target(store, params, "get")
    with store.lock:
        function = store.functions.get(name)
        if function is None:
            raise not_found(f"Cannot find alias arn: {function_arn(store, name, qualifier)}")
        check_provisioned_target(store, function, qualifier)
        config = function.provisioned.get(qualifier)
        if config is None:
            raise LambdaError("ProvisionedConcurrencyConfigNotFoundException", 404,
                              "No Provisioned Concurrency Config found for this function")
        return dict(config)


def delete_provisioned_concurrency_config(store, params, body):
    """DeleteProvisionedConcurrencyConfig: succeeds when there is nothing to delete, as on AWS."""
    name, qualifier = provisioned_target(store, params, "delete")
    with store.lock:
        function = store.functions.get(name)
        if function is None:
            raise function_not_found(function_arn(store, name, qualifier))
        check_provisioned_target(store, function, qualifier)
        provisioned = function.provisioned.pop(qualifier, None)
    if provisioned:
        provide_concurrency(store, name)
    return Reply(204)


LIST_PROVISIONED_QUERY = struct(Marker=text(), MaxItems=integer(1, 50))


def list_provisioned_concurrency_configs(store, params, body):
    """ListProvisionedConcurrencyConfigs."""
    query = query_members(params, LIST_PROVISIONED_QUERY, integers=("MaxItems",))
    name = unqualified_target(store, params)
    with store.lock:
        function = find_function(store, name)
        items = [dict(config, FunctionArn=function_arn(store, name, qualifier))
                 for qualifier, config in sorted(function.provisioned.items())]
    return paginate(items, query.get("Marker"), query.get("MaxItems") or 50,
                    "ProvisionedConcurrencyConfigs", "NextMarker")


# -- Function URLs -----------------------------------------------------------------------------
# A URL config belongs to the unqualified function or to one alias. Its URL points at this server
# (`<url-id>.lambda-url.<region>.localhost:<port>`), where the execution engine serves it.

URL_QUALIFIER = text(1, 128, pattern=r"((?!^\d+$)^[0-9a-zA-Z-_]+$)")
URL_QUERY = struct(Qualifier=URL_QUALIFIER)
CORS = struct(AllowCredentials=boolean(), AllowHeaders=list_of(text(0, 1024), 0, 100),
              AllowMethods=list_of(text(0, 6), 0, 6), AllowOrigins=list_of(text(1, 253), 0, 100),
              ExposeHeaders=list_of(text(0, 1024), 0, 100), MaxAge=integer(0, 86400))
INVOKE_MODE = text(enum=("RESPONSE_STREAM", "BUFFERED"))     # in the order AWS lists them
CREATE_FUNCTION_URL_CONFIG = struct(("AuthType",), AuthType=text(enum=("NONE", "AWS_IAM")),
                                    Cors=CORS, InvokeMode=INVOKE_MODE)
UPDATE_FUNCTION_URL_CONFIG = struct(AuthType=text(enum=("NONE", "AWS_IAM")), Cors=CORS,
                                    InvokeMode=INVOKE_MODE)
URL_ID_ALPHABET = "abcdefghijklmnopqrstuvwxyz0123456789"


def url_target(store, params):
    """(name, qualifier) of a URL operation: the qualifier may only be an alias name."""
    if params.get("Qualifier") is not None:
        query_members(params, URL_QUERY)
    name, qualifier = function_target(store, params, namespaced=False, max_length=140)
    if qualifier is not None:
        query_members({"Qualifier": qualifier}, URL_QUERY)
    return name, qualifier


def url_timestamp():
    return datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def check_cors(cors):
    if cors is not None and cors.get("AllowOrigins") == []:
        raise invalid_parameter("You can't leave AllowOrigins as empty when Cors is enabled.")


def url_reply(config, *members):
    """A FunctionUrlConfig with the members an operation answers (InvokeMode only once set)."""
    reply = {k: config[k]
             for k in ("FunctionUrl", "FunctionArn", "AuthType", "CreationTime") + members
             if k in config}
    if "Cors" in config:
        reply["Cors"] = config["Cors"]
    return reply


def url_as_read(config):
    """A FunctionUrlConfig as GetFunctionUrlConfig and ListFunctionUrlConfigs answer it: its
    InvokeMode BUFFERED until it is set."""
    return dict(url_reply(config, "LastModifiedTime"),
                InvokeMode=config.get("InvokeMode", "BUFFERED"))


def find_url_function(store, name, qualifier):
    """The function (and alias) a URL operation names; AWS words its absence its own way."""
    function = store.functions.get(name)
    if function is None or (qualifier and qualifier not in function.aliases):
        raise not_found("Function does not exist")
    return function


def create_function_url_config(store, params, body):
    """CreateFunctionUrlConfig: a stable URL for the function or one of its aliases."""
    check_body(body, CREATE_FUNCTION_URL_CONFIG)
    name, qualifier = url_target(store, params)
    check_cors(body.get("Cors"))
    with store.lock:
        function = find_url_function(store, name, qualifier)
        arn = function_arn(store, name, qualifier)
        if (qualifier or "") in function.url_configs:
            raise conflict(f"Failed to create function url config for [functionArn = {arn}]. Error "
                           "message:  FunctionUrlConfig exists for this Lambda function")
        url_id = "".join(random.choice(URL_ID_ALPHABET) for _ in range(32))
        host = store.endpoint_url.split("://", 1)[-1].rsplit(":", 1)
        stamp = url_timestamp()
        config = {"FunctionUrl": f"http://{url_id}.lambda-url.{store.region}.localhost:{host[-1]}/",
                  "FunctionArn": arn, "AuthType": body["AuthType"], "CreationTime": stamp,
                  "LastModifiedTime": stamp, "UrlId": url_id}
        if body.get("Cors") is not None:
            config["Cors"] = body["Cors"]
        if body.get("InvokeMode"):
            config["InvokeMode"] = body["InvokeMode"]
        function.url_configs[qualifier or ""] = config
        store.function_urls[url_id] = (name, qualifier)
        return url_reply(config, "InvokeMode")


def find_url_config(store, name, qualifier):
    function = store.functions.get(name)
    config = function and function.url_configs.get(qualifier or "")
    if not config:
        raise not_found("The resource you requested does not exist.")
    return config


def get_function_url_config(store, params, body):
    """GetFunctionUrlConfig."""
    name, qualifier = url_target(store, params)
    with store.lock:
        config = find_url_config(store, name, qualifier)
        return url_as_read(config)


def update_function_url_config(store, params, body):
    """UpdateFunctionUrlConfig: members not given stay as they are."""
    check_body(body, UPDATE_FUNCTION_URL_CONFIG)
    name, qualifier = url_target(store, params)
    check_cors(body.get("Cors"))
    with store.lock:
        find_url_function(store, name, qualifier)          # the function itself must exist
        config = find_url_config(store, name, qualifier)
        for member in ("AuthType", "Cors", "InvokeMode"):
            if body.get(member) is not None:
                config[member] = body[member]
        config["LastModifiedTime"] = url_timestamp()
        return url_reply(config, "LastModifiedTime", "InvokeMode")


def delete_function_url_config(store, params, body):
    """DeleteFunctionUrlConfig: the URL is gone for good; a new config gets a new URL."""
    name, qualifier = url_target(store, params)
    with store.lock:
        config = find_url_config(store, name, qualifier)
        del store.functions[name].url_configs[qualifier or ""]
        store.function_urls.pop(config["UrlId"], None)
    return Reply(204)


LIST_URLS_QUERY = struct(Marker=text(), MaxItems=integer(1, 50))


def list_function_url_configs(store, params, body):
    """ListFunctionUrlConfigs: the unqualified config and every alias's."""
    query = query_members(params, LIST_URLS_QUERY, integers=("MaxItems",))
    name, _ = url_target(store, params)        # a qualifier is checked, then not used
    with store.lock:
        function = find_url_function(store, name, None)
        items = [url_as_read(config) for _, config in sorted(function.url_configs.items())]
    return paginate(items, query.get("Marker"), query.get("MaxItems") or 50, "FunctionUrlConfigs",
                    "NextMarker")


# -- Asynchronous invocation configuration -----------------------------------------------------

DESTINATION = struct(Destination=text(0, 350, pattern=(
    r"$|kafka://([^.]([a-zA-Z0-9\-_.]{0,248}))|arn:(aws[a-zA-Z0-9-]*):([a-zA-Z0-9\-])+:"
    r"((eusc-)?[a-z]{2}((-gov)|(-iso([a-z]?)))?-[a-z]+-\d{1})?:(\d{12})?:(.*)")))
EVENT_INVOKE_CONFIG = struct(MaximumRetryAttempts=integer(0, 2),
                             MaximumEventAgeInSeconds=integer(60, 21600),
                             DestinationConfig=struct(OnSuccess=DESTINATION, OnFailure=DESTINATION))
DESTINATION_SERVICES = {"OnSuccess": ("lambda", "sqs", "sns", "events"),
                        "OnFailure": ("lambda", "sqs", "sns", "events", "s3")}


def check_destinations(store, name, destinations):
    """Each destination must be a supported service; a Lambda destination must exist and not be
    the function itself. Caller holds store.lock."""
    for side, services in DESTINATION_SERVICES.items():
        arn = ((destinations or {}).get(side) or {}).get("Destination")
        if not arn:
            continue
        service = arn.split(":")[2] if arn.startswith("arn:") else "kafka"
        if service not in services:
            shown = {s: (f"{s}(destination={(destinations.get(s) or {}).get('Destination')})"
                         if (destinations or {}).get(s) else "null")
                     for s in ("OnSuccess", "OnFailure")}
            raise invalid_parameter(f"The provided destination config DestinationConfig(onSuccess="
                                    f"{shown['OnSuccess']}, onFailure={shown['OnFailure']}) is "
                                    "invalid.")
        if service == "lambda":
            target = FUNCTION_REF.fullmatch(arn)
            local = target is not None and ((target["region"], target["account"])
                                            == (store.region, store.account))
            function = store.functions.get(target["name"]) if local else None
            if function is None or not function.has_qualifier(target["qualifier"]):
                raise invalid_parameter(f"The destination ARN {arn} is invalid.")
            if target["name"] == name:
                raise invalid_parameter("You can't specify the function as a destination for "
                                        "itself.")


def event_invoke_target(store, params, missing):
    """(function, qualifier, qualified ARN) for an async-config operation. Caller holds lock."""
    name, qualifier = function_target(store, params)
    arn = function_arn(store, name, qualifier or "$LATEST")
    function = store.functions.get(name)
    if function is None or not function.has_qualifier(qualifier):
        raise not_found(missing.format(arn=arn))
    return function, qualifier or "$LATEST", arn


def event_invoke_reply(config):
    reply = dict(config)
    destinations = reply.get("DestinationConfig") or {}
    reply["DestinationConfig"] = {"OnSuccess": dict(destinations.get("OnSuccess") or {}),
                                  "OnFailure": dict(destinations.get("OnFailure") or {})}
    return reply


def put_function_event_invoke_config(store, params, body):
    """PutFunctionEventInvokeConfig: replaces the whole configuration (omitted members go)."""
    check_body(body, EVENT_INVOKE_CONFIG)
    if not any(body.get(m) is not None for m in EVENT_INVOKE_CONFIG.members):
        raise invalid_parameter("You must specify at least one of error handling or destination "
                                "setting.")
    with store.lock:
        function, qualifier, arn = event_invoke_target(store, params, "The function doesn't exist.")
        check_destinations(store, function.name, body.get("DestinationConfig"))
        config = {"FunctionArn": arn, "LastModified": time.time(),
                  **{m: body[m] for m in EVENT_INVOKE_CONFIG.members if body.get(m) is not None}}
        function.event_invoke_configs[qualifier] = config
        return event_invoke_reply(config)


def update_function_event_invoke_config(store, params, body):
    """UpdateFunctionEventInvokeConfig: changes only the members given."""
    check_body(body, EVENT_INVOKE_CONFIG)
    with store.lock:
        function, qualifier, arn = event_invoke_target(store, params, "The function doesn't exist.")
        config = function.event_invoke_configs.get(qualifier)
        if config is None:
            raise not_found(f"The function {arn} doesn't have an EventInvokeConfig")
        check_destinations(store, function.name, body.get("DestinationConfig"))
        config.update({m: body[m] for m in EVENT_INVOKE_CONFIG.members if body.get(m) is not None})
        config["LastModified"] = time.time()
        return event_invoke_reply(config)


def get_function_event_invoke_config(store, params, body):
    """GetFunctionEventInvokeConfig."""
    missing = "The function {arn} doesn't have an EventInvokeConfig"
    with store.lock:
        function, qualifier, arn = event_invoke_target(store, params, missing)
        config = function.event_invoke_configs.get(qualifier)
        if config is None:
            raise not_found(missing.format(arn=arn))
        return event_invoke_reply(config)


def delete_function_event_invoke_config(store, params, body):
    """DeleteFunctionEventInvokeConfig."""
    missing = "The function {arn} doesn't have an EventInvokeConfig"
    with store.lock:
        function, qualifier, arn = event_invoke_target(store, params, missing)
        if function.event_invoke_configs.pop(qualifier, None) is None:
            raise not_found(missing.format(arn=arn))
    return Reply(204)


def list_function_event_invoke_configs(store, params, body):
    """ListFunctionEventInvokeConfigs."""
    query = query_members(params, LIST_URLS_QUERY, integers=("MaxItems",))
    name, qualifier = function_target(store, params)
    with store.lock:
        function = store.functions.get(name)
        if function is None:
            raise not_found("The function doesn't exist.")
        items = [event_invoke_reply(c) for _, c in sorted(function.event_invoke_configs.items())]
    return paginate(items, query.get("Marker"), query.get("MaxItems") or 50,
                    "FunctionEventInvokeConfigs", "NextMarker")


# -- Event source mappings ---------------------------------------------------------------------
# Mappings are stored and answered as AWS answers them; nothing polls the sources (there is no SQS,
# Kinesis or Kafka here), so a mapping never invokes its function on its own.

KAFKA_CONFIG = struct(ConsumerGroupId=text(1, 200, pattern=r"[ a-zA-Z0-9-\/*:_+=.@-]*"),
                      SchemaRegistryConfig=struct(), ConsumptionMode=text(enum=("Stream", "Queue")))
ESM_MEMBERS = dict(
    FunctionName=text(1, 256, pattern=NAMESPACED_FUNCTION_NAME_PATTERN), Enabled=boolean(),
    BatchSize=integer(1, 10000),
    FilterCriteria=struct(Filters=list_of(struct(Pattern=text(0, 4096, pattern=r"[\s\S]*")))),
    KMSKeyArn=text(0, 10000, pattern=KMS_KEY_PATTERN),
    MetricsConfig=struct(Metrics=list_of(text(enum=("EventCount", "ErrorCount", "KafkaMetrics")),
                                         0, 3)),
    LoggingConfig=struct(SystemLogLevel=text(enum=("DEBUG", "INFO", "WARN"))),
    ScalingConfig=struct(MaximumConcurrency=integer(2, 1000)),
    MaximumBatchingWindowInSeconds=integer(0, 300), ParallelizationFactor=integer(1, 10),
    DestinationConfig=struct(OnSuccess=DESTINATION, OnFailure=DESTINATION),
    MaximumRecordAgeInSeconds=integer(-1, 604800), BisectBatchOnFunctionError=boolean(),
    MaximumRetryAttempts=integer(-1, 10000), TumblingWindowInSeconds=integer(0, 900),
    SourceAccessConfigurations=list_of(struct(Type=text(enum=(
        "BASIC_AUTH", "VPC_SUBNET", "VPC_SECURITY_GROUP", "SASL_SCRAM_512_AUTH",
        "SASL_SCRAM_256_AUTH",
        "VIRTUAL_HOST", "CLIENT_CERTIFICATE_TLS_AUTH", "SERVER_ROOT_CA_CERTIFICATE",
        "OAUTHBEARER_AUTH",
        "OAUTHBEARER_SCOPE", "OAUTHBEARER_AUDIENCE", "OAUTHBEARER_LOGICAL_CLUSTER",
        "OAUTHBEARER_IDENTITY_POOL", "IAM_AUTH", "IAM_OAUTHBEARER_AUTH")),
        URI=text(1, 200, pattern=r"[ a-zA-Z0-9-\/*:_+=.@-]*")), 0, 23),
    FunctionResponseTypes=list_of(text(enum=("ReportBatchItemFailures",)), 0, 1),
    AmazonManagedKafkaEventSourceConfig=KAFKA_CONFIG,
    SelfManagedKafkaEventSourceConfig=KAFKA_CONFIG, DocumentDBEventSourceConfig=struct(
        DatabaseName=text(1, 63, pattern=r"[^ /\.$\x22]*"),
        CollectionName=text(1, 57, pattern=r"(^(?!(system\x2e)))(^[_a-zA-Z0-9])([^$]*)"),
        FullDocument=text(enum=("UpdateLookup", "Default"))),
    ProvisionedPollerConfig=struct(MinimumPollers=integer(1, 200), MaximumPollers=integer(1, 10000),
                                   PollerGroupName=text(0, 128, pattern=r"[a-zA-Z0-9-_]*")))
CREATE_EVENT_SOURCE_MAPPING = struct(
    ("FunctionName",), EventSourceArn=text(0, 10000, pattern=(
        r"arn:(aws[a-zA-Z0-9-]*):([a-zA-Z0-9\-])+:((eusc-)?[a-z]{2}((-gov)|(-iso([a-z]?))"
        r")?-[a-z]+-\d{1})?:(\d{12})?:(.*)")),
    StartingPosition=text(enum=("LATEST", "AT_TIMESTAMP", "TRIM_HORIZON")),
    StartingPositionTimestamp=number(), Tags=TAGS,
    Topics=list_of(text(1, 249, pattern=r"[^.]([a-zA-Z0-9\-_.]+)"), 1, 1),
    Queues=list_of(text(1, 1000, pattern=r"[\s\S]*"), 1, 1),
    SelfManagedEventSource=struct(Endpoints=map_of(text(enum=("KAFKA_BOOTSTRAP_SERVERS",)), list_of(
        text(1, 300,
             pattern=(r"(([a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9\-]*[a-zA-Z0-9])\.)*([A-Za-z0-9]|"
                      r"[A-Za-z0-9][A-Za-z0-9\-]*[A-Za-z0-9]):[0-9]{1,5}")), 1, 10))),
    **ESM_MEMBERS)
UPDATE_EVENT_SOURCE_MAPPING = struct(**ESM_MEMBERS)
ESM_PATH = struct(UUID=text(36, 36))
LIST_ESM_QUERY = struct(EventSourceArn=CREATE_EVENT_SOURCE_MAPPING.members["EventSourceArn"],
                        FunctionName=ESM_MEMBERS["FunctionName"], Marker=text(),
                        MaxItems=integer(1, 10000))
STREAM_SOURCES = ("kinesis", "dynamodb")
# Per source: default BatchSize and whether MaximumBatchingWindowInSeconds shows (Kafka, MQ and
# DocumentDB default to 500 ms, which the API cannot express in seconds).
ESM_SOURCE_DEFAULTS = {"sqs": (10, True), "kinesis": (100, True), "dynamodb": (100, True),
                       "kafka": (100, False), "mq": (100, False), "rds": (100, False),
                       "docdb": (100, False)}


def event_source_kind(body):
    """The kind of an event source: sqs, kinesis, dynamodb, kafka, mq, rds/docdb, or self-kafka."""
    if body.get("SelfManagedEventSource"):
        return "self-kafka"
    arn = body.get("EventSourceArn")
    if not arn:
        raise invalid_parameter("Unrecognized event source.")
    return arn.split(":")[2]


def check_filters(filters):
    for entry in (filters or {}).get("Filters") or []:
        try:
            pattern = json.loads(entry.get("Pattern") or "")
            if not isinstance(pattern, dict) or not valid_pattern(pattern):
                raise ValueError
        except ValueError:
            raise invalid_parameter("Invalid filter pattern definition.") from None


# Event filtering: a mapping's FilterCriteria patterns, in the EventBridge rule syntax Lambda
# uses, keep the records that match any of them; the others never reach the function.
FILTER_OPERATORS = {
    "prefix": lambda arg, v: isinstance(v, str) and isinstance(arg, str) and v.startswith(arg),
    "suffix": lambda arg, v: isinstance(v, str) and isinstance(arg, str) and v.endswith(arg),
    "equals-ignore-case": lambda arg, v: isinstance(v, str) and isinstance(arg, str)
    and v.lower() == arg.lower(),
    "wildcard": lambda arg, v: isinstance(v, str) and isinstance(arg, str) and re.fullmatch(
        ".*".join(re.escape(part) for part in arg.split("*")), v, re.S) is not None,
    "anything-but": lambda arg, v: not anything_but_excludes(arg, v),
    "numeric": lambda arg, v: (isinstance(v, (int, float)) and not isinstance(v, bool)
                               and all(NUMERIC_TESTS[arg[i]](v, arg[i + 1])
                                       for i in range(0, len(arg), 2))),
}
NUMERIC_TESTS = {"=": operator.eq, "<": operator.lt, "<=": operator.le, ">": operator.gt,
                 ">=": operator.ge}


def anything_but_excludes(arg, value):
    """Whether anything-but's argument (values, or one operator such as prefix) names a value."""
    if isinstance(arg, dict):
        (name, inner), = arg.items()
        return FILTER_OPERATORS[name](inner, value)
    return any(same_value(value, excluded) for excluded in (arg if isinstance(arg, list)
                                                               else [arg]))


def same_value(a, b):
    return a == b and isinstance(a, bool) == isinstance(b, bool)


def valid_pattern(pattern):
    """Whether a filter pattern is made of what the syntax allows: nested objects ending in
    lists of values or of known operators ($or: a list of patterns)."""
    for key, rule in pattern.items():
        if key == "$or":
            if not (isinstance(rule, list) and rule and all(
                    isinstance(p, dict) and valid_pattern(p) for p in rule)):
                return False
        elif isinstance(rule, dict):
            if not rule or not valid_pattern(rule):
                return False
        elif not isinstance(rule, list) or not rule or not all(valid_rule(r) for r in rule):
            return False
    return True


def valid_rule(rule):
    if not isinstance(rule, dict):
        return not isinstance(rule, list)
    if len(rule) != 1:
        return False
    (operator, arg), = rule.items()
    if operator == "exists":
        return isinstance(arg, bool)
    if operator == "numeric":
        return (isinstance(arg, list) and len(arg) in (2, 4) and all(
            arg[i] in NUMERIC_TESTS and isinstance(arg[i + 1], (int, float))
            and not isinstance(arg[i + 1], bool) for i in range(0, len(arg), 2)))
    if operator == "anything-but" and isinstance(arg, dict):
        return len(arg) == 1 and next(iter(arg)) in ("prefix", "suffix", "equals-ignore-case")
    return operator in FILTER_OPERATORS


def pattern_matches(pattern, value):
    """Whether a JSON value (an object) matches a filter pattern."""
    for key, rule in pattern.items():
        if key == "$or":
            if not any(pattern_matches(option, value) for option in rule):
                return False
            continue
        present = isinstance(value, dict) and key in value
        field = value.get(key) if present else None
        if isinstance(rule, dict):
            if not (present and pattern_matches(rule, field)):
                return False
        elif not any(rule_matches(r, field, present) for r in rule):
            return False
    return True


def rule_matches(rule, field, present):
    """One value or operator of a pattern's list against a field (each of it, if a list)."""
    if isinstance(rule, dict) and "exists" in rule:     # of a leaf: an object is not one
        return (present and not isinstance(field, dict)) == rule["exists"]
    if not present:
        return False
    values = field if isinstance(field, list) else [field]
    if isinstance(rule, dict):
        (operator, arg), = rule.items()
        return any(FILTER_OPERATORS[operator](arg, v) for v in values)
    return any(same_value(v, rule) for v in values)


def passes_filters(mapping, record):
    """Whether a record (as its filters see it) reaches the function: no FilterCriteria, or a
    match with any of its patterns."""
    filters = (mapping.get("FilterCriteria") or {}).get("Filters") or []
    patterns = [parsed_pattern(entry["Pattern"]) for entry in filters if entry.get("Pattern")]
    return not patterns or any(pattern_matches(pattern, record) for pattern in patterns)


@functools.lru_cache(maxsize=256)
def parsed_pattern(text):
    """A filter pattern, parsed once for all the records it sees (never changed after)."""
    return json.loads(text)


def json_or_text(text):
    """A record's body or data as a filter sees it: its JSON value, or the text as it is."""
    try:
        return json.loads(text)
    except (TypeError, ValueError):
        return text


def check_esm_settings(kind, mapping):
    """AWS's cross-member rules for a mapping's settings (after defaults are applied)."""
    if (kind == "sqs" and mapping.get("BatchSize", 0) > 10
            and not mapping.get("MaximumBatchingWindowInSeconds")):
        raise invalid_parameter("Maximum batch window in seconds must be greater than 0 if maximum "
                                "batch size is greater than 10")
    age = mapping.get("MaximumRecordAgeInSeconds")
    if age is not None and 0 <= age < 60:
        raise invalid_parameter("MaximumRecordAgeInSeconds must be either -1 (forever) or between "
                                "60 and 604800 (inclusive)")
    check_filters(mapping.get("FilterCriteria"))


def create_event_source_mapping(store, params, body):
    """CreateEventSourceMapping: answered Creating, Enabled (or Disabled) from then on."""
    check_body(body, CREATE_EVENT_SOURCE_MAPPING)
    kind = event_source_kind(body)
    if kind == "sqs" and ((body.get("DestinationConfig") or {}).get("OnSuccess")
                          or {}).get("Destination"):
        raise invalid_parameter("Unsupported DestinationConfig parameter for given event source "
                                "mapping type.")
    name, qualifier = parse_function_ref(store, body["FunctionName"], max_length=256)
    missing, visibility = probe_event_source(store, kind, body.get("EventSourceArn"))
    with store.lock:
        function = store.functions.get(name)
        if function is None or not function.has_qualifier(qualifier):
            raise invalid_parameter("Function does not exist")
        if missing is not None:
            raise missing
        timeout = find_version(store, function, qualifier)[1]["Timeout"]
        if visibility is not None and visibility < timeout:
            raise invalid_parameter(f"Queue visibility timeout: {visibility} seconds is less than "
                                    f"Function timeout: {timeout} seconds")
        if kind in STREAM_SOURCES and not body.get("StartingPosition"):
            raise invalid_parameter("1 validation error detected: Value null at 'startingPosition' "
                                    "failed to satisfy constraint: Member must not be null.")
        if kind == "dynamodb" and body.get("StartingPosition") == "AT_TIMESTAMP":
            raise invalid_parameter("Unsupported starting position for arn type: "
                                    f"{body['EventSourceArn']}")
        if kind in ("self-kafka",) and not body.get("SourceAccessConfigurations"):
            raise invalid_parameter("Required 'sourceAccessConfigurations' parameter is missing.")
        esm_uuid = new_uuid()
        batch_size, shows_window = ESM_SOURCE_DEFAULTS.get(kind, (100, False))
        mapping = {"UUID": esm_uuid, "BatchSize": batch_size,
                   "EventSourceMappingArn": f"arn:aws:lambda:{store.region}:{store.account}:"
                                            f"event-source-mapping:{esm_uuid}",
                   "FunctionArn": function_arn(store, name, qualifier), "LastModified": time.time(),
                   "State": "Creating",
                   "StateTransitionReason": ("User action" if kind in STREAM_SOURCES
                                             else "USER_INITIATED")}
        if body.get("EventSourceArn"):
            mapping["EventSourceArn"] = body["EventSourceArn"]
        if shows_window:
            mapping["MaximumBatchingWindowInSeconds"] = 0
        if kind in ("sqs", "kinesis", "dynamodb"):
            mapping["FunctionResponseTypes"] = []
        if kind in STREAM_SOURCES:
            mapping.update(BisectBatchOnFunctionError=False, DestinationConfig={"OnFailure": {}},
                           MaximumRecordAgeInSeconds=-1, MaximumRetryAttempts=-1,
                           ParallelizationFactor=1, TumblingWindowInSeconds=0)
        if kind in STREAM_SOURCES or "kafka" in kind:
            mapping["LastProcessingResult"] = "No records processed"
        if "kafka" in kind:
            mapping["StartingPosition"] = "TRIM_HORIZON"
            config = ("SelfManagedKafkaEventSourceConfig" if kind == "self-kafka"
                      else "AmazonManagedKafkaEventSourceConfig")
            mapping[config] = {"ConsumerGroupId": esm_uuid}
        for member, value in body.items():
            if member not in ("FunctionName", "Enabled", "Tags") and value is not None:
                mapping[member] = value
        if mapping.get("FilterCriteria") == {}:     # AWS leaves an empty one out
            del mapping["FilterCriteria"]
        check_esm_settings(kind, mapping)
        for other in store.event_source_mappings.values():
            if same_event_source(other, mapping) and other["FunctionArn"].split(":")[6] == name:
                raise conflict(duplicate_mapping_message(kind, mapping, name, other["UUID"]))
        store.event_source_mappings[esm_uuid] = mapping
        if body.get("Tags"):
            store.tags[mapping["EventSourceMappingArn"]] = dict(body["Tags"])
        start_polling(store, mapping, body.get("Enabled", True))
        return dict(copied(mapping), State="Creating" if body.get("Enabled", True)
                    else "Disabled")        # as AWS answers a mapping made disabled


def same_event_source(a, b):
    return (a.get("EventSourceArn"), a.get("SelfManagedEventSource"), a.get("Topics")) == (
        b.get("EventSourceArn"), b.get("SelfManagedEventSource"), b.get("Topics"))


def duplicate_mapping_message(kind, mapping, name, existing):
    """AWS's three wordings of "this source already maps to this function"."""
    tail = f"already exists. Please update or delete the existing mapping with UUID {existing}"
    if kind == "sqs":
        return (f"An event source mapping with SQS arn (\" {mapping['EventSourceArn']} \") and "
                f"function (\" {name} \") {tail}")
    if kind in STREAM_SOURCES:
        return (f"The event source arn (\" {mapping['EventSourceArn']} \") and function (\" {name} "
                f"\") provided mapping {tail}")
    servers = ",".join(((mapping.get("SelfManagedEventSource") or {}).get("Endpoints") or {}).get(
        "KAFKA_BOOTSTRAP_SERVERS") or [mapping.get("EventSourceArn", "")])
    return (f"An event source mapping with event source (\"{servers}\"), function "
            f"(\"{mapping['FunctionArn']}\"), topics (\"{','.join(mapping.get('Topics') or [])}\") "
            f"{tail}")


def find_event_source_mapping(store, params):
    query_members(params, ESM_PATH)
    mapping = store.event_source_mappings.get(params["UUID"])
    if mapping is None:
        raise not_found("The resource you requested does not exist.")
    return mapping


def get_event_source_mapping(store, params, body):
    """GetEventSourceMapping."""
    with store.lock:
        return copied(find_event_source_mapping(store, params))


def update_event_source_mapping(store, params, body):
    """UpdateEventSourceMapping: answered Updating (Enabling or Disabling when Enabled changes)."""
    check_body(body, UPDATE_EVENT_SOURCE_MAPPING)
    with store.lock:
        mapping = find_event_source_mapping(store, params)
        updated = dict(mapping)
        if body.get("FunctionName") is not None:
            name, qualifier = parse_function_ref(store, body["FunctionName"], max_length=256)
            function = store.functions.get(name)
            if function is None or not function.has_qualifier(qualifier):
                raise invalid_parameter("Function does not exist")
            updated["FunctionArn"] = function_arn(store, name, qualifier)
        for member, value in body.items():
            if member not in ("FunctionName", "Enabled") and value is not None:
                updated[member] = value
        kind = event_source_kind(updated)
        check_esm_settings(kind, updated)
        was_enabled = mapping["State"] not in ("Disabled", "Disabling")
        enabled = was_enabled if body.get("Enabled") is None else body["Enabled"]
        updated["State"] = ("Updating" if enabled == was_enabled
                            else "Enabling" if enabled else "Disabling")
        updated["LastModified"] = time.time()
        mapping.update(updated)         # in place, never emptied: its poller reads it
        state = mapping["State"]
        start_polling(store, mapping, enabled)
        return dict(mapping, State=state)


def delete_event_source_mapping(store, params, body):
    """DeleteEventSourceMapping: answered with the mapping in state Deleting."""
    with store.lock:
        mapping = find_event_source_mapping(store, params)
        del store.event_source_mappings[mapping["UUID"]]
        store.tags.pop(mapping["EventSourceMappingArn"], None)
        store.pollers.pop(mapping["UUID"], None)
        store.checkpoints.pop(mapping["UUID"], None)
        return dict(mapping, State="Deleting")


def list_event_source_mappings(store, params, body):
    """ListEventSourceMappings: filters that name nothing simply match nothing, as on AWS."""
    query = query_members(params, LIST_ESM_QUERY, integers=("MaxItems",))
    wanted = None
    if query.get("FunctionName"):
        wanted = parse_function_ref(store, query["FunctionName"], max_length=256)
    with store.lock:
        items = []
        for mapping in store.event_source_mappings.values():
            target = FUNCTION_REF.fullmatch(mapping["FunctionArn"])
            if wanted and (target["name"], target["qualifier"]) != wanted and not (
                    wanted[1] is None and target["name"] == wanted[0]):
                continue
            if query.get("EventSourceArn") not in (None, mapping.get("EventSourceArn")):
                continue
            items.append(copied(mapping))
    return paginate(items, query.get("Marker"), min(query.get("MaxItems") or 100, 100),
                    "EventSourceMappings", "NextMarker")


# -- Layers ------------------------------------------------------------------------------------

class Layer:
    """A layer: its versions (LayerVersion records), their packages and policies."""

    def __init__(self):
        self.versions = {}          # version number -> GetLayerVersion response
        self.packages = {}          # version number -> Package
        self.policies = {}          # version number -> Policy
        self.next_version = 1       # numbers are never reused


LAYER_NAME = text(1, 2048, pattern=(
    r"(arn:(aws[a-zA-Z-]*)?:lambda:(eusc-)?[a-z]{2}((-gov)|(-iso([a-z]?)))?-[a-z]+-\d{1}:\d{12}:"
    r"layer:[a-zA-Z0-9-_]{1,140}|[a-zA-Z0-9-_]{1,140})"))
LAYER_VERSION_ARN = text(1, 2048, pattern=(      # as AWS prints it, without the model's outer group
    r"(arn:(aws[a-zA-Z-]*)?:lambda:(eusc-)?[a-z]{2}((-gov)|(-iso([a-z]?)))?-[a-z]+-\d{1}:\d{12}:"
    r"layer:[a-zA-Z0-9-_]+:[0-9]+)|(arn:[a-zA-Z0-9-]+:lambda:::awslayer:[a-zA-Z0-9-_]+)"))
LAYER_PATH = struct(LayerName=LAYER_NAME, VersionNumber=integer())
ARCHITECTURE_LIST = list_of(text(enum=("x86_64", "arm64")), 0, 2)
PUBLISH_LAYER_VERSION = struct(
    ("Content",), Description=text(0, 256), LicenseInfo=text(0, 512),
    Content=struct(S3Bucket=text(3, 63, pattern=r"[0-9A-Za-z\.\-_]*(?<!\.)"), S3Key=text(1, 1024),
                   S3ObjectVersion=text(1, 1024),
                   S3ObjectStorageMode=text(enum=("COPY", "REFERENCE")), ZipFile=blob()),
    CompatibleRuntimes=list_of(text(enum=RUNTIMES), 0, 15,      # deprecated ones too, though
                               flat=USABLE_RUNTIMES),               # AWS's message lists these
    CompatibleArchitectures=ARCHITECTURE_LIST)
LIST_LAYERS_QUERY = struct(CompatibleRuntime=text(enum=RUNTIMES), Marker=text(),
                           MaxItems=integer(1, 50),
                           CompatibleArchitecture=text(enum=("x86_64", "arm64")))
LAYER_LISTED = ("LayerVersionArn", "Version", "Description", "CreatedDate", "CompatibleRuntimes",
                "LicenseInfo", "CompatibleArchitectures")


def layer_name(store, params):
    """The layer name of a LayerName path label (a name or a layer ARN)."""
    query_members(params, LAYER_PATH, integers=("VersionNumber",))
    value = params["LayerName"]
    if value.startswith("arn:"):
        parts = value.split(":")
        if parts[3] != store.region or parts[4] != store.account:
            raise not_found("The resource you requested does not exist.")
        return parts[6]
    return value


def layer_version_number(params):
    number = int(params["VersionNumber"])
    if number < 1:
        raise invalid_parameter("Layer Version Cannot be less than 1")
    return number


def layer_arn(store, name, version=None):
    arn = f"arn:aws:lambda:{store.region}:{store.account}:layer:{name}"
    return f"{arn}:{version}" if version is not None else arn


def publish_layer_version(store, params, body):
    """PublishLayerVersion: a new numbered version of a layer, every time."""
    check_body(body, PUBLISH_LAYER_VERSION)
    name = layer_name(store, dict(params, VersionNumber="1"))
    content = body["Content"]
    if content.get("ZipFile") is not None:
        package = take_package(decode_blob(content["ZipFile"], "ZipFile"))
        if not package.is_zip:
            raise invalid_parameter("Could not unzip uploaded file. Please check your file, then "
                                    "try to upload again.")
    elif content.get("S3Bucket") and content.get("S3Key") and endpoint_of(store, "S3"):
        package = s3_package(store, content["S3Bucket"], content["S3Key"],
                             content.get("S3ObjectVersion"))
    elif content.get("S3Bucket") and content.get("S3Key"):
        location = f"{content['S3Bucket']}/{content['S3Key']}"
        package = Package(location.encode(), s3_location=location)
    else:
        raise invalid_parameter("Please provide a source for layer content.")
    with store.lock:
        layer = store.layers.setdefault(name, Layer())
        number = layer.next_version
        layer.next_version += 1
        record = {"Content": {"Location": f"{store.endpoint_url}/_parlel/code/{package.hex}",
                              "CodeSha256": package.sha256, "CodeSize": package.size},
                  "LayerArn": layer_arn(store, name),
                  "LayerVersionArn": layer_arn(store, name, number),
                  "CreatedDate": iso_timestamp(zone="+0000"), "Version": number,
                  "Description": ""}
        for member in ("Description", "CompatibleRuntimes", "CompatibleArchitectures",
                       "LicenseInfo"):                  # AWS leaves out those not given, but
                                                        # for Description: ""
            if body.get(member) is not None:
                record[member] = body[member]
        layer.versions[number] = record
        layer.packages[number] = package
        store.packages[package.hex] = package
        return copied(record)


def find_layer_version(store, name, number):
    """A layer version record, or AWS's not-found error. Caller holds store.lock."""
    layer = store.layers.get(name)
    if layer is None or number not in layer.versions:
        raise not_found("The resource you requested does not exist.")
    return layer


def get_layer_version(store, params, body):
    """GetLayerVersion."""
    name = layer_name(store, params)
    number = layer_version_number(params)
    with store.lock:
        return copied(find_layer_version(store, name, number).versions[number])


def get_layer_version_by_arn(store, params, body):
    """GetLayerVersionByArn."""
    query_members(params, struct(("Arn",), Arn=LAYER_VERSION_ARN))
    parts = params["Arn"].split(":")
    if parts[4] != store.account:
        layer, number = store.stores.shared_layer(store, params["Arn"])
        return copied(layer.versions[number])
    if parts[3] != store.region:
        raise not_found("The resource you requested does not exist.")
    with store.lock:
        layer = find_layer_version(store, parts[6], int(parts[7]))
        return copied(layer.versions[int(parts[7])])


def delete_layer_version(store, params, body):
    """DeleteLayerVersion: functions that use it keep their copy; deleting twice succeeds."""
    name = layer_name(store, params)
    number = layer_version_number(params)
    with store.lock:
        layer = store.layers.get(name)
        if layer is not None and layer.versions.pop(number, None) is not None:
            layer.packages.pop(number)
            layer.policies.pop(number, None)
    return Reply(204)


def matches_layer_filters(record, query):
    return (query.get("CompatibleRuntime") in (None, *record.get("CompatibleRuntimes", ()))
            and query.get("CompatibleArchitecture") in (None,
                                                        *record.get("CompatibleArchitectures", ())))


def list_layer_versions(store, params, body):
    """ListLayerVersions: newest first; a layer that does not exist has no versions."""
    query = query_members(params, LIST_LAYERS_QUERY, integers=("MaxItems",))
    name = layer_name(store, dict(params, VersionNumber="1"))
    with store.lock:
        layer = store.layers.get(name)
        items = [{k: record[k] for k in LAYER_LISTED if k in record}
                 for number, record in sorted((layer.versions if layer else {}).items(),
                                              reverse=True)
                 if matches_layer_filters(record, query)]
    return paginate(items, query.get("Marker"), query.get("MaxItems") or 50, "LayerVersions",
                    "NextMarker")


def list_layers(store, params, body):
    """ListLayers: each layer with its newest version that matches the filters."""
    query = query_members(params, LIST_LAYERS_QUERY, integers=("MaxItems",))
    with store.lock:
        items = []
        for name in sorted(store.layers):
            matching = [record for _, record in sorted(store.layers[name].versions.items(),
                                                       reverse=True)
                        if matches_layer_filters(record, query)]
            if matching:
                items.append({"LayerName": name, "LayerArn": layer_arn(store, name),
                              "LatestMatchingVersion": {k: matching[0][k] for k in LAYER_LISTED
                                                        if k in matching[0]}})
    return paginate(items, query.get("Marker"), query.get("MaxItems") or 50, "Layers", "NextMarker")


ADD_LAYER_VERSION_PERMISSION = struct(
    ("StatementId", "Action", "Principal"), StatementId=STATEMENT_ID,
    Action=text(0, 22, pattern=r"lambda:GetLayerVersion"),
    Principal=text(0, 10000, pattern=r"\d{12}|\*|arn:(aws[a-zA-Z-]*):iam::\d{12}:root"),
    OrganizationId=text(0, 34, pattern=r"o-[a-z0-9]{10,32}"))
LAYER_POLICY_QUERY = struct(RevisionId=text(), StatementId=STATEMENT_ID)


def layer_policy_target(store, params):
    """(layer, version number) of a layer-permission operation; it must exist. Caller holds lock."""
    name = layer_name(store, params)
    number = layer_version_number(params)
    layer = store.layers.get(name)
    if layer is None or number not in layer.versions:
        raise not_found(f"Layer version {layer_arn(store, name, number)} does not exist.")
    return layer, number


def add_layer_version_permission(store, params, body):
    """AddLayerVersionPermission: who may use a layer version."""
    check_body(body, ADD_LAYER_VERSION_PERMISSION)
    query_members(params, LAYER_POLICY_QUERY)
    with store.lock:
        layer, number = layer_policy_target(store, params)
        policy = layer.policies.get(number)
        if policy and any(s["Sid"] == body["StatementId"] for s in policy.statements):
            raise conflict(f"The statement id ({body['StatementId']}) provided already exists. "
                           "Please provide a new statement id, or remove the existing statement.")
        check_revision(params.get("RevisionId"), policy.revision_id if policy else None,
                       "GetLayerPolicy")
        principal = body["Principal"]
        statement = {"Sid": body["StatementId"], "Effect": "Allow",
                     "Principal": principal if principal == "*" else {"AWS": (
                         principal if principal.startswith("arn:")
                         else f"arn:aws:iam::{principal}:root")},
                     "Action": body["Action"],
                     "Resource": layer.versions[number]["LayerVersionArn"]}
        if body.get("OrganizationId"):
            statement["Condition"] = {"StringEquals": {
                "aws:PrincipalOrgID": body["OrganizationId"]}}
        policy = layer.policies.setdefault(number, Policy())
        policy.statements.append(statement)
        policy.revision_id = new_revision_id()
        return {"Statement": json.dumps(statement, separators=(",", ":")),
                "RevisionId": policy.revision_id}


def get_layer_version_policy(store, params, body):
    """GetLayerVersionPolicy."""
    with store.lock:
        layer, number = layer_policy_target(store, params)
        policy = layer.policies.get(number)
        if policy is None:
            raise not_found("No policy is associated with the given resource.")
        return {"Policy": policy.document(), "RevisionId": policy.revision_id}


def remove_layer_version_permission(store, params, body):
    """RemoveLayerVersionPermission."""
    query_members(params, LAYER_POLICY_QUERY)
    with store.lock:
        layer, number = layer_policy_target(store, params)
        policy = layer.policies.get(number)
        if policy is None:
            raise not_found("No policy is associated with the given resource.")
        check_revision(params.get("RevisionId"), policy.revision_id, "GetLayerPolicy")
        kept = [s for s in policy.statements if s["Sid"] != params["StatementId"]]
        if len(kept) == len(policy.statements):
            raise not_found(f"Statement {params['StatementId']} is not found in resource policy.")
        policy.statements = kept
        policy.revision_id = new_revision_id()
        if not kept:
            del layer.policies[number]
    return Reply(204)


def check_function_layers(store, arns):
    """The Layers of a function configuration as AWS answers them: at most 5, each existing, one
    version per layer; another account's only when its permissions share it (see
    Stores.shared_layer). Caller holds store.lock."""
    if len(arns) > 5:
        raise invalid_parameter("Cannot reference more than 5 layers.")
    seen, layers = {}, []
    for arn in arns:
        parts = arn.split(":")
        if parts[3] != store.region and parts[4] == store.account:
            raise invalid_parameter("Layers are not in the same region as the function. Layers are "
                                    f"expected to be in region {store.region}.")
        base = ":".join(parts[:7])
        if base in seen:
            raise invalid_parameter("Two different versions of the same layer are not allowed to "
                                    f"be referenced in the same function. {seen[base]} and {arn} "
                                    "are versions of the same layer.")
        seen[base] = arn
        if parts[4] == store.account:
            layer = store.layers.get(parts[6])
            if layer is None or int(parts[7]) not in layer.versions:
                raise invalid_parameter(f"Layer version {arn} does not exist.")
            number = int(parts[7])
        else:
            layer, number = store.stores.shared_layer(store, arn)
        layers.append({"Arn": arn, "CodeSize": layer.versions[number]["Content"]["CodeSize"]})
    return layers


# -- Tags --------------------------------------------------------------------------------------

TAGGABLE_ARN = text(1, 10000, pattern=(
    r"arn:(aws[a-zA-Z-]*):lambda:(eusc-)?[a-z]{2}((-gov)|(-iso([a-z]?)))?-[a-z]+-\d{1}:\d{12}:"
    r"(function:[a-zA-Z0-9-_]+(:(\$LATEST|[a-zA-Z0-9-_]+))?|code-signing-config:csc-[a-z0-9]{17}|"
    r"event-source-mapping:[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}"
    r"-[0-9a-fA-F]{12}|(capacity-provider|network-connector):[a-zA-Z0-9-_]{1,64})"))
TAG_RESOURCE = struct(("Tags",), Tags=TAGS)
TAGS_PATH = struct(Resource=TAGGABLE_ARN)
UNTAG_QUERY = struct(tagKeys=list_of(TAG_KEY))


def find_taggable(store, arn):
    """The ARN under which a taggable resource's tags are kept; it must exist. Caller holds lock."""
    parts = arn.split(":")
    if parts[3] != store.region:
        raise not_found(f"Functions from '{parts[3]}' are not reachable in this region "
                        f"('{store.region}')")
    if parts[4] != store.account:
        raise LambdaError("AccessDeniedException", 403,
                          f"The resource is in account {parts[4]}; this endpoint serves "
                          f"{store.account}")
    kind = parts[5]
    if kind == "function":
        if len(parts) > 7:
            raise invalid_parameter("Tags on function aliases and versions are not supported. "
                                    "Please specify a function ARN.")
        find_function(store, parts[6])
    elif kind == "event-source-mapping":
        if parts[6] not in store.event_source_mappings:
            raise not_found(f"Event source mapping not found: {arn}")
    elif kind == "code-signing-config":
        if arn not in store.code_signing_configs:
            raise not_found(f"The Lambda code signing configuration {arn} can not be found.")
    elif kind == "capacity-provider":
        if parts[6] not in store.capacity_providers:
            raise not_found(f"Capacity provider not found: {arn}")
    else:
        raise not_found(f"Network connector not found: {arn}")
    return arn


def tag_resource(store, params, body):
    """TagResource: merges tags; a resource holds at most 50."""
    check_body(body, TAG_RESOURCE)
    query_members(params, TAGS_PATH)
    if not body["Tags"]:
        raise invalid_parameter("An error occurred and the request cannot be processed.")
    with store.lock:
        arn = find_taggable(store, params["Resource"])
        merged = dict(store.tags.get(arn) or {}, **body["Tags"])
        if len(merged) > MAX_TAGS:
            raise invalid_parameter("Number of tags exceeds resource tag limit.")
        store.tags[arn] = merged
        if ":function:" in arn:
            touch(store.functions[arn.split(":")[6]].versions["$LATEST"])
    return Reply(204)


def untag_resource(store, params, body):
    """UntagResource: keys that are not there are ignored, as on AWS."""
    keys = params.get("tagKeys")
    keys = [keys] if isinstance(keys, str) else keys
    if not keys:
        raise validation_error([constraint_text(None, "tagKeys", "Member must not be null")])
    query_members(dict(params, tagKeys=keys), UNTAG_QUERY)
    query_members(params, TAGS_PATH)
    with store.lock:
        arn = find_taggable(store, params["Resource"])
        tags = store.tags.get(arn) or {}
        for key in keys:
            tags.pop(key, None)
        if ":function:" in arn:
            touch(store.functions[arn.split(":")[6]].versions["$LATEST"])
    return Reply(204)


def list_tags(store, params, body):
    """ListTags."""
    query_members(params, TAGS_PATH)
    with store.lock:
        return {"Tags": dict(store.tags.get(find_taggable(store, params["Resource"])) or {})}


# -- Code signing ------------------------------------------------------------------------------

CSC_PATH = struct(CodeSigningConfigArn=CSC_ARN)
ALLOWED_PUBLISHERS = struct(("SigningProfileVersionArns",), SigningProfileVersionArns=list_of(text(
    0, 10000,
    pattern=r"arn:(aws[a-zA-Z0-9-]*):([a-zA-Z0-9\-])+:((eusc-)?[a-z]{2}((-gov)|(-iso([a-z]?)))?-"
            r"[a-z]+-\d{1})?:(\d{12})?:(.*)"), 1, 20))
CODE_SIGNING_POLICIES = struct(UntrustedArtifactOnDeployment=text(enum=("Warn", "Enforce")))
CREATE_CODE_SIGNING_CONFIG = struct(("AllowedPublishers",), Description=text(0, 256),
                                    AllowedPublishers=ALLOWED_PUBLISHERS,
                                    CodeSigningPolicies=CODE_SIGNING_POLICIES, Tags=TAGS)
UPDATE_CODE_SIGNING_CONFIG = struct(Description=text(0, 256), AllowedPublishers=ALLOWED_PUBLISHERS,
                                    CodeSigningPolicies=CODE_SIGNING_POLICIES)
PUT_FUNCTION_CODE_SIGNING_CONFIG = struct(("CodeSigningConfigArn",), CodeSigningConfigArn=CSC_ARN)


def create_code_signing_config(store, params, body):
    """CreateCodeSigningConfig. Stored; signatures are not verified (nothing here is signed)."""
    check_body(body, CREATE_CODE_SIGNING_CONFIG)
    with store.lock:
        config_id = "csc-" + os.urandom(9).hex()[:17]
        arn = f"arn:aws:lambda:{store.region}:{store.account}:code-signing-config:{config_id}"
        config = {"CodeSigningConfigId": config_id, "CodeSigningConfigArn": arn,
                  "Description": body.get("Description", ""),
                  "AllowedPublishers": body["AllowedPublishers"],
                  "CodeSigningPolicies": {"UntrustedArtifactOnDeployment": (body.get(
                      "CodeSigningPolicies") or {}).get("UntrustedArtifactOnDeployment", "Warn")},
                  "LastModified": url_timestamp()}
        store.code_signing_configs[arn] = config
        if body.get("Tags"):
            store.tags[arn] = dict(body["Tags"])
        return {"CodeSigningConfig": copied(config)}


def find_code_signing_config(store, params):
    query_members(params, CSC_PATH)
    config = store.code_signing_configs.get(params["CodeSigningConfigArn"])
    if config is None:
        raise not_found(f"The Lambda code signing configuration {params['CodeSigningConfigArn']} "
                        "can not be found.", typed=False)
    return config


def get_code_signing_config(store, params, body):
    """GetCodeSigningConfig."""
    with store.lock:
        return {"CodeSigningConfig": copied(find_code_signing_config(store, params))}


def update_code_signing_config(store, params, body):
    """UpdateCodeSigningConfig: members not given stay as they are."""
    check_body(body, UPDATE_CODE_SIGNING_CONFIG)
    with store.lock:
        config = find_code_signing_config(store, params)
        for member in ("Description", "AllowedPublishers"):
            if body.get(member) is not None:
                config[member] = body[member]
        if (body.get("CodeSigningPolicies") or {}).get("UntrustedArtifactOnDeployment"):
            config["CodeSigningPolicies"] = dict(body["CodeSigningPolicies"])
        config["LastModified"] = url_timestamp()
        return {"CodeSigningConfig": copied(config)}


def functions_using(store, csc_arn):
    return [function_arn(store, f.name) for f in store.functions.values()
            if f.code_signing_config_arn == csc_arn]


def delete_code_signing_config(store, params, body):
    """DeleteCodeSigningConfig: refused while a function uses it."""
    with store.lock:
        config = find_code_signing_config(store, params)
        users = functions_using(store, config["CodeSigningConfigArn"])
        if users:
            raise conflict("The code signing configuration cannot be deleted because it is used by "
                           f"functions: {', '.join(users)}")
        del store.code_signing_configs[config["CodeSigningConfigArn"]]
        store.tags.pop(config["CodeSigningConfigArn"], None)
    return Reply(204)


def list_code_signing_configs(store, params, body):
    """ListCodeSigningConfigs."""
    query = query_members(params, PAGE_QUERY, integers=("MaxItems",))
    with store.lock:
        items = [copied(c) for c in store.code_signing_configs.values()]
    return paginate(items, query.get("Marker"), min(query.get("MaxItems") or 50, 50),
                    "CodeSigningConfigs", "NextMarker")


def list_functions_by_code_signing_config(store, params, body):
    """ListFunctionsByCodeSigningConfig."""
    query = query_members(params, PAGE_QUERY, integers=("MaxItems",))
    with store.lock:
        config = find_code_signing_config(store, params)
        items = functions_using(store, config["CodeSigningConfigArn"])
    return paginate(items, query.get("Marker"), min(query.get("MaxItems") or 50, 50),
                    "FunctionArns", "NextMarker")


def check_code_signing_config(store, arn):
    """A CodeSigningConfigArn a function refers to must exist. Caller holds store.lock."""
    if arn not in store.code_signing_configs:
        raise LambdaError("CodeSigningConfigNotFoundException", 404,
                          "The code signing configuration cannot be found. Check that the provided "
                          f"configuration is not deleted: {arn}.")


def put_function_code_signing_config(store, params, body):
    """PutFunctionCodeSigningConfig."""
    check_body(body, PUT_FUNCTION_CODE_SIGNING_CONFIG)
    name, qualifier = function_target(store, params)
    with store.lock:
        check_code_signing_config(store, body["CodeSigningConfigArn"])
        function = find_function(store, name)
        function.code_signing_config_arn = body["CodeSigningConfigArn"]
        return {"CodeSigningConfigArn": body["CodeSigningConfigArn"], "FunctionName": name}


def get_function_code_signing_config(store, params, body):
    """GetFunctionCodeSigningConfig: an empty object when the function has none, as on AWS."""
    name, qualifier = function_target(store, params)
    with store.lock:
        function = find_function(store, name)
        if function.code_signing_config_arn is None:
            return {}
        return {"CodeSigningConfigArn": function.code_signing_config_arn, "FunctionName": name}


def delete_function_code_signing_config(store, params, body):
    """DeleteFunctionCodeSigningConfig."""
    name, qualifier = function_target(store, params)
    with store.lock:
        find_function(store, name).code_signing_config_arn = None
    return Reply(204)


# -- Recursion and runtime management ----------------------------------------------------------

PUT_FUNCTION_RECURSION_CONFIG = struct(("RecursiveLoop",),
                                       RecursiveLoop=text(enum=("Terminate", "Allow")))
RUNTIME_QUERY = struct(Qualifier=text(1, 128, pattern=QUALIFIER_PATTERN))
PUT_RUNTIME_MANAGEMENT_CONFIG = struct(
    ("UpdateRuntimeOn",), UpdateRuntimeOn=text(enum=("Auto", "Manual", "FunctionUpdate")),
    RuntimeVersionArn=text(26, 2048, pattern=(
        r"((arn:(aws[a-zA-Z-]*):lambda:(eusc-)?[a-z]{2}((-gov)|(-iso([a-z]?)))?-[a-z]+-\d{1}::"
        r"runtime:.+)|(arn:(aws[a-zA-Z-]*):lambda:(eusc-)?[a-z]{2}((-gov)|(-iso([a-z]?))"
        r")?-[a-z]+-\d{1}:\d{12}:runtime/[A-Za-z0-9_.-]{1,128}/version/[A-Za-z0-9_.-]{1,128}))")))


def get_function_recursion_config(store, params, body):
    """GetFunctionRecursionConfig: Terminate unless set. Recorded, not enforced (no loops here)."""
    name = unqualified_target(store, params)
    with store.lock:
        return {"RecursiveLoop": find_function(store, name).recursive_loop}


def put_function_recursion_config(store, params, body):
    """PutFunctionRecursionConfig."""
    check_body(body, PUT_FUNCTION_RECURSION_CONFIG)
    name = unqualified_target(store, params)
    with store.lock:
        find_function(store, name).recursive_loop = body["RecursiveLoop"]
        return {"RecursiveLoop": body["RecursiveLoop"]}


def runtime_target(store, params):
    """(function, version key, FunctionArn) of a runtime-management operation. Caller holds lock."""
    query_members(params, RUNTIME_QUERY)
    name, qualifier = function_target(store, params)
    function = find_function(store, name)
    version, config, alias = find_version(store, function, qualifier)
    if alias:
        raise invalid_parameter("Runtime management configuration applies to a version or $LATEST, "
                                "not to an alias.")
    return function, version, function_arn(store, name, qualifier if qualifier else None)


def get_runtime_management_config(store, params, body):
    """GetRuntimeManagementConfig: Auto unless set."""
    with store.lock:
        function, version, arn = runtime_target(store, params)
        config = function.runtime_management.get(version) or {"UpdateRuntimeOn": "Auto"}
        return dict(config, FunctionArn=arn)


def put_runtime_management_config(store, params, body):
    """PutRuntimeManagementConfig: stored; the runtime here is whatever node/python is installed."""
    check_body(body, PUT_RUNTIME_MANAGEMENT_CONFIG)
    if body["UpdateRuntimeOn"] == "Manual" and not body.get("RuntimeVersionArn"):
        raise invalid_parameter("RuntimeVersionArn is required when UpdateRuntimeOn is Manual.")
    if body["UpdateRuntimeOn"] != "Manual" and body.get("RuntimeVersionArn"):
        raise invalid_parameter("RuntimeVersionArn can only be given when UpdateRuntimeOn is "
                                "Manual.")
    with store.lock:
        function, version, arn = runtime_target(store, params)
        config = {"UpdateRuntimeOn": body["UpdateRuntimeOn"]}
        if body.get("RuntimeVersionArn"):
            config["RuntimeVersionArn"] = body["RuntimeVersionArn"]
        function.runtime_management[version] = config
        return dict(config, FunctionArn=arn)


# -- Capacity providers and scaling ------------------------------------------------------------
# Lambda Managed Instances: capacity providers are stored and answered; functions attached to one
# run here like any other function.

CAPACITY_PROVIDER_NAME = text(1, 140, pattern=(
    r"(arn:aws[a-zA-Z-]*:lambda:(eusc-)?[a-z]{2}((-gov)|(-iso([a-z]?)))?-[a-z]+-\d{1}:\d{12}:"
    r"capacity-provider:[a-zA-Z0-9-_]+)|[a-zA-Z0-9-_]+"))
CAPACITY_SCALING = struct(MaxVCpuCount=integer(2, 15000), ScalingMode=text(enum=("Auto", "Manual")),
                          ScalingPolicies=list_of(struct(
                              ("PredefinedMetricType", "TargetValue"),
                              PredefinedMetricType=text(enum=(
                                  "LambdaCapacityProviderAverageCPUUtilization",
                                  "LambdaCapacityProviderAverageGPUUtilization")),
                              TargetValue=number(0, 100)), 1, 10))
PROPAGATE_TAGS = struct(Mode=text(enum=("None", "Explicit")), ExplicitTags=TAGS)
TELEMETRY_CONFIG = struct(LoggingConfig=struct(SystemLogLevel=text(enum=("DEBUG", "INFO", "WARN")),
                                               LogGroup=text(1, 512,
                                                             pattern=r"[\.\-_/#A-Za-z0-9]+")))
CREATE_CAPACITY_PROVIDER = struct(
    ("CapacityProviderName", "VpcConfig", "PermissionsConfig"),
    CapacityProviderName=CAPACITY_PROVIDER_NAME,
    VpcConfig=struct(("SubnetIds", "SecurityGroupIds"),
                     SubnetIds=list_of(text(0, 1024, pattern=r"subnet-[0-9a-z]*"), 1, 16),
                     SecurityGroupIds=list_of(text(0, 1024, pattern=r"sg-[0-9a-zA-Z]*"), 0, 5)),
    PermissionsConfig=struct(("CapacityProviderOperatorRoleArn",),
                             CapacityProviderOperatorRoleArn=text(0, 10000, pattern=ROLE_PATTERN)),
    InstanceRequirements=struct(Architectures=list_of(text(enum=("x86_64", "arm64")), 1, 1),
                                AllowedInstanceTypes=list_of(
                                    text(1, 30, pattern=r"[a-zA-Z0-9\.\*\-]+"), 0, 400),
                                ExcludedInstanceTypes=list_of(
                                    text(1, 30, pattern=r"[a-zA-Z0-9\.\*\-]+"), 0, 400)),
    CapacityProviderScalingConfig=CAPACITY_SCALING,
    KmsKeyArn=text(0, 10000, pattern=r"arn:(aws[a-zA-Z-]*)?:[a-z0-9-.]+:.*"), Tags=TAGS,
    PropagateTags=PROPAGATE_TAGS, TelemetryConfig=TELEMETRY_CONFIG)
UPDATE_CAPACITY_PROVIDER = struct(CapacityProviderScalingConfig=CAPACITY_SCALING,
                                  PropagateTags=PROPAGATE_TAGS, TelemetryConfig=TELEMETRY_CONFIG)
CAPACITY_PROVIDER_PATH = struct(CapacityProviderName=CAPACITY_PROVIDER_NAME)
LIST_CAPACITY_PROVIDERS_QUERY = struct(State=text(enum=("Pending", "Active", "Failed", "Deleting")),
                                       Marker=text(), MaxItems=integer(1, 50))
SCALING_QUERY = struct(Qualifier=text(1, 128, pattern=r"(\$LATEST\.PUBLISHED|[0-9]+)"))
PUT_FUNCTION_SCALING_CONFIG = struct(FunctionScalingConfig=struct(
    MinExecutionEnvironments=integer(0, 15000), MaxExecutionEnvironments=integer(0, 15000)))


def capacity_provider_arn(store, name):
    return f"arn:aws:lambda:{store.region}:{store.account}:capacity-provider:{name}"


def capacity_provider_versions(store, arn):
    """Qualified ARNs of the function versions that run on a capacity provider."""
    return [function_arn(store, f.name, v) for f in store.functions.values()
            for v, c in f.versions.items()
            if ((c.get("CapacityProviderConfig")
                 or {}).get("LambdaManagedInstancesCapacityProviderConfig")
                or {}).get("CapacityProviderArn") in (arn, arn.rsplit(":", 1)[-1])]


def create_capacity_provider(store, params, body):
    """CreateCapacityProvider: Active at once (AWS passes through Pending)."""
    check_body(body, CREATE_CAPACITY_PROVIDER)
    name = body["CapacityProviderName"].rsplit(":", 1)[-1]
    with store.lock:
        arn = capacity_provider_arn(store, name)
        if name in store.capacity_providers:
            raise conflict(f"Capacity provider already exists: {arn}")
        provider = {"CapacityProviderArn": arn, "State": "Active",
                    "LastModified": iso_timestamp(zone="+0000"),
                    **{k: v for k, v in body.items() if k not in ("CapacityProviderName", "Tags")}}
        store.capacity_providers[name] = provider
        if body.get("Tags"):
            store.tags[arn] = dict(body["Tags"])
        return {"CapacityProvider": copied(provider)}


def find_capacity_provider(store, params):
    query_members(params, CAPACITY_PROVIDER_PATH)
    name = params["CapacityProviderName"].rsplit(":", 1)[-1]
    provider = store.capacity_providers.get(name)
    if provider is None:
        raise not_found(f"Capacity provider not found: {capacity_provider_arn(store, name)}")
    return name, provider


def get_capacity_provider(store, params, body):
    """GetCapacityProvider."""
    with store.lock:
        return {"CapacityProvider": copied(find_capacity_provider(store, params)[1])}


def update_capacity_provider(store, params, body):
    """UpdateCapacityProvider: scaling, tag propagation and telemetry settings."""
    check_body(body, UPDATE_CAPACITY_PROVIDER)
    with store.lock:
        name, provider = find_capacity_provider(store, params)
        provider.update({k: v for k, v in body.items() if v is not None})
        provider["LastModified"] = iso_timestamp(zone="+0000")
        return {"CapacityProvider": copied(provider)}


def delete_capacity_provider(store, params, body):
    """DeleteCapacityProvider: refused while function versions run on it."""
    with store.lock:
        name, provider = find_capacity_provider(store, params)
        users = capacity_provider_versions(store, provider["CapacityProviderArn"])
        if users:
            raise conflict("The capacity provider is used by function versions: "
                           f"{', '.join(users)}")
        del store.capacity_providers[name]
        store.tags.pop(provider["CapacityProviderArn"], None)
        return {"CapacityProvider": dict(copied(provider), State="Deleting")}


def list_capacity_providers(store, params, body):
    """ListCapacityProviders."""
    query = query_members(params, LIST_CAPACITY_PROVIDERS_QUERY, integers=("MaxItems",))
    with store.lock:
        items = [copied(p) for _, p in sorted(store.capacity_providers.items())
                 if query.get("State") in (None, p["State"])]
    return paginate(items, query.get("Marker"), query.get("MaxItems") or 50, "CapacityProviders",
                    "NextMarker")


def list_function_versions_by_capacity_provider(store, params, body):
    """ListFunctionVersionsByCapacityProvider."""
    query = query_members(params, LIST_URLS_QUERY, integers=("MaxItems",))
    with store.lock:
        name, provider = find_capacity_provider(store, params)
        arn = provider["CapacityProviderArn"]
        items = [{"FunctionArn": version, "State": "Active"}
                 for version in capacity_provider_versions(store, arn)]
    page = paginate(items, query.get("Marker"), query.get("MaxItems") or 50, "FunctionVersions",
                    "NextMarker")
    return dict(page, CapacityProviderArn=arn)


def scaling_target(store, params):
    """(function, version) of a scaling-config operation: a published version. Caller holds lock."""
    query_members(params, SCALING_QUERY)
    if params.get("Qualifier") is None:
        raise validation_error([constraint_text(None, "qualifier", "Member must not be null")])
    name = unqualified_target(store, {"FunctionName": params["FunctionName"]})
    function = find_function(store, name)
    version = params["Qualifier"]
    if version == "$LATEST.PUBLISHED":
        version = str(function.next_version - 1)
    if version not in function.versions:
        raise function_not_found(function_arn(store, name, params["Qualifier"]))
    return function, version


def put_function_scaling_config(store, params, body):
    """PutFunctionScalingConfig: stored and answered; nothing is scaled here."""
    check_body(body, PUT_FUNCTION_SCALING_CONFIG)
    config = body.get("FunctionScalingConfig") or {}
    if config.get("MinExecutionEnvironments", 0) > config.get("MaxExecutionEnvironments", 15000):
        raise invalid_parameter("MinExecutionEnvironments cannot be greater than "
                                "MaxExecutionEnvironments.")
    with store.lock:
        function, version = scaling_target(store, params)
        function.scaling_configs[version] = dict(config)
        return {"FunctionState": "Active"}


def get_function_scaling_config(store, params, body):
    """GetFunctionScalingConfig."""
    with store.lock:
        function, version = scaling_target(store, params)
        reply = {"FunctionArn": function_arn(store, function.name, version)}
        config = function.scaling_configs.get(version)
        if config is not None:
            reply["AppliedFunctionScalingConfig"] = dict(config)
            reply["RequestedFunctionScalingConfig"] = dict(config)
        return reply


# -- Durable executions ------------------------------------------------------------------------
# Invoking a function with a DurableConfig starts a durable execution, driven as Lambda drives
# one: the handler gets the durable SDK's envelope (ARN, checkpoint token, operations) and answers
# {"Status": "SUCCEEDED" | "FAILED" | "PENDING", "Result", "Error"}. On PENDING it is invoked again
# once a wait elapses, a step retry is due, a callback completes or a chained invoke returns.
# The SDKs reach CheckpointDurableExecution through AWS_ENDPOINT_URL_LAMBDA.

DURABLE_EXECUTION_ARN = text(1, 1024, pattern=(
    r"arn:([a-zA-Z0-9-]+):lambda:([a-zA-Z0-9-]+):(\d{12}):function:([a-zA-Z0-9_-]+):(\$LATEST(?:"
    r"\.PUBLISHED)?|[0-9]+)/durable-execution/([a-zA-Z0-9_-]+)/([a-zA-Z0-9_-]+)"))
CHECKPOINT_TOKEN = text(1, 2048, pattern=r"[A-Za-z0-9+/]+={0,2}")
ERROR_OBJECT = struct(ErrorMessage=text(), ErrorType=text(), ErrorData=text(),
                      StackTrace=list_of(text()))
DURABLE_PATH = struct(DurableExecutionArn=DURABLE_EXECUTION_ARN,
                      IncludeExecutionData=text(enum=("true", "false")),
                      MaxItems=integer(0, 1000), Marker=text(),
                      ReverseOrder=text(enum=("true", "false")), CheckpointToken=CHECKPOINT_TOKEN)
OPERATION_UPDATE = struct(
    ("Id", "Type", "Action"), Id=text(1, 64, pattern=r"[a-zA-Z0-9-_]+"),
    ParentId=text(1, 64, pattern=r"[a-zA-Z0-9-_]+"), Name=text(1, 256, pattern=r"[\x20-\x7E]+"),
    Type=text(enum=("EXECUTION", "CONTEXT", "STEP", "WAIT", "CALLBACK", "CHAINED_INVOKE")),
    SubType=text(1, 32, pattern=r"[a-zA-Z0-9-_]+"),
    Action=text(enum=("START", "SUCCEED", "FAIL", "RETRY", "CANCEL")), Payload=text(0, 6291456),
    Error=ERROR_OBJECT, ContextOptions=struct(ReplayChildren=boolean()),
    StepOptions=struct(NextAttemptDelaySeconds=integer(1, 31622400)),
    WaitOptions=struct(WaitSeconds=integer(1, 31622400)),
    CallbackOptions=struct(TimeoutSeconds=integer(0), HeartbeatTimeoutSeconds=integer(0)),
    ChainedInvokeOptions=struct(("FunctionName",), FunctionName=text(1, 256),
                                TenantId=text(1, 256)))
CHECKPOINT_DURABLE_EXECUTION = struct(("CheckpointToken",), CheckpointToken=CHECKPOINT_TOKEN,
                                      Updates=list_of(OPERATION_UPDATE),
                                      ClientToken=text(1, 64, pattern=r"[\x21-\x7E]+"))
PAUSE_DURABLE_EXECUTION = struct(ClientToken=text(1, 64, pattern=r"[\x21-\x7E]+"),
                                 Reason=text(0, 1024), ExecutionTimeoutPaused=boolean())
RESUME_DURABLE_EXECUTION = struct(ClientToken=text(1, 64, pattern=r"[\x21-\x7E]+"),
                                  Reason=text(0, 1024))
CALLBACK_PATH = struct(CallbackId=text(1, 1024, pattern=r"[A-Za-z0-9+/]+={0,2}"))
LIST_DURABLE_QUERY = struct(
    Qualifier=text(1, 128, pattern=QUALIFIER_PATTERN),
    DurableExecutionName=text(1, 64, pattern=r"[a-zA-Z0-9-_]+"),
    Statuses=list_of(text(enum=("RUNNING", "SUCCEEDED", "FAILED", "TIMED_OUT", "STOPPED",
                                "DELETING", "PAUSING", "PAUSED")), 1, 10),
    StartedAfter=text(), StartedBefore=text(), ReverseOrder=text(enum=("true", "false")),
    Marker=text(), MaxItems=integer(0, 1000))


def find_durable_execution(store, params):
    """The DurableExecution a path names, or ResourceNotFoundException. Caller holds store.lock."""
    query_members(params, DURABLE_PATH, integers=("MaxItems",))
    execution = store.durable_executions.get(params["DurableExecutionArn"])
    if execution is None:
        raise not_found(f"Durable execution not found: {params['DurableExecutionArn']}")
    return execution


def get_durable_execution(store, params, body):
    """GetDurableExecution; IncludeExecutionData=false leaves out input and result."""
    with store.lock:
        execution = find_durable_execution(store, params)
        record = copied(execution.record)
    if params.get("IncludeExecutionData") == "false":
        record.pop("InputPayload", None)
        record.pop("Result", None)
        record["ExecutionDataIncluded"] = False
    return record


def get_durable_execution_history(store, params, body):
    """GetDurableExecutionHistory: the events in order (or reversed), 100 a page by default."""
    with store.lock:
        events = copied(find_durable_execution(store, params).events)
    if params.get("ReverseOrder") == "true":
        events.reverse()
    return paginate(events, params.get("Marker"), int(params.get("MaxItems") or 0) or 100, "Events",
                    "NextMarker")


def check_checkpoint_token(execution, token):
    if execution.token is None or token != execution.token:
        raise invalid_parameter("Invalid checkpoint token")


def get_durable_execution_state(store, params, body):
    """GetDurableExecutionState: the operations, for the holder of the current checkpoint token."""
    if params.get("CheckpointToken") is None:
        raise validation_error([constraint_text(None, "checkpointToken",
                                                "Member must not be null")])
    with store.lock:
        execution = find_durable_execution(store, params)
        check_checkpoint_token(execution, params["CheckpointToken"])
        operations = copied(list(execution.operations.values()))
    return paginate(operations, params.get("Marker"), int(params.get("MaxItems") or 0) or 100,
                    "Operations", "NextMarker")


def checkpoint_durable_execution(store, params, body):
    """CheckpointDurableExecution: apply operation updates in order, complete what is due, and
    answer a new token with every operation's state (no token once the execution ended)."""
    check_body(body, CHECKPOINT_DURABLE_EXECUTION)
    with store.lock:
        execution = find_durable_execution(store, params)
        check_checkpoint_token(execution, body["CheckpointToken"])
        for update in body.get("Updates") or []:
            apply_operation_update(store, execution, update)
        execution.fire_due_timers()
        if execution.finished.is_set():
            return {"NewExecutionState": {"Operations": []}}
        if execution.status() == "PAUSED":          # the SDK suspends until Resume
            execution.token = None
            return {"NewExecutionState": {"Operations": []}}
        return {"CheckpointToken": execution.mint_token(),
                "NewExecutionState": {
                    "Operations": copied(list(execution.operations.values())),
                    "NextMarker": ""}}


def list_durable_executions_by_function(store, params, body):
    """ListDurableExecutionsByFunction: newest first unless ReverseOrder; name, status filters."""
    query = query_members(params, LIST_DURABLE_QUERY, integers=("MaxItems",))
    name, qualifier = function_target(store, params)
    statuses = query.get("Statuses")
    with store.lock:
        find_function(store, name)
        prefix = function_arn(store, name, qualifier) + ("/" if qualifier else ":")
        items = []
        for execution in store.durable_executions.values():
            record = execution.record
            if not record["DurableExecutionArn"].startswith(prefix):
                continue
            if query.get("DurableExecutionName") not in (None, record["DurableExecutionName"]):
                continue
            if statuses and record["Status"] not in statuses:
                continue
            items.append({k: record[k] for k in ("DurableExecutionArn", "DurableExecutionName",
                                                 "FunctionArn", "Status", "StartTimestamp",
                                                 "EndTimestamp") if k in record})
    if query.get("ReverseOrder") != "true":
        items.reverse()                 # newest first, unless ReverseOrder
    return paginate(items, query.get("Marker"), query.get("MaxItems") or 100, "DurableExecutions",
                    "NextMarker")


def stop_durable_execution(store, params, body):
    """StopDurableExecution: a running or paused execution becomes STOPPED (body: the Error)."""
    check_body(body, ERROR_OBJECT)
    with store.lock:
        execution = find_durable_execution(store, params)
        if execution.status() not in ("RUNNING", "PAUSED"):
            raise invalid_parameter(f"The durable execution is already {execution.status()}.")
        error = dict(body) or {"ErrorType": "Stopped",
                               "ErrorMessage": "Stopped by StopDurableExecution"}
        execution.finish("STOPPED", "ExecutionStopped", error=error)
        return {"StopTimestamp": execution.record["EndTimestamp"]}


def pause_durable_execution(store, params, body):
    """PauseDurableExecution: only a RUNNING execution can pause; the handler is not invoked again
    until it resumes."""
    check_body(body, PAUSE_DURABLE_EXECUTION)
    with store.lock:
        execution = find_durable_execution(store, params)
        if execution.status() != "RUNNING":
            raise conflict(f"The durable execution is {execution.status()}, not RUNNING.")
        now = time.time()
        execution.record["Status"] = "PAUSED"
        execution.record["PauseDetails"] = {k: v for k, v in body.items() if k != "ClientToken"}
        execution.add_event("ExecutionPaused", execution.id, ExecutionPausedDetails={
            "PauseRequestTimestamp": now,
            "ExecutionTimeoutPaused": bool(body.get("ExecutionTimeoutPaused"))})
    return Reply(202, {}, b"{}")


def resume_durable_execution(store, params, body):
    """ResumeDurableExecution: a PAUSED execution runs again."""
    check_body(body, RESUME_DURABLE_EXECUTION)
    with store.lock:
        execution = find_durable_execution(store, params)
        if execution.status() != "PAUSED":
            raise conflict(f"The durable execution is {execution.status()}, not PAUSED.")
        execution.record["Status"] = "RUNNING"
        execution.record.pop("PauseDetails", None)
        execution.add_event("ExecutionResumed", execution.id, ExecutionResumedDetails={
            "ResumeRequestTimestamp": time.time()})
        execution.changed.add(execution.id)
        execution.wake.set()
    return Reply(202, {}, b"{}")


def delete_durable_execution(store, params, body):
    """DeleteDurableExecution: only a finished execution can be deleted."""
    with store.lock:
        execution = find_durable_execution(store, params)
        if execution.status() in ("RUNNING", "PAUSED"):
            raise conflict(f"The durable execution is {execution.status()}; stop it first.")
        del store.durable_executions[execution.arn]
        for callback_id in [c for c, (arn, _) in store.callbacks.items() if arn == execution.arn]:
            del store.callbacks[callback_id]
    return Reply(202, {}, json.dumps({"DeletionRequestTimestamp": time.time()}).encode())


def find_callback(store, params):
    """(execution, operation) of a callback that is still waiting. Caller holds store.lock."""
    query_members(params, CALLBACK_PATH)
    execution_arn, operation_id = store.callbacks.get(params["CallbackId"], (None, None))
    execution = store.durable_executions.get(execution_arn)
    if execution is None:
        raise not_found(f"Callback not found: {params['CallbackId']}")
    operation = execution.operations[operation_id]
    if operation["Status"] != "STARTED":
        raise invalid_parameter(f"The callback {params['CallbackId']} is already "
                                f"{operation['Status']}.")
    return execution, operation


def send_durable_execution_callback_success(store, params, body):
    """SendDurableExecutionCallbackSuccess: the request body is the callback's result."""
    if len(body) > 262144:
        raise LambdaError("RequestEntityTooLargeException", 413,
                          "Request must be smaller than 262144 bytes for the "
                          "SendDurableExecutionCallbackSuccess operation")
    with store.lock:
        execution, operation = find_callback(store, params)
        execution.complete_callback(operation["Id"], "SUCCEEDED",
                                    result=body.decode("utf-8", "replace"))
    return {}


def send_durable_execution_callback_failure(store, params, body):
    """SendDurableExecutionCallbackFailure: the request body is the ErrorObject."""
    check_body(body, ERROR_OBJECT)
    with store.lock:
        execution, operation = find_callback(store, params)
        execution.complete_callback(operation["Id"], "FAILED", error=dict(body))
    return {}


def send_durable_execution_callback_heartbeat(store, params, body):
    """SendDurableExecutionCallbackHeartbeat: restarts the callback's heartbeat timeout."""
    with store.lock:
        execution, operation = find_callback(store, params)
        deadline = execution.timers.get(operation["Id"])
        if deadline and deadline[1]:        # the heartbeat's deadline is the one still ahead
            details = next((e["CallbackStartedDetails"] for e in execution.events
                            if e["Id"] == operation["Id"] and "CallbackStartedDetails" in e), {})
            execution.timers[operation["Id"]] = callback_deadline(
                operation["StartTimestamp"], details.get("Timeout", 0), time.time(),
                details.get("HeartbeatTimeout", 0))
    return {}


# -- Account -----------------------------------------------------------------------------------

def get_account_settings(store, params, body):
    """GetAccountSettings: AWS's default limits and this server's live usage."""
    with store.lock:
        code_size = sum(config["CodeSize"] for function in store.functions.values()
                        for config in function.versions.values())
        code_size += sum(version["Content"]["CodeSize"] for layer in store.layers.values()
                         for version in layer.versions.values())
        return {"AccountLimit": {"TotalCodeSize": TOTAL_CODE_STORAGE_BYTES,
                                 "CodeSizeUnzipped": MAX_UNZIPPED_BYTES,
                                 "CodeSizeZipped": MAX_ZIP_UPLOAD_BYTES,
                                 "ConcurrentExecutions": ACCOUNT_CONCURRENCY,
                                 "UnreservedConcurrentExecutions": unreserved_concurrency(store)},
                "AccountUsage": {"TotalCodeSize": code_size, "FunctionCount": len(store.functions)}}


# -- Fake-only operations ----------------------------------------------------------------------

def parlel_health(store, params, body):
    """GET /_parlel/health: liveness and the number of functions, in every account and region."""
    return {"status": "ok", "service": "lambda",
            "functions": sum(len(each.functions) for each in store.stores.each())}


def parlel_debug(store, params, body):
    """GET /_parlel/debug: the environments being debugged, with the port to attach to."""
    return store.runner.debugged()


def reset_server(store):
    """Forget all state and end every environment that ran a function, for POST /_parlel/reset
    and LambdaServer.reset(). Spares, which never ran user code, stay ready."""
    store.stores.reset()
    store.runner.clear()


def parlel_reset(store, params, body):
    """POST /_parlel/reset: forget all state and end every worker."""
    reset_server(store)
    return {"status": "ok"}


def parlel_logs(store, params, body):
    """GET /_parlel/logs[/<function>]: recent invocations, oldest first, with their logs.
    ?requestId=... narrows to one invocation. Every account and region's, each entry naming its
    own."""
    records = []
    for each in store.stores.each():
        with each.lock:
            records += [e for e in each.invocations
                        if params.get("FunctionName") in (None, e.function_name)
                        and params.get("requestId") in (None, e.request_id)]
    return {"invocations": [e.view() for e in sorted(records, key=lambda e: e.started)]}


# The inspector: one self-contained page (no external assets) that reads /_parlel/inspect.
INSPECTOR_PAGE = r"""<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>lambda_fake inspector</title>
<link rel="icon" href="data:,">
<style>
:root { --bg:#f6f7f9; --card:#fff; --fg:#1d2330; --mute:#5f6b7a; --line:#dde1e7; --code:#f1f3f6;
  --accent:#2456c7; --ok:#17753a; --okbg:#e3f5e9; --bad:#b42318; --badbg:#fde8e6;
  --warn:#8a5300; --warnbg:#fdf1d8; color-scheme:light dark; }
@media (prefers-color-scheme: dark) {
  :root { --bg:#14171c; --card:#1c2028; --fg:#e4e7ec; --mute:#98a2b3; --line:#2e3440;
    --code:#242a34; --accent:#7aa2ff; --ok:#6fd08c; --okbg:#183524; --bad:#ff8a80;
    --badbg:#3d1b1b; --warn:#f5c26b; --warnbg:#3a2c12; }
}
* { box-sizing: border-box; }
body { margin:0; font:14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif;
  background:var(--bg); color:var(--fg); }
header { display:flex; flex-wrap:wrap; align-items:baseline; gap:6px 20px; padding:12px 24px;
  background:var(--card); border-bottom:1px solid var(--line); }
header h1 { font-size:17px; margin:0 12px 0 0; }
header dl { display:flex; flex-wrap:wrap; gap:4px 18px; margin:0; color:var(--mute); }
header dt { display:inline; }
header dt::after { content:":"; }
header dd { display:inline; margin:0 0 0 4px; color:var(--fg);
  font-family:ui-monospace, Menlo, Consolas, monospace; font-size:13px; }
#status { margin-left:auto; color:var(--mute); font-size:13px; }
#status.err { color:var(--bad); font-weight:600; }
main { padding:8px 24px 32px; max-width:1600px; margin:0 auto; }
h2 { font-size:15px; margin:22px 0 10px; display:flex; align-items:center; gap:12px; }
h2 .count { color:var(--mute); font-weight:400; }
button, input { font:inherit; color:inherit; }
button { background:var(--code); border:1px solid var(--line); border-radius:5px; padding:1px 8px;
  cursor:pointer; font-size:12px; }
button:hover { border-color:var(--accent); }
input[type=search] { margin-left:auto; font-size:13px; padding:3px 8px;
  border:1px solid var(--line); border-radius:5px; background:var(--card); width:260px;
  font-weight:400; }
a { color:var(--accent); }
code, pre, .mono { font-family:ui-monospace, Menlo, Consolas, monospace; font-size:12.5px; }
.empty { background:var(--card); border:1px dashed var(--line); border-radius:8px; padding:20px;
  color:var(--mute); }
.fns { display:grid; grid-template-columns:repeat(auto-fill, minmax(440px, 1fr)); gap:14px;
  align-items:start; }
.fn { background:var(--card); border:1px solid var(--line); border-radius:8px; padding:12px 16px;
  scroll-margin-top:10px; }
.fn:target { outline:2px solid var(--accent); }
.fn h3 { margin:0 0 8px; font-size:15px; display:flex; gap:10px; align-items:center; }
.fn dl { display:grid; grid-template-columns:max-content 1fr; gap:3px 14px; margin:0; }
.fn dt { color:var(--mute); } .fn dd { margin:0; min-width:0; overflow-wrap:anywhere; }
.facts { color:var(--mute); margin-bottom:8px; }
.nones { color:var(--mute); margin:4px 0 0; }
.nones:empty { display:none; }
.facts b { color:var(--fg); font-weight:500; }
.chip { display:inline-block; border-radius:10px; padding:0 8px; font-size:12px; font-weight:600;
  background:var(--code); margin:0 4px 2px 0; }
.Success, .Active { background:var(--okbg); color:var(--ok); }
.Throttled, .Pending { background:var(--warnbg); color:var(--warn); }
.Unhandled, .Handled, .Failed, .Inactive { background:var(--badbg); color:var(--bad); }
details > summary { cursor:pointer; color:var(--mute); margin-top:6px; }
details[open] > summary { color:var(--fg); }
pre { background:var(--code); border-radius:6px; padding:8px 10px; margin:6px 0 0; overflow:auto;
  max-height:420px; white-space:pre-wrap; overflow-wrap:anywhere; }
table { width:100%; border-collapse:collapse; background:var(--card); border:1px solid var(--line);
  border-radius:8px; table-layout:fixed; }
th, td { text-align:left; padding:5px 8px; border-bottom:1px solid var(--line); vertical-align:top;
  }
tbody > tr:not(.more) > td { vertical-align:middle; }
th { font-size:12px; color:var(--mute); font-weight:600; background:var(--code); }
td.clip { white-space:nowrap; overflow:hidden; text-overflow:ellipsis; }
tr.more > td { background:var(--bg); padding:4px 12px 12px; }
.sr { position:absolute; width:1px; height:1px; overflow:hidden; clip:rect(0 0 0 0); }
.panes { display:grid; grid-template-columns:1fr 1fr; gap:12px; }
.panes h4 { margin:8px 0 0; font-size:12px; color:var(--mute); }
</style>
</head>
<body>
<header>
  <h1>lambda_fake inspector</h1>
  <dl aria-label="Server">
    <div><dt>Endpoint</dt><dd id="endpoint">…</dd></div>
    <div><dt>Region</dt><dd id="region">…</dd></div>
    <div><dt>Account</dt><dd id="account">…</dd></div>
    <div><dt>Version</dt><dd id="version">…</dd></div>
  </dl>
  <span id="status" role="status" aria-live="polite">Loading…</span>
  <button id="pause" type="button" aria-pressed="false">Pause</button>
</header>
<main>
  <section aria-labelledby="fn-h">
    <h2 id="fn-h">Functions <span class="count" id="fn-count"></span></h2>
    <div id="functions"></div>
  </section>
  <section aria-labelledby="inv-h">
    <h2 id="inv-h">Recent invocations <span class="count" id="inv-count"></span>
      <input type="search" id="filter" placeholder="Filter: function, status, request id"
             aria-label="Filter invocations"></h2>
    <div id="invocations"></div>
  </section>
</main>
<script>
"use strict";
const $ = (id) => document.getElementById(id);
const open = new Set();            // keys of expanded items, kept across refreshes
let data = null, lastText = "", paused = false;

function h(tag, props, ...kids) {  // build elements; text always goes in as text nodes
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(props || {})) {
    if (v == null || v === false) continue;
    if (k.startsWith("on")) el.addEventListener(k.slice(2), v);
    else el.setAttribute(k, v === true ? "" : v);
  }
  for (const kid of kids.flat(9)) {
    if (kid != null && kid !== false) el.append(kid instanceof Node ? kid : String(kid));
  }
  return el;
}
function fold(key, label, ...body) {  // a <details> whose open state survives re-rendering
  const d = h("details", { open: open.has(key), "data-key": key },
              h("summary", { "data-key": key }, label), ...body);
  d.addEventListener("toggle", () => { d.open ? open.add(key) : open.delete(key); });
  return d;
}
function toggle(key) { open.has(key) ? open.delete(key) : open.add(key); render(); }
const pretty = (s) => {
  if (s == null || s === "") return "(empty)";
  try { return JSON.stringify(JSON.parse(s), null, 2); } catch { return String(s); }
};
const bytes = (n) => n == null ? "—" : n < 1024 ? n + " B"
  : n < 1048576 ? (n / 1024).toFixed(1) + " KB" : (n / 1048576).toFixed(1) + " MB";
const safeUrl = (u) => {
  try { return /^https?:$/.test(new URL(u).protocol) ? u : null; } catch { return null; }
};
const none = (text) => h("span", { style: "color:var(--mute)" }, text);
const chip = (text, kind) => h("span", { class: "chip" + (kind ? " " + kind : "") }, text);

function fnCard(f) {
  const c = f.Configuration || {}, name = f.FunctionName;
  const vars = (c.Environment || {}).Variables || {};
  const envKey = "env:" + name, showEnv = open.has(envKey), names = Object.keys(vars).sort();
  const aliases = (f.Aliases || []).map((a) => {
    const extra = Object.entries((a.RoutingConfig || {}).AdditionalVersionWeights || {});
    const mainPct = Math.round((1 - extra.reduce((s, [, w]) => s + w, 0)) * 1000) / 10;
    const weights = extra.map(([v, w]) => [", ", chip("v" + v), `${Math.round(w * 1000) / 10}%`]);
    return h("div", {}, h("code", {}, a.Name), " → ", chip("v" + a.FunctionVersion),
             extra.length ? [`${mainPct}%`, weights] : null);
  });
  const urls = (f.Urls || []).map((u) => h("div", {},
    safeUrl(u.FunctionUrl)
      ? h("a", { href: u.FunctionUrl, target: "_blank", rel: "noopener" }, u.FunctionUrl)
      : h("code", {}, u.FunctionUrl),
    " ", chip(u.AuthType), u.Qualifier ? chip(u.Qualifier) : null,
    u.InvokeMode && u.InvokeMode !== "BUFFERED" ? chip(u.InvokeMode) : null));
  const tags = Object.entries(f.Tags || {}).map(([k, v]) => chip(`${k}=${v}`));
  const env = names.length ? [
    names.map((n) => showEnv ? h("div", { class: "mono" }, `${n}=${vars[n]}`)
                             : h("code", { class: "chip" }, n)),
    h("button", { type: "button", "data-key": envKey, "aria-expanded": String(showEnv),
                  onclick: () => toggle(envKey) }, showEnv ? "Hide values" : "Show values")] : [];
  // Environment values stay hidden in the JSON too until "Show values".
  const shown = showEnv || !names.length ? c : { ...c, Environment: { ...c.Environment,
    Variables: Object.fromEntries(names.map((n) => [n, "••••••"])) } };
  const reserved = f.ReservedConcurrency == null ? [] : [String(f.ReservedConcurrency)];
  const rows = [
    ["Versions", (f.Versions || []).map((v) => chip("v" + v)), "no published versions"],
    ["Aliases", aliases, "no aliases"], ["Function URLs", urls, "no function URLs"],
    ["Tags", tags, "no tags"], ["Reserved concurrency", reserved, "unreserved concurrency"],
    ["Environment", names.length ? env : [], "no environment variables"]];
  const modified = (c.LastModified || "—").replace("T", " ").replace(/\.\d+/, "")
    .replace("+0000", " UTC");
  return h("article", { class: "fn", id: "fn-" + name, "aria-labelledby": "fnh-" + name },
    h("h3", { id: "fnh-" + name }, name, chip(c.State || "unknown", c.State || ""),
      chip(`${f.Account} · ${f.Region}`),
      c.LastUpdateStatus && c.LastUpdateStatus !== "Successful"
        ? chip("update " + c.LastUpdateStatus, "Failed") : null),
    h("div", { class: "facts" }, h("b", {}, c.Runtime || c.PackageType || "—"), " · ",
      h("code", {}, c.Handler || "—"), " · ", h("b", {}, c.MemorySize + " MB"), " · ",
      h("b", {}, c.Timeout + " s"), " timeout · ", bytes(c.CodeSize),
      h("br"), "modified ", h("time", { datetime: c.LastModified }, modified)),
    h("dl", {}, rows.filter((r) => r[1].length).map(([k, v]) => [h("dt", {}, k), h("dd", {}, v)])),
    h("p", { class: "nones" }, rows.filter((r) => !r[1].length).map((r) => r[2]).join(" · ")),
    fold("cfg:" + name, "Configuration JSON", h("pre", {}, JSON.stringify(shown, null, 2))));
}

function invRows(inv, i) {
  const key = "inv:" + inv.requestId + ":" + inv.timestamp, isOpen = open.has(key);
  const id = "inv-more-" + i, response = inv.response == null ? "" : inv.response;
  const row = h("tr", {},
    h("td", {}, h("button", { type: "button", "data-key": key, "aria-expanded": String(isOpen),
                              "aria-controls": isOpen ? id : null,
                              "aria-label": (isOpen ? "Hide" : "Show") + " details",
                              onclick: () => toggle(key) }, isOpen ? "▾" : "▸")),
    h("td", { class: "mono" }, h("time", { datetime: inv.timestamp, title: inv.timestamp },
                                 (inv.timestamp || "").slice(11, 23))),
    h("td", { class: "clip", title: `${inv.account} · ${inv.region}` },
      h("a", { href: "#fn-" + inv.functionName }, inv.functionName)),
    h("td", { class: "mono" }, inv.version), h("td", {}, inv.invocationType),
    h("td", { class: "mono" }, inv.durationMs == null ? "—" : inv.durationMs.toFixed(1) + " ms"),
    h("td", {}, chip(inv.status, inv.status)),
    h("td", { class: "clip mono", title: inv.payload }, inv.payload),
    h("td", { class: "clip mono", title: response }, inv.response == null ? none("—") : response));
  if (!isOpen) return row;
  const out = inv.response == null ? "(no response: " + inv.status + ")" : pretty(inv.response);
  return [row, h("tr", { class: "more", id }, h("td", { colspan: 9 },
    h("div", { class: "mono", style: "color:var(--mute)" }, "RequestId " + inv.requestId),
    h("div", { class: "panes" },
      h("div", {}, h("h4", {}, "Payload in"), h("pre", {}, pretty(inv.payload))),
      h("div", {}, h("h4", {}, "Payload out"), h("pre", {}, out))),
    inv.log == null ? null : fold("log:" + key, "Log", h("pre", {}, inv.log))))];
}

const COLUMNS = ["", "Time (UTC)", "Function", "Version", "Type", "Duration", "Status",
                 "Payload in", "Payload out"];
const WIDTHS = [34, 110, 150, 70, 130, 90, 100, null, null];

function render() {
  if (!data) return;
  const focusKey = document.activeElement && document.activeElement.getAttribute("data-key");
  const fns = data.functions || [], q = $("filter").value.trim().toLowerCase();
  const matches = (v) => !q || [v.functionName, v.status, v.requestId, v.version,
                                v.invocationType].join(" ").toLowerCase().includes(q);
  const invs = (data.invocations || []).slice().reverse()   // newest first, ties as recorded
    .sort((a, b) => a.timestamp < b.timestamp ? 1 : a.timestamp > b.timestamp ? -1 : 0)
    .filter(matches);
  for (const k of ["endpoint", "region", "account", "version"]) $(k).textContent = data[k] || "—";
  $("fn-count").textContent = `(${fns.length})`;
  $("inv-count").textContent = `(${invs.length}${q ? " matching" : ""})`;
  $("functions").replaceChildren(fns.length
    ? h("div", { class: "fns" }, fns.map(fnCard))
    : h("p", { class: "empty" }, "No functions yet. Create one with boto3 against ",
        h("code", {}, data.endpoint || location.origin), " and it will appear here."));
  $("invocations").replaceChildren(invs.length ? h("table", {},
    h("colgroup", {}, WIDTHS.map((w) => h("col", { style: w ? `width:${w}px` : null }))),
    h("thead", {}, h("tr", {}, COLUMNS.map((t, i) =>
      h("th", { scope: "col" }, i ? t : h("span", { class: "sr" }, "Details"))))),
    h("tbody", {}, invs.map(invRows)))
    : h("p", { class: "empty" }, q ? "No invocations match the filter." : "No invocations yet."));
  const again = focusKey
    && document.querySelector(`[data-key="${CSS.escape(focusKey)}"]:is(button, summary)`);
  if (again) again.focus();
}

function showStatus(text, error) {
  $("status").className = error ? "err" : "";
  $("status").textContent = text;
}
async function refresh() {
  if (!paused) try {
    const res = await fetch("/_parlel/inspect", { cache: "no-store" });
    if (!res.ok) throw new Error("HTTP " + res.status);
    const text = await res.text();
    if (text !== lastText && getSelection().isCollapsed) {   // not while the user selects text
      data = JSON.parse(text);
      lastText = text;
      render();
    }
    showStatus("Updated " + new Date().toLocaleTimeString());
  } catch (e) {
    showStatus("Cannot reach server (" + e.message + "), retrying…", true);
  }
  setTimeout(refresh, 2000);
}
$("filter").addEventListener("input", render);
$("pause").addEventListener("click", (e) => {
  paused = !paused;
  e.target.textContent = paused ? "Resume" : "Pause";
  e.target.setAttribute("aria-pressed", String(paused));
  $("status").textContent = paused ? "Paused" : "Resuming…";
});
refresh();
</script>
</body>
</html>
"""


def parlel_page(store, params, body):
    """GET /_parlel/: the inspector page, for a person to see what the fake saw."""
    return Reply(200, {"Cache-Control": "no-store"}, INSPECTOR_PAGE.encode(),
                 "text/html; charset=utf-8")


def parlel_inspect(store, params, body):
    """GET /_parlel/inspect: what the inspector page shows, in one document: each function with its
    versions, aliases, URLs and configuration, and the recent invocations."""
    functions, records = [], []
    for each in store.stores.each():
        with each.lock:
            functions += inspected_functions(each)
            records += list(each.invocations)[-200:]
    invocations = [e.view() for e in sorted(records, key=lambda e: e.started)[-200:]]
    return {"functions": functions, "invocations": invocations,
            "endpoint": store.endpoint_url,
            "region": store.region, "account": store.account, "version": __version__}


def inspected_functions(store):
    """The functions of one Store as the inspector shows them. Caller holds store.lock."""
    functions = []
    for name in store.function_names:
        function = store.functions[name]
        functions.append({
            "FunctionName": name, "Account": store.account, "Region": store.region,
            "Configuration": dict(function.versions["$LATEST"]),
            "Versions": sorted((v for v in function.versions if v != "$LATEST"), key=int),
            "Aliases": [dict(function.aliases[a]) for a in sorted(function.aliases)],
            "Urls": [dict(url_reply(c, "InvokeMode"), Qualifier=q or None)
                     for q, c in sorted(function.url_configs.items())],
            "Tags": dict(store.tags.get(function_arn(store, name)) or {}),
            "ReservedConcurrency": function.reserved_concurrency})
    return functions


def parlel_destinations(store, params, body):
    """GET /_parlel/destinations: what went to SQS, SNS, EventBridge or S3 destinations and
    dead-letter queues (Lambda destinations are invoked instead)."""
    deliveries = []
    for each in store.stores.each():
        with each.lock:
            deliveries += [dict(d) for d in each.deliveries]
    return {"deliveries": deliveries}


def parlel_code(store, params, body):
    """GET /_parlel/code/<sha>: the package bytes that GetFunction's Code.Location points at."""
    package = None
    for each in store.stores.each():
        with each.lock:
            package = package or each.packages.get(params["Sha"])
    if package is None:
        raise not_found("No package with that CodeSha256 is stored")
    return Reply(200, {}, package.data, "application/zip" if package.is_zip else "text/plain")


# ----------------------------------------------------------------------------------------------
# 11. Route table
# ----------------------------------------------------------------------------------------------
# One row per operation, the URI copied from the API model. A label matches one path segment and
# is URL-decoded; `?name=value` after a URI is a query argument the request must carry.

ROUTES = [
    # method   URI (as in the API model)
    #          handler, success
    ("POST",   "/2015-03-31/functions",
               create_function, 201),
    ("GET",    "/2015-03-31/functions",
               list_functions, 200),
    ("GET",    "/2015-03-31/functions/{FunctionName}",
               get_function, 200),
    ("DELETE", "/2015-03-31/functions/{FunctionName}",
               delete_function, 204),
    ("GET",    "/2015-03-31/functions/{FunctionName}/configuration",
               get_function_configuration, 200),
    ("PUT",    "/2015-03-31/functions/{FunctionName}/configuration",
               update_function_configuration, 200),
    ("PUT",    "/2015-03-31/functions/{FunctionName}/code",
               update_function_code, 200),
    ("POST",   "/2015-03-31/functions/{FunctionName}/invocations",
               invoke, 200),
    ("POST",   "/2014-11-13/functions/{FunctionName}/invoke-async",
               invoke_async, 202),
    ("POST",   "/2021-11-15/functions/{FunctionName}/response-streaming-invocations",
               invoke_with_response_stream, 200),
    # Versions and aliases
    ("POST",   "/2015-03-31/functions/{FunctionName}/versions",
               publish_version, 201),
    ("GET",    "/2015-03-31/functions/{FunctionName}/versions",
               list_versions_by_function, 200),
    ("POST",   "/2015-03-31/functions/{FunctionName}/aliases",
               create_alias, 201),
    ("GET",    "/2015-03-31/functions/{FunctionName}/aliases",
               list_aliases, 200),
    ("GET",    "/2015-03-31/functions/{FunctionName}/aliases/{Name}",
               get_alias, 200),
    ("PUT",    "/2015-03-31/functions/{FunctionName}/aliases/{Name}",
               update_alias, 200),
    ("DELETE", "/2015-03-31/functions/{FunctionName}/aliases/{Name}",
               delete_alias, 204),
    # Permissions
    ("POST",   "/2015-03-31/functions/{FunctionName}/policy",
               add_permission, 201),
    ("GET",    "/2015-03-31/functions/{FunctionName}/policy",
               get_policy, 200),
    ("DELETE", "/2015-03-31/functions/{FunctionName}/policy/{StatementId}",
               remove_permission, 204),
    ("PUT",    "/2026-07-09/resource-policy/{ResourceArn}",
               put_resource_policy, 200),
    ("GET",    "/2026-07-09/resource-policy/{ResourceArn}",
               get_resource_policy, 200),
    ("DELETE", "/2026-07-09/resource-policy/{ResourceArn}",
               delete_resource_policy, 204),
    # Concurrency
    ("PUT",    "/2017-10-31/functions/{FunctionName}/concurrency",
               put_function_concurrency, 200),
    ("GET",    "/2019-09-30/functions/{FunctionName}/concurrency",
               get_function_concurrency, 200),
    ("DELETE", "/2017-10-31/functions/{FunctionName}/concurrency",
               delete_function_concurrency, 204),
    ("PUT",    "/2019-09-30/functions/{FunctionName}/provisioned-concurrency",
               put_provisioned_concurrency_config, 202),
    ("GET",    "/2019-09-30/functions/{FunctionName}/provisioned-concurrency?List=ALL",
               list_provisioned_concurrency_configs, 200),
    ("GET",    "/2019-09-30/functions/{FunctionName}/provisioned-concurrency",
               get_provisioned_concurrency_config, 200),
    ("DELETE", "/2019-09-30/functions/{FunctionName}/provisioned-concurrency",
               delete_provisioned_concurrency_config, 204),
    # Function URLs
    ("POST",   "/2021-10-31/functions/{FunctionName}/url",
               create_function_url_config, 201),
    ("GET",    "/2021-10-31/functions/{FunctionName}/url",
               get_function_url_config, 200),
    ("PUT",    "/2021-10-31/functions/{FunctionName}/url",
               update_function_url_config, 200),
    ("DELETE", "/2021-10-31/functions/{FunctionName}/url",
               delete_function_url_config, 204),
    ("GET",    "/2021-10-31/functions/{FunctionName}/urls",
               list_function_url_configs, 200),
    # Asynchronous invocation configuration
    ("PUT",    "/2019-09-25/functions/{FunctionName}/event-invoke-config",
               put_function_event_invoke_config, 200),
    ("POST",   "/2019-09-25/functions/{FunctionName}/event-invoke-config",
               update_function_event_invoke_config, 200),
    ("GET",    "/2019-09-25/functions/{FunctionName}/event-invoke-config",
               get_function_event_invoke_config, 200),
    ("DELETE", "/2019-09-25/functions/{FunctionName}/event-invoke-config",
               delete_function_event_invoke_config, 204),
    ("GET",    "/2019-09-25/functions/{FunctionName}/event-invoke-config/list",
               list_function_event_invoke_configs, 200),
    # Event source mappings
    ("POST",   "/2015-03-31/event-source-mappings",
               create_event_source_mapping, 202),
    ("GET",    "/2015-03-31/event-source-mappings",
               list_event_source_mappings, 200),
    ("GET",    "/2015-03-31/event-source-mappings/{UUID}",
               get_event_source_mapping, 200),
    ("PUT",    "/2015-03-31/event-source-mappings/{UUID}",
               update_event_source_mapping, 202),
    ("DELETE", "/2015-03-31/event-source-mappings/{UUID}",
               delete_event_source_mapping, 202),
    # Layers
    ("POST",   "/2018-10-31/layers/{LayerName}/versions",
               publish_layer_version, 201),
    ("GET",    "/2018-10-31/layers/{LayerName}/versions",
               list_layer_versions, 200),
    ("GET",    "/2018-10-31/layers/{LayerName}/versions/{VersionNumber}",
               get_layer_version, 200),
    ("DELETE", "/2018-10-31/layers/{LayerName}/versions/{VersionNumber}",
               delete_layer_version, 204),
    ("GET",    "/2018-10-31/layers?find=LayerVersion",
               get_layer_version_by_arn, 200),
    ("GET",    "/2018-10-31/layers",
               list_layers, 200),
    ("POST",   "/2018-10-31/layers/{LayerName}/versions/{VersionNumber}/policy",
               add_layer_version_permission, 201),
    ("GET",    "/2018-10-31/layers/{LayerName}/versions/{VersionNumber}/policy",
               get_layer_version_policy, 200),
    ("DELETE", "/2018-10-31/layers/{LayerName}/versions/{VersionNumber}/policy/{StatementId}",
               remove_layer_version_permission, 204),
    # Tags
    ("POST",   "/2017-03-31/tags/{Resource}",
               tag_resource, 204),
    ("DELETE", "/2017-03-31/tags/{Resource}",
               untag_resource, 204),
    ("GET",    "/2017-03-31/tags/{Resource}",
               list_tags, 200),
    # Code signing
    ("POST",   "/2020-04-22/code-signing-configs",
               create_code_signing_config, 201),
    ("GET",    "/2020-04-22/code-signing-configs",
               list_code_signing_configs, 200),
    ("GET",    "/2020-04-22/code-signing-configs/{CodeSigningConfigArn}",
               get_code_signing_config, 200),
    ("PUT",    "/2020-04-22/code-signing-configs/{CodeSigningConfigArn}",
               update_code_signing_config, 200),
    ("DELETE", "/2020-04-22/code-signing-configs/{CodeSigningConfigArn}",
               delete_code_signing_config, 204),
    ("GET",    "/2020-04-22/code-signing-configs/{CodeSigningConfigArn}/functions",
               list_functions_by_code_signing_config, 200),
    ("PUT",    "/2020-06-30/functions/{FunctionName}/code-signing-config",
               put_function_code_signing_config, 200),
    ("GET",    "/2020-06-30/functions/{FunctionName}/code-signing-config",
               get_function_code_signing_config, 200),
    ("DELETE", "/2020-06-30/functions/{FunctionName}/code-signing-config",
               delete_function_code_signing_config, 204),
    # Recursion and runtime management
    ("GET",    "/2024-08-31/functions/{FunctionName}/recursion-config",
               get_function_recursion_config, 200),
    ("PUT",    "/2024-08-31/functions/{FunctionName}/recursion-config",
               put_function_recursion_config, 200),
    ("GET",    "/2021-07-20/functions/{FunctionName}/runtime-management-config",
               get_runtime_management_config, 200),
    ("PUT",    "/2021-07-20/functions/{FunctionName}/runtime-management-config",
               put_runtime_management_config, 200),
    # Capacity providers and scaling
    ("POST",   "/2025-11-30/capacity-providers",
               create_capacity_provider, 202),
    ("GET",    "/2025-11-30/capacity-providers",
               list_capacity_providers, 200),
    ("GET",    "/2025-11-30/capacity-providers/{CapacityProviderName}",
               get_capacity_provider, 200),
    ("PUT",    "/2025-11-30/capacity-providers/{CapacityProviderName}",
               update_capacity_provider, 202),
    ("DELETE", "/2025-11-30/capacity-providers/{CapacityProviderName}",
               delete_capacity_provider, 202),
    ("GET",    "/2025-11-30/capacity-providers/{CapacityProviderName}/function-versions",
               list_function_versions_by_capacity_provider, 200),
    ("PUT",    "/2025-11-30/functions/{FunctionName}/function-scaling-config",
               put_function_scaling_config, 202),
    ("GET",    "/2025-11-30/functions/{FunctionName}/function-scaling-config",
               get_function_scaling_config, 200),
    # Durable executions
    ("GET",    "/2025-12-01/functions/{FunctionName}/durable-executions",
               list_durable_executions_by_function, 200),
    ("GET",    "/2025-12-01/durable-executions/{DurableExecutionArn}",
               get_durable_execution, 200),
    ("DELETE", "/2025-12-01/durable-executions/{DurableExecutionArn}",
               delete_durable_execution, 202),
    ("GET",    "/2025-12-01/durable-executions/{DurableExecutionArn}/history",
               get_durable_execution_history, 200),
    ("GET",    "/2025-12-01/durable-executions/{DurableExecutionArn}/state",
               get_durable_execution_state, 200),
    ("POST",   "/2025-12-01/durable-executions/{DurableExecutionArn}/checkpoint",
               checkpoint_durable_execution, 200),
    ("POST",   "/2025-12-01/durable-executions/{DurableExecutionArn}/stop",
               stop_durable_execution, 200),
    ("POST",   "/2025-12-01/durable-executions/{DurableExecutionArn}/pause",
               pause_durable_execution, 202),
    ("POST",   "/2025-12-01/durable-executions/{DurableExecutionArn}/resume",
               resume_durable_execution, 202),
    ("POST",   "/2025-12-01/durable-execution-callbacks/{CallbackId}/succeed",
               send_durable_execution_callback_success, 200),
    ("POST",   "/2025-12-01/durable-execution-callbacks/{CallbackId}/fail",
               send_durable_execution_callback_failure, 200),
    ("POST",   "/2025-12-01/durable-execution-callbacks/{CallbackId}/heartbeat",
               send_durable_execution_callback_heartbeat, 200),
    # Account
    ("GET",    "/2016-08-19/account-settings",
               get_account_settings, 200),
    # The fake's own paths.
    ("GET",    "/_parlel/health",
               parlel_health, 200),
    ("POST",   "/_parlel/reset",
               parlel_reset, 200),
    ("GET",    "/_parlel/code/{Sha}",
               parlel_code, 200),
    ("GET",    "/_parlel/logs",
               parlel_logs, 200),
    ("GET",    "/_parlel/logs/{FunctionName}",
               parlel_logs, 200),
    ("GET",    "/_parlel/destinations",
               parlel_destinations, 200),
    ("GET",    "/_parlel/debug",
               parlel_debug, 200),
    ("GET",    "/_parlel/inspect",
               parlel_inspect, 200),
    ("GET",    "/_parlel/",
               parlel_page, 200),
]

# Operations whose body is raw bytes (the payload), not JSON.
RAW_BODY_OPERATIONS = {invoke, invoke_async, invoke_with_response_stream,
                       send_durable_execution_callback_success}

# Header members, by the header that carries them (from the API model).
HEADER_MEMBERS = {
    "X-Amz-Invocation-Type": "InvocationType",
    "X-Amz-Log-Type": "LogType",
    "X-Amz-Client-Context": "ClientContext",
    "X-Amz-Durable-Execution-Name": "DurableExecutionName",
    "X-Amz-Tenant-Id": "TenantId",
    "X-Amzn-Trace-Id": "TraceHeader",      # not the model's: X-Ray's, which Invoke passes on
}


def compile_route(uri):
    """(regex, required query arguments) of a URI template: each {Label} becomes a named group
    matching one path segment, as bottle.py compiles its wildcards. The regex is matched whole
    and compiled on first use (re keeps it), since compiling all of them would cost start-up."""
    path, _, query = uri.partition("?")
    path = "/" + path.strip("/")            # requests are matched with no trailing slash
    pattern = re.sub(r"\\{(\w+)\\}", r"(?P<\1>[^/]+)", re.escape(path))
    return pattern, dict(urllib.parse.parse_qsl(query))


# Rows indexed by (segment count, first segment, last segment): the last is None where it is a
# label. A request is tried against the rows of its own last segment, then against those ending
# in a label: one or two rows for most requests.
ROUTE_INDEX = {}
for _method, _uri, _handler, _status in ROUTES:
    _parts = _uri.partition("?")[0].strip("/").split("/")
    _last = None if _parts[-1].startswith("{") else _parts[-1]
    ROUTE_INDEX.setdefault((len(_parts), _parts[0], _last), []).append(
        (_method, *compile_route(_uri), _handler, _status))
# Rows that need a query argument are tried before the plain row of the same path.
for _rows in ROUTE_INDEX.values():
    _rows.sort(key=lambda row: not row[2])


def match_route(method, path, query):
    """(handler, success status, path params) for a request; raise when no route fits (404),
    or when routes fit the path but not the method (405)."""
    parts = path.strip("/").split("/")
    normalized = "/" + "/".join(parts)
    allowed = []
    for bucket in ((len(parts), parts[0], parts[-1]), (len(parts), parts[0], None)):
        for route_method, pattern, required, handler, status in ROUTE_INDEX.get(bucket, ()):
            match = re.fullmatch(pattern, normalized)
            if match is None or required and any(query.get(k) != v for k, v in required.items()):
                continue
            if route_method != method:
                allowed.append(route_method)
                continue
            return handler, status, {k: urllib.parse.unquote(v)
                                     for k, v in match.groupdict().items()}
    if allowed:
        raise LambdaError("UnknownOperationException", 405,
                          f"No operation {method} {path}; this path takes "
                          f"{', '.join(sorted(set(allowed)))}")
    raise LambdaError("UnknownOperationException", 404, f"No operation matches {method} {path}")


# ----------------------------------------------------------------------------------------------
# 12. HTTP handler
# ----------------------------------------------------------------------------------------------
# The one place where requests become operation calls and exceptions become AWS error replies.

class Headers:
    """Request headers, looked up without regard to case (a lean stand-in for email.message)."""

    def __init__(self):
        self.pairs = []
        self.index = {}

    def add(self, name, value):
        self.pairs.append((name, value))
        self.index.setdefault(name.lower(), value)     # get() answers the first of a name

    def get(self, name, default=None):
        return self.index.get(name.lower(), default)

    def get_all(self, name, default=None):
        lowered = name.lower()
        return [value for key, value in self.pairs if key.lower() == lowered] or default

    def __contains__(self, name):
        return name.lower() in self.index

    def __getitem__(self, name):
        return self.get(name)

    def items(self):
        return list(self.pairs)


# Where a request comes from. The fake runs the code it is sent, and the developer's browser can reach
# it: any web page may send it a "simple" cross-origin request (no CORS preflight), and a page whose
# name is rebound to 127.0.0.1 (DNS rebinding) can even read the answers. So a request is answered
# only when its Host names this machine (a loopback name, an IP address, or a name allowed with
# --allow-host), and, for the API and /_parlel/ paths, only when no page sent it, the fake's own page
# did, or its origin is allowed with --allow-origin. Function URLs keep their own CORS configuration,
# as on AWS: they run code the user deployed, not code a page sends.

CROSS_SITE = ("cross-site", "same-site")        # Sec-Fetch-Site values a browser sets for other sites
BROWSER_EXPOSED_HEADERS = ("x-amzn-RequestId, x-amzn-ErrorType, x-amz-function-error, "
                           "x-amz-log-result, x-amz-executed-version, x-amzn-Remapped-Content-Length, "
                           "Content-Type, Content-Length")
BROWSER_ALLOWED_METHODS = "GET, HEAD, POST, PUT, DELETE, PATCH"
CORS_MAX_AGE_SECONDS = 600
IP_HOST = re.compile(r"\d{1,3}(\.\d{1,3}){3}|\[[0-9a-f:.]+\]")


class RequestSources:
    """The Host names and browser origins a server answers (LambdaServer's allow_hosts and
    allow_origins). Each refusal method returns None, or the reason and the option that would allow
    the request."""

    def __init__(self, allow_hosts=(), allow_origins=(), bound_host="127.0.0.1"):
        self.hosts = {name.strip().lower().rstrip(".") for name in allow_hosts if name.strip()}
        if bound_host not in ("", "0.0.0.0", "::"):
            self.hosts.add(bound_host.lower())
        self.origins = {origin.strip().lower().rstrip("/") for origin in allow_origins
                        if origin.strip()}
        self.any_origin = "*" in self.origins
        self.checked_hosts = set()      # Host header values already allowed (most requests repeat one)

    def host_refusal(self, host):
        """Why a Host header is refused, or None. An IP address cannot be rebound, and `localhost`
        and every name under `.localhost` resolve to this machine; any other name must be allowed."""
        if host in self.checked_hosts:
            return None
        name = host_name(host)
        if not (name == "localhost" or name.endswith(".localhost") or IP_HOST.fullmatch(name)
                or name in self.hosts):
            return (f"its Host header names {name!r}, neither a loopback name nor an allowed one "
                    "(a DNS-rebinding page's requests look like this)",
                    f"--allow-host {name} (or LAMBDA_FAKE_ALLOW_HOSTS)")
        if len(self.checked_hosts) < 64:
            self.checked_hosts.add(host)
        return None

    def allows_origin(self, origin):
        return self.any_origin or origin.lower() in self.origins

    def origin_refusal(self, headers, host):
        """Why a browser-sent request to the API or /_parlel/ is refused, or None. Requests with no
        Origin, Referer or Sec-Fetch-Site (SDKs, the CLI, curl) and the fake's own pages pass."""
        origin = headers.get("Origin")
        if origin is None:
            referer = headers.get("Referer")
            if referer is None:
                site = headers.get("Sec-Fetch-Site")
                if site in CROSS_SITE:
                    return (f"the browser marks it {site} (Sec-Fetch-Site)",
                            "--allow-origin ORIGIN (or LAMBDA_FAKE_ALLOW_ORIGINS)")
                return None
            parts = urllib.parse.urlsplit(referer)
            origin = f"{parts.scheme}://{parts.netloc}"
        if self.allows_origin(origin):
            return None
        if (origin.lower() == f"http://{host.lower()}"
                and headers.get("Sec-Fetch-Site") not in CROSS_SITE):
            return None                 # the fake's own page (the inspector) calling home
        return (f"it comes from a web page at {origin}",
                f"--allow-origin {origin} (or LAMBDA_FAKE_ALLOW_ORIGINS)")

    def cors_headers(self, origin, preflight_headers=None):
        """What a browser app at an allowed origin needs to read the answer (and, for a preflight,
        to send the request: the headers it asked for, and private-network access)."""
        headers = {"Access-Control-Allow-Origin": origin, "Vary": "Origin",
                   "Access-Control-Expose-Headers": BROWSER_EXPOSED_HEADERS}
        if preflight_headers is not None:
            headers.update({"Access-Control-Allow-Methods": BROWSER_ALLOWED_METHODS,
                            "Access-Control-Max-Age": str(CORS_MAX_AGE_SECONDS)})
            asked = preflight_headers.get("Access-Control-Request-Headers")
            if asked:
                headers["Access-Control-Allow-Headers"] = asked
            if preflight_headers.get("Access-Control-Request-Private-Network") == "true":
                headers["Access-Control-Allow-Private-Network"] = "true"
        return headers


MAX_HEADER_LINES = 200
MAX_LINE_BYTES = 65536


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "lambda_fake/" + __version__
    disable_nagle_algorithm = True      # without it every response waits ~40 ms for a delayed ACK

    def handle_one_request(self):
        """Read one request line and its headers, then dispatch. The stock parser builds an
        email.message for the headers, a large share of a small request's cost; this does not."""
        try:
            line = self.rfile.readline(MAX_LINE_BYTES + 1)
            if not line:
                self.close_connection = True
                return
            if len(line) > MAX_LINE_BYTES:
                self.requestline, self.command, self.request_version = "", "", "HTTP/1.1"
                self.send_error(414, "Request line too long")
                return
            self.raw_requestline = line
            parts = line.decode("latin-1").split()
            if len(parts) != 3 or not parts[2].startswith("HTTP/1."):
                if parts:
                    self.requestline = " ".join(parts)
                self.command, self.request_version = "", "HTTP/1.1"
                self.send_error(400, "Bad request line")
                return
            self.command, self.path, self.request_version = parts
            self.requestline = line.decode("latin-1").rstrip("\r\n")
            headers = Headers()
            for _ in range(MAX_HEADER_LINES):
                header = self.rfile.readline(MAX_LINE_BYTES + 1)
                if header in (b"\r\n", b"\n", b""):
                    break
                name, colon, value = header.decode("latin-1").partition(":")
                if not colon:
                    self.send_error(400, "Malformed header line")
                    return
                headers.add(name.strip(), value.strip())
            else:
                self.send_error(431, "Too many headers")
                return
            self.headers = headers
            connection = (headers.get("Connection") or "").lower()
            self.close_connection = connection == "close" or (
                self.request_version == "HTTP/1.0" and connection != "keep-alive")
            handler = getattr(self, "do_" + self.command, None)
            if handler is None:
                self.send_error(501, f"Unsupported method ({self.command!r})")
                return
            handler()
            self.wfile.flush()
        except TimeoutError:
            self.close_connection = True

    def do_GET(self):
        self.dispatch()

    def do_POST(self):
        self.dispatch()

    def do_PUT(self):
        self.dispatch()

    def do_DELETE(self):
        self.dispatch()

    def do_PATCH(self):
        self.dispatch()

    def do_HEAD(self):
        self.dispatch()

    def do_OPTIONS(self):
        self.dispatch()

    def send_error(self, code, message=None, explain=None):
        """http.server's own errors (bad request line, unknown method) as JSON, never HTML."""
        self.close_connection = True
        text = message or http.server.BaseHTTPRequestHandler.responses.get(code, ("Error",))[0]
        body = json.dumps({"__type": ("InvalidRequestContentException" if code < 500
                                      else "ServiceException"),
                           "message": f"{text} ({self.command} {self.path})"
                           if getattr(self, "command", None) else text}).encode()
        self.send_response_only(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Connection", "close")
        self.end_headers()
        if getattr(self, "command", None) != "HEAD":
            self.wfile.write(body)

    def setup(self):
        super().setup()
        self.server.connections.add(self.connection)

    def finish(self):
        self.server.connections.discard(self.connection)
        super().finish()

    def dispatch(self):
        started = time.perf_counter()
        store = self.server.store
        cors = None
        try:
            path, _, query_text = self.path.partition("?")
            host = self.headers.get("Host", "")
            url_id = function_url_id(host, path)
            cors = self.check_source(host, path, url_id)
            if url_id:
                result = self.function_url_request(url_id, path, query_text)
                return self.answer(result, started)
            if cors is not None and self.command == "OPTIONS" and (
                    "Access-Control-Request-Method" in self.headers):
                result = Reply(204, self.server.sources.cors_headers(cors, self.headers), b"")
                return self.answer(result, started)
            store = self.server.stores.for_request(self.headers, query_text)
            query = {}
            for key, value in (urllib.parse.parse_qsl(query_text, keep_blank_values=True)
                               if query_text else ()):
                query[key] = [*query[key], value] if isinstance(query.get(key), list) else (
                    [query[key], value] if key in query else value)
            try:
                handler, status, params = match_route(self.command, path, query)
            except LambdaError:
                self.close_connection = True        # the body stays unread
                raise
            body = self.read_body(handler)
            if store.credentials is not None and not path.startswith("/_parlel/"):
                check_signature(store.credentials, self.command, self.path, self.headers, body)
            for header, member in HEADER_MEMBERS.items():
                value = self.headers.get(header)
                if value is not None:
                    params[member] = value
            for key, value in query.items():
                params.setdefault(key, value)
            store = self.server.stores.route(store, params, handler)
            if handler not in RAW_BODY_OPERATIONS:
                body = parse_json_body(body)
            result = handler(store, params, body)
            if not isinstance(result, Reply):
                data = (json.dumps(result, separators=(",", ":")).encode()
                        if result is not None else b"")
                result = Reply(status, {}, data)
        except LambdaError as error:
            result = error_reply(error, store.strict_aws)
        except Exception:
            import traceback            # here only, as socketserver does: it costs start-up time
            traceback.print_exc(file=sys.stderr)
            result = error_reply(LambdaError("ServiceException", 500,
                                             "An internal error occurred in lambda_fake"))
        if "x-amzn-RequestId" not in result.headers:
            result.headers["x-amzn-RequestId"] = new_uuid()
        if cors is not None:
            result.headers.update(self.server.sources.cors_headers(cors))
        self.answer(result, started)

    def check_source(self, host, path, url_id):
        """Refuse a request from where no request should come (see RequestSources); return the
        origin of an allowed browser app, whose reply then carries CORS headers, or None."""
        sources = self.server.sources
        refusal = sources.host_refusal(host) if host else None
        if refusal is None and not url_id:
            refusal = sources.origin_refusal(self.headers, host)
        if refusal is not None:
            reason, option = refusal
            self.close_connection = True        # the body stays unread
            say(self.server.store, "warning", f"refused {self.command} {path}: {reason}; to allow "
                f"it, start lambda_fake with {option}")
            raise LambdaError("AccessDeniedException", 403,
                              f"lambda_fake refused this request: {reason}. It runs the code it "
                              f"is sent, so it answers only local clients; start it with {option} "
                              "to allow this one.")
        origin = self.headers.get("Origin")
        if origin is not None and not url_id and sources.allows_origin(origin):
            return origin
        return None

    def answer(self, result, started):
        if isinstance(result, StreamReply):
            self.write_stream(result)
        else:
            self.write_reply(result)
        self.log_request_line(started, result)

    def log_request_line(self, started, result):
        if self.server.store.log_level in ("debug", "info"):
            elapsed = (time.perf_counter() - started) * 1000
            sys.stderr.write(f"{self.command} {self.path} {result.status} {elapsed:.1f}ms\n")

    def function_url_request(self, url_id, path, query):
        """A request to a function URL: by host name, or by /_parlel/url/<url-id>/<path>."""
        if path.startswith("/_parlel/url/"):
            path = "/" + path.split("/", 4)[4] if path.count("/") >= 4 else "/"
        try:
            body = self.read_body(serve_function_url)
        except LambdaError as error:
            return Reply(error.status, {}, json.dumps({"Message": error.message}).encode())
        request = {"method": self.command, "path": urllib.parse.unquote(path), "query": query,
                   "headers": list(self.headers.items()), "body": body,
                   "source_ip": self.client_address[0], "port": self.server.server_address[1]}
        return serve_function_url(self.server.stores.owner_of_url(url_id), url_id, request)

    def read_body(self, handler):
        """The request body, read whole by Content-Length; a body over the limit is never read."""
        length = self.headers.get("Content-Length")
        if length is None:
            if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
                return self.read_chunked(handler)
            return b""
        if not length.isdigit():
            self.close_connection = True
            raise invalid_content("Content-Length must be a non-negative integer")
        if int(length) > MAX_REQUEST_BYTES:
            self.close_connection = True
            raise request_too_large(handler)
        return self.rfile.read(int(length))

    def read_chunked(self, handler):
        chunks, total = [], 0
        while True:
            size_line = self.rfile.readline(1024).split(b";")[0].strip()
            try:
                size = int(size_line, 16)
            except ValueError:
                self.close_connection = True
                raise invalid_content("Malformed chunked request body") from None
            if size == 0:
                while self.rfile.readline(1024) not in (b"\r\n", b"\n", b""):
                    pass
                return b"".join(chunks)
            total += size
            if total > MAX_REQUEST_BYTES:
                self.close_connection = True
                raise request_too_large(handler)
            chunks.append(self.rfile.read(size))
            self.rfile.readline(1024)

    def response_head(self, reply, framing):
        """The status line and headers of a reply, `framing` (its length or chunked) included."""
        head = [f"HTTP/1.1 {reply.status} {self.responses.get(reply.status, ('',))[0]}",
                f"Date: {http_date()}", f"Content-Type: {reply.content_type}", framing]
        head.extend(f"{name}: {value}" for name, value in reply.headers.items())
        head.extend(f"Set-Cookie: {cookie}" for cookie in reply.cookies)
        if self.close_connection:
            head.append("Connection: close")
        return ("\r\n".join(head) + "\r\n\r\n").encode("latin-1", "replace")

    def write_reply(self, reply):
        head = self.response_head(reply, f"Content-Length: {len(reply.body)}")
        self.wfile.write(head + reply.body if self.command != "HEAD" else head)

    def write_stream(self, reply):
        """Send a StreamReply with chunked transfer encoding, each chunk as it is produced. An
        error before the first chunk is answered as an ordinary error reply."""
        started = False

        def emit(data):
            nonlocal started
            if not started:
                started = True
                self.wfile.write(self.response_head(reply, "Transfer-Encoding: chunked"))
            if data:
                self.wfile.write(f"{len(data):x}\r\n".encode() + data + b"\r\n")

        try:
            reply.produce(emit)
            emit(b"")
            self.wfile.write(b"0\r\n\r\n")
        except LambdaError as error:
            if started:
                self.close_connection = True
                return
            failed = error_reply(error, self.server.store.strict_aws)
            if "x-amzn-RequestId" in reply.headers:
                failed.headers["x-amzn-RequestId"] = reply.headers["x-amzn-RequestId"]
            reply.status = failed.status        # for the request's log line
            self.write_reply(failed)
        except OSError:
            self.close_connection = True        # the client went away mid-stream

    def log_message(self, format, *args):
        """Silent: dispatch writes its own one line per request unless quiet."""


# The errors of the API model whose text member is `message`; the others' is `Message`.
LOWERCASE_MESSAGE_ERRORS = frozenset((
    "AliasLimitExceededException", "CapacityProviderLimitExceededException",
    "CodeArtifactUserDeletedException", "CodeArtifactUserFailedException",
    "CodeArtifactUserPendingException", "CodeStorageExceededException",
    "FunctionVersionsPerCapacityProviderLimitExceededException", "InvalidParameterValueException",
    "InvalidRequestContentException", "ModeNotSupportedException", "PolicyLengthExceededException",
    "PreconditionFailedException", "ProvisionedConcurrencyConfigNotFoundException",
    "RequestTooLargeException", "ResourceConflictException", "ResourceNotReadyException",
    "RuntimeAliasDeletedException", "RuntimeVersionDeletedException",
    "SerializedRequestEntityTooLargeException", "TooManyRequestsException",
    "UnsupportedMediaTypeException"))


def error_reply(error, strict=False):
    """A LambdaError as AWS answers it: x-amzn-errortype, and {"__type", "message"} (with any
    extra members, such as a throttle's Reason); strictly (--strict-aws), the members of the
    error's shape in the API model instead: `Type` (User, or Service for a ServiceException)
    and its text as `Message` or `message`, as AWS sends them."""
    if strict:
        text = "message" if error.code in LOWERCASE_MESSAGE_ERRORS else "Message"
        body = {"__type": error.code,
                "Type": "Service" if error.code == "ServiceException" else "User",
                text: error.message, **error.extra}
        if not error.typed:
            del body["Type"]
    else:
        body = {"__type": error.code, "message": error.message, **error.extra}
    data = json.dumps(body).encode()
    return Reply(error.status, dict(error.headers, **{"x-amzn-errortype": error.code}), data)


FUNCTION_URL_HOST = re.compile(r"([a-z0-9]{32})\.lambda-url\.[a-z0-9-]+\.localhost(:\d+)?")


def function_url_id(host, path):
    """The url id a request is for: from a `<id>.lambda-url.<region>.localhost` Host, or from the
    path form /_parlel/url/<id>/... for clients that cannot resolve that name. None otherwise."""
    if ".lambda-url." in host:
        match = FUNCTION_URL_HOST.fullmatch(host.lower())
        return match[1] if match else None
    if path.startswith("/_parlel/url/"):
        return path.split("/")[3] or None
    return None


SIGNATURE_HEADER = re.compile(
    r"AWS4-HMAC-SHA256 Credential=(?P<key>[^/]+)/(?P<date>\d{8})/(?P<region>[^/]+)/"
    r"(?P<service>[^/]+)/aws4_request,\s*SignedHeaders=(?P<signed>[^,]+)"
    r",\s*Signature=(?P<signature>[0-9a-f]{64})")
MAX_CLOCK_SKEW_SECONDS = 300            # AWS refuses signatures more than 5 minutes off


def check_signature(credentials, method, target, headers, body):
    """Verify an AWS Signature Version 4 as the service does; raise AWS's error when it fails.
    `credentials` maps access key ids to secret keys; `target` is the request line's path."""
    authorization = headers.get("Authorization")
    if not authorization:
        raise LambdaError("MissingAuthenticationTokenException", 403,
                          "Missing Authentication Token")
    match = SIGNATURE_HEADER.fullmatch(authorization.strip())
    if match is None:
        raise LambdaError("IncompleteSignatureException", 403,
                          "Authorization header requires 'Credential', 'Signature' and "
                          f"'SignedHeaders' parameters. Authorization={authorization}")
    secret = credentials.get(match["key"])
    if secret is None:
        raise LambdaError("UnrecognizedClientException", 403,
                          "The security token included in the request is invalid.")
    stamp = headers.get("X-Amz-Date", "")
    try:
        signed_at = datetime.datetime.strptime(stamp, "%Y%m%dT%H%M%SZ").replace(
            tzinfo=datetime.timezone.utc)
    except ValueError:
        raise LambdaError("IncompleteSignatureException", 403,
                          "Missing or malformed X-Amz-Date header") from None
    now = datetime.datetime.now(datetime.timezone.utc)
    if abs((now - signed_at).total_seconds()) > MAX_CLOCK_SKEW_SECONDS:
        shown = "%Y%m%dT%H%M%SZ"
        if signed_at < now:
            edge = now - datetime.timedelta(seconds=MAX_CLOCK_SKEW_SECONDS)
            message = (f"Signature expired: {stamp} is now earlier than {edge.strftime(shown)} "
                       f"({now.strftime(shown)} - 5 min.)")
        else:
            edge = now + datetime.timedelta(seconds=MAX_CLOCK_SKEW_SECONDS)
            message = (f"Signature not yet current: {stamp} is still later than "
                       f"{edge.strftime(shown)} ({now.strftime(shown)} + 5 min.)")
        raise LambdaError("InvalidSignatureException", 403, message)
    path, _, query = target.partition("?")
    pairs = sorted(pair.partition("=")[::2] for pair in query.split("&")) if query else []
    signed = match["signed"].split(";")
    canonical = "\n".join([
        method,
        urllib.parse.quote(normalized_path(path), safe="/~"),
        "&".join(f"{k}={v}" for k, v in pairs),
        "".join(f"{name}:{' '.join(','.join(headers.get_all(name) or []).split())}\n"
                for name in signed),
        match["signed"],
        headers.get("X-Amz-Content-SHA256") or hashlib.sha256(body).hexdigest()])
    scope = f"{match['date']}/{match['region']}/{match['service']}/aws4_request"
    expected = sigv4_signature(secret, scope, stamp, canonical)
    if not hmac.compare_digest(expected, match["signature"]):
        raise LambdaError("InvalidSignatureException", 403,
                          "The request signature we calculated does not match the signature you "
                          "provided. Check your AWS Secret Access Key and signing method. Consult "
                          "the service documentation for details.")


def sigv4_signature(secret, scope, stamp, canonical):
    """The Signature Version 4 of a canonical request; `scope` is
    date/region/service/aws4_request."""
    to_sign = (f"AWS4-HMAC-SHA256\n{stamp}\n{scope}\n"
               f"{hashlib.sha256(canonical.encode()).hexdigest()}")
    key = f"AWS4{secret}".encode()
    for part in scope.split("/"):
        key = hmac.new(key, part.encode(), hashlib.sha256).digest()
    return hmac.new(key, to_sign.encode(), hashlib.sha256).hexdigest()


def normalized_path(path):
    """A URL path without . and .. segments or repeated slashes, as SigV4 normalizes it."""
    parts = []
    for part in path.split("/"):
        if part in ("", "."):
            continue
        if part == "..":
            if parts:
                parts.pop()
            continue
        parts.append(part)
    return "/" + "/".join(parts) + ("/" if path.endswith("/") and parts else "")


def operation_name(handler):
    """The AWS name of an operation function: get_function_url_config -> GetFunctionUrlConfig."""
    return "".join(part.capitalize() for part in handler.__name__.split("_"))


def request_too_large(handler):
    return LambdaError("RequestEntityTooLargeException", 413,
                       f"Request must be smaller than {MAX_REQUEST_BYTES} bytes for the "
                       f"{operation_name(handler)} operation")


def parse_json_body(data):
    """A JSON request body as Python data; an empty body is an empty object. What is not JSON
    is refused with the message of the parser AWS uses (Jackson)."""
    if not data.strip():
        return {}
    try:
        return json.loads(data)
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        problem, line, column = JacksonError.find(data) or (
            (error.msg, error.lineno, error.colno) if isinstance(error, json.JSONDecodeError)
            else (f"Invalid UTF-8 start byte 0x{data[error.start]:02x}", 1, error.start + 1))
    except RecursionError:              # nested deeper than this interpreter's stack allows
        raise invalid_content(
            "Could not parse request body into json: Could not parse payload into json: Document "
            f"nesting depth exceeds the maximum allowed ({MAX_JSON_NESTING_DEPTH})") from None
    raise invalid_content(
        f"Could not parse request body into json: Could not parse payload into json: {problem}\n "
        f"at {JacksonError.SOURCE}; line: {line}, column: {column}]")


class JacksonError(Exception):
    """The first error in bytes that are not JSON, worded and placed as Jackson (the parser
    behind AWS's messages) words and places it: find(data) gives (problem, line, column), or
    None for what it does not know (then Python's own words are used)."""

    SOURCE = "[Source: REDACTED (`StreamReadFeature.INCLUDE_SOURCE_IN_LOCATION` disabled)"
    VALUES = "(JSON String, Number, Array, Object or token 'null', 'true' or 'false')"
    NUMBER = re.compile(rb"-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?")

    def __init__(self, problem, line, column):
        super().__init__(problem)
        self.found = (problem, line, column)

    @classmethod
    def find(cls, data):
        try:
            JsonChecker(data).value()
        except cls as error:
            return error.found
        except (IndexError, UnicodeDecodeError, RecursionError):
            return None
        return None                     # valid up to trailing content Jackson may not mind

    @staticmethod
    def describe(data, at):
        """Jackson's words for the character at `at`."""
        code = data[at]
        if code >= 0xC0:
            text = data[at:at + 4].decode("utf-8", "ignore")[:1]
            code = ord(text) if text else code
        if code < 32 or 127 <= code <= 159:
            return f"(CTRL-CHAR, code {code})"
        return f"'{chr(code)}' (code {code}" + (f" / 0x{code:x})" if code > 255 else ")")


class JsonChecker:
    """Walks bytes as Jackson parses them, to raise the JacksonError it would."""

    def __init__(self, data):
        self.data, self.at = data, 0

    def where(self, at):
        """Jackson's line and column of a position (a newline inside a string does not count)."""
        line_start = self.data.rfind(b"\n", 0, at) + 1
        return self.data.count(b"\n", 0, line_start) + 1, at - line_start + 1

    def fail(self, problem, at=None):
        raise JacksonError(problem, *self.where(self.at if at is None else at))

    def blank(self):
        while self.at < len(self.data) and self.data[self.at] in b" \t\r\n":
            self.at += 1

    def peek(self):
        return self.data[self.at:self.at + 1]

    def unexpected(self, expecting):
        self.fail(f"Unexpected character ({JacksonError.describe(self.data, self.at)}): "
                  + expecting)

    def value(self):
        self.blank()
        data, at = self.data, self.at
        byte = data[at]                 # IndexError at the end: the caller's words
        if byte in b"{[":
            return self.container(byte)
        if byte == ord('"'):
            return self.string()
        if byte == ord("-") or 48 <= byte <= 57:
            match = JacksonError.NUMBER.match(data, at)
            if not match:
                raise IndexError        # Jackson's number errors: Python's words
            self.at = match.end()
            if match[1] == b"0" and data[self.at:self.at + 1].isdigit():
                self.fail("Invalid numeric value: Leading zeroes not allowed", self.at + 1)
            return None
        if chr(byte).isalpha() or byte >= 0xC0:
            return self.token(at)
        self.unexpected(f"expected a valid value {JacksonError.VALUES}")

    def token(self, at):
        """A bare word: true, false or null, else Jackson's Unrecognized token."""
        data, end = self.data, at
        while end < len(data):
            byte = data[end]
            if byte < 0x80:
                if not (chr(byte).isalnum() or byte in b"_$"):
                    break
                end += 1
            elif 0xC0 <= byte < 0xF8:   # a character of two to four bytes
                end += 2 if byte < 0xE0 else 3 if byte < 0xF0 else 4
            else:
                self.fail(f"Invalid UTF-8 start byte 0x{byte:02x}", end + 1)
        word = data[at:end].decode("utf-8", "replace")
        if word not in ("true", "false", "null"):
            self.fail(f"Unrecognized token '{word}': was expecting {JacksonError.VALUES}", end)
        self.at = end

    def container(self, opener):
        start = self.at
        self.at += 1
        closer, other, name = (b"}", b"]", "Object") if opener == ord("{") else (b"]", b"}",
                                                                                  "Array")
        line, column = self.where(start)
        marker = f"{JacksonError.SOURCE}; line: {line}, column: {column}]"
        first = True
        while True:
            self.blank()
            if self.at >= len(self.data):
                self.fail(f"Unexpected end-of-input: expected close marker for {name} (start "
                          f"marker at {marker})")
            if first and self.peek() == closer:     # empty
                self.at += 1
                return None
            first = False
            if closer == b"}":
                if self.peek() != b'"':
                    self.unexpected("was expecting double-quote to start field name")
                self.string()
                self.blank()
                if self.peek() != b":":
                    self.unexpected("was expecting a colon to separate field name and value")
                self.at += 1
            self.value()
            self.blank()
            if self.peek() == closer:
                self.at += 1
                return None
            if self.peek() == other:
                self.fail(f"Unexpected close marker '{other.decode()}': expected "
                          f"'{closer.decode()}' (for {name} starting at {marker})", self.at + 1)
            if self.at >= len(self.data):
                self.fail(f"Unexpected end-of-input: expected close marker for {name} (start "
                          f"marker at {marker})")
            if self.peek() != b",":
                self.unexpected(f"was expecting comma to separate {name} entries")
            self.at += 1

    def string(self):
        self.at += 1
        while True:
            if self.at >= len(self.data):
                self.fail("Unexpected end-of-input: was expecting closing quote for a string "
                          "value")
            byte = self.data[self.at]
            if byte == ord('"'):
                self.at += 1
                return None
            if byte < 32:
                self.fail(f"Illegal unquoted character ({JacksonError.describe(self.data, self.at)}"
                          "): has to be escaped using backslash to be included in string value",
                          self.at)
            self.at += 2 if byte == ord("\\") else 1


# ----------------------------------------------------------------------------------------------
# 13. LambdaServer
# ----------------------------------------------------------------------------------------------

def names_of(value):
    """A list of names from a list, or from a comma-separated string (as options give them)."""
    return value.split(",") if isinstance(value, str) else list(value)


def switched_on(value):
    """Whether an environment variable's value turns a switch on: set, and not 0 or false."""
    return (value or "") not in ("", "0", "false")


HTTP_DATE = [0, ""]                     # the second, and its Date header


def http_date():
    """The Date header every AWS answer has, made once a second."""
    now = int(time.time())
    if HTTP_DATE[0] != now:
        import email.utils              # (not at start-up: the server starts faster)
        HTTP_DATE[:] = [now, email.utils.formatdate(now, usegmt=True)]
    return HTTP_DATE[1]


class FakeHTTPServer(http.server.ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False
    request_queue_size = 1024           # a burst of hundreds of connections waits, not refused
    allow_reuse_address = True


class LambdaServer:
    """A lambda_fake server in a background thread.

    Requests are answered when their Host names this machine or one of `allow_hosts`, and, from a
    web page, when its origin is one of `allow_origins` ("*" for any); both take a list or a
    comma-separated string.

    start()  binds and listens, then returns; `port` and `endpoint_url` are real from then on.
             With `prestart` (the default), each runtime's first environments then boot in the
             background, so that the first invoke does not wait for them; without it, a runtime's
             first function starts them.
    stop()   closes the socket and every open connection, and ends every handler process.
    reset()  forgets all functions and ends their workers; the server keeps serving.
    Also a context manager: `with LambdaServer(0) as server: ...`.
    """

    def __init__(self, port=DEFAULT_PORT, host="127.0.0.1", region=DEFAULT_REGION,
                 account=DEFAULT_ACCOUNT_ID, quiet=True, max_workers=16, idle_seconds=300,
                 async_retry_delay=DEFAULT_ASYNC_RETRY_DELAY_SECONDS, verify_signatures=None,
                 log_level=None, allow_hosts=(), allow_origins=(), prestart=True, node_sdk=None,
                 lambda_paths=True, debug=(), debug_break=False, account_id=None,
                 strict_aws=False, settle_seconds=DEFAULT_SETTLE_SECONDS, aws_endpoints=None):
        self.host = host
        self.prestart = prestart
        self.port = port
        self.sources = RequestSources(names_of(allow_hosts), names_of(allow_origins), host)
        self.store = Store(region, account_id or account)   # the server's own account and region
        self.stores = Stores(self.store)        # and every other one a request names
        self.store.strict_aws = strict_aws
        self.store.settle_seconds = settle_seconds
        self.store.aws_endpoints = other_endpoints(os.environ, aws_endpoints)
        self.store.aws_credentials = (os.environ.get("AWS_ACCESS_KEY_ID") or "test",
                                      os.environ.get("AWS_SECRET_ACCESS_KEY") or "test")
        if endpoint_of(self.store, "LOGS"):
            self.store.log_shipper = LogShipper()
        self.store.runner = Runner(max_workers, idle_seconds, node_sdk, lambda_paths)
        self.store.debug = frozenset(name.strip() for name in names_of(debug or ()) if name.strip())
        self.store.runner.house.debug_break = debug_break
        self.store.runner.say = lambda text: say(self.store, "warning", text)
        self.store.async_retry_delay = async_retry_delay
        if verify_signatures is not None:       # {access key id: secret}; off by default
            self.store.credentials = dict(verify_signatures)
        self.store.log_level = log_level or ("warning" if quiet else "info")
        self.httpd = None
        self.thread = None

    @property
    def endpoint_url(self):
        host = "127.0.0.1" if self.host in ("0.0.0.0", "") else self.host
        host = f"[{host}]" if ":" in host else host
        return f"http://{host}:{self.port}"

    def start(self):
        self.httpd = FakeHTTPServer((self.host, self.port), Handler)
        self.httpd.store = self.store
        self.httpd.stores = self.stores
        self.httpd.sources = self.sources
        self.httpd.connections = set()
        self.port = self.httpd.server_address[1]
        self.store.endpoint_url = self.endpoint_url
        self.thread = threading.Thread(target=self.httpd.serve_forever,
                                       kwargs={"poll_interval": 0.1},
                                       name=f"lambda_fake:{self.port}", daemon=True)
        self.thread.start()
        if self.prestart:
            for runtime in ("nodejs20.x", "python3.12"):
                self.store.runner.prewarm(runtime, DEFAULT_MEMORY_MB, count=1)
        return self

    def stop(self):
        if self.httpd is not None:
            self.httpd.shutdown()
            self.httpd.server_close()
            for connection in list(self.httpd.connections):
                try:
                    connection.shutdown(2)
                except OSError:
                    pass
            self.httpd = None
        for store in self.stores.each():
            store.generation += 1
        if self.store.log_shipper is not None:
            self.store.log_shipper.stop()
        self.store.runner.stop()

    def reset(self):
        reset_server(self.store)

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc_info):
        self.stop()


# ----------------------------------------------------------------------------------------------
# 14. pytest plugin
# ----------------------------------------------------------------------------------------------
# Fixtures for users' tests: `pytest_plugins = ["lambda_fake"]`, or automatic once installed with
# pip (the pytest11 entry point). Defined only when pytest is already loaded, so that importing
# lambda_fake elsewhere stays standard library only.

if "pytest" in sys.modules:
    import pytest

    @pytest.fixture(scope="session")
    def lambda_fake_session():
        """One lambda_fake server for the whole test session, on a free port."""
        strict = switched_on(os.environ.get("LAMBDA_FAKE_STRICT_AWS"))
        with LambdaServer(0, strict_aws=strict) as server:
            yield server

    @pytest.fixture
    def lambda_server(lambda_fake_session, monkeypatch):
        """The session's server, reset for this test. AWS_ENDPOINT_URL_LAMBDA, a region and dummy
        credentials point SDK clients that the code under test creates at it."""
        lambda_fake_session.reset()
        monkeypatch.setenv("AWS_ENDPOINT_URL_LAMBDA", lambda_fake_session.endpoint_url)
        monkeypatch.setenv("AWS_DEFAULT_REGION", lambda_fake_session.store.region)
        for variable in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
            if variable not in os.environ:
                monkeypatch.setenv(variable, "test")
        return lambda_fake_session

    @pytest.fixture
    def lambda_client(lambda_server):
        """A boto3 Lambda client for the reset server (the test is skipped without boto3)."""
        boto3 = pytest.importorskip("boto3")
        return boto3.client("lambda", endpoint_url=lambda_server.endpoint_url,
                            region_name=lambda_server.store.region, aws_access_key_id="test",
                            aws_secret_access_key="test")


# ----------------------------------------------------------------------------------------------
# 15. Command line
# ----------------------------------------------------------------------------------------------

# Every option, its environment variable, its default and what it does.
OPTIONS = [
    ("port", "LAMBDA_FAKE_PORT", str(DEFAULT_PORT), "port to listen on; 0 picks a free one"),
    ("--host", "LAMBDA_FAKE_HOST", "127.0.0.1",
     "address to bind (it runs code it is sent: keep it local)"),
    ("--region", "LAMBDA_FAKE_REGION", DEFAULT_REGION,
     "the region ARNs name and requests must match"),
    ("--account-id", "LAMBDA_FAKE_ACCOUNT_ID", DEFAULT_ACCOUNT_ID, "the account ARNs name"),
    ("--log-level", "LAMBDA_FAKE_LOG_LEVEL", "info",
     "debug (also each invocation), info (a line per request), warning, or error"),
    ("--max-workers", "LAMBDA_FAKE_MAX_WORKERS", "16", "handler processes alive at most"),
    ("--idle-seconds", "LAMBDA_FAKE_IDLE_SECONDS", "300",
     "an idle handler process ends after this"),
    ("--prestart", "LAMBDA_FAKE_PRESTART", "on",
     "on: the runtimes' first environments boot as the server starts, so the first invoke does "
     "not wait for them; off: when a runtime's first function is created (an idle server then "
     "holds no handler process)"),
    ("--node-sdk", "LAMBDA_FAKE_NODE_SDK", None,
     "DIR : a node_modules holding the AWS SDK v3 (@aws-sdk/...), which Node.js handlers then "
     "require and import without bundling it, as on Lambda (default: npm's global packages)"),
    ("--aws-endpoint", "LAMBDA_FAKE_AWS_ENDPOINTS", None,
     "SERVICE=URL,... : other (local) AWS services, as S3=http://127.0.0.1:5000 (a bare URL: all); "
     "AWS_ENDPOINT_URL and AWS_ENDPOINT_URL_<SERVICE> in the environment count too. Code is read "
     "from S3 there, and handlers get them"),
    ("--lambda-paths", "LAMBDA_FAKE_LAMBDA_PATHS", "on",
     "on: where the kernel allows (Linux: root, or user namespaces), each environment sees its "
     "package at /var/task and its layers at /opt, in a mount namespace of its own; off: they "
     "stay in the server's temporary directory"),
    ("--debug", "LAMBDA_FAKE_DEBUG", None,
     "NAME,... : functions whose environments start with a debugger on 127.0.0.1 (* for all): "
     "Node.js's inspector (9229 up), debugpy or pdb over TCP for Python (5678 up), a port in "
     "LAMBDA_FAKE_DEBUG_PORT for custom runtimes (2345 up); their Timeout is suspended. A "
     "debugger port runs any code it is sent"),
    ("--strict-aws", "LAMBDA_FAKE_STRICT_AWS", None,
     "AWS's details where the spec differs: error bodies with each error's members in the API "
     "model's casing (Type, Message or message), and functions Pending or InProgress for a "
     "moment after a create or an update"),
    ("--settle-seconds", "LAMBDA_FAKE_SETTLE_SECONDS", str(DEFAULT_SETTLE_SECONDS),
     "with --strict-aws: how long a create, an update or an allocation stays in progress"),
    ("--debug-break", "LAMBDA_FAKE_DEBUG_BREAK", None,
     "debugged environments stop before their handler loads, until a debugger attaches"),
    ("--async-retry-delay", "LAMBDA_FAKE_ASYNC_RETRY_DELAY", str(DEFAULT_ASYNC_RETRY_DELAY_SECONDS),
     "seconds between retries of failed Event invocations"),
    ("--allow-host", "LAMBDA_FAKE_ALLOW_HOSTS", None,
     "NAME,... : Host names to answer besides loopback names and IP addresses (a service name "
     "such as lambda-fake when the fake runs in a container)"),
    ("--allow-origin", "LAMBDA_FAKE_ALLOW_ORIGINS", None,
     "ORIGIN,... : web pages allowed to call the API (for example http://localhost:3000, or *), "
     "with the CORS headers they need; by default every browser request from a page is refused"),
    ("--verify-signatures", "LAMBDA_FAKE_VERIFY_SIGNATURES", None,
     "KEY:SECRET,... : refuse requests not signed (SigV4) with one of these keys "
     "(alone: test:test)"),
]


def parse_options(argv):
    """The command line, each option falling back to its LAMBDA_FAKE_* environment variable."""
    import argparse
    parser = argparse.ArgumentParser(
        prog="lambda_fake", description="A local fake of AWS Lambda: the real REST-JSON API, and "
        "handlers really run. Every option can also come from the environment variable named with "
        "it.")
    for option, variable, default, text in OPTIONS:
        value = os.environ.get(variable, default)
        shown = (f"{text} (env {variable}; default {default})" if default
                 else f"{text} (env {variable})")
        if option == "port":
            parser.add_argument(option, nargs="?", type=int, default=int(value), help=shown)
        elif option == "--verify-signatures":
            parser.add_argument(option, nargs="?", const="test:test", default=value,
                                metavar="KEY:SECRET", help=shown)
        elif option in ("--debug-break", "--strict-aws"):
            parser.add_argument(option, action="store_true",
                                default=switched_on(value), help=shown)
        elif option in ("--allow-host", "--allow-origin", "--node-sdk", "--debug",
                        "--aws-endpoint"):
            parser.add_argument(option, default=value, metavar=text.split(" ")[0], help=shown)
        elif option == "--log-level":
            parser.add_argument(option, default=value, choices=LOG_LEVELS, help=shown)
        elif option in ("--prestart", "--lambda-paths"):
            parser.add_argument(option, default=value, choices=("on", "off"), help=shown)
        else:
            kind = {"--max-workers": int, "--idle-seconds": float, "--settle-seconds": float,
                    "--async-retry-delay": float}.get(option, str)
            parser.add_argument(option, type=kind, default=kind(value), help=shown)
    parser.add_argument("--quiet", action="store_true",
                        default=switched_on(os.environ.get("LAMBDA_FAKE_QUIET")),
                        help="no line per request; the same as --log-level warning (env "
                             "LAMBDA_FAKE_QUIET)")
    args = parser.parse_args(argv)
    if not re.fullmatch(r"[a-z]{2}(-gov|-iso[a-z]?)?-[a-z]+-\d", args.region):
        parser.error(f"--region {args.region} is not a region name such as us-east-1")
    if not re.fullmatch(r"\d{12}", args.account_id):
        parser.error(f"--account-id {args.account_id} is not a 12-digit account id")
    try:
        find_node_sdk(None, args.node_sdk)
    except ValueError as error:
        parser.error(f"--node-sdk {error}")
    args.aws_endpoints = {}
    for pair in (args.aws_endpoint or "").split(","):
        service, _, url = pair.rpartition("=") if "=" in pair.split("://")[0] else ("", "", pair)
        if not pair:
            continue
        if not re.fullmatch(r"https?://[^\s/]+/?", url) or not re.fullmatch(r"[A-Za-z0-9_]*",
                                                                              service):
            parser.error(f"--aws-endpoint takes SERVICE=URL pairs (S3=http://127.0.0.1:5000): "
                         f"{pair}")
        args.aws_endpoints[service.upper()] = url
    args.credentials = None
    if args.verify_signatures:
        pairs = [pair.partition(":") for pair in args.verify_signatures.split(",") if pair]
        if not pairs or not all(key and secret for key, _, secret in pairs):
            parser.error("--verify-signatures takes KEY:SECRET pairs separated by commas")
        args.credentials = {key: secret for key, _, secret in pairs}
    if args.quiet:
        args.log_level = "warning"
    return args


def main(argv=None):
    args = parse_options(argv)
    server = LambdaServer(args.port, args.host, region=args.region, account=args.account_id,
                          log_level=args.log_level, max_workers=args.max_workers,
                          idle_seconds=args.idle_seconds,
                          async_retry_delay=args.async_retry_delay,
                          prestart=args.prestart == "on", node_sdk=args.node_sdk,
                          lambda_paths=args.lambda_paths == "on",
                          debug=args.debug or (), debug_break=args.debug_break,
                          strict_aws=args.strict_aws, settle_seconds=args.settle_seconds,
                          aws_endpoints=args.aws_endpoints,
                          verify_signatures=args.credentials,
                          allow_hosts=args.allow_host or (), allow_origins=args.allow_origin or ())
    try:
        server.start()
    except OSError as error:
        sys.stderr.write(f"lambda_fake: cannot listen on {args.host}:{args.port}: "
                         f"{error.strerror}. Is another server using that port? Pick another, or 0 "
                         "for a free one.\n")
        return 1
    if args.host not in ("127.0.0.1", "localhost", "::1"):
        sys.stderr.write(f"lambda_fake: WARNING: listening on {args.host}, not loopback. Anyone "
                         "who can reach this address can run code on this machine. Requests "
                         "naming this machine by a name other than localhost or an IP address "
                         "are refused unless --allow-host names it.\n")
    if server.store.runner.house.node is None:
        sys.stderr.write("lambda_fake: node was not found on PATH, so Node.js functions will echo "
                         "their payload; install Node.js 18 or newer and restart to run them.\n")
    stopping = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stopping.set())
    signal.signal(signal.SIGINT, lambda *_: stopping.set())
    print(f"lambda_fake {__version__} listening on {server.endpoint_url}", flush=True)
    while not stopping.wait(1):         # a timeout keeps the main thread responsive to signals
        pass
    server.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
