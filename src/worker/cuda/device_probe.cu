#include "mlops/worker/device_probe.hpp"

#include <cuda_runtime.h>

namespace mlops::worker {

CudaDevices probe_cuda_devices()
{
  CudaDevices devices;
  // With the runtime linked statically this loads the driver library at run time; without one it
  // returns cudaErrorInsufficientDriver (or NoDevice) instead of failing to start.
  cudaError_t rc = cudaGetDeviceCount(&devices.count);
  if (rc != cudaSuccess) {
    devices.count = 0;
    devices.unavailable = cudaGetErrorString(rc);
    return devices;
  }
  if (devices.count == 0) {
    devices.unavailable = "no CUDA device";
    return devices;
  }
  cudaDeviceProp properties{};
  if (cudaGetDeviceProperties(&properties, 0) == cudaSuccess) {
    devices.first_name = properties.name;
  }
  return devices;
}

std::optional<GpuMemory> gpu_memory()
{
  std::size_t free = 0;
  std::size_t total = 0;
  if (cudaMemGetInfo(&free, &total) != cudaSuccess) {
    return std::nullopt;
  }
  return GpuMemory{total - free, total};
}

} // namespace mlops::worker
