"""`mlops-worker serve` seen by its clients: the real worker on a loopback port answering the Open
Inference Protocol v2 over HTTP/1.1 (http.client, raw sockets), checked against PyTorch's outputs.
Every mistake a client can make gets a status and a JSON {"error": ...} naming the problem, and the
worker answers on; misbehaving clients (slow, gone, garbage) never stop it serving the others;
SIGTERM finishes the requests in flight before exiting 0."""

from __future__ import annotations

import http.client
import json
import random
import re
import signal
import socket
import struct
import subprocess
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest

from serving import (INFER, MODELS, SIGNATURES, Reply, Worker, error_of, launch, load, output_array, request_for,
                     start_worker, sigterm_closes_the_port_at_once)

EXIT_CONFLICT, EXIT_INTERRUPTED = 4, 8  # include/mlops/core/error.hpp


# The worker -----------------------------------------------------------------------------------------


@pytest.fixture
def serve(tmp_path):
    """serve(*args, models=("mlp",)) -> a ready Worker; every one is stopped after the test."""
    started: list[Worker] = []

    def start(*args, **kwargs) -> Worker:
        started.append(start_worker(tmp_path, *args, **kwargs))
        return started[-1]

    yield start
    for worker in started:
        worker.stop()


@pytest.fixture(scope="module")
def shared(tmp_path_factory):
    """mlp and cnn (two --model) on one worker, for the tests that only read; a small body limit for 413."""
    worker = start_worker(tmp_path_factory.mktemp("shared"), "--max-body-bytes", 65536, models=("mlp", "cnn"))
    yield worker
    worker.stop()


# Requests and answers -------------------------------------------------------------------------------


def features(rows: int, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal((rows, 4)).astype(np.float32)


def binary_request(document: dict, *arrays: np.ndarray) -> tuple[bytes, dict]:
    """A body of the binary extension: the JSON header, then the arrays' bytes; and its headers."""
    header = json.dumps(document).encode()
    return header + b"".join(a.astype("<f4").tobytes() for a in arrays), {
        "Inference-Header-Content-Length": str(len(header))}


def split_binary(reply: Reply) -> tuple[dict, bytes]:
    assert reply.status == 200, reply
    assert reply.headers["content-type"] == "application/octet-stream", reply.headers
    length = int(reply.headers["inference-header-content-length"])
    return json.loads(reply.body[:length]), reply.body[length:]


# Health and metadata --------------------------------------------------------------------------------


def test_health_and_server_metadata(shared):
    assert shared.get("/v2/health/live").json() == {"live": True}
    reply = shared.get("/v2/health/ready")
    assert (reply.status, reply.headers["content-type"], reply.json()) == (200, "application/json", {"ready": True})
    document = shared.get("/v2").json()
    assert document["name"] == "mlops-worker" and re.fullmatch(r"\d+\.\d+\.\d+.*", document["version"]), document
    assert "binary_tensor_data" in document["extensions"]


@pytest.mark.parametrize("case", ["mlp", "cnn"])
def test_model_metadata_gives_the_signature_with_minus_one_for_the_batch(shared, case):
    reply = shared.get(f"/v2/models/{case}")
    assert reply.status == 200, reply
    document = reply.json()
    input_name, input_shape, output_name, output_shape = SIGNATURES[case]
    assert document["name"] == case and document["versions"] == ["1"] and document["platform"] == "onnx"
    assert document["inputs"] == [{"name": input_name, "datatype": "FP32", "shape": input_shape}]
    assert document["outputs"] == [{"name": output_name, "datatype": "FP32", "shape": output_shape}]
    assert document["parameters"]["device"].startswith("cpu"), document["parameters"]
    assert document["parameters"]["max_batch_size"] == 64
    ready = shared.get(f"/v2/models/{case}/versions/1/ready")
    assert (ready.status, ready.json()) == (200, {"name": case, "version": "1", "ready": True})


def test_versions_routes_and_the_newest_version_when_none_is_given(serve):
    worker = serve("--model", f"m@2={MODELS / 'mlp.onnx'}", "--model", f"m@10={MODELS / 'cnn.onnx'}", "--max-batch", 1,
                   models=())
    newest = worker.get("/v2/models/m").json()  # 10 is newer than 2: versions compare as numbers
    assert newest["inputs"][0]["name"] == "image" and newest["versions"] == ["2", "10"], newest
    assert newest["parameters"]["max_batch_size"] == 0, "--max-batch 1: no batching"
    older = worker.get("/v2/models/m/versions/2").json()
    assert older["inputs"][0]["name"] == "features" and older["versions"] == ["2"], older
    assert worker.get("/v2/models/m/ready").json() == {"name": "m", "version": "10", "ready": True}
    answer = worker.infer(request_for("cnn", load("cnn", 1, "input")), path="/v2/models/m/infer").json()
    assert (answer["model_name"], answer["model_version"]) == ("m", "10")
    answer = worker.infer(request_for("mlp", load("mlp", 1, "input")), path="/v2/models/m/versions/2/infer").json()
    assert (answer["model_name"], answer["model_version"]) == ("m", "2")
    for path in ("/v2/models/m/versions/3", "/v2/models/m/versions/3/ready", "/v2/models/m/versions/3/infer"):
        reply = worker.call("POST" if path.endswith("infer") else "GET", path, body=b"{}")
        error_of(reply, 404, "m@3", "m@2, m@10")


def test_config_file_paths_are_relative_to_the_config(serve, tmp_path):
    config_dir = tmp_path / "conf"
    (config_dir / "models").mkdir(parents=True)
    (config_dir / "models" / "classifier.onnx").write_bytes((MODELS / "mlp.onnx").read_bytes())
    (config_dir / "serving.json").write_text(json.dumps({"models": [
        {"name": "classifier", "version": 3, "path": "models/classifier.onnx"},
        {"name": "vision", "path": str(MODELS / "cnn.onnx")}]}))
    worker = serve("--config", config_dir / "serving.json", models=(), cwd=Path("/"))
    assert worker.get("/v2/models/classifier").json()["versions"] == ["3"]
    assert worker.get("/v2/models/vision/versions/1").json()["inputs"][0]["name"] == "image"
    answer = worker.infer(request_for("mlp", load("mlp", 7, "input")), path="/v2/models/classifier/versions/3/infer")
    np.testing.assert_allclose(output_array(answer.json()), load("mlp", 7, "output"), atol=1e-5, rtol=0)


# Inference ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("case,batch", [("mlp", 1), ("mlp", 7), ("cnn", 1), ("cnn", 7)])
def test_infer_matches_pytorch(shared, case, batch):
    inputs = load(case, batch, "input")
    output_name, output_shape = SIGNATURES[case][2:]
    # Batch 7 sends flat data and names the output it wants (without binary_data: JSON all the same).
    extra = {"outputs": [{"name": output_name}]} if batch == 7 else {}
    body = request_for(case, inputs, flat=batch == 7, id=f"req-{case}-{batch}", **extra)
    reply = shared.infer(body, path=f"/v2/models/{case}/infer", headers={"X-Request-Id": f"trace-{batch}"})
    assert reply.status == 200 and reply.headers["content-type"] == "application/json", reply
    assert "inference-header-content-length" not in reply.headers and reply.headers["x-request-id"] == f"trace-{batch}"
    document = reply.json()
    assert (document["id"], document["model_name"], document["model_version"]) == (f"req-{case}-{batch}", case, "1")
    assert document["outputs"][0]["name"] == output_name and len(document["outputs"]) == 1
    assert document["outputs"][0]["shape"] == [batch, output_shape[1]]
    np.testing.assert_allclose(output_array(document), load(case, batch, "output"), atol=1e-5, rtol=0)


def test_binary_input_gives_the_json_answer(shared):
    inputs = load("cnn", 7, "input")
    as_json = shared.infer(request_for("cnn", inputs), path="/v2/models/cnn/infer").json()
    document = {"id": "bin", "inputs": [{"name": "image", "datatype": "FP32", "shape": list(inputs.shape),
                                         "parameters": {"binary_data_size": inputs.nbytes}}]}
    body, headers = binary_request(document, inputs)
    reply = shared.infer(body, path="/v2/models/cnn/infer", headers=headers)
    assert reply.status == 200 and reply.headers["content-type"] == "application/json", reply
    assert reply.json()["outputs"] == as_json["outputs"] and reply.json()["id"] == "bin"


@pytest.mark.parametrize("ask", ["binary_data_output", "per_output_binary_data"])
def test_binary_output_is_byte_exact_with_the_json_answer(shared, ask):
    inputs = load("mlp", 7, "input")
    expected = output_array(shared.infer(request_for("mlp", inputs)).json())
    if ask == "binary_data_output":
        document = request_for("mlp", inputs, parameters={"binary_data_output": True})
    else:
        document = request_for("mlp", inputs, outputs=[{"name": "probabilities", "parameters": {"binary_data": True}}])
    header, data = split_binary(shared.infer(document))
    assert header["outputs"] == [{"name": "probabilities", "datatype": "FP32", "shape": [7, 3],
                                  "parameters": {"binary_data_size": 84}}], header
    assert data == expected.astype("<f4").tobytes()
    # Binary both ways: the same bytes again.
    document["inputs"][0] = {"name": "features", "datatype": "FP32", "shape": [7, 4],
                             "parameters": {"binary_data_size": inputs.nbytes}}
    body, headers = binary_request(document, inputs)
    assert split_binary(shared.infer(body, headers=headers))[1] == data


# Bad requests ---------------------------------------------------------------------------------------


def good_tensor(**changes) -> dict:
    tensor = {"name": "features", "datatype": "FP32", "shape": [2, 4], "data": list(range(8))}
    tensor.update(changes)
    return {key: value for key, value in tensor.items() if value is not None}


BINARY_HEADER = {"inputs": [{"name": "features", "datatype": "FP32", "shape": [2, 4],
                             "parameters": {"binary_data_size": 32}}]}
EIGHT_FLOATS = struct.pack("<8f", *range(8))

def bad(body, *needles, status=400, path=INFER, headers=None):
    return path, body, headers or {}, status, needles


def binary_size(size) -> str:
    return json.dumps({"inputs": [{**BINARY_HEADER["inputs"][0], "parameters": {"binary_data_size": size}}]})


def header_length(value: str) -> dict:
    return {"Inference-Header-Content-Length": value}


BAD_REQUESTS = {  # name: (path, body, headers, status, needles in the error)
    "malformed JSON": bad(b'{"inputs": [', "not valid JSON"),
    "empty body": bad(b"", "not valid JSON"),
    "not an object": bad(b"[1, 2, 3]", '"inputs"'),
    "missing inputs": bad({"outputs": []}, '"inputs"'),
    "inputs not a list": bad({"inputs": {"features": [1]}}, '"inputs"'),
    "no input given": bad({"inputs": []}, "needs the input 'features'"),
    "wrong input name": bad({"inputs": [good_tensor(name="feature")]}, "no input named 'feature'"),
    "input twice": bad({"inputs": [good_tensor(), good_tensor()]}, "'features'", "twice"),
    "wrong datatype": bad({"inputs": [good_tensor(datatype="INT64")]}, "float32, not int64"),
    "unknown datatype": bad({"inputs": [good_tensor(datatype="FP16")]}, '"FP16"', "not one of"),
    "wrong shape": bad({"inputs": [good_tensor(shape=[4, 2])]}, "[4, 2]", "dimension 1 must be 4"),
    "wrong rank": bad({"inputs": [good_tensor(shape=[8])]}, "1 dimensions", "expects 2"),
    "negative dimension": bad({"inputs": [good_tensor(shape=[-2, 4])]}, "non-negative integers"),
    "data count mismatch": bad({"inputs": [good_tensor(data=[1, 2, 3])]}, "data has 3 values", "[2, 4] needs 8"),
    "data not numbers": bad({"inputs": [good_tensor(data=["a"] * 8)]}, "data[0]", "not a number"),
    "data too large for FP32": bad({"inputs": [good_tensor(data=[1e39] * 8)]}, "does not fit"),
    "missing data": bad({"inputs": [good_tensor(data=None)]}, 'no "data"'),
    "id not a string": bad({"id": 7, "inputs": [good_tensor()]}, '"id" must be a string'),
    "unknown output": bad({"inputs": [good_tensor()], "outputs": [{"name": "logits"}]},
                          "no output named 'logits'", "probabilities"),
    "output without a name": bad({"inputs": [good_tensor()], "outputs": [{}]}, '"name"'),
    "unknown model": bad({"inputs": [good_tensor()]}, "does not serve resnet", "it serves mlp@1, cnn@1", status=404,
                         path="/v2/models/resnet/infer"),
    "unknown version": bad({"inputs": [good_tensor()]}, "mlp@9", status=404, path="/v2/models/mlp/versions/9/infer"),
    "unknown path": bad({"inputs": [good_tensor()]}, "no such endpoint", status=404, path="/v2/models/mlp/predict"),
    "body over --max-body-bytes": bad(b" " * 65537, "--max-body-bytes", status=413),
    "header length not a number": bad(BINARY_HEADER, "'twelve' is not a byte count", headers=header_length("twelve")),
    "header length negative": bad(BINARY_HEADER, "not a byte count", headers=header_length("-1")),
    "header length past the body": bad(b"{}", "Inference-Header-Content-Length is 3", "only 2 bytes",
                                       headers=header_length("3")),
    "header length cuts the JSON": bad(BINARY_HEADER, "first Inference-Header-Content-Length bytes) is not valid JSON",
                                       headers=header_length("10")),
    "binary size wrong for the shape": bad(binary_size(28), "binary_data_size is 28 bytes", "takes 32", headers="auto"),
    "binary size negative": bad(binary_size(-32), "binary_data_size must be a non-negative integer", headers="auto"),
    "binary data short": bad("short", "the body ends 4 bytes before", headers="auto"),
    "binary data left over": bad("long", "4 bytes of binary data that no input claims", headers="auto"),
}


def bad_request_body(body, headers):
    """The body and headers of a BAD_REQUESTS entry ("auto": the binary extension's header)."""
    if body in ("short", "long"):
        header = json.dumps(BINARY_HEADER).encode()
        data = EIGHT_FLOATS[:-4] if body == "short" else EIGHT_FLOATS + b"\0" * 4
        return header + data, header_length(str(len(header)))
    if isinstance(body, dict):
        body = json.dumps(body)
    body = body.encode() if isinstance(body, str) else body
    if headers == "auto":
        return body + EIGHT_FLOATS, header_length(str(len(body)))
    return body, headers


@pytest.mark.parametrize("case", list(BAD_REQUESTS))
def test_bad_request_is_answered_with_a_status_and_a_reason(shared, case):
    path, body, headers, status, needles = BAD_REQUESTS[case]
    body, headers = bad_request_body(body, headers)
    reply = shared.call("POST", path, body=body, headers={**headers, "X-Request-Id": case.replace(" ", "-")})
    error_of(reply, status, *needles)
    assert reply.headers.get("x-request-id") == case.replace(" ", "-"), "errors keep the caller's request id"
    shared.assert_answers()


def test_bytes_after_the_json_are_refused(shared):
    # A NUL byte ends the input for the JSON parser; what follows it must not be ignored.
    body = json.dumps(request_for("mlp", load("mlp", 1, "input"))).encode() + b"\0 and then {not json"
    error_of(shared.infer(body), 400, "not valid JSON")


@pytest.mark.parametrize("nesting", ["arrays", "objects"])
def test_deeply_nested_data_is_refused_without_crashing(serve, nesting):
    # A 400 kB body that nests 200,000 levels deep inside "data": within --max-body-bytes.
    depth = 200_000
    data = "[" * depth + "]" * depth if nesting == "arrays" else "[" + '{"a":' * depth + "1" + "}" * depth + "]"
    shape = [1, 4] if nesting == "arrays" else [1]
    body = '{"inputs":[{"name":"features","datatype":"FP32","shape":%s,"data":%s}]}' % (json.dumps(shape), data)
    worker = serve()
    try:
        reply = worker.infer(body)
    except (ConnectionError, http.client.HTTPException) as error:
        worker.process.wait(timeout=5)
        raise AssertionError(f"no answer ({error!r}); the worker exited {worker.process.returncode}") from None
    error_of(reply, 400)
    worker.assert_answers()


# Misbehaving clients --------------------------------------------------------------------------------


def raw_request(body: bytes, path: str = INFER, content_length: int | None = None) -> bytes:
    length = len(body) if content_length is None else content_length
    return (f"POST {path} HTTP/1.1\r\nHost: worker\r\nContent-Type: application/json\r\n"
            f"Content-Length: {length}\r\n\r\n").encode() + body


def read_reply(sock: socket.socket) -> Reply:
    response = http.client.HTTPResponse(sock)
    response.begin()
    return Reply(response.status, {k.lower(): v for k, v in response.getheaders()}, response.read())


def reset(sock: socket.socket):
    """Close with a TCP reset rather than a FIN, like a client that crashed."""
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    sock.close()


def test_slow_client_does_not_hold_up_the_others(serve):
    worker = serve("--read-timeout", 2)
    inputs = load("mlp", 7, "input")
    body = json.dumps(request_for("mlp", inputs)).encode()
    slow = socket.create_connection(("127.0.0.1", worker.port), timeout=10)
    slow.sendall(raw_request(b"", content_length=len(body)))
    for piece in range(10):  # 10 pieces, 0.15 s apart: slow, but each within --read-timeout
        slow.sendall(body[piece * len(body) // 10:(piece + 1) * len(body) // 10])
        started = time.monotonic()
        worker.assert_answers()
        assert time.monotonic() - started < 1, "another client waited on the slow one"
        time.sleep(0.15)
    reply = read_reply(slow)
    assert reply.status == 200, reply
    np.testing.assert_allclose(output_array(reply.json()), load("mlp", 7, "output"), atol=1e-5, rtol=0)
    slow.close()
    # A client that stops sending for longer than --read-timeout is hung up on.
    stalled = socket.create_connection(("127.0.0.1", worker.port), timeout=10)
    stalled.sendall(raw_request(body[:20], content_length=len(body)))
    started = time.monotonic()
    try:
        leftover = stalled.recv(65536)
    except ConnectionResetError:
        leftover = b""
    assert time.monotonic() - started < 5 and not leftover.startswith(b"HTTP/1.1 200"), leftover
    stalled.close()
    worker.assert_answers()


def test_clients_that_hang_up_mid_body_or_before_the_answer(serve):
    worker = serve()
    big = json.dumps(request_for("mlp", features(4000, 1))).encode()  # a 240 kB answer
    small = json.dumps(request_for("mlp", features(1, 2))).encode()
    for attempt in range(20):
        mid_body = socket.create_connection(("127.0.0.1", worker.port))
        mid_body.sendall(raw_request(big[:1000], content_length=len(big)))
        (reset if attempt % 2 else socket.socket.close)(mid_body)
        for body in (big, small):
            no_read = socket.create_connection(("127.0.0.1", worker.port))
            no_read.sendall(raw_request(body))
            (reset if attempt % 2 else socket.socket.close)(no_read)
    worker.assert_answers()
    # The 20 requests sent in full before a plain close are run (their answers go nowhere). The
    # worker may still be reading some of them when it answers us, on another event loop, so
    # wait for the count rather than for nothing to be in flight.
    deadline = time.monotonic() + 10
    while worker.metrics().value("mlops_inference_requests_total", model="mlp", outcome="success") < 20 + 1:
        assert time.monotonic() < deadline, "requests sent in full before a close were not run"
        time.sleep(0.05)
    while worker.metrics().value("mlops_inference_in_flight", model="mlp") != 0:
        assert time.monotonic() < deadline, "requests of gone clients stay in flight"
        time.sleep(0.05)
    metrics = worker.metrics()
    assert metrics.responses("500") == 0
    assert "500:" not in worker.log()


MISSING = object()
MUTATIONS = {  # where in a valid mlp request (flat data), and what cannot go there
    ("inputs",): [None, 3, "x", {}, [None], [[]], [3]],
    ("inputs", 0): [None, 3, "x", [], {}],
    ("inputs", 0, "name"): [MISSING, None, 3, [], {}, "", "features "],
    ("inputs", 0, "datatype"): [MISSING, None, 3, [], {}, "", "FP16", "fp32"],
    ("inputs", 0, "shape"): [MISSING, None, "x", {}, [1], [4, 1], [1, 4, 1], [1.5, 4], [True, 4], [2**70, 4]],
    ("inputs", 0, "shape", 0): [None, "1", 1.0, -4, 2**64, [1], 0],
    ("inputs", 0, "shape", 1): [None, "4", 4.0, -4, 2**64, [4], 0],
    ("inputs", 0, "data"): [MISSING, None, "data", {}, [], [1, 2, 3], list(range(5)), [[1, 2], [3]]],
    ("inputs", 0, "data", 2): [None, "1", {}, 1e39, -1e300, {"x": 1}],
    ("id",): [None, 3, [], {}, False],
    ("outputs",): [None, 3, "probabilities", [3], [{}], [{"name": 3}], [{"name": "x"}]],
}


def garbage(rng: random.Random, valid: dict) -> tuple[str, bytes, dict, set[int]]:
    """A random bad request: (path, body, headers, the statuses it may get)."""
    kind = rng.randrange(8)
    text = json.dumps(valid).encode()
    if kind == 0:
        return INFER, rng.randbytes(rng.randrange(300)), {}, {400}
    if kind == 1:
        return INFER, text[:rng.randrange(len(text))], {}, {400}
    if kind == 2:
        body, headers = binary_request(dict(BINARY_HEADER), np.arange(8, dtype=np.float32))
        return INFER, body[:rng.randrange(len(body))], headers, {400}
    if kind == 3:
        value = rng.choice(["1", "-1", "x", "99999999999999999999999", str(len(text) + 1), "0x10", "1.5"])
        return INFER, text, {"Inference-Header-Content-Length": value}, {400}
    if kind == 4:
        return rng.choice(["/v2/models/nope/infer", "/v2/models/mlp/versions/2/infer", "/v2/modelz"]), text, {}, {404}
    if kind == 5:
        return INFER, rng.randbytes(4097 + rng.randrange(2000)), {}, {413}
    # Wrong types: one field of a valid request replaced by something it cannot be, or left out.
    where = rng.choice(list(MUTATIONS))
    *parents, last = where
    document = target = json.loads(text)
    for key in parents:
        target = target[key]
    value = rng.choice(MUTATIONS[where])
    if value is MISSING:
        del target[last]
    else:
        target[last] = value
    return INFER, json.dumps(document, indent=rng.choice([None, 1])).encode(), {}, {400}


def test_ten_thousand_garbage_requests_never_get_a_500(serve):
    worker = serve("--max-body-bytes", 4096)
    valid = request_for("mlp", features(1, 3), flat=True)

    def client(seed: int) -> list[str]:
        rng, problems = random.Random(seed), []
        connection = worker.connection()
        try:
            for _ in range(2500):
                path, body, headers, statuses = garbage(rng, valid)
                try:
                    reply = worker.call("POST", path, body=body, headers=headers, connection=connection)
                except (ConnectionError, http.client.HTTPException) as error:
                    problems.append(f"{path} {body[:80]!r} {headers}: no answer ({error!r})")
                    connection.close()
                    connection = worker.connection()
                    continue
                if reply.status not in statuses or "error" not in reply.json():
                    problems.append(f"{path} {body[:80]!r} {headers}: {reply.status} {reply.body[:200]!r}")
        finally:
            connection.close()
        return problems

    with ThreadPoolExecutor(4) as pool:
        problems = [p for found in pool.map(client, range(4)) for p in found]
    assert not problems, f"{len(problems)} of 10000 answered wrongly, for example:\n" + "\n".join(problems[:10])
    metrics = worker.metrics()
    answered = {code: metrics.responses(code) for code in ("400", "404", "413")}
    assert sum(answered.values()) == 10000 and min(answered.values()) > 0, answered
    assert metrics.responses("500") == 0
    assert metrics.value("mlops_inference_requests_total", model="mlp", outcome="success") == 0
    worker.assert_answers()


# Dynamic batching -----------------------------------------------------------------------------------


def test_concurrent_requests_are_batched_and_each_gets_its_own_rows(serve):
    batched = serve("--max-batch", 64, "--batch-delay-us", 2000)
    alone = serve("--max-batch", 1)
    requests = [[features(1 + (t + i) % 5, 1000 * t + i) for i in range(20)] for t in range(32)]

    def caller(t: int) -> list[np.ndarray]:
        connection = batched.connection()
        answers = []
        for i, inputs in enumerate(requests[t]):
            reply = batched.infer(request_for("mlp", inputs, id=f"{t}/{i}"), connection=connection)
            assert reply.status == 200 and reply.json()["id"] == f"{t}/{i}", reply
            answers.append(output_array(reply.json()))
        connection.close()
        return answers

    with ThreadPoolExecutor(32) as pool:
        answers = list(pool.map(caller, range(32)))
    connection = alone.connection()
    for t in range(32):
        for i, inputs in enumerate(requests[t]):
            expected = output_array(alone.infer(request_for("mlp", inputs), connection=connection).json())
            assert answers[t][i].shape == (len(inputs), 3), f"caller {t} request {i}: {answers[t][i].shape}"
            np.testing.assert_allclose(answers[t][i], expected, atol=1e-6, rtol=0,
                                       err_msg=f"caller {t} request {i} got rows that are not its own")
    histogram = dict(batched.metrics().buckets("mlops_inference_batch_size", model="mlp"))
    assert histogram[float("inf")] == 640
    assert histogram[float("inf")] - histogram[8.0] > 0, f"no batch merged requests beyond 8 rows: {histogram}"
    unbatched = dict(alone.metrics().buckets("mlops_inference_batch_size", model="mlp"))
    assert unbatched[8.0] == unbatched[float("inf")] == 640, "with --max-batch 1 each request runs alone"


# Metrics --------------------------------------------------------------------------------------------


def test_metrics_count_exactly_and_histograms_are_well_formed(serve):
    worker = serve(models=("mlp", "cnn"))
    before = worker.metrics()
    for seed in range(5):
        assert worker.infer(request_for("mlp", features(2, seed))).status == 200
    for body in ({"inputs": [good_tensor(shape=[8])]}, b"{", {"inputs": [good_tensor()], "outputs": [{"name": "x"}]}):
        assert worker.infer(body).status == 400
    assert worker.infer({"inputs": [good_tensor()]}, path="/v2/models/nope/infer").status == 404
    assert worker.get("/v2/nothing").status == 404
    after = worker.metrics()
    for kind, count in (("success", 5), ("failure", 3)):
        assert after.value("mlops_inference_requests_total", model="mlp", version="1", outcome=kind) == count
        assert after.value("mlops_inference_requests_total", model="cnn", version="1", outcome=kind) == 0
    responses = {code: after.responses(code) - before.responses(code) for code in ("200", "400", "404")}
    assert responses == {"200": 5 + 1, "400": 3, "404": 2}, responses  # + 1: the first /metrics
    assert after.value("mlops_inference_in_flight", model="mlp") == 0
    assert after.value("mlops_model_device_info", model="cnn", version="1") == 1
    assert after.value("mlops_worker_info", state="ready") == 1
    for family in ("queue_seconds", "compute_seconds", "request_seconds", "batch_size"):
        name = f"mlops_inference_{family}"
        assert after.types[name] == "histogram"
        for model, count in (("mlp", 5), ("cnn", 0)):
            buckets = after.buckets(name, model=model)
            bounds, counts = [b for b, _ in buckets], [c for _, c in buckets]
            assert bounds == sorted(bounds) and bounds[-1] == float("inf"), bounds
            assert counts == sorted(counts), f"{name}: buckets not cumulative: {counts}"
            assert counts[-1] == after.value(f"{name}_count", model=model) == count
            assert after.value(f"{name}_sum", model=model) >= 0
    assert dict(after.buckets("mlops_inference_batch_size", model="mlp"))[2.0] == 5  # 2 rows each
    assert after.types["mlops_inference_requests_total"] == "counter"


# Stopping -------------------------------------------------------------------------------------------


def start_slow_request(worker: Worker) -> tuple[threading.Thread, list]:
    """An mlp request that waits in the batcher (--batch-delay-us); returns once it is in flight."""
    outcome: list = []

    def send():
        try:
            outcome.append(worker.infer(request_for("mlp", load("mlp", 1, "input"))))
        except (ConnectionError, http.client.HTTPException) as error:
            outcome.append(error)

    thread = threading.Thread(target=send)
    thread.start()
    deadline = time.monotonic() + 5
    while worker.metrics().value("mlops_inference_in_flight", model="mlp") != 1:
        assert time.monotonic() < deadline, "the request never got in flight"
        time.sleep(0.01)
    return thread, outcome


def test_sigterm_finishes_the_request_in_flight_and_refuses_new_ones(serve):
    worker = serve("--max-batch", 64, "--batch-delay-us", 1_000_000)
    thread, outcome = start_slow_request(worker)
    sigterm_closes_the_port_at_once(worker.process, worker.port)
    assert thread.is_alive(), "the slow request should still be in flight when the port closes"
    thread.join(timeout=10)
    reply = outcome[0]
    assert isinstance(reply, Reply) and reply.status == 200, reply
    np.testing.assert_allclose(output_array(reply.json()), load("mlp", 1, "output"), atol=1e-5, rtol=0)
    assert worker.process.wait(timeout=10) == 0
    log = worker.log()
    assert "received Terminated" in log and log.rstrip().endswith("stopped"), log


def test_second_sigterm_during_the_drain_exits_at_once(serve):
    worker = serve("--max-batch", 64, "--batch-delay-us", 10_000_000)
    thread, outcome = start_slow_request(worker)
    worker.process.send_signal(signal.SIGTERM)
    time.sleep(0.3)
    assert worker.process.poll() is None, "the first SIGTERM drains: the request in flight holds it open"
    started = time.monotonic()
    worker.process.send_signal(signal.SIGTERM)
    assert worker.process.wait(timeout=5) == EXIT_INTERRUPTED
    assert time.monotonic() - started < 1.5
    thread.join(timeout=5)
    assert not isinstance(outcome[0], Reply), "the request cut off by the second signal got no answer"
    assert "second signal" in worker.log()


def test_drain_timeout_exits_with_requests_still_in_flight(serve):
    worker = serve("--max-batch", 64, "--batch-delay-us", 10_000_000, "--drain-timeout", 1)
    thread, _ = start_slow_request(worker)
    started = time.monotonic()
    worker.process.send_signal(signal.SIGTERM)
    assert worker.process.wait(timeout=5) == EXIT_INTERRUPTED
    assert 0.9 < time.monotonic() - started < 3
    thread.join(timeout=5)
    assert "still in flight after 1 s" in worker.log()


# Ports ----------------------------------------------------------------------------------------------


def test_port_file_holds_the_port_and_a_taken_port_exits_4(serve, tmp_path):
    first = serve()
    assert first.port_file.read_text() == f"{first.port}\n"
    assert not first.port_file.with_name(first.port_file.name + ".tmp").exists()
    assert f"listening on http://127.0.0.1:{first.port}\n" in first.log()
    second_port_file = tmp_path / "second.port"
    second = launch(tmp_path, "--model", MODELS / "mlp.onnx", "--port", first.port, "--port-file", second_port_file,
                    name="second")
    try:
        assert second.wait(timeout=20) == EXIT_CONFLICT
    finally:
        second.kill()  # nothing to do once it has exited
    stderr = (tmp_path / "second.log").read_text()
    assert f"mlops-worker: error: cannot listen on 127.0.0.1:{first.port}" in stderr, stderr
    assert not second_port_file.exists(), "a worker that could not listen must not write its port file"
    first.assert_answers()


# HTTP transport -------------------------------------------------------------------------------------


def http_bytes(method: str, path: str, body: bytes = b"", headers: dict | None = None,
               version: str = "HTTP/1.1") -> bytes:
    """A request as a client writes it: Host, `headers`, and a Content-Length for a POST unless the
    headers frame the body themselves."""
    fields = {"Host": "worker", **(headers or {})}
    if (method == "POST" or body) and not {"content-length", "transfer-encoding"} & {k.lower() for k in fields}:
        fields["Content-Length"] = str(len(body))
    head = f"{method} {path} {version}\r\n" + "".join(f"{k}: {v}\r\n" for k, v in fields.items()) + "\r\n"
    return head.encode() + body


def chunked(body: bytes, pieces: int) -> bytes:
    """`body` in the chunked transfer coding, cut into `pieces` chunks (one with an extension)."""
    size = -(-len(body) // pieces)
    chunks = [body[i:i + size] for i in range(0, len(body), size)]
    coded = b"".join(b"%x%s\r\n%s\r\n" % (len(c), b";piece=%d" % i if i == 1 else b"", c) for i, c in enumerate(chunks))
    return coded + b"0\r\n\r\n"


class Wire:
    """A client connection that writes raw bytes and reads the answers one by one, in order (one
    buffered reader, so pipelined answers that arrive together are not lost between reads)."""

    def __init__(self, worker: Worker, timeout: float = 5):
        self.sock = socket.create_connection(("127.0.0.1", worker.port), timeout=timeout)
        self.stream = self.sock.makefile("rb")

    def __enter__(self) -> Wire:
        return self

    def __exit__(self, *_):
        self.stream.close()
        self.sock.close()

    def send(self, data: bytes):
        self.sock.sendall(data)

    def reply(self, head_only: bool = False) -> Reply:
        """The next answer (a "100 Continue" included); `head_only`: it answers HEAD, no body follows."""
        status_line = self.stream.readline()
        assert status_line, "the worker closed the connection instead of answering"
        version, status, _ = status_line.decode().split(" ", 2)
        assert version == "HTTP/1.1", status_line
        headers = {}
        while (line := self.stream.readline()) not in (b"\r\n", b""):
            name, _, value = line.decode().partition(":")
            headers[name.lower()] = value.strip()
        length = 0 if head_only or status == "100" else int(headers["content-length"])
        body = self.stream.read(length)
        assert len(body) == length, f"the body ends after {len(body)} of {length} bytes"
        return Reply(int(status), headers, body)

    def closed_by_worker(self) -> bool:
        """The worker ends the connection (a FIN: recv gives b"") and sends nothing more."""
        try:
            rest = self.stream.read()
        except TimeoutError:
            return False
        assert rest == b"", f"bytes after the last answer: {rest[:200]!r}"
        return True


def mlp_body(batch: int) -> bytes:
    return json.dumps(request_for("mlp", load("mlp", batch, "input"))).encode()


def assert_mlp_answer(reply: Reply, batch: int, request_id: str | None = None):
    assert reply.status == 200, reply
    assert reply.headers.get("x-request-id") == request_id, reply.headers
    np.testing.assert_allclose(output_array(reply.json()), load("mlp", batch, "output"), atol=1e-5, rtol=0)


def test_pipelined_requests_are_answered_in_order_on_one_connection(shared):
    with Wire(shared) as wire:
        wire.send(http_bytes("POST", INFER, mlp_body(7), {"X-Request-Id": "first"}) +
                  http_bytes("GET", "/v2/health/live", headers={"X-Request-Id": "second"}) +
                  http_bytes("POST", INFER, mlp_body(1), {"X-Request-Id": "third"}))
        assert_mlp_answer(wire.reply(), 7, "first")
        live = wire.reply()
        assert (live.status, live.headers["x-request-id"], live.json()) == (200, "second", {"live": True})
        assert_mlp_answer(wire.reply(), 1, "third")
        wire.send(http_bytes("GET", "/v2/health/ready"))  # the connection is still open and in step
        reply = wire.reply()
        assert (reply.status, reply.json()) == (200, {"ready": True}) and "x-request-id" not in reply.headers


def test_chunked_body_gets_the_same_answer_as_a_content_length(shared):
    body = mlp_body(7)
    with Wire(shared) as wire:
        wire.send(http_bytes("POST", INFER, chunked(body, 5), {"Transfer-Encoding": "chunked"}))
        as_chunks = wire.reply()
        wire.send(http_bytes("POST", INFER, body))
        assert as_chunks == wire.reply()
    assert_mlp_answer(as_chunks, 7)


def test_chunked_body_over_max_body_bytes_gets_413_and_the_connection_closes(shared):
    body = b" " * 70_000 + mlp_body(1)  # valid JSON, but over the shared worker's 65536 bytes
    with Wire(shared) as wire:
        wire.send(http_bytes("POST", INFER, chunked(body, 8), {"Transfer-Encoding": "chunked", "X-Request-Id": "big"}))
        reply = wire.reply()
        error_of(reply, 413, "--max-body-bytes")
        assert (reply.headers["connection"], reply.headers["x-request-id"]) == ("close", "big")
        assert wire.closed_by_worker()
    shared.assert_answers()


@pytest.mark.parametrize("expect", [False, True], ids=["plain", "expect-100-continue"])
def test_content_length_over_max_body_bytes_gets_413_before_the_body_is_sent(shared, expect):
    headers = {"Content-Length": "1000000", "X-Request-Id": "too-big", **({"Expect": "100-continue"} if expect else {})}
    with Wire(shared) as wire:
        wire.send(http_bytes("POST", INFER, headers=headers))  # the head only: the refusal needs no body
        reply = wire.reply()  # not "100 Continue": the body would be refused
        error_of(reply, 413, "--max-body-bytes")
        assert (reply.headers["connection"], reply.headers["x-request-id"]) == ("close", "too-big")
        assert wire.closed_by_worker()


def test_expect_100_continue_gets_100_after_the_head_and_the_answer_after_the_body(shared):
    body = mlp_body(7)
    with Wire(shared) as wire:
        wire.send(http_bytes("POST", INFER, headers={"Content-Length": str(len(body)), "Expect": "100-continue",
                                                     "X-Request-Id": "waits"}))
        interim = wire.reply()
        assert (interim.status, interim.headers, interim.body) == (100, {}, b""), interim
        wire.send(body)
        assert_mlp_answer(wire.reply(), 7, "waits")
        wire.send(http_bytes("POST", INFER, mlp_body(1)))  # no Expect this time: no second "100 Continue"
        assert_mlp_answer(wire.reply(), 1)


def test_curl_with_expect_100_continue_does_not_wait_for_its_timeout(shared, tmp_path):
    (tmp_path / "request.json").write_bytes(b" " * 30_000 + mlp_body(7))
    started = time.monotonic()
    # curl waits --expect100-timeout for a "100 Continue" before it sends the body anyway.
    result = subprocess.run(["curl", "-sS", "-v", "--http1.1", "--expect100-timeout", "20",
                             "-H", "Expect: 100-continue", "-H", "Content-Type: application/json",
                             "--data-binary", "@request.json", f"http://127.0.0.1:{shared.port}{INFER}"],
                            cwd=tmp_path, capture_output=True, timeout=30)
    assert result.returncode == 0, result.stderr.decode()
    assert time.monotonic() - started < 10, "curl waited for a 100 Continue that never came"
    assert "< HTTP/1.1 100 Continue" in result.stderr.decode(), result.stderr.decode()
    answer = json.loads(result.stdout)
    np.testing.assert_allclose(output_array(answer), load("mlp", 7, "output"), atol=1e-5, rtol=0)


@pytest.mark.parametrize("path", ["/v2/health/live", "/v2/models/mlp", "/metrics"])
def test_head_gives_the_status_and_length_of_get_without_a_body(shared, path):
    with Wire(shared) as wire:
        wire.send(http_bytes("GET", path))
        get = wire.reply()
        wire.send(http_bytes("HEAD", path, headers={"X-Request-Id": "head"}))
        head = wire.reply(head_only=True)
        assert (head.status, head.headers["content-type"], head.headers["x-request-id"]) == (
            get.status, get.headers["content-type"], "head")
        if path != "/metrics":  # its counters moved with the GET
            assert head.headers["content-length"] == get.headers["content-length"] == str(len(get.body))
        # Had a body followed the HEAD's answer, this would read it as the next status line.
        wire.send(http_bytes("GET", "/v2/health/live"))
        assert wire.reply().json() == {"live": True}


@pytest.mark.parametrize("method,path,allowed", [("GET", INFER, "POST"), ("PUT", INFER, "POST"),
                                                 ("POST", "/v2/health/live", "GET, HEAD"),
                                                 ("DELETE", "/v2/models/mlp", "GET, HEAD")])
def test_wrong_method_on_a_known_path_gets_405_with_allow(shared, method, path, allowed):
    with Wire(shared) as wire:
        wire.send(http_bytes(method, path, b"{}" if method in ("POST", "PUT") else b""))
        reply = wire.reply()
        error_of(reply, 405, f"{method} {path} is not allowed", allowed)
        assert reply.headers["allow"] == allowed and "connection" not in reply.headers
        wire.send(http_bytes("GET", "/v2/health/live"))  # a 405 keeps the connection
        assert wire.reply().status == 200


def test_http_1_0_without_keep_alive_is_answered_then_closed(shared):
    with Wire(shared) as wire:
        wire.send(b"GET /v2/health/live HTTP/1.0\r\n\r\n")
        reply = wire.reply()
        assert (reply.status, reply.json(), reply.headers["connection"]) == (200, {"live": True}, "close")
        assert wire.closed_by_worker()


def test_http_1_0_with_keep_alive_is_told_the_connection_stays(shared):
    # An HTTP/1.0 client (ab -k) assumes the server closes unless the answer says keep-alive.
    with Wire(shared) as wire:
        for _ in range(2):
            wire.send(b"GET /v2/health/live HTTP/1.0\r\nConnection: keep-alive\r\n\r\n")
            reply = wire.reply()
            assert (reply.status, reply.headers.get("connection", "").lower()) == (200, "keep-alive"), reply


def test_connection_close_is_answered_with_connection_close_then_closed(shared):
    with Wire(shared) as wire:
        wire.send(http_bytes("POST", INFER, mlp_body(1), {"Connection": "close", "X-Request-Id": "last"}))
        reply = wire.reply()
        assert_mlp_answer(reply, 1, "last")
        assert reply.headers["connection"] == "close"
        assert wire.closed_by_worker()


PROTOCOL_ERRORS = {  # name: (what the client sends, the status, needles in the error)
    "malformed request line": (b"GARBAGE\r\nHost: worker\r\n\r\n", 400, ["METHOD TARGET HTTP/1.1"]),
    "HTTP/2.0": (http_bytes("GET", "/v2/health/live", version="HTTP/2.0"), 505, ["HTTP/2.0", "HTTP/1.1"]),
    "100 kB header field": (http_bytes("GET", "/v2/health/live", headers={"X-Big": "a" * 100_000}), 431,
                            ["longer than 65536 bytes"]),
    "gzip transfer coding": (http_bytes("POST", INFER, b"5\r\nhello\r\n0\r\n\r\n", {"Transfer-Encoding": "gzip"}),
                             501, ["'gzip'", "chunked"]),
    "Content-Length and Transfer-Encoding": (
        http_bytes("POST", INFER, b"5\r\nhello\r\n0\r\n\r\n", {"Content-Length": "18", "Transfer-Encoding": "chunked"}),
        400, ["both Content-Length and Transfer-Encoding"]),
}


@pytest.mark.parametrize("case", list(PROTOCOL_ERRORS))
def test_protocol_error_is_answered_with_json_then_the_connection_closes(shared, case):
    sent, status, needles = PROTOCOL_ERRORS[case]
    with Wire(shared) as wire:
        wire.send(sent + http_bytes("GET", "/v2/health/live"))  # never read: the stream cannot be trusted
        reply = wire.reply()
        error_of(reply, status, *needles)
        assert reply.headers["connection"] == "close"
        assert wire.closed_by_worker()
    shared.assert_answers()


def test_half_a_head_stalled_past_read_timeout_gets_408_and_others_are_served(serve):
    worker = serve("--read-timeout", 1)
    with Wire(worker) as stalled:
        stalled.send(b"POST /v2/models/mlp/infer HTTP/1.1\r\nHost: wor")
        started = time.monotonic()
        while time.monotonic() - started < 0.8:
            asked = time.monotonic()
            worker.assert_answers()
            assert time.monotonic() - asked < 0.5, "another client waited on the stalled one"
        reply = stalled.reply()
        waited = time.monotonic() - started
        error_of(reply, 408, "--read-timeout")
        assert reply.headers["connection"] == "close" and 0.9 < waited < 2.5, (reply.headers, waited)
        assert stalled.closed_by_worker()
    worker.assert_answers()


def test_500_idle_keep_alive_connections_do_not_keep_a_new_client_waiting(serve):
    worker = serve()
    idle = [Wire(worker) for _ in range(500)]
    try:
        for round_ in range(2):
            for i, wire in enumerate(idle):
                wire.send(http_bytes("GET", "/v2/health/live", headers={"X-Request-Id": f"{round_}-{i}"}))
            for i, wire in enumerate(idle):
                reply = wire.reply()
                assert (reply.status, reply.headers["x-request-id"]) == (200, f"{round_}-{i}"), reply
            if round_ == 0:  # now 500 connections sit idle, kept alive
                started = time.monotonic()
                worker.assert_answers()
                assert time.monotonic() - started < 0.5, "a new client waited behind the idle connections"
    finally:
        for wire in idle:
            wire.__exit__()


def test_metrics_count_the_transports_own_refusals(shared):
    before = shared.metrics()
    for case in ("HTTP/2.0", "100 kB header field"):
        with Wire(shared) as wire:
            wire.send(PROTOCOL_ERRORS[case][0])
            assert wire.reply().status == PROTOCOL_ERRORS[case][1]
    with Wire(shared) as wire:
        wire.send(http_bytes("POST", INFER, headers={"Content-Length": "1000000"}))
        assert wire.reply().status == 413
    after = shared.metrics()
    counted = {code: after.responses(code) - before.responses(code) for code in ("505", "431", "413", "200")}
    assert counted == {"505": 1, "431": 1, "413": 1, "200": 1}, counted  # 200: the first /metrics


def resident_bytes(worker: Worker) -> int:
    status = Path(f"/proc/{worker.process.pid}/status").read_text()
    return int(re.search(r"^VmRSS:\s+(\d+) kB", status, re.MULTILINE)[1]) * 1024


def test_client_that_pipelines_without_reading_is_not_buffered_without_bound(serve):
    worker = serve()
    one = http_bytes("GET", "/metrics")  # 40 bytes asking for several kB: the answers pile up fast
    count = 25_000
    before = resident_bytes(worker)
    with Wire(worker, timeout=10) as wire:
        sender = threading.Thread(target=wire.send, args=(one * count,))
        sender.start()
        time.sleep(0.5)  # the worker answers into its buffers while nobody reads
        grown = resident_bytes(worker) - before
        # Then every answer still arrives, in full, once the client reads.
        marker, tail, answered = b"HTTP/1.1 200 OK\r\n", b"", 0
        while answered < count:
            data = wire.sock.recv(1 << 20)
            assert data, f"the worker closed after {answered} of {count} answers"
            answered += (tail + data).count(marker)
            tail = (tail + data)[-len(marker) + 1:]
        sender.join()
    assert grown < 64 << 20, f"the worker grew by {grown >> 20} MB holding answers nobody read"
    worker.assert_answers()
