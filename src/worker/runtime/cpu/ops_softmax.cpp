// Softmax and LogSoftmax, numerically stable: each slice has its largest value subtracted before
// exp, so large inputs neither overflow nor lose their differences.
//
// Before opset 13 the input is seen as a matrix [prod(dims before axis), prod(dims from axis on)]
// (axis defaults to 1) and each row is one slice. From opset 13 a slice runs along the one
// dimension `axis` (default -1). Either way the work is `outer` blocks of `length` x `inner`
// elements with slices down the columns; inner is 1 for the common last-axis case.

#include "cpu_kernels.hpp"
#include "mlops/runtime/op_geometry.hpp"

#include <cmath>
#include <type_traits>

namespace mlops::runtime::cpu {
namespace {

// out[i] = e^(in[i] - shift); returns their sum.
template <class T> T exp_and_sum(const T* __restrict in, T* __restrict out, std::int64_t n, T shift)
{
  if constexpr (std::is_same_v<T, float>) {
    return exp_shifted_sum(in, out, n, shift);
  } else {
    for_each_index(n, [&](std::int64_t i) { out[i] = in[i] - shift; });
    exp_in_place(out, n);
    return sum_of(out, n);
  }
}

// One contiguous slice.
template <class T> void softmax_row(const T* __restrict in, T* __restrict out, std::int64_t n, bool log)
{
  const T max = max_of(in, n);
  const T sum = exp_and_sum(in, out, n, max);
  if (log) {
    // (x - max) - log(sum), not x - (max + log(sum)): with large x the sum of the two would
    // round away the small log term.
    const T log_sum = std::log(sum);
    for_each_index(n, [&](std::int64_t i) { out[i] = (in[i] - max) - log_sum; });
  } else {
    const T scale = 1 / sum;
    for_each_index(n, [&](std::int64_t i) { out[i] *= scale; });
  }
}

// Columns [0, width) of one block whose slices run down the columns, rows `inner` apart: each
// step along the slices reads a contiguous piece of a row, rather than striding through memory
// once per column.
inline constexpr std::int64_t column_tile = 64;

template <class T>
void softmax_columns(const T* in, T* out, const AxisLayout& layout, std::int64_t width, bool log)
{
  T max[column_tile];
  T total[column_tile] = {};
  const std::int64_t inner = layout.inner;
  std::copy_n(in, width, max);
  for (std::int64_t k = 1; k < layout.length; ++k) {
    const T* __restrict row = in + k * inner;
    for_each_index(width, [&](std::int64_t j) { max[j] = max[j] < row[j] ? row[j] : max[j]; });
  }
  for (std::int64_t k = 0; k < layout.length; ++k) {
    const T* __restrict row = in + k * inner;
    T* __restrict result = out + k * inner;
    for_each_index(width, [&](std::int64_t j) { result[j] = row[j] - max[j]; });
    exp_in_place(result, width);
    for_each_index(width, [&](std::int64_t j) { total[j] += result[j]; });
  }
  // From here on `total` holds what finishes each column: the log of its sum, or its reciprocal.
  for (std::int64_t j = 0; j < width; ++j) {
    total[j] = log ? std::log(total[j]) : 1 / total[j];
  }
  for (std::int64_t k = 0; k < layout.length; ++k) {
    const T* __restrict row = in + k * inner;
    T* __restrict result = out + k * inner;
    if (log) {
      for_each_index(width, [&](std::int64_t j) { result[j] = (row[j] - max[j]) - total[j]; });
    } else {
      for_each_index(width, [&](std::int64_t j) { result[j] *= total[j]; });
    }
  }
}

template <class T> void compute_softmax(ThreadPool& pool, const T* in, T* out, const AxisLayout& layout, bool log)
{
  const std::int64_t block = layout.length * layout.inner;
  if (layout.inner == 1) {
    parallel_ranges(pool, layout.outer, rows_grain(block), [&](std::int64_t first, std::int64_t last) {
      for (std::int64_t row = first; row < last; ++row) {
        softmax_row(in + row * block, out + row * block, layout.length, log);
      }
    });
    return;
  }
  // One task per tile of columns in each block.
  const std::int64_t tiles = (layout.inner + column_tile - 1) / column_tile;
  parallel_ranges(pool, layout.outer * tiles, rows_grain(layout.length * column_tile),
                  [&](std::int64_t first, std::int64_t last) {
                    for (std::int64_t task = first; task < last; ++task) {
                      const std::int64_t column = task % tiles * column_tile;
                      const std::int64_t offset = task / tiles * block + column;
                      softmax_columns(in + offset, out + offset, layout, std::min(column_tile, layout.inner - column),
                                      log);
                    }
                  });
}

class SoftmaxKernel final : public Kernel
{
public:
  SoftmaxKernel(const Node& node, CpuDevice& device, bool log)
      : m_node(node), m_pool(device.pool()), m_log(log), m_axis(node.attribute_int("axis", node.opset < 13 ? 1 : -1))
  {
  }

  void run(KernelContext& context) override
  {
    const TensorView& in = context.input(0);
    visit_element_type(RealTypes{}, in.type, m_node, [&](auto tag) {
      using T = decltype(tag);
      const AxisLayout layout = layout_of(in.shape);
      TensorView& out = context.allocate_output(0, in.type, in.shape);
      if (layout.outer * layout.length * layout.inner > 0) {
        compute_softmax(m_pool, in.as<const T>(), out.as<T>(), layout, m_log);
      }
    });
  }

private:
  AxisLayout layout_of(const Shape& shape) const
  {
    const auto rank = static_cast<std::int64_t>(shape.size());
    if (rank == 0) {
      throw Error(ExitCode::usage, fmt::format("{}: needs an input of rank 1 or more", m_node.label()));
    }
    return axis_layout(shape, normalize_axis(m_axis, rank, m_node), /*to_end=*/m_node.opset < 13);
  }

  Node m_node;
  ThreadPool& m_pool;
  bool m_log;
  std::int64_t m_axis;
};

std::unique_ptr<Kernel> make_softmax(const Node& node, CpuDevice& device)
{
  return std::make_unique<SoftmaxKernel>(node, device, false);
}

std::unique_ptr<Kernel> make_log_softmax(const Node& node, CpuDevice& device)
{
  return std::make_unique<SoftmaxKernel>(node, device, true);
}

} // namespace

void add_softmax_ops(OpTable& table)
{
  table["Softmax"] = make_softmax;
  table["LogSoftmax"] = make_log_softmax;
  add_argmax_ops(table);
}

} // namespace mlops::runtime::cpu
