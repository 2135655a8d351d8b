#pragma once
// The factories of the shape family that live outside ops_shape.cpp, which registers them all.

#include "cpu_device.hpp"

namespace mlops::runtime::cpu {

// ops_transpose.cpp: the kernels that move bytes to rearrange a tensor.
std::unique_ptr<Kernel> make_transpose(const Node& node, CpuDevice& device);
std::unique_ptr<Kernel> make_concat(const Node& node, CpuDevice& device);

// ops_constant.cpp.
std::unique_ptr<Kernel> make_constant(const Node& node, CpuDevice& device);

} // namespace mlops::runtime::cpu
