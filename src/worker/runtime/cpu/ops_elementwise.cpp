// Add, Sub, Mul and Div with multidirectional (numpy) broadcasting. Same shapes and a scalar
// operand run as one flat loop; other broadcasts collapse to rows of a contiguous inner run, so a
// bias added to every row of a matrix is a loop of vector adds.

#include "cpu_kernels.hpp"
#include "mlops/runtime/op_geometry.hpp"

#include <type_traits>

namespace mlops::runtime::cpu {
namespace {

struct Add
{
  template <class T> static T apply(T a, T b) { return static_cast<T>(a + b); }
};

struct Sub
{
  template <class T> static T apply(T a, T b) { return static_cast<T>(a - b); }
};

struct Mul
{
  template <class T> static T apply(T a, T b) { return static_cast<T>(a * b); }
};

struct Div
{
  template <class T> static T apply(T a, T b)
  {
    if constexpr (std::is_floating_point_v<T>) {
      return a / b;
    } else {
      // Integers truncate toward zero, as in C and ONNX. A zero divisor gives 0 and MIN / -1
      // wraps: a request must not be able to crash the server with a hardware trap.
      if (b == 0) {
        return 0;
      }
      if constexpr (std::is_signed_v<T>) {
        if (b == -1) {
          return static_cast<T>(0u - static_cast<std::make_unsigned_t<T>>(a));
        }
      }
      return static_cast<T>(a / b);
    }
  }
};

// One contiguous run of the output, with each operand either walking along (stride 1) or
// fixed (stride 0).
template <class Op, class T>
void binary_run(T* __restrict out, const T* __restrict a, const T* __restrict b, std::int64_t n, bool a_walks,
                bool b_walks)
{
  if (a_walks && b_walks) {
    for_each_index(n, [&](std::int64_t i) { out[i] = Op::apply(a[i], b[i]); });
  } else if (a_walks) {
    const T right = *b;
    for_each_index(n, [&](std::int64_t i) { out[i] = Op::apply(a[i], right); });
  } else if (b_walks) {
    const T left = *a;
    for_each_index(n, [&](std::int64_t i) { out[i] = Op::apply(left, b[i]); });
  } else {
    const T value = Op::apply(*a, *b);
    for_each_index(n, [&](std::int64_t i) { out[i] = value; });
  }
}

// The output's dimensions with size-1 dimensions dropped and neighbours merged wherever both
// operands walk them as one (both contiguous across the pair, or both broadcast). The last
// dimension is the contiguous inner run: its strides are 0 or 1.
struct BroadcastLoop
{
  Shape dims;
  std::vector<std::int64_t> a_strides;
  std::vector<std::int64_t> b_strides;
};

BroadcastLoop collapse_broadcast(const Shape& out, const Shape& a, const Shape& b)
{
  auto a_strides = broadcast_strides(a, out);
  auto b_strides = broadcast_strides(b, out);
  BroadcastLoop loop;
  for (size_t i = 0; i < out.size(); ++i) {
    if (out[i] == 1) {
      continue;
    }
    if (!loop.dims.empty() && loop.a_strides.back() == a_strides[i] * out[i] &&
        loop.b_strides.back() == b_strides[i] * out[i]) {
      loop.dims.back() *= out[i];
      loop.a_strides.back() = a_strides[i];
      loop.b_strides.back() = b_strides[i];
      continue;
    }
    loop.dims.push_back(out[i]);
    loop.a_strides.push_back(a_strides[i]);
    loop.b_strides.push_back(b_strides[i]);
  }
  if (loop.dims.empty()) {
    loop.dims = {1};
    loop.a_strides = loop.b_strides = {0};
  }
  return loop;
}

// Rows [first, last) of a collapsed broadcast: each row is one inner run, and an odometer over
// the outer dimensions moves the operands' offsets from one row to the next.
template <class Op, class T>
void broadcast_rows(const BroadcastLoop& loop, const T* a, const T* b, T* out, std::int64_t first, std::int64_t last)
{
  const size_t outer = loop.dims.size() - 1;
  const std::int64_t inner = loop.dims.back();
  std::vector<std::int64_t> index(outer);
  std::int64_t a_offset = 0;
  std::int64_t b_offset = 0;
  std::int64_t rest = first;
  for (size_t d = outer; d-- > 0;) {
    index[d] = rest % loop.dims[d];
    rest /= loop.dims[d];
    a_offset += index[d] * loop.a_strides[d];
    b_offset += index[d] * loop.b_strides[d];
  }
  const bool a_walks = loop.a_strides.back() != 0;
  const bool b_walks = loop.b_strides.back() != 0;
  for (std::int64_t row = first; row < last; ++row) {
    binary_run<Op>(out + row * inner, a + a_offset, b + b_offset, inner, a_walks, b_walks);
    for (size_t d = outer; d-- > 0;) {
      a_offset += loop.a_strides[d];
      b_offset += loop.b_strides[d];
      if (++index[d] < loop.dims[d]) {
        break;
      }
      a_offset -= loop.a_strides[d] * loop.dims[d];
      b_offset -= loop.b_strides[d] * loop.dims[d];
      index[d] = 0;
    }
  }
}

template <class Op, class T>
void compute_binary(ThreadPool& pool, const TensorView& a, const TensorView& b, TensorView& out)
{
  const T* left = a.as<const T>();
  const T* right = b.as<const T>();
  T* result = out.as<T>();
  const std::int64_t count = out.count();
  if (count == 0) {
    return;
  }
  const bool a_walks = a.shape == out.shape;
  const bool b_walks = b.shape == out.shape;
  if ((a_walks || a.count() == 1) && (b_walks || b.count() == 1)) {
    parallel_ranges(pool, count, parallel_grain, [&](std::int64_t first, std::int64_t last) {
      binary_run<Op>(result + first, left + (a_walks ? first : 0), right + (b_walks ? first : 0), last - first,
                     a_walks, b_walks);
    });
    return;
  }
  const BroadcastLoop loop = collapse_broadcast(out.shape, a.shape, b.shape);
  const std::int64_t inner = loop.dims.back();
  parallel_ranges(pool, count / inner, rows_grain(inner), [&](std::int64_t first, std::int64_t last) {
    broadcast_rows<Op>(loop, left, right, result, first, last);
  });
}

template <class Op> class BinaryKernel final : public Kernel
{
public:
  BinaryKernel(const Node& node, CpuDevice& device) : m_node(node), m_pool(device.pool()) {}

  void run(KernelContext& context) override
  {
    const TensorView& a = context.input(0);
    const TensorView& b = context.input(1);
    if (a.type != b.type) {
      throw Error(ExitCode::integrity, fmt::format("{}: inputs have different element types ({} and {})",
                                                   m_node.label(), element_type_name(a.type),
                                                   element_type_name(b.type)));
    }
    visit_element_type(NumericTypes{}, a.type, m_node, [&](auto tag) {
      using T = decltype(tag);
      TensorView& out = context.allocate_output(0, a.type, broadcast_shapes(a.shape, b.shape, m_node));
      compute_binary<Op, T>(m_pool, a, b, out);
    });
  }

private:
  Node m_node;
  ThreadPool& m_pool;
};

template <class Op> std::unique_ptr<Kernel> make_binary(const Node& node, CpuDevice& device)
{
  if (node.inputs.size() != 2 || node.inputs[0] == no_value || node.inputs[1] == no_value) {
    throw Error(ExitCode::integrity, fmt::format("{}: {} takes two inputs", node.label(), node.op_type));
  }
  // Before opset 7 `broadcast` with `axis` aligned B at that axis instead of at the right.
  if (node.opset < 7 && node.attribute_int("broadcast", 0) != 0 && node.has_attribute("axis")) {
    throw UnsupportedError(fmt::format("{}: the legacy broadcast with an axis (opset {}) is not supported",
                                       node.label(), node.opset));
  }
  return std::make_unique<BinaryKernel<Op>>(node, device);
}

} // namespace

void add_elementwise_ops(OpTable& table)
{
  table["Add"] = make_binary<Add>;
  table["Sub"] = make_binary<Sub>;
  table["Mul"] = make_binary<Mul>;
  table["Div"] = make_binary<Div>;
  add_activation_ops(table);
}

} // namespace mlops::runtime::cpu
