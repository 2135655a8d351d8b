// The emulation itself, with kernels written as CUDA (this file is translated like the runtime's):
// if it ran kernels wrongly, or let through what a GPU would hang on, the conformance runs over it
// would prove nothing.
#include <cuda_runtime_api.h>

#include <doctest/doctest.h>

#include <numeric>
#include <string>
#include <vector>

namespace {

constexpr int threads = 256;

// Device memory holding `values`, freed at the end of the test.
template <class T> class DeviceBuffer
{
public:
  explicit DeviceBuffer(const std::vector<T>& values) : m_count(values.size())
  {
    REQUIRE(cudaMalloc(reinterpret_cast<void**>(&m_data), bytes()) == cudaSuccess);
    REQUIRE(cudaMemcpyAsync(m_data, values.data(), bytes(), cudaMemcpyHostToDevice) == cudaSuccess);
  }
  ~DeviceBuffer() { cudaFree(m_data); }
  DeviceBuffer(const DeviceBuffer&) = delete;
  DeviceBuffer& operator=(const DeviceBuffer&) = delete;

  T* data() { return m_data; }
  std::vector<T> read() const
  {
    std::vector<T> values(m_count);
    REQUIRE(cudaMemcpyAsync(values.data(), m_data, bytes(), cudaMemcpyDeviceToHost) == cudaSuccess);
    return values;
  }

private:
  size_t bytes() const { return m_count * sizeof(T); }
  T* m_data = nullptr;
  size_t m_count;
};

// sums[block] = the sum of the block's share of `in`, by a tree in shared memory.
__global__ void block_sums(const int* in, int* sums, int count)
{
  __shared__ int partial[threads];
  int sum = 0;
  for (int i = blockIdx.x * blockDim.x + threadIdx.x; i < count; i += gridDim.x * blockDim.x) {
    sum += in[i];
  }
  partial[threadIdx.x] = sum;
  __syncthreads();
  for (int half = threads / 2; half > 0; half /= 2) {
    if (static_cast<int>(threadIdx.x) < half) {
      partial[threadIdx.x] += partial[threadIdx.x + half];
    }
    __syncthreads();
  }
  if (threadIdx.x == 0) {
    sums[blockIdx.x] = partial[0];
  }
}

// Every lane gets its warp's sum, by an xor butterfly.
__global__ void warp_sums(const float* in, float* out)
{
  float value = in[threadIdx.x];
  for (int offset = 16; offset > 0; offset /= 2) {
    value += __shfl_xor_sync(0xffffffffu, value, offset);
  }
  out[threadIdx.x] = value;
}

// Each thread of a 3-D grid of 3-D blocks writes its global id where that id points.
__global__ void coordinates(int* out, int width, int height)
{
  int x = blockIdx.x * blockDim.x + threadIdx.x;
  int y = blockIdx.y * blockDim.y + threadIdx.y;
  int z = blockIdx.z * blockDim.z + threadIdx.z;
  int id = (z * height + y) * width + x;
  out[id] = id;
}

// Threads past `count` leave before the barrier, which the others still pass.
__global__ void early_exit(int* out, int count)
{
  __shared__ int first;
  if (static_cast<int>(threadIdx.x) >= count) {
    return;
  }
  if (threadIdx.x == 0) {
    first = 42;
  }
  __syncthreads();
  out[threadIdx.x] = first;
}

// Half the block waits at one __syncthreads, half at another: a GPU hangs or misbehaves.
__global__ void divergent_barrier(int* out)
{
  if (threadIdx.x < threads / 2) {
    __syncthreads();
    out[threadIdx.x] = 1;
  } else {
    __syncthreads();
    out[threadIdx.x] = 2;
  }
}

// Half of each warp shuffles with a full mask, which needs all 32 lanes, while the other half
// waits at a __syncthreads: neither can ever proceed.
__global__ void split_warp(float* out)
{
  if (threadIdx.x % 32 < 16) {
    out[threadIdx.x] = __shfl_xor_sync(0xffffffffu, out[threadIdx.x], 1);
  } else {
    __syncthreads();
  }
}

// Lanes 0-15 return; lanes 16-31 then shuffle with lanes 0-15.
__global__ void shuffle_from_returned(float* out)
{
  if (threadIdx.x < 16) {
    return;
  }
  out[threadIdx.x] = __shfl_xor_sync(0xffffffffu, out[threadIdx.x], 16);
}

// Even and odd lanes shuffle at two different calls.
__global__ void two_shuffles(float* out)
{
  float value = out[threadIdx.x];
  if (threadIdx.x % 2 == 0) {
    value = __shfl_xor_sync(0xffffffffu, value, 2);
  } else {
    value = __shfl_xor_sync(0xffffffffu, value, 2);
  }
  out[threadIdx.x] = value;
}

__global__ void half_mask(float* out)
{
  out[threadIdx.x] = __shfl_xor_sync(0x0000ffffu, out[threadIdx.x], 1);
}

// Reads a neighbour's shared value without a barrier after the writes: a race on a GPU.
__global__ void missing_barrier(int* out)
{
  __shared__ int seen[threads];
  seen[threadIdx.x] = static_cast<int>(blockIdx.x * 1000 + threadIdx.x);
  out[blockIdx.x * threads + threadIdx.x] = seen[(threadIdx.x + 1) % threads];
}

__global__ void mark(int* out)
{
  out[0] = 1;
}

std::string last_error_text()
{
  cudaError_t error = cudaGetLastError();
  return std::string(cudaGetErrorName(error)) + ": " + cudaGetErrorString(error);
}

} // namespace

TEST_CASE("emulated kernels: a shared-memory tree reduction per block, over a grid-stride loop")
{
  std::vector<int> values(10000);
  std::iota(values.begin(), values.end(), 1);
  DeviceBuffer<int> in(values);
  DeviceBuffer<int> sums(std::vector<int>(3, 0));
  block_sums<<<3, threads>>>(in.data(), sums.data(), 10000);
  REQUIRE(cudaGetLastError() == cudaSuccess);
  auto result = sums.read();
  CHECK(result[0] + result[1] + result[2] == 10000 * 10001 / 2);
  // Block 0 took 1..256, 769..1024, ...: not the whole sum, so the blocks did split the work.
  CHECK(result[0] < 10000 * 10001 / 2);
}

TEST_CASE("emulated kernels: warp shuffles give every lane its own warp's sum")
{
  std::vector<float> values(threads);
  std::iota(values.begin(), values.end(), 0.0f);
  DeviceBuffer<float> in(values);
  DeviceBuffer<float> out(std::vector<float>(threads, 0));
  warp_sums<<<1, threads>>>(in.data(), out.data());
  REQUIRE(cudaGetLastError() == cudaSuccess);
  auto result = out.read();
  for (int lane = 0; lane < threads; ++lane) {
    int warp = lane / 32;
    float expected = static_cast<float>(32 * (32 * warp) + 31 * 32 / 2);
    CHECK_MESSAGE(result[lane] == expected, "lane ", lane);
  }
}

TEST_CASE("emulated kernels: 3-D grids and blocks cover every index once")
{
  const int width = 12, height = 10, depth = 6;
  DeviceBuffer<int> out(std::vector<int>(width * height * depth, -1));
  coordinates<<<dim3(3, 5, 2), dim3(4, 2, 3)>>>(out.data(), width, height);
  REQUIRE(cudaGetLastError() == cudaSuccess);
  auto result = out.read();
  for (int i = 0; i < width * height * depth; ++i) {
    CHECK(result[i] == i);
  }
}

TEST_CASE("emulated kernels: threads that have returned do not hold a barrier")
{
  DeviceBuffer<int> out(std::vector<int>(threads, 0));
  early_exit<<<1, threads>>>(out.data(), 100);
  REQUIRE(cudaGetLastError() == cudaSuccess);
  auto result = out.read();
  CHECK(result[0] == 42);
  CHECK(result[99] == 42);
  CHECK(result[100] == 0);
}

TEST_CASE("emulated kernels: a __syncthreads in divergent code fails the launch, saying so")
{
  DeviceBuffer<int> out(std::vector<int>(threads, 0));
  divergent_barrier<<<1, threads>>>(out.data());
  auto text = last_error_text();
  CHECK(text.find("cudaErrorLaunchFailure") != std::string::npos);
  CHECK(text.find("different __syncthreads calls") != std::string::npos);
  // Read once. (A GPU's launch failures are sticky: the emulation's are not, so that one failing
  // case does not fail every case after it.)
  CHECK(cudaGetLastError() == cudaSuccess);
}

TEST_CASE("emulated kernels: lanes stuck between a shuffle and a barrier fail the launch")
{
  DeviceBuffer<float> out(std::vector<float>(threads, 1));
  split_warp<<<1, threads>>>(out.data());
  auto text = last_error_text();
  CHECK(text.find("cudaErrorLaunchFailure") != std::string::npos);
  CHECK(text.find("128 at __syncthreads, 128 at a warp shuffle") != std::string::npos);
}

TEST_CASE("emulated kernels: shuffles that are undefined on a GPU fail the launch")
{
  DeviceBuffer<float> out(std::vector<float>(32, 1));
  shuffle_from_returned<<<1, 32>>>(out.data());
  CHECK(last_error_text().find("reads lane 0 of a warp, which has returned") != std::string::npos);
  two_shuffles<<<1, 32>>>(out.data());
  CHECK(last_error_text().find("wait at different shuffles") != std::string::npos);
  half_mask<<<1, 32>>>(out.data());
  CHECK(last_error_text().find("partial mask") != std::string::npos);
}

TEST_CASE("emulated kernels: a race between threads shows, as blocks run their threads in both orders")
{
  DeviceBuffer<int> out(std::vector<int>(2 * threads, -1));
  missing_barrier<<<2, threads>>>(out.data());
  REQUIRE(cudaGetLastError() == cudaSuccess);
  auto result = out.read();
  // Thread 5 of each block reads thread 6's slot: written before it in one block, after in the other.
  bool block0_fresh = result[5] == 6;
  bool block1_fresh = result[threads + 5] == 1006;
  CHECK(block0_fresh != block1_fresh);
}

TEST_CASE("emulated kernels: pointers to host memory are refused, as a GPU would fault on them")
{
  std::vector<int> host(4, 0);
  mark<<<1, 1>>>(host.data());
  auto text = last_error_text();
  CHECK(text.find("cudaErrorInvalidValue") != std::string::npos);
  CHECK(text.find("kernel argument 0 points outside device memory") != std::string::npos);
  CHECK(host[0] == 0);
  DeviceBuffer<int> device(std::vector<int>(4, 0));
  CHECK(cudaMemcpyAsync(host.data(), device.data(), 16, cudaMemcpyHostToDevice) == cudaErrorInvalidValue);
  CHECK(cudaGetErrorString(cudaGetLastError()) == std::string("cudaMemcpyAsync of 16 bytes: a host-to-device copy needs host to device"));
  CHECK(cudaMemcpyAsync(device.data(), host.data(), 20, cudaMemcpyHostToDevice) == cudaErrorInvalidValue);
  cudaGetLastError();
  CHECK(cudaMemsetAsync(host.data(), 0, 16) == cudaErrorInvalidValue);
  cudaGetLastError();
}

TEST_CASE("emulated kernels: configurations a GPU refuses are refused, and nothing runs")
{
  DeviceBuffer<int> out(std::vector<int>{0});
  mark<<<1, 1025>>>(out.data());
  auto text = last_error_text();
  CHECK(text.find("cudaErrorInvalidConfiguration") != std::string::npos);
  CHECK(text.find("1024 threads") != std::string::npos);
  mark<<<dim3(1, 65536), 1>>>(out.data());
  CHECK(last_error_text().find("cudaErrorInvalidConfiguration") != std::string::npos);
  mark<<<0, 32>>>(out.data());
  CHECK(cudaGetLastError() == cudaErrorInvalidConfiguration);
  CHECK(out.read()[0] == 0);
  mark<<<1, 1>>>(out.data());
  CHECK(cudaGetLastError() == cudaSuccess);
  CHECK(out.read()[0] == 1);
}

#if defined(__SANITIZE_ADDRESS__)
#include <sanitizer/asan_interface.h>

TEST_CASE("emulated kernels: under AddressSanitizer, host code cannot touch device memory")
{
  DeviceBuffer<int> out(std::vector<int>(4, 0));
  // As on a GPU, where the host dereferencing a device pointer faults.
  CHECK(__asan_address_is_poisoned(out.data()));
  CHECK(__asan_address_is_poisoned(out.data() + 3));
  mark<<<1, 1>>>(out.data());  // the kernel may
  CHECK(cudaGetLastError() == cudaSuccess);
  CHECK(out.read()[0] == 1);  // and so may a copy
}
#endif
