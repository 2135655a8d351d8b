// MaxPool, AveragePool and GlobalAveragePool on the GPU. The windowed pools give one thread per
// output element, which walks its window skipping the padding; GlobalAveragePool sums each
// (image, channel) plane with one block.

#include "cuda_device.hpp"
#include "kernel_common.hpp"
#include "sliding_window.hpp"

#include <fmt/format.h>

#include <cmath>
#include <cstdint>

namespace mlops::runtime::cuda {

namespace {

using Index = std::int64_t;

// Where output element `position` of a plane starts its window, per spatial dimension.
__device__ void window_start(const SlidingWindow& w, Index position, Index start[max_spatial])
{
  for (int d = max_spatial - 1; d >= 0; --d) {
    start[d] = position % w.output[d] * w.stride[d] - w.pad_begin[d];
    position /= w.output[d];
  }
}

// NaN wins, as on the CPU (and in PyTorch): a window holding one gives NaN. `b != b` only for NaN.
template <class T> __device__ T larger(T a, T b)
{
  return b > a || b != b ? b : a;
}

// The maximum over the window's taps that fall inside the input; a window entirely in the
// padding (possible with dilations) gives the type's lowest value.
template <class T> __global__ void max_pool(const T* x, T* y, Index planes, SlidingWindow w, T lowest)
{
  Index positions = w.output_count();
  Index count = planes * positions;
  for (Index i = first_index(); i < count; i += grid_stride()) {
    Index start[max_spatial];
    window_start(w, i % positions, start);
    const T* plane = x + i / positions * w.input_count();
    T best = lowest;
    for (Index k0 = 0; k0 < w.kernel[0]; ++k0) {
      Index c0 = start[0] + k0 * w.dilation[0];
      if (c0 < 0 || c0 >= w.input[0]) {
        continue;
      }
      for (Index k1 = 0; k1 < w.kernel[1]; ++k1) {
        Index c1 = start[1] + k1 * w.dilation[1];
        if (c1 < 0 || c1 >= w.input[1]) {
          continue;
        }
        const T* row = plane + (c0 * w.input[1] + c1) * w.input[2];
        for (Index k2 = 0; k2 < w.kernel[2]; ++k2) {
          Index c2 = start[2] + k2 * w.dilation[2];
          if (c2 >= 0 && c2 < w.input[2]) {
            best = larger(best, row[c2]);
          }
        }
      }
    }
    y[i] = best;
  }
}

// Where a tap lies along one dimension: in the input, in the padding, or past the padding (which
// ceil_mode's last window can reach, and which no divisor counts).
__device__ int tap_place(Index coordinate, const SlidingWindow& w, int d)
{
  if (coordinate >= 0 && coordinate < w.input[d]) {
    return 0;
  }
  return coordinate >= -w.pad_begin[d] && coordinate < w.input[d] + w.pad_end[d] ? 1 : 2;
}

// The mean over the window's taps inside the input, divided by their number, or with
// count_include_pad by the number of taps inside the padded input.
__global__ void average_pool(const float* x, float* y, Index planes, SlidingWindow w, bool count_include_pad)
{
  Index positions = w.output_count();
  Index count = planes * positions;
  for (Index i = first_index(); i < count; i += grid_stride()) {
    Index start[max_spatial];
    window_start(w, i % positions, start);
    const float* plane = x + i / positions * w.input_count();
    float sum = 0;
    Index inside = 0;
    Index padded = 0;
    for (Index k0 = 0; k0 < w.kernel[0]; ++k0) {
      Index c0 = start[0] + k0 * w.dilation[0];
      int place0 = tap_place(c0, w, 0);
      for (Index k1 = 0; k1 < w.kernel[1]; ++k1) {
        Index c1 = start[1] + k1 * w.dilation[1];
        int place1 = max(place0, tap_place(c1, w, 1));
        for (Index k2 = 0; k2 < w.kernel[2]; ++k2) {
          Index c2 = start[2] + k2 * w.dilation[2];
          int place = max(place1, tap_place(c2, w, 2));
          if (place == 0) {
            sum += plane[(c0 * w.input[1] + c1) * w.input[2] + c2];
            ++inside;
          }
          padded += place <= 1 ? 1 : 0;
        }
      }
    }
    // A window wholly in the padding (large pads, ceil_mode, dilations) averages nothing: 0, as on
    // the CPU.
    Index divisor = count_include_pad ? padded : inside;
    y[i] = divisor > 0 ? sum / static_cast<float>(divisor) : 0.f;
  }
}

// y[plane] = the mean of x's plane, one block per plane at a time.
__global__ void plane_means(const float* x, float* y, Index planes, Index size)
{
  __shared__ float partial[block_threads];
  for (Index p = blockIdx.x; p < planes; p += gridDim.x) {
    const float* plane = x + p * size;
    float sum = 0;
    for (Index i = threadIdx.x; i < size; i += block_threads) {
      sum += plane[i];
    }
    partial[threadIdx.x] = sum;
    __syncthreads();
    for (int half = block_threads / 2; half > 0; half /= 2) {
      if (static_cast<int>(threadIdx.x) < half) {
        partial[threadIdx.x] += partial[threadIdx.x + half];
      }
      __syncthreads();
    }
    if (threadIdx.x == 0) {
      y[p] = size > 0 ? partial[0] / static_cast<float>(size) : 0.f;
    }
    // The next plane overwrites `partial` only after thread 0 has read it.
    __syncthreads();
  }
}

class WindowPoolKernel : public Kernel
{
public:
  WindowPoolKernel(const Node& node, CudaDevice& device)
    : m_node(node), m_device(device), m_kernel(node.attribute_ints("kernel_shape")),
      m_ceil_mode(node.attribute_int("ceil_mode", 0) != 0),
      m_count_include_pad(node.attribute_int("count_include_pad", 0) != 0)
  {
    if (m_kernel.empty()) {
      throw Error(ExitCode::integrity, fmt::format("{}: kernel_shape is missing", node.label()));
    }
    if (node.op_type == "MaxPool" && node.outputs.size() > 1 && node.outputs[1] != no_value) {
      throw UnsupportedError(fmt::format("{}: the CUDA device does not compute MaxPool's Indices", node.label()));
    }
  }

  void run(KernelContext& context) override
  {
    const TensorView& x = context.input(0);
    bool is_max = m_node.op_type == "MaxPool";
    bool small_integers = x.type == ElementType::uint8 || x.type == ElementType::int8;
    if (x.type != ElementType::float32 && !(is_max && small_integers)) {
      throw UnsupportedError(fmt::format("{}: the CUDA device has no {} for {} tensors", m_node.label(),
                                         m_node.op_type, element_type_name(x.type)));
    }
    WindowGeometry geometry = window_geometry(m_node, x.shape, m_kernel, m_ceil_mode);
    SlidingWindow window = sliding_window(geometry, m_node);
    Shape y_shape{geometry.batch, geometry.channels};
    y_shape.insert(y_shape.end(), geometry.output.begin(), geometry.output.end());
    TensorView& y = context.allocate_output(0, x.type, y_shape);
    Index count = y.count();
    if (count == 0) {
      return;
    }
    Index planes = geometry.batch * geometry.channels;
    unsigned grid = grid_for(count, m_device);
    cudaStream_t stream = m_device.stream();
    if (!is_max) {
      average_pool<<<grid, block_threads, 0, stream>>>(x.as<float>(), y.as<float>(), planes, window,
                                                       m_count_include_pad);
    } else if (x.type == ElementType::float32) {
      max_pool<float><<<grid, block_threads, 0, stream>>>(x.as<float>(), y.as<float>(), planes, window, -INFINITY);
    } else if (x.type == ElementType::uint8) {
      max_pool<std::uint8_t><<<grid, block_threads, 0, stream>>>(x.as<std::uint8_t>(), y.as<std::uint8_t>(), planes,
                                                                 window, std::uint8_t{0});
    } else {
      max_pool<std::int8_t><<<grid, block_threads, 0, stream>>>(x.as<std::int8_t>(), y.as<std::int8_t>(), planes,
                                                                window, std::int8_t{-128});
    }
    check(cudaGetLastError(), is_max ? "launching MaxPool" : "launching AveragePool");
  }

private:
  Node m_node;
  CudaDevice& m_device;
  Shape m_kernel;
  bool m_ceil_mode;
  bool m_count_include_pad;
};

class GlobalAveragePoolKernel : public Kernel
{
public:
  GlobalAveragePoolKernel(const Node& node, CudaDevice& device) : m_node(node), m_device(device) {}

  void run(KernelContext& context) override
  {
    const TensorView& x = float_input(context, 0, m_node);
    if (x.shape.size() < 3) {
      throw Error(ExitCode::usage, fmt::format("{}: input {} has no spatial dimensions", m_node.label(),
                                               shape_text(x.shape)));
    }
    Shape y_shape(x.shape.size(), 1);
    y_shape[0] = x.shape[0];
    y_shape[1] = x.shape[1];
    TensorView& y = context.allocate_output(0, ElementType::float32, y_shape);
    Index planes = y.count();
    if (planes == 0) {
      return;
    }
    Index size = x.count() / planes;
    // An empty plane's mean is 0, as on the CPU.
    unsigned grid = static_cast<unsigned>(std::min<Index>(planes, Index{m_device.multiprocessors()} * 16));
    plane_means<<<grid, block_threads, 0, m_device.stream()>>>(x.as<float>(), y.as<float>(), planes, size);
    check(cudaGetLastError(), "launching GlobalAveragePool");
  }

private:
  Node m_node;
  CudaDevice& m_device;
};

} // namespace

void add_pool_ops(OpTable& table)
{
  table.emplace("MaxPool", make_kernel_of<WindowPoolKernel>);
  table.emplace("AveragePool", make_kernel_of<WindowPoolKernel>);
  table.emplace("GlobalAveragePool", make_kernel_of<GlobalAveragePoolKernel>);
}

} // namespace mlops::runtime::cuda
