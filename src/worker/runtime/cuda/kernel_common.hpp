#pragma once
// What the kernels of ops_linear.cu, ops_conv.cu and ops_pool.cu share: grid-stride launches and
// the float32 check of their inputs.

#include "cuda_device.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <cstdint>

namespace mlops::runtime::cuda {

constexpr int block_threads = 256;

// Enough blocks to fill every multiprocessor several times over; grid-stride loops cover the
// rest, so any count fits in one grid.
inline unsigned grid_for(std::int64_t count, const CudaDevice& device)
{
  std::int64_t blocks = (count + block_threads - 1) / block_threads;
  return static_cast<unsigned>(std::clamp<std::int64_t>(blocks, 1, std::int64_t{device.multiprocessors()} * 16));
}

// A grid for kernels that walk `rows` rows of `row_length` elements: blocks along y take whole
// rows (so no thread divides to find its row), blocks along x share out a row's elements.
inline dim3 grid_for_rows(std::int64_t rows, std::int64_t row_length, const CudaDevice& device)
{
  std::int64_t across = std::clamp<std::int64_t>((row_length + block_threads - 1) / block_threads, 1,
                                                 std::int64_t{device.multiprocessors()} * 4);
  return dim3(static_cast<unsigned>(across), static_cast<unsigned>(std::clamp<std::int64_t>(rows, 1, 65535)));
}

__device__ inline std::int64_t first_index()
{
  return std::int64_t{blockIdx.x} * blockDim.x + threadIdx.x;
}

__device__ inline std::int64_t grid_stride()
{
  return std::int64_t{gridDim.x} * blockDim.x;
}

// Input `index`, which must be float32: the only type these operators compute in on the GPU.
inline const TensorView& float_input(KernelContext& context, size_t index, const Node& node)
{
  const TensorView& view = context.input(index);
  if (view.type != ElementType::float32) {
    throw UnsupportedError(fmt::format("{}: the CUDA device computes {} in float32 only, not {}", node.label(),
                                       node.op_type, element_type_name(view.type)));
  }
  return view;
}

} // namespace mlops::runtime::cuda
