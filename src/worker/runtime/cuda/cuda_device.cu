#include "cuda_device.hpp"

#include "cublas_loader.hpp"

#include "../device_factories.hpp"

#include <fmt/format.h>

#include <algorithm>

namespace mlops::runtime::cuda {

void check(cudaError_t status, const char* what)
{
  if (status == cudaSuccess) {
    return;
  }
  // Reset the thread's last error so that the next launch check does not report this one again.
  // (Sticky errors, such as an illegal address, persist in the context and keep failing calls.)
  cudaGetLastError();
  throw Error(ExitCode::failure, fmt::format("CUDA failed in {}: {} ({})", what, cudaGetErrorString(status),
                                             cudaGetErrorName(status)));
}

const OpTable& cuda_op_table()
{
  static const OpTable table = [] {
    OpTable built;
    add_elementwise_ops(built);
    add_softmax_ops(built);
    add_shape_ops(built);
    add_linear_ops(built);
    add_conv_ops(built);
    return built;
  }();
  return table;
}

CudaDevice::CudaDevice(int ordinal) : m_ordinal(ordinal)
{
  check(cudaSetDevice(m_ordinal), "cudaSetDevice");
  cudaDeviceProp properties{};
  check(cudaGetDeviceProperties(&properties, m_ordinal), "cudaGetDeviceProperties");
  m_name = properties.name;
  m_multiprocessors = std::max(1, properties.multiProcessorCount);
  // Non-blocking: the stream does not wait for work other libraries put on the legacy default
  // stream, so two executors (two devices, two streams) run side by side.
  check(cudaStreamCreateWithFlags(&m_stream, cudaStreamNonBlocking), "cudaStreamCreateWithFlags");
}

CudaDevice::~CudaDevice()
{
  // Errors are ignored: a destructor cannot report them, and they were reported when they happened.
  cudaSetDevice(m_ordinal);
  cudaStreamSynchronize(m_stream);
  forget_cublas_handle(*this);  // Its handle is bound to the stream destroyed next.
  cudaStreamDestroy(m_stream);
  cudaGetLastError();
}

std::string CudaDevice::description() const
{
  return fmt::format("cuda:{} {}", m_ordinal, m_name);
}

void* CudaDevice::allocate(size_t bytes)
{
  check(cudaSetDevice(m_ordinal), "cudaSetDevice");
  void* memory = nullptr;
  // cudaMalloc returns no memory for 0 bytes; a real pointer keeps empty tensors like the others.
  cudaError_t status = cudaMalloc(&memory, std::max<size_t>(bytes, 1));
  if (status == cudaErrorMemoryAllocation) {
    cudaGetLastError();
    throw Error(ExitCode::failure, fmt::format("{}: out of GPU memory allocating {} bytes", description(), bytes));
  }
  check(status, "cudaMalloc");
  return memory;
}

void CudaDevice::release(void* memory, size_t)
{
  // The executor releases from destructors, where an exception would terminate the process.
  // cudaFree fails only once the context is broken, and the kernel that broke it already threw.
  if (cudaFree(memory) != cudaSuccess) {
    cudaGetLastError();
  }
}

void CudaDevice::copy_from_host(void* device, const void* host, size_t bytes)
{
  if (bytes == 0) {
    return;
  }
  check(cudaSetDevice(m_ordinal), "cudaSetDevice");
  // From pageable memory the call returns once the bytes are staged, so the caller may free
  // or reuse `host` right away while the copy to the device proceeds in stream order.
  check(cudaMemcpyAsync(device, host, bytes, cudaMemcpyHostToDevice, m_stream), "copying to the GPU");
}

void CudaDevice::copy_to_host(void* host, const void* device, size_t bytes)
{
  if (bytes == 0) {
    return;
  }
  check(cudaSetDevice(m_ordinal), "cudaSetDevice");
  check(cudaMemcpyAsync(host, device, bytes, cudaMemcpyDeviceToHost, m_stream), "copying from the GPU");
  // The kernels before the copy report their failures here, at the first synchronization.
  check(cudaStreamSynchronize(m_stream), "running the GPU kernels");
}

void CudaDevice::copy_on_device(void* to, const void* from, size_t bytes)
{
  if (bytes == 0) {
    return;
  }
  check(cudaMemcpyAsync(to, from, bytes, cudaMemcpyDeviceToDevice, m_stream), "copying on the GPU");
}

void CudaDevice::synchronize()
{
  check(cudaStreamSynchronize(m_stream), "running the GPU kernels");
}

std::vector<std::string> CudaDevice::operators() const
{
  std::vector<std::string> names;
  for (const auto& entry : cuda_op_table()) {
    names.push_back(entry.first);
  }
  return names;
}

std::unique_ptr<Kernel> CudaDevice::make_kernel(const Node& node)
{
  const auto& table = cuda_op_table();
  auto found = table.find(node.op_type);
  if (found == table.end()) {
    throw UnsupportedError(fmt::format("{}: the CUDA device has no kernel for {}", node.label(), node.op_type));
  }
  check(cudaSetDevice(m_ordinal), "cudaSetDevice");
  return found->second(node, *this);
}

} // namespace mlops::runtime::cuda

namespace mlops::runtime {

std::string cuda_unavailable_reason()
{
  // Asked once: the answer does not change while the process runs, and the first call loads
  // the driver (slow).
  static const std::string reason = [] {
    int count = 0;
    cudaError_t status = cudaGetDeviceCount(&count);
    if (status == cudaErrorInsufficientDriver) {
      // CUDA's own words for this ("driver version is insufficient") also cover the common case
      // of a machine with no driver at all.
      cudaGetLastError();
      return fmt::format("no NVIDIA driver, or one older than this build's CUDA {}.{} runtime ({})",
                         CUDART_VERSION / 1000, CUDART_VERSION % 1000 / 10, cudaGetErrorName(status));
    }
    if (status != cudaSuccess) {
      cudaGetLastError();
      return fmt::format("{} ({})", cudaGetErrorString(status), cudaGetErrorName(status));
    }
    return count == 0 ? std::string("the driver reports no CUDA device") : std::string();
  }();
  return reason;
}

std::unique_ptr<Device> make_cuda_device(const DeviceOptions&)
{
  std::string reason = cuda_unavailable_reason();
  if (!reason.empty()) {
    throw Error(ExitCode::failure, "no CUDA device: " + reason + "; use --device cpu");
  }
  // The first device: workers that should use another are started with CUDA_VISIBLE_DEVICES.
  return std::make_unique<cuda::CudaDevice>(0);
}

} // namespace mlops::runtime
