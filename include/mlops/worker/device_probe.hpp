#pragma once
// Which CUDA devices this process can use. A CUDA build on a machine without a GPU or driver is
// normal: it reports no device and the reason, and callers fall back to the CPU.

#include <cstddef>
#include <optional>
#include <string>

namespace mlops::worker {

struct CudaDevices
{
  int count = 0;
  std::string first_name;   // name of device 0, when count > 0
  std::string unavailable;  // why there is none: "built without CUDA", the driver's error...
};

// Never throws.
CudaDevices probe_cuda_devices();

struct GpuMemory
{
  std::size_t used = 0;
  std::size_t total = 0;
};

// Device 0's memory as the driver counts it (every process), for the worker's /metrics; nothing
// when there is no CUDA device. Never throws.
std::optional<GpuMemory> gpu_memory();

} // namespace mlops::worker
