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
import shutil
import sys
from pathlib import Path

import numpy as np
from onnx import TensorProto, checker, helper, numpy_helper, shape_inference

OPSET = 13
rng = np.random.default_rng(20261125)


def floats(*shape):
    return rng.standard_normal(shape).astype(np.float32)


def doubles(*shape):
    return rng.standard_normal(shape)


def integers(dtype, *shape):
    """Values over the whole range of `dtype` (int64: a range whose products still fit)."""
    info = np.iinfo(dtype)
    low, high = (-(1 << 40), 1 << 40) if dtype == np.int64 else (int(info.min), int(info.max) + 1)
    return rng.integers(low, high, shape).astype(dtype)


def small_integers(dtype, low, high, *shape):
    """Values in [low, high): many ties."""
    return rng.integers(low, high, shape).astype(dtype)


def tensor_type(array):
    return numpy_helper.from_array(np.asarray(array)).data_type


def write_case(root, name, nodes, inputs, initializers=(), output_type=None, opset=OPSET, outputs=None):
    """inputs: {name: array} fed per request, of any numpy dtype ONNX has (float32 unless said);
    initializers: {name: array} in the model; the graph's one output is "y", of the first input's
    element type unless output_type says otherwise, or `outputs` lists them: {name: element type,
    or (element type, shape) where ONNX's inference leaves the shape out}."""
    initializers = dict(initializers)
    if outputs is None:
        outputs = {"y": output_type if output_type is not None else tensor_type(next(iter(inputs.values())))}
    graph = helper.make_graph(
        nodes,
        name,
        [helper.make_tensor_value_info(n, tensor_type(a), a.shape) for n, a in inputs.items()],
        [helper.make_tensor_value_info(n, *(t if isinstance(t, tuple) else (t, None))) for n, t in outputs.items()],
        [numpy_helper.from_array(a, n) for n, a in initializers.items()],
    )
    # The output's shape comes from ONNX's own inference (the checker wants one declared).
    model = shape_inference.infer_shapes(helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)]))
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
    # Only this run's cases: one renamed or dropped must not keep running from an earlier run.
    shutil.rmtree(root, ignore_errors=True)
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

    # ---- Element types, shapes and attributes the node tests leave out ----

    # Add/Sub/Mul/Div in every integer type and float64, same-shape and broadcast kernels: 8-bit
    # products wrap, integer division by 0 gives 0 and MIN / -1 wraps (apply_binary's branches).
    write_case(root, "add_int32_broadcast", [node("Add", ["a", "b"])],
               {"a": integers(np.int32, 300, 40) // 4, "b": integers(np.int32, 40) // 4})
    write_case(root, "sub_int64_same_shape", [node("Sub", ["a", "b"])],
               {"a": integers(np.int64, 5000), "b": integers(np.int64, 5000)})
    write_case(root, "mul_int8_wrapping", [node("Mul", ["a", "b"])],
               {"a": integers(np.int8, 64, 70), "b": integers(np.int8, 70)})
    div_a = integers(np.int32, 4000)
    div_b = small_integers(np.int32, -3, 4, 4000)  # zeros and -1 among them
    div_a[:50] = np.iinfo(np.int32).min
    div_b[:50:2] = -1
    write_case(root, "div_int32_zero_and_min", [node("Div", ["a", "b"])], {"a": div_a, "b": div_b})
    div_b8 = small_integers(np.int8, -2, 3, 40)
    div_b8[:3] = [0, -1, 1]
    div_a8 = integers(np.int8, 50, 40)
    div_a8[:, 1] = -128
    write_case(root, "div_int8_broadcast_zero_and_min", [node("Div", ["a", "b"])], {"a": div_a8, "b": div_b8})
    write_case(root, "div_uint8_by_zero", [node("Div", ["a", "b"])],
               {"a": integers(np.uint8, 3000), "b": small_integers(np.uint8, 0, 3, 3000)})
    write_case(root, "add_float64_broadcast", [node("Add", ["a", "b"])],
               {"a": doubles(3, 1, 200), "b": doubles(1, 50, 1)})
    # Broadcast walks: 8 dimensions that cannot merge (max_rank), a rank-0 operand, shapes of
    # ones only (a walk of rank 0), size-1 dimensions between others, an empty output.
    write_case(root, "add_broadcast_rank_8", [node("Add", ["a", "b"])],
               {"a": floats(3, 1, 3, 1, 3, 1, 3, 1), "b": floats(1, 4, 1, 4, 1, 4, 1, 4)})
    write_case(root, "mul_rank_0_operand", [node("Mul", ["a", "b"])],
               {"a": np.array(1.5, dtype=np.float32), "b": floats(5000)})
    write_case(root, "sub_shapes_of_ones", [node("Sub", ["a", "b"])], {"a": floats(1, 1, 1), "b": floats(1)})
    write_case(root, "add_size_one_dims", [node("Add", ["a", "b"])],
               {"a": floats(4, 1, 30, 1, 20), "b": floats(4, 7, 1, 1, 20)})
    write_case(root, "mul_empty", [node("Mul", ["a", "b"])], {"a": floats(0, 7), "b": floats(7)})
    # 9 dimensions that cannot merge: beyond max_rank, so "unsupported" on CUDA (make_walk's
    # UnsupportedError), never a failure.
    write_case(root, "add_broadcast_rank_9_unsupported", [node("Add", ["a", "b"])],
               {"a": floats(2, 1, 2, 1, 2, 1, 2, 1, 2), "b": floats(1, 2, 1, 2, 1, 2, 1, 2, 1)})

    # Activations in float64 (Sigmoid's both branches with exp overflowing, if it were computed
    # the naive way) and Relu in integer types (opset 14).
    write_case(root, "activations_float64", [node("Sigmoid", ["x"], ["s"]), node("Tanh", ["x"], ["t"]),
                                             node("Add", ["s", "t"], ["u"]),
                                             node("LeakyRelu", ["u"], ["y"], alpha=0.3)],
               {"x": doubles(5000) * 300})
    write_case(root, "relu_int8", [node("Relu", ["x"])], {"x": integers(np.int8, 3000)}, opset=14)
    write_case(root, "relu_int32", [node("Relu", ["x"])], {"x": integers(np.int32, 3000)}, opset=14)
    write_case(root, "relu_int64", [node("Relu", ["x"])], {"x": integers(np.int64, 3000)}, opset=14)
    write_case(root, "relu_empty", [node("Relu", ["x"])], {"x": floats(0, 5)})
    # Clip: bounds as inputs read on the host (one, the other, both, min > max), every type, the
    # attributes of opset 6, and NaN and infinities passing through.
    write_case(root, "clip_int8_both_bounds", [node("Clip", ["x", "lo", "hi"])],
               {"x": integers(np.int8, 3000), "lo": np.array(-20, np.int8), "hi": np.array(90, np.int8)})
    write_case(root, "clip_int32_min_only", [node("Clip", ["x", "lo"])],
               {"x": integers(np.int32, 3000), "lo": np.array(-1000, np.int32)})
    write_case(root, "clip_int64_max_only", [node("Clip", ["x", "", "hi"])],
               {"x": integers(np.int64, 3000), "hi": np.array(12345, np.int64)})
    write_case(root, "clip_uint8_min_above_max", [node("Clip", ["x", "lo", "hi"])],
               {"x": integers(np.uint8, 3000), "lo": np.array(200, np.uint8), "hi": np.array(100, np.uint8)})
    write_case(root, "clip_float64_bounds", [node("Clip", ["x", "lo", "hi"])],
               {"x": doubles(3000), "lo": np.array(-0.5), "hi": np.array(0.75)})
    write_case(root, "clip_opset6_attributes", [node("Clip", ["x"], min=-0.25, max=0.5)], {"x": floats(3000)}, opset=6)
    clip_special = floats(3000)
    clip_special[::7] = np.nan
    clip_special[1::7] = np.inf
    clip_special[2::7] = -np.inf
    write_case(root, "clip_nan_and_infinities", [node("Clip", ["x", "lo", "hi"])],
               {"x": clip_special, "lo": np.array(-1, np.float32), "hi": np.array(1, np.float32)})

    # Softmax before opset 13: the input flattened to [outer, rest] (long rows, short rows, the
    # whole tensor as one row, the default axis 1).
    write_case(root, "softmax_opset11_flattened_long_rows", [node("Softmax", ["x"], axis=1)], {"x": floats(3, 40, 30)},
               opset=11)
    write_case(root, "logsoftmax_opset11_flattened_short_rows", [node("LogSoftmax", ["x"], axis=2)],
               {"x": floats(4, 5, 6, 7)}, opset=11)
    write_case(root, "softmax_opset11_axis_0", [node("Softmax", ["x"], axis=0)], {"x": floats(6, 300)}, opset=11)
    write_case(root, "logsoftmax_opset11_default_axis", [node("LogSoftmax", ["x"])], {"x": floats(5, 4, 300)}, opset=11)
    # float64 in each of the three kernels.
    write_case(root, "softmax_float64_long_rows", [node("Softmax", ["x"])], {"x": doubles(3, 2000)})
    write_case(root, "logsoftmax_float64_short_rows", [node("LogSoftmax", ["x"])], {"x": doubles(100, 37)})
    write_case(root, "softmax_float64_middle_axis", [node("Softmax", ["x"], axis=1)], {"x": doubles(3, 50, 9)})
    # More rows than the grid has blocks (block rows) or warps (warp rows); rows of exactly
    # warp_row_limit and one more; an axis of length 1 (rows and columns); masked rows with
    # -inf (attention); no rows at all.
    write_case(root, "softmax_block_rows_grid_stride", [node("Softmax", ["x"])], {"x": floats(70, 1100)})
    write_case(root, "logsoftmax_warp_rows_grid_stride", [node("LogSoftmax", ["x"])], {"x": floats(600, 33)})
    write_case(root, "softmax_rows_of_1024", [node("Softmax", ["x"])], {"x": floats(4, 1024)})
    write_case(root, "softmax_rows_of_1025", [node("Softmax", ["x"])], {"x": floats(4, 1025)})
    write_case(root, "softmax_axis_of_one_row", [node("Softmax", ["x"])], {"x": floats(50, 1)})
    write_case(root, "logsoftmax_axis_of_one_column", [node("LogSoftmax", ["x"], axis=1)], {"x": floats(3, 1, 40)})
    masked = floats(8, 2000)
    masked[:, 1000:] = -np.inf
    masked[3, 5:] = -np.inf
    write_case(root, "softmax_masked_rows", [node("Softmax", ["x"])], {"x": masked})
    write_case(root, "softmax_empty", [node("Softmax", ["x"])], {"x": floats(0, 10)})

    # ArgMax in every type the kernel takes, ties (small ranges) with and without
    # select_last_index, NaN (largest, first or last of them), one long column, an empty output.
    write_case(root, "argmax_int8_rows", [node("ArgMax", ["x"], axis=1)], {"x": integers(np.int8, 60, 500)},
               output_type=TensorProto.INT64)
    write_case(root, "argmax_uint8_ties_last", [node("ArgMax", ["x"], axis=0, select_last_index=1)],
               {"x": small_integers(np.uint8, 0, 4, 40, 300)}, output_type=TensorProto.INT64)
    write_case(root, "argmax_int32_ties_middle_axis", [node("ArgMax", ["x"], axis=1, keepdims=0)],
               {"x": small_integers(np.int32, -3, 3, 5, 200, 6)}, output_type=TensorProto.INT64)
    write_case(root, "argmax_int64_one_column", [node("ArgMax", ["x"], axis=0)], {"x": integers(np.int64, 3000)},
               output_type=TensorProto.INT64)
    nan_rows = doubles(30, 200)
    nan_rows[::3, 17] = np.nan
    nan_rows[::2, 150] = np.nan
    write_case(root, "argmax_float64_nan_last", [node("ArgMax", ["x"], axis=1, select_last_index=1)], {"x": nan_rows},
               output_type=TensorProto.INT64)
    nan_columns = floats(200, 30)
    nan_columns[17, ::3] = np.nan
    nan_columns[150, ::2] = np.nan
    write_case(root, "argmax_float_nan_first", [node("ArgMax", ["x"], axis=0)], {"x": nan_columns},
               output_type=TensorProto.INT64)
    write_case(root, "argmax_empty", [node("ArgMax", ["x"], axis=1)], {"x": floats(0, 10)},
               output_type=TensorProto.INT64)
    # More columns than the grid's threads: argmax_columns' grid-stride loop.
    write_case(root, "argmax_many_columns", [node("ArgMax", ["x"], axis=0)], {"x": floats(3, 10000)},
               output_type=TensorProto.INT64)

    # Gemm: no C (beta 0, C never read), C as a scalar, a vector, one element; beta 0 with a C;
    # transA alone; K = 0 (the output is beta * C, never through cuBLAS); one row or one column
    # (the CPU's gemv).
    write_case(root, "gemm_no_c", [node("Gemm", ["a", "b"], alpha=1.5)], {"a": floats(150, 70)}, {"b": floats(70, 140)})
    write_case(root, "gemm_scalar_c", [node("Gemm", ["a", "b", "c"], beta=0.5)],
               {"a": floats(130, 60)}, {"b": floats(60, 140), "c": np.array(2.5, np.float32)})
    write_case(root, "gemm_vector_c", [node("Gemm", ["a", "b", "c"])], {"a": floats(130, 60)},
               {"b": floats(60, 141), "c": floats(141)})
    write_case(root, "gemm_one_element_c", [node("Gemm", ["a", "b", "c"], transB=1)], {"a": floats(129, 33)},
               {"b": floats(131, 33), "c": floats(1)})
    write_case(root, "gemm_beta_zero_with_c", [node("Gemm", ["a", "b", "c"], beta=0.0)], {"a": floats(130, 60)},
               {"b": floats(60, 140), "c": floats(130, 140)})
    write_case(root, "gemm_transposed_a", [node("Gemm", ["a", "b", "c"], transA=1, alpha=-0.5)],
               {"a": floats(37, 141)}, {"b": floats(37, 133), "c": floats(141, 133)})
    write_case(root, "gemm_k_zero", [node("Gemm", ["a", "b", "c"], beta=2.0)],
               {"a": floats(130, 0), "b": floats(0, 140)}, {"c": floats(140)})
    # (A of positive values: sums of 300 normal products cancel to near 0, where the devices'
    # orders of summation differ by more than the tolerance relative to the result.)
    write_case(root, "gemm_one_row", [node("Gemm", ["a", "b", "c"])],
               {"a": rng.uniform(0, 1, (1, 300)).astype(np.float32)},
               {"b": rng.uniform(0, 1, (300, 260)).astype(np.float32), "c": floats(260)})
    write_case(root, "gemm_one_column", [node("Gemm", ["a", "b"], transA=1)],
               {"a": floats(70, 300)}, {"b": floats(70, 1)})

    # MatMul: 1-D operands (a row, a column, both: a scalar; a row against a batch), batches
    # the host loops over (outer odometer), batches that become rows of one GEMM, K = 0, an empty
    # batch, batch strides that rule out 16-byte loads.
    write_case(root, "matmul_1d_left", [node("MatMul", ["a", "b"])], {"a": floats(300), "b": floats(300, 150)})
    write_case(root, "matmul_1d_right", [node("MatMul", ["a", "b"])], {"a": floats(4, 130, 70), "b": floats(70)})
    write_case(root, "matmul_1d_both", [node("MatMul", ["a", "b"])], {"a": floats(500), "b": floats(500)})
    write_case(root, "matmul_1d_left_batched_right", [node("MatMul", ["a", "b"])],
               {"a": floats(70), "b": floats(3, 70, 130)})
    write_case(root, "matmul_outer_batch_loop", [node("MatMul", ["a", "b"])],
               {"a": floats(2, 1, 3, 20, 30), "b": floats(1, 4, 1, 30, 25)})
    write_case(root, "matmul_batch_as_rows", [node("MatMul", ["a", "b"])],
               {"a": floats(3, 5, 40, 64), "b": floats(1, 64, 96)})
    write_case(root, "matmul_k_zero", [node("MatMul", ["a", "b"])], {"a": floats(130, 0), "b": floats(0, 70)})
    write_case(root, "matmul_empty_batch", [node("MatMul", ["a", "b"])], {"a": floats(0, 5, 6), "b": floats(6, 7)})
    write_case(root, "matmul_unaligned_batches", [node("MatMul", ["a", "b"])],
               {"a": floats(3, 33, 17), "b": floats(3, 17, 35)})

    # Conv: a 1x1 kernel with stride 2 whose end padding makes the output as large as the input
    # (not pointwise: it must not multiply the input as is), 1-D, 3-D with asymmetric pads,
    # auto_pad, pads beyond the kernel (windows wholly in the padding), grouped with dilations,
    # more images than groups, a pointwise grouped Conv, no input channels (K = 0), no images.
    write_case(root, "conv_1x1_strided_end_padding", [node("Conv", ["x", "w", "b"], strides=[2, 2], pads=[0, 0, 2, 2])],
               {"x": floats(2, 16, 3, 3)}, {"w": floats(8, 16, 1, 1), "b": floats(8)})
    write_case(root, "conv_1d_1x1_strided_end_padding", [node("Conv", ["x", "w"], strides=[2], pads=[0, 1])],
               {"x": floats(2, 4, 2)}, {"w": floats(3, 4, 1)})
    write_case(root, "conv_1d", [node("Conv", ["x", "w", "b"], strides=[2], dilations=[3], pads=[2, 4])],
               {"x": floats(2, 6, 300)}, {"w": floats(8, 6, 5), "b": floats(8)})
    write_case(root, "conv_3d_asymmetric", [node("Conv", ["x", "w"], strides=[2, 1, 2], dilations=[1, 2, 2],
                                                 pads=[1, 0, 2, 0, 1, 1])],
               {"x": floats(1, 3, 10, 12, 14)}, {"w": floats(4, 3, 3, 2, 3)})
    write_case(root, "conv_auto_pad_same_upper", [node("Conv", ["x", "w"], strides=[2, 2], auto_pad="SAME_UPPER")],
               {"x": floats(2, 4, 31, 29)}, {"w": floats(6, 4, 4, 3)})
    write_case(root, "conv_auto_pad_same_lower", [node("Conv", ["x", "w"], dilations=[2, 2], auto_pad="SAME_LOWER")],
               {"x": floats(2, 4, 30, 27)}, {"w": floats(6, 4, 3, 4)})
    write_case(root, "conv_auto_pad_valid", [node("Conv", ["x", "w"], strides=[3, 3], auto_pad="VALID")],
               {"x": floats(2, 4, 31, 29)}, {"w": floats(6, 4, 3, 3)})
    write_case(root, "conv_asymmetric_pads", [node("Conv", ["x", "w", "b"], pads=[0, 3, 2, 1])],
               {"x": floats(2, 5, 25, 25)}, {"w": floats(7, 5, 3, 3), "b": floats(7)})
    write_case(root, "conv_pads_beyond_kernel", [node("Conv", ["x", "w", "b"], pads=[3, 3, 3, 3])],
               {"x": floats(1, 3, 10, 10)}, {"w": floats(4, 3, 2, 2), "b": floats(4)})
    write_case(root, "conv_depthwise_dilated", [node("Conv", ["x", "w", "b"], group=12, dilations=[2, 3],
                                                     pads=[2, 3, 2, 3])],
               {"x": floats(3, 12, 20, 20)}, {"w": floats(12, 1, 3, 3), "b": floats(12)})
    write_case(root, "conv_grouped_more_images", [node("Conv", ["x", "w", "b"], group=2, pads=[1, 1, 1, 1])],
               {"x": floats(4, 6, 15, 15)}, {"w": floats(8, 3, 3, 3), "b": floats(8)})
    write_case(root, "conv_pointwise_grouped", [node("Conv", ["x", "w", "b"], group=4)],
               {"x": floats(2, 16, 12, 12)}, {"w": floats(8, 4, 1, 1), "b": floats(8)})
    write_case(root, "conv_no_channels", [node("Conv", ["x", "w", "b"])],
               {"x": floats(2, 0, 6, 6)}, {"w": floats(4, 0, 3, 3), "b": floats(4)})
    write_case(root, "conv_no_images", [node("Conv", ["x", "w"])], {"x": floats(0, 3, 8, 8)}, {"w": floats(4, 3, 3, 3)})

    # MaxPool: int8 (the lowest value -128 against padding) and uint8, dilations with ceil_mode,
    # 1-D, 3-D, auto_pad, windows wholly in the padding, NaN inputs.
    write_case(root, "maxpool_int8_padded", [node("MaxPool", ["x"], kernel_shape=[3, 3], strides=[2, 2],
                                                  pads=[1, 1, 1, 1])],
               {"x": integers(np.int8, 2, 3, 40, 40)})
    write_case(root, "maxpool_uint8_dilated_ceil", [node("MaxPool", ["x"], kernel_shape=[3, 3], strides=[2, 2],
                                                         dilations=[2, 2], pads=[1, 0, 1, 0], ceil_mode=1)],
               {"x": integers(np.uint8, 2, 3, 40, 41)})
    write_case(root, "maxpool_dilated_padded_ceil", [node("MaxPool", ["x"], kernel_shape=[3, 2], strides=[2, 3],
                                                          dilations=[2, 3], pads=[2, 1, 2, 1], ceil_mode=1)],
               {"x": floats(2, 4, 45, 45)})
    write_case(root, "maxpool_1d", [node("MaxPool", ["x"], kernel_shape=[4], strides=[3], pads=[1, 2])],
               {"x": floats(3, 5, 500)})
    write_case(root, "maxpool_3d", [node("MaxPool", ["x"], kernel_shape=[2, 3, 3], strides=[2, 2, 2],
                                         pads=[0, 1, 1, 1, 1, 0])],
               {"x": floats(1, 2, 16, 18, 20)})
    write_case(root, "maxpool_same_upper", [node("MaxPool", ["x"], kernel_shape=[3, 3], strides=[2, 2],
                                                 auto_pad="SAME_UPPER")],
               {"x": floats(2, 3, 33, 33)})
    write_case(root, "maxpool_windows_in_padding", [node("MaxPool", ["x"], kernel_shape=[2, 2], pads=[3, 3, 3, 3])],
               {"x": floats(1, 2, 6, 6)})
    pool_nan = floats(1, 2, 20, 20)
    pool_nan[0, 0, 5, 5] = np.nan
    pool_nan[0, 1, 10:12, 3] = np.nan
    write_case(root, "maxpool_nan", [node("MaxPool", ["x"], kernel_shape=[3, 3], strides=[2, 2])], {"x": pool_nan})

    # AveragePool: count_include_pad=1 (with ceil_mode's last window past the end padding),
    # 1-D and 3-D, auto_pad, windows wholly in the padding.
    write_case(root, "averagepool_count_include_pad", [node("AveragePool", ["x"], kernel_shape=[3, 3], strides=[2, 2],
                                                            pads=[1, 1, 1, 1], count_include_pad=1)],
               {"x": floats(2, 3, 37, 37)})
    write_case(root, "averagepool_include_pad_ceil", [node("AveragePool", ["x"], kernel_shape=[3, 4], strides=[3, 3],
                                                           pads=[1, 0, 0, 1], ceil_mode=1, count_include_pad=1)],
               {"x": floats(2, 3, 32, 35)})
    write_case(root, "averagepool_1d_include_pad", [node("AveragePool", ["x"], kernel_shape=[5], strides=[2],
                                                         pads=[2, 1], count_include_pad=1)],
               {"x": floats(3, 4, 301)})
    write_case(root, "averagepool_3d", [node("AveragePool", ["x"], kernel_shape=[3, 2, 3], strides=[2, 2, 1],
                                             pads=[1, 0, 1, 1, 1, 0])],
               {"x": floats(1, 2, 12, 14, 16)})
    write_case(root, "averagepool_same_lower", [node("AveragePool", ["x"], kernel_shape=[4, 4], strides=[2, 2],
                                                     auto_pad="SAME_LOWER")],
               {"x": floats(2, 3, 33, 30)})
    write_case(root, "averagepool_windows_in_padding", [node("AveragePool", ["x"], kernel_shape=[2, 2],
                                                             pads=[3, 3, 3, 3])],
               {"x": floats(1, 2, 6, 6)})

    # GlobalAveragePool: more planes than blocks, planes smaller than a block, 1-D and 3-D, and
    # empty planes.
    write_case(root, "global_average_pool_many_small_planes", [node("GlobalAveragePool", ["x"])],
               {"x": floats(40, 30, 5, 5)})
    write_case(root, "global_average_pool_1d", [node("GlobalAveragePool", ["x"])], {"x": floats(3, 4, 1000)})
    write_case(root, "global_average_pool_3d", [node("GlobalAveragePool", ["x"])], {"x": floats(2, 3, 9, 10, 11)})
    write_case(root, "global_average_pool_empty_planes", [node("GlobalAveragePool", ["x"])], {"x": floats(2, 3, 0, 4)})

    # BatchNormalization on [N, C] (planes of one element) and 1-D inputs.
    write_case(root, "batchnorm_2d_input", [node("BatchNormalization", ["x", "scale", "bias", "mean", "var"])],
               {"x": floats(300, 40)},
               {"scale": floats(40), "bias": floats(40), "mean": floats(40),
                "var": rng.uniform(0.5, 2.0, 40).astype(np.float32)})
    write_case(root, "batchnorm_1d_input", [node("BatchNormalization", ["x", "scale", "bias", "mean", "var"])],
               {"x": floats(4, 8, 300)},
               {"scale": floats(8), "bias": floats(8), "mean": floats(8),
                "var": rng.uniform(0.5, 2.0, 8).astype(np.float32)})

    # Transpose of 1-, 8- and 1-byte words (int64, uint8, double, int8, bool), 6 and 8 dimensions
    # that do not merge, size-1 dimensions (one that keeps the order: an alias), empty.
    write_case(root, "transpose_int64", [node("Transpose", ["x"], perm=[2, 0, 1])],
               {"x": integers(np.int64, 30, 40, 5)})
    write_case(root, "transpose_uint8", [node("Transpose", ["x"], perm=[0, 2, 1])],
               {"x": integers(np.uint8, 3, 64, 65)})
    write_case(root, "transpose_float64_rank_6", [node("Transpose", ["x"], perm=[5, 3, 1, 4, 0, 2])],
               {"x": doubles(2, 3, 4, 5, 2, 3)})
    write_case(root, "transpose_int8_rank_8", [node("Transpose", ["x"], perm=[7, 6, 5, 4, 3, 2, 1, 0])],
               {"x": integers(np.int8, 2, 3, 2, 3, 2, 3, 2, 3)})
    write_case(root, "transpose_bool", [node("Transpose", ["x"], perm=[1, 0])],
               {"x": rng.integers(0, 2, (40, 50)).astype(bool)})
    write_case(root, "transpose_size_one_alias", [node("Transpose", ["x"], perm=[2, 0, 1, 3])],
               {"x": floats(1, 50, 1, 40)})
    write_case(root, "transpose_size_one_dims", [node("Transpose", ["x"], perm=[4, 3, 2, 1, 0])],
               {"x": floats(1, 30, 1, 40, 1)})
    write_case(root, "transpose_empty", [node("Transpose", ["x"], perm=[2, 0, 1])], {"x": floats(0, 3, 4)})

    # Concat: axis 0 (one copy per input), other types, three inputs on the last axis, an input
    # empty along the axis, 1-D.
    write_case(root, "concat_int64_axis_0", [node("Concat", ["a", "b"], axis=0)],
               {"a": integers(np.int64, 100, 30), "b": integers(np.int64, 50, 30)})
    write_case(root, "concat_uint8_three_last_axis", [node("Concat", ["a", "b", "c"], axis=-1)],
               {"a": integers(np.uint8, 20, 30, 7), "b": integers(np.uint8, 20, 30, 1),
                "c": integers(np.uint8, 20, 30, 12)})
    write_case(root, "concat_float64_middle_axis", [node("Concat", ["a", "b"], axis=1)],
               {"a": doubles(4, 10, 6), "b": doubles(4, 3, 6)})
    write_case(root, "concat_int8_with_empty", [node("Concat", ["a", "b"], axis=1)],
               {"a": integers(np.int8, 5, 0, 9), "b": integers(np.int8, 5, 4, 9)})
    write_case(root, "concat_bool", [node("Concat", ["a", "b"], axis=1)],
               {"a": rng.integers(0, 2, (30, 5)).astype(bool), "b": rng.integers(0, 2, (30, 6)).astype(bool)})
    write_case(root, "concat_int32_1d", [node("Concat", ["a", "b"], axis=0)],
               {"a": integers(np.int32, 1000), "b": integers(np.int32, 1)})

    # Dropout's mask: float before opset 10 (fill_words), bool after (memset).
    write_case(root, "dropout_opset7_float_mask", [node("Dropout", ["x"], ["y", "mask"], ratio=0.3)],
               {"x": floats(3000)},
               opset=7, outputs={"y": TensorProto.FLOAT, "mask": (TensorProto.FLOAT, [3000])})
    write_case(root, "dropout_opset7_float64_mask", [node("Dropout", ["x"], ["y", "mask"])], {"x": doubles(50, 60)},
               opset=7, outputs={"y": TensorProto.DOUBLE, "mask": (TensorProto.DOUBLE, [50, 60])})
    write_case(root, "dropout_bool_mask", [node("Dropout", ["x"], ["y", "mask"])], {"x": floats(3000)},
               outputs={"y": TensorProto.FLOAT, "mask": TensorProto.BOOL})
    return 0


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    sys.exit(main(sys.argv[1]))
