#pragma once
// The constructors behind make_device, one per device family. The CUDA one is defined by the
// CUDA library when the build has nvcc, and by cuda_none.cpp (which always refuses) when not.

#include "mlops/runtime/device.hpp"

namespace mlops::runtime {

std::unique_ptr<Device> make_cpu_device(const DeviceOptions& options);
// Throws Error(failure) saying why when there is no usable CUDA device.
std::unique_ptr<Device> make_cuda_device(const DeviceOptions& options);

} // namespace mlops::runtime
