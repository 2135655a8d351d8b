#!/usr/bin/python3
"""Serving benchmark: `mlops-worker serve` under wrk against baselines measured in the same run,
as ratios (machines are noisy, absolute numbers are not comparable between runs).

1. HTTP floor: nginx answering every request with a fixed body as long as the worker's answer,
   against the worker running the fixture MLP; the same POST, wrk at 1, 16 and 64 connections.
   Targets: worker throughput >= 0.5x nginx's at c=64; worker p50 <= 2x nginx's at c=1.
2. Dynamic batching: a wide MLP (256-2048-2048-16) at c=64 with single-row requests, served with
   --max-batch 64 against --max-batch 1. Target: >= 2x the throughput. Also the mean size of the
   batch each request ran in, from /metrics.
3. `mlops serve start mlp@1` until it returns (ready), against the worker started directly and
   polled until /v2/health/ready: the ratio is the control plane's overhead. Target: under 300 ms.

    tests/bench/serve.py [--smoke] [--check] [--json] [--duration S] [--device cpu|cuda]
                         [--worker build/mlops-worker] [--mlops build/mlops]

--smoke: 1 s wrk runs, no warm-up, one start-up; targets printed but never enforced.
--check: exit 1 when a target is missed (without it the table is only printed).
--json: one JSON document with every row on stdout; the table goes to stderr.
--device cuda: the same table with the worker on CUDA (nginx and the start-up baseline as well).
Errors (the worker answering non-2xx, socket errors, a process that does not start) always fail.
Without wrk or nginx it is skipped with exit code 77 (ctest's SKIP_RETURN_CODE)."""
import argparse
import http.client
import json
import os
import pathlib
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.parse
from dataclasses import dataclass

HERE = pathlib.Path(__file__).resolve().parent
ROOT = HERE.parent.parent
MLP = ROOT / "tests" / "fixtures" / "models" / "mlp.onnx"
MLP_REQUEST = {"inputs": [{"name": "features", "datatype": "FP32", "shape": [1, 4], "data": [1, 2, 3, 4]}]}
WIDE_LAYERS = (256, 2048, 2048, 16)
SKIP = 77


class BenchError(Exception):
    """A failure that makes the numbers meaningless: reported, then the script exits 1."""


# Processes ----------------------------------------------------------------------------------------

class Processes:
    """Everything this script starts, stopped on the way out: SIGTERM, a grace period, SIGKILL.
    Services started through `mlops serve start` are stopped with `mlops serve stop`."""

    def __init__(self, mlops):
        self.mlops = mlops
        self.children = []
        self.services = {}  # name -> (project folder, the worker's pid once known)

    def start(self, command, log):
        with open(log, "wb") as out:
            child = subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT)
        self.children.append(child)
        return child

    def stop(self, child, grace=10):
        if child.poll() is None:
            child.send_signal(signal.SIGTERM)
            try:
                child.wait(grace)
            except subprocess.TimeoutExpired:
                child.kill()
                child.wait()
        self.children.remove(child)

    def close(self):
        for name, (project, pid) in list(self.services.items()):
            # Best effort: a start that failed or was interrupted may have left nothing to stop.
            try:
                stopped = subprocess.run([str(self.mlops), "serve", "stop", name], cwd=project, capture_output=True,
                                         timeout=60).returncode == 0
            except subprocess.TimeoutExpired:
                stopped = False
            if not stopped and pid:
                print(f"serve.py: warning: mlops serve stop {name} failed; sending SIGTERM to {pid}", file=sys.stderr)
                try:
                    os.kill(pid, signal.SIGTERM)
                except ProcessLookupError:
                    pass
            del self.services[name]
        for child in list(self.children):
            self.stop(child)


def free_port():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def request(url, method="GET", body=None, timeout=10.0):
    """(status, body bytes); raises OSError while nothing listens."""
    parts = urllib.parse.urlsplit(url)
    connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=timeout)
    try:
        headers = {"Content-Type": "application/json"} if body is not None else {}
        connection.request(method, parts.path, body=body, headers=headers)
        response = connection.getresponse()
        return response.status, response.read()
    finally:
        connection.close()


def wait_until(ready, child, log, what, timeout=60.0, pause=0.001):
    """Polls ready() until it is true; fails with the log's tail if the child exits or time is up."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if child.poll() is not None:
            raise BenchError(f"{what} exited with {child.returncode}:\n{tail(log)}")
        try:
            if ready():
                return
        except OSError:
            pass
        time.sleep(pause)
    raise BenchError(f"{what} was not ready after {timeout:g} s:\n{tail(log)}")


def tail(path, lines=20):
    text = pathlib.Path(path).read_text(errors="replace").splitlines()
    return "\n".join(text[-lines:])


@dataclass
class Server:
    process: subprocess.Popen
    url: str


def start_worker(processes, worker, folder, name, model, device, extra=()):
    """`mlops-worker serve` on a free port; returns once /v2/health/ready answers 200."""
    port_file = folder / f"{name}.port"
    port_file.unlink(missing_ok=True)
    log = folder / f"{name}.log"
    argv = [str(worker), "serve", "--model", f"{name}={model}", "--port", "0", "--port-file", str(port_file),
            "--device", device, *extra]
    return start_until_ready(processes, argv, port_file, log, f"mlops-worker serve {name}")


def start_until_ready(processes, argv, port_file, log, what):
    """Starts a worker (serve or route mode) that writes its port to `port_file`; returns once its
    /v2/health/ready answers 200."""
    child = processes.start(argv, log)
    url = None

    def ready():
        nonlocal url
        if url is None:
            port = port_file.read_text().strip() if port_file.exists() else ""
            if not port:
                return False
            url = f"http://127.0.0.1:{port}"
        return request(f"{url}/v2/health/ready", timeout=2)[0] == 200
    wait_until(ready, child, log, what)
    return Server(child, url)


# Every nginx the benchmarks start: in the foreground, its files in its own folder, no access log.
# {site} is its server (and upstream) blocks.
NGINX_CONF = """daemon off;
worker_processes {workers};
pid {dir}/nginx.pid;
error_log {dir}/error.log warn;
events {{ worker_connections 1024; }}
http {{
  access_log off;
  default_type application/json;
  # The worker keeps a connection for 100000 requests; nginx's default (1000) would make wrk
  # reconnect and charge the baseline for it.
  keepalive_requests 100000;
  client_body_temp_path {dir}/client_body;
  proxy_temp_path {dir}/proxy;
  fastcgi_temp_path {dir}/fastcgi;
  uwsgi_temp_path {dir}/uwsgi;
  scgi_temp_path {dir}/scgi;
{site}
}}
"""


def start_nginx(processes, nginx, folder, site, probe="/"):
    """nginx in the foreground from a config in `folder`/nginx serving `site` (nginx blocks, where
    PORT stands for the port it listens on); returns once `probe` (a path) answers 200."""
    home = folder / "nginx"
    home.mkdir(parents=True, exist_ok=True)
    port = free_port()
    conf = home / "nginx.conf"
    conf.write_text(NGINX_CONF.format(workers=os.cpu_count(), dir=home, site=site.replace("PORT", str(port))))
    log = folder / "nginx.log"
    child = processes.start([nginx, "-p", str(home), "-c", str(conf), "-e", str(home / "error.log")], log)
    url = f"http://127.0.0.1:{port}"
    wait_until(lambda: request(url + probe, timeout=2)[0] == 200, child, log, "nginx")
    return Server(child, url)


def start_nginx_answering(processes, nginx, folder, body_bytes):
    """nginx answering any request with 200 and a body of `body_bytes` bytes (the worker's answer
    is as long)."""
    body = "x" * body_bytes
    return start_nginx(processes, nginx, folder, f"""  server {{
    listen 127.0.0.1:PORT;
    location / {{ return 200 '{body}'; }}
  }}""")


def batch_size_totals(url):
    """(rows, requests) so far: mlops_inference_batch_size_sum and _count over every model."""
    status, body = request(f"{url}/metrics")
    if status != 200:
        raise BenchError(f"GET {url}/metrics answered {status}")
    totals = {"sum": 0.0, "count": 0.0}
    for line in body.decode().splitlines():
        found = re.match(r"mlops_inference_batch_size_(sum|count)(?:\{[^}]*\})?\s+(\S+)", line)
        if found:
            totals[found.group(1)] += float(found.group(2))
    return totals["sum"], totals["count"]


# wrk ----------------------------------------------------------------------------------------------

@dataclass
class WrkResult:
    rate: float
    p50_ms: float
    p99_ms: float
    requests: int
    errors: str  # empty when wrk saw only 2xx answers and no socket errors


UNITS_MS = {"us": 1e-3, "ms": 1.0, "s": 1e3, "m": 60e3, "h": 3600e3}


def parse_wrk(output):
    def number(pattern):
        found = re.search(pattern, output, re.MULTILINE)
        if not found:
            raise BenchError(f"no {pattern!r} in wrk's output:\n{output}")
        return found.groups()

    def latency(percent):
        value, unit = number(rf"^\s*{percent}%\s+([\d.]+)(us|ms|s|m|h)\s*$")
        return float(value) * UNITS_MS[unit]
    errors = []
    socket_errors = re.search(r"Socket errors: (.*)", output)
    if socket_errors:
        errors.append(f"socket errors: {socket_errors.group(1).strip()}")
    status = re.search(r"Non-2xx or 3xx responses: (\d+)", output)
    if status:
        errors.append(f"{status.group(1)} answers with status >= 400")
    return WrkResult(float(number(r"Requests/sec:\s+([\d.]+)")[0]), latency(50), latency(99),
                     int(number(r"(\d+) requests in")[0]), "; ".join(errors))


def run_wrk(args, url, body, connections, duration, must_succeed):
    """wrk -t min(2, C) -c C -d D --latency with a Lua script that POSTs `body` as JSON."""
    script = args.folder / "post.lua"
    script.write_text('wrk.method = "POST"\nwrk.headers["Content-Type"] = "application/json"\n'
                      f"wrk.body = [==[{json.dumps(body)}]==]\n")
    command = [args.wrk, "-t", str(min(2, connections)), "-c", str(connections), "-d", f"{duration}s",
               "--timeout", "10s", "--latency", "-s", str(script), url]
    done = subprocess.run(command, capture_output=True, text=True, timeout=duration + 60)
    if done.returncode != 0:
        raise BenchError(f"{' '.join(command)} failed ({done.returncode}): {done.stderr.strip()}")
    result = parse_wrk(done.stdout)
    if result.errors and must_succeed:
        raise BenchError(f"wrk against {url} at c={connections}: {result.errors}\n{done.stdout}")
    if result.errors:
        print(f"serve.py: warning: wrk against {url} at c={connections}: {result.errors}", file=sys.stderr)
    return result


def measure(args, url, body, connections, must_succeed=True):
    if args.warmup:
        run_wrk(args, url, body, connections, args.warmup, must_succeed)
    return run_wrk(args, url, body, connections, args.duration, must_succeed)


# Table --------------------------------------------------------------------------------------------

class Table:
    """Rows of (what, value, baseline): ratio = value / baseline; a target is a bound on the ratio,
    or with `absolute` on the value itself."""

    def __init__(self, out):
        self.out = out
        self.rows = []
        self.missed = []

    def header(self):
        print(f"{'contender':<30} {'mlops':>10} {'unit':<5} {'baseline':<14} {'value':>10} {'ratio':>7}  target",
              file=self.out)

    def row(self, what, unit, value, baseline_name, baseline, target=None, higher_is_better=False, absolute=False):
        ratio = value / baseline if baseline else None
        met, text = None, ""
        if target is not None:
            checked = value if absolute else ratio
            met = checked >= target if higher_is_better else (checked < target if absolute else checked <= target)
            bound = (">= " if higher_is_better else ("< " if absolute else "<= ")) + \
                (f"{target:g} {unit}" if absolute else f"{target:g}x")
            text = f"{'ok' if met else 'MISSED'} ({bound})"
            if not met:
                self.missed.append(what)
        digits = 0 if unit == "req/s" else (1 if unit == "rows" else 3)
        shown_base = f"{baseline:>10.{digits}f}" if baseline is not None else f"{'':>10}"
        shown_ratio = f"{ratio:>6.2f}x" if ratio is not None else f"{'':>7}"
        print(f"{what:<30} {value:>10.{digits}f} {unit:<5} {baseline_name:<14} {shown_base} {shown_ratio}  {text}",
              file=self.out, flush=True)
        self.rows.append({"name": what, "unit": unit, "value": value, "baseline": baseline_name,
                          "baseline_value": baseline, "ratio": ratio, "target": text or None, "met": met})


# The three benchmarks -----------------------------------------------------------------------------

def http_floor(args, processes, table):
    worker = start_worker(processes, args.worker, args.folder, "mlp", MLP, args.device)
    url = f"{worker.url}/v2/models/mlp/infer"
    status, answer = request(url, "POST", json.dumps(MLP_REQUEST))
    if status != 200:
        raise BenchError(f"POST {url} answered {status}: {answer[:500]!r}")
    nginx = start_nginx_answering(processes, args.nginx, args.folder, len(answer))
    status, floor = request(f"{nginx.url}/v2/models/mlp/infer", "POST", json.dumps(MLP_REQUEST))
    if status != 200 or len(floor) != len(answer):
        raise BenchError(f"nginx answered {status} with {len(floor)} bytes, not 200 with {len(answer)}")
    for connections in (1, 16, 64):
        theirs = measure(args, f"{nginx.url}/v2/models/mlp/infer", MLP_REQUEST, connections, must_succeed=False)
        ours = measure(args, url, MLP_REQUEST, connections)
        c = f"c={connections}"
        table.row(f"mlp {c} throughput", "req/s", ours.rate, "nginx", theirs.rate,
                  target=0.5 if connections == 64 else None, higher_is_better=True)
        table.row(f"mlp {c} p50 latency", "ms", ours.p50_ms, "nginx", theirs.p50_ms,
                  target=2.0 if connections == 1 else None)
        table.row(f"mlp {c} p99 latency", "ms", ours.p99_ms, "nginx", theirs.p99_ms)
    processes.stop(worker.process)
    processes.stop(nginx.process)


def save_wide_mlp(path):
    """Gemm+Relu layers of WIDE_LAYERS with random float32 weights and a symbolic batch."""
    import numpy as np
    import onnx
    from onnx import TensorProto, helper, numpy_helper
    rng = np.random.default_rng(0)
    nodes, weights, source = [], [], "features"
    layers = list(zip(WIDE_LAYERS, WIDE_LAYERS[1:]))
    for i, (inputs, outputs) in enumerate(layers):
        weights += [numpy_helper.from_array((rng.standard_normal((inputs, outputs)) / np.sqrt(inputs))
                                            .astype(np.float32), f"w{i}"),
                    numpy_helper.from_array(np.zeros(outputs, np.float32), f"b{i}")]
        last = i == len(layers) - 1
        nodes.append(helper.make_node("Gemm", [source, f"w{i}", f"b{i}"], ["scores" if last else f"gemm{i}"]))
        if not last:
            nodes.append(helper.make_node("Relu", [f"gemm{i}"], [f"relu{i}"]))
            source = f"relu{i}"
    graph = helper.make_graph(
        nodes, "wide", [helper.make_tensor_value_info("features", TensorProto.FLOAT, ["batch", WIDE_LAYERS[0]])],
        [helper.make_tensor_value_info("scores", TensorProto.FLOAT, ["batch", WIDE_LAYERS[-1]])], weights)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    onnx.save(model, str(path))
    row = [round(float(x), 3) for x in np.random.default_rng(1).standard_normal(WIDE_LAYERS[0])]
    return {"inputs": [{"name": "features", "datatype": "FP32", "shape": [1, WIDE_LAYERS[0]], "data": row}]}


def batching(args, processes, table):
    path = args.folder / "wide.onnx"
    body = save_wide_mlp(path)
    results = {}
    for max_batch in (64, 1):
        worker = start_worker(processes, args.worker, args.folder, "wide", path, args.device,
                              ["--max-batch", str(max_batch)])
        url = f"{worker.url}/v2/models/wide/infer"
        if args.warmup:
            run_wrk(args, url, body, 64, args.warmup, must_succeed=True)
        rows, requests = batch_size_totals(worker.url)
        result = run_wrk(args, url, body, 64, args.duration, must_succeed=True)
        rows_after, requests_after = batch_size_totals(worker.url)
        served = requests_after - requests
        results[max_batch] = (result, (rows_after - rows) / served if served else 0.0)
        processes.stop(worker.process)
    (ours, ours_batch), (theirs, theirs_batch) = results[64], results[1]
    table.row("wide c=64 throughput", "req/s", ours.rate, "max-batch 1", theirs.rate, target=2.0, higher_is_better=True)
    table.row("wide c=64 p50 latency", "ms", ours.p50_ms, "max-batch 1", theirs.p50_ms)
    table.row("wide c=64 mean batch", "rows", ours_batch, "max-batch 1", theirs_batch)


def direct_start_ms(args, processes):
    """The worker started by hand and polled until /v2/health/ready: the floor for `serve start`."""
    start = time.perf_counter()
    worker = start_worker(processes, args.worker, args.folder, "mlp", MLP, args.device)
    elapsed = (time.perf_counter() - start) * 1000
    processes.stop(worker.process)
    return elapsed


def mlops(args, project, *command, timeout=120):
    """Runs the control plane with this benchmark's worker. Interrupted, it lets the command finish
    first: killed halfway, `serve start` could leave a worker that no record names."""
    environment = dict(os.environ, MLOPS_WORKER=str(args.worker), NO_COLOR="1")
    child = subprocess.Popen([str(args.mlops), *command], cwd=project, env=environment, stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True)
    try:
        stdout, stderr = child.communicate(timeout=timeout)
    except BaseException:
        child.communicate(timeout=timeout)
        raise
    return subprocess.CompletedProcess(child.args, child.returncode, stdout, stderr)


def serve_start_available(args):
    done = subprocess.run([str(args.mlops), "serve", "start", "--help"], capture_output=True, text=True)
    return done.returncode == 0 and "Usage: mlops serve start" in done.stdout


def serve_start_ms(args, processes, project, service):
    """(wall ms of `mlops serve start mlp@1`, the ready_ms it reports); stops the service."""
    processes.services[service] = (project, None)
    start = time.perf_counter()
    done = mlops(args, project, "serve", "start", "mlp@1", "--name", service, "--device", args.device, "--json")
    wall = (time.perf_counter() - start) * 1000
    if done.returncode != 0:
        raise BenchError(f"mlops serve start mlp@1 failed ({done.returncode}): {done.stderr.strip()}")
    started = json.loads(done.stdout)
    processes.services[service] = (project, int(started["pid"]))
    status = request(f"http://127.0.0.1:{started['port']}/v2/health/ready")[0]
    if status != 200:
        raise BenchError(f"mlops serve start returned but {started['url']} answers {status} on /v2/health/ready")
    stopped = mlops(args, project, "serve", "stop", service)
    if stopped.returncode != 0:
        raise BenchError(f"mlops serve stop {service} failed ({stopped.returncode}): {stopped.stderr.strip()}")
    del processes.services[service]
    return wall, float(started["ready_ms"])


def start_up(args, processes, table):
    repeats = 1 if args.smoke else 5
    direct = statistics.median(direct_start_ms(args, processes) for _ in range(repeats))
    if not serve_start_available(args):
        print(f"serve.py: {args.mlops} has no `serve start` yet: its row is skipped", file=table.out)
        table.row("worker start to ready", "ms", direct, "", None)
        return
    project = args.folder / "project"
    for command in (["init", str(project)], ["model", "register", "mlp", str(MLP)]):
        done = mlops(args, project.parent if command[0] == "init" else project, *command)
        if done.returncode != 0:
            raise BenchError(f"mlops {' '.join(command)} failed ({done.returncode}): {done.stderr.strip()}")
    runs = [serve_start_ms(args, processes, project, f"bench-serve-{os.getpid()}-{i}") for i in range(repeats)]
    table.row("mlops serve start to ready", "ms", statistics.median(wall for wall, _ in runs), "worker direct", direct,
              target=300.0, absolute=True)
    table.row("mlops serve start ready_ms", "ms", statistics.median(ready for _, ready in runs), "worker direct",
              direct)


# Main ---------------------------------------------------------------------------------------------

def parse_args():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--smoke", action="store_true")
    parser.add_argument("--check", action="store_true", help="exit 1 when a target is missed (not with --smoke)")
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--duration", type=int, help="seconds per wrk run (default 10, smoke 1)")
    parser.add_argument("--device", choices=["cpu", "cuda"], default="cpu")
    parser.add_argument("--worker", default=str(ROOT / "build" / "mlops-worker"))
    parser.add_argument("--mlops", default=str(ROOT / "build" / "mlops"))
    args = parser.parse_args()
    args.worker = pathlib.Path(args.worker).resolve()
    args.mlops = pathlib.Path(args.mlops).resolve()
    if args.duration is None:
        args.duration = 1 if args.smoke else 10
    args.duration = max(1, args.duration)  # wrk takes whole seconds
    args.warmup = 0 if args.smoke else min(2, max(1, args.duration // 5))
    find_tools(args)
    return args


def find_tools(args):
    """args.wrk and args.nginx (which lives in /usr/sbin, off a user's PATH)."""
    args.wrk = shutil.which("wrk")
    args.nginx = shutil.which("nginx", path=os.environ.get("PATH", "") + ":/usr/sbin:/sbin")


def start_or_skip(script, args):
    """Exits 77 (skipped) without wrk or nginx; makes SIGTERM (ctest's timeout, a cancelled CI job)
    unwind like Ctrl-C, so that every finally runs."""
    for tool, found in (("wrk", args.wrk), ("nginx", args.nginx)):
        if not found:
            print(f"{script}: {tool} is missing (Debian: apt-get install {tool}): skipped", file=sys.stderr)
            sys.exit(SKIP)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(128 + signal.SIGTERM))


def main():
    args = parse_args()
    start_or_skip("serve.py", args)
    table = Table(sys.stderr if args.json else sys.stdout)
    processes = Processes(args.mlops)
    try:
        with tempfile.TemporaryDirectory(prefix="mlops-bench-serve.") as temp:
            args.folder = pathlib.Path(temp)
            print(f"serve benchmark on {os.cpu_count()} cores, worker on {args.device}, {args.duration} s wrk runs"
                  f"{' (smoke: targets not enforced)' if args.smoke else ''}; ratio is mlops/baseline", file=table.out)
            table.header()
            try:
                http_floor(args, processes, table)
                batching(args, processes, table)
                start_up(args, processes, table)
            finally:
                processes.close()
    except BenchError as error:
        sys.exit(f"serve.py: error: {error}")
    except KeyboardInterrupt:
        sys.exit("serve.py: interrupted; every process it started is stopped")
    if args.json:
        json.dump({"device": args.device, "cores": os.cpu_count(), "duration_s": args.duration, "smoke": args.smoke,
                   "rows": table.rows, "missed": table.missed}, sys.stdout, indent=2)
        print()
    if table.missed and args.check and not args.smoke:
        sys.exit(f"serve.py: missed targets: {', '.join(table.missed)}")


if __name__ == "__main__":
    main()
