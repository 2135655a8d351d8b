// The shape family's kernels that move bytes: Transpose and Concat. Both work on any element type
// by its size, and split large tensors across the device's threads.

#include "ops_shape.hpp"

#include "mlops/runtime/op_geometry.hpp"

#include <fmt/format.h>

#include <cstring>
#include <numeric>

namespace mlops::runtime::cpu {
namespace {

// How many bytes one thread should copy at least: below this, waking workers costs more.
constexpr std::int64_t bytes_per_task = 64 * 1024;

// Walks a multi-index over `dims` in row-major order, keeping its offsets (in elements) into a
// source and a destination tensor with their own strides.
struct StridedWalk
{
  Shape dims;
  std::vector<std::int64_t> from_strides;
  std::vector<std::int64_t> to_strides;
  std::vector<std::int64_t> index;
  std::int64_t from = 0;
  std::int64_t to = 0;

  void seek(std::int64_t linear)
  {
    index.assign(dims.size(), 0);
    from = to = 0;
    for (size_t i = dims.size(); i-- > 0;) {
      index[i] = linear % dims[i];
      linear /= dims[i];
      from += index[i] * from_strides[i];
      to += index[i] * to_strides[i];
    }
  }

  void next()
  {
    for (size_t i = dims.size(); i-- > 0;) {
      ++index[i];
      from += from_strides[i];
      to += to_strides[i];
      if (index[i] < dims[i]) {
        return;
      }
      from -= index[i] * from_strides[i];
      to -= index[i] * to_strides[i];
      index[i] = 0;
    }
  }
};

std::vector<std::int64_t> contiguous_strides(const Shape& dims)
{
  std::vector<std::int64_t> strides(dims.size(), 1);
  for (size_t i = dims.size(); i-- > 1;) {
    strides[i - 1] = strides[i] * dims[i];
  }
  return strides;
}

// A transpose reduced to its essentials: axes of size 1 dropped, and axes that stay neighbours in
// the same order merged. NCHW to NHWC with N = 1 becomes a plain 2-D transpose.
struct TransposePlan
{
  Shape dims;                       // the input's, in input order
  std::vector<std::int64_t> perm;   // output axis i is input axis perm[i]
};

TransposePlan simplified(const Shape& shape, const std::vector<std::int64_t>& perm)
{
  std::vector<std::int64_t> renumbered(shape.size(), -1);
  Shape dims;
  for (size_t axis = 0; axis < shape.size(); ++axis) {
    if (shape[axis] != 1) {
      renumbered[axis] = static_cast<std::int64_t>(dims.size());
      dims.push_back(shape[axis]);
    }
  }
  // Runs of consecutive input axes, in output order: [first, last].
  std::vector<std::pair<std::int64_t, std::int64_t>> runs;
  for (auto axis : perm) {
    std::int64_t kept = renumbered[static_cast<size_t>(axis)];
    if (kept < 0) {
      continue;
    }
    if (!runs.empty() && runs.back().second + 1 == kept) {
      runs.back().second = kept;
    } else {
      runs.emplace_back(kept, kept);
    }
  }
  std::vector<size_t> by_input(runs.size());
  std::iota(by_input.begin(), by_input.end(), size_t{0});
  std::sort(by_input.begin(), by_input.end(), [&](size_t a, size_t b) { return runs[a].first < runs[b].first; });
  TransposePlan plan;
  plan.perm.resize(runs.size());
  for (size_t merged = 0; merged < by_input.size(); ++merged) {
    auto [first, last] = runs[by_input[merged]];
    plan.dims.push_back(std::accumulate(dims.begin() + first, dims.begin() + last + 1, std::int64_t{1},
                                        std::multiplies<>()));
    plan.perm[by_input[merged]] = static_cast<std::int64_t>(merged);
  }
  return plan;
}

// The last input axis stays last: copy whole rows of it.
void transpose_rows(const std::byte* in, std::byte* out, size_t element, const TransposePlan& plan, ThreadPool& pool)
{
  const size_t rank = plan.dims.size();
  const std::int64_t row_bytes = plan.dims.back() * static_cast<std::int64_t>(element);
  auto in_strides = contiguous_strides(plan.dims);
  StridedWalk walk;
  for (size_t i = 0; i + 1 < rank; ++i) {
    walk.dims.push_back(plan.dims[static_cast<size_t>(plan.perm[i])]);
    walk.from_strides.push_back(in_strides[static_cast<size_t>(plan.perm[i])]);
  }
  walk.to_strides = contiguous_strides(walk.dims);
  std::int64_t rows = element_count(walk.dims);
  pool.parallel_for(rows, std::max<std::int64_t>(1, bytes_per_task / row_bytes), [&](std::int64_t begin, std::int64_t end) {
    StridedWalk mine = walk;
    mine.seek(begin);
    for (std::int64_t row = begin; row < end; ++row, mine.next()) {
      std::memcpy(out + row * row_bytes, in + mine.from * static_cast<std::int64_t>(element),
                  static_cast<size_t>(row_bytes));
    }
  });
}

// The last input axis moves: copy square tiles between the output's last axis (`rows`, strided in
// the input) and the input's last axis (`columns`, strided in the output), so that both sides are
// read and written a cache line at a time.
template <class T> void transpose_tiles(const T* in, T* out, const TransposePlan& plan, ThreadPool& pool)
{
  constexpr std::int64_t tile = 32;
  const size_t rank = plan.dims.size();
  auto in_strides = contiguous_strides(plan.dims);
  Shape out_dims(rank);
  for (size_t i = 0; i < rank; ++i) {
    out_dims[i] = plan.dims[static_cast<size_t>(plan.perm[i])];
  }
  auto out_strides = contiguous_strides(out_dims);
  const auto row_axis = static_cast<size_t>(plan.perm[rank - 1]);
  const std::int64_t rows = plan.dims[row_axis];
  const std::int64_t row_stride = in_strides[row_axis];
  const std::int64_t columns = plan.dims[rank - 1];
  std::int64_t column_stride = 0;
  StridedWalk walk;  // the other axes, in output order
  for (size_t i = 0; i + 1 < rank; ++i) {
    auto axis = static_cast<size_t>(plan.perm[i]);
    if (axis == rank - 1) {
      column_stride = out_strides[i];
    } else {
      walk.dims.push_back(plan.dims[axis]);
      walk.from_strides.push_back(in_strides[axis]);
      walk.to_strides.push_back(out_strides[i]);
    }
  }
  const std::int64_t bands = (rows + tile - 1) / tile;
  const std::int64_t band_bytes = tile * columns * static_cast<std::int64_t>(sizeof(T));
  const std::int64_t tasks = element_count(walk.dims) * bands;
  pool.parallel_for(tasks, std::max<std::int64_t>(1, bytes_per_task / band_bytes), [&](std::int64_t begin, std::int64_t end) {
    StridedWalk mine = walk;
    for (std::int64_t task = begin; task < end; ++task) {
      mine.seek(task / bands);
      std::int64_t row_begin = task % bands * tile;
      std::int64_t row_end = std::min(rows, row_begin + tile);
      for (std::int64_t column_begin = 0; column_begin < columns; column_begin += tile) {
        std::int64_t column_end = std::min(columns, column_begin + tile);
        for (std::int64_t r = row_begin; r < row_end; ++r) {
          const T* from = in + mine.from + r * row_stride;
          T* to = out + mine.to + r;
          for (std::int64_t c = column_begin; c < column_end; ++c) {
            to[c * column_stride] = from[c];
          }
        }
      }
    }
  });
}

class TransposeKernel final : public Kernel
{
public:
  TransposeKernel(const Node& node, ThreadPool& pool) : m_node(node), m_perm(node.attribute_ints("perm")), m_pool(pool) {}

  void run(KernelContext& context) override
  {
    // Copies, not references: allocating the output may move the context's views.
    const TensorView input = context.input(0);
    auto perm = checked_perm(input.shape.size());
    Shape out_shape(perm.size());
    for (size_t i = 0; i < perm.size(); ++i) {
      out_shape[i] = input.shape[static_cast<size_t>(perm[i])];
    }
    const auto* in = input.as<const std::byte>();
    const size_t element = element_size(input.type);
    TensorView& output = context.allocate_output(0, input.type, std::move(out_shape));
    if (output.count() == 0) {
      return;
    }
    auto* out = output.as<std::byte>();
    TransposePlan plan = simplified(input.shape, perm);
    if (plan.dims.size() <= 1) {
      std::memcpy(out, in, output.bytes());
    } else if (plan.perm.back() == static_cast<std::int64_t>(plan.dims.size()) - 1) {
      transpose_rows(in, out, element, plan, m_pool);
    } else if (element == 1) {
      transpose_tiles(reinterpret_cast<const std::uint8_t*>(in), reinterpret_cast<std::uint8_t*>(out), plan, m_pool);
    } else if (element == 4) {
      transpose_tiles(reinterpret_cast<const std::uint32_t*>(in), reinterpret_cast<std::uint32_t*>(out), plan, m_pool);
    } else if (element == 8) {
      transpose_tiles(reinterpret_cast<const std::uint64_t*>(in), reinterpret_cast<std::uint64_t*>(out), plan, m_pool);
    } else {
      throw UnsupportedError(fmt::format("{}: Transpose has no copy for {}-byte elements", m_node.label(), element));
    }
  }

private:
  // The permutation for an input of `rank` (reversed when the node has none), checked.
  std::vector<std::int64_t> checked_perm(size_t rank) const
  {
    std::vector<std::int64_t> perm = m_perm;
    if (perm.empty()) {
      for (size_t i = rank; i-- > 0;) {
        perm.push_back(static_cast<std::int64_t>(i));
      }
    }
    std::vector<bool> seen(rank, false);
    bool valid = perm.size() == rank;
    for (auto axis : perm) {
      valid = valid && axis >= 0 && static_cast<size_t>(axis) < rank && !seen[static_cast<size_t>(axis)];
      if (valid) {
        seen[static_cast<size_t>(axis)] = true;
      }
    }
    if (!valid) {
      throw Error(ExitCode::usage, fmt::format("{}: perm {} is not a permutation of the {} axes of the input",
                                               m_node.label(), shape_text(perm), rank));
    }
    return perm;
  }

  Node m_node;
  std::vector<std::int64_t> m_perm;
  ThreadPool& m_pool;
};

class ConcatKernel final : public Kernel
{
public:
  ConcatKernel(const Node& node, ThreadPool& pool) : m_node(node), m_pool(pool)
  {
    // The axis was optional (default 1) before opset 4.
    if (node.opset >= 4 && !node.has_attribute("axis")) {
      throw Error(ExitCode::integrity, fmt::format("{}: Concat needs an axis", node.label()));
    }
    m_axis = node.attribute_int("axis", 1);
  }

  void run(KernelContext& context) override
  {
    // Copies, not references: allocating the output may move the context's views.
    const TensorView first = context.input(0);
    const auto rank = static_cast<std::int64_t>(first.shape.size());
    if (rank == 0) {
      throw Error(ExitCode::usage, fmt::format("{}: cannot concatenate scalars", m_node.label()));
    }
    const auto axis = static_cast<size_t>(normalize_axis(m_axis, rank, m_node));
    Shape out_shape = first.shape;
    out_shape[axis] = 0;
    std::vector<TensorView> inputs;
    for (size_t i = 0; i < context.input_count(); ++i) {
      inputs.push_back(context.input(i));
      check_fits(first, inputs.back(), axis);
      out_shape[axis] += inputs.back().shape[axis];
    }
    const auto element = static_cast<std::int64_t>(element_size(first.type));
    Shape outer_dims(first.shape.begin(), first.shape.begin() + static_cast<std::ptrdiff_t>(axis));
    const std::int64_t outer = element_count(outer_dims);
    TensorView& output = context.allocate_output(0, first.type, out_shape);
    // Per outer index, each input contributes one contiguous block.
    std::vector<std::int64_t> block_bytes;
    for (const auto& input : inputs) {
      block_bytes.push_back(outer == 0 ? 0 : input.count() / outer * element);
    }
    const std::int64_t out_block = std::accumulate(block_bytes.begin(), block_bytes.end(), std::int64_t{0});
    auto* out = output.as<std::byte>();
    m_pool.parallel_for(outer, std::max<std::int64_t>(1, bytes_per_task / std::max<std::int64_t>(out_block, 1)),
                        [&](std::int64_t begin, std::int64_t end) {
      for (std::int64_t o = begin; o < end; ++o) {
        std::byte* to = out + o * out_block;
        for (size_t i = 0; i < inputs.size(); ++i) {
          if (block_bytes[i] != 0) {
            std::memcpy(to, inputs[i].as<const std::byte>() + o * block_bytes[i], static_cast<size_t>(block_bytes[i]));
            to += block_bytes[i];
          }
        }
      }
    });
  }

private:
  void check_fits(const TensorView& first, const TensorView& input, size_t axis) const
  {
    bool fits = input.type == first.type && input.shape.size() == first.shape.size();
    for (size_t d = 0; fits && d < first.shape.size(); ++d) {
      fits = d == axis || input.shape[d] == first.shape[d];
    }
    if (!fits) {
      throw Error(ExitCode::usage, fmt::format("{}: cannot concatenate {} {} and {} {} along axis {}", m_node.label(),
                                               element_type_name(first.type), shape_text(first.shape),
                                               element_type_name(input.type), shape_text(input.shape), axis));
    }
  }

  Node m_node;
  std::int64_t m_axis = 1;
  ThreadPool& m_pool;
};

} // namespace

std::unique_ptr<Kernel> make_transpose(const Node& node, CpuDevice& device)
{
  return std::make_unique<TransposeKernel>(node, device.pool());
}

std::unique_ptr<Kernel> make_concat(const Node& node, CpuDevice& device)
{
  return std::make_unique<ConcatKernel>(node, device.pool());
}

} // namespace mlops::runtime::cpu
