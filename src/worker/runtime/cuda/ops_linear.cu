// Gemm and MatMul on the GPU, and sgemm(), the GEMM they and Conv share.
//
// Which GEMM runs, and why:
// - cuBLAS when it can be loaded (dlopen, see cublas_loader.hpp): it is tuned for each GPU and is
//   the fastest FP32 GEMM there is. Its default math mode is plain FP32 (no TF32, unless the user
//   sets NVIDIA_TF32_OVERRIDE=1), so results agree with the CPU's within 1e-4.
// - Our own tiled kernel (gemm_kernel.hpp) otherwise, so that a machine without cuBLAS (or whose
//   cuBLAS cannot create a handle on the GPU) still runs every model, more slowly. It also takes
//   what cuBLAS's 32-bit interface cannot describe (dimensions or leading dimensions of 2^31 or
//   more), and K = 0, where GEMM reduces to C = beta*C and cuBLAS's handling is not documented.
// - MLOPS_CUDA_GEMM=own or =cublas (read once, at the first GEMM) forces one, for benchmarks and
//   for tests of our kernel on machines that have cuBLAS; =cublas fails when cuBLAS cannot be
//   loaded rather than quietly measuring the other one.

#include "cublas_loader.hpp"
#include "cuda_device.hpp"
#include "gemm.hpp"
#include "gemm_kernel.hpp"
#include "kernel_common.hpp"

#include "mlops/runtime/op_geometry.hpp"

#include <fmt/format.h>

#include <cstdlib>
#include <string>

namespace mlops::runtime::cuda {

namespace {

using Index = std::int64_t;

enum class GemmChoice { automatic, own, cublas };

GemmChoice gemm_choice()
{
  static const std::string value = [] {
    const char* set = std::getenv("MLOPS_CUDA_GEMM");
    return std::string(set ? set : "");
  }();
  if (value.empty() || value == "auto") {
    return GemmChoice::automatic;
  }
  if (value == "own") {
    return GemmChoice::own;
  }
  if (value == "cublas") {
    return GemmChoice::cublas;
  }
  throw Error(ExitCode::usage, fmt::format("MLOPS_CUDA_GEMM=\"{}\": use own, cublas or auto", value));
}

} // namespace

GemmProblem dense_gemm(bool trans_a, bool trans_b, Index m, Index n, Index k, const float* a, const float* b,
                       float* c, Index batch)
{
  GemmProblem p;
  p.trans_a = trans_a;
  p.trans_b = trans_b;
  p.m = m;
  p.n = n;
  p.k = k;
  p.a = a;
  p.lda = trans_a ? m : k;
  p.stride_a = m * k;
  p.b = b;
  p.ldb = trans_b ? k : n;
  p.stride_b = k * n;
  p.c = c;
  p.ldc = n;
  p.stride_c = m * n;
  p.batch = batch;
  return p;
}

void sgemm(CudaDevice& device, const GemmProblem& problem)
{
  if (problem.m <= 0 || problem.n <= 0 || problem.batch <= 0) {
    return;
  }
  GemmChoice choice = gemm_choice();
  if (choice == GemmChoice::cublas && !cublas_available()) {
    throw Error(ExitCode::failure, "MLOPS_CUDA_GEMM=cublas, but " + cublas_unavailable_reason());
  }
  bool use_cublas = choice != GemmChoice::own && cublas_available() && cublas_fits(problem) && problem.k > 0;
  if (use_cublas && cublas_sgemm(device, problem)) {
    return;
  }
  if (use_cublas && choice == GemmChoice::cublas) {
    throw Error(ExitCode::failure,
                "MLOPS_CUDA_GEMM=cublas, but cuBLAS cannot create a handle on " + device.description());
  }
  launch_tiled_sgemm(problem, device.stream());
}

namespace {

// Y (rows x cols) = C broadcast, C walked with the given strides (0 along broadcast axes), rows
// as grid_for_rows lays them out.
__global__ void fill_broadcast(float* y, const float* c, Index rows, Index cols, Index row_stride, Index col_stride)
{
  for (Index row = blockIdx.y; row < rows; row += gridDim.y) {
    const float* from = c + row * row_stride;
    float* to = y + row * cols;
    for (Index col = first_index(); col < cols; col += grid_stride()) {
      to[col] = from[col * col_stride];
    }
  }
}

class GemmKernel : public Kernel
{
public:
  GemmKernel(const Node& node, CudaDevice& device)
    : m_node(node), m_device(device), m_alpha(node.attribute_float("alpha", 1.0f)),
      m_beta(node.attribute_float("beta", 1.0f)), m_trans_a(node.attribute_int("transA", 0) != 0),
      m_trans_b(node.attribute_int("transB", 0) != 0)
  {
  }

  void run(KernelContext& context) override
  {
    const TensorView& a = float_input(context, 0, m_node);
    const TensorView& b = float_input(context, 1, m_node);
    if (a.shape.size() != 2 || b.shape.size() != 2) {
      throw Error(ExitCode::usage, fmt::format("{}: A and B must be matrices, not {} and {}", m_node.label(),
                                               shape_text(a.shape), shape_text(b.shape)));
    }
    Index m = m_trans_a ? a.shape[1] : a.shape[0];
    Index k = m_trans_a ? a.shape[0] : a.shape[1];
    Index k_b = m_trans_b ? b.shape[1] : b.shape[0];
    Index n = m_trans_b ? b.shape[0] : b.shape[1];
    if (k != k_b) {
      throw Error(ExitCode::usage, fmt::format("{}: op(A) of shape [{}, {}] cannot multiply op(B) of shape [{}, {}]",
                                               m_node.label(), m, k, k_b, n));
    }
    TensorView& y = context.allocate_output(0, ElementType::float32, Shape{m, n});
    if (m == 0 || n == 0) {
      return;
    }
    GemmProblem problem = dense_gemm(m_trans_a, m_trans_b, m, n, k, a.as<float>(), b.as<float>(), y.as<float>());
    problem.alpha = m_alpha;
    problem.beta = 0;
    if (context.has_input(2) && m_beta != 0.0f) {
      fill_with_c(float_input(context, 2, m_node), y, m, n);
      problem.beta = m_beta;
    }
    sgemm(m_device, problem);
  }

private:
  // Y = C broadcast to (M, N) (unidirectionally: C may be a scalar, a row, a column or the matrix).
  void fill_with_c(const TensorView& c, TensorView& y, Index m, Index n)
  {
    if (c.shape.size() > 2 || broadcast_shapes(c.shape, y.shape, m_node) != y.shape) {
      throw Error(ExitCode::usage, fmt::format("{}: C of shape {} does not broadcast to the output's {}",
                                               m_node.label(), shape_text(c.shape), shape_text(y.shape)));
    }
    auto strides = broadcast_strides(c.shape, y.shape);
    fill_broadcast<<<grid_for_rows(m, n, m_device), block_threads, 0, m_device.stream()>>>(
      y.as<float>(), c.as<float>(), m, n, strides[0], strides[1]);
    check(cudaGetLastError(), "launching Gemm's bias");
  }

  Node m_node;
  CudaDevice& m_device;
  float m_alpha;
  float m_beta;
  bool m_trans_a;
  bool m_trans_b;
};

// How a broadcast batch of MatMul runs: the innermost batch dimensions whose strides line up
// (for A, B and the output alike) merge into one strided-batched GEMM; the rest, rare in
// practice, are looped over on the host, one GEMM launch each.
struct BatchPlan
{
  Shape outer;  // outermost first
  std::vector<Index> outer_a, outer_b, outer_c;
  Index count = 1;
  Index stride_a = 0, stride_b = 0, stride_c = 0;
};

BatchPlan plan_batches(const Shape& batch, const std::vector<Index>& a, const std::vector<Index>& b,
                       const std::vector<Index>& c)
{
  BatchPlan plan;
  bool have_inner = false;
  bool merging = true;
  for (size_t i = batch.size(); i-- > 0;) {
    if (batch[i] == 1) {
      continue;
    }
    if (!have_inner) {
      plan = BatchPlan{{}, {}, {}, {}, batch[i], a[i], b[i], c[i]};
      have_inner = true;
    } else if (merging && a[i] == plan.stride_a * plan.count && b[i] == plan.stride_b * plan.count &&
               c[i] == plan.stride_c * plan.count) {
      plan.count *= batch[i];
    } else {
      merging = false;
      plan.outer.insert(plan.outer.begin(), batch[i]);
      plan.outer_a.insert(plan.outer_a.begin(), a[i]);
      plan.outer_b.insert(plan.outer_b.begin(), b[i]);
      plan.outer_c.insert(plan.outer_c.begin(), c[i]);
    }
  }
  return plan;
}

class MatMulKernel : public Kernel
{
public:
  MatMulKernel(const Node& node, CudaDevice& device) : m_node(node), m_device(device) {}

  void run(KernelContext& context) override
  {
    const TensorView& a = float_input(context, 0, m_node);
    const TensorView& b = float_input(context, 1, m_node);
    if (a.shape.empty() || b.shape.empty()) {
      throw Error(ExitCode::usage, fmt::format("{}: MatMul does not take scalars", m_node.label()));
    }
    // numpy's rules: a 1-D A is a row vector and a 1-D B a column vector, whose added dimension
    // the output then drops.
    Shape a_shape = a.shape.size() == 1 ? Shape{1, a.shape[0]} : a.shape;
    Shape b_shape = b.shape.size() == 1 ? Shape{b.shape[0], 1} : b.shape;
    Index m = a_shape[a_shape.size() - 2];
    Index k = a_shape.back();
    Index n = b_shape.back();
    if (b_shape[b_shape.size() - 2] != k) {
      throw Error(ExitCode::usage, fmt::format("{}: shapes {} and {} cannot be multiplied", m_node.label(),
                                               shape_text(a.shape), shape_text(b.shape)));
    }
    Shape a_batch(a_shape.begin(), a_shape.end() - 2);
    Shape b_batch(b_shape.begin(), b_shape.end() - 2);
    Shape batch = broadcast_shapes(a_batch, b_batch, m_node);
    Shape out_shape = batch;
    if (a.shape.size() > 1) {
      out_shape.push_back(m);
    }
    if (b.shape.size() > 1) {
      out_shape.push_back(n);
    }
    TensorView& y = context.allocate_output(0, ElementType::float32, out_shape);
    if (y.count() == 0) {
      return;
    }
    auto a_strides = broadcast_strides(a_batch, batch);
    auto b_strides = broadcast_strides(b_batch, batch);
    std::vector<Index> c_strides(batch.size());
    Index c_stride = m * n;
    for (size_t i = batch.size(); i-- > 0;) {
      a_strides[i] *= m * k;
      b_strides[i] *= k * n;
      c_strides[i] = c_stride;
      c_stride *= batch[i];
    }
    BatchPlan plan = plan_batches(batch, a_strides, b_strides, c_strides);
    run_plan(plan, a.as<float>(), b.as<float>(), y.as<float>(), m, n, k);
  }

private:
  void run_plan(const BatchPlan& plan, const float* a, const float* b, float* y, Index m, Index n, Index k)
  {
    GemmProblem problem = dense_gemm(false, false, m, n, k, a, b, y, plan.count);
    problem.stride_a = plan.stride_a;
    problem.stride_b = plan.stride_b;
    problem.stride_c = plan.stride_c;
    if (plan.outer.empty() && plan.stride_b == 0 && plan.stride_a == m * k && plan.stride_c == m * n) {
      // One B for every A (a linear layer over a batch of sequences): the batch is rows of a
      // single taller GEMM, which keeps the GPU busier than many small ones.
      problem.m = m * plan.count;
      problem.batch = 1;
      sgemm(m_device, problem);
      return;
    }
    Shape index(plan.outer.size(), 0);
    while (true) {
      GemmProblem step = problem;
      for (size_t d = 0; d < index.size(); ++d) {
        step.a += index[d] * plan.outer_a[d];
        step.b += index[d] * plan.outer_b[d];
        step.c += index[d] * plan.outer_c[d];
      }
      sgemm(m_device, step);
      // The next outer index, odometer-style; done once every digit wrapped.
      size_t d = index.size();
      while (d > 0 && ++index[d - 1] == plan.outer[d - 1]) {
        index[--d] = 0;
      }
      if (d == 0) {
        return;
      }
    }
  }

  Node m_node;
  CudaDevice& m_device;
};

} // namespace

void add_linear_ops(OpTable& table)
{
  table.emplace("Gemm", make_kernel_of<GemmKernel>);
  table.emplace("MatMul", make_kernel_of<MatMulKernel>);
}

} // namespace mlops::runtime::cuda
