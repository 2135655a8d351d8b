#include "mlops/runtime/shape_rules.hpp"

#include "mlops/core/error.hpp"
#include "mlops/runtime/device.hpp"
#include "mlops/runtime/op_geometry.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <functional>
#include <iterator>
#include <numeric>
#include <utility>

namespace mlops::runtime {
namespace {

[[noreturn]] void throw_shape_mismatch(const Node& node, const std::string& why)
{
  throw Error(ExitCode::usage, fmt::format("{}: {}", node.label(), why));
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

enum class AliasOp { flatten, reshape, squeeze, unsqueeze, identity };

// Kernels keep a copy of their node: its label and attributes are needed at run time, and a copy
// does not depend on how long the graph lives.
class AliasKernel final : public Kernel
{
public:
  AliasKernel(const Node& node, AliasOp op) : m_node(node), m_op(op)
  {
    switch (op) {
    case AliasOp::flatten:
      m_axis = node.attribute_int("axis", 1);
      break;
    case AliasOp::reshape:
      m_allow_zero = node.attribute_int("allowzero", 0) != 0;
      // Before opset 5 the shape was an attribute.
      m_operand_is_input = node.opset >= 5;
      m_operand = node.attribute_ints("shape");
      if (m_operand_is_input && !names_input(node, 1)) {
        throw Error(ExitCode::integrity, fmt::format("{}: the shape input is missing", node.label()));
      }
      break;
    case AliasOp::squeeze:
    case AliasOp::unsqueeze: {
      // The axes were an attribute before opset 13. Squeeze may leave them out, Unsqueeze not.
      bool given = false;
      if (node.opset >= 13) {
        m_operand_is_input = names_input(node, 1);
        given = m_operand_is_input;
      } else {
        given = node.has_attribute("axes");
        m_operand = node.attribute_ints("axes");
      }
      if (op == AliasOp::unsqueeze && !given) {
        throw Error(ExitCode::integrity, fmt::format("{}: the axes are missing", node.label()));
      }
      break;
    }
    case AliasOp::identity:
      break;
    }
  }

  std::vector<size_t> host_inputs() const override
  {
    if (m_operand_is_input) {
      return {1};
    }
    return {};
  }

  void run(KernelContext& context) override
  {
    context.alias_output(0, 0, output_shape(context.input(0).shape, context));
  }

private:
  Shape output_shape(const Shape& input, const KernelContext& context) const
  {
    switch (m_op) {
    case AliasOp::flatten:
      return flattened_shape(m_node, input, m_axis);
    case AliasOp::reshape:
      return reshaped_shape(m_node, input, operand(context), m_allow_zero);
    case AliasOp::squeeze:
      return squeezed_shape(m_node, input, operand(context));
    case AliasOp::unsqueeze:
      return unsqueezed_shape(m_node, input, operand(context));
    case AliasOp::identity:
      break;
    }
    return input;
  }

  // Reshape's shape or Squeeze's and Unsqueeze's axes, wherever this opset keeps them.
  std::vector<std::int64_t> operand(const KernelContext& context) const
  {
    return m_operand_is_input ? context.host_input(1).as_int64s() : m_operand;
  }

  Node m_node;
  AliasOp m_op;
  std::int64_t m_axis = 1;
  bool m_allow_zero = false;
  bool m_operand_is_input = false;
  std::vector<std::int64_t> m_operand;
};

} // namespace

bool names_input(const Node& node, size_t index)
{
  return index < node.inputs.size() && node.inputs[index] != no_value;
}

std::unique_ptr<Kernel> make_alias_kernel(const Node& node)
{
  static const std::pair<std::string_view, AliasOp> ops[] = {{"Flatten", AliasOp::flatten},
                                                             {"Reshape", AliasOp::reshape},
                                                             {"Squeeze", AliasOp::squeeze},
                                                             {"Unsqueeze", AliasOp::unsqueeze},
                                                             {"Identity", AliasOp::identity}};
  for (const auto& [op_type, op] : ops) {
    if (node.op_type == op_type) {
      return std::make_unique<AliasKernel>(node, op);
    }
  }
  throw UnsupportedError(fmt::format("{}: {} is not an operator that only changes the shape", node.label(),
                                     node.op_type));
}

Shape flattened_shape(const Node& node, const Shape& input, std::int64_t axis)
{
  auto rank = static_cast<std::int64_t>(input.size());
  // Unlike most axes, Flatten's may equal the rank (everything goes to the outer dimension).
  std::int64_t split_at = axis < 0 ? axis + rank : axis;
  if (split_at < 0 || split_at > rank) {
    throw Error(ExitCode::integrity,
                fmt::format("{}: axis {} is out of range for a tensor of rank {}", node.label(), axis, rank));
  }
  auto split = input.begin() + static_cast<std::ptrdiff_t>(split_at);
  return {element_count(Shape(input.begin(), split)), element_count(Shape(split, input.end()))};
}

Shape reshaped_shape(const Node& node, const Shape& input, const std::vector<std::int64_t>& request, bool allow_zero)
{
  Shape out(request.size());
  std::ptrdiff_t inferred = -1;
  for (size_t i = 0; i < request.size(); ++i) {
    std::int64_t dim = request[i];
    if (dim == -1) {
      if (inferred >= 0) {
        throw_shape_mismatch(node, fmt::format("the shape {} has more than one -1", shape_text(request)));
      }
      inferred = static_cast<std::ptrdiff_t>(i);
      dim = 1;
    } else if (dim == 0 && !allow_zero) {
      if (i >= input.size()) {
        throw_shape_mismatch(node, fmt::format("the shape {} copies dimension {} of the input of shape {}",
                                               shape_text(request), i, shape_text(input)));
      }
      dim = input[i];
    } else if (dim < 0) {
      throw_shape_mismatch(node, fmt::format("the shape {} has a negative dimension", shape_text(request)));
    }
    out[i] = dim;
  }
  std::int64_t total = element_count(input);
  std::int64_t known = element_count(out);
  if (inferred >= 0 && known != 0 && total % known == 0) {
    out[static_cast<size_t>(inferred)] = total / known;
  } else if (inferred >= 0 || known != total) {
    // A -1 next to a 0 cannot be inferred: any value would fit.
    throw_shape_mismatch(node, fmt::format("cannot reshape a tensor of shape {} to {}", shape_text(input),
                                           shape_text(request)));
  }
  return out;
}

Shape squeezed_shape(const Node& node, const Shape& input, const std::vector<std::int64_t>& axes)
{
  Shape out;
  if (axes.empty()) {
    std::copy_if(input.begin(), input.end(), std::back_inserter(out), [](auto dim) { return dim != 1; });
    return out;
  }
  auto squeezed = marked_axes(node, axes, static_cast<std::int64_t>(input.size()));
  for (size_t i = 0; i < input.size(); ++i) {
    if (squeezed[i] && input[i] != 1) {
      throw_shape_mismatch(node, fmt::format("cannot squeeze axis {} of a tensor of shape {}", i, shape_text(input)));
    }
    if (!squeezed[i]) {
      out.push_back(input[i]);
    }
  }
  return out;
}

Shape unsqueezed_shape(const Node& node, const Shape& input, const std::vector<std::int64_t>& axes)
{
  // The axes index the output, whose rank counts the new dimensions.
  auto inserted = marked_axes(node, axes, static_cast<std::int64_t>(input.size() + axes.size()));
  Shape out;
  auto next = input.begin();
  for (bool is_new : inserted) {
    out.push_back(is_new ? 1 : *next++);
  }
  return out;
}

std::vector<std::int64_t> transpose_permutation(const Node& node, const std::vector<std::int64_t>& perm, size_t rank)
{
  std::vector<std::int64_t> checked = perm;
  if (checked.empty()) {
    for (size_t i = rank; i-- > 0;) {
      checked.push_back(static_cast<std::int64_t>(i));
    }
  }
  std::vector<bool> seen(rank, false);
  bool valid = checked.size() == rank;
  for (size_t i = 0; valid && i < checked.size(); ++i) {
    auto axis = static_cast<size_t>(checked[i]);
    valid = checked[i] >= 0 && axis < rank && !seen[axis];
    if (valid) {
      seen[axis] = true;
    }
  }
  if (!valid) {
    throw Error(ExitCode::usage, fmt::format("{}: perm {} is not a permutation of the {} axes of the input",
                                             node.label(), shape_text(checked), rank));
  }
  return checked;
}

Shape transposed_shape(const Shape& input, const std::vector<std::int64_t>& perm)
{
  Shape out(perm.size());
  for (size_t i = 0; i < perm.size(); ++i) {
    out[i] = input[static_cast<size_t>(perm[i])];
  }
  return out;
}

TransposePlan simplified_transpose(const Shape& input, const std::vector<std::int64_t>& perm)
{
  std::vector<std::int64_t> renumbered(input.size(), -1);  // input axis -> index among those kept
  Shape dims;
  for (size_t axis = 0; axis < input.size(); ++axis) {
    if (input[axis] != 1) {
      renumbered[axis] = static_cast<std::int64_t>(dims.size());
      dims.push_back(input[axis]);
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

std::int64_t concat_axis_attribute(const Node& node)
{
  // The axis was optional (default 1) before opset 4.
  if (node.opset >= 4 && !node.has_attribute("axis")) {
    throw Error(ExitCode::integrity, fmt::format("{}: Concat needs an axis", node.label()));
  }
  return node.attribute_int("axis", 1);
}

ConcatShape concatenated_shape(const Node& node, std::int64_t axis, const std::vector<TensorView>& inputs)
{
  const TensorView& first = inputs.at(0);
  const auto rank = static_cast<std::int64_t>(first.shape.size());
  if (rank == 0) {
    throw Error(ExitCode::usage, fmt::format("{}: cannot concatenate scalars", node.label()));
  }
  ConcatShape result;
  result.axis = static_cast<size_t>(normalize_axis(axis, rank, node));
  result.shape = first.shape;
  result.shape[result.axis] = 0;
  for (const TensorView& input : inputs) {
    bool fits = input.type == first.type && input.shape.size() == first.shape.size();
    for (size_t d = 0; fits && d < first.shape.size(); ++d) {
      fits = d == result.axis || input.shape[d] == first.shape[d];
    }
    if (!fits) {
      throw Error(ExitCode::usage, fmt::format("{}: cannot concatenate {} {} and {} {} along axis {}", node.label(),
                                               element_type_name(first.type), shape_text(first.shape),
                                               element_type_name(input.type), shape_text(input.shape), result.axis));
    }
    result.shape[result.axis] += input.shape[result.axis];
  }
  return result;
}

namespace {

void check_ratio(const Node& node, double ratio)
{
  if (!(ratio >= 0 && ratio < 1)) {
    throw Error(ExitCode::integrity, fmt::format("{}: the ratio {} is not in [0, 1)", node.label(), ratio));
  }
}

double ratio_value(const Node& node, const HostTensor& ratio)
{
  if (ratio.count() != 1) {
    throw Error(ExitCode::usage, fmt::format("{}: the ratio has shape {}, not a scalar", node.label(), shape_text(ratio.shape)));
  }
  if (ratio.type == ElementType::float32) {
    return ratio.data<float>()[0];
  }
  if (ratio.type == ElementType::float64) {
    return ratio.data<double>()[0];
  }
  throw UnsupportedError(fmt::format("{}: Dropout supports a float32 or float64 ratio; this ratio is {}", node.label(),
                                     element_type_name(ratio.type)));
}

} // namespace

InferenceDropout::InferenceDropout(const Node& node)
  : m_node(node), m_ratio_is_input(node.opset >= 12 && names_input(node, 1)),
    m_training_is_input(node.opset >= 12 && names_input(node, 2))
{
  if (node.opset < 12) {
    check_ratio(node, node.attribute_float("ratio", 0.5F));
  }
}

std::vector<size_t> InferenceDropout::host_inputs() const
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

void InferenceDropout::run(KernelContext& context)
{
  double ratio = m_ratio_is_input ? ratio_value(m_node, context.host_input(1)) : 0.5;
  check_ratio(m_node, ratio);
  if (m_training_is_input && ratio != 0) {
    const auto& flag = context.host_input(2);
    if (std::any_of(flag.bytes.begin(), flag.bytes.end(), [](std::byte b) { return b != std::byte{0}; })) {
      throw UnsupportedError(fmt::format("{}: Dropout in training mode is not supported", m_node.label()));
    }
  }
  const TensorView input = context.input(0);
  context.alias_output(0, 0, input.shape);
  if (context.output_count() > 1 && context.wants_output(1)) {
    fill_ones(context.allocate_output(1, m_node.opset >= 10 ? ElementType::boolean : input.type, input.shape));
  }
}

} // namespace mlops::runtime
