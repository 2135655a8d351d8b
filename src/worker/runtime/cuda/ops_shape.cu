// The shape family on CUDA. Flatten, Reshape, Squeeze, Unsqueeze and Identity only change the
// shape, with the kernel every device shares (shape_rules.hpp): their outputs alias their inputs
// and nothing runs. Dropout (inference) does the same and fills its mask; Constant uploads its
// attribute. Transpose and Concat, which move elements, are in ops_transpose.cu.
#include "kernel_common.hpp"
#include "ops_shape.hpp"

#include "mlops/runtime/shape_rules.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <cstdint>

namespace mlops::runtime::cuda {
namespace {

template <class W> __global__ void fill_words(W* out, std::int64_t count, W value)
{
  for (std::int64_t i = first_index(); i < count; i += grid_stride()) {
    out[i] = value;
  }
}

// Dropout's rules are InferenceDropout's (shape_rules.hpp); the GPU fills the mask.
class DropoutKernel final : public InferenceDropout
{
public:
  DropoutKernel(const Node& node, CudaDevice& device) : InferenceDropout(node), m_device(device) {}

private:
  void fill_ones(TensorView& mask) override
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
                                         node().label(), element_type_name(mask.type)));
    }
    check(cudaGetLastError(), "launching Dropout's mask");
  }
  CudaDevice& m_device;
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

std::unique_ptr<Kernel> make_alias(const Node& node, CudaDevice&)
{
  return make_alias_kernel(node);
}

} // namespace

void add_shape_ops(OpTable& table)
{
  table["Flatten"] = make_alias;
  table["Reshape"] = make_alias;
  table["Squeeze"] = make_alias;
  table["Unsqueeze"] = make_alias;
  table["Identity"] = make_alias;
  table["Dropout"] = make_kernel_of<DropoutKernel>;
  table["Transpose"] = make_transpose;
  table["Concat"] = make_concat;
  table["Constant"] = make_kernel_of<ConstantKernel>;
}

} // namespace mlops::runtime::cuda
