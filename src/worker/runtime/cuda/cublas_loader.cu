#include "cublas_loader.hpp"

#include "cuda_device.hpp"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <dlfcn.h>

#include <climits>
#include <cstdlib>
#include <map>
#include <mutex>
#include <vector>

namespace mlops::runtime::cuda {

namespace {

// cuBLAS's ABI as its header declares it (stable across 11, 12 and 13): an opaque handle, an
// int status (0 is success), an int operation (0 none, 1 transpose), pointer arguments on the host.
using CublasHandle = void*;
using CublasStatus = int;
constexpr CublasStatus cublas_success = 0;
constexpr int cublas_op_n = 0;
constexpr int cublas_op_t = 1;

using CreateFn = CublasStatus (*)(CublasHandle*);
using DestroyFn = CublasStatus (*)(CublasHandle);
using SetStreamFn = CublasStatus (*)(CublasHandle, cudaStream_t);
using SgemmFn = CublasStatus (*)(CublasHandle, int, int, int, int, int, const float*, const float*, int,
                                 const float*, int, const float*, float*, int);
using SgemmStridedBatchedFn = CublasStatus (*)(CublasHandle, int, int, int, int, int, const float*, const float*,
                                               int, long long, const float*, int, long long, const float*, float*,
                                               int, long long, int);

struct CublasLibrary
{
  void* library = nullptr;
  CreateFn create = nullptr;
  DestroyFn destroy = nullptr;
  SetStreamFn set_stream = nullptr;
  SgemmFn sgemm = nullptr;
  SgemmStridedBatchedFn sgemm_strided_batched = nullptr;
  std::string failure;  // why it is not usable; empty when it is
};

template <class Function> bool resolve(void* library, const char* name, Function& function, std::string& failure)
{
  function = reinterpret_cast<Function>(dlsym(library, name));
  if (!function) {
    failure = fmt::format("{} lacks {}", failure.empty() ? "cuBLAS" : failure, name);
    return false;
  }
  return true;
}

CublasLibrary load_library()
{
  CublasLibrary loaded;
  std::vector<std::string> candidates;
  if (const char* path = std::getenv("MLOPS_CUBLAS"); path && *path) {
    candidates.emplace_back(path);
  }
  // The sonames the loader finds on its path, then the toolkit's default location, which is often
  // installed without being on that path.
  for (const char* name : {"libcublas.so.13", "libcublas.so.12", "libcublas.so",
                           "/usr/local/cuda/lib64/libcublas.so.13", "/usr/local/cuda/lib64/libcublas.so.12"}) {
    candidates.emplace_back(name);
  }
  std::vector<std::string> errors;
  for (const auto& candidate : candidates) {
    // RTLD_LOCAL: cuBLAS's symbols stay out of the global namespace of the process.
    void* library = dlopen(candidate.c_str(), RTLD_NOW | RTLD_LOCAL);
    if (!library) {
      const char* error = dlerror();
      errors.push_back(error ? error : candidate + ": cannot be loaded");
      continue;
    }
    std::string failure;
    if (resolve(library, "cublasCreate_v2", loaded.create, failure) &&
        resolve(library, "cublasDestroy_v2", loaded.destroy, failure) &&
        resolve(library, "cublasSetStream_v2", loaded.set_stream, failure) &&
        resolve(library, "cublasSgemm_v2", loaded.sgemm, failure) &&
        resolve(library, "cublasSgemmStridedBatched", loaded.sgemm_strided_batched, failure)) {
      loaded.library = library;
      return loaded;
    }
    errors.push_back(candidate + ": " + failure);
    dlclose(library);
  }
  loaded = CublasLibrary{};
  loaded.failure = fmt::format("no usable cuBLAS ({})", fmt::join(errors, "; "));
  return loaded;
}

const CublasLibrary& library()
{
  // Never unloaded: handles may outlive any one caller, and unloading CUDA libraries at exit races
  // with the driver's own teardown.
  static const CublasLibrary loaded = load_library();
  return loaded;
}

struct DeviceHandle
{
  CublasHandle handle = nullptr;
  int ordinal = -1;
  cudaStream_t stream = nullptr;
  bool create_failed = false;  // remembered: the device then runs our own GEMM without asking again
};

// One handle per device object, as each executor's device has its own stream and a handle's
// workspace must not be shared by streams that run at the same time.
std::mutex handles_mutex;
std::map<const CudaDevice*, DeviceHandle> handles;

// The names cuBLAS's header gives its statuses (cublasGetStatusString is not resolved: the fewer
// symbols we depend on, the more cuBLAS versions load).
const char* status_name(CublasStatus status)
{
  switch (status) {
  case 1: return "CUBLAS_STATUS_NOT_INITIALIZED";
  case 3: return "CUBLAS_STATUS_ALLOC_FAILED";
  case 7: return "CUBLAS_STATUS_INVALID_VALUE";
  case 8: return "CUBLAS_STATUS_ARCH_MISMATCH";
  case 11: return "CUBLAS_STATUS_MAPPING_ERROR";
  case 13: return "CUBLAS_STATUS_EXECUTION_FAILED";
  case 14: return "CUBLAS_STATUS_INTERNAL_ERROR";
  case 15: return "CUBLAS_STATUS_NOT_SUPPORTED";
  default: return "an unknown status";
  }
}

void check_cublas(CublasStatus status, const char* what)
{
  if (status != cublas_success) {
    throw Error(ExitCode::failure, fmt::format("cuBLAS failed in {}: {} ({})", what, status_name(status), status));
  }
}

// The device's handle, bound to its stream, or nullptr when cublasCreate fails on its GPU. A
// handle belongs to the GPU it was created on, so an entry left by a destroyed device at the same
// address is replaced when the GPU differs.
CublasHandle handle_for(CudaDevice& device)
{
  const CublasLibrary& cublas = library();
  std::lock_guard lock(handles_mutex);
  DeviceHandle& entry = handles[&device];
  if (entry.ordinal != device.ordinal()) {
    if (entry.handle) {
      cublas.destroy(entry.handle);
    }
    entry = DeviceHandle{};
    entry.ordinal = device.ordinal();
  }
  if (!entry.handle && !entry.create_failed) {
    // cublasCreate works on the current GPU; make it the device's, then restore the caller's.
    int previous = 0;
    check(cudaGetDevice(&previous), "cudaGetDevice");
    check(cudaSetDevice(device.ordinal()), "cudaSetDevice");
    CublasStatus status = cublas.create(&entry.handle);
    cudaSetDevice(previous);
    if (status != cublas_success) {
      entry.handle = nullptr;
      entry.create_failed = true;
    }
  }
  if (entry.handle && entry.stream != device.stream()) {
    check_cublas(cublas.set_stream(entry.handle, device.stream()), "cublasSetStream");
    entry.stream = device.stream();
  }
  return entry.handle;
}

bool fits_int(std::int64_t value)
{
  return value >= 0 && value <= INT_MAX;
}

} // namespace

bool cublas_available()
{
  return library().failure.empty();
}

std::string cublas_unavailable_reason()
{
  return library().failure;
}

bool cublas_fits(const GemmProblem& p)
{
  return fits_int(p.m) && fits_int(p.n) && fits_int(p.k) && fits_int(p.lda) && fits_int(p.ldb) &&
         fits_int(p.ldc) && fits_int(p.batch);
}

bool cublas_sgemm(CudaDevice& device, const GemmProblem& p)
{
  const CublasLibrary& cublas = library();
  CublasHandle handle = handle_for(device);
  if (!handle) {
    return false;
  }
  if (p.m <= 0 || p.n <= 0 || p.batch <= 0) {
    return true;
  }
  // cuBLAS is column-major, where our row-major C (m x n) reads as C^T (n x m). So it computes
  // C^T = op(B)^T * op(A)^T: B comes first, the sizes swap, and each transpose flag stays with
  // its matrix (a row-major matrix read column-major is already its transpose).
  int op_b = p.trans_b ? cublas_op_t : cublas_op_n;
  int op_a = p.trans_a ? cublas_op_t : cublas_op_n;
  // cuBLAS wants leading dimensions of at least 1 even where k is 0.
  int ldb = static_cast<int>(std::max<std::int64_t>(p.ldb, 1));
  int lda = static_cast<int>(std::max<std::int64_t>(p.lda, 1));
  int ldc = static_cast<int>(std::max<std::int64_t>(p.ldc, 1));
  int n = static_cast<int>(p.n);
  int m = static_cast<int>(p.m);
  int k = static_cast<int>(p.k);
  if (p.batch == 1) {
    check_cublas(cublas.sgemm(handle, op_b, op_a, n, m, k, &p.alpha, p.b, ldb, p.a, lda, &p.beta, p.c, ldc),
                 "cublasSgemm");
    return true;
  }
  check_cublas(cublas.sgemm_strided_batched(handle, op_b, op_a, n, m, k, &p.alpha, p.b, ldb, p.stride_b, p.a, lda,
                                            p.stride_a, &p.beta, p.c, ldc, p.stride_c, static_cast<int>(p.batch)),
               "cublasSgemmStridedBatched");
  return true;
}

void forget_cublas_handle(CudaDevice& device) noexcept
{
  if (!cublas_available()) {
    return;
  }
  std::lock_guard lock(handles_mutex);
  auto found = handles.find(&device);
  if (found == handles.end()) {
    return;
  }
  if (found->second.handle) {
    library().destroy(found->second.handle);
  }
  handles.erase(found);
}

} // namespace mlops::runtime::cuda
