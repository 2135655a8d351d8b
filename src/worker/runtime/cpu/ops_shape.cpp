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

// Dropout's rules are InferenceDropout's (shape_rules.hpp); the CPU fills the mask. Before opset
// 7 a missing is_test meant training, but this runtime only infers, so that attribute is ignored
// as other inference runtimes do.
class DropoutKernel final : public InferenceDropout
{
public:
  explicit DropoutKernel(const Node& node) : InferenceDropout(node) {}

private:
  void fill_ones(TensorView& mask) override
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
                                         node().label(), element_type_name(mask.type)));
    }
  }
};

std::unique_ptr<Kernel> make_alias(const Node& node, CpuDevice&)
{
  return make_alias_kernel(node);
}

} // namespace

void add_shape_ops(OpTable& table)
{
  table["Concat"] = make_concat;
  table["Constant"] = make_constant;
  table["Dropout"] = make_kernel_of<DropoutKernel>;
  table["Flatten"] = make_alias;
  table["Identity"] = make_alias;
  table["Reshape"] = make_alias;
  table["Squeeze"] = make_alias;
  table["Transpose"] = make_transpose;
  table["Unsqueeze"] = make_alias;
}

} // namespace mlops::runtime::cpu
