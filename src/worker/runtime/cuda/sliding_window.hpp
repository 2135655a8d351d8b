#pragma once
// The sliding windows of Conv and the pools as CUDA kernels take them (by value): up to three
// spatial dimensions, fewer padded in front with dimensions of size 1, so one kernel serves 1-D,
// 2-D and 3-D alike.

#include "kernel_common.hpp"

#include "mlops/runtime/op_geometry.hpp"

namespace mlops::runtime::cuda {

constexpr int max_spatial = 3;

struct SlidingWindow
{
  std::int64_t input[max_spatial];
  std::int64_t output[max_spatial];
  std::int64_t kernel[max_spatial];
  std::int64_t stride[max_spatial];
  std::int64_t dilation[max_spatial];
  std::int64_t pad_begin[max_spatial];
  std::int64_t pad_end[max_spatial];

  __host__ __device__ std::int64_t input_count() const { return input[0] * input[1] * input[2]; }
  __host__ __device__ std::int64_t output_count() const { return output[0] * output[1] * output[2]; }
  __host__ __device__ std::int64_t kernel_count() const { return kernel[0] * kernel[1] * kernel[2]; }
};

// Throws UnsupportedError naming the node for more than max_spatial spatial dimensions.
inline SlidingWindow sliding_window(const WindowGeometry& g, const Node& node)
{
  size_t rank = g.kernel.size();
  if (rank > max_spatial) {
    throw UnsupportedError(fmt::format("{}: the CUDA device slides windows over 1 to {} spatial dimensions, not {}",
                                       node.label(), max_spatial, rank));
  }
  SlidingWindow w{};
  size_t offset = max_spatial - rank;
  for (size_t d = 0; d < max_spatial; ++d) {
    bool real = d >= offset;
    w.input[d] = real ? g.input[d - offset] : 1;
    w.output[d] = real ? g.output[d - offset] : 1;
    w.kernel[d] = real ? g.kernel[d - offset] : 1;
    w.stride[d] = real ? g.strides[d - offset] : 1;
    w.dilation[d] = real ? g.dilations[d - offset] : 1;
    w.pad_begin[d] = real ? g.pads_begin[d - offset] : 0;
    w.pad_end[d] = real ? g.pads_end[d - offset] : 0;
  }
  return w;
}

// MaxPool, AveragePool and GlobalAveragePool (ops_pool.cu), which add_conv_ops adds.
void add_pool_ops(OpTable& table);

} // namespace mlops::runtime::cuda
