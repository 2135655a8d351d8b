// The emulated CUDA device: one device whose memory is the host's and whose stream runs each call
// at once, and the grid scheduler that runs kernels on the CPU (see cuda_emulation.hpp).
//
// A block's threads are fibers (ucontext) on the launching thread. The scheduler resumes every
// runnable fiber until it finishes or waits at a barrier; a warp's barrier opens when all of the
// warp's running lanes wait at one, the block's when all of its running threads wait at the same
// __syncthreads. Threads that wait at different barriers are a bug the GPU would hang on or
// silently get wrong: the launch fails with cudaErrorLaunchFailure, saying so.
#include "cuda_emulation.hpp"

#include <sys/mman.h>
#include <ucontext.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#if defined(__SANITIZE_ADDRESS__)
#define MLOPS_EMULATION_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define MLOPS_EMULATION_ASAN 1
#endif
#endif
#ifdef MLOPS_EMULATION_ASAN
#include <sanitizer/asan_interface.h>
#include <sanitizer/common_interface_defs.h>
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

// ---- fibers ----

// Kernel frames are small, but sanitized debug builds use several times the stack.
constexpr size_t stack_bytes = 256 * 1024;

// A fiber's stack: mapped on first use (pages are touched only as the stack grows), with a guard
// page below it so that an overflow faults instead of corrupting its neighbour.
class FiberStack
{
public:
  FiberStack()
  {
    size_t page = static_cast<size_t>(sysconf(_SC_PAGESIZE));
    m_size = stack_bytes + page;
    void* mapped = mmap(nullptr, m_size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (mapped == MAP_FAILED) {
      std::perror("cuda emulation: mmap of a fiber stack");
      std::abort();
    }
    m_base = static_cast<char*>(mapped);
    mprotect(m_base, page, PROT_NONE);
    m_bottom = m_base + page;
  }
  ~FiberStack() { munmap(m_base, m_size); }
  FiberStack(const FiberStack&) = delete;
  FiberStack& operator=(const FiberStack&) = delete;

  char* bottom() const { return m_bottom; }
  size_t usable() const { return stack_bytes; }

private:
  char* m_base = nullptr;
  char* m_bottom = nullptr;
  size_t m_size = 0;
};

enum class Wait { runnable, block_barrier, warp_barrier, finished };

struct Fiber
{
  FiberStack stack;
  ucontext_t context{};
  Wait wait = Wait::runnable;
  const void* barrier = nullptr;  // which __syncthreads it waits at (its return address)
  uint3 index{};
  void* fake_stack = nullptr;  // AddressSanitizer's, across switches
};

// Runs the blocks of one launch. One per launching OS thread; launches are serialized anyway
// (shared memory is a function's statics), so it is only reused, never shared.
class BlockScheduler
{
public:
  // Runs every thread of the block blockIdx; false, with the reason, when they deadlock.
  bool run_block(dim3 block, void (*thread)(void*), void* context, std::string& failure);

  // Called by the running fiber. `site` tells apart the __syncthreads of a kernel.
  void wait_at(Wait barrier, const void* site = nullptr);
  void exchange(const void* value, void* result, unsigned source, size_t bytes);

private:
  static void fiber_main();
  void switch_to(Fiber& fiber);
  bool open_barriers(std::string& failure);
  std::string stuck_report() const;

  std::vector<std::unique_ptr<Fiber>> m_fibers;
  size_t m_count = 0;  // fibers of the running block
  Fiber* m_running = nullptr;
  ucontext_t m_scheduler{};
  void* m_scheduler_fake_stack = nullptr;
  const void* m_scheduler_stack_bottom = nullptr;
  size_t m_scheduler_stack_size = 0;
  void (*m_thread)(void*) = nullptr;
  void* m_thread_context = nullptr;
  std::vector<std::array<unsigned char, 16>> m_exchange;
};

thread_local BlockScheduler* active_scheduler = nullptr;

std::string block_text()
{
  return "(" + std::to_string(blockIdx.x) + ", " + std::to_string(blockIdx.y) + ", " + std::to_string(blockIdx.z) +
         ")";
}

void BlockScheduler::fiber_main()
{
  BlockScheduler& self = *active_scheduler;
#ifdef MLOPS_EMULATION_ASAN
  __sanitizer_finish_switch_fiber(nullptr, &self.m_scheduler_stack_bottom, &self.m_scheduler_stack_size);
#endif
  self.m_thread(self.m_thread_context);
  self.m_running->wait = Wait::finished;
#ifdef MLOPS_EMULATION_ASAN
  // nullptr: this fiber's fake stack can be freed, it will not run again.
  __sanitizer_start_switch_fiber(nullptr, self.m_scheduler_stack_bottom, self.m_scheduler_stack_size);
#endif
  setcontext(&self.m_scheduler);
}

void BlockScheduler::switch_to(Fiber& fiber)
{
  m_running = &fiber;
  threadIdx = fiber.index;
#ifdef MLOPS_EMULATION_ASAN
  __sanitizer_start_switch_fiber(&m_scheduler_fake_stack, fiber.stack.bottom(), fiber.stack.usable());
#endif
  swapcontext(&m_scheduler, &fiber.context);
#ifdef MLOPS_EMULATION_ASAN
  __sanitizer_finish_switch_fiber(m_scheduler_fake_stack, nullptr, nullptr);
#endif
  m_running = nullptr;
}

void BlockScheduler::wait_at(Wait barrier, const void* site)
{
  Fiber& fiber = *m_running;
  fiber.wait = barrier;
  fiber.barrier = site;
#ifdef MLOPS_EMULATION_ASAN
  __sanitizer_start_switch_fiber(&fiber.fake_stack, m_scheduler_stack_bottom, m_scheduler_stack_size);
#endif
  swapcontext(&fiber.context, &m_scheduler);
#ifdef MLOPS_EMULATION_ASAN
  __sanitizer_finish_switch_fiber(fiber.fake_stack, &m_scheduler_stack_bottom, &m_scheduler_stack_size);
#endif
}

void BlockScheduler::exchange(const void* value, void* result, unsigned source, size_t bytes)
{
  unsigned self = linear_thread_index();
  std::memcpy(m_exchange[self].data(), value, bytes);
  wait_at(Wait::warp_barrier);  // every lane has given its value
  std::memcpy(result, m_exchange[source < m_count ? source : self].data(), bytes);
  wait_at(Wait::warp_barrier);  // every lane has read before any gives the next
}

// Opens the barriers that every thread they concern has reached; false, with the reason, when
// none can open.
bool BlockScheduler::open_barriers(std::string& failure)
{
  bool opened = false;
  for (size_t first = 0; first < m_count; first += warp_size) {
    size_t last = std::min(m_count, first + warp_size);
    auto lanes_begin = m_fibers.begin() + static_cast<std::ptrdiff_t>(first);
    auto lanes_end = m_fibers.begin() + static_cast<std::ptrdiff_t>(last);
    bool any_waiting = std::any_of(lanes_begin, lanes_end, [](auto& f) { return f->wait == Wait::warp_barrier; });
    bool all_waiting = std::all_of(lanes_begin, lanes_end, [](auto& f) {
      return f->wait == Wait::warp_barrier || f->wait == Wait::finished;
    });
    if (any_waiting && all_waiting) {
      for (auto it = lanes_begin; it != lanes_end; ++it) {
        if ((*it)->wait == Wait::warp_barrier) {
          (*it)->wait = Wait::runnable;
        }
      }
      opened = true;
    }
  }
  if (opened) {
    return true;
  }
  auto fibers_end = m_fibers.begin() + static_cast<std::ptrdiff_t>(m_count);
  bool all_at_block = std::all_of(m_fibers.begin(), fibers_end, [](auto& f) {
    return f->wait == Wait::block_barrier || f->wait == Wait::finished;
  });
  if (!all_at_block) {
    failure = stuck_report();
    return false;
  }
  const void* site = nullptr;
  for (auto it = m_fibers.begin(); it != fibers_end; ++it) {
    if ((*it)->wait != Wait::block_barrier) {
      continue;
    }
    if (site && (*it)->barrier != site) {
      failure = "threads of block " + block_text() +
                " wait at different __syncthreads calls (a barrier in divergent code: the GPU would hang or "
                "read what was not written)";
      return false;
    }
    site = (*it)->barrier;
  }
  for (auto it = m_fibers.begin(); it != fibers_end; ++it) {
    if ((*it)->wait == Wait::block_barrier) {
      (*it)->wait = Wait::runnable;
    }
  }
  return true;
}

std::string BlockScheduler::stuck_report() const
{
  size_t at_block = 0, at_warp = 0, finished = 0;
  for (size_t i = 0; i < m_count; ++i) {
    Wait wait = m_fibers[i]->wait;
    at_block += wait == Wait::block_barrier;
    at_warp += wait == Wait::warp_barrier;
    finished += wait == Wait::finished;
  }
  return "threads of block " + block_text() + " wait at different barriers: " + std::to_string(at_block) +
         " at __syncthreads, " + std::to_string(at_warp) + " at a warp shuffle, " + std::to_string(finished) +
         " finished (a barrier in divergent code: the GPU would hang or read what was not written)";
}

bool BlockScheduler::run_block(dim3 block, void (*thread)(void*), void* context, std::string& failure)
{
  m_count = size_t{block.x} * block.y * block.z;
  while (m_fibers.size() < m_count) {
    m_fibers.push_back(std::make_unique<Fiber>());
  }
  m_exchange.resize(m_count);
  m_thread = thread;
  m_thread_context = context;
  for (size_t i = 0; i < m_count; ++i) {
    Fiber& fiber = *m_fibers[i];
    fiber.wait = Wait::runnable;
    fiber.index = uint3{static_cast<unsigned>(i % block.x), static_cast<unsigned>(i / block.x % block.y),
                        static_cast<unsigned>(i / (size_t{block.x} * block.y))};
    getcontext(&fiber.context);
    fiber.context.uc_stack.ss_sp = fiber.stack.bottom();
    fiber.context.uc_stack.ss_size = fiber.stack.usable();
    fiber.context.uc_link = nullptr;
    makecontext(&fiber.context, &BlockScheduler::fiber_main, 0);
  }
  active_scheduler = this;
  for (;;) {
    for (size_t i = 0; i < m_count; ++i) {
      if (m_fibers[i]->wait == Wait::runnable) {
        switch_to(*m_fibers[i]);
      }
    }
    bool all_finished = std::all_of(m_fibers.begin(), m_fibers.begin() + static_cast<std::ptrdiff_t>(m_count),
                                    [](auto& f) { return f->wait == Wait::finished; });
    if (all_finished) {
      return true;
    }
    if (!open_barriers(failure)) {
      return false;
    }
  }
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
  auto text = [](dim3 d) {
    return "(" + std::to_string(d.x) + ", " + std::to_string(d.y) + ", " + std::to_string(d.z) + ")";
  };
  const dim3& g = config.grid;
  const dim3& b = config.block;
  // The limits of every GPU since compute capability 3.0.
  if (g.x == 0 || g.y == 0 || g.z == 0 || g.x > 0x7fffffffu || g.y > 65535 || g.z > 65535) {
    return "grid " + text(g) + " is empty or too large (x < 2^31, y and z <= 65535)";
  }
  if (b.x == 0 || b.y == 0 || b.z == 0 || b.x > 1024 || b.y > 1024 || b.z > 64 ||
      std::uint64_t{b.x} * b.y * b.z > 1024) {
    return "block " + text(b) + " is empty or has more than 1024 threads";
  }
  if (config.shared_bytes > 48 * 1024) {
    return "dynamic shared memory of " + std::to_string(config.shared_bytes) + " bytes is over 48 KiB";
  }
  return "";
}

} // namespace

void warp_exchange(const void* value, void* result, unsigned source, size_t bytes)
{
  active_scheduler->exchange(value, result, source, bytes);
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
  for (unsigned z = 0; z < config.grid.z; ++z) {
    for (unsigned y = 0; y < config.grid.y; ++y) {
      for (unsigned x = 0; x < config.grid.x; ++x) {
        blockIdx = uint3{x, y, z};
        std::string failure;
        if (!scheduler.run_block(config.block, thread, context, failure)) {
          fail(cudaErrorLaunchFailure, "kernel failed: " + failure);
          return;
        }
      }
    }
  }
}

} // namespace mlops::cuda_emulation

using mlops::cuda_emulation::fail;

void __syncthreads()
{
  mlops::cuda_emulation::active_scheduler->wait_at(mlops::cuda_emulation::Wait::block_barrier,
                                                   __builtin_return_address(0));
}

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
  cudaError_t error = mlops::cuda_emulation::last_error;
  mlops::cuda_emulation::last_error = cudaSuccess;
  return error;
}

const char* cudaGetErrorString(cudaError_t error)
{
  if (error != cudaSuccess && error == mlops::cuda_emulation::detailed_error) {
    return mlops::cuda_emulation::error_detail.c_str();
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
  std::lock_guard lock(mlops::cuda_emulation::device_mutex);
  mlops::cuda_emulation::allocations[*memory] = bytes;
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
    std::lock_guard lock(mlops::cuda_emulation::device_mutex);
    auto found = mlops::cuda_emulation::allocations.find(memory);
    if (found == mlops::cuda_emulation::allocations.end()) {
      return fail(cudaErrorInvalidValue, "cudaFree of memory that cudaMalloc did not return");
    }
#ifdef MLOPS_EMULATION_ASAN
    ASAN_UNPOISON_MEMORY_REGION(memory, found->second);
#endif
    mlops::cuda_emulation::allocations.erase(found);
  }
  std::free(memory);
  return cudaSuccess;
}

cudaError_t cudaMemcpyAsync(void* to, const void* from, size_t bytes, cudaMemcpyKind, cudaStream_t)
{
  if (bytes != 0 && (to == nullptr || from == nullptr)) {
    return fail(cudaErrorInvalidValue, "cudaMemcpyAsync with a null pointer");
  }
  if (bytes != 0) {
    mlops::cuda_emulation::DeviceAccess access;
    std::memmove(to, from, bytes);
  }
  return cudaSuccess;
}

cudaError_t cudaMemsetAsync(void* memory, int value, size_t bytes, cudaStream_t)
{
  if (bytes != 0 && memory == nullptr) {
    return fail(cudaErrorInvalidValue, "cudaMemsetAsync with a null pointer");
  }
  if (bytes != 0) {
    mlops::cuda_emulation::DeviceAccess access;
    std::memset(memory, value, bytes);
  }
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
  return mlops::cuda_emulation::last_error;
}

// For libcublas_emulated.so, whose GEMMs read and write device memory as a kernel would.
extern "C" void mlops_cuda_emulation_device_access(bool begin)
{
  // Not a DeviceAccess object: begin and end arrive in two calls.
  if (begin) {
    mlops::cuda_emulation::device_mutex.lock();
    mlops::cuda_emulation::set_device_access(true);
  } else {
    mlops::cuda_emulation::set_device_access(false);
    mlops::cuda_emulation::device_mutex.unlock();
  }
}
