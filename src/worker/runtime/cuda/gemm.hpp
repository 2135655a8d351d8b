#pragma once
// The single-precision GEMM that MatMul, Gemm and Conv share, described in row-major terms (as
// ONNX lays tensors out) and run by cuBLAS or by the runtime's own tiled kernel. Which one runs,
// and why, is explained at the top of ops_linear.cu, where sgemm() is defined.

#include <cstdint>

namespace mlops::runtime::cuda {

class CudaDevice;

// For each b in [0, batch): C_b = alpha * op(A_b) * op(B_b) + beta * C_b, where op(A_b) is m x k,
// op(B_b) is k x n and C_b is m x n, all row-major. X_b starts at x + b * stride_x; a stride of 0
// repeats one matrix across the batch (broadcasting), but C's matrices must not overlap.
// With trans_a, A is stored k x m (so op(A) = A^T); likewise trans_b stores B as n x k.
// The leading dimensions are the distance, in elements, between rows of the matrix as stored.
// When beta is 0, C is not read (it may hold anything, NaN included).
struct GemmProblem
{
  bool trans_a = false;
  bool trans_b = false;
  std::int64_t m = 0;
  std::int64_t n = 0;
  std::int64_t k = 0;
  float alpha = 1;
  float beta = 0;
  const float* a = nullptr;
  std::int64_t lda = 0;
  std::int64_t stride_a = 0;
  const float* b = nullptr;
  std::int64_t ldb = 0;
  std::int64_t stride_b = 0;
  float* c = nullptr;
  std::int64_t ldc = 0;
  std::int64_t stride_c = 0;
  std::int64_t batch = 1;
};

// A problem over densely stored matrices: lda = trans_a ? m : k, ldb = trans_b ? k : n, ldc = n,
// and batch strides of whole matrices (set a stride to 0 to broadcast).
GemmProblem dense_gemm(bool trans_a, bool trans_b, std::int64_t m, std::int64_t n, std::int64_t k,
                       const float* a, const float* b, float* c, std::int64_t batch = 1);

// Enqueues `problem` on the device's stream. Does not synchronize. Throws Error(failure) when a
// launch or cuBLAS fails, or when MLOPS_CUDA_GEMM=cublas asks for a cuBLAS that cannot be loaded.
void sgemm(CudaDevice& device, const GemmProblem& problem);

} // namespace mlops::runtime::cuda
