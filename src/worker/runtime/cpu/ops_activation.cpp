// Relu, LeakyRelu, Sigmoid, Tanh and Clip: one input, one output of the same shape, each element
// on its own. Large tensors are split across the pool in chunks of parallel_grain elements.

#include "cpu_kernels.hpp"

#include <cmath>
#include <cstring>
#include <limits>
#include <optional>
#include <type_traits>

namespace mlops::runtime::cpu {
namespace {

struct Relu
{
  using Types = NumericTypes;

  template <class T> void apply(const T* __restrict in, T* __restrict out, std::int64_t n) const
  {
    if constexpr (std::is_unsigned_v<T>) {
      std::memcpy(out, in, static_cast<size_t>(n) * sizeof(T));
    } else {
      // `x < 0 ? 0 : x` rather than max(x, 0): NaN passes through, as in PyTorch.
      for_each_index(n, [&](std::int64_t i) { out[i] = in[i] < 0 ? T{0} : in[i]; });
    }
  }
};

struct LeakyRelu
{
  using Types = RealTypes;
  float alpha = 0.01f;

  template <class T> void apply(const T* __restrict in, T* __restrict out, std::int64_t n) const
  {
    const T slope = static_cast<T>(alpha);
    for_each_index(n, [&](std::int64_t i) { out[i] = in[i] < 0 ? in[i] * slope : in[i]; });
  }
};

struct Sigmoid
{
  using Types = RealTypes;

  template <class T> void apply(const T* __restrict in, T* __restrict out, std::int64_t n) const
  {
    if constexpr (std::is_same_v<T, float>) {
      sigmoid_floats(in, out, n);
    } else {
      // e^-x overflows to inf for very negative x, and 1 / inf is the right limit, 0.
      for (std::int64_t i = 0; i < n; ++i) {
        out[i] = 1 / (1 + std::exp(-in[i]));
      }
    }
  }
};

struct Tanh
{
  using Types = RealTypes;

  template <class T> void apply(const T* __restrict in, T* __restrict out, std::int64_t n) const
  {
    if constexpr (std::is_same_v<T, float>) {
      tanh_floats(in, out, n);
    } else {
      for (std::int64_t i = 0; i < n; ++i) {
        out[i] = std::tanh(in[i]);
      }
    }
  }
};

template <class Activation> class ActivationKernel final : public Kernel
{
public:
  ActivationKernel(const Node& node, CpuDevice& device, Activation activation)
      : m_node(node), m_pool(device.pool()), m_activation(activation)
  {
  }

  void run(KernelContext& context) override
  {
    const TensorView& in = context.input(0);
    visit_element_type(typename Activation::Types{}, in.type, m_node, [&](auto tag) {
      using T = decltype(tag);
      TensorView& out = context.allocate_output(0, in.type, in.shape);
      const T* x = in.as<const T>();
      T* y = out.as<T>();
      parallel_ranges(m_pool, in.count(), parallel_grain, [&](std::int64_t first, std::int64_t last) {
        m_activation.apply(x + first, y + first, last - first);
      });
    });
  }

private:
  Node m_node;
  ThreadPool& m_pool;
  Activation m_activation;
};

template <class Activation> std::unique_ptr<Kernel> make_activation(const Node& node, CpuDevice& device)
{
  return std::make_unique<ActivationKernel<Activation>>(node, device, Activation{});
}

std::unique_ptr<Kernel> make_leaky_relu(const Node& node, CpuDevice& device)
{
  return std::make_unique<ActivationKernel<LeakyRelu>>(node, device, LeakyRelu{node.attribute_float("alpha", 0.01f)});
}

// Clip's bounds are attributes before opset 11 and optional scalar inputs from 11 on, which the
// kernel reads on the host at each run. A missing bound does not clip.
class ClipKernel final : public Kernel
{
public:
  ClipKernel(const Node& node, CpuDevice& device) : m_node(node), m_pool(device.pool())
  {
    if (node.opset < 11) {
      if (node.has_attribute("min")) {
        m_min_attribute = node.attribute_float("min", 0);
      }
      if (node.has_attribute("max")) {
        m_max_attribute = node.attribute_float("max", 0);
      }
      return;
    }
    for (size_t index : {size_t{1}, size_t{2}}) {
      if (index < node.inputs.size() && node.inputs[index] != no_value) {
        m_bound_inputs.push_back(index);
      }
    }
  }

  std::vector<size_t> host_inputs() const override { return m_bound_inputs; }

  void run(KernelContext& context) override
  {
    const TensorView& in = context.input(0);
    visit_element_type(NumericTypes{}, in.type, m_node, [&](auto tag) {
      using T = decltype(tag);
      const T low = bound<T>(context, 1, m_min_attribute, lowest<T>());
      const T high = bound<T>(context, 2, m_max_attribute, highest<T>());
      TensorView& out = context.allocate_output(0, in.type, in.shape);
      const T* x = in.as<const T>();
      T* y = out.as<T>();
      parallel_ranges(m_pool, in.count(), parallel_grain, [&](std::int64_t first, std::int64_t last) {
        clip(x + first, y + first, last - first, low, high);
      });
    });
  }

private:
  // min(max(x, low), high): when low > high every element becomes high, as ONNX says; NaN stays.
  template <class T>
  static void clip(const T* __restrict in, T* __restrict out, std::int64_t n, T low, T high)
  {
    for_each_index(n, [&](std::int64_t i) {
      T value = in[i] < low ? low : in[i];
      out[i] = value > high ? high : value;
    });
  }

  // Infinities for floating point, so that a missing bound leaves -inf and inf as they are.
  template <class T> static T lowest()
  {
    return std::is_floating_point_v<T> ? -std::numeric_limits<T>::infinity() : std::numeric_limits<T>::lowest();
  }
  template <class T> static T highest()
  {
    return std::is_floating_point_v<T> ? std::numeric_limits<T>::infinity() : std::numeric_limits<T>::max();
  }

  template <class T>
  T bound(KernelContext& context, size_t index, std::optional<float> attribute, T fallback) const
  {
    if (m_node.opset < 11) {
      if (!attribute) {
        return fallback;
      }
      if constexpr (std::is_floating_point_v<T>) {
        return static_cast<T>(*attribute);
      } else {
        // Old opsets allow only floating point here; clamp first so that the cast is defined.
        return static_cast<T>(std::clamp<double>(*attribute, static_cast<double>(std::numeric_limits<T>::lowest()),
                                                 static_cast<double>(std::numeric_limits<T>::max())));
      }
    }
    if (!context.has_input(index)) {
      return fallback;
    }
    const HostTensor& value = context.host_input(index);
    const char* name = index == 1 ? "min" : "max";
    if (value.type != element_type_of<T>()) {
      throw Error(ExitCode::integrity, fmt::format("{}: {} is {} but the input is {}", m_node.label(), name,
                                                   element_type_name(value.type), element_type_name(element_type_of<T>())));
    }
    if (value.count() != 1) {
      throw Error(ExitCode::usage, fmt::format("{}: {} must be one value; it has shape {}", m_node.label(), name,
                                               shape_text(value.shape)));
    }
    return value.data<T>()[0];
  }

  Node m_node;
  ThreadPool& m_pool;
  std::optional<float> m_min_attribute;
  std::optional<float> m_max_attribute;
  std::vector<size_t> m_bound_inputs;
};

std::unique_ptr<Kernel> make_clip(const Node& node, CpuDevice& device)
{
  return std::make_unique<ClipKernel>(node, device);
}

} // namespace

void add_activation_ops(OpTable& table)
{
  table["Relu"] = make_activation<Relu>;
  table["LeakyRelu"] = make_leaky_relu;
  table["Sigmoid"] = make_activation<Sigmoid>;
  table["Tanh"] = make_activation<Tanh>;
  table["Clip"] = make_clip;
}

} // namespace mlops::runtime::cpu
