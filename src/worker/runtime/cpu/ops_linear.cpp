// Gemm and MatMul through OpenBLAS, called on the tensors where they lie: no copies, and batches
// that broadcast are walked by stride rather than materialized. OpenBLAS runs its own threads,
// so these kernels do not use the device's pool.

#include "cpu_device.hpp"

#include "mlops/runtime/op_geometry.hpp"

#include <cblas.h>
#include <fmt/format.h>

#include <algorithm>
#include <climits>
#include <cstring>

namespace mlops::runtime::cpu {
namespace {

// One row-major product C = alpha * op(A) * op(B) + beta * C, with op(A) m x k and op(B) k x n.
struct MatrixProduct
{
  int m = 0;
  int n = 0;
  int k = 0;
  bool trans_a = false;
  bool trans_b = false;
  float alpha = 1;
  float beta = 0;
};

CBLAS_TRANSPOSE blas_transpose(bool transposed)
{
  return transposed ? CblasTrans : CblasNoTrans;
}

void blas_gemm(const MatrixProduct& p, const float* a, int lda, const float* b, int ldb, float* c)
{
  cblas_sgemm(CblasRowMajor, blas_transpose(p.trans_a), blas_transpose(p.trans_b), p.m, p.n, p.k, p.alpha, a, lda,
              b, ldb, p.beta, c, p.n);
}

void blas_gemm(const MatrixProduct& p, const double* a, int lda, const double* b, int ldb, double* c)
{
  cblas_dgemm(CblasRowMajor, blas_transpose(p.trans_a), blas_transpose(p.trans_b), p.m, p.n, p.k, p.alpha, a, lda,
              b, ldb, p.beta, c, p.n);
}

void blas_gemv(bool trans, int rows, int columns, float alpha, const float* matrix, const float* x, float beta, float* y)
{
  cblas_sgemv(CblasRowMajor, blas_transpose(trans), rows, columns, alpha, matrix, columns, x, 1, beta, y, 1);
}

void blas_gemv(bool trans, int rows, int columns, double alpha, const double* matrix, const double* x, double beta,
               double* y)
{
  cblas_dgemv(CblasRowMajor, blas_transpose(trans), rows, columns, alpha, matrix, columns, x, 1, beta, y, 1);
}

// C = alpha * op(A) * op(B) + beta * C. A product with one row or one column (a layer at batch 1)
// goes to gemv: OpenBLAS 0.3.21's gemm packs the whole other matrix first, which made a 1 x 1024
// by 1024 x 1024 product take 1 ms instead of gemv's 0.13 ms.
template <class T> void multiply(const T* a, const T* b, T* c, const MatrixProduct& p)
{
  const size_t outputs = static_cast<size_t>(p.m) * static_cast<size_t>(p.n);
  if (p.k == 0) {
    // Nothing to sum: BLAS refuses the empty leading dimensions, and C is just scaled.
    std::for_each(c, c + outputs, [&](T& value) { value = p.beta == 0 ? T{0} : static_cast<T>(p.beta) * value; });
    return;
  }
  if (p.m > 1 && p.n > 1) {
    blas_gemm(p, a, p.trans_a ? p.m : p.k, b, p.trans_b ? p.k : p.n, c);
    return;
  }
  if (p.beta == 0) {
    // gemv scales y by beta first, and 0 times a stale NaN is NaN.
    std::fill_n(c, outputs, T{0});
  }
  if (p.m == 1) {
    // The row of A (contiguous whether transposed or not) times op(B).
    if (p.trans_b) {
      blas_gemv(false, p.n, p.k, p.alpha, b, a, p.beta, c);
    } else {
      blas_gemv(true, p.k, p.n, p.alpha, b, a, p.beta, c);
    }
  } else if (p.trans_a) {
    blas_gemv(true, p.k, p.m, p.alpha, a, b, p.beta, c);
  } else {
    blas_gemv(false, p.m, p.k, p.alpha, a, b, p.beta, c);
  }
}

template <class... Dims> void check_blas_sizes(const Node& node, Dims... dims)
{
  if (((dims > INT_MAX) || ...)) {
    throw UnsupportedError(fmt::format("{}: a matrix dimension exceeds what BLAS indexes ({})", node.label(), INT_MAX));
  }
}

void check_types(const Node& node, const TensorView& a, const TensorView& b)
{
  for (const auto* input : {&a, &b}) {
    if (input->type != ElementType::float32 && input->type != ElementType::float64) {
      throw UnsupportedError(fmt::format("{}: {} supports float32 and float64; this input is {}", node.label(),
                                         node.op_type, element_type_name(input->type)));
    }
  }
  if (a.type != b.type) {
    throw Error(ExitCode::usage, fmt::format("{}: the inputs are {} and {}", node.label(), element_type_name(a.type),
                                             element_type_name(b.type)));
  }
}

class GemmKernel final : public Kernel
{
public:
  explicit GemmKernel(const Node& node)
    : m_node(node), m_trans_a(node.attribute_int("transA", 0) != 0), m_trans_b(node.attribute_int("transB", 0) != 0),
      m_alpha(node.attribute_float("alpha", 1)), m_beta(node.attribute_float("beta", 1))
  {
  }

  void run(KernelContext& context) override
  {
    // Copies, not references: allocating the output may move the context's views.
    const TensorView a = context.input(0);
    const TensorView b = context.input(1);
    check_types(m_node, a, b);
    if (a.shape.size() != 2 || b.shape.size() != 2) {
      throw Error(ExitCode::usage, fmt::format("{}: Gemm multiplies matrices, not shapes {} and {}", m_node.label(),
                                               shape_text(a.shape), shape_text(b.shape)));
    }
    MatrixProduct p{.trans_a = m_trans_a, .trans_b = m_trans_b, .alpha = m_alpha, .beta = 0};
    const std::int64_t m = a.shape[m_trans_a ? 1 : 0];
    const std::int64_t k = a.shape[m_trans_a ? 0 : 1];
    const std::int64_t n = b.shape[m_trans_b ? 0 : 1];
    if (b.shape[m_trans_b ? 1 : 0] != k) {
      throw Error(ExitCode::usage, fmt::format("{}: cannot multiply shapes {} and {} (transA={}, transB={})",
                                               m_node.label(), shape_text(a.shape), shape_text(b.shape),
                                               int{m_trans_a}, int{m_trans_b}));
    }
    check_blas_sizes(m_node, m, n, k);
    p.m = static_cast<int>(m);
    p.n = static_cast<int>(n);
    p.k = static_cast<int>(k);
    // C is optional from opset 11, and with beta = 0 it changes nothing.
    const bool add_c = context.has_input(2) && m_beta != 0;
    const TensorView c = add_c ? context.input(2) : TensorView{};
    if (add_c) {
      check_bias(c, a.type, {m, n});
    }
    TensorView& y = context.allocate_output(0, a.type, {m, n});
    if (m == 0 || n == 0) {
      return;
    }
    if (add_c) {
      p.beta = m_beta;
    }
    if (a.type == ElementType::float32) {
      if (add_c) {
        broadcast_bias<float>(c, y);
      }
      multiply(a.as<const float>(), b.as<const float>(), y.as<float>(), p);
    } else {
      if (add_c) {
        broadcast_bias<double>(c, y);
      }
      multiply(a.as<const double>(), b.as<const double>(), y.as<double>(), p);
    }
  }

private:
  void check_bias(const TensorView& c, ElementType type, const Shape& out) const
  {
    if (c.type != type) {
      throw Error(ExitCode::usage, fmt::format("{}: C is {}, A and B are {}", m_node.label(),
                                               element_type_name(c.type), element_type_name(type)));
    }
    // Unidirectional: C broadcasts to (M, N), never the other way.
    if (broadcast_shapes(c.shape, out, m_node) != out) {
      throw Error(ExitCode::usage, fmt::format("{}: C of shape {} does not broadcast to {}", m_node.label(),
                                               shape_text(c.shape), shape_text(out)));
    }
  }

  // Y = C broadcast to Y's shape, for BLAS to add the product to.
  template <class T> static void broadcast_bias(const TensorView& c, TensorView& y)
  {
    const auto strides = broadcast_strides(c.shape, y.shape);
    const std::int64_t rows = y.shape[0];
    const std::int64_t columns = y.shape[1];
    for (std::int64_t row = 0; row < rows; ++row) {
      const T* from = c.as<const T>() + row * strides[0];
      T* to = y.as<T>() + row * columns;
      if (strides[1] == 1) {
        std::memcpy(to, from, static_cast<size_t>(columns) * sizeof(T));
      } else {
        std::fill_n(to, columns, *from);
      }
    }
  }

  Node m_node;
  bool m_trans_a;
  bool m_trans_b;
  float m_alpha;
  float m_beta;
};

// numpy's matmul: a 1-D operand is a row (A) or a column (B) whose dimension the output drops,
// and the dimensions before the last two broadcast as batches.
class MatMulKernel final : public Kernel
{
public:
  explicit MatMulKernel(const Node& node) : m_node(node) {}

  void run(KernelContext& context) override
  {
    // Copies, not references: allocating the output may move the context's views.
    const TensorView a = context.input(0);
    const TensorView b = context.input(1);
    check_types(m_node, a, b);
    if (a.shape.empty() || b.shape.empty()) {
      throw Error(ExitCode::usage, fmt::format("{}: MatMul cannot multiply a scalar", m_node.label()));
    }
    const bool a_is_row = a.shape.size() == 1;
    const bool b_is_column = b.shape.size() == 1;
    const Shape a_batch(a.shape.begin(), a.shape.end() - (a_is_row ? 1 : 2));
    const Shape b_batch(b.shape.begin(), b.shape.end() - (b_is_column ? 1 : 2));
    const std::int64_t m = a_is_row ? 1 : a.shape[a.shape.size() - 2];
    const std::int64_t k = a.shape.back();
    const std::int64_t n = b_is_column ? 1 : b.shape.back();
    if (b.shape[b_is_column ? 0 : b.shape.size() - 2] != k) {
      throw Error(ExitCode::usage, fmt::format("{}: cannot multiply shapes {} and {}", m_node.label(),
                                               shape_text(a.shape), shape_text(b.shape)));
    }
    Shape batch;
    try {
      batch = broadcast_shapes(a_batch, b_batch, m_node);
    } catch (const Error&) {
      throw Error(ExitCode::usage, fmt::format("{}: the batch dimensions of shapes {} and {} do not broadcast",
                                               m_node.label(), shape_text(a.shape), shape_text(b.shape)));
    }
    Shape out_shape = batch;
    if (!a_is_row) {
      out_shape.push_back(m);
    }
    if (!b_is_column) {
      out_shape.push_back(n);
    }
    TensorView& y = context.allocate_output(0, a.type, std::move(out_shape));
    if (y.count() == 0) {
      return;
    }
    if (a.type == ElementType::float32) {
      multiply_batches<float>(a, b, y, a_batch, b_batch, batch, {m, n, k});
    } else {
      multiply_batches<double>(a, b, y, a_batch, b_batch, batch, {m, n, k});
    }
  }

private:
  template <class T>
  void multiply_batches(const TensorView& a, const TensorView& b, TensorView& y, const Shape& a_batch,
                        const Shape& b_batch, const Shape& batch, const Shape& mnk) const
  {
    const std::int64_t m = mnk[0];
    const std::int64_t n = mnk[1];
    const std::int64_t k = mnk[2];
    const std::int64_t batches = element_count(batch);
    if (element_count(b_batch) == 1 && element_count(a_batch) == batches) {
      // One B for every batch, and A's batches lie one after the other: they are just more rows
      // of one product (a Linear layer over a sequence, say).
      check_blas_sizes(m_node, batches * m, n, k);
      MatrixProduct p{.m = static_cast<int>(batches * m), .n = static_cast<int>(n), .k = static_cast<int>(k)};
      multiply(a.as<const T>(), b.as<const T>(), y.as<T>(), p);
      return;
    }
    check_blas_sizes(m_node, m, n, k);
    MatrixProduct p{.m = static_cast<int>(m), .n = static_cast<int>(n), .k = static_cast<int>(k)};
    // Strides in matrices; 0 along the batch dimensions an operand broadcasts.
    const auto a_strides = broadcast_strides(a_batch, batch);
    const auto b_strides = broadcast_strides(b_batch, batch);
    for (std::int64_t index = 0; index < batches; ++index) {
      std::int64_t a_matrix = 0;
      std::int64_t b_matrix = 0;
      for (std::int64_t rest = index, d = static_cast<std::int64_t>(batch.size()) - 1; d >= 0; --d) {
        auto dim = static_cast<size_t>(d);
        a_matrix += rest % batch[dim] * a_strides[dim];
        b_matrix += rest % batch[dim] * b_strides[dim];
        rest /= batch[dim];
      }
      multiply(a.as<const T>() + a_matrix * m * k, b.as<const T>() + b_matrix * k * n, y.as<T>() + index * m * n, p);
    }
  }

  Node m_node;
};

} // namespace

void add_linear_ops(OpTable& table)
{
  table["Gemm"] = make_kernel_of<GemmKernel>;
  table["MatMul"] = make_kernel_of<MatMulKernel>;
}

} // namespace mlops::runtime::cpu
