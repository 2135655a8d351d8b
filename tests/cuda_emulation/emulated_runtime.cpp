// The emulated CUDA device (see cuda_emulation.hpp): one device whose memory is the host's,
// whose stream runs each call at once, and whose launches run their blocks one after another
// through the BlockScheduler, checked first as a GPU checks them.
#include "block_scheduler.hpp"

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <mutex>
#include <string>

#ifdef MLOPS_EMULATION_ASAN
#include <sanitizer/asan_interface.h>
#endif

struct CUstream_st
{
  unsigned flags = 0;
};

namespace mlops::cuda_emulation {
namespace {

// ---- errors ----

// As CUDA's: cudaGetLastError returns the last error and resets it. The detail outlives the reset,
// since callers ask for the error's string after resetting it.
thread_local cudaError_t last_error = cudaSuccess;
thread_local cudaError_t detailed_error = cudaSuccess;
thread_local std::string error_detail;

cudaError_t fail(cudaError_t error, std::string detail)
{
  last_error = error;
  detailed_error = error;
  error_detail = std::move(detail);
  return error;
}

// ---- device memory ----

// Device memory is host memory here, so host code that reads it directly (which faults on a GPU)
// would pass unnoticed. Under AddressSanitizer it is poisoned except while a kernel, a stream
// copy or the emulated cuBLAS runs: a host access to device memory is then a reported error.
// Those hold `device_mutex`, which also makes them one at a time (shared memory is a kernel's
// statics).
std::mutex device_mutex;
std::map<void*, size_t> allocations;  // guarded by device_mutex

void set_device_access([[maybe_unused]] bool allowed)
{
#ifdef MLOPS_EMULATION_ASAN
  for (const auto& [memory, bytes] : allocations) {
    if (allowed) {
      ASAN_UNPOISON_MEMORY_REGION(memory, bytes);
    } else {
      ASAN_POISON_MEMORY_REGION(memory, bytes);
    }
  }
#endif
}

// Whether the `bytes` from `address` lie in one allocation of device memory. With 0 bytes, the
// allocation's end counts (a kernel may be given a one-past-the-end pointer). Callers hold
// device_mutex.
bool in_device_memory(const void* address, size_t bytes = 0)
{
  auto after = allocations.upper_bound(const_cast<void*>(address));
  if (after == allocations.begin()) {
    return false;
  }
  auto [memory, size] = *std::prev(after);
  auto offset = static_cast<size_t>(static_cast<const char*>(address) - static_cast<const char*>(memory));
  return offset <= size && bytes <= size - offset;
}

// What is wrong with a copy of `kind` between these pointers, as CUDA checks it, or "".
std::string copy_problem(void* to, const void* from, size_t bytes, cudaMemcpyKind kind)
{
  bool to_device = in_device_memory(to, bytes);
  bool from_device = in_device_memory(from, bytes);
  switch (kind) {
  case cudaMemcpyHostToDevice: return to_device && !from_device ? "" : "a host-to-device copy needs host to device";
  case cudaMemcpyDeviceToHost: return from_device && !to_device ? "" : "a device-to-host copy needs device to host";
  case cudaMemcpyDeviceToDevice: return to_device && from_device ? "" : "a device-to-device copy needs device memory";
  case cudaMemcpyHostToHost:
  case cudaMemcpyDefault: return "";
  }
  return "an unknown cudaMemcpyKind";
}

// Held while something that the GPU would do touches device memory.
class DeviceAccess
{
public:
  DeviceAccess() : m_lock(device_mutex) { set_device_access(true); }
  ~DeviceAccess() { set_device_access(false); }
  DeviceAccess(const DeviceAccess&) = delete;
  DeviceAccess& operator=(const DeviceAccess&) = delete;

private:
  std::lock_guard<std::mutex> m_lock;
};

// ---- launches ----

std::string config_problem(const LaunchConfig& config)
{
  const dim3& g = config.grid;
  const dim3& b = config.block;
  // The limits of every GPU since compute capability 3.0.
  if (g.x == 0 || g.y == 0 || g.z == 0 || g.x > 0x7fffffffu || g.y > 65535 || g.z > 65535) {
    return "grid " + dim3_text(g) + " is empty or too large (x < 2^31, y and z <= 65535)";
  }
  if (b.x == 0 || b.y == 0 || b.z == 0 || b.x > 1024 || b.y > 1024 || b.z > 64 ||
      std::uint64_t{b.x} * b.y * b.z > 1024) {
    return "block " + dim3_text(b) + " is empty or has more than 1024 threads";
  }
  if (config.shared_bytes > 48 * 1024) {
    return "dynamic shared memory of " + std::to_string(config.shared_bytes) + " bytes is over 48 KiB";
  }
  return "";
}

} // namespace

bool check_pointer_argument(const void* pointer, size_t index)
{
  std::lock_guard lock(device_mutex);
  if (pointer == nullptr || in_device_memory(pointer)) {
    return true;
  }
  // On a GPU the kernel would fault reading it (or read another process's memory map).
  fail(cudaErrorInvalidValue, "kernel argument " + std::to_string(index) + " points outside device memory");
  return false;
}

void run_grid(const LaunchConfig& config, void (*thread)(void*), void* context)
{
  if (auto problem = config_problem(config); !problem.empty()) {
    fail(cudaErrorInvalidConfiguration, "invalid launch configuration: " + problem);
    return;
  }
  DeviceAccess access;
  thread_local BlockScheduler scheduler;
  gridDim = config.grid;
  blockDim = config.block;
  // Odd launches walk the blocks backwards, and threads start backwards in odd blocks: kernels
  // whose results depend on an order the GPU does not promise differ between runs.
  static std::uint64_t launches = 0;
  bool backwards = launches++ % 2 == 1;
  std::uint64_t block_count = std::uint64_t{config.grid.x} * config.grid.y * config.grid.z;
  for (std::uint64_t n = 0; n < block_count; ++n) {
    std::uint64_t b = backwards ? block_count - 1 - n : n;
    blockIdx = uint3{static_cast<unsigned>(b % config.grid.x), static_cast<unsigned>(b / config.grid.x % config.grid.y),
                     static_cast<unsigned>(b / (std::uint64_t{config.grid.x} * config.grid.y))};
    std::string failure;
    if (!scheduler.run_block(b % 2 == 1, thread, context, failure)) {
      fail(cudaErrorLaunchFailure, "kernel failed: " + failure);
      return;
    }
  }
}

} // namespace mlops::cuda_emulation

namespace emulation = mlops::cuda_emulation;
using emulation::fail;

// ---- the runtime API ----

cudaError_t cudaGetDeviceCount(int* count)
{
  *count = 1;
  return cudaSuccess;
}

cudaError_t cudaGetDevice(int* device)
{
  *device = 0;
  return cudaSuccess;
}

cudaError_t cudaSetDevice(int device)
{
  return device == 0 ? cudaSuccess : fail(cudaErrorInvalidDevice, "the emulation has one device, 0");
}

cudaError_t cudaGetDeviceProperties(cudaDeviceProp* properties, int device)
{
  if (device != 0) {
    return fail(cudaErrorInvalidDevice, "the emulation has one device, 0");
  }
  *properties = cudaDeviceProp{};
  std::snprintf(properties->name, sizeof properties->name, "emulated on the CPU");
  // Few multiprocessors make small grids, so grid-stride loops take several turns in tests.
  properties->multiProcessorCount = 2;
  return cudaSuccess;
}

cudaError_t cudaGetLastError()
{
  cudaError_t error = emulation::last_error;
  emulation::last_error = cudaSuccess;
  return error;
}

const char* cudaGetErrorString(cudaError_t error)
{
  if (error != cudaSuccess && error == emulation::detailed_error) {
    return emulation::error_detail.c_str();
  }
  return error == cudaSuccess ? "no error" : cudaGetErrorName(error);
}

const char* cudaGetErrorName(cudaError_t error)
{
  switch (error) {
  case cudaSuccess: return "cudaSuccess";
  case cudaErrorInvalidValue: return "cudaErrorInvalidValue";
  case cudaErrorMemoryAllocation: return "cudaErrorMemoryAllocation";
  case cudaErrorInvalidConfiguration: return "cudaErrorInvalidConfiguration";
  case cudaErrorInsufficientDriver: return "cudaErrorInsufficientDriver";
  case cudaErrorInvalidDevice: return "cudaErrorInvalidDevice";
  case cudaErrorLaunchFailure: return "cudaErrorLaunchFailure";
  }
  return "cudaErrorUnknown";
}

cudaError_t cudaMalloc(void** memory, size_t bytes)
{
  // cudaMalloc's alignment; exact sizes, so AddressSanitizer sees a read one past the end.
  if (posix_memalign(memory, 256, bytes) != 0) {
    *memory = nullptr;
    return fail(cudaErrorMemoryAllocation, "out of memory");
  }
  std::lock_guard lock(emulation::device_mutex);
  emulation::allocations[*memory] = bytes;
#ifdef MLOPS_EMULATION_ASAN
  ASAN_POISON_MEMORY_REGION(*memory, bytes);
#endif
  return cudaSuccess;
}

cudaError_t cudaFree(void* memory)
{
  if (!memory) {
    return cudaSuccess;
  }
  {
    std::lock_guard lock(emulation::device_mutex);
    auto found = emulation::allocations.find(memory);
    if (found == emulation::allocations.end()) {
      return fail(cudaErrorInvalidValue, "cudaFree of memory that cudaMalloc did not return");
    }
#ifdef MLOPS_EMULATION_ASAN
    ASAN_UNPOISON_MEMORY_REGION(memory, found->second);
#endif
    emulation::allocations.erase(found);
  }
  std::free(memory);
  return cudaSuccess;
}

cudaError_t cudaMemcpyAsync(void* to, const void* from, size_t bytes, cudaMemcpyKind kind, cudaStream_t)
{
  if (bytes == 0) {
    return cudaSuccess;
  }
  emulation::DeviceAccess access;
  if (auto problem = emulation::copy_problem(to, from, bytes, kind); !problem.empty()) {
    return fail(cudaErrorInvalidValue, "cudaMemcpyAsync of " + std::to_string(bytes) + " bytes: " + problem);
  }
  std::memmove(to, from, bytes);
  return cudaSuccess;
}

cudaError_t cudaMemsetAsync(void* memory, int value, size_t bytes, cudaStream_t)
{
  if (bytes == 0) {
    return cudaSuccess;
  }
  emulation::DeviceAccess access;
  if (!emulation::in_device_memory(memory, bytes)) {
    return fail(cudaErrorInvalidValue, "cudaMemsetAsync of " + std::to_string(bytes) + " bytes outside device memory");
  }
  std::memset(memory, value, bytes);
  return cudaSuccess;
}

cudaError_t cudaStreamCreateWithFlags(cudaStream_t* stream, unsigned flags)
{
  *stream = new CUstream_st{flags};
  return cudaSuccess;
}

cudaError_t cudaStreamDestroy(cudaStream_t stream)
{
  delete stream;
  return cudaSuccess;
}

cudaError_t cudaStreamSynchronize(cudaStream_t)
{
  // Each call ran when it was made; a failed launch is reported here too, as on the GPU.
  return emulation::last_error;
}

// For libcublas_emulated.so, whose GEMMs read and write device memory as a kernel would.
extern "C" void mlops_cuda_emulation_device_access(bool begin)
{
  // Not a DeviceAccess object: begin and end arrive in two calls.
  if (begin) {
    emulation::device_mutex.lock();
    emulation::set_device_access(true);
  } else {
    emulation::set_device_access(false);
    emulation::device_mutex.unlock();
  }
}
