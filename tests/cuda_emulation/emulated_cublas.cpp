// libcublas_emulated.so: the five cuBLAS functions the runtime resolves with dlopen
// (src/worker/runtime/cuda/cublas_loader.cu), computed on the CPU with cuBLAS's column-major
// semantics and argument checks. With MLOPS_CUBLAS pointing here, the emulated build runs the
// runtime's real loader and its row-major to column-major mapping, which a wrong leading
// dimension or a swapped operand would fail.
#include <cmath>
#include <cstdint>

namespace {

using Status = int;
constexpr Status success = 0;
constexpr Status invalid_value = 7;  // CUBLAS_STATUS_INVALID_VALUE
constexpr int op_n = 0;
constexpr int op_t = 1;

struct Handle
{
  void* stream = nullptr;
};

// cuBLAS's checks: sizes not negative, known operations, leading dimensions at least the rows
// of each matrix as stored (and at least 1).
bool valid(int transa, int transb, int m, int n, int k, int lda, int ldb, int ldc)
{
  auto known = [](int op) { return op == op_n || op == op_t; };
  auto at_least = [](int ld, int rows) { return ld >= (rows > 1 ? rows : 1); };
  return known(transa) && known(transb) && m >= 0 && n >= 0 && k >= 0 && at_least(lda, transa == op_n ? m : k) &&
         at_least(ldb, transb == op_n ? k : n) && at_least(ldc, m);
}

void gemm(int transa, int transb, int m, int n, int k, float alpha, const float* a, int lda, const float* b, int ldb,
          float beta, float* c, int ldc)
{
  for (int j = 0; j < n; ++j) {
    for (int i = 0; i < m; ++i) {
      float sum = 0;
      for (int l = 0; l < k; ++l) {
        float a_il = transa == op_n ? a[i + std::int64_t{l} * lda] : a[l + std::int64_t{i} * lda];
        float b_lj = transb == op_n ? b[l + std::int64_t{j} * ldb] : b[j + std::int64_t{l} * ldb];
        sum = std::fma(a_il, b_lj, sum);  // as the GPU computes: fused, one rounding
      }
      float& out = c[i + std::int64_t{j} * ldc];
      // With beta 0, C is not read: it may hold anything, NaN included.
      out = beta == 0.f ? alpha * sum : alpha * sum + beta * out;
    }
  }
}

} // namespace

extern "C" {

// The emulated runtime's (emulated_runtime.cpp, exported by the executable): device memory is
// readable only between its begin and end calls. Weak, so the library also loads without it.
__attribute__((weak)) void mlops_cuda_emulation_device_access(bool begin);

}

namespace {

// Device memory is open to this GEMM while it runs.
class DeviceAccess
{
public:
  DeviceAccess() { toggle(true); }
  ~DeviceAccess() { toggle(false); }
  DeviceAccess(const DeviceAccess&) = delete;
  DeviceAccess& operator=(const DeviceAccess&) = delete;

private:
  static void toggle(bool begin)
  {
    if (mlops_cuda_emulation_device_access) {
      mlops_cuda_emulation_device_access(begin);
    }
  }
};

} // namespace

extern "C" {

Status cublasCreate_v2(void** handle)
{
  *handle = new Handle;
  return success;
}

Status cublasDestroy_v2(void* handle)
{
  delete static_cast<Handle*>(handle);
  return success;
}

Status cublasSetStream_v2(void* handle, void* stream)
{
  static_cast<Handle*>(handle)->stream = stream;
  return success;
}

Status cublasSgemm_v2(void* handle, int transa, int transb, int m, int n, int k, const float* alpha, const float* a,
                      int lda, const float* b, int ldb, const float* beta, float* c, int ldc)
{
  if (!handle || !valid(transa, transb, m, n, k, lda, ldb, ldc)) {
    return invalid_value;
  }
  DeviceAccess access;
  gemm(transa, transb, m, n, k, *alpha, a, lda, b, ldb, *beta, c, ldc);
  return success;
}

Status cublasSgemmStridedBatched(void* handle, int transa, int transb, int m, int n, int k, const float* alpha,
                                 const float* a, int lda, long long stride_a, const float* b, int ldb,
                                 long long stride_b, const float* beta, float* c, int ldc, long long stride_c,
                                 int batch)
{
  if (!handle || batch < 0 || !valid(transa, transb, m, n, k, lda, ldb, ldc)) {
    return invalid_value;
  }
  DeviceAccess access;
  for (int i = 0; i < batch; ++i) {
    gemm(transa, transb, m, n, k, *alpha, a + i * stride_a, lda, b + i * stride_b, ldb, *beta, c + i * stride_c, ldc);
  }
  return success;
}

} // extern "C"
