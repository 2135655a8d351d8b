// ArgMax: the int64 index of the largest element along `axis` (default 0), the first one or,
// with select_last_index, the last one among equals. The axis is kept as a dimension of 1 with
// keepdims (the default) and dropped without. NaN counts as the largest value, as in numpy and
// PyTorch.

#include "cpu_kernels.hpp"
#include "mlops/runtime/op_geometry.hpp"

#include <cmath>
#include <type_traits>

namespace mlops::runtime::cpu {
namespace {

template <class T> bool is_nan(T value)
{
  if constexpr (std::is_floating_point_v<T>) {
    return std::isnan(value);
  } else {
    return false;
  }
}

// Whether `value`, met later along the axis, replaces `best`.
template <class T, bool last> bool replaces(T value, T best)
{
  if constexpr (last) {
    return value >= best || is_nan(value);
  } else {
    return value > best || (is_nan(value) && !is_nan(best));
  }
}

// Columns [0, width) of one block of `length` rows, `inner` apart, as softmax walks them: a
// contiguous piece of each row at a time.
inline constexpr std::int64_t column_tile = 64;

template <class T, bool last>
void argmax_columns(const T* in, std::int64_t* out, std::int64_t length, std::int64_t inner, std::int64_t width)
{
  T best[column_tile];
  std::copy_n(in, width, best);
  std::fill_n(out, width, std::int64_t{0});
  for (std::int64_t k = 1; k < length; ++k) {
    const T* row = in + k * inner;
    for (std::int64_t j = 0; j < width; ++j) {
      if (replaces<T, last>(row[j], best[j])) {
        best[j] = row[j];
        out[j] = k;
      }
    }
  }
}

template <class T, bool last>
void compute_argmax(ThreadPool& pool, const T* in, std::int64_t* out, std::int64_t outer, std::int64_t length,
                    std::int64_t inner)
{
  const std::int64_t tiles = (inner + column_tile - 1) / column_tile;
  const std::int64_t width = std::min(column_tile, inner);
  parallel_ranges(pool, outer * tiles, rows_grain(length * width), [&](std::int64_t first, std::int64_t end) {
    for (std::int64_t task = first; task < end; ++task) {
      const std::int64_t block = task / tiles;
      const std::int64_t column = task % tiles * column_tile;
      argmax_columns<T, last>(in + block * length * inner + column, out + block * inner + column, length, inner,
                              std::min(column_tile, inner - column));
    }
  });
}

class ArgMaxKernel final : public Kernel
{
public:
  ArgMaxKernel(const Node& node, CpuDevice& device)
      : m_node(node), m_pool(device.pool()), m_axis(node.attribute_int("axis", 0)),
        m_keep_dims(node.attribute_int("keepdims", 1) != 0),
        m_select_last(node.attribute_int("select_last_index", 0) != 0)
  {
  }

  void run(KernelContext& context) override
  {
    const TensorView& in = context.input(0);
    const auto rank = static_cast<std::int64_t>(in.shape.size());
    if (rank == 0) {
      throw Error(ExitCode::usage, fmt::format("{}: needs an input of rank 1 or more", m_node.label()));
    }
    const auto axis = static_cast<size_t>(normalize_axis(m_axis, rank, m_node));
    // Plain variables, not structured bindings: clang 14 (the fuzz build) cannot capture those.
    const auto layout = axis_layout(in.shape, static_cast<std::int64_t>(axis));
    const auto outer = layout.outer;
    const auto length = layout.length;
    const auto inner = layout.inner;
    Shape shape = in.shape;
    if (m_keep_dims) {
      shape[axis] = 1;
    } else {
      shape.erase(shape.begin() + static_cast<std::ptrdiff_t>(axis));
    }
    if (length == 0 && outer * inner > 0) {
      throw Error(ExitCode::usage, fmt::format("{}: axis {} of shape {} is empty and has no largest element",
                                               m_node.label(), axis, shape_text(in.shape)));
    }
    visit_element_type(NumericTypes{}, in.type, m_node, [&](auto tag) {
      using T = decltype(tag);
      TensorView& out = context.allocate_output(0, ElementType::int64, shape);
      if (outer * inner == 0) {
        return;
      }
      if (m_select_last) {
        compute_argmax<T, true>(m_pool, in.as<const T>(), out.as<std::int64_t>(), outer, length, inner);
      } else {
        compute_argmax<T, false>(m_pool, in.as<const T>(), out.as<std::int64_t>(), outer, length, inner);
      }
    });
  }

private:
  Node m_node;
  ThreadPool& m_pool;
  std::int64_t m_axis;
  bool m_keep_dims;
  bool m_select_last;
};

std::unique_ptr<Kernel> make_argmax(const Node& node, CpuDevice& device)
{
  return std::make_unique<ArgMaxKernel>(node, device);
}

} // namespace

void add_argmax_ops(OpTable& table)
{
  table["ArgMax"] = make_argmax;
}

} // namespace mlops::runtime::cpu
