#pragma once
// The shape arithmetic operators share across devices: broadcasting, axes, and the windows of
// convolutions and pooling. Kernels of every device call these, so a shape is computed one way.

#include "mlops/runtime/graph.hpp"
#include "mlops/runtime/tensor.hpp"

#include <vector>

namespace mlops::runtime {

// Multidirectional (numpy) broadcasting of two shapes. Throws Error(usage) naming the node.
Shape broadcast_shapes(const Shape& a, const Shape& b, const Node& node);

// The strides, in elements, to walk `shape` as if it had `out`'s shape (0 along broadcast
// dimensions), with `out.size()` entries.
std::vector<std::int64_t> broadcast_strides(const Shape& shape, const Shape& out);

// `axis` in [-rank, rank) made non-negative; Error(integrity) naming the node when out of range.
std::int64_t normalize_axis(std::int64_t axis, std::int64_t rank, const Node& node);

// A tensor seen as [outer, length, inner] around one axis, or, with `to_end`, around everything
// from `axis` on as one (Softmax before opset 13): how softmax and reductions walk it. `axis`
// must be normalized already.
struct AxisLayout
{
  std::int64_t outer = 1;
  std::int64_t length = 1;
  std::int64_t inner = 1;
};
AxisLayout axis_layout(const Shape& shape, std::int64_t axis, bool to_end = false);

// Sliding windows over the spatial dimensions (everything after N and C) of Conv, MaxPool and
// AveragePool: kernel_shape, strides, dilations, pads and auto_pad, ceil_mode (pools).
struct WindowGeometry
{
  std::int64_t batch = 0;
  std::int64_t channels = 0;
  Shape input;       // spatial input dimensions
  Shape kernel;
  Shape strides;
  Shape dilations;
  Shape pads_begin;
  Shape pads_end;
  Shape output;      // spatial output dimensions
};

// `input` is the full NC... shape; `kernel` the spatial kernel (from kernel_shape, or a Conv's
// weight). Throws Error(usage/integrity) naming the node for shapes that do not fit.
WindowGeometry window_geometry(const Node& node, const Shape& input, const Shape& kernel, bool ceil_mode);

} // namespace mlops::runtime
