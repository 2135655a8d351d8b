"""mlops-worker run and bench: the runtime from the command line, against PyTorch's stored outputs
(tests/fixtures/models/torch, made by make_models.py) and with the errors a caller can make."""
from __future__ import annotations

import json
import subprocess

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from conftest import BUILD_DIR, SOURCE_DIR

WORKER = BUILD_DIR / "mlops-worker"
TORCH_CASES = SOURCE_DIR / "tests" / "fixtures" / "models" / "torch"


def worker(*args, stdin: str | None = None):
    return subprocess.run([str(WORKER), *map(str, args)], input=stdin, capture_output=True, text=True, timeout=60)


def request_for(case_dir, data_set) -> tuple[str, np.ndarray]:
    model = onnx.load(str(case_dir / "model.onnx"))
    tensor = numpy_helper.to_array(onnx.load_tensor(str(case_dir / data_set / "input_0.pb")))
    document = {"inputs": [{"name": model.graph.input[0].name, "datatype": "FP32", "shape": list(tensor.shape),
                            "data": tensor.tolist()}]}  # nested lists: flattened by the worker
    expected = numpy_helper.to_array(onnx.load_tensor(str(case_dir / data_set / "output_0.pb")))
    return json.dumps(document), expected


@pytest.mark.parametrize("case", ["mlp", "cnn", "cnn_batchnorm"])
def test_run_matches_torch_at_two_batch_sizes(case, tmp_path):
    case_dir = TORCH_CASES / case
    for data_set in ["test_data_set_0", "test_data_set_1"]:
        body, expected = request_for(case_dir, data_set)
        request = tmp_path / "request.json"
        request.write_text(body)
        result = worker("run", case_dir / "model.onnx", "--request", request, "--device", "cpu")
        assert result.returncode == 0 and result.stderr == "", result
        response = json.loads(result.stdout)  # exactly one document
        output = response["outputs"][0]
        assert output["datatype"] == "FP32" and output["shape"] == list(expected.shape)
        assert np.allclose(np.array(output["data"], dtype=np.float32).reshape(expected.shape), expected, rtol=0, atol=1e-5)


def test_run_reads_the_request_from_standard_input_and_auto_picks_a_device():
    body, expected = request_for(TORCH_CASES / "mlp", "test_data_set_1")
    result = worker("run", TORCH_CASES / "mlp" / "model.onnx", "--device", "auto", stdin=body)
    assert result.returncode == 0, result
    response = json.loads(result.stdout)
    assert response["device"].startswith(("cpu", "cuda"))
    assert np.allclose(np.array(response["outputs"][0]["data"]).reshape(expected.shape), expected, atol=1e-5)


def mlp_request(name="features", datatype="FP32", shape=(1, 4), data=None):
    data = data if data is not None else [0.5] * int(np.prod(shape))
    return json.dumps({"inputs": [{"name": name, "datatype": datatype, "shape": list(shape), "data": data}]})


@pytest.mark.parametrize("body, needles", [
    ("{not json", ["not an inference request"]),
    ('{"outputs": []}', ["not an inference request"]),
    (mlp_request(name="pixels"), ["no input named 'pixels'", "features"]),
    (mlp_request(datatype="INT64", data=[1, 2, 3, 4]), ["must be float32", "int64"]),
    (mlp_request(shape=(4,)), ["1 dimensions", "features"]),
    (mlp_request(shape=(1, 5)), ["dimension 1 must be 4"]),
    (mlp_request(shape=(1, 4), data=[1, 2, 3]), ["3 values", "needs 4"]),
    (mlp_request(datatype="FP16"), ["datatype \"FP16\""]),
])
def test_requests_that_do_not_fit_are_usage_errors(body, needles):
    result = worker("run", TORCH_CASES / "mlp" / "model.onnx", "--device", "cpu", stdin=body)
    assert result.returncode == 2, result
    assert result.stdout == ""
    for needle in needles:
        assert needle in result.stderr, result


def test_models_that_cannot_be_loaded(tmp_path):
    missing = worker("run", tmp_path / "absent.onnx", "--device", "cpu", stdin=mlp_request())
    assert missing.returncode == 3 and "absent.onnx" in missing.stderr
    text = tmp_path / "notes.onnx"
    text.write_text("these are notes, not a model\n")
    invalid = worker("run", text, "--device", "cpu", stdin=mlp_request())
    assert invalid.returncode == 5 and "not a valid model" in invalid.stderr, invalid
    graph = helper.make_graph([helper.make_node("Erf", ["x"], ["y"]), helper.make_node("Relu", ["y"], ["z"])], "g",
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1])],
                              [helper.make_tensor_value_info("z", TensorProto.FLOAT, [1])])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    onnx.save(model, str(tmp_path / "erf.onnx"))
    unsupported = worker("run", tmp_path / "erf.onnx", "--device", "cpu", stdin=mlp_request())
    assert unsupported.returncode == 1, unsupported
    assert "Erf" in unsupported.stderr and "opset 13" in unsupported.stderr and "Relu," in unsupported.stderr


def gpu_present() -> bool:
    try:
        return subprocess.run(["nvidia-smi", "-L"], capture_output=True).returncode == 0
    except FileNotFoundError:
        return False


@pytest.mark.skipif(gpu_present(), reason="this machine has a GPU")
def test_cuda_without_a_gpu_says_why_and_what_to_do():
    result = worker("run", TORCH_CASES / "mlp" / "model.onnx", "--device", "cuda", stdin=mlp_request())
    assert result.returncode == 1, result
    assert "no CUDA device" in result.stderr and "--device cpu" in result.stderr


def test_bench_prints_timings_for_the_batch_it_was_given():
    result = worker("bench", TORCH_CASES / "cnn" / "model.onnx", "--batch", "16", "--iterations", "5", "--device", "cpu")
    assert result.returncode == 0 and result.stderr == "", result
    timings = json.loads(result.stdout)
    assert timings["batch"] == 16 and timings["iterations"] == 5
    assert 0 < timings["min_ms"] <= timings["p50_ms"] and timings["pool_bytes"] > 0
    assert worker("bench", TORCH_CASES / "cnn" / "model.onnx", "--batch", "0").returncode == 2
