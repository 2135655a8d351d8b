"""`mlops serve`: registered model versions served on the bundled worker, seen by a user. Each test
works in its own project with the PyTorch-exported MLP registered as mlp@1, starts real workers
(or fake ones through MLOPS_WORKER), talks to them with curl, urllib and `serve predict`, and
checks what a user notices: exit codes, messages that name the problem, the `services` table and
the processes left afterwards. Every service a test starts is stopped by the fixture, and any
process still working in the project is killed.

Exit codes: 0 ok, 1 failure, 2 usage, 3 not found, 4 conflict, 7 worker unhealthy."""

from __future__ import annotations

import json
import os
import queue
import re
import signal
import socket
import subprocess
import threading
import time
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest

from conftest import BIN, clean_env, expect_error, make_home, parse_one_document
from serving import (MODELS, TORCH, Metrics, Project, checked, load, output_array, processes_in, request_for, running,
                     wait_for)

MLP = TORCH / "mlp" / "model.onnx"
INFER_PATH = "/v2/models/mlp/versions/1/infer"


# Data -----------------------------------------------------------------------------------------------


def output_of(document: dict) -> np.ndarray:
    """The MLP's one output, "probabilities"."""
    [output] = document["outputs"]
    assert output["name"] == "probabilities", output
    return output_array(document)


def assert_close(actual: np.ndarray, expected: np.ndarray):
    assert actual.shape == expected.shape, (actual.shape, expected.shape)
    np.testing.assert_allclose(actual, expected, atol=1e-5, rtol=0)


# HTTP -----------------------------------------------------------------------------------------------


def http(url: str, body: dict | None = None, timeout: float = 30) -> tuple[int, dict | str]:
    """(status, parsed JSON or text) of a GET, or of a POST of `body`."""
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(url, data=data, headers={"Content-Type": "application/json"} if data else {})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            status, text = response.status, response.read().decode()
    except urllib.error.HTTPError as error:
        status, text = error.code, error.read().decode()
    return status, json.loads(text) if text.startswith("{") else text


def metric(url: str, name: str, **labels) -> float:
    """One sample of the worker's /metrics page (0 when absent)."""
    status, text = http(url + "/metrics")
    assert status == 200, text
    found = [v for n, l, v in Metrics(text).samples if n == name and all(l.get(k) == w for k, w in labels.items())]
    return found[0] if found else 0.0


# The project ----------------------------------------------------------------------------------------


@pytest.fixture
def served(project):
    """A Project with mlp@1 registered; afterwards every service is stopped and nothing is left running."""
    make_home(project)
    served = Project(project)
    assert served.doc("model", "register", "mlp", MLP)["format"] == "onnx"
    yield served
    served.run("serve", "stop", "--all", "--timeout", "5s")
    for pid in processes_in(project):
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


def assert_nothing_left(served: Project):
    assert served.rows() == [], "the services table still has rows (name, pid)"
    assert served.states() == {}
    assert processes_in(served.path) == [], "a worker is still running"


def kill_worker(pid: int):
    os.kill(pid, signal.SIGKILL)
    wait_for(lambda: not running(pid), f"the death of pid {pid}", seconds=10)


# 1. End to end --------------------------------------------------------------------------------------


def test_a_pytorch_model_is_served_answered_counted_and_stopped(served):
    started = served.start("mlp@1", "--name", "scorer")
    assert (started["service"], started["model"], started["version"], started["ref"]) == ("scorer", "mlp", 1, "mlp@1")
    assert started["digest"].startswith("sha256:") and started["replaced"] is None
    assert started["url"] == f"http://127.0.0.1:{started['port']}" and started["port"] > 0
    assert started["max_batch"] == 64 and started["device"] == "auto"
    assert (served.path / ".mlops" / started["log"]).is_file()
    assert served.rows() == [("scorer", started["pid"])]
    url, sent = started["url"], 0

    # curl, as a user outside mlops would call it.
    for batch in (1, 7):
        body = served.write(f"request-{batch}.json", request_for("mlp", load("mlp", batch, "input"), flat=True))
        curl = subprocess.run(["curl", "-s", "-S", "-X", "POST", "-H", "Content-Type: application/json",
                               "--data-binary", f"@{body}", "-w", "\n%{http_code}", url + INFER_PATH],
                              capture_output=True, text=True, timeout=30)
        answer, status = curl.stdout.rsplit("\n", 1)
        assert (curl.returncode, status) == (0, "200"), curl
        assert_close(output_of(json.loads(answer)), load("mlp", batch, "output"))
        sent += 1

    # serve predict: rows for people, rows by NAME@REF for scripts, a whole request on stdin, one row.
    rows = served.write("rows.json", load("mlp", 7, "input").tolist())
    human = served.ok("serve", "predict", "scorer", "--input", rows).splitlines()
    assert human[0] == "probabilities (FP32 [7,3])" and len(human) == 8, human
    assert_close(np.array([[float(x) for x in line.split()] for line in human[1:]], dtype=np.float32),
                 load("mlp", 7, "output"))
    by_ref = served.doc("serve", "predict", "mlp@1", "--input", rows, schema="serve-predict")
    assert (by_ref["model_name"], by_ref["model_version"]) == ("mlp", "1")
    assert_close(output_of(by_ref), load("mlp", 7, "output"))
    whole = served.doc("serve", "predict", "scorer", "--input", "-",
                       stdin=json.dumps(request_for("mlp", load("mlp", 1, "input"), flat=True)))
    assert_close(output_of(whole), load("mlp", 1, "output"))
    one_row = served.write("row.json", load("mlp", 1, "input")[0].tolist())
    assert_close(output_of(served.doc("serve", "predict", "scorer", "--input", one_row)), load("mlp", 1, "output"))
    sent += 4

    labels = {"model": "mlp", "version": "1"}
    assert metric(url, "mlops_inference_requests_total", outcome="success", **labels) == sent
    assert metric(url, "mlops_inference_requests_total", outcome="failure", **labels) == 0
    status = served.doc("serve", "status", "scorer", schema="serve-status")
    assert status["state"] == "ready" and status["pid"] == started["pid"]
    assert status["requests"] == {"success": sent, "failure": 0, "in_flight": 0}
    assert re.match(r"(cpu|cuda)", status["worker_device"]), status
    shown = served.ok("serve", "status", "scorer")
    assert re.search(r"state: +ready", shown) and f"requests: {sent} succeeded, 0 failed, 0 in flight" in shown, shown

    stopped = served.doc("serve", "stop", "scorer", schema="serve-stop")["stopped"]
    assert [(s["service"], s["outcome"]) for s in stopped] == [("scorer", "stopped")]
    assert not running(started["pid"])
    assert "no services" in served.ok("serve", "ls")
    assert_nothing_left(served)


# 2. Batching ----------------------------------------------------------------------------------------


def test_concurrent_requests_are_batched_and_each_gets_its_own_rows(served):
    url = served.start("mlp@1", "--max-batch", "32", "--batch-delay-us", "2000", "--device", "cpu")["url"]
    inputs = [np.random.default_rng(size).standard_normal((size, 4)).astype(np.float32) for size in range(1, 17)]

    def infer(features: np.ndarray) -> np.ndarray:
        status, document = http(url + INFER_PATH, request_for("mlp", features, flat=True))
        assert status == 200, document
        return output_of(document)

    alone = [infer(features) for features in inputs]  # one at a time: nothing to batch with
    labels = {"model": "mlp", "version": "1"}
    requests_before = metric(url, "mlops_inference_batch_size_count", **labels)
    rows_before = metric(url, "mlops_inference_batch_size_sum", **labels)
    barrier = threading.Barrier(len(inputs))

    def together(features: np.ndarray) -> np.ndarray:
        barrier.wait()
        return infer(features)

    with ThreadPoolExecutor(len(inputs)) as pool:
        answers = list(pool.map(together, inputs))
    for features, answer, expected in zip(inputs, answers, alone):
        assert answer.shape == (len(features), 3)
        assert_close(answer, expected)
    # The histogram observes, per request, the rows of the batch it ran in: more than its own
    # rows once requests were merged.
    observed = metric(url, "mlops_inference_batch_size_count", **labels) - requests_before
    rows = metric(url, "mlops_inference_batch_size_sum", **labels) - rows_before
    assert observed == len(inputs)
    assert rows > sum(range(1, 17)), "16 concurrent requests each ran alone: nothing was merged"


# 3. Start refusals ----------------------------------------------------------------------------------


def test_start_refuses_archived_foreign_and_unknown_models_and_bad_names(served):
    served.ok("model", "register", "mlp", MODELS / "mlp.onnx")  # mlp@2
    served.ok("model", "archive", "mlp@1")
    served.fails(4, "serve", "start", "mlp@1", needles=("mlp@1 is archived", "mlops model restore mlp@1"))
    notes = served.write("notes.txt", "not a model\n")
    assert served.doc("model", "register", "notes", notes)["format"] == "unknown"
    served.fails(1, "serve", "start", "notes@1", needles=("notes@1 is not an ONNX model", "'unknown'"))
    served.fails(3, "serve", "start", "nope@1", needles=("no model named", "nope"))
    served.fails(3, "serve", "start", "mlp@9", needles=("no version 9",))
    served.fails(3, "serve", "start", "mlp@production", needles=("production",))
    for name in ("../escape", "has space", "-dash"):
        served.fails(2, "serve", "start", "mlp@2", "--name", name, needles=(f'service name "{name}" is not valid',))
    assert not (served.path / ".mlops" / "escape").exists()
    assert_nothing_left(served)


def test_a_live_service_keeps_its_name(served):
    first = served.start("mlp@1", "--name", "svc")
    message = served.fails(4, "serve", "start", "mlp@1", "--name", "svc",
                           needles=("'svc' is already running mlp@1", f"pid {first['pid']}", "mlops serve stop svc"))
    assert first["url"] in message
    assert served.rows() == [("svc", first["pid"])] and served.states() == {"svc": "ready"}
    status, answer = http(first["url"] + INFER_PATH, request_for("mlp", load("mlp", 1, "input"), flat=True))
    assert status == 200 and processes_in(served.path) == [first["pid"]]


def test_a_dead_service_of_the_same_name_is_replaced(served):
    first = served.start("mlp@1", "--name", "svc")
    kill_worker(first["pid"])
    human = served.ok("serve", "start", "mlp@1", "--name", "svc")
    assert f"forgot the service 'svc' of mlp@1: its worker (pid {first['pid']}) had died" in human, human
    assert "serving mlp@1 as 'svc'" in human
    [(_, second_pid)] = served.rows()
    kill_worker(second_pid)
    third = served.start("mlp@1", "--name", "svc")
    assert third["replaced"]["service"] == "svc" and third["replaced"]["pid"] == second_pid
    assert served.rows() == [("svc", third["pid"])] and served.states() == {"svc": "ready"}


def test_start_is_quick_and_reports_its_ready_time(served):
    begin = time.monotonic()
    started = served.start("mlp@1")
    elapsed_ms = (time.monotonic() - begin) * 1000
    assert elapsed_ms < 2000, f"serve start took {elapsed_ms:.0f} ms"
    assert 0 < started["ready_ms"] <= elapsed_ms and started["service"] == "mlp"


def test_start_passes_its_options_to_the_worker(served):
    started = served.start("mlp@1", "--name", "small", "--device", "cpu", "--threads", "1", "--max-batch", "1")
    assert (started["device"], started["max_batch"]) == ("cpu", 1)
    status = served.doc("serve", "status", "small", schema="serve-status")
    assert status["worker_device"].startswith("cpu (1 thread"), status
    status, metadata = http(started["url"] + "/v2/models/mlp/versions/1")
    assert status == 200 and metadata["parameters"]["max_batch_size"] == 0, metadata  # 1: batching off


def ipv6_loopback() -> bool:
    try:
        with socket.socket(socket.AF_INET6) as probe:
            probe.bind(("::1", 0))
        return True
    except OSError:
        return False


@pytest.mark.skipif(not ipv6_loopback(), reason="no IPv6 loopback here")
def test_a_service_on_an_ipv6_address_is_reachable(served):
    result = served.run("--json", "serve", "start", "mlp@1", "--host", "::1", "--ready-timeout", "3s")
    assert result.returncode == 0, f"serve start --host ::1 failed: {result}"
    started = checked(parse_one_document(result.stdout), "serve-start")
    assert started["url"] == f"http://[::1]:{started['port']}", started
    assert served.states() == {"mlp": "ready"}


# 4. Worker failures ---------------------------------------------------------------------------------


def test_a_port_in_use_fails_with_the_workers_reason_and_leaves_nothing(served):
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        port = listener.getsockname()[1]
        served.fails(7, "serve", "start", "mlp@1", "--port", port,
                     needles=("exited with status", "the end of its log", f"cannot listen on 127.0.0.1:{port}",
                              "port is in use"))
        assert_nothing_left(served)


def test_a_port_given_is_used_and_a_second_service_cannot_share_it(served):
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    first = served.start("mlp@1", "--name", "first", "--port", port)
    assert first["port"] == port and first["url"] == f"http://127.0.0.1:{port}"
    served.fails(7, "serve", "start", "mlp@1", "--name", "second", "--port", port,
                 needles=(f"cannot listen on 127.0.0.1:{port}",))
    assert served.rows() == [("first", first["pid"])] and served.states() == {"first": "ready"}


def fake_worker(served: Project, body: str) -> Path:
    script = served.path / "fake-worker.sh"
    script.write_text("#!/bin/sh\n" + body)
    script.chmod(0o755)
    return script


def test_a_worker_that_exits_at_once_is_reported_with_its_log(served):
    script = fake_worker(served, 'echo "fake-worker: the model file is corrupt"\nexit 3\n')
    message = served.fails(7, "serve", "start", "mlp@1", env={"MLOPS_WORKER": str(script)},
                           needles=("exited with status 3 before it was ready",))
    assert message.rstrip().endswith("fake-worker: the model file is corrupt"), message
    assert_nothing_left(served)
    served.fails(7, "serve", "start", "mlp@1", env={"MLOPS_WORKER": str(served.path / "no-such-worker")},
                 needles=("cannot execute the worker",))
    assert_nothing_left(served)


def test_a_worker_that_never_gets_ready_is_killed_after_the_timeout(served):
    pid_file = served.path / "fake.pid"
    script = fake_worker(served, f'echo $$ > {pid_file}\necho "fake-worker: warming up"\nexec sleep 60\n')
    begin = time.monotonic()
    message = expect_error(served.run("serve", "start", "mlp@1", "--ready-timeout", "1s",
                                      env={"MLOPS_WORKER": str(script)}), 7,
                           "was not ready within 1000 ms", "--ready-timeout", "fake-worker: warming up")
    assert time.monotonic() - begin < 5, message
    assert not running(int(pid_file.read_text()))
    assert_nothing_left(served)


def test_an_interrupted_start_kills_its_worker_and_forgets_the_service(served):
    pid_file = served.path / "fake.pid"
    script = fake_worker(served, f'echo $$ > {pid_file}\necho "fake-worker: warming up"\nexec sleep 60\n')
    start = subprocess.Popen([str(BIN), "serve", "start", "mlp@1", "--name", "interrupted"], cwd=served.path,
                             env=clean_env({"MLOPS_WORKER": str(script)}), stdin=subprocess.DEVNULL,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    wait_for(lambda: pid_file.is_file() and pid_file.read_text().strip(), "the fake worker starting", seconds=10)
    time.sleep(0.2)
    start.send_signal(signal.SIGINT)
    out, err = start.communicate(timeout=10)
    assert start.returncode == 8 and err.startswith("mlops: error: "), (start.returncode, out, err)
    assert not running(int(pid_file.read_text()))
    assert_nothing_left(served)


# 5. Dead and unresponsive workers -------------------------------------------------------------------


def test_killed_and_stopped_workers_show_in_ls_and_dead_ones_are_pruned(served):
    pids = {name: served.start("mlp@1", "--name", name)["pid"] for name in ("a", "b", "c")}
    os.kill(pids["c"], signal.SIGSTOP)
    try:
        kill_worker(pids["a"])
        kill_worker(pids["b"])
        assert served.states() == {"a": "dead", "b": "dead", "c": "unresponsive"}
        table = served.ok("serve", "ls")
        assert re.search(r"^a +mlp@1 .* dead ", table, re.M) and re.search(r"^c .* unresponsive ", table, re.M), table
    finally:
        os.kill(pids["c"], signal.SIGCONT)
    assert served.doc("serve", "status", "a", schema="serve-status")["state"] == "dead"
    served.fails(7, "serve", "load", "a", "-d", "1s", needles=("'a' is not ready",))

    stop = served.ok("serve", "stop", "a")
    assert stop == "forgot 'a' (mlp@1): its worker had already exited\n", stop
    pruned = served.doc("serve", "prune", schema="serve-prune")["pruned"]
    assert [(p["service"], p["pid"]) for p in pruned] == [("b", pids["b"])]
    assert served.states() == {"c": "ready"}
    assert served.ok("serve", "prune") == "every service is alive; nothing to prune\n"
    kill_worker(pids["c"])
    assert served.ok("serve", "prune") == f"forgot 'c' (mlp@1, pid {pids['c']} is gone)\n"
    assert_nothing_left(served)


# 6. Stop --------------------------------------------------------------------------------------------


def test_stop_all_stops_every_service_and_usage_mistakes_are_refused(served):
    pids = {name: served.start("mlp@1", "--name", name)["pid"] for name in ("s1", "s2", "s3")}
    served.fails(3, "serve", "stop", "ghost", needles=("no service named 'ghost'", "s1, s2, s3"))
    served.fails(2, "serve", "stop", needles=("SERVICE or --all",))
    served.fails(2, "serve", "stop", "s1", "--all", needles=("SERVICE or --all",))
    stopped = served.doc("serve", "stop", "--all", schema="serve-stop")["stopped"]
    assert sorted((s["service"], s["pid"], s["outcome"]) for s in stopped) == [
        (name, pid, "stopped") for name, pid in sorted(pids.items())]
    assert not any(running(pid) for pid in pids.values())
    assert_nothing_left(served)
    assert served.ok("serve", "stop", "--all") == "no services to stop\n"
    served.fails(3, "serve", "stop", "s1", needles=("no service named 's1'", "none is running"))


def test_stop_kills_a_worker_that_does_not_drain_in_time(served):
    started = served.start("mlp@1", "--name", "frozen")
    os.kill(started["pid"], signal.SIGSTOP)  # SIGTERM stays pending: it cannot drain
    begin = time.monotonic()
    assert served.ok("serve", "stop", "frozen", "--timeout", "200ms") == \
        "killed 'frozen' (mlp@1): it did not drain within 200ms\n"
    assert time.monotonic() - begin < 5
    assert not running(started["pid"])
    assert_nothing_left(served)
    frozen = served.start("mlp@1", "--name", "frozen")
    os.kill(frozen["pid"], signal.SIGSTOP)
    stopped = served.doc("serve", "stop", "--all", "--timeout", "100ms", schema="serve-stop")["stopped"]
    assert [(s["service"], s["outcome"]) for s in stopped] == [("frozen", "killed")]
    served.fails(2, "serve", "stop", "--all", "--timeout", "soon", needles=("--timeout soon is not a positive duration",))


def test_stop_drains_a_request_in_flight(served):
    started = served.start("mlp@1", "--max-batch", "64", "--batch-delay-us", "1000000", "--device", "cpu")
    url = started["url"]
    def timed_request():
        begin = time.monotonic()
        status, answer = http(url + INFER_PATH, request_for("mlp", load("mlp", 7, "input"), flat=True))
        return status, answer, time.monotonic() - begin

    with ThreadPoolExecutor(1) as pool:
        pending = pool.submit(timed_request)
        wait_for(lambda: metric(url, "mlops_inference_in_flight", model="mlp", version="1") == 1,
                 "the request reaching the worker")
        stopped = served.doc("serve", "stop", "mlp")["stopped"]
        status, answer, seconds = pending.result(timeout=30)
    assert status == 200, answer
    assert seconds > 0.5, f"the request took {seconds:.2f} s: it did not wait for its batch"
    assert_close(output_of(answer), load("mlp", 7, "output"))
    assert [s["outcome"] for s in stopped] == ["stopped"]
    assert not running(started["pid"])
    assert_nothing_left(served)


# 7. Logs --------------------------------------------------------------------------------------------


def test_logs_print_the_worker_log_and_follow_it_until_the_worker_stops(served):
    started = served.start("mlp@1", "--name", "svc")
    log = served.ok("serve", "logs", "svc")
    assert f"listening on {started['url']}" in log and log.rstrip().endswith("ready"), log
    last = served.ok("serve", "logs", "svc", "-n", "1")
    assert last.count("\n") == 1 and last.rstrip().endswith("ready"), last
    served.fails(3, "serve", "logs", "ghost", needles=("no service named 'ghost'",))

    follow = subprocess.Popen([str(BIN), "serve", "logs", "svc", "-f"], cwd=served.path, env=clean_env(),
                              stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    lines: queue.Queue = queue.Queue()
    reader = threading.Thread(target=lambda: [lines.put(line) for line in follow.stdout], daemon=True)
    reader.start()
    try:
        seen = []
        while not (seen and seen[-1].rstrip().endswith("ready")):
            seen.append(lines.get(timeout=10))
        assert follow.poll() is None, "serve logs -f exited while the worker runs"
        served.ok("serve", "stop", "svc")
        assert follow.wait(timeout=10) == 0, follow.stderr.read()
    finally:
        if follow.poll() is None:
            follow.kill()
            follow.wait()
    reader.join(timeout=5)
    assert_nothing_left(served)


# 8. Predict errors ----------------------------------------------------------------------------------


def test_predict_errors_name_the_problem_and_the_service_keeps_answering(served):
    served.start("mlp@1")
    served.ok("model", "register", "mlp", MODELS / "mlp.onnx")  # mlp@2, served by nobody
    narrow = served.write("narrow.json", [1, 2, 3])
    served.fails(2, "serve", "predict", "mlp", "--input", narrow,
                 needles=("'mlp' (mlp@1) answered", "data has 3 values", "[1, 4]"))
    served.fails(2, "serve", "predict", "mlp", "--input", served.write("ragged.json", [[1, 2, 3, 4], [1, 2]]),
                 needles=("row 2 has 2 values but row 1 has 4",))
    served.fails(2, "serve", "predict", "mlp", "--input", served.write("words.json", ["a", 1, 2, 3]),
                 needles=("row 1 holds \"a\"",))
    served.fails(2, "serve", "predict", "mlp", "--input", served.write("prose.txt", "one, two, three\n"),
                 needles=("prose.txt is not JSON",))
    deep = "[" * 200_000 + "]" * 200_000  # copying or printing it would overflow the stack
    served.fails(2, "serve", "predict", "mlp", "--input", served.write("deep.txt", deep),
                 needles=("deep.txt nests lists or objects more than 64 deep",))
    served.fails(2, "serve", "predict", "mlp", "--input",
                 served.write("deep_request.txt", '{"inputs": [{"data": %s}]}' % deep), needles=("more than 64 deep",))
    served.fails(3, "serve", "predict", "mlp", "--input", served.path / "missing.json",
                 needles=("cannot read the input file", "missing.json"))
    served.fails(3, "serve", "predict", "mlp@2", "--input", narrow,
                 needles=("no running service serves mlp@2", "mlops serve start mlp@2"))
    served.fails(3, "serve", "predict", "ghost", "--input", narrow, needles=("no service named 'ghost'", "mlp"))
    answer = served.doc("serve", "predict", "mlp@1", "--input", served.write("row.json", [0, 0, 0, 0]))
    assert output_of(answer).shape == (1, 3)


# 9. Load --------------------------------------------------------------------------------------------


def test_load_reports_throughput_and_ordered_latencies_and_keeps_to_a_rate(served):
    served.start("mlp@1")
    report = served.doc("serve", "load", "mlp", "-c", "4", "-d", "1s", schema="serve-load")
    assert report["requests"] > 0 and report["succeeded"] == report["requests"], report
    assert report["failed"] == 0 and report["errors"] == {} and report["concurrency"] == 4, report
    assert report["throughput_rps"] > 0 and report["rate"] is None and 0.9 <= report["seconds"] < 3, report
    latency = report["latency_ms"]
    assert 0 < latency["p50"] <= latency["p95"] <= latency["p99"] <= latency["max"], latency
    assert latency["mean"] <= latency["max"], latency

    paced = served.doc("serve", "load", "mlp@1", "-c", "2", "-d", "1s", "--rate", "50", schema="serve-load")
    assert 35 <= paced["requests"] <= 65 and paced["failed"] == 0 and paced["rate"] == 50, paced
