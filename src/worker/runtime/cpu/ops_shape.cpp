// The shape family. The kernels here give their input another shape without moving a byte: the
// output aliases the input (Flatten, Reshape, Squeeze, Unsqueeze, Identity, Dropout at
// inference). Transpose and Concat, which do move bytes, are in ops_transpose.cpp; Constant is in
// ops_constant.cpp.

#include "ops_shape.hpp"

#include "mlops/runtime/op_geometry.hpp"

#include <fmt/format.h>

#include <cstring>

namespace mlops::runtime::cpu {
namespace {

[[noreturn]] void throw_shape_mismatch(const Node& node, const std::string& why)
{
  throw Error(ExitCode::usage, fmt::format("{}: {}", node.label(), why));
}

// Whether the model names input `index` (optional inputs may be left out or named "").
bool names_input(const Node& node, size_t index)
{
  return index < node.inputs.size() && node.inputs[index] != no_value;
}

// Kernels keep a copy of their node: its label and attributes are needed at run time, and a copy
// does not depend on how long the graph lives.
class FlattenKernel final : public Kernel
{
public:
  explicit FlattenKernel(const Node& node) : m_node(node), m_axis(node.attribute_int("axis", 1)) {}

  void run(KernelContext& context) override
  {
    const Shape& shape = context.input(0).shape;
    auto rank = static_cast<std::int64_t>(shape.size());
    // Unlike most axes, Flatten's may equal the rank (everything goes to the outer dimension).
    std::int64_t axis = m_axis < 0 ? m_axis + rank : m_axis;
    if (axis < 0 || axis > rank) {
      throw Error(ExitCode::integrity,
                  fmt::format("{}: axis {} is out of range for a tensor of rank {}", m_node.label(), m_axis, rank));
    }
    auto split = shape.begin() + static_cast<std::ptrdiff_t>(axis);
    Shape outer(shape.begin(), split);
    Shape inner(split, shape.end());
    context.alias_output(0, 0, {element_count(outer), element_count(inner)});
  }

private:
  Node m_node;
  std::int64_t m_axis;
};

// ONNX's Reshape: 0 copies the input's dimension at the same index (unless allowzero), and one -1
// takes whatever the other dimensions leave.
Shape reshaped(const Node& node, const Shape& input, const std::vector<std::int64_t>& request, bool allow_zero)
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

class ReshapeKernel final : public Kernel
{
public:
  explicit ReshapeKernel(const Node& node)
    : m_node(node), m_allow_zero(node.attribute_int("allowzero", 0) != 0),
      // Before opset 5 the shape was an attribute.
      m_shape_is_input(node.opset >= 5), m_shape(node.attribute_ints("shape"))
  {
    if (m_shape_is_input && !names_input(node, 1)) {
      throw Error(ExitCode::integrity, fmt::format("{}: the shape input is missing", node.label()));
    }
  }

  std::vector<size_t> host_inputs() const override
  {
    if (m_shape_is_input) {
      return {1};
    }
    return {};
  }

  void run(KernelContext& context) override
  {
    const auto& request = m_shape_is_input ? context.host_input(1).as_int64s() : m_shape;
    context.alias_output(0, 0, reshaped(m_node, context.input(0).shape, request, m_allow_zero));
  }

private:
  Node m_node;
  bool m_allow_zero;
  bool m_shape_is_input;
  std::vector<std::int64_t> m_shape;
};

// Squeeze and Unsqueeze take their axes from an attribute before opset 13 and from an input since.
class AxesSource
{
public:
  AxesSource(const Node& node, bool required) : m_from_input(node.opset >= 13 && names_input(node, 1))
  {
    if (node.opset >= 13) {
      m_given = m_from_input;
    } else {
      m_given = node.has_attribute("axes");
      m_axes = node.attribute_ints("axes");
    }
    if (required && !m_given) {
      throw Error(ExitCode::integrity, fmt::format("{}: the axes are missing", node.label()));
    }
  }

  std::vector<size_t> host_inputs() const
  {
    if (m_from_input) {
      return {1};
    }
    return {};
  }
  bool given() const { return m_given; }
  std::vector<std::int64_t> axes(const KernelContext& context) const
  {
    return m_from_input ? context.host_input(1).as_int64s() : m_axes;
  }

private:
  bool m_from_input;
  bool m_given = false;
  std::vector<std::int64_t> m_axes;
};

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

class SqueezeKernel final : public Kernel
{
public:
  explicit SqueezeKernel(const Node& node) : m_node(node), m_axes(node, false) {}

  std::vector<size_t> host_inputs() const override { return m_axes.host_inputs(); }

  void run(KernelContext& context) override
  {
    const Shape& shape = context.input(0).shape;
    Shape out;
    auto axes = m_axes.given() ? m_axes.axes(context) : std::vector<std::int64_t>{};
    if (axes.empty()) {
      // Without axes (or with none), every dimension of size 1 goes.
      std::copy_if(shape.begin(), shape.end(), std::back_inserter(out), [](auto dim) { return dim != 1; });
    } else {
      auto squeezed = marked_axes(m_node, axes, static_cast<std::int64_t>(shape.size()));
      for (size_t i = 0; i < shape.size(); ++i) {
        if (squeezed[i] && shape[i] != 1) {
          throw_shape_mismatch(m_node, fmt::format("cannot squeeze axis {} of a tensor of shape {}", i,
                                                   shape_text(shape)));
        }
        if (!squeezed[i]) {
          out.push_back(shape[i]);
        }
      }
    }
    context.alias_output(0, 0, std::move(out));
  }

private:
  Node m_node;
  AxesSource m_axes;
};

class UnsqueezeKernel final : public Kernel
{
public:
  explicit UnsqueezeKernel(const Node& node) : m_node(node), m_axes(node, true) {}

  std::vector<size_t> host_inputs() const override { return m_axes.host_inputs(); }

  void run(KernelContext& context) override
  {
    const Shape& shape = context.input(0).shape;
    auto axes = m_axes.axes(context);
    // The axes index the output, whose rank counts the new dimensions.
    auto inserted = marked_axes(m_node, axes, static_cast<std::int64_t>(shape.size() + axes.size()));
    Shape out;
    auto next = shape.begin();
    for (bool is_new : inserted) {
      out.push_back(is_new ? 1 : *next++);
    }
    context.alias_output(0, 0, std::move(out));
  }

private:
  Node m_node;
  AxesSource m_axes;
};

class IdentityKernel final : public Kernel
{
public:
  void run(KernelContext& context) override { context.alias_output(0, 0, context.input(0).shape); }
};

// Dropout at inference passes its input through; the optional mask says every element was kept.
// Before opset 7 a missing is_test meant training, but this runtime only infers, so that
// attribute is ignored as other inference runtimes do. Training mode (an input from opset 12) is
// refused unless the ratio is 0, where it changes nothing.
class DropoutKernel final : public Kernel
{
public:
  explicit DropoutKernel(const Node& node)
    : m_node(node), m_ratio_is_input(node.opset >= 12 && names_input(node, 1)),
      m_training_is_input(node.opset >= 12 && names_input(node, 2)),
      // The mask became bool at opset 10; before, it had the input's type.
      m_mask_is_bool(node.opset >= 10)
  {
    if (node.opset < 12) {
      check_ratio(node.attribute_float("ratio", 0.5F));
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
    const TensorView& input = context.input(0);
    Shape shape = input.shape;
    ElementType type = input.type;
    context.alias_output(0, 0, shape);
    if (context.output_count() > 1 && context.wants_output(1)) {
      fill_ones(context.allocate_output(1, m_mask_is_bool ? ElementType::boolean : type, std::move(shape)));
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
    switch (mask.type) {
    case ElementType::boolean:
    case ElementType::uint8:
      std::memset(mask.data, 1, mask.bytes());
      return;
    case ElementType::float32:
      std::fill_n(mask.as<float>(), mask.count(), 1.0F);
      return;
    case ElementType::float64:
      std::fill_n(mask.as<double>(), mask.count(), 1.0);
      return;
    default:
      throw UnsupportedError(fmt::format("{}: Dropout's mask supports float32 and float64; this input is {}",
                                         m_node.label(), element_type_name(mask.type)));
    }
  }

  Node m_node;
  bool m_ratio_is_input;
  bool m_training_is_input;
  bool m_mask_is_bool;
};

template <class K> std::unique_ptr<Kernel> make(const Node& node, CpuDevice&)
{
  return std::make_unique<K>(node);
}

std::unique_ptr<Kernel> make_identity(const Node&, CpuDevice&)
{
  return std::make_unique<IdentityKernel>();
}

} // namespace

void add_shape_ops(OpTable& table)
{
  table["Concat"] = make_concat;
  table["Constant"] = make_constant;
  table["Dropout"] = make<DropoutKernel>;
  table["Flatten"] = make<FlattenKernel>;
  table["Identity"] = make_identity;
  table["Reshape"] = make<ReshapeKernel>;
  table["Squeeze"] = make<SqueezeKernel>;
  table["Transpose"] = make_transpose;
  table["Unsqueeze"] = make<UnsqueezeKernel>;
}

} // namespace mlops::runtime::cpu
