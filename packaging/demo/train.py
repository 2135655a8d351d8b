#!/usr/bin/env python3
"""The main job's trainer: logistic regression in numpy, tracked by mlops, exported to ONNX.

    mlops run exec --exp churn -- train.py DATA_DIR --lr 0.1 --epochs 60 --out model.onnx
Reads DATA_DIR/train.csv and test.csv, logs params and per-epoch metrics to the run named by
MLOPS_RUN_ID (through `mlops run log --file -`, one JSON line per epoch), writes the model as ONNX
(MatMul, Add, Sigmoid; the batch dimension symbolic) and stores it with the run."""
import argparse
import json
import os
import pathlib
import subprocess

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

MLOPS = os.environ.get("MLOPS", "mlops")


def load(path):
    data = np.loadtxt(path, delimiter=",", skiprows=1, dtype=np.float32)
    return data[:, :-1], data[:, -1]


def sigmoid(z):
    return 1.0 / (1.0 + np.exp(-z))


def export(weights, bias, path):
    graph = helper.make_graph(
        [helper.make_node("MatMul", ["features", "weights"], ["logits_raw"]),
         helper.make_node("Add", ["logits_raw", "bias"], ["logits"]),
         helper.make_node("Sigmoid", ["logits"], ["churn_probability"])],
        "churn",
        [helper.make_tensor_value_info("features", TensorProto.FLOAT, ["batch", 2])],
        [helper.make_tensor_value_info("churn_probability", TensorProto.FLOAT, ["batch", 1])],
        [numpy_helper.from_array(weights.reshape(2, 1).astype(np.float32), "weights"),
         numpy_helper.from_array(np.array([bias], dtype=np.float32), "bias")])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)], producer_name="mlops-demo")
    model.ir_version = 8
    onnx.checker.check_model(model)
    onnx.save(model, path)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("data", type=pathlib.Path)
    parser.add_argument("--lr", type=float, default=0.1)
    parser.add_argument("--epochs", type=int, default=60)
    parser.add_argument("--out", default="model.onnx")
    args = parser.parse_args()
    train_x, train_y = load(args.data / "train.csv")
    test_x, test_y = load(args.data / "test.csv")

    weights, bias = np.zeros(2, dtype=np.float32), 0.0
    lines = [json.dumps({"params": {"lr": str(args.lr), "epochs": str(args.epochs), "model": "logistic-regression"}})]
    for epoch in range(1, args.epochs + 1):
        p = sigmoid(train_x @ weights + bias)
        loss = float(-np.mean(train_y * np.log(p + 1e-7) + (1 - train_y) * np.log(1 - p + 1e-7)))
        weights -= args.lr * (train_x.T @ (p - train_y)) / len(train_y)
        bias -= args.lr * float(np.mean(p - train_y))
        accuracy = float(np.mean((sigmoid(test_x @ weights + bias) > 0.5) == test_y))
        lines.append(json.dumps({"metrics": {"loss": loss, "accuracy": accuracy}, "step": epoch}))
    subprocess.run([MLOPS, "run", "log", "--file", "-"], input="\n".join(lines) + "\n", text=True, check=True,
                   stdout=subprocess.DEVNULL)
    export(weights, bias, args.out)
    subprocess.run([MLOPS, "-q", "run", "artifact", "add", os.environ["MLOPS_RUN_ID"], args.out], check=True,
                   stdout=subprocess.DEVNULL)
    print(f"trained: lr={args.lr} test accuracy={accuracy:.3f} loss={loss:.3f}; model stored with the run as {args.out}")


if __name__ == "__main__":
    main()
