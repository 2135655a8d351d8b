#pragma once
// The factories of the shape family that live outside ops_shape.cu, which registers them all.

#include "cuda_device.hpp"

namespace mlops::runtime::cuda {

// ops_transpose.cu: the kernels that move elements to rearrange a tensor.
std::unique_ptr<Kernel> make_transpose(const Node& node, CudaDevice& device);
std::unique_ptr<Kernel> make_concat(const Node& node, CudaDevice& device);

} // namespace mlops::runtime::cuda
