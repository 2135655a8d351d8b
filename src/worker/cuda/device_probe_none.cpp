#include "mlops/worker/device_probe.hpp"

namespace mlops::worker {

CudaDevices probe_cuda_devices()
{
  return CudaDevices{0, {}, "built without CUDA"};
}

std::optional<GpuMemory> gpu_memory()
{
  return std::nullopt;
}

} // namespace mlops::worker
