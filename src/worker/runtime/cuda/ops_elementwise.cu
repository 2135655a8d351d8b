// Elementwise operators on the GPU: Add, Sub, Mul, Div with numpy broadcasting, and the
// activations Relu, LeakyRelu, Sigmoid, Tanh and Clip. One thread per output element in
// grid-stride loops; broadcasting walks each input by strides (0 along broadcast dimensions).
#include "kernel_common.hpp"

#include "mlops/runtime/op_geometry.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <cstdint>
#include <limits>
#include <optional>
#include <type_traits>

namespace mlops::runtime::cuda {
namespace {

// ---- Add, Sub, Mul, Div ----

constexpr int max_rank = 8;

// How to walk two inputs for one output, passed to the kernel by value. Dimensions of size 1 are
// dropped and neighbours that both inputs walk contiguously are merged, so `rank` is often 1-3.
struct BroadcastWalk
{
  int rank = 0;
  std::int64_t dims[max_rank] = {};
  std::int64_t a_strides[max_rank] = {};
  std::int64_t b_strides[max_rank] = {};
};

enum class BinaryOp { add, sub, mul, div };

template <BinaryOp op, class T> __device__ T apply_binary(T a, T b)
{
  // The casts bring 8-bit values back from int, to which C++ promotes them.
  if constexpr (op == BinaryOp::add) {
    return static_cast<T>(a + b);
  } else if constexpr (op == BinaryOp::sub) {
    return static_cast<T>(a - b);
  } else if constexpr (op == BinaryOp::mul) {
    return static_cast<T>(a * b);
  } else if constexpr (std::is_floating_point_v<T>) {
    return a / b;
  } else {
    // As on the CPU: integers truncate toward zero, a zero divisor gives 0 and MIN / -1 wraps
    // (the GPU would give an unspecified value for both).
    if (b == T(0)) {
      return T(0);
    }
    if constexpr (std::is_signed_v<T>) {
      if (b == T(-1)) {
        return static_cast<T>(0u - static_cast<std::make_unsigned_t<T>>(a));
      }
    }
    return static_cast<T>(a / b);
  }
}

template <BinaryOp op, class T>
__global__ void binary_same_shape(const T* a, const T* b, T* out, std::int64_t count)
{
  for (std::int64_t i = first_index(); i < count; i += grid_stride()) {
    out[i] = apply_binary<op>(a[i], b[i]);
  }
}

template <BinaryOp op, class T>
__global__ void binary_broadcast(const T* a, const T* b, T* out, std::int64_t count, BroadcastWalk walk)
{
  for (std::int64_t i = first_index(); i < count; i += grid_stride()) {
    std::int64_t rest = i;
    std::int64_t at_a = 0;
    std::int64_t at_b = 0;
    for (int d = walk.rank - 1; d >= 0; --d) {
      std::int64_t coordinate = rest % walk.dims[d];
      rest /= walk.dims[d];
      at_a += coordinate * walk.a_strides[d];
      at_b += coordinate * walk.b_strides[d];
    }
    out[i] = apply_binary<op>(a[at_a], b[at_b]);
  }
}

BroadcastWalk make_walk(const Shape& a, const Shape& b, const Shape& out, const Node& node)
{
  auto a_strides = broadcast_strides(a, out);
  auto b_strides = broadcast_strides(b, out);
  // Collected innermost first.
  std::vector<std::int64_t> dims, as, bs;
  for (size_t i = out.size(); i-- > 0;) {
    if (out[i] == 1) {
      continue;
    }
    if (!dims.empty() && a_strides[i] == as.back() * dims.back() && b_strides[i] == bs.back() * dims.back()) {
      dims.back() *= out[i];
      continue;
    }
    dims.push_back(out[i]);
    as.push_back(a_strides[i]);
    bs.push_back(b_strides[i]);
  }
  if (dims.size() > max_rank) {
    throw UnsupportedError(fmt::format("{}: broadcasting {} with {} needs more than {} dimensions on CUDA",
                                       node.label(), shape_text(a), shape_text(b), max_rank));
  }
  BroadcastWalk walk;
  walk.rank = static_cast<int>(dims.size());
  for (int d = 0; d < walk.rank; ++d) {
    walk.dims[walk.rank - 1 - d] = dims[d];
    walk.a_strides[walk.rank - 1 - d] = as[d];
    walk.b_strides[walk.rank - 1 - d] = bs[d];
  }
  return walk;
}

template <class Visit> void visit_arithmetic_type(ElementType type, const Node& node, Visit&& visit)
{
  switch (type) {
  case ElementType::float32: return visit(float{});
  case ElementType::float64: return visit(double{});
  case ElementType::int32: return visit(std::int32_t{});
  case ElementType::int64: return visit(std::int64_t{});
  case ElementType::int8: return visit(std::int8_t{});
  case ElementType::uint8: return visit(std::uint8_t{});
  default:
    throw UnsupportedError(fmt::format("{}: the CUDA device has no kernel for {} tensors", node.label(),
                                       element_type_name(type)));
  }
}

class BinaryKernel : public Kernel
{
public:
  BinaryKernel(const Node& node, CudaDevice& device, BinaryOp op)
    : m_node(node), m_device(device), m_op(op), m_what("launching " + node.label())
  {
    if (node.inputs.size() != 2 || node.inputs[0] == no_value || node.inputs[1] == no_value) {
      throw Error(ExitCode::integrity, fmt::format("{}: {} takes two inputs", node.label(), node.op_type));
    }
    // Before opset 7 `broadcast` with `axis` aligned B at that axis instead of at the right.
    if (node.opset < 7 && node.attribute_int("broadcast", 0) != 0 && node.has_attribute("axis")) {
      throw UnsupportedError(fmt::format("{}: the legacy broadcast with an axis (opset {}) is not supported",
                                         node.label(), node.opset));
    }
  }

  void run(KernelContext& context) override
  {
    // Copies, not references: the views may move when the output is allocated.
    const TensorView a = context.input(0);
    const TensorView b = context.input(1);
    if (a.type != b.type) {
      throw Error(ExitCode::integrity, fmt::format("{}: inputs of types {} and {} differ", m_node.label(),
                                                   element_type_name(a.type), element_type_name(b.type)));
    }
    Shape out_shape = broadcast_shapes(a.shape, b.shape, m_node);
    TensorView& out = context.allocate_output(0, a.type, out_shape);
    std::int64_t count = out.count();
    if (count == 0) {
      return;
    }
    visit_arithmetic_type(a.type, m_node, [&](auto zero) {
      using T = decltype(zero);
      switch (m_op) {
      case BinaryOp::add: return launch<BinaryOp::add, T>(a, b, out);
      case BinaryOp::sub: return launch<BinaryOp::sub, T>(a, b, out);
      case BinaryOp::mul: return launch<BinaryOp::mul, T>(a, b, out);
      case BinaryOp::div: return launch<BinaryOp::div, T>(a, b, out);
      }
    });
    check(cudaGetLastError(), m_what.c_str());
  }

private:
  template <BinaryOp op, class T>
  void launch(const TensorView& a, const TensorView& b, TensorView& out)
  {
    std::int64_t count = out.count();
    unsigned grid = grid_for(count, m_device);
    if (a.shape == b.shape) {
      binary_same_shape<op, T><<<grid, block_threads, 0, m_device.stream()>>>(a.as<T>(), b.as<T>(), out.as<T>(), count);
      return;
    }
    BroadcastWalk walk = make_walk(a.shape, b.shape, out.shape, m_node);
    binary_broadcast<op, T>
      <<<grid, block_threads, 0, m_device.stream()>>>(a.as<T>(), b.as<T>(), out.as<T>(), count, walk);
  }

  Node m_node;  // a copy, so the kernel does not depend on how long the graph lives
  CudaDevice& m_device;
  BinaryOp m_op;
  std::string m_what;
};

// ---- Relu, LeakyRelu, Sigmoid, Tanh, Clip ----

enum class UnaryOp { relu, leaky_relu, sigmoid, tanh, clip };

template <class T> struct UnaryParameters
{
  T alpha;  // LeakyRelu's slope
  T low;    // Clip's bounds
  T high;
};

__device__ float exp_of(float x) { return expf(x); }
__device__ double exp_of(double x) { return exp(x); }
__device__ float tanh_of(float x) { return tanhf(x); }
__device__ double tanh_of(double x) { return tanh(x); }

// Comparisons are written so that NaN passes through, as numpy's maximum and clip propagate it.
template <UnaryOp op, class T> __device__ T apply_unary(T x, const UnaryParameters<T>& p)
{
  if constexpr (op == UnaryOp::relu && std::is_unsigned_v<T>) {
    return x;
  } else if constexpr (op == UnaryOp::relu) {
    return x < T(0) ? T(0) : x;
  } else if constexpr (op == UnaryOp::leaky_relu) {
    return x < T(0) ? x * p.alpha : x;
  } else if constexpr (op == UnaryOp::sigmoid) {
    // exp of a non-positive number only: no overflow for large |x|.
    if (x >= T(0)) {
      return T(1) / (T(1) + exp_of(-x));
    }
    T z = exp_of(x);
    return z / (T(1) + z);
  } else if constexpr (op == UnaryOp::tanh) {
    return tanh_of(x);
  } else {
    x = x < p.low ? p.low : x;
    return x > p.high ? p.high : x;
  }
}

template <UnaryOp op, class T>
__global__ void unary_kernel(const T* in, T* out, std::int64_t count, UnaryParameters<T> parameters)
{
  for (std::int64_t i = first_index(); i < count; i += grid_stride()) {
    out[i] = apply_unary<op>(in[i], parameters);
  }
}

template <UnaryOp op, class T> constexpr bool unary_supports()
{
  if constexpr (op == UnaryOp::clip || op == UnaryOp::relu) {
    return true;
  } else {
    return std::is_floating_point_v<T>;
  }
}

template <UnaryOp op> class UnaryKernel : public Kernel
{
public:
  UnaryKernel(const Node& node, CudaDevice& device) : m_node(node), m_device(device), m_what("launching " + node.label())
  {
    m_alpha = node.attribute_float("alpha", 0.01f);
    if (op == UnaryOp::clip && node.opset < 11) {
      if (node.has_attribute("min")) {
        m_low = node.attribute_float("min", 0);
      }
      if (node.has_attribute("max")) {
        m_high = node.attribute_float("max", 0);
      }
    }
    if (op == UnaryOp::clip && node.opset >= 11) {
      for (size_t index : {size_t{1}, size_t{2}}) {
        if (index < node.inputs.size() && node.inputs[index] != no_value) {
          m_bound_inputs.push_back(index);
        }
      }
    }
  }

  std::vector<size_t> host_inputs() const override { return m_bound_inputs; }

  void run(KernelContext& context) override
  {
    const TensorView in = context.input(0);
    TensorView& out = context.allocate_output(0, in.type, in.shape);
    std::int64_t count = out.count();
    visit_arithmetic_type(in.type, m_node, [&](auto zero) {
      using T = decltype(zero);
      if constexpr (unary_supports<op, T>()) {
        UnaryParameters<T> parameters = make_parameters<T>(context, in.type);
        if (count > 0) {
          unary_kernel<op, T><<<grid_for(count, m_device), block_threads, 0, m_device.stream()>>>(
            in.as<T>(), out.as<T>(), count, parameters);
        }
      } else {
        throw UnsupportedError(fmt::format("{}: the CUDA device has no kernel for {} tensors", m_node.label(),
                                           element_type_name(in.type)));
      }
    });
    check(cudaGetLastError(), m_what.c_str());
  }

private:
  template <class T> UnaryParameters<T> make_parameters(KernelContext& context, ElementType type) const
  {
    UnaryParameters<T> p{static_cast<T>(m_alpha), lowest<T>(), highest<T>()};
    if (op != UnaryOp::clip) {
      return p;
    }
    if (m_node.opset < 11) {
      p.low = m_low ? from_attribute<T>(*m_low) : p.low;
      p.high = m_high ? from_attribute<T>(*m_high) : p.high;
      return p;
    }
    p.low = context.has_input(1) ? bound<T>(context.host_input(1), type, "min") : p.low;
    p.high = context.has_input(2) ? bound<T>(context.host_input(2), type, "max") : p.high;
    return p;
  }

  // A missing bound does not clip: infinities for floating point leave -inf and inf as they are.
  template <class T> static T lowest()
  {
    if constexpr (std::is_floating_point_v<T>) {
      return -std::numeric_limits<T>::infinity();
    } else {
      return std::numeric_limits<T>::lowest();
    }
  }
  template <class T> static T highest()
  {
    if constexpr (std::is_floating_point_v<T>) {
      return std::numeric_limits<T>::infinity();
    } else {
      return std::numeric_limits<T>::max();
    }
  }

  // Old opsets allow only floating point bounds; clamped first so that the cast to an integer is defined.
  template <class T> static T from_attribute(float value)
  {
    if constexpr (std::is_floating_point_v<T>) {
      return static_cast<T>(value);
    } else {
      return static_cast<T>(std::clamp<double>(value, lowest<T>(), highest<T>()));
    }
  }

  template <class T> T bound(const HostTensor& tensor, ElementType type, const char* which) const
  {
    if (tensor.type != type) {
      throw Error(ExitCode::integrity, fmt::format("{}: {} is {} but the input is {}", m_node.label(), which,
                                                   element_type_name(tensor.type), element_type_name(type)));
    }
    if (tensor.count() != 1) {
      throw Error(ExitCode::usage, fmt::format("{}: {} must be one value; it has shape {}", m_node.label(), which,
                                               shape_text(tensor.shape)));
    }
    return tensor.data<T>()[0];
  }

  Node m_node;  // a copy, so the kernel does not depend on how long the graph lives
  CudaDevice& m_device;
  std::string m_what;
  float m_alpha = 0.01f;
  std::optional<float> m_low;
  std::optional<float> m_high;
  std::vector<size_t> m_bound_inputs;
};

template <BinaryOp op> std::unique_ptr<Kernel> make_binary(const Node& node, CudaDevice& device)
{
  return std::make_unique<BinaryKernel>(node, device, op);
}

template <UnaryOp op> std::unique_ptr<Kernel> make_unary(const Node& node, CudaDevice& device)
{
  return std::make_unique<UnaryKernel<op>>(node, device);
}

} // namespace

void add_elementwise_ops(OpTable& table)
{
  table["Add"] = make_binary<BinaryOp::add>;
  table["Sub"] = make_binary<BinaryOp::sub>;
  table["Mul"] = make_binary<BinaryOp::mul>;
  table["Div"] = make_binary<BinaryOp::div>;
  table["Relu"] = make_unary<UnaryOp::relu>;
  table["LeakyRelu"] = make_unary<UnaryOp::leaky_relu>;
  table["Sigmoid"] = make_unary<UnaryOp::sigmoid>;
  table["Tanh"] = make_unary<UnaryOp::tanh>;
  table["Clip"] = make_unary<UnaryOp::clip>;
}

} // namespace mlops::runtime::cuda
