// Constant: a tensor given by the node's attributes. The loader usually folds these away before
// kernels exist; this kernel runs the ones it leaves.

#include "ops_shape.hpp"

#include <fmt/format.h>

#include <array>
#include <cstring>
#include <string_view>

namespace mlops::runtime::cpu {
namespace {

// The value from whichever one of Constant's attributes the node sets. Throws Error(integrity)
// unless exactly one is set, UnsupportedError for sparse and string values.
HostTensor constant_value(const Node& node)
{
  constexpr std::array<std::string_view, 8> forms = {"value",      "value_float",  "value_floats",  "value_int",
                                                     "value_ints", "sparse_value", "value_string", "value_strings"};
  auto set = std::count_if(forms.begin(), forms.end(), [&](auto key) { return node.has_attribute(key); });
  if (set != 1) {
    throw Error(ExitCode::integrity,
                fmt::format("{}: Constant needs exactly one value attribute, it has {}", node.label(), set));
  }
  if (node.has_attribute("value")) {
    auto tensor = node.attribute_tensor("value");
    if (!tensor) {
      throw Error(ExitCode::integrity, fmt::format("{}: the value attribute holds no tensor", node.label()));
    }
    return *tensor;
  }
  if (node.has_attribute("value_float")) {
    return HostTensor::from(ElementType::float32, {}, std::vector<float>{node.attribute_float("value_float", 0)});
  }
  if (node.has_attribute("value_floats")) {
    auto values = node.attribute_floats("value_floats");
    auto count = static_cast<std::int64_t>(values.size());
    return HostTensor::from(ElementType::float32, {count}, values);
  }
  if (node.has_attribute("value_int")) {
    return HostTensor::from(ElementType::int64, {}, std::vector<std::int64_t>{node.attribute_int("value_int", 0)});
  }
  if (node.has_attribute("value_ints")) {
    auto values = node.attribute_ints("value_ints");
    auto count = static_cast<std::int64_t>(values.size());
    return HostTensor::from(ElementType::int64, {count}, values);
  }
  throw UnsupportedError(fmt::format("{}: Constant supports dense numeric values; this one is sparse or text",
                                     node.label()));
}

class ConstantKernel final : public Kernel
{
public:
  explicit ConstantKernel(const Node& node) : m_value(constant_value(node)) {}

  void run(KernelContext& context) override
  {
    TensorView& out = context.allocate_output(0, m_value.type, m_value.shape);
    if (!m_value.bytes.empty()) {
      std::memcpy(out.data, m_value.bytes.data(), m_value.bytes.size());
    }
  }

private:
  HostTensor m_value;
};

} // namespace

std::unique_ptr<Kernel> make_constant(const Node& node, CpuDevice&)
{
  return std::make_unique<ConstantKernel>(node);
}

} // namespace mlops::runtime::cpu
