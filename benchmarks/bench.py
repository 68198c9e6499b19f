"""bench.py: how fast lambda_fake is, measured next to reference points taken in the same run.

Not part of the test suite. Standard library plus boto3; needs `node` on PATH for the Node.js parts.

Run it from anywhere (it finds lambda_fake.py one folder up from this file):

    python benchmarks/bench.py                  # full run, 3 rounds, a few minutes on 2 cores
    python benchmarks/bench.py --quick          # 1 round, at most 1,000 functions: a fast check
    python benchmarks/bench.py --json out.json  # also write every figure, round by round

The fake is started as a user starts it (`python lambda_fake.py PORT --quiet`, with this very
interpreter), and the same client code measures these references, so each figure also comes out as
a ratio that holds on a noisy shared machine:

    canned      a minimal ThreadingHTTPServer (HTTP/1.1 keep-alive, Nagle off) that answers every
                request with one canned ~1 KB GetFunction body: the ceiling of this design
    spawn       the same interpreter started on that canned server, to its first answered request
    node pipe   a persistent `node` echoing JSON lines over pipes: one round trip
    node -e 0   the spawn time of node itself
    forwarding  a tiny ThreadingHTTPServer forwarding each POST to ONE persistent worker (node or
                python) running the same handler: the reference for warm Invoke

The table shows the median of the rounds with their min-max, the reference, the ratio (median of
the per-round ratios where both were measured in every round) and the target. Targets are printed,
never asserted. A section that fails prints its error and the others still run. Every process this
script starts is ended at the end: the fake with SIGTERM, the references with SIGKILL.

Contents (grep for the banner titles):
    1. Settings                 5. HTTP clients
    2. Figures and the table    6. Reference servers
    3. Processes                7. Sections
    4. Memory                   8. Command line
"""

import argparse
import base64
import http.client
import importlib.util
import json
import os
import py_compile
import random
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import traceback

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
FAKE_SCRIPT = os.path.join(ROOT, "lambda_fake.py")


# ----------------------------------------------------------------------------------------------
# 1. Settings
# ----------------------------------------------------------------------------------------------
# What a full run and a --quick run measure. The full run must stay within a few minutes on a
# 2-core machine; --quick is for checking that every section still works.

class Settings:
    """Sizes and durations of one run."""

    def __init__(self, quick, rounds):
        self.quick = quick
        self.rounds = rounds if rounds else (1 if quick else 3)
        self.load_seconds = 0.4 if quick else 1.0           # one req/s measurement window
        self.load_warmup_seconds = 0.1 if quick else 0.3
        self.invoke_load_seconds = 0.6 if quick else 1.5    # one invoke throughput window
        self.invoke_warmup_seconds = 0.3 if quick else 0.8  # lets the fake start its workers
        self.latency_samples = 100 if quick else 300        # sequential calls for a p50/p99
        self.boto3_samples = 100 if quick else 300
        self.function_counts = (10, 100, 1000) if quick else (10, 100, 1000, 10000)
        self.probe_batches = 5 if quick else 10             # 10 timed creates per batch
        self.cold_probes = 2 if quick else 3                # fresh functions per runtime per round
        self.cold_gap_seconds = 0.3                         # pause before each cold probe
        self.worker_functions = 40 if quick else 50         # functions invoked for the RSS bound
        self.spawn_samples = 3 if quick else 5              # `node -e 0` spawns per round
        self.per_test_count = 20 if quick else 40           # tests per per-test measurement


ACCOUNT_ROLE = "arn:aws:iam::123456789012:role/r"
NODE_HANDLER = "exports.handler = async (event) => ({ ok: true, echo: event });\n"
PYTHON_HANDLER = "def handler(event, context):\n    return {\"ok\": True, \"echo\": event}\n"
PAYLOAD = json.dumps({"n": 1, "text": "hello"}).encode()
RUNTIMES = {    # label -> (Runtime, Handler, source)
    "Node": ("nodejs20.x", "index.handler", NODE_HANDLER),
    "Python": ("python3.12", "app.handler", PYTHON_HANDLER),
}

# A GetFunction response as the fake gives it, about 1 KB; boto3 parses it like the real thing.
CANNED_BODY = json.dumps({
    "Configuration": {
        "FunctionName": "bench-get",
        "FunctionArn": "arn:aws:lambda:us-east-1:123456789012:function:bench-get",
        "Runtime": "nodejs20.x", "Role": ACCOUNT_ROLE, "Handler": "index.handler",
        "CodeSize": 66, "Description": "", "Timeout": 3, "MemorySize": 128,
        "LastModified": "2026-01-01T00:00:00.000+0000",
        "CodeSha256": "YYzamKEH6sIVTRtErDvTSJC5vm+kFbRWzz8xPtf+mds=", "Version": "$LATEST",
        "TracingConfig": {"Mode": "PassThrough"},
        "RevisionId": "1494ede0-5003-4ae5-86e5-133770f523d0", "State": "Active",
        "LastUpdateStatus": "Successful", "PackageType": "Zip", "Architectures": ["x86_64"],
        "EphemeralStorage": {"Size": 512},
        "SnapStart": {"ApplyOn": "None", "OptimizationStatus": "Off"},
        "LoggingConfig": {"LogFormat": "Text", "LogGroup": "/aws/lambda/bench-get"},
        "RuntimeVersionConfig": {"RuntimeVersionArn": "arn:aws:lambda:us-east-1::runtime:0a306665"
                                 "fb0b30630599db6a1ba7dcd7ee45abfa256a16fb574789f9aa4df3aa"},
    },
    "Code": {"RepositoryType": "S3", "Location": "http://127.0.0.1/_parlel/code/"
             "618cda98a107eac2154d1b44ac3bd34890b9be6fa415b456cf3f313ed7fe99db"},
}, separators=(",", ":"))


def create_body(name, runtime="Node", source=None):
    """A CreateFunction request body with raw source as Code.ZipFile."""
    runtime_name, handler, default_source = RUNTIMES[runtime]
    code = base64.b64encode((source or default_source).encode()).decode()
    return json.dumps({"FunctionName": name, "Runtime": runtime_name, "Role": ACCOUNT_ROLE,
                       "Handler": handler, "Code": {"ZipFile": code}}).encode()


# ----------------------------------------------------------------------------------------------
# 2. Figures and the table
# ----------------------------------------------------------------------------------------------
# A Figure holds one value per round, the reference per round, and the target. The table and the
# JSON output are both made from the list of Figures.

def percentile(values, fraction):
    """The nearest-rank percentile of `values` (fraction 0.5 is the median)."""
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(fraction * len(ordered) + 0.5) - 1))
    return ordered[index]


class Figure:
    """One measured figure. `target` is (kind, op, bound): kind "ratio" or "value", op "<=" or
    ">="; None prints no target."""

    def __init__(self, section, label, unit, values, ref=None, ref_label="", target=None):
        self.section = section
        self.label = label
        self.unit = unit
        self.values = list(values)
        self.ref = list(ref or [])
        self.ref_label = ref_label
        self.target = target

    @property
    def median(self):
        return statistics.median(self.values)

    @property
    def ratio(self):
        if not self.ref or not self.values:
            return None
        if len(self.ref) == len(self.values) and all(self.ref):
            return statistics.median(v / r for v, r in zip(self.values, self.ref))
        reference = statistics.median(self.ref)
        return self.median / reference if reference else None

    @property
    def met(self):
        if not self.target or not self.values:
            return None
        kind, op, bound = self.target
        value = self.ratio if kind == "ratio" else self.median
        if value is None:
            return None
        return value <= bound if op == "<=" else value >= bound

    def target_text(self):
        if not self.target:
            return ""
        kind, op, bound = self.target
        return f"{op} {bound:g}x" if kind == "ratio" else f"{op} {bound:g} {self.unit}"

    def as_json(self):
        return {"section": self.section, "label": self.label, "unit": self.unit,
                "values": self.values, "median": self.median, "min": min(self.values),
                "max": max(self.values), "reference": self.ref, "reference_label": self.ref_label,
                "reference_median": statistics.median(self.ref) if self.ref else None,
                "ratio": self.ratio, "target": self.target_text() or None, "met": self.met}


def number(value):
    """A figure in at most 6 characters or so: 0.213, 12.5, 4,713."""
    if value is None:
        return "-"
    if abs(value) >= 100:
        return f"{value:,.0f}"
    if abs(value) >= 10:
        return f"{value:.1f}"
    if abs(value) >= 1:
        return f"{value:.2f}"
    return f"{value:.3f}"


def print_table(figures, references, errors, rounds):
    """The results: one row per figure, grouped by section, then the raw references."""
    print()
    print(f"lambda_fake benchmark: median of {rounds} round(s), min-max over the rounds")
    header = (f"{'figure':<46} {'median':>9} {'min-max':>15} {'unit':<5} {'reference':>9} "
              f"{'ratio':>7}  {'target':<12} met")
    print(header)
    print("-" * len(header))
    section = None
    for figure in figures:
        if figure.section != section:
            section = figure.section
            print(f"[{section}]")
        spread = f"{number(min(figure.values))}-{number(max(figure.values))}"
        reference = number(statistics.median(figure.ref)) if figure.ref else "-"
        ratio = f"{figure.ratio:.2f}x" if figure.ratio is not None else "-"
        met = {True: "yes", False: "NO", None: ""}[figure.met]
        print(f"{figure.label:<46} {number(figure.median):>9} {spread:>15} {figure.unit:<5} "
              f"{reference:>9} {ratio:>7}  {figure.target_text():<12} {met}")
    if references:
        print()
        print("references (median, min-max)")
        for label, (unit, values) in references.items():
            spread = f"{number(min(values))}-{number(max(values))}"
            print(f"  {label:<60} {number(statistics.median(values)):>9} {spread:>15} {unit}")
    if errors:
        print()
        print("sections that failed")
        for name, message in errors.items():
            print(f"  {name}: {message}")


# ----------------------------------------------------------------------------------------------
# 3. Processes
# ----------------------------------------------------------------------------------------------
# Every process is started through Processes, so that the end of the run can end them all, and
# only them: descendants are killed by pid only while their start time still matches.

def free_port():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def proc_stat(pid):
    """(ppid, start time) of a process from /proc/<pid>/stat, or None when it is gone."""
    try:
        with open(f"/proc/{pid}/stat") as stat:
            fields = stat.read().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None
    return int(fields[1]), int(fields[19])      # fields 4 and 22 of proc(5)


def descendants(pid):
    """{pid: start time} of every live descendant of `pid`."""
    children = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            stat = proc_stat(int(entry))
            if stat:
                children.setdefault(stat[0], []).append((int(entry), stat[1]))
    found, todo = {}, [pid]
    while todo:
        for child, started in children.get(todo.pop(), []):
            found[child] = started
            todo.append(child)
    return found


class Processes:
    """The processes this script started; cleanup() ends every one still alive."""

    def __init__(self):
        self.started = []

    def spawn(self, argv, **options):
        options.setdefault("stdin", subprocess.DEVNULL)
        options.setdefault("stdout", subprocess.DEVNULL)
        process = subprocess.Popen(argv, **options)
        self.started.append(process)
        return process

    def stop(self, process, graceful):
        """End a process (SIGTERM when graceful, else SIGKILL) and any descendant it left."""
        if process.poll() is None:
            left = descendants(process.pid)
            process.send_signal(signal.SIGTERM if graceful else signal.SIGKILL)
            try:
                process.wait(10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
            for pid, started in left.items():
                stat = proc_stat(pid)
                if stat and stat[1] == started:
                    try:
                        os.kill(pid, signal.SIGKILL)
                    except ProcessLookupError:
                        pass
        if process in self.started:
            self.started.remove(process)

    def cleanup(self):
        for process in list(self.started):
            self.stop(process, graceful=getattr(process, "graceful", False))


def wait_for_answer(process, port, path, started, timeout=20.0):
    """Seconds from `started` to the first 200 answer to GET `path`; polls every millisecond."""
    while True:
        try:
            connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
            connection.request("GET", path)
            response = connection.getresponse()
            response.read()
            connection.close()
            if response.status == 200:
                return time.perf_counter() - started
        except (ConnectionError, http.client.HTTPException):
            pass
        if process.poll() is not None:
            raise RuntimeError(f"{process.args[1]} exited with status {process.returncode}: "
                               f"{stderr_tail(process)}")
        if time.perf_counter() - started > timeout:
            raise TimeoutError(f"no answer on port {port} after {timeout:.0f} s")
        time.sleep(0.001)


def stderr_tail(process):
    log = getattr(process, "log", None)
    if log is None:
        return ""
    log.seek(0)
    return log.read().decode(errors="replace")[-500:].strip()


class Server:
    """A server process on a local port: the fake or a reference. `ready` is the start-up time."""

    def __init__(self, procs, argv, health_path, graceful, cwd=None):
        self.procs = procs
        self.port = free_port()
        log = tempfile.TemporaryFile()
        started = time.perf_counter()
        argv = [str(self.port) if arg == "{port}" else arg for arg in argv]
        self.process = procs.spawn(argv, stderr=log, cwd=cwd)
        self.process.log = log
        self.process.graceful = graceful
        self.ready = wait_for_answer(self.process, self.port, health_path, started)

    @property
    def pid(self):
        return self.process.pid

    def stop(self):
        self.procs.stop(self.process, self.process.graceful)
        self.process.log.close()


def start_fake(procs, *options):
    """lambda_fake as a user starts it, with this interpreter, answering /_parlel/health."""
    argv = [sys.executable, FAKE_SCRIPT, "{port}", "--quiet", *options]
    return Server(procs, argv, "/_parlel/health", graceful=True)


def start_fake_module(procs, directory):
    """lambda_fake as `python -m lambda_fake` from `directory`, which holds a copy of the file
    and its cached bytecode, as Python leaves it after a first run (a script run never uses it)."""
    argv = [sys.executable, "-m", "lambda_fake", "{port}", "--quiet"]
    return Server(procs, argv, "/_parlel/health", graceful=True, cwd=directory)


def cached_copy():
    """A temporary directory with lambda_fake.py and its compiled bytecode in __pycache__."""
    directory = tempfile.mkdtemp(prefix="bench-lambda-fake-")
    target = shutil.copy(FAKE_SCRIPT, directory)
    py_compile.compile(target, cfile=importlib.util.cache_from_source(target), doraise=True)
    return directory


def start_canned(procs):
    return Server(procs, [sys.executable, "-c", CANNED_SERVER, "{port}", CANNED_BODY],
                  "/_parlel/health", graceful=False)


def start_forwarding(procs, runtime):
    """The forwarding reference with one persistent worker running the runtime's handler."""
    if runtime == "Node":
        worker = [shutil.which("node"), "-e", NODE_HANDLER + NODE_WORKER_LOOP]
    else:
        worker = [sys.executable, "-s", "-u", "-c", PYTHON_HANDLER + PYTHON_WORKER_LOOP]
    argv = [sys.executable, "-c", FORWARDING_SERVER, "{port}", json.dumps(worker)]
    return Server(procs, argv, "/health", graceful=False)


# ----------------------------------------------------------------------------------------------
# 4. Memory
# ----------------------------------------------------------------------------------------------
# Resident memory of a server and everything it started, as /proc reports it (shared pages of
# the workers are counted once per process, as `ps` would).

def rss_kb(pid):
    try:
        with open(f"/proc/{pid}/status") as status:
            for line in status:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def tree_rss_mb(pid):
    """(RSS in MB of `pid` plus all its descendants, number of descendants)."""
    children = descendants(pid)
    total = rss_kb(pid) + sum(rss_kb(child) for child in children)
    return total / 1024, len(children)


# ----------------------------------------------------------------------------------------------
# 5. HTTP clients
# ----------------------------------------------------------------------------------------------
# Raw http.client keep-alive connections, the same code against the fake and the references.
# Load runs start every client thread at once and count the requests done in a time window.

class Client:
    """One keep-alive connection. call() raises on any status outside 2xx."""

    def __init__(self, port):
        self.connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        self.connection.connect()
        # http.client sends headers and body in two writes; boto3 (urllib3) turns Nagle off too.
        self.connection.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def call(self, method, path, body=None):
        headers = {"Content-Type": "application/json"} if body is not None else {}
        self.connection.request(method, path, body=body, headers=headers)
        response = self.connection.getresponse()
        data = response.read()
        if not 200 <= response.status < 300:
            raise RuntimeError(f"{method} {path}: HTTP {response.status} {data[:200]!r}")
        return data

    def timed(self, method, path, body=None):
        started = time.perf_counter()
        self.call(method, path, body)
        return time.perf_counter() - started

    def close(self):
        self.connection.close()


def latencies(port, method, path, body, samples, warmup=20):
    """Seconds per call for `samples` sequential calls on one connection, after `warmup`."""
    client = Client(port)
    try:
        for _ in range(warmup):
            client.call(method, path, body)
        return [client.timed(method, path, body) for _ in range(samples)]
    finally:
        client.close()


def load(port, requests, seconds, warmup_seconds):
    """Run one client thread per (method, path, body) in `requests` for `seconds`, each on its
    own keep-alive connection, after `warmup_seconds` of the same. Returns (requests/s, [s])."""
    window = {}
    barrier = threading.Barrier(len(requests),
                                action=lambda: window.update(start=time.perf_counter()))
    results = [None] * len(requests)
    errors = []

    def run(index, method, path, body):
        client = Client(port)
        timings = []
        try:
            end = time.perf_counter() + warmup_seconds
            while time.perf_counter() < end:
                client.call(method, path, body)
            barrier.wait()
            end = window["start"] + seconds
            while True:
                started = time.perf_counter()
                client.call(method, path, body)
                now = time.perf_counter()
                timings.append(now - started)
                if now >= end:
                    break
            results[index] = (now, timings)
        except Exception as error:      # reported by the caller, once all threads are done
            errors.append(error)
            barrier.abort()
        finally:
            client.close()

    threads = [threading.Thread(target=run, args=(i, *request), daemon=True)
               for i, request in enumerate(requests)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if errors:
        raise errors[0]
    finished = max(result[0] for result in results)
    timings = [t for result in results for t in result[1]]
    return len(timings) / (finished - window["start"]), timings


def boto3_client(port):
    import boto3
    import botocore.config
    config = botocore.config.Config(retries={"max_attempts": 1, "mode": "standard"})
    return boto3.client("lambda", endpoint_url=f"http://127.0.0.1:{port}", region_name="us-east-1",
                        aws_access_key_id="test", aws_secret_access_key="test", config=config)


def ms(seconds):
    return seconds * 1000.0


# ----------------------------------------------------------------------------------------------
# 6. Reference servers
# ----------------------------------------------------------------------------------------------
# Sources run with `python -c` / `node -e`, so that each reference is a process of its own, as the
# fake is, and competes for the same two cores in the same way.

CANNED_SERVER = r"""
import http.server, sys
BODY = sys.argv[2].encode()

class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True

    def answer(self):
        length = int(self.headers.get("Content-Length") or 0)
        if length:
            self.rfile.read(length)
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(BODY)))
        self.end_headers()
        self.wfile.write(BODY)

    do_GET = do_POST = do_PUT = do_DELETE = answer

    def log_message(self, *args):
        pass

server = http.server.ThreadingHTTPServer(("127.0.0.1", int(sys.argv[1])), Handler)
server.daemon_threads = True
server.serve_forever()
"""

FORWARDING_SERVER = r"""
import http.server, json, subprocess, sys, threading
worker = subprocess.Popen(json.loads(sys.argv[2]), stdin=subprocess.PIPE, stdout=subprocess.PIPE)
lock = threading.Lock()

class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True

    def do_GET(self):
        self.reply(b"{}")

    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        line = json.dumps(json.loads(body or b"null")).encode() + b"\n"
        with lock:
            worker.stdin.write(line)
            worker.stdin.flush()
            answer = worker.stdout.readline()
        self.reply(answer.rstrip(b"\n"))

    def reply(self, data):
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args):
        pass

server = http.server.ThreadingHTTPServer(("127.0.0.1", int(sys.argv[1])), Handler)
server.daemon_threads = True
server.serve_forever()
"""

NODE_WORKER_LOOP = r"""
const lines = require("readline").createInterface({ input: process.stdin });
lines.on("line", async (line) => {
  const result = await exports.handler(JSON.parse(line), {});
  process.stdout.write(JSON.stringify(result) + "\n");
});
"""

PYTHON_WORKER_LOOP = r"""
import json, sys
for line in iter(sys.stdin.readline, ""):
    sys.stdout.write(json.dumps(handler(json.loads(line), None)) + "\n")
    sys.stdout.flush()
"""

NODE_ECHO = r"""
const lines = require("readline").createInterface({ input: process.stdin });
lines.on("line", (line) => process.stdout.write(line + "\n"));
"""


# ----------------------------------------------------------------------------------------------
# 7. Sections
# ----------------------------------------------------------------------------------------------
# One function per table section. Each takes the Run, adds its Figures and references, and stops
# every server it started, even when it fails.

class Run:
    """What the sections share: settings, processes, and the results so far."""

    def __init__(self, settings):
        self.settings = settings
        self.procs = Processes()
        self.figures = []
        self.references = {}        # label -> (unit, [value per round])
        self.errors = {}

    def figure(self, *args, **kwargs):
        self.figures.append(Figure(*args, **kwargs))

    def reference(self, label, unit, values):
        self.references[label] = (unit, list(values))


def bench_startup(run):
    """Start-up to the first answer, and idle RSS (the server's own, and with the environments
    it prestarts), for the fake and the canned server."""
    names = ("canned", "fake", "module", "lean")
    times, own, tree = ({name: [] for name in names} for _ in range(3))
    directory = cached_copy()
    starters = {"canned": start_canned, "fake": start_fake,
                "module": lambda procs: start_fake_module(procs, directory),
                "lean": lambda procs: start_fake(procs, "--prestart", "off")}
    try:
        for _ in range(run.settings.rounds):
            for name in names:
                server = starters[name](run.procs)
                try:
                    times[name].append(ms(server.ready))
                    time.sleep(0.5)         # idle: let any start-up work settle
                    own[name].append(rss_kb(server.pid) / 1024)
                    tree[name].append(tree_rss_mb(server.pid)[0])
                finally:
                    server.stop()
    finally:
        shutil.rmtree(directory, ignore_errors=True)
    section = "start-up and idle memory"
    canned = times["canned"]
    run.figure(section, "start-up: spawn -> first health answer", "ms", times["fake"], canned,
               "canned spawn", ("ratio", "<=", 1.5))
    run.figure(section, "  --prestart off", "ms", times["lean"], canned, "canned spawn",
               ("ratio", "<=", 1.5))
    run.figure(section, "  python -m lambda_fake, bytecode cached", "ms", times["module"],
               canned, "canned spawn", ("ratio", "<=", 1.5))
    run.figure(section, "RSS idle, the server's own", "MB", own["fake"], own["canned"],
               "canned server RSS", ("value", "<=", 30))
    run.figure(section, "  python -m lambda_fake, bytecode cached", "MB", own["module"],
               own["canned"], "canned server RSS", ("value", "<=", 30))
    run.figure(section, "  with its prestarted environments", "MB", tree["fake"])
    run.figure(section, "  --prestart off, the whole tree", "MB", tree["lean"])
    run.reference("(b) canned server spawn -> first answer", "ms", canned)
    run.reference("canned server idle RSS", "MB", own["canned"])


def bench_get_function(run):
    """GetFunction req/s and latency with 1 and 8 raw keep-alive clients; boto3 get_function."""
    settings = run.settings
    fake, canned = start_fake(run.procs), start_canned(run.procs)
    try:
        Client(fake.port).call("POST", "/2015-03-31/functions", create_body("bench-get"))
        path = "/2015-03-31/functions/bench-get"
        rows = {}           # (server, clients) -> [(rps, p50 ms, p99 ms)]
        for round_index in range(settings.rounds):
            for clients in (1, 8):
                order = (fake, canned) if round_index % 2 == 0 else (canned, fake)
                for server in order:
                    rps, timings = load(server.port, [("GET", path, None)] * clients,
                                        settings.load_seconds, settings.load_warmup_seconds)
                    rows.setdefault((server is fake, clients), []).append(
                        (rps, ms(percentile(timings, 0.5)), ms(percentile(timings, 0.99))))
        section = "GetFunction (raw http.client keep-alive)"
        targets = {1: ("ratio", ">=", 1.0), 8: ("ratio", ">=", 0.7)}
        for clients in (1, 8):
            mine, theirs = rows[(True, clients)], rows[(False, clients)]
            noun = "client" if clients == 1 else "clients"
            for column, label, unit, target in ((0, "req/s", "req/s", targets[clients]),
                                                (1, "p50", "ms", None), (2, "p99", "ms", None)):
                run.figure(section, f"GetFunction {label}, {clients} {noun}", unit,
                           [row[column] for row in mine], [row[column] for row in theirs],
                           "canned", target)
                run.reference(f"(a) canned {label}, {clients} {noun}", unit,
                              [row[column] for row in theirs])

        # boto3: the same client object code against both; the canned body parses as GetFunction.
        fake_p50, canned_p50 = [], []
        lam_fake, lam_canned = boto3_client(fake.port), boto3_client(canned.port)
        for _ in range(settings.rounds):
            for lam, out in ((lam_fake, fake_p50), (lam_canned, canned_p50)):
                for _ in range(20):
                    lam.get_function(FunctionName="bench-get")
                timings = []
                for _ in range(settings.boto3_samples):
                    started = time.perf_counter()
                    lam.get_function(FunctionName="bench-get")
                    timings.append(time.perf_counter() - started)
                out.append(ms(percentile(timings, 0.5)))
        run.figure("boto3", "boto3 get_function p50", "ms", fake_p50, canned_p50, "canned",
                   ("ratio", "<=", 1.1))
        run.reference("boto3 get_function p50 against canned", "ms", canned_p50)
    finally:
        fake.stop()
        canned.stop()


def list_all(client):
    """(seconds, pages, functions) to page through ListFunctions to the end."""
    started = time.perf_counter()
    marker, pages, count = None, 0, 0
    while True:
        path = "/2015-03-31/functions"
        if marker:
            path += "?Marker=" + marker
        page = json.loads(client.call("GET", path))
        pages += 1
        count += len(page["Functions"])
        marker = page.get("NextMarker")
        if not marker:
            return time.perf_counter() - started, pages, count


def fill(port, names, threads=2):
    """Create the functions `names` (untimed) with a few parallel connections."""
    def work(chunk):
        client = Client(port)
        try:
            for name in chunk:
                client.call("POST", "/2015-03-31/functions", create_body(name, source=(
                    NODE_HANDLER + f"// {name}\n")))
        finally:
            client.close()
    workers = [threading.Thread(target=work, args=(names[i::threads],)) for i in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()


def bench_scale(run):
    """CreateFunction / GetFunction p50 and ListFunctions at growing function counts; RSS."""
    settings = run.settings
    counts = settings.function_counts
    create_p50 = {n: [] for n in counts}
    get_p50 = {n: [] for n in counts}
    list_ms = {n: [] for n in counts}
    page_ms = {n: [] for n in counts}
    rss_full, per_function_kb, canned_create, canned_get = [], [], [], []
    canned = start_canned(run.procs)
    try:
        for round_index in range(settings.rounds):
            canned_create.append(ms(percentile(latencies(
                canned.port, "POST", "/2015-03-31/functions", create_body("probe"),
                settings.probe_batches * 10), 0.5)))
            canned_get.append(ms(percentile(latencies(
                canned.port, "GET", "/2015-03-31/functions/fn-0", None,
                settings.latency_samples), 0.5)))
            fake = start_fake(run.procs)     # a fresh process: RSS growth is for this round only
            try:
                time.sleep(0.3)
                rss_start = rss_kb(fake.pid) / 1024   # the server's own: the spares that the
                                                       # first create starts are not per function
                client = Client(fake.port)
                have = 0
                for count in counts:
                    fill(fake.port, [f"fn-{i}" for i in range(have, count)])
                    have = count
                    # Sample: batches of 10 timed creates, each batch deleted again; the
                    # first batch only warms up.
                    timings = []
                    for batch in range(-1, settings.probe_batches):
                        names = [f"probe-{round_index}-{batch}-{i}" for i in range(10)]
                        for name in names:
                            seconds = client.timed("POST", "/2015-03-31/functions",
                                                   create_body(name))
                            if batch >= 0:
                                timings.append(seconds)
                        for name in names:
                            client.call("DELETE", f"/2015-03-31/functions/{name}")
                    create_p50[count].append(ms(percentile(timings, 0.5)))
                    gets = [f"/2015-03-31/functions/fn-{random.randrange(count)}"
                            for _ in range(20 + settings.latency_samples)]
                    timings = [client.timed("GET", path) for path in gets][20:]
                    get_p50[count].append(ms(percentile(timings, 0.5)))
                    seconds, pages, listed = list_all(client)
                    if listed != count:
                        raise RuntimeError(f"ListFunctions listed {listed} of {count} functions")
                    list_ms[count].append(ms(seconds))
                    page_ms[count].append(ms(seconds) / pages)
                client.close()
                rss_full.append(tree_rss_mb(fake.pid)[0])
                per_function_kb.append((rss_kb(fake.pid) / 1024 - rss_start) * 1024 / counts[-1])
            finally:
                fake.stop()
    finally:
        canned.stop()
    section = "scale (one raw client; sample after creating N)"
    for count in counts:
        run.figure(section, f"CreateFunction p50 @ {count:,}", "ms", create_p50[count],
                   canned_create, "canned POST")
    for count in counts:
        run.figure(section, f"GetFunction p50 @ {count:,}", "ms", get_p50[count], canned_get,
                   "canned GET")
    for count in counts:
        run.figure(section, f"ListFunctions all pages @ {count:,}", "ms", list_ms[count])
    first, last = counts[0], counts[-1]
    growth = f"{first:,}->{last:,}"
    run.figure(section, f"CreateFunction p50 growth {growth}", "x",
               [b / a for a, b in zip(create_p50[first], create_p50[last])], target=(
                   "value", "<=", 1.3))
    run.figure(section, f"GetFunction p50 growth {growth}", "x",
               [b / a for a, b in zip(get_p50[first], get_p50[last])], target=("value", "<=", 1.3))
    run.figure(section, f"ListFunctions time per page growth {growth}", "x",
               [b / a for a, b in zip(page_ms[first], page_ms[last])])
    run.figure("memory", f"RSS after {last:,} functions (spares included)", "MB", rss_full)
    run.figure("memory", "RSS per function (the server's own)", "KB", per_function_kb,
               target=("value", "<=", 20))
    run.reference("canned CreateFunction-shaped POST p50", "ms", canned_create)
    run.reference("canned GetFunction p50 (sequential)", "ms", canned_get)


def spawn_time(argv, samples):
    """Median seconds to run `argv` to its exit."""
    timings = []
    for _ in range(samples):
        started = time.perf_counter()
        subprocess.run(argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, check=True)
        timings.append(time.perf_counter() - started)
    return statistics.median(timings)


def pipe_round_trip(run, samples):
    """Median seconds for one JSON line through a persistent `node` echo over pipes."""
    process = run.procs.spawn([shutil.which("node"), "-e", NODE_ECHO], stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE)
    try:
        line = PAYLOAD + b"\n"
        timings = []
        for index in range(samples + 50):
            started = time.perf_counter()
            process.stdin.write(line)
            process.stdin.flush()
            process.stdout.readline()
            if index >= 50:
                timings.append(time.perf_counter() - started)
        return statistics.median(timings)
    finally:
        run.procs.stop(process, graceful=False)


def bench_invoke(run):
    """Invoke latency cold, after UpdateFunctionCode and warm, for Node and Python handlers;
    throughput with 8 clients on one function and on 8 functions."""
    settings = run.settings
    node_spawn, python_spawn, node_pipe = [], [], []
    cold = {label: [] for label in RUNTIMES}
    updated = {label: [] for label in RUNTIMES}
    warm = {(label, who): [] for label in RUNTIMES for who in ("fake", "ref")}
    throughput = {"one": [], "eight": [], "ref": []}
    fake = start_fake(run.procs)
    forwarding = {label: start_forwarding(run.procs, label) for label in RUNTIMES}
    try:
        client = Client(fake.port)
        for label in RUNTIMES:
            client.call("POST", "/2015-03-31/functions", create_body(f"warm-{label}", label))
        for name in ["tp-one"] + [f"tp-{i}" for i in range(8)]:
            client.call("POST", "/2015-03-31/functions", create_body(name))
        for round_index in range(settings.rounds):
            node_spawn.append(ms(spawn_time([shutil.which("node"), "-e", "0"],
                                            settings.spawn_samples)))
            python_spawn.append(ms(spawn_time([sys.executable, "-c", "pass"],
                                              settings.spawn_samples)))
            node_pipe.append(ms(pipe_round_trip(run, 1000)))
            for label, (runtime, handler, source) in RUNTIMES.items():
                firsts, after_update = [], []
                for probe in range(settings.cold_probes):
                    name = f"cold-{label}-{round_index}-{probe}"
                    time.sleep(settings.cold_gap_seconds)
                    client.call("POST", "/2015-03-31/functions", create_body(name, label))
                    path = f"/2015-03-31/functions/{name}/invocations"
                    firsts.append(client.timed("POST", path, PAYLOAD))
                    client.call("POST", path, PAYLOAD)
                    time.sleep(settings.cold_gap_seconds)
                    comment = "//" if label == "Node" else "#"
                    code = base64.b64encode(f"{source}{comment} v2\n".encode()).decode()
                    client.call("PUT", f"/2015-03-31/functions/{name}/code",
                                json.dumps({"ZipFile": code}).encode())
                    after_update.append(client.timed("POST", path, PAYLOAD))
                cold[label].append(ms(statistics.median(firsts)))
                updated[label].append(ms(statistics.median(after_update)))
                # Each cold start above starts a spare in the background (a Node boot is ~100 ms
                # of CPU): let it finish, so that the warm figures measure warm invokes alone.
                time.sleep(settings.cold_gap_seconds)
                for who, port, path in (
                        ("fake", fake.port, f"/2015-03-31/functions/warm-{label}/invocations"),
                        ("ref", forwarding[label].port, "/invoke")):
                    timings = latencies(port, "POST", path, PAYLOAD, settings.latency_samples)
                    warm[(label, who)].append((ms(percentile(timings, 0.5)),
                                               ms(percentile(timings, 0.99))))
            for key, port, paths in (
                    ("one", fake.port, ["/2015-03-31/functions/tp-one/invocations"] * 8),
                    ("eight", fake.port, [f"/2015-03-31/functions/tp-{i}/invocations"
                                          for i in range(8)]),
                    ("ref", forwarding["Node"].port, ["/invoke"] * 8)):
                rps, _ = load(port, [("POST", path, PAYLOAD) for path in paths],
                              settings.invoke_load_seconds, settings.invoke_warmup_seconds)
                throughput[key].append(rps)
        client.close()
    finally:
        fake.stop()
        for server in forwarding.values():
            server.stop()
    for label in RUNTIMES:
        section = f"Invoke, {label} handler"
        spawn = node_spawn if label == "Node" else python_spawn
        spawn_label = "node -e 0" if label == "Node" else "python -c pass"
        run.figure(section, f"{label} cold (first invoke after create)", "ms", cold[label], spawn,
                   spawn_label, ("value", "<=", 3))
        run.figure(section, f"{label} first invoke after UpdateFunctionCode", "ms", updated[label],
                   spawn, spawn_label, ("value", "<=", 3))
        mine, theirs = warm[(label, "fake")], warm[(label, "ref")]
        run.figure(section, f"{label} warm p50", "ms", [row[0] for row in mine],
                   [row[0] for row in theirs], "forwarding", ("ratio", "<=", 1.0))
        run.figure(section, f"{label} warm p99", "ms", [row[1] for row in mine],
                   [row[1] for row in theirs], "forwarding")
        run.reference(f"(e) forwarding server, one {label} worker: warm p50", "ms",
                      [row[0] for row in theirs])
    section = "Invoke throughput, 8 clients (Node)"
    run.figure(section, "8 clients on one function", "inv/s", throughput["one"],
               throughput["ref"], "forwarding", ("ratio", ">=", 0.8))
    run.figure(section, "8 clients on 8 functions", "inv/s", throughput["eight"],
               throughput["ref"], "forwarding", ("ratio", ">=", 0.8))
    run.reference("(e) forwarding server, one node worker: 8 clients", "inv/s", throughput["ref"])
    run.reference("(c) persistent node over pipes: JSON line round trip", "ms", node_pipe)
    run.reference("(d) node -e 0 spawn", "ms", node_spawn)
    run.reference("python -c pass spawn", "ms", python_spawn)


def bench_workers(run):
    """RSS of the fake and its workers after invoking many different functions once each."""
    settings = run.settings
    count = settings.worker_functions
    half_rss, full_rss, half_procs, full_procs, idle_rss = [], [], [], [], []
    for _ in range(settings.rounds):
        fake = start_fake(run.procs)
        try:
            client = Client(fake.port)
            time.sleep(0.3)
            idle_rss.append(tree_rss_mb(fake.pid)[0])
            for index in range(count):
                name = f"many-{index}"
                client.call("POST", "/2015-03-31/functions", create_body(name))
                client.call("POST", f"/2015-03-31/functions/{name}/invocations", PAYLOAD)
                if index + 1 in (count // 2, count):
                    rss, processes = tree_rss_mb(fake.pid)
                    (half_rss if index + 1 < count else full_rss).append(rss)
                    (half_procs if index + 1 < count else full_procs).append(processes)
            client.close()
        finally:
            fake.stop()
    run.figure("memory", f"RSS after invoking {count} functions", "MB", full_rss, half_rss,
               f"RSS after {count // 2}", ("ratio", "<=", 1.1))
    run.figure("memory", f"worker processes after {count} functions", "procs", full_procs,
               half_procs, f"after {count // 2}")
    run.figure("memory", "RSS per worker process", "MB",
               [(full - idle) / max(1, procs) for full, idle, procs in zip(full_rss, idle_rss,
                                                                           full_procs)])
    run.reference(f"fake RSS after invoking {count // 2} functions", "MB", half_rss)


def node_modules_zip(megabytes):
    """A Node.js package whose node_modules holds `megabytes` MB of JavaScript in 5 KB files (a
    real dependency tree is many small files), with a handler that requires one of them."""
    import io
    import zipfile
    buffer = io.BytesIO()
    rng = random.Random(7)
    words = ["const", "function", "return", "value", "module", "exports", "require", "async",
             "await", "object", "length", "index", "buffer", "string", "=", "(", ")", "{", "}", ";"]
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("index.js", "const dep = require('pkg0');\n"
                                     "exports.handler = async (e) => ({ ok: dep.ok, echo: e });\n")
        written, index = 0, 0
        while written < megabytes * 1024 * 1024:
            text = " ".join(rng.choice(words) for _ in range(900))[:5000] + "\n"
            package, name = divmod(index, 40)
            path = f"node_modules/pkg{package}/{'index' if name == 0 else f'lib{name}'}.js"
            if name == 0:
                text = "exports.ok = true;\n/*" + text.replace("*/", "") + "*/\n"
            archive.writestr(path, text)
            written += len(text)
            index += 1
    return buffer.getvalue()


def one_test(client, name, runtime):
    """A test as the pytest fixtures run it: reset, CreateFunction with raw source, the first
    Invoke, two more. Returns (seconds for all five requests, seconds of the first Invoke)."""
    started = time.perf_counter()
    client.call("POST", "/_parlel/reset")
    client.call("POST", "/2015-03-31/functions", create_body(name, runtime))
    path = f"/2015-03-31/functions/{name}/invocations"
    first = client.timed("POST", path, PAYLOAD)
    client.call("POST", path, PAYLOAD)
    client.call("POST", path, PAYLOAD)
    return time.perf_counter() - started, first


def canned_test(client):
    """The same five requests, answered by the canned server: the floor of one test."""
    started = time.perf_counter()
    client.call("POST", "/_parlel/reset")
    client.call("POST", "/2015-03-31/functions", create_body("canned"))
    for _ in range(3):
        client.call("POST", "/2015-03-31/functions/canned/invocations", PAYLOAD)
    return time.perf_counter() - started


# A user's first test, in a process of its own: import boto3, make a client, create a function
# and invoke it; it prints how long the invoke took, in seconds (boto3 included).
BOTO3_FIRST_TEST = """
import sys, time
import boto3
port, name, runtime, handler, code = sys.argv[1:6]
client = boto3.client("lambda", endpoint_url=f"http://127.0.0.1:{port}", region_name="us-east-1",
                      aws_access_key_id="test", aws_secret_access_key="test")
try:                        # boto3's own first-call costs (~40 ms) are not the server's
    client.invoke(FunctionName="missing", Payload=b"{}")
except client.exceptions.ResourceNotFoundException:
    pass
client.create_function(FunctionName=name, Runtime=runtime, Handler=handler,
                       Role="arn:aws:iam::123456789012:role/bench", Code={"ZipFile": code.encode()})
started = time.perf_counter()
client.invoke(FunctionName=name, Payload=b'{"n": 1}')
print(time.perf_counter() - started)
"""


def boto3_first_test(port, label):
    """The first invoke a new boto3 process makes on a server just started (seconds)."""
    runtime, handler, source = RUNTIMES[label]
    done = subprocess.run([sys.executable, "-c", BOTO3_FIRST_TEST, str(port), "first", runtime,
                           handler, source], capture_output=True, text=True, timeout=60)
    if done.returncode:
        raise RuntimeError(f"the boto3 first test failed: {done.stderr.strip()[-300:]}")
    return float(done.stdout)


def bench_per_test(run):
    """What one test of a suite costs: reset, create, the first invoke and two more, 40 tests
    back to back and again with a 50 ms pause; the first invoke after the server starts; the
    first invoke of a function whose zip holds 10 MB of node_modules."""
    settings = run.settings
    tests = settings.per_test_count
    per_test = {(label, pause): [] for label in RUNTIMES for pause in (0, 0.05)}
    first = {(label, pause): [] for label in RUNTIMES for pause in (0, 0.05)}
    after_start = {label: [] for label in RUNTIMES}
    boto3_after_start = {label: [] for label in RUNTIMES}
    big_create, big_first = [], []
    floor = {0: [], 0.05: []}           # the canned floor, back to back and with the same pause
    big_zip = base64.b64encode(node_modules_zip(10)).decode()
    for round_index in range(settings.rounds):
        canned = start_canned(run.procs)
        try:
            client = Client(canned.port)
            for pause in floor:
                totals = []
                for _ in range(tests):
                    time.sleep(pause)
                    totals.append(canned_test(client))
                floor[pause].append(ms(statistics.median(totals)))
            client.close()
        finally:
            canned.stop()
        for label in RUNTIMES:
            fake = start_fake(run.procs)            # a new server, and a test in a new process
            try:
                boto3_after_start[label].append(ms(boto3_first_test(fake.port, label)))
            finally:
                fake.stop()
            fake = start_fake(run.procs)            # a new server: its first invoke ever
            try:
                client = Client(fake.port)
                client.call("POST", "/2015-03-31/functions", create_body("first", label))
                after_start[label].append(ms(client.timed(
                    "POST", "/2015-03-31/functions/first/invocations", PAYLOAD)))
                for pause in (0, 0.05):
                    totals, firsts = [], []
                    for index in range(tests):
                        if pause:
                            time.sleep(pause)
                        total, first_invoke = one_test(client, f"t{index}", label)
                        totals.append(total)
                        firsts.append(first_invoke)
                    per_test[(label, pause)].append(ms(statistics.median(totals)))
                    first[(label, pause)].append(ms(statistics.median(firsts)))
                if label == "Node":
                    client.call("POST", "/_parlel/reset")
                    time.sleep(0.3)                 # an idle server: only the unpack is measured
                    body = json.dumps({"FunctionName": "big", "Runtime": "nodejs20.x",
                                       "Handler": "index.handler", "Role": ACCOUNT_ROLE,
                                       "Code": {"ZipFile": big_zip}}).encode()
                    big_create.append(ms(client.timed("POST", "/2015-03-31/functions", body)))
                    big_first.append(ms(client.timed(
                        "POST", "/2015-03-31/functions/big/invocations", PAYLOAD)))
                client.close()
            finally:
                fake.stop()
    section = f"per test: reset, create, 3 invokes ({tests} tests)"
    targets = {"Node": 6, "Python": 4}
    for label in RUNTIMES:
        run.figure(section, f"{label} per test, back to back", "ms", per_test[(label, 0)],
                   floor[0], "canned, same 5 requests", ("value", "<=", targets[label]))
        run.figure(section, f"{label} first invoke after reset, back to back", "ms",
                   first[(label, 0)], target=("value", "<=", 2.5))
        run.figure(section, f"{label} per test, 50 ms apart", "ms", per_test[(label, 0.05)],
                   floor[0.05], "canned, 50 ms apart", ("value", "<=", targets[label]))
        run.figure(section, f"{label} first invoke after reset, 50 ms apart", "ms",
                   first[(label, 0.05)], target=("value", "<=", 2.5))
        run.figure(section, f"{label} first invoke after the server starts", "ms",
                   after_start[label], target=("value", "<=", 5))
        run.figure(section, "  in a new boto3 process, as a first test", "ms",
                   boto3_after_start[label], target=("value", "<=", 5))
    run.figure(section, "CreateFunction, zip with 10 MB of node_modules", "ms", big_create)
    run.figure(section, "  its first invoke", "ms", big_first, target=("value", "<=", 30))
    run.reference("canned server: the five requests of one test, back to back", "ms", floor[0])
    run.reference("canned server: the five requests of one test, 50 ms apart", "ms", floor[0.05])


SECTIONS = [
    ("startup", bench_startup),
    ("get", bench_get_function),
    ("scale", bench_scale),
    ("invoke", bench_invoke),
    ("workers", bench_workers),
    ("pertest", bench_per_test),
]


# ----------------------------------------------------------------------------------------------
# 8. Command line
# ----------------------------------------------------------------------------------------------

def main(argv=None):
    parser = argparse.ArgumentParser(description="Benchmark lambda_fake against references.")
    parser.add_argument("--rounds", type=int, default=0, help="rounds per figure (default 3; "
                        "1 with --quick)")
    parser.add_argument("--quick", action="store_true",
                        help="fewer functions, shorter windows, one round")
    parser.add_argument("--json", metavar="PATH", help="write every figure to this JSON file")
    parser.add_argument("--only", action="append", choices=[name for name, _ in SECTIONS],
                        help="run only this section (repeatable)")
    args = parser.parse_args(argv)
    if shutil.which("node") is None:
        parser.error("node is not on PATH")
    run = Run(Settings(args.quick, args.rounds))
    # SIGTERM ends the run through the same cleanup as a normal end.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    began = time.perf_counter()
    try:
        for name, section in SECTIONS:
            if args.only and name not in args.only:
                continue
            print(f"-- {name} ...", end=" ", flush=True)
            started = time.perf_counter()
            try:
                section(run)
                print(f"{time.perf_counter() - started:.1f} s", flush=True)
            except Exception as error:
                run.errors[name] = f"{type(error).__name__}: {error}"
                print(f"FAILED after {time.perf_counter() - started:.1f} s", flush=True)
                traceback.print_exc(limit=3)
    finally:
        run.procs.cleanup()
    elapsed = time.perf_counter() - began
    print_table(run.figures, run.references, run.errors, run.settings.rounds)
    print(f"\ntotal {elapsed:.0f} s; python {sys.version.split()[0]} ({sys.executable}); "
          f"{os.cpu_count()} cores")
    if args.json:
        with open(args.json, "w") as out:
            json.dump({"rounds": run.settings.rounds, "quick": run.settings.quick,
                       "seconds": elapsed, "python": sys.version, "cpus": os.cpu_count(),
                       "figures": [figure.as_json() for figure in run.figures],
                       "references": {label: {"unit": unit, "values": values,
                                              "median": statistics.median(values)}
                                      for label, (unit, values) in run.references.items()},
                       "errors": run.errors}, out, indent=2)
    return 1 if run.errors else 0


if __name__ == "__main__":
    sys.exit(main())
