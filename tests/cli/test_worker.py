"""`mlops-worker run` and `mlops-worker bench`, seen from the outside: the real binary run on the real
model fixtures, its answers compared with what PyTorch computed for the same inputs (stored beside
the models by tests/fixtures/models/make_models.py, so no PyTorch is needed here), and every
mistake a caller can make answered with its exit code and a message that names the problem.

Exit codes (include/mlops/core/error.hpp): 2 usage or a request that does not fit the model,
3 not found, 5 invalid model, 1 anything else (an unsupported operator, no CUDA device)."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from conftest import BUILD_DIR, SOURCE_DIR, Result, clean_env, parse_one_document

WORKER = (BUILD_DIR / "mlops-worker").resolve()
MODELS = SOURCE_DIR / "tests" / "fixtures" / "models"
TORCH = MODELS / "torch"
# test_data_set_0 holds batch 1, test_data_set_1 batch 7 (make_models.py's BATCH_SIZES).
DATA_SETS = {1: "test_data_set_0", 7: "test_data_set_1"}
SIGNATURES = {  # input, output and the input's signature as the worker prints it
    "mlp": ("features", "probabilities", "features (float32 [batch, 4])"),
    "cnn_batchnorm": ("image", "logits", "image (float32 [batch, 1, 8, 8])"),
}
PREFIX = "mlops-worker: error: "


# Running the binary ---------------------------------------------------------------------------------


def worker(*args, stdin: str | None = None, cwd: Path | None = None, timeout: float = 60) -> Result:
    """mlops-worker ARGS... in a clean environment; stdin is empty unless given."""
    assert WORKER.is_file(), f"mlops-worker not found at {WORKER}: build it, or set MLOPS_BUILD_DIR"
    done = subprocess.run([str(WORKER), *map(str, args)], input=stdin if stdin is not None else "",
                          cwd=cwd or SOURCE_DIR, env=clean_env(), capture_output=True, text=True, timeout=timeout)
    return Result(done.returncode, done.stdout, done.stderr)


def succeeded(result: Result) -> dict:
    """Exit 0, nothing at all on stderr, and stdout exactly one JSON document on one line."""
    assert result.returncode == 0, f"exit {result.returncode}: {result.stderr}\n{result.stdout}"
    assert result.stderr == "", f"stderr should be empty on success: {result.stderr!r}"
    assert result.stdout.endswith("\n") and result.stdout.count("\n") == 1, f"not one line: {result.stdout!r}"
    return parse_one_document(result.stdout)


def failed(result: Result, exit_code: int, *needles: str) -> str:
    """Exit exit_code, nothing on stdout, one `mlops-worker: error:` line that mentions every needle."""
    assert result.returncode == exit_code, f"expected exit {exit_code}, got {result}"
    assert result.stdout == "", f"nothing belongs on stdout after an error: {result.stdout!r}"
    assert result.stderr.startswith(PREFIX), f"no `{PREFIX}` line on stderr: {result}"
    assert result.stderr.count("\n") == 1 and result.stderr.endswith("\n"), f"not one line: {result.stderr!r}"
    for needle in needles:
        assert needle in result.stderr, f"stderr does not mention {needle!r}: {result.stderr!r}"
    return result.stderr


def usage_error(result: Result, *needles: str) -> str:
    """A command-line mistake (the argument parser's): exit 2, stdout empty, the option named."""
    assert result.returncode == 2, f"expected exit 2, got {result}"
    assert result.stdout == ""
    for needle in needles:
        assert needle in result.stderr, f"stderr does not mention {needle!r}: {result.stderr!r}"
    return result.stderr


def gpu_present() -> bool:
    try:
        return subprocess.run(["nvidia-smi", "-L"], capture_output=True, timeout=30).returncode == 0
    except (FileNotFoundError, PermissionError, subprocess.TimeoutExpired):
        return False


NO_GPU = not gpu_present()


# Requests -------------------------------------------------------------------------------------------


def model_path(case: str) -> Path:
    return MODELS / f"{case}.onnx"


def load(case: str, batch: int, which: str) -> np.ndarray:
    return numpy_helper.to_array(onnx.load_tensor(str(TORCH / case / DATA_SETS[batch] / f"{which}_0.pb")))


def request(name: str, array: np.ndarray, *, flat=False, datatype="FP32", shape=None) -> str:
    data = array.reshape(-1).tolist() if flat else array.tolist()
    return json.dumps({"inputs": [{"name": name, "datatype": datatype,
                                   "shape": list(array.shape) if shape is None else list(shape), "data": data}]})


def torch_request(case: str, batch: int, **kwargs) -> tuple[str, np.ndarray]:
    """The request for PyTorch's stored input (nested lists by default) and PyTorch's output for it."""
    array = load(case, batch, "input")
    assert array.shape[0] == batch and array.dtype == np.float32
    return request(SIGNATURES[case][0], array, **kwargs), load(case, batch, "output")


def the_output(response: dict, case: str, expected_shape) -> np.ndarray:
    """The response's only output, checked for its name, datatype and shape, as a float32 array."""
    assert set(response) == {"model_name", "device", "outputs"}, response.keys()
    assert response["model_name"] == f"{case}.onnx"
    assert len(response["outputs"]) == 1, response["outputs"]
    output = response["outputs"][0]
    assert (output["name"], output["datatype"], output["shape"]) == (SIGNATURES[case][1], "FP32", list(expected_shape))
    data = np.array(output["data"], dtype=np.float32)
    assert data.size == int(np.prod(expected_shape)), "as many values as the shape says"
    return data.reshape(expected_shape)


def assert_matches_torch(actual: np.ndarray, expected: np.ndarray):
    difference = float(np.max(np.abs(actual - expected))) if expected.size else 0.0
    assert np.allclose(actual, expected, rtol=0, atol=1e-5), f"max |difference| {difference} > 1e-5"


def mlp_body(name="features", datatype="FP32", shape=(1, 4), data=None) -> str:
    data = data if data is not None else [0.5] * int(np.prod(shape))
    return json.dumps({"inputs": [{"name": name, "datatype": datatype, "shape": list(shape), "data": data}]})


# Answers that match PyTorch ---------------------------------------------------------------------------


@pytest.mark.parametrize("batch", [1, 7])
@pytest.mark.parametrize("case", ["mlp", "cnn_batchnorm"])
def test_run_with_a_request_file_matches_torch(case, batch, tmp_path):
    body, expected = torch_request(case, batch)
    request_file = tmp_path / "request.json"
    request_file.write_text(body)
    response = succeeded(worker("run", model_path(case), "--request", request_file, "--device", "cpu", cwd=tmp_path))
    assert response["device"].startswith("cpu")
    assert_matches_torch(the_output(response, case, expected.shape), expected)


@pytest.mark.parametrize("case", ["mlp", "cnn_batchnorm"])
def test_run_reads_the_request_from_standard_input_by_default_and_with_dash(case, tmp_path):
    body, expected = torch_request(case, 7)
    request_file = tmp_path / "request.json"
    request_file.write_text(body)
    from_file = succeeded(worker("run", model_path(case), "--request", request_file, "--device", "cpu"))
    dash = succeeded(worker("run", model_path(case), "--request", "-", "--device", "cpu", stdin=body))
    default = succeeded(worker("run", model_path(case), "--device", "cpu", stdin=body))
    assert_matches_torch(the_output(dash, case, expected.shape), expected)
    assert dash == default == from_file, "the same request gives the same answer, whichever way it came"


@pytest.mark.parametrize("case", ["mlp", "cnn_batchnorm"])
def test_nested_and_flat_data_are_the_same_request(case):
    nested, expected = torch_request(case, 7)
    flat, _ = torch_request(case, 7, flat=True)
    assert json.loads(nested)["inputs"][0]["data"][0] != json.loads(flat)["inputs"][0]["data"][0]
    from_nested = succeeded(worker("run", model_path(case), "--device", "cpu", stdin=nested))
    from_flat = succeeded(worker("run", model_path(case), "--device", "cpu", stdin=flat))
    assert_matches_torch(the_output(from_nested, case, expected.shape), expected)
    assert from_nested == from_flat


@pytest.mark.parametrize("case", ["mlp", "cnn_batchnorm"])
def test_batch_1_and_batch_7_on_the_same_model_and_each_row_alone_gives_its_row(case, tmp_path):
    """One model file, run at batch 1 and batch 7; then the batch-7 rows one at a time, which must
    give the rows of the batch-7 answer (nothing leaks between rows, e.g. batch statistics)."""
    model = tmp_path / f"{case}.onnx"
    shutil.copyfile(model_path(case), model)
    name = SIGNATURES[case][0]
    for batch in (1, 7, 1):
        body, expected = torch_request(case, batch)
        response = succeeded(worker("run", model, "--device", "cpu", stdin=body, cwd=tmp_path))
        assert_matches_torch(the_output(response, case, expected.shape), expected)
    inputs, expected = load(case, 7, "input"), load(case, 7, "output")
    for row in range(7):
        single = inputs[row:row + 1]
        response = succeeded(worker("run", model, "--device", "cpu", stdin=request(name, single), cwd=tmp_path))
        assert_matches_torch(the_output(response, case, (1, *expected.shape[1:])), expected[row:row + 1])


def test_threads_do_not_change_the_answer():
    body, expected = torch_request("cnn_batchnorm", 7)
    one = succeeded(worker("run", model_path("cnn_batchnorm"), "--device", "cpu", "--threads", "1", stdin=body))
    two = succeeded(worker("run", model_path("cnn_batchnorm"), "--device", "cpu", "--threads", "2", stdin=body))
    assert one["device"].startswith("cpu") and two["device"].startswith("cpu")
    for response in (one, two):
        assert_matches_torch(the_output(response, "cnn_batchnorm", expected.shape), expected)


def test_device_auto_works_and_without_a_gpu_is_the_cpu():
    body, expected = torch_request("mlp", 7)
    for args in (["--device", "auto"], []):  # auto is the default
        response = succeeded(worker("run", model_path("mlp"), *args, stdin=body))
        assert_matches_torch(the_output(response, "mlp", expected.shape), expected)
        if NO_GPU:
            assert response["device"].startswith("cpu"), response["device"]
        else:
            assert response["device"].startswith(("cpu", "cuda")), response["device"]


# Requests that do not fit the model: exit 2, the problem named -------------------------------------------


@pytest.mark.parametrize("body, needles", [
    pytest.param("{not json", ["standard input", "not an inference request", '{"inputs": [...]}'], id="malformed-json"),
    pytest.param("", ["standard input", "not an inference request"], id="empty"),
    pytest.param('[{"name": "features"}]', ["not an inference request"], id="not-an-object"),
    pytest.param('{"outputs": []}', ["not an inference request", '"inputs"'], id="no-inputs"),
    pytest.param('{"inputs": {"name": "features"}}', ["not an inference request", '"inputs"'], id="inputs-not-a-list"),
    pytest.param('{"inputs": []}', ["needs the input 'features'", "float32 [batch, 4]"], id="no-input-given"),
    pytest.param(mlp_body(name="pixels"), ["no input named 'pixels'", "its inputs are features (float32 [batch, 4])"],
                 id="unknown-input-name"),
    pytest.param(mlp_body(datatype="INT64", data=[1, 2, 3, 4]), ["'features'", "must be float32, not int64"],
                 id="wrong-datatype-int64"),
    pytest.param(mlp_body(datatype="FP64"), ["'features'", "must be float32, not float64"], id="wrong-datatype-fp64"),
    pytest.param(mlp_body(datatype="FP16"), ['datatype "FP16"', "FP32"], id="unknown-datatype"),
    pytest.param(mlp_body(shape=(4,)), ["'features'", "1 dimensions", "expects 2", "[batch, 4]"], id="rank-too-low"),
    pytest.param(mlp_body(shape=(1, 1, 4)), ["'features'", "3 dimensions", "expects 2"], id="rank-too-high"),
    pytest.param(mlp_body(shape=(1, 5)), ["'features'", "[1, 5]", "dimension 1 must be 4"], id="wrong-fixed-dimension"),
    pytest.param(mlp_body(shape=(1, 4), data=[1, 2, 3]), ["data has 3 values", "[1, 4] needs 4"], id="too-few-values"),
    pytest.param(mlp_body(shape=(2, 4), data=[1, 2, 3, 4]), ["data has 4 values", "[2, 4] needs 8"], id="shape-wants-more"),
    pytest.param(mlp_body(shape=(1, 4), data=[[1, 2], [3, 4], [5]]), ["data has 5 values", "needs 4"], id="too-many-values"),
    pytest.param(mlp_body(data=[1, 2, "three", 4]), ['data[2] is "three"', "not a number"], id="not-a-number"),
    pytest.param(json.dumps({"inputs": [{"name": "features", "datatype": "FP32", "shape": [1, 4]}]}), ['no "data"'],
                 id="no-data"),
    pytest.param(mlp_body(shape=(1, -4)), ["shape", "non-negative integers"], id="negative-dimension"),
])
def test_a_request_that_does_not_fit_the_model_is_a_usage_error_naming_the_problem(body, needles):
    failed(worker("run", model_path("mlp"), "--device", "cpu", stdin=body), 2, *needles)


def test_unknown_input_and_wrong_fixed_dimension_on_the_cnn_name_its_signature():
    image = np.zeros((1, 1, 8, 9), dtype=np.float32)
    failed(worker("run", model_path("cnn_batchnorm"), "--device", "cpu", stdin=request("image", image)), 2,
           "'image'", "[1, 1, 8, 9]", "dimension 3 must be 8")
    failed(worker("run", model_path("cnn_batchnorm"), "--device", "cpu", stdin=request("features", image[..., :8])), 2,
           "no input named 'features'", SIGNATURES["cnn_batchnorm"][2])


def test_a_malformed_request_file_is_named_in_the_message(tmp_path):
    broken = tmp_path / "broken.json"
    broken.write_text('{"inputs": [')
    failed(worker("run", model_path("mlp"), "--request", broken, "--device", "cpu"), 2,
           str(broken), "not an inference request")


def test_a_missing_request_file_is_not_found(tmp_path):
    failed(worker("run", model_path("mlp"), "--request", tmp_path / "absent.json", "--device", "cpu"), 3,
           "absent.json")


def test_an_input_given_twice_is_a_usage_error():
    twice = json.dumps({"inputs": [
        {"name": "features", "datatype": "FP32", "shape": [1, 4], "data": [1, 2, 3, 4]},
        {"name": "features", "datatype": "FP32", "shape": [1, 4], "data": [9, 9, 9, 9]}]})
    failed(worker("run", model_path("mlp"), "--device", "cpu", stdin=twice), 2, "'features'")


def test_a_value_out_of_float32_range_is_a_usage_error():
    result = worker("run", model_path("mlp"), "--device", "cpu", stdin=mlp_body(data=[1e39, 2, 3, 4]))
    failed(result, 2, "data[0]")


# Models that cannot be run -------------------------------------------------------------------------------


@pytest.mark.parametrize("verb", ["run", "bench"])
def test_a_missing_model_file_is_not_found(verb, tmp_path):
    missing = tmp_path / "absent.onnx"
    failed(worker(verb, missing, "--device", "cpu", stdin=mlp_body()), 3, str(missing))


@pytest.mark.parametrize("verb", ["run", "bench"])
@pytest.mark.parametrize("content, needle", [
    (b"these are my notes about the churn model, not a model\n", "not a valid model"),
    (b"", "empty"),
], ids=["text", "empty"])
def test_a_file_that_is_not_a_model_is_an_invalid_model(verb, content, needle, tmp_path):
    fake = tmp_path / "notes.onnx"
    fake.write_bytes(content)
    failed(worker(verb, fake, "--device", "cpu", stdin=mlp_body()), 5, "notes.onnx", needle)


def test_a_directory_given_as_the_model_names_it(tmp_path):
    folder = tmp_path / "model_dir.onnx"
    folder.mkdir()
    result = worker("run", folder, "--device", "cpu", stdin=mlp_body())
    assert result.returncode == 2 and result.stdout == ""
    assert "model_dir.onnx" in result.stderr and "basic_filebuf" not in result.stderr, result.stderr


def test_a_directory_given_as_the_request_names_it(tmp_path):
    folder = tmp_path / "requests.d"
    folder.mkdir()
    result = worker("run", model_path("mlp"), "--request", folder, "--device", "cpu")
    assert result.returncode == 2 and result.stdout == ""
    assert "requests.d" in result.stderr and "basic_filebuf" not in result.stderr, result.stderr


def unsupported_model(path: Path) -> Path:
    """x [batch, 3] -> Erf -> Relu -> Cos -> com.example.Frobnicate: opset 17, two standard operators the
    runtime lacks around one it has, and one from a custom domain."""
    nodes = [helper.make_node("Erf", ["x"], ["a"]), helper.make_node("Relu", ["a"], ["b"]),
             helper.make_node("Cos", ["b"], ["c"]), helper.make_node("Frobnicate", ["c"], ["y"], domain="com.example")]
    graph = helper.make_graph(nodes, "unsupported", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", 3])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch", 3])])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17), helper.make_opsetid("com.example", 1)],
                              producer_name="mlops-tests")
    model.ir_version = 8
    onnx.save(model, str(path))
    return path


@pytest.mark.parametrize("verb", ["run", "bench"])
def test_a_model_with_unsupported_operators_lists_them_and_the_opset(verb, tmp_path):
    model = unsupported_model(tmp_path / "unsupported.onnx")
    body = json.dumps({"inputs": [{"name": "x", "datatype": "FP32", "shape": [1, 3], "data": [1, 2, 3]}]})
    message = failed(worker(verb, model, "--device", "cpu", stdin=body), 1,
                     "unsupported.onnx", "Erf", "Cos", "Frobnicate", "opset 17")
    listed = message.split("supported:", 1)[0]
    assert "Relu" not in listed, f"only the unsupported operators are listed first: {message!r}"


def test_unsupported_operators_are_reported_before_the_request_is_read(tmp_path):
    model = unsupported_model(tmp_path / "unsupported.onnx")
    failed(worker("run", model, "--device", "cpu", stdin="{not json"), 1, "Erf", "opset 17")


# Devices ----------------------------------------------------------------------------------------------


@pytest.mark.skipif(not NO_GPU, reason="this machine has a GPU (nvidia-smi -L succeeds)")
@pytest.mark.parametrize("verb", ["run", "bench"])
def test_device_cuda_without_a_gpu_says_why_and_suggests_the_cpu(verb):
    body, _ = torch_request("mlp", 1)
    message = failed(worker(verb, model_path("mlp"), "--device", "cuda", stdin=body), 1, "CUDA", "--device cpu")
    assert re.search(r"no CUDA device: [^;]*\w[^;]*; use --device cpu", message), f"the reason is given: {message!r}"


def test_an_unknown_device_is_a_usage_error():
    usage_error(worker("run", model_path("mlp"), "--device", "tpu", stdin=mlp_body()), "--device", "tpu")


# bench ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("case, batch", [("mlp", 1), ("cnn_batchnorm", 7)])
def test_bench_prints_timings_for_the_batch_it_was_given(case, batch):
    timings = succeeded(worker("bench", model_path(case), "--batch", batch, "--iterations", "5", "--warmup", "1",
                               "--device", "cpu"))
    assert timings["batch"] == batch and timings["iterations"] == 5
    assert timings["model"] == f"{case}.onnx" and timings["device"].startswith("cpu")
    for key in ("p50_ms", "mean_ms", "min_ms"):
        assert isinstance(timings[key], (int, float)) and timings[key] > 0, (key, timings)
    assert timings["min_ms"] <= timings["p50_ms"]


def test_bench_with_auto_device_and_no_warmup():
    timings = succeeded(worker("bench", model_path("mlp"), "--batch", "3", "--iterations", "2", "--warmup", "0",
                               "--device", "auto"))
    assert timings["batch"] == 3 and timings["p50_ms"] > 0
    if NO_GPU:
        assert timings["device"].startswith("cpu")


@pytest.mark.parametrize("args, named", [
    (["--batch", "0"], "--batch"),
    (["--batch", "-3"], "--batch"),
    (["--batch", "two"], "--batch"),
    (["--iterations", "0"], "--iterations"),
    (["--warmup", "-1"], "--warmup"),
])
def test_bench_refuses_a_bad_option_as_a_usage_error(args, named):
    usage_error(worker("bench", model_path("mlp"), *args, "--device", "cpu"), named)


@pytest.mark.parametrize("args", [[], ["frobnicate"], ["run"], ["bench"], ["run", "--bogus"]],
                         ids=["no-verb", "unknown-verb", "run-without-model", "bench-without-model", "unknown-option"])
def test_command_line_mistakes_exit_2(args):
    usage_error(worker(*args))
