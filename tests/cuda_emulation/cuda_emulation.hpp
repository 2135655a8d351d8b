#pragma once
// CUDA C++ as host C++: what nvcc adds to every .cu file, for the emulated build of the runtime's
// CUDA device (tests/cuda_emulation/CMakeLists.txt). The kernels' own source is compiled; only
// the launch syntax is rewritten (`k<<<grid, block, shared, stream>>>(args)` becomes
// `k | ::mlops::cuda_emulation::launch(grid, block, shared, stream)(args)`), and each launch runs
// the grid on the CPU, block after block, with the block's threads as fibers that switch at
// __syncthreads and at warp shuffles. So the index arithmetic, the bounds, the tiling and the
// reductions of every kernel run in CI on machines without a GPU, under the sanitizers too.
//
// What it cannot show: timing, the memory model between blocks (blocks never overlap here), and
// anything the real compiler or hardware does differently (fast-math intrinsics, TF32).

#include <cuda_runtime_api.h>

#include <cmath>
#include <cstddef>
#include <cstring>
#include <source_location>
#include <tuple>
#include <type_traits>
#include <utility>

// Built with AddressSanitizer (GCC says so one way, clang another).
#if defined(__SANITIZE_ADDRESS__)
#define MLOPS_EMULATION_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define MLOPS_EMULATION_ASAN 1
#endif
#endif

#define __global__
#define __device__
#define __host__
#define __forceinline__ inline
#define __launch_bounds__(...)
#define __align__(n) __attribute__((aligned(n)))
// A block's shared memory: blocks run one at a time and launches one at a time, so a
// function-local static belongs to the running block.
#define __shared__ static

struct alignas(16) float4
{
  float x, y, z, w;
};

inline float4 make_float4(float x, float y, float z, float w)
{
  return {x, y, z, w};
}

template <class T> T __ldg(const T* address)
{
  return *address;
}

// CUDA's device-side min and max, which take two values of one type.
template <class T> constexpr T min(T a, T b)
{
  return b < a ? b : a;
}

template <class T> constexpr T max(T a, T b)
{
  return a < b ? b : a;
}

// The running thread's coordinates, set by the scheduler before it resumes a thread.
inline thread_local uint3 threadIdx{};
inline thread_local uint3 blockIdx{};
inline thread_local dim3 blockDim{};
inline thread_local dim3 gridDim{};

// Waits until every thread of the block still running has reached this __syncthreads. `site`
// tells the calls apart: threads at two different ones are a bug (block_scheduler.hpp).
void __syncthreads(std::source_location site = std::source_location::current());

namespace mlops::cuda_emulation {

constexpr unsigned warp_size = 32;

// Gives `bytes` of `value` to the warp, waits until every running lane of the warp has given its
// own at the same `site`, and copies lane `source`'s (an index within the block) to `result`.
void warp_exchange(const void* value, void* result, unsigned source, size_t bytes, unsigned mask,
                   const std::source_location& site);

inline unsigned linear_thread_index()
{
  return threadIdx.x + blockDim.x * (threadIdx.y + blockDim.y * threadIdx.z);
}

} // namespace mlops::cuda_emulation

template <class T>
T __shfl_xor_sync(unsigned mask, T value, int lane_mask, int width = 32,
                  std::source_location site = std::source_location::current())
{
  static_assert(std::is_trivially_copyable_v<T> && sizeof(T) <= 16);
  using mlops::cuda_emulation::warp_size;
  unsigned index = mlops::cuda_emulation::linear_thread_index();
  unsigned lane = index % warp_size;
  unsigned source = lane ^ static_cast<unsigned>(lane_mask);
  // As on the GPU: a lane may read from an earlier segment of `width` lanes, not a later one.
  if (source / static_cast<unsigned>(width) > lane / static_cast<unsigned>(width)) {
    source = lane;
  }
  T result;
  mlops::cuda_emulation::warp_exchange(&value, &result, index - lane + source, sizeof(T), mask, site);
  return result;
}

namespace mlops::cuda_emulation {

struct LaunchConfig
{
  dim3 grid;
  dim3 block;
  size_t shared_bytes = 0;
  cudaStream_t stream = nullptr;
};

// Runs `thread(context)` once for each thread of the grid. A configuration the GPU would refuse,
// or threads that wait at different barriers, leave an error for cudaGetLastError, as a failed
// launch does.
void run_grid(const LaunchConfig& config, void (*thread)(void*), void* context);

// Whether a pointer given to a kernel is null or points into device memory; false leaves the
// error for cudaGetLastError (on a GPU the kernel would fault).
bool check_pointer_argument(const void* pointer, size_t index);

template <class T> bool check_argument(const T& value, size_t index)
{
  if constexpr (std::is_pointer_v<T>) {
    return check_pointer_argument(value, index);
  } else {
    return true;
  }
}

template <class... Args> struct PendingLaunch
{
  LaunchConfig config;
  std::tuple<Args...> arguments;
};

struct Launcher
{
  LaunchConfig config;

  template <class... Args> PendingLaunch<std::decay_t<Args>...> operator()(Args&&... arguments) const
  {
    return {config, std::tuple<std::decay_t<Args>...>(std::forward<Args>(arguments)...)};
  }
};

inline Launcher launch(dim3 grid, dim3 block, size_t shared_bytes = 0, cudaStream_t stream = nullptr)
{
  return Launcher{LaunchConfig{grid, block, shared_bytes, stream}};
}

// `kernel | launch(...)(arguments...)`: the arguments are converted to the kernel's parameter
// types once, as a launch copies them, and every thread calls the kernel with its own copy.
// Pointer arguments must point into device memory (pointers inside structs are not checked).
template <class... Params, class... Args> void operator|(void (*kernel)(Params...), PendingLaunch<Args...>&& pending)
{
  static_assert(sizeof...(Params) == sizeof...(Args), "the kernel takes another number of arguments");
  struct Call
  {
    void (*kernel)(Params...);
    std::tuple<std::decay_t<Params>...> parameters;
  };
  Call call{kernel, std::tuple<std::decay_t<Params>...>(std::move(pending.arguments))};
  bool arguments_valid = std::apply(
    [](const auto&... parameter) {
      size_t index = 0;
      return (check_argument(parameter, index++) && ...);
    },
    call.parameters);
  if (!arguments_valid) {
    return;
  }
  run_grid(
    pending.config, [](void* context) {
      auto& the_call = *static_cast<Call*>(context);
      std::apply(the_call.kernel, the_call.parameters);
    },
    &call);
}

} // namespace mlops::cuda_emulation
