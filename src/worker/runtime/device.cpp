#include "mlops/runtime/device.hpp"

#include "cpu/cpu_device.hpp"
#include "device_factories.hpp"

#include <fmt/format.h>

#include <thread>

namespace mlops::runtime {

std::unique_ptr<Device> make_cpu_device(const DeviceOptions& options)
{
  unsigned threads = options.threads ? options.threads : std::max(1u, std::thread::hardware_concurrency());
  cpu::set_blas_threads(threads);
  return std::make_unique<cpu::CpuDevice>(threads);
}

std::unique_ptr<Device> make_device(std::string_view kind, const DeviceOptions& options)
{
  if (kind == "cpu") {
    return make_cpu_device(options);
  }
  if (kind == "cuda") {
    return make_cuda_device(options);
  }
  if (kind == "auto") {
    return cuda_unavailable_reason().empty() ? make_cuda_device(options) : make_cpu_device(options);
  }
  throw Error(ExitCode::usage, fmt::format("unknown device \"{}\": use auto, cpu or cuda", kind));
}

} // namespace mlops::runtime
