// The shape family's kernels that move elements: Transpose and Concat. Both copy elements as
// words of the element's size, so every type works. Their shape rules are shared with the CPU
// (shape_rules.hpp).
#include "kernel_common.hpp"
#include "ops_shape.hpp"

#include "mlops/runtime/shape_rules.hpp"

#include <fmt/format.h>

#include <cstdint>

namespace mlops::runtime::cuda {
namespace {

// Calls `visit` with an unsigned integer as wide as one element.
template <class Visit> void visit_word(ElementType type, const Node& node, Visit&& visit)
{
  switch (element_size(type)) {
  case 1: return visit(std::uint8_t{});
  case 2: return visit(std::uint16_t{});
  case 4: return visit(std::uint32_t{});
  case 8: return visit(std::uint64_t{});
  default:
    throw UnsupportedError(fmt::format("{}: the CUDA device cannot move {} tensors", node.label(),
                                       element_type_name(type)));
  }
}

constexpr int max_rank = 8;

// For each output dimension, its size and the input's stride along it, passed by value.
struct TransposeWalk
{
  int rank = 0;
  std::int64_t dims[max_rank] = {};
  std::int64_t in_strides[max_rank] = {};
};

template <class W> __global__ void transpose_words(const W* in, W* out, std::int64_t count, TransposeWalk walk)
{
  for (std::int64_t i = first_index(); i < count; i += grid_stride()) {
    std::int64_t rest = i;
    std::int64_t from = 0;
    for (int d = walk.rank - 1; d >= 0; --d) {
      from += rest % walk.dims[d] * walk.in_strides[d];
      rest /= walk.dims[d];
    }
    out[i] = in[from];
  }
}

// The walk of a simplified transpose (shape_rules.hpp), in output order: a [N, C, H, W] ->
// [N, H, W, C] walk has rank 3, a transpose that keeps every element in place rank 0 or 1.
TransposeWalk transpose_walk(const TransposePlan& plan, const Shape& in, const Node& node)
{
  if (plan.dims.size() > max_rank) {
    throw UnsupportedError(fmt::format("{}: transposing {} needs more than {} dimensions on CUDA", node.label(),
                                       shape_text(in), max_rank));
  }
  std::int64_t in_strides[max_rank] = {};  // of the merged input dimensions, in input order
  std::int64_t stride = 1;
  for (size_t d = plan.dims.size(); d-- > 0;) {
    in_strides[d] = stride;
    stride *= plan.dims[d];
  }
  TransposeWalk walk;
  walk.rank = static_cast<int>(plan.perm.size());
  for (size_t d = 0; d < plan.perm.size(); ++d) {
    auto axis = static_cast<size_t>(plan.perm[d]);
    walk.dims[d] = plan.dims[axis];
    walk.in_strides[d] = in_strides[axis];
  }
  return walk;
}

class TransposeKernel : public Kernel
{
public:
  TransposeKernel(const Node& node, CudaDevice& device)
    : m_node(node), m_device(device), m_what("launching " + node.label()), m_perm(node.attribute_ints("perm"))
  {
  }

  void run(KernelContext& context) override
  {
    const TensorView in = context.input(0);
    std::vector<std::int64_t> perm = transpose_permutation(m_node, m_perm, in.shape.size());
    Shape out_shape = transposed_shape(in.shape, perm);
    TransposeWalk walk = transpose_walk(simplified_transpose(in.shape, perm), in.shape, m_node);
    if (walk.rank <= 1) {
      // The elements keep their order: nothing to move.
      context.alias_output(0, 0, out_shape);
      return;
    }
    TensorView& out = context.allocate_output(0, in.type, out_shape);
    std::int64_t count = out.count();
    visit_word(in.type, m_node, [&](auto zero) {
      using W = decltype(zero);
      transpose_words<W>
        <<<grid_for(count, m_device), block_threads, 0, m_device.stream()>>>(in.as<W>(), out.as<W>(), count, walk);
    });
    check(cudaGetLastError(), m_what.c_str());
  }

private:
  Node m_node;  // a copy, so the kernel does not depend on how long the graph lives
  CudaDevice& m_device;
  std::string m_what;
  std::vector<std::int64_t> m_perm;
};

// Copies `rows` rows of `in_row` words into rows of `out_row` words, starting at `offset`.
template <class W>
__global__ void copy_rows(const W* in, W* out, std::int64_t rows, std::int64_t in_row, std::int64_t out_row,
                          std::int64_t offset)
{
  std::int64_t count = rows * in_row;
  for (std::int64_t i = first_index(); i < count; i += grid_stride()) {
    std::int64_t row = i / in_row;
    out[row * out_row + offset + (i - row * in_row)] = in[i];
  }
}

class ConcatKernel : public Kernel
{
public:
  ConcatKernel(const Node& node, CudaDevice& device)
    : m_node(node), m_device(device), m_what("launching " + node.label()), m_axis(concat_axis_attribute(node))
  {
  }

  void run(KernelContext& context) override
  {
    std::vector<TensorView> inputs{context.input(0)};
    for (size_t i = 1; i < context.input_count(); ++i) {
      inputs.push_back(context.input(i));
    }
    auto [axis, out_shape] = concatenated_shape(m_node, m_axis, inputs);
    TensorView& out = context.allocate_output(0, inputs.front().type, out_shape);
    // The output as [rows, axis, inner]; each input fills a band of every row.
    std::int64_t rows = element_count(Shape(out_shape.begin(), out_shape.begin() + axis));
    std::int64_t inner = element_count(Shape(out_shape.begin() + axis + 1, out_shape.end()));
    std::int64_t offset = 0;
    for (const TensorView& in : inputs) {
      copy(in, out, rows, in.shape[axis] * inner, out_shape[axis] * inner, offset);
      offset += in.shape[axis] * inner;
    }
    check(cudaGetLastError(), m_what.c_str());
  }

private:
  void copy(const TensorView& in, TensorView& out, std::int64_t rows, std::int64_t in_row, std::int64_t out_row,
            std::int64_t offset)
  {
    if (rows * in_row == 0) {
      return;
    }
    if (rows == 1) {
      m_device.copy_on_device(out.as<std::byte>() + offset * element_size(out.type), in.data, in.bytes());
      return;
    }
    visit_word(in.type, m_node, [&](auto zero) {
      using W = decltype(zero);
      copy_rows<W><<<grid_for(rows * in_row, m_device), block_threads, 0, m_device.stream()>>>(
        in.as<W>(), out.as<W>(), rows, in_row, out_row, offset);
    });
  }

  Node m_node;  // a copy, so the kernel does not depend on how long the graph lives
  CudaDevice& m_device;
  std::string m_what;
  std::int64_t m_axis;
};

} // namespace

std::unique_ptr<Kernel> make_transpose(const Node& node, CudaDevice& device)
{
  return std::make_unique<TransposeKernel>(node, device);
}

std::unique_ptr<Kernel> make_concat(const Node& node, CudaDevice& device)
{
  return std::make_unique<ConcatKernel>(node, device);
}

} // namespace mlops::runtime::cuda
