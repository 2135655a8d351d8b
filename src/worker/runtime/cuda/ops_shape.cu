// Operators that move data without arithmetic. Flatten, Reshape, Squeeze, Unsqueeze, Identity
// and Dropout (inference) only change the shape: their outputs alias their inputs, nothing runs.
// Transpose and Concat copy elements as words of the element's size, so every type works;
// Constant uploads its attribute.
#include "kernel_common.hpp"

#include "mlops/runtime/op_geometry.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <cstdint>
#include <optional>

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

// Whether the model names input `index` (optional inputs may be left out or named "").
bool names_input(const Node& node, size_t index)
{
  return index < node.inputs.size() && node.inputs[index] != no_value;
}

// ---- The aliases ----
// The shape rules follow the CPU's (cpu/ops_shape.cpp) error for error, so that a model fails the
// same way on either device.

[[noreturn]] void throw_shape_mismatch(const Node& node, const std::string& why)
{
  throw Error(ExitCode::usage, fmt::format("{}: {}", node.label(), why));
}

using ShapeRule = Shape (*)(const Node& node, KernelContext& context, const Shape& in);

Shape same_shape(const Node&, KernelContext&, const Shape& in)
{
  return in;
}

Shape flatten_shape(const Node& node, KernelContext&, const Shape& in)
{
  auto rank = static_cast<std::int64_t>(in.size());
  std::int64_t axis = node.attribute_int("axis", 1);
  // Unlike other axes, Flatten's may equal the rank (everything goes to the outer dimension).
  axis = axis == rank ? rank : normalize_axis(axis, rank, node);
  auto split = in.begin() + axis;
  return {element_count(Shape(in.begin(), split)), element_count(Shape(split, in.end()))};
}

// 0 copies the input's dimension at the same index (unless allowzero), and one -1 takes whatever
// the other dimensions leave.
Shape reshape_shape(const Node& node, KernelContext& context, const Shape& in)
{
  Shape request = node.opset < 5 ? node.attribute_ints("shape") : context.host_input(1).as_int64s();
  bool allow_zero = node.attribute_int("allowzero", 0) != 0;
  Shape out(request.size());
  std::optional<size_t> inferred;
  for (size_t i = 0; i < request.size(); ++i) {
    out[i] = request[i];
    if (request[i] == -1) {
      if (inferred) {
        throw_shape_mismatch(node, fmt::format("the shape {} has more than one -1", shape_text(request)));
      }
      inferred = i;
      out[i] = 1;
    } else if (request[i] == 0 && !allow_zero) {
      if (i >= in.size()) {
        throw_shape_mismatch(node, fmt::format("the shape {} copies dimension {} of the input of shape {}",
                                               shape_text(request), i, shape_text(in)));
      }
      out[i] = in[i];
    } else if (request[i] < 0) {
      throw_shape_mismatch(node, fmt::format("the shape {} has a negative dimension", shape_text(request)));
    }
  }
  std::int64_t total = element_count(in);
  std::int64_t known = element_count(out);
  if (inferred && known != 0 && total % known == 0) {
    out[*inferred] = total / known;
  } else if (inferred || known != total) {
    // A -1 next to a 0 cannot be inferred: any value would fit.
    throw_shape_mismatch(node, fmt::format("cannot reshape a tensor of shape {} to {}", shape_text(in),
                                           shape_text(request)));
  }
  return out;
}

// Squeeze's and Unsqueeze's axes: an attribute before opset 13, an input since.
std::vector<std::int64_t> axes_of(const Node& node, KernelContext& context)
{
  if (node.opset >= 13) {
    return context.has_input(1) ? context.host_input(1).as_int64s() : std::vector<std::int64_t>{};
  }
  return node.attribute_ints("axes");
}

// Marks the axes named (each normalized against `rank`); naming one twice is an error.
std::vector<bool> marked_axes(const Node& node, const std::vector<std::int64_t>& axes, std::int64_t rank)
{
  std::vector<bool> marked(static_cast<size_t>(rank), false);
  for (auto axis : axes) {
    auto index = static_cast<size_t>(normalize_axis(axis, rank, node));
    if (index >= marked.size() || marked[index]) {
      throw Error(ExitCode::integrity, fmt::format("{}: the axes {} name axis {} twice or out of range",
                                                   node.label(), shape_text(axes), axis));
    }
    marked[index] = true;
  }
  return marked;
}

Shape squeeze_shape(const Node& node, KernelContext& context, const Shape& in)
{
  auto axes = axes_of(node, context);
  Shape out;
  if (axes.empty()) {
    // Without axes every dimension of size 1 goes.
    std::copy_if(in.begin(), in.end(), std::back_inserter(out), [](auto dim) { return dim != 1; });
    return out;
  }
  auto squeezed = marked_axes(node, axes, static_cast<std::int64_t>(in.size()));
  for (size_t i = 0; i < in.size(); ++i) {
    if (squeezed[i] && in[i] != 1) {
      throw_shape_mismatch(node, fmt::format("cannot squeeze axis {} of a tensor of shape {}", i, shape_text(in)));
    }
    if (!squeezed[i]) {
      out.push_back(in[i]);
    }
  }
  return out;
}

Shape unsqueeze_shape(const Node& node, KernelContext& context, const Shape& in)
{
  auto axes = axes_of(node, context);
  // The axes index the output, whose rank counts the new dimensions.
  auto inserted = marked_axes(node, axes, static_cast<std::int64_t>(in.size() + axes.size()));
  Shape out;
  auto next = in.begin();
  for (bool is_new : inserted) {
    out.push_back(is_new ? 1 : *next++);
  }
  return out;
}

class AliasKernel : public Kernel
{
public:
  AliasKernel(const Node& node, ShapeRule rule, std::vector<size_t> host_inputs)
    : m_node(node), m_rule(rule), m_host_inputs(std::move(host_inputs))
  {
  }

  std::vector<size_t> host_inputs() const override { return m_host_inputs; }

  void run(KernelContext& context) override
  {
    context.alias_output(0, 0, m_rule(m_node, context, context.input(0).shape));
  }

private:
  Node m_node;  // a copy, so the kernel does not depend on how long the graph lives
  ShapeRule m_rule;
  std::vector<size_t> m_host_inputs;
};

template <ShapeRule rule> std::unique_ptr<Kernel> make_alias(const Node& node, CudaDevice&)
{
  std::vector<size_t> host_inputs;
  bool from_input = names_input(node, 1);
  if (rule == reshape_shape && node.opset >= 5) {
    if (!from_input) {
      throw Error(ExitCode::integrity, fmt::format("{}: the shape input is missing", node.label()));
    }
    host_inputs = {1};
  }
  if ((rule == squeeze_shape || rule == unsqueeze_shape) && node.opset >= 13 && from_input) {
    host_inputs = {1};
  }
  bool has_axes = node.opset >= 13 ? from_input : node.has_attribute("axes");
  if (rule == unsqueeze_shape && !has_axes) {
    throw Error(ExitCode::integrity, fmt::format("{}: the axes are missing", node.label()));
  }
  return std::make_unique<AliasKernel>(node, rule, std::move(host_inputs));
}

template <class W> __global__ void fill_words(W* out, std::int64_t count, W value)
{
  for (std::int64_t i = first_index(); i < count; i += grid_stride()) {
    out[i] = value;
  }
}

// Dropout at inference passes its input through; the optional mask says every element was kept.
// As on the CPU: is_test (before opset 7) is ignored, and training mode (an input from opset 12)
// is refused unless the ratio is 0, where it changes nothing.
class DropoutKernel : public Kernel
{
public:
  DropoutKernel(const Node& node, CudaDevice& device)
    : m_node(node), m_device(device), m_ratio_is_input(node.opset >= 12 && names_input(node, 1)),
      m_training_is_input(node.opset >= 12 && names_input(node, 2))
  {
    if (node.opset < 12) {
      check_ratio(node.attribute_float("ratio", 0.5f));
    }
  }

  std::vector<size_t> host_inputs() const override
  {
    std::vector<size_t> inputs;
    if (m_ratio_is_input) {
      inputs.push_back(1);
    }
    if (m_training_is_input) {
      inputs.push_back(2);
    }
    return inputs;
  }

  void run(KernelContext& context) override
  {
    double ratio = m_ratio_is_input ? ratio_value(context.host_input(1)) : 0.5;
    check_ratio(ratio);
    if (m_training_is_input && is_true(context.host_input(2)) && ratio != 0) {
      throw UnsupportedError(fmt::format("{}: Dropout in training mode is not supported", m_node.label()));
    }
    const TensorView in = context.input(0);
    context.alias_output(0, 0, in.shape);
    if (context.output_count() > 1 && context.wants_output(1)) {
      // The mask became bool at opset 10; before, it had the input's type.
      fill_ones(context.allocate_output(1, m_node.opset >= 10 ? ElementType::boolean : in.type, in.shape));
    }
  }

private:
  void check_ratio(double ratio) const
  {
    if (!(ratio >= 0 && ratio < 1)) {
      throw Error(ExitCode::integrity, fmt::format("{}: the ratio {} is not in [0, 1)", m_node.label(), ratio));
    }
  }

  double ratio_value(const HostTensor& ratio) const
  {
    if (ratio.count() != 1) {
      throw_shape_mismatch(m_node, fmt::format("the ratio has shape {}, not a scalar", shape_text(ratio.shape)));
    }
    if (ratio.type == ElementType::float32) {
      return ratio.data<float>()[0];
    }
    if (ratio.type == ElementType::float64) {
      return ratio.data<double>()[0];
    }
    throw UnsupportedError(fmt::format("{}: Dropout supports a float32 or float64 ratio; this ratio is {}",
                                       m_node.label(), element_type_name(ratio.type)));
  }

  static bool is_true(const HostTensor& flag)
  {
    return std::any_of(flag.bytes.begin(), flag.bytes.end(), [](std::byte b) { return b != std::byte{0}; });
  }

  void fill_ones(TensorView& mask) const
  {
    std::int64_t count = mask.count();
    cudaStream_t stream = m_device.stream();
    switch (mask.type) {
    case ElementType::boolean:
    case ElementType::uint8:
      check(cudaMemsetAsync(mask.data, 1, mask.bytes(), stream), "filling Dropout's mask");
      return;
    case ElementType::float32:
      fill_words<float><<<grid_for(count, m_device), block_threads, 0, stream>>>(mask.as<float>(), count, 1.0f);
      break;
    case ElementType::float64:
      fill_words<double><<<grid_for(count, m_device), block_threads, 0, stream>>>(mask.as<double>(), count, 1.0);
      break;
    default:
      throw UnsupportedError(fmt::format("{}: Dropout's mask supports float32 and float64; this input is {}",
                                         m_node.label(), element_type_name(mask.type)));
    }
    check(cudaGetLastError(), "launching Dropout's mask");
  }

  Node m_node;  // a copy, so the kernel does not depend on how long the graph lives
  CudaDevice& m_device;
  bool m_ratio_is_input;
  bool m_training_is_input;
};

// ---- Transpose, Concat, Constant ----

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

// Dimensions of size 1 are dropped and output dimensions that are neighbours in the input too
// are merged, so a [N, C, H, W] -> [N, H, W, C] walk has rank 3 and a no-op transpose rank 0-1.
TransposeWalk transpose_walk(const Shape& in, const std::vector<std::int64_t>& perm, const Node& node)
{
  std::vector<std::int64_t> kept(in.size(), -1);  // input axis -> index among those kept
  Shape dims;
  for (size_t a = 0; a < in.size(); ++a) {
    if (in[a] != 1) {
      kept[a] = static_cast<std::int64_t>(dims.size());
      dims.push_back(in[a]);
    }
  }
  std::vector<std::pair<std::int64_t, std::int64_t>> groups;  // first and last kept input axis
  for (auto axis : perm) {
    std::int64_t k = kept[static_cast<size_t>(axis)];
    if (k < 0) {
      continue;
    }
    if (!groups.empty() && groups.back().second + 1 == k) {
      groups.back().second = k;
    } else {
      groups.emplace_back(k, k);
    }
  }
  if (groups.size() > max_rank) {
    throw UnsupportedError(fmt::format("{}: transposing {} needs more than {} dimensions on CUDA", node.label(),
                                       shape_text(in), max_rank));
  }
  TransposeWalk walk;
  walk.rank = static_cast<int>(groups.size());
  for (size_t g = 0; g < groups.size(); ++g) {
    auto [first, last] = groups[g];
    walk.dims[g] = 1;
    walk.in_strides[g] = 1;
    for (auto k = first; k <= last; ++k) {
      walk.dims[g] *= dims[static_cast<size_t>(k)];
    }
    for (auto k = last + 1; k < static_cast<std::int64_t>(dims.size()); ++k) {
      walk.in_strides[g] *= dims[static_cast<size_t>(k)];
    }
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
    std::vector<std::int64_t> perm = permutation(in.shape.size());
    Shape out_shape;
    for (auto axis : perm) {
      out_shape.push_back(in.shape[static_cast<size_t>(axis)]);
    }
    TransposeWalk walk = transpose_walk(in.shape, perm, m_node);
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
  // `perm`, or the reversed axes without it, checked against the rank.
  std::vector<std::int64_t> permutation(size_t rank) const
  {
    std::vector<std::int64_t> perm = m_perm;
    if (perm.empty() && rank > 0) {
      for (size_t i = rank; i-- > 0;) {
        perm.push_back(static_cast<std::int64_t>(i));
      }
    }
    std::vector<bool> seen(rank, false);
    bool valid = perm.size() == rank;
    for (size_t i = 0; valid && i < perm.size(); ++i) {
      auto axis = static_cast<size_t>(perm[i]);
      valid = perm[i] >= 0 && axis < rank && !seen[axis];
      seen[valid ? axis : 0] = valid;
    }
    if (!valid) {
      throw Error(ExitCode::usage, fmt::format("{}: perm {} is not a permutation of the {} axes of the input",
                                               m_node.label(), shape_text(perm), rank));
    }
    return perm;
  }

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
    : m_node(node), m_device(device), m_what("launching " + node.label())
  {
    if (!node.has_attribute("axis") && node.opset >= 4) {
      throw Error(ExitCode::integrity, fmt::format("{}: Concat needs an axis", node.label()));
    }
    m_axis = node.attribute_int("axis", 1);
  }

  void run(KernelContext& context) override
  {
    const TensorView first = context.input(0);
    auto rank = static_cast<std::int64_t>(first.shape.size());
    if (rank == 0) {
      throw Error(ExitCode::usage, fmt::format("{}: cannot concatenate scalars", m_node.label()));
    }
    auto axis = static_cast<size_t>(normalize_axis(m_axis, rank, m_node));
    Shape out_shape = first.shape;
    out_shape[axis] = 0;
    for (size_t i = 0; i < context.input_count(); ++i) {
      const TensorView& in = context.input(i);
      Shape expected = out_shape;
      expected[axis] = in.shape.size() == out_shape.size() ? in.shape[axis] : 0;
      if (in.type != first.type || in.shape != expected) {
        throw Error(ExitCode::usage, fmt::format("{}: cannot concatenate {} {} and {} {} along axis {}",
                                                 m_node.label(), element_type_name(first.type), shape_text(first.shape),
                                                 element_type_name(in.type), shape_text(in.shape), axis));
      }
      out_shape[axis] += in.shape[axis];
    }
    TensorView& out = context.allocate_output(0, first.type, out_shape);
    // The output as [rows, axis, inner]; each input fills a band of every row.
    std::int64_t rows = element_count(Shape(out_shape.begin(), out_shape.begin() + axis));
    std::int64_t inner = element_count(Shape(out_shape.begin() + axis + 1, out_shape.end()));
    std::int64_t offset = 0;
    for (size_t i = 0; i < context.input_count(); ++i) {
      const TensorView& in = context.input(i);
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
  std::int64_t m_axis = 1;
};

// The value from whichever one of Constant's attributes the node sets. Throws Error(integrity)
// unless exactly one is set, UnsupportedError for sparse and string values (as the CPU does).
std::shared_ptr<const HostTensor> constant_value(const Node& node)
{
  const char* forms[] = {"value",      "value_float",  "value_floats",  "value_int",
                         "value_ints", "sparse_value", "value_string", "value_strings"};
  auto set = std::count_if(std::begin(forms), std::end(forms), [&](const char* key) { return node.has_attribute(key); });
  if (set != 1) {
    throw Error(ExitCode::integrity,
                fmt::format("{}: Constant needs exactly one value attribute, it has {}", node.label(), set));
  }
  auto tensor = [](ElementType type, bool scalar, const auto& values) {
    Shape shape = scalar ? Shape{} : Shape{static_cast<std::int64_t>(values.size())};
    return std::make_shared<const HostTensor>(HostTensor::from(type, shape, values));
  };
  if (node.has_attribute("value")) {
    return node.attribute_tensor("value");
  }
  if (node.has_attribute("value_float")) {
    return tensor(ElementType::float32, true, std::vector<float>{node.attribute_float("value_float", 0)});
  }
  if (node.has_attribute("value_floats")) {
    return tensor(ElementType::float32, false, node.attribute_floats("value_floats"));
  }
  if (node.has_attribute("value_int")) {
    return tensor(ElementType::int64, true, std::vector<std::int64_t>{node.attribute_int("value_int", 0)});
  }
  if (node.has_attribute("value_ints")) {
    return tensor(ElementType::int64, false, node.attribute_ints("value_ints"));
  }
  throw UnsupportedError(fmt::format("{}: Constant supports dense numeric values; this one is sparse or text",
                                     node.label()));
}

class ConstantKernel : public Kernel
{
public:
  ConstantKernel(const Node& node, CudaDevice& device) : m_device(device), m_value(constant_value(node))
  {
    if (!m_value) {
      throw Error(ExitCode::integrity, fmt::format("{}: the value attribute holds no tensor", node.label()));
    }
  }

  void run(KernelContext& context) override
  {
    TensorView& out = context.allocate_output(0, m_value->type, m_value->shape);
    m_device.copy_from_host(out.data, m_value->bytes.data(), m_value->bytes.size());
  }

private:
  CudaDevice& m_device;
  std::shared_ptr<const HostTensor> m_value;
};

template <class K> std::unique_ptr<Kernel> make(const Node& node, CudaDevice& device)
{
  return std::make_unique<K>(node, device);
}

} // namespace

void add_shape_ops(OpTable& table)
{
  table["Flatten"] = make_alias<flatten_shape>;
  table["Reshape"] = make_alias<reshape_shape>;
  table["Squeeze"] = make_alias<squeeze_shape>;
  table["Unsqueeze"] = make_alias<unsqueeze_shape>;
  table["Identity"] = make_alias<same_shape>;
  table["Dropout"] = make<DropoutKernel>;
  table["Transpose"] = make<TransposeKernel>;
  table["Concat"] = make<ConcatKernel>;
  table["Constant"] = make<ConstantKernel>;
}

} // namespace mlops::runtime::cuda
