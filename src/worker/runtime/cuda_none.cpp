// The CUDA device of a build without nvcc: there is none, and make_device says why.
#include "device_factories.hpp"

namespace mlops::runtime {

std::string cuda_unavailable_reason()
{
  return "this build of mlops has no CUDA support (nvcc was missing when it was built)";
}

std::unique_ptr<Device> make_cuda_device(const DeviceOptions&)
{
  throw Error(ExitCode::failure, "no CUDA device: " + cuda_unavailable_reason() + "; use --device cpu");
}

} // namespace mlops::runtime
