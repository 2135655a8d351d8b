#!/usr/bin/env python3
"""Writes conformance cases (ONNX backend-test layout) sized to reach the CUDA kernels' paths that
the backend node tests' small tensors never take: softmax rows longer than a warp's share, GEMMs
of many tiles with odd and unaligned sizes, grid-stride loops of several turns, block reductions
over large planes. They carry inputs only: `mlops-conformance --compare-devices` checks the CUDA
device's outputs against the CPU's.

    make_cases.py OUT_FOLDER

Needs python3-onnx and python3-numpy. Inputs come from a fixed seed, so every run writes the same
cases.
"""
import sys
from pathlib import Path

import numpy as np
from onnx import TensorProto, checker, helper, numpy_helper, shape_inference

OPSET = 13
rng = np.random.default_rng(20261125)


def floats(*shape):
    return rng.standard_normal(shape).astype(np.float32)


def write_case(root, name, nodes, inputs, initializers=(), output_type=TensorProto.FLOAT):
    """inputs: {name: array} fed per request (float32); initializers: {name: array} in the model;
    the graph's one output is "y"."""
    initializers = dict(initializers)
    graph = helper.make_graph(
        nodes,
        name,
        [helper.make_tensor_value_info(n, TensorProto.FLOAT, a.shape) for n, a in inputs.items()],
        [helper.make_tensor_value_info("y", output_type, None)],
        [numpy_helper.from_array(a, n) for n, a in initializers.items()],
    )
    # The output's shape comes from ONNX's own inference (the checker wants one declared).
    model = shape_inference.infer_shapes(helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)]))
    checker.check_model(model)
    folder = root / name
    data = folder / "test_data_set_0"
    data.mkdir(parents=True, exist_ok=True)
    (folder / "model.onnx").write_bytes(model.SerializeToString())
    for index, array in enumerate(inputs.values()):
        (data / f"input_{index}.pb").write_bytes(numpy_helper.from_array(array).SerializeToString())


def node(op, inputs, outputs=("y",), **attributes):
    return helper.make_node(op, list(inputs), list(outputs), **attributes)


def main(root):
    root = Path(root)
    # Softmax family: rows over 1024 take a whole block (block reduction with __syncthreads);
    # a middle axis walks columns.
    write_case(root, "softmax_long_rows", [node("Softmax", ["x"], axis=-1)], {"x": floats(3, 2500)})
    write_case(root, "logsoftmax_long_rows", [node("LogSoftmax", ["x"], axis=1)], {"x": floats(2, 4000)})
    write_case(root, "softmax_middle_axis", [node("Softmax", ["x"], axis=1)], {"x": floats(2, 300, 7)})
    write_case(root, "argmax_long_rows", [node("ArgMax", ["x"], axis=1, keepdims=0)], {"x": floats(4, 3000)},
               output_type=TensorProto.INT64)
    write_case(root, "argmax_columns", [node("ArgMax", ["x"], axis=0)], {"x": floats(500, 40)},
               output_type=TensorProto.INT64)

    # GEMM: several 128 x 128 tiles and more than 8 tile rows (the grouped walk), sizes that are
    # not multiples of 4 (scalar loads), K not a multiple of 8, batches broadcast by stride 0.
    write_case(root, "matmul_many_tiles", [node("MatMul", ["a", "b"])], {"a": floats(1100, 200), "b": floats(200, 260)})
    write_case(root, "matmul_odd_sizes", [node("MatMul", ["a", "b"])], {"a": floats(129, 13), "b": floats(13, 131)})
    write_case(root, "matmul_broadcast_batch", [node("MatMul", ["a", "b"])],
               {"a": floats(3, 1, 130, 70), "b": floats(2, 70, 150)})
    write_case(root, "gemm_transposed_bias", [node("Gemm", ["a", "b", "c"], alpha=0.5, beta=2.0, transA=1, transB=1)],
               {"a": floats(90, 140)}, {"b": floats(150, 90), "c": floats(1, 150)})
    write_case(root, "gemm_column_bias", [node("Gemm", ["a", "b", "c"], transB=1)],
               {"a": floats(200, 33)}, {"b": floats(77, 33), "c": floats(200, 1)})

    # Convolution: strided, dilated, padded with bias; grouped; pointwise (no im2col); 3-D.
    write_case(root, "conv_strided_dilated", [node("Conv", ["x", "w", "b"], pads=[1, 1, 1, 1], strides=[2, 2],
                                                   dilations=[2, 2])],
               {"x": floats(2, 8, 40, 40)}, {"w": floats(16, 8, 3, 3), "b": floats(16)})
    write_case(root, "conv_grouped", [node("Conv", ["x", "w"], group=4, pads=[1, 1, 1, 1])],
               {"x": floats(1, 16, 30, 30)}, {"w": floats(16, 4, 3, 3)})
    write_case(root, "conv_pointwise", [node("Conv", ["x", "w", "b"])],
               {"x": floats(2, 32, 20, 20)}, {"w": floats(24, 32, 1, 1), "b": floats(24)})
    write_case(root, "conv_3d", [node("Conv", ["x", "w"], pads=[1, 1, 1, 1, 1, 1])],
               {"x": floats(1, 2, 12, 12, 12)}, {"w": floats(3, 2, 3, 3, 3)})

    # Pooling and normalization over planes larger than a block.
    write_case(root, "global_average_pool_large_planes", [node("GlobalAveragePool", ["x"])],
               {"x": floats(2, 6, 70, 70)})
    write_case(root, "maxpool_ceil_padded", [node("MaxPool", ["x"], kernel_shape=[3, 3], strides=[2, 2],
                                                  pads=[1, 1, 1, 1], ceil_mode=1)],
               {"x": floats(2, 4, 64, 64)})
    write_case(root, "averagepool_excluding_pads", [node("AveragePool", ["x"], kernel_shape=[4, 4], strides=[3, 3],
                                                         pads=[1, 2, 1, 2], count_include_pad=0)],
               {"x": floats(2, 3, 50, 50)})
    write_case(root, "batchnorm_large", [node("BatchNormalization", ["x", "scale", "bias", "mean", "var"],
                                              epsilon=1e-3)],
               {"x": floats(4, 16, 40, 40)},
               {"scale": floats(16), "bias": floats(16), "mean": floats(16),
                "var": rng.uniform(0.5, 2.0, 16).astype(np.float32)})

    # Layout and element-wise work of many grid-stride turns.
    write_case(root, "transpose_4d", [node("Transpose", ["x"], perm=[2, 0, 3, 1])], {"x": floats(4, 30, 50, 6)})
    write_case(root, "transpose_matrix", [node("Transpose", ["x"], perm=[1, 0])], {"x": floats(64, 300)})
    write_case(root, "concat_middle_axis", [node("Concat", ["a", "b"], axis=1)],
               {"a": floats(3, 100, 40), "b": floats(3, 50, 40)})
    write_case(root, "add_broadcast_large", [node("Add", ["a", "b"])], {"a": floats(8, 1, 300, 1), "b": floats(1, 50, 1, 7)})
    write_case(root, "div_broadcast_rank_5", [node("Div", ["a", "b"])],
               {"a": floats(2, 3, 1, 5, 6), "b": rng.uniform(0.5, 2.0, (3, 4, 1, 6)).astype(np.float32)})
    write_case(root, "activations_long", [node("Sigmoid", ["x"], ["s"]), node("Tanh", ["s"], ["t"]),
                                          node("LeakyRelu", ["t"], ["y"], alpha=0.2)],
               {"x": floats(40000)})
    return 0


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    sys.exit(main(sys.argv[1]))
