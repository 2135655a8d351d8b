// BatchNormalization on the CPU, inference only: y = (x - mean) / sqrt(var + epsilon) * scale + B
// folded into one multiply-add per element with a per-channel factor and offset.

#include "conv_family.hpp"
#include "cpu_kernels.hpp"

#include "mlops/core/error.hpp"

#include <fmt/format.h>

#include <cmath>
#include <vector>

namespace mlops::runtime::cpu {
namespace {

class BatchNormKernel : public Kernel
{
public:
  BatchNormKernel(const Node& node, CpuDevice& device) : m_node(node), m_device(device)
  {
    m_epsilon = node.attribute_float("epsilon", 1e-5f);
    if (node.attribute_int("training_mode", 0) != 0) {
      throw UnsupportedError(fmt::format("{}: BatchNormalization runs in inference mode only (training_mode=1)",
                                         node.label()));
    }
    // Before opset 9, spatial=0 meant statistics per activation rather than per channel.
    if (node.attribute_int("spatial", 1) == 0) {
      throw UnsupportedError(fmt::format("{}: BatchNormalization with spatial=0 is not supported", node.label()));
    }
    if (node.inputs.size() != 5) {
      throw Error(ExitCode::integrity, fmt::format("{}: BatchNormalization needs 5 inputs, not {}", node.label(),
                                                   node.inputs.size()));
    }
    // The running and saved statistics exist only while training.
    for (size_t i = 1; i < node.outputs.size(); ++i) {
      if (node.outputs[i] != no_value) {
        throw UnsupportedError(fmt::format("{}: BatchNormalization's statistics outputs (training) are not supported",
                                           node.label()));
      }
    }
  }

  void run(KernelContext& context) override
  {
    const TensorView& x = context.input(0);
    if (x.shape.size() < 2) {
      throw Error(ExitCode::usage, fmt::format("{}: input {} has no channel dimension", m_node.label(),
                                               shape_text(x.shape)));
    }
    const std::int64_t channels = x.shape[1];
    visit_element_type(RealTypes{}, x.type, m_node, [&](auto zero) {
      for (size_t i = 1; i < 5; ++i) {
        check_parameter(context.input(i), i, x.type, channels);
      }
      TensorView& y = context.allocate_output(0, x.type, x.shape);
      normalize<decltype(zero)>(context, x, y);
    });
  }

private:
  void check_parameter(const TensorView& parameter, size_t index, ElementType type, std::int64_t channels) const
  {
    static constexpr const char* names[] = {"X", "scale", "B", "input_mean", "input_var"};
    if (parameter.type != type) {
      throw UnsupportedError(fmt::format("{}: BatchNormalization needs {} of the input's type {}, not {}",
                                         m_node.label(), names[index], element_type_name(type),
                                         element_type_name(parameter.type)));
    }
    if (parameter.shape != Shape{channels}) {
      throw Error(ExitCode::usage, fmt::format("{}: {} has shape {}; the input has {} channels", m_node.label(),
                                               names[index], shape_text(parameter.shape), channels));
    }
  }

  template <class T> void normalize(KernelContext& context, const TensorView& x, TensorView& y)
  {
    const std::int64_t channels = x.shape[1];
    const T* scale = context.input(1).as<T>();
    const T* offset = context.input(2).as<T>();
    const T* mean = context.input(3).as<T>();
    const T* variance = context.input(4).as<T>();
    std::vector<T> factor(static_cast<size_t>(channels));
    std::vector<T> shift(static_cast<size_t>(channels));
    for (std::int64_t c = 0; c < channels; ++c) {
      const double f = static_cast<double>(scale[c]) / std::sqrt(static_cast<double>(variance[c]) + m_epsilon);
      factor[c] = static_cast<T>(f);
      shift[c] = static_cast<T>(static_cast<double>(offset[c]) - static_cast<double>(mean[c]) * f);
    }

    const std::int64_t plane_size = element_count(Shape(x.shape.begin() + 2, x.shape.end()));
    const std::int64_t planes = x.shape[0] * channels;
    const T* input = x.as<T>();
    T* output = y.as<T>();
    parallel_ranges(m_device.pool(), planes, rows_grain(plane_size), [&](std::int64_t first, std::int64_t last) {
      for (std::int64_t p = first; p < last; ++p) {
        const T a = factor[p % channels];
        const T b = shift[p % channels];
        const T* in = input + p * plane_size;
        T* out = output + p * plane_size;
        for_each_index(plane_size, [&](std::int64_t i) { out[i] = in[i] * a + b; });
      }
    });
  }

  Node m_node;
  CpuDevice& m_device;
  float m_epsilon = 1e-5f;
};

std::unique_ptr<Kernel> make_batch_normalization(const Node& node, CpuDevice& device)
{
  return std::make_unique<BatchNormKernel>(node, device);
}

} // namespace

void add_batchnorm_ops(OpTable& table)
{
  table["BatchNormalization"] = make_batch_normalization;
}

} // namespace mlops::runtime::cpu
