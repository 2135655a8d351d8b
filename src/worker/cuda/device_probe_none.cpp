#include "mlops/worker/device_probe.hpp"

namespace mlops::worker {

CudaDevices probe_cuda_devices()
{
  return CudaDevices{0, {}, "built without CUDA"};
}

} // namespace mlops::worker
