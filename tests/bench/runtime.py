#!/usr/bin/python3
"""Runtime benchmark (issue 7): mlops-worker's executor against PyTorch and numpy, same machine,
same run, as ratios.

CPU targets: the MLP at batch 1 at least as fast as torch (ratio <= 1.0), the MLP at batch 256
and the CNN at batch 64 within 1.5x of torch, a 1024^3 float32 GEMM at >= 70% of numpy's rate.
Both the small fixture models (tests/fixtures/models) and wider "bench" models of the same
architecture are measured. With --cuda (on a machine with an NVIDIA GPU): a chain of 4096^3
GEMMs at >= 70% of torch.matmul's float32 rate, and the wide MLP at batch 4096 faster than torch
eager; both end to end (host input in, host output out) on both sides.

    tests/bench/runtime.py [--smoke] [--cuda] [--worker build/mlops-worker]

--smoke: few iterations, no torch needed (numpy's GEMM is the only baseline), never fails on a
ratio. Without torch, the torch rows are skipped with a message."""
import argparse
import json
import os
import pathlib
import statistics
import subprocess
import sys
import tempfile
import time

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

HERE = pathlib.Path(__file__).resolve().parent
FIXTURES = HERE.parent / "fixtures" / "models"

try:
    import torch
except ImportError:
    torch = None


def worker_bench(worker, model, batch, iterations, device, warmup=5):
    result = subprocess.run([str(worker), "bench", str(model), "--batch", str(batch), "--iterations", str(iterations),
                             "--warmup", str(warmup), "--device", device], capture_output=True, text=True)
    if result.returncode != 0:
        sys.exit(f"runtime.py: mlops-worker bench {model} failed: {result.stderr.strip()}")
    return json.loads(result.stdout)["p50_ms"]


def median_ms(function, iterations, warmup=5):
    for _ in range(warmup):
        function()
    times = []
    for _ in range(iterations):
        start = time.perf_counter()
        function()
        times.append((time.perf_counter() - start) * 1000)
    return statistics.median(times)


def wide_models(folder):
    """The bench MLP (784-1024-1024-10) and CNN (two conv blocks on 28x28) in torch, exported with a
    dynamic batch, or None without torch."""
    if torch is None:
        return None
    torch.manual_seed(0)
    mlp = torch.nn.Sequential(torch.nn.Linear(784, 1024), torch.nn.ReLU(), torch.nn.Linear(1024, 1024), torch.nn.ReLU(),
                              torch.nn.Linear(1024, 10), torch.nn.Softmax(dim=1)).eval()
    cnn = torch.nn.Sequential(torch.nn.Conv2d(1, 16, 3, padding=1), torch.nn.BatchNorm2d(16), torch.nn.ReLU(),
                              torch.nn.MaxPool2d(2), torch.nn.Conv2d(16, 32, 3, padding=1), torch.nn.BatchNorm2d(32),
                              torch.nn.ReLU(), torch.nn.MaxPool2d(2), torch.nn.Flatten(),
                              torch.nn.Linear(32 * 7 * 7, 10)).eval()
    models = {}
    for name, module, example in [("wide-mlp", mlp, torch.randn(2, 784)), ("wide-cnn", cnn, torch.randn(2, 1, 28, 28))]:
        path = folder / f"{name}.onnx"
        torch.onnx.export(module, example, str(path), input_names=["x"], output_names=["y"],
                          dynamic_axes={"x": {0: "batch"}, "y": {0: "batch"}}, opset_version=13)
        models[name] = (path, module, tuple(example.shape[1:]))
    return models


def fixture_modules():
    """The fixture models' torch modules (same architecture; timing does not depend on weights)."""
    if torch is None:
        return {}
    sys.path.insert(0, str(FIXTURES))
    import make_models
    return {"mlp": (FIXTURES / "mlp.onnx", make_models.Mlp().eval(), (4,)),
            "cnn": (FIXTURES / "cnn.onnx", make_models.Cnn().eval(), (1, 8, 8))}


def matmul_chain(folder, size, links):
    """x[size, size] multiplied `links` times by one weight: transfers amortized over the GEMMs."""
    rng = np.random.default_rng(0)
    weight = (rng.standard_normal((size, size)) / np.sqrt(size)).astype(np.float32)
    nodes = [helper.make_node("MatMul", ["x" if i == 0 else f"h{i}", "w"], [f"h{i + 1}" if i + 1 < links else "y"])
             for i in range(links)]
    graph = helper.make_graph(nodes, "chain", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [size, size])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [size, size])],
                              [numpy_helper.from_array(weight, "w")])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    path = folder / f"matmul-{size}x{links}.onnx"
    onnx.save(model, str(path))
    return path, weight


class Table:
    def __init__(self):
        self.failed = []

    def row(self, what, ours, theirs, baseline, ratio, target, higher_is_better=False):
        ok = ratio >= target if higher_is_better else ratio <= target
        sign = ">=" if higher_is_better else "<="
        print(f"{what:<34} mlops {ours:>9.3f}  {baseline} {theirs:>9.3f}  ratio {ratio:6.2f} (target {sign} {target})"
              f"  {'ok' if ok else 'MISSED'}")
        if not ok:
            self.failed.append(what)


def cpu_rows(args, table, folder):
    iterations = 20 if args.smoke else 200
    threads = os.cpu_count()
    if torch is not None:
        torch.set_num_threads(threads)
    cases = []
    for name, (path, module, shape) in fixture_modules().items():
        cases += [(name, path, module, shape, batch) for batch in ([1, 256] if name == "mlp" else [64])]
    wide = wide_models(folder) or {}
    for name, (path, module, shape) in wide.items():
        cases += [(name, path, module, shape, batch) for batch in ([1, 256] if name == "wide-mlp" else [64])]
    if torch is None:
        print("runtime.py: torch is not installed: the torch rows are skipped (Debian python3-torch)")
    for name, path, module, shape, batch in cases:
        ours = worker_bench(args.worker, path, batch, iterations, "cpu")
        example = torch.randn(batch, *shape)
        with torch.inference_mode():
            theirs = median_ms(lambda: module(example), iterations)
        table.row(f"cpu {name} batch {batch} (ms)", ours, theirs, "torch", ours / theirs, 1.0 if batch == 1 else 1.5)
    size = 1024
    path, weight = matmul_chain(folder, size, 1)
    ours = worker_bench(args.worker, path, 1, 5 if args.smoke else 30, "cpu")
    x = np.random.default_rng(1).standard_normal((size, size)).astype(np.float32)
    theirs = median_ms(lambda: x @ weight, 5 if args.smoke else 30)
    gflop = 2 * size**3 / 1e9
    table.row(f"cpu gemm {size}^3 (GFLOP/s)", gflop / ours * 1000, gflop / theirs * 1000, "numpy", theirs / ours, 0.7, True)


def cuda_rows(args, table, folder):
    if torch is None or not torch.cuda.is_available():
        print("runtime.py: --cuda needs torch with a CUDA device; skipped")
        return
    iterations = 5 if args.smoke else 20
    size, links = 4096, 8
    path, weight = matmul_chain(folder, size, links)
    ours = worker_bench(args.worker, path, 1, iterations, "cuda", warmup=2)
    w = torch.from_numpy(weight).cuda()
    x = torch.randn(size, size)

    def chain():
        h = x.cuda()
        for _ in range(links):
            h = h @ w
        return h.cpu()
    torch.backends.cuda.matmul.allow_tf32 = False
    theirs = median_ms(chain, iterations, warmup=2)
    tflop = links * 2 * size**3 / 1e12
    table.row(f"cuda gemm chain {links}x{size}^3 (TFLOP/s)", tflop / ours * 1000, tflop / theirs * 1000, "torch",
              theirs / ours, 0.7, True)
    wide = wide_models(folder)
    path, module, shape = wide["wide-mlp"]
    module = module.cuda()
    batch = 4096
    ours = worker_bench(args.worker, path, batch, iterations * 5, "cuda")
    example = torch.randn(batch, *shape)
    with torch.inference_mode():
        theirs = median_ms(lambda: module(example.cuda()).cpu(), iterations * 5)
    table.row(f"cuda wide-mlp batch {batch} (ms)", ours, theirs, "torch", ours / theirs, 1.0)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--smoke", action="store_true")
    parser.add_argument("--cuda", action="store_true")
    parser.add_argument("--worker", default=str(HERE.parent.parent / "build" / "mlops-worker"))
    args = parser.parse_args()
    args.worker = pathlib.Path(args.worker).resolve()
    table = Table()
    with tempfile.TemporaryDirectory(prefix="mlops-bench-runtime.") as temp:
        folder = pathlib.Path(temp)
        print(f"runtime benchmark on {os.cpu_count()} cores{' (smoke)' if args.smoke else ''}; lower ms and higher "
              "GFLOP/s are better; ratio is mlops/baseline for times, baseline/mlops for rates")
        cpu_rows(args, table, folder)
        if args.cuda:
            cuda_rows(args, table, folder)
    if table.failed and not args.smoke:
        sys.exit(f"runtime.py: missed targets: {', '.join(table.failed)}")


if __name__ == "__main__":
    main()
