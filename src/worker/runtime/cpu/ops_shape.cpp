// The shape family. Flatten, Reshape, Squeeze, Unsqueeze and Identity give their input another
// shape without moving a byte, with the kernel every device shares (shape_rules.hpp); Dropout at
// inference does the same and fills its mask here. Transpose and Concat, which do move bytes, are
// in ops_transpose.cpp; Constant is in ops_constant.cpp.

#include "ops_shape.hpp"

#include "mlops/runtime/shape_rules.hpp"

#include <fmt/format.h>

#include <cstring>

namespace mlops::runtime::cpu {
namespace {

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
      throw Error(ExitCode::usage,
                  fmt::format("{}: the ratio has shape {}, not a scalar", m_node.label(), shape_text(ratio.shape)));
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

std::unique_ptr<Kernel> make_alias(const Node& node, CpuDevice&)
{
  return make_alias_kernel(node);
}

} // namespace

void add_shape_ops(OpTable& table)
{
  table["Concat"] = make_concat;
  table["Constant"] = make_constant;
  table["Dropout"] = make<DropoutKernel>;
  table["Flatten"] = make_alias;
  table["Identity"] = make_alias;
  table["Reshape"] = make_alias;
  table["Squeeze"] = make_alias;
  table["Transpose"] = make_transpose;
  table["Unsqueeze"] = make_alias;
}

} // namespace mlops::runtime::cpu
