// Softmax, LogSoftmax and ArgMax on the GPU. Each views its input as [outer, n, inner] around the
// reduced axis. When inner is 1 the rows are contiguous: a warp (short rows) or a block (long
// rows) reduces each one. Otherwise one thread walks each (outer, inner) column, and neighbouring
// threads read neighbouring addresses.
#include "kernel_common.hpp"

#include "mlops/runtime/op_geometry.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <cstdint>

namespace mlops::runtime::cuda {
namespace {

constexpr int warp_threads = 32;
// Rows up to this length take one warp each; longer ones a whole block.
constexpr std::int64_t warp_row_limit = 1024;

// ---- Softmax, LogSoftmax ----

__device__ float max_of(float a, float b) { return fmaxf(a, b); }
__device__ double max_of(double a, double b) { return fmax(a, b); }
__device__ float exp_of(float x) { return expf(x); }
__device__ double exp_of(double x) { return exp(x); }
__device__ float log_of(float x) { return logf(x); }
__device__ double log_of(double x) { return ::log(x); }

struct MaxOf
{
  template <class T> __device__ T operator()(T a, T b) const { return max_of(a, b); }
};

struct SumOf
{
  template <class T> __device__ T operator()(T a, T b) const { return a + b; }
};

// Every lane ends with the result (xor butterfly).
template <class T, class Combine> __device__ T warp_reduce(T value, Combine combine)
{
  for (int offset = warp_threads / 2; offset > 0; offset /= 2) {
    value = combine(value, __shfl_xor_sync(0xffffffffu, value, offset));
  }
  return value;
}

// Every thread of the block ends with the result. `partials` holds one value per warp.
template <class T, class Combine> __device__ T block_reduce(T value, Combine combine, T identity, T* partials)
{
  value = warp_reduce(value, combine);
  unsigned lane = threadIdx.x % warp_threads;
  unsigned warp = threadIdx.x / warp_threads;
  __syncthreads();  // the previous reduction has read `partials`
  if (lane == 0) {
    partials[warp] = value;
  }
  __syncthreads();
  value = lane < blockDim.x / warp_threads ? partials[lane] : identity;
  return warp_reduce(value, combine);
}

// One row's results, written by the threads first, first + step, ... of those sharing the row.
template <class T, bool take_log>
__device__ void write_row(const T* in, T* out, std::int64_t n, unsigned first, unsigned step, T max, T sum)
{
  T log_sum = take_log ? log_of(sum) : T(0);
  for (std::int64_t j = first; j < n; j += step) {
    out[j] = take_log ? in[j] - max - log_sum : exp_of(in[j] - max) / sum;
  }
}

template <class T, bool take_log>
__global__ void softmax_warp_rows(const T* in, T* out, std::int64_t rows, std::int64_t n)
{
  unsigned lane = threadIdx.x % warp_threads;
  for (std::int64_t row = first_index() / warp_threads; row < rows; row += grid_stride() / warp_threads) {
    const T* x = in + row * n;
    T max = -INFINITY;
    for (std::int64_t j = lane; j < n; j += warp_threads) {
      max = max_of(max, x[j]);
    }
    max = warp_reduce(max, MaxOf{});
    T sum = 0;
    for (std::int64_t j = lane; j < n; j += warp_threads) {
      sum += exp_of(x[j] - max);
    }
    sum = warp_reduce(sum, SumOf{});
    write_row<T, take_log>(x, out + row * n, n, lane, warp_threads, max, sum);
  }
}

template <class T, bool take_log>
__global__ void softmax_block_rows(const T* in, T* out, std::int64_t rows, std::int64_t n)
{
  __shared__ T partials[block_threads / warp_threads];
  for (std::int64_t row = blockIdx.x; row < rows; row += gridDim.x) {
    const T* x = in + row * n;
    T max = -INFINITY;
    for (std::int64_t j = threadIdx.x; j < n; j += blockDim.x) {
      max = max_of(max, x[j]);
    }
    max = block_reduce(max, MaxOf{}, T(-INFINITY), partials);
    T sum = 0;
    for (std::int64_t j = threadIdx.x; j < n; j += blockDim.x) {
      sum += exp_of(x[j] - max);
    }
    sum = block_reduce(sum, SumOf{}, T(0), partials);
    write_row<T, take_log>(x, out + row * n, n, threadIdx.x, blockDim.x, max, sum);
  }
}

template <class T, bool take_log> __global__ void softmax_columns(const T* in, T* out, AxisLayout view)
{
  std::int64_t columns = view.outer * view.inner;
  for (std::int64_t c = first_index(); c < columns; c += grid_stride()) {
    std::int64_t base = c / view.inner * view.length * view.inner + c % view.inner;
    T max = -INFINITY;
    for (std::int64_t k = 0; k < view.length; ++k) {
      max = max_of(max, in[base + k * view.inner]);
    }
    T sum = 0;
    for (std::int64_t k = 0; k < view.length; ++k) {
      sum += exp_of(in[base + k * view.inner] - max);
    }
    T log_sum = take_log ? log_of(sum) : T(0);
    for (std::int64_t k = 0; k < view.length; ++k) {
      T x = in[base + k * view.inner];
      out[base + k * view.inner] = take_log ? x - max - log_sum : exp_of(x - max) / sum;
    }
  }
}

template <bool take_log> class SoftmaxKernel : public Kernel
{
public:
  SoftmaxKernel(const Node& node, CudaDevice& device)
    : m_node(node), m_device(device), m_what("launching " + node.label()),
      m_flatten(node.opset < 13), m_axis(node.attribute_int("axis", node.opset < 13 ? 1 : -1))
  {
  }

  void run(KernelContext& context) override
  {
    const TensorView in = context.input(0);
    auto rank = static_cast<std::int64_t>(in.shape.size());
    if (rank == 0) {
      throw Error(ExitCode::usage, fmt::format("{}: needs an input of rank 1 or more", m_node.label()));
    }
    AxisLayout view = axis_layout(in.shape, normalize_axis(m_axis, rank, m_node), m_flatten);
    TensorView& out = context.allocate_output(0, in.type, in.shape);
    if (in.type == ElementType::float32) {
      launch<float>(in, out, view);
    } else if (in.type == ElementType::float64) {
      launch<double>(in, out, view);
    } else {
      throw UnsupportedError(fmt::format("{}: {} supports float32 and float64; this input is {}", m_node.label(),
                                         m_node.op_type, element_type_name(in.type)));
    }
    check(cudaGetLastError(), m_what.c_str());
  }

private:
  template <class T> void launch(const TensorView& in, TensorView& out, const AxisLayout& view)
  {
    if (out.count() == 0) {
      return;
    }
    cudaStream_t stream = m_device.stream();
    if (view.inner > 1) {
      std::int64_t columns = view.outer * view.inner;
      softmax_columns<T, take_log>
        <<<grid_for(columns, m_device), block_threads, 0, stream>>>(in.as<T>(), out.as<T>(), view);
    } else if (view.length <= warp_row_limit) {
      // One warp per row; longer rows get a whole block each, below.
      softmax_warp_rows<T, take_log><<<grid_for(view.outer * warp_threads, m_device), block_threads, 0, stream>>>(
        in.as<T>(), out.as<T>(), view.outer, view.length);
    } else {
      softmax_block_rows<T, take_log><<<grid_for(view.outer * block_threads, m_device), block_threads, 0, stream>>>(
        in.as<T>(), out.as<T>(), view.outer, view.length);
    }
  }

  Node m_node;  // a copy, so the kernel does not depend on how long the graph lives
  CudaDevice& m_device;
  std::string m_what;
  bool m_flatten;
  std::int64_t m_axis;
};

// ---- ArgMax ----

// Ties go to the first index (the last with select_last_index); NaN counts as the largest value,
// as numpy's argmax has it.
template <class T>
__global__ void argmax_columns(const T* in, std::int64_t* out, AxisLayout view, bool select_last)
{
  std::int64_t columns = view.outer * view.inner;
  for (std::int64_t c = first_index(); c < columns; c += grid_stride()) {
    std::int64_t base = c / view.inner * view.length * view.inner + c % view.inner;
    T best = in[base];
    std::int64_t best_index = 0;
    for (std::int64_t k = 1; k < view.length; ++k) {
      T value = in[base + k * view.inner];
      bool best_is_nan = best != best;
      bool better = value != value ? select_last || !best_is_nan
                                   : !best_is_nan && (value > best || (select_last && value == best));
      if (better) {
        best = value;
        best_index = k;
      }
    }
    out[c] = best_index;
  }
}

class ArgMaxKernel : public Kernel
{
public:
  ArgMaxKernel(const Node& node, CudaDevice& device)
    : m_node(node), m_device(device), m_what("launching " + node.label()), m_axis(node.attribute_int("axis", 0)),
      m_keepdims(node.attribute_int("keepdims", 1) != 0),
      m_select_last(node.attribute_int("select_last_index", 0) != 0)
  {
  }

  void run(KernelContext& context) override
  {
    const TensorView in = context.input(0);
    auto rank = static_cast<std::int64_t>(in.shape.size());
    if (rank == 0) {
      throw Error(ExitCode::usage, fmt::format("{}: needs an input of rank 1 or more", m_node.label()));
    }
    std::int64_t axis = normalize_axis(m_axis, rank, m_node);
    AxisLayout view = axis_layout(in.shape, axis, false);
    if (view.length == 0 && view.outer * view.inner > 0) {
      throw Error(ExitCode::usage, fmt::format("{}: axis {} of shape {} is empty and has no largest element",
                                               m_node.label(), axis, shape_text(in.shape)));
    }
    Shape out_shape = in.shape;
    if (m_keepdims) {
      out_shape[static_cast<size_t>(axis)] = 1;
    } else {
      out_shape.erase(out_shape.begin() + axis);
    }
    TensorView& out = context.allocate_output(0, ElementType::int64, out_shape);
    switch (in.type) {
    case ElementType::float32: launch(in.as<float>(), out, view); break;
    case ElementType::float64: launch(in.as<double>(), out, view); break;
    case ElementType::int32: launch(in.as<std::int32_t>(), out, view); break;
    case ElementType::int64: launch(in.as<std::int64_t>(), out, view); break;
    case ElementType::int8: launch(in.as<std::int8_t>(), out, view); break;
    case ElementType::uint8: launch(in.as<std::uint8_t>(), out, view); break;
    default:
      throw UnsupportedError(fmt::format("{}: the CUDA device has no ArgMax for {} tensors", m_node.label(),
                                         element_type_name(in.type)));
    }
    check(cudaGetLastError(), m_what.c_str());
  }

private:
  template <class T> void launch(const T* in, TensorView& out, const AxisLayout& view)
  {
    std::int64_t columns = view.outer * view.inner;
    if (columns == 0) {
      return;
    }
    argmax_columns<T><<<grid_for(columns, m_device), block_threads, 0,
                        m_device.stream()>>>(in, out.as<std::int64_t>(), view, m_select_last);
  }

  Node m_node;  // a copy, so the kernel does not depend on how long the graph lives
  CudaDevice& m_device;
  std::string m_what;
  std::int64_t m_axis;
  bool m_keepdims;
  bool m_select_last;
};

} // namespace

void add_softmax_ops(OpTable& table)
{
  table["Softmax"] = make_kernel_of<SoftmaxKernel<false>>;
  table["LogSoftmax"] = make_kernel_of<SoftmaxKernel<true>>;
  table["ArgMax"] = make_kernel_of<ArgMaxKernel>;
}

} // namespace mlops::runtime::cuda
