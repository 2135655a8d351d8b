// The shape family's kernels that move bytes: Transpose and Concat. Both work on any element type
// by its size, and split large tensors across the device's threads.

#include "ops_shape.hpp"

#include "mlops/runtime/shape_rules.hpp"

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
    auto perm = transpose_permutation(m_node, m_perm, input.shape.size());
    Shape out_shape = transposed_shape(input.shape, perm);
    const auto* in = input.as<const std::byte>();
    const size_t element = element_size(input.type);
    TensorView& output = context.allocate_output(0, input.type, std::move(out_shape));
    if (output.count() == 0) {
      return;
    }
    auto* out = output.as<std::byte>();
    TransposePlan plan = simplified_transpose(input.shape, perm);
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
  Node m_node;
  std::vector<std::int64_t> m_perm;
  ThreadPool& m_pool;
};

class ConcatKernel final : public Kernel
{
public:
  ConcatKernel(const Node& node, ThreadPool& pool) : m_node(node), m_axis(concat_axis_attribute(node)), m_pool(pool)
  {
  }

  void run(KernelContext& context) override
  {
    // Copies, not references: allocating the output may move the context's views.
    std::vector<TensorView> inputs{context.input(0)};
    for (size_t i = 1; i < context.input_count(); ++i) {
      inputs.push_back(context.input(i));
    }
    auto [axis, out_shape] = concatenated_shape(m_node, m_axis, inputs);
    const TensorView& first = inputs.front();
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
  Node m_node;
  std::int64_t m_axis;
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
