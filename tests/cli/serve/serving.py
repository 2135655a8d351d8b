"""Helpers shared by the serving tests (test_worker_http, test_router, test_serve, test_deploy); not a
test module itself. It holds:

- the model fixtures: MODELS, TORCH, DATA_SETS, SIGNATURES; load() gives PyTorch's inputs and
  outputs, request_for() an Open Inference Protocol request, output_array() an answer's output;
- a `mlops-worker` seen as an HTTP client sees it: WORKER, INFER, Reply, Metrics, Worker, launch(),
  start_worker(), error_of();
- a project that runs `mlops` (Project, checked()), the processes it leaves (running(),
  processes_in()), and wait_for() to poll for a condition.

A helper that only one test module uses stays in that module."""

from __future__ import annotations

import http.client
import json
import os
import re
import signal
import socket
import sqlite3
import subprocess
import time
from pathlib import Path
from typing import NamedTuple

import numpy as np
import onnx
from onnx import numpy_helper

from conftest import (BIN, BUILD_DIR, SCHEMA_DIR, SOURCE_DIR, Result, clean_env, expect_error, parse_one_document,
                      validate_document)

WORKER = (BUILD_DIR / "mlops-worker").resolve()
MODELS = SOURCE_DIR / "tests" / "fixtures" / "models"
TORCH = MODELS / "torch"
DATA_SETS = {1: "test_data_set_0", 7: "test_data_set_1"}  # make_models.py's batch sizes
SIGNATURES = {  # input name and shape, output name and shape, as the metadata gives them
    "mlp": ("features", [-1, 4], "probabilities", [-1, 3]),
    "cnn": ("image", [-1, 1, 8, 8], "logits", [-1, 2]),
}
INFER = "/v2/models/mlp/infer"


# Requests and answers -------------------------------------------------------------------------------


def load(case: str, batch: int, which: str) -> np.ndarray:
    """What PyTorch fed model `case` (which="input") or computed (which="output") at batch 1 or 7."""
    return numpy_helper.to_array(onnx.load_tensor(str(TORCH / case / DATA_SETS[batch] / f"{which}_0.pb")))


def request_for(case: str, array: np.ndarray, flat: bool = False, **extra) -> dict:
    """An inference request giving `array` to model `case`'s input (`flat`: the data as one list)."""
    data = array.reshape(-1).tolist() if flat else array.tolist()
    tensor = {"name": SIGNATURES[case][0], "datatype": "FP32", "shape": list(array.shape), "data": data}
    return {"inputs": [tensor], **extra}


def output_array(document: dict, index: int = 0) -> np.ndarray:
    output = document["outputs"][index]
    assert output["datatype"] == "FP32", output
    return np.array(output["data"], dtype=np.float32).reshape(output["shape"])


# The worker -----------------------------------------------------------------------------------------


class Reply(NamedTuple):
    status: int
    headers: dict[str, str]  # lower-case names
    body: bytes

    def json(self):
        return json.loads(self.body)


def error_of(reply: Reply, status: int, *needles: str):
    """The reply has `status` and a JSON {"error": message} naming every needle."""
    assert reply.status == status, f"expected {status}, got {reply}"
    assert reply.headers.get("content-type") == "application/json", reply.headers
    document = reply.json()
    assert list(document) == ["error"] and document["error"], document
    for needle in needles:
        assert needle in document["error"], f"{document['error']!r} does not mention {needle!r}"


class Metrics:
    """A /metrics page: samples by name and labels, and the # TYPE of each family."""

    LINE = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$')

    def __init__(self, text: str):
        self.text, self.types, self.samples = text, {}, []
        for line in text.splitlines():
            if line.startswith("# TYPE "):
                _, _, name, kind = line.split(" ")
                self.types[name] = kind
            elif line and not line.startswith("#"):
                match = self.LINE.match(line)
                assert match, f"not a Prometheus sample line: {line!r}"
                labels = dict(re.findall(r'(\w+)="((?:[^"\\]|\\.)*)"', match[2] or ""))
                self.samples.append((match[1], labels, float(match[3])))

    def value(self, name: str, **labels) -> float:
        found = [v for n, l, v in self.samples if n == name and all(l.get(k) == w for k, w in labels.items())]
        assert len(found) == 1, f"{name}{labels}: {len(found)} samples\n{self.text}"
        return found[0]

    def responses(self, code: str) -> float:
        """mlops_worker_http_responses_total of one status code (absent until there is one)."""
        found = [v for n, l, v in self.samples if n == "mlops_worker_http_responses_total" and l["code"] == code]
        return found[0] if found else 0.0

    def buckets(self, family: str, **labels) -> list[tuple[float, float]]:
        """(upper bound, cumulative count) of a histogram, in page order."""
        return [(float(l["le"]), v) for n, l, v in self.samples
                if n == f"{family}_bucket" and all(l.get(k) == w for k, w in labels.items())]


class Worker:
    """One `mlops-worker serve` process on a free port; its stderr goes to a file."""

    def __init__(self, process: subprocess.Popen, port: int, port_file: Path, log: Path):
        self.process, self.port, self.port_file, self.log_path = process, port, port_file, log

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def connection(self, timeout: float = 10) -> http.client.HTTPConnection:
        return http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)

    def call(self, method: str, path: str, body: bytes | str | None = None, headers: dict | None = None,
             connection: http.client.HTTPConnection | None = None) -> Reply:
        """One request, on `connection` (kept alive) or a new connection."""
        own = connection or self.connection()
        try:
            own.request(method, path, body=body, headers=headers or {})
            response = own.getresponse()
            return Reply(response.status, {k.lower(): v for k, v in response.getheaders()}, response.read())
        finally:
            if connection is None:
                own.close()

    def get(self, path: str, **kwargs) -> Reply:
        return self.call("GET", path, **kwargs)

    def infer(self, body, path: str = INFER, **kwargs) -> Reply:
        return self.call("POST", path, body=body if isinstance(body, (bytes, str)) else json.dumps(body), **kwargs)

    def metrics(self) -> Metrics:
        reply = self.get("/metrics")
        assert reply.status == 200 and reply.headers["content-type"].startswith("text/plain"), reply
        return Metrics(reply.body.decode())

    def assert_answers(self):
        """The worker is alive and still computes the right answer."""
        assert self.process.poll() is None, f"the worker died (exit {self.process.returncode}):\n{self.log()}"
        inputs = load("mlp", 1, "input")
        reply = self.infer(request_for("mlp", inputs))
        assert reply.status == 200, reply
        np.testing.assert_allclose(output_array(reply.json()), load("mlp", 1, "output"), atol=1e-5, rtol=0)

    def stop(self) -> int:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                return self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
        return self.process.wait()


def launch(directory: Path, *args, cwd: Path | None = None, name: str = "worker") -> subprocess.Popen:
    """`mlops-worker serve --device cpu ARGS`, its stderr in DIRECTORY/NAME.log; not waited for."""
    assert WORKER.is_file(), f"mlops-worker not found at {WORKER}: build it, or set MLOPS_BUILD_DIR"
    with open(directory / f"{name}.log", "wb") as log:
        return subprocess.Popen([str(WORKER), "serve", "--device", "cpu", *map(str, args)], cwd=cwd or directory,
                                env=clean_env(), stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=log)


def start_worker(directory: Path, *args, cwd: Path | None = None, models=("mlp",)) -> Worker:
    """A worker serving `models` (fixture names) plus `args`, once /v2/health/ready says 200."""
    directory.mkdir(parents=True, exist_ok=True)
    name = f"worker-{len(list(directory.glob('worker-*.log')))}"
    port_file = directory / f"{name}.port"
    model_args = [arg for model in models for arg in ("--model", f"{model}={MODELS / model}.onnx")]
    process = launch(directory, "--port", "0", "--port-file", port_file, *model_args, *args, cwd=cwd, name=name)
    return wait_until_answering(Worker(process, 0, port_file, directory / f"{name}.log"), "/v2/health/ready", 20)


def wait_until_answering(worker: Worker, path: str, seconds: float) -> Worker:
    """`worker` (a Worker, or a subclass for another mode) once it has written its port file and
    GET `path` answers 200; stopped, with its log in the error, when it exits or is late."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if worker.process.poll() is not None:
            raise AssertionError(f"{worker.process.args[1]} exited {worker.process.returncode} while starting:\n"
                                 f"{worker.log()}")
        if worker.port == 0 and worker.port_file.is_file() and worker.port_file.read_text().endswith("\n"):
            worker.port = int(worker.port_file.read_text())
        if worker.port:
            try:
                if worker.get(path).status == 200:
                    return worker
            except OSError:
                pass
        time.sleep(0.01)
    worker.stop()
    raise AssertionError(f"{worker.process.args[1]} did not answer {path} within {seconds} s:\n{worker.log()}")


# Processes ------------------------------------------------------------------------------------------


def wait_for(condition, what: str, seconds: float = 5):
    """Polls `condition` until it holds; fails naming `what` after `seconds`."""
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, f"{what}: not within {seconds} s"
        time.sleep(0.02)


def running(pid: int) -> bool:
    """The process exists and is not a zombie (the container's init may reap late)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def processes_in(directory: Path) -> list[int]:
    """Live processes whose working directory is `directory` or below: workers and fake workers."""
    root = os.path.realpath(directory)
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit() or int(entry) == os.getpid():
            continue
        try:
            cwd = os.readlink(f"/proc/{entry}/cwd")
        except OSError:
            continue
        if (cwd == root or cwd.startswith(root + "/")) and running(int(entry)):
            found.append(int(entry))
    return found


# The project ----------------------------------------------------------------------------------------


def checked(document: dict, schema: str | None) -> dict:
    """Validated against schemas/json/SCHEMA.schema.json when that schema exists (serve's are new)."""
    if schema and (SCHEMA_DIR / f"{schema}.schema.json").is_file():
        validate_document(document, schema)
    return document


class Project:
    """A project with a home; runs `mlops` in it."""

    def __init__(self, path: Path):
        self.path = path
        self.db = path / ".mlops" / "mlops.db"

    def run(self, *args, env: dict | None = None, stdin: str | None = None, timeout: float = 60) -> Result:
        done = subprocess.run([str(BIN), *map(str, args)], cwd=self.path, env=clean_env(env), input=stdin,
                              stdin=None if stdin is not None else subprocess.DEVNULL, capture_output=True,
                              text=True, timeout=timeout)
        return Result(done.returncode, done.stdout, done.stderr)

    def ok(self, *args, **kwargs) -> str:
        result = self.run(*args, **kwargs)
        assert result.returncode == 0, f"mlops {' '.join(map(str, args))}: {result}"
        return result.stdout

    def doc(self, *args, schema: str | None = None, **kwargs) -> dict:
        """The --json document of a command that succeeds, checked against its schema when there is one."""
        return checked(parse_one_document(self.ok("--json", *args, **kwargs)), schema)

    def fails(self, exit_code: int, *args, needles=(), **kwargs) -> str:
        """The command fails with exit_code, naming every needle, in the human and the --json form."""
        message = expect_error(self.run(*args, **kwargs), exit_code, *needles)
        result = self.run("--json", *args, **kwargs)
        assert result.returncode == exit_code, result
        error = checked(parse_one_document(result.stdout), "error")["error"]
        assert error["exit_code"] == exit_code and error["message"] in message, (error, message)
        return message

    def start(self, *args, **kwargs) -> dict:
        """`serve start --json ARGS`: the service, checked to be live."""
        started = self.doc("serve", "start", *args, schema="serve-start", **kwargs)
        assert running(started["pid"]), started
        return started

    def rows(self) -> list[tuple]:
        """(name, pid) of every row of the services table."""
        connection = sqlite3.connect(f"file:{self.db}?mode=ro", uri=True)
        try:
            return connection.execute("SELECT name, pid FROM services ORDER BY name").fetchall()
        finally:
            connection.close()

    def states(self) -> dict[str, str]:
        document = self.doc("serve", "ls", schema="serve-ls")
        return {service["service"]: service["state"] for service in document["services"]}

    def write(self, name: str, content) -> Path:
        path = self.path / name
        path.write_text(content if isinstance(content, str) else json.dumps(content))
        return path


def sigterm_closes_the_port_at_once(process, port: int):
    """Sends SIGTERM and waits until new connections to `port` are refused (within 0.5 s)."""
    process.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + 0.5
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
        except (ConnectionRefusedError, ConnectionResetError):  # reset: caught as the port closed
            return
        assert time.monotonic() < deadline, "new connections still accepted 0.5 s after SIGTERM"
        time.sleep(0.01)
