#pragma once
// cuBLAS, loaded at run time with dlopen so that the binary starts, and runs on the runtime's own
// GEMM, where cuBLAS is not installed. Tried in order: $MLOPS_CUBLAS when set, libcublas.so.13,
// libcublas.so.12, libcublas.so, then those under /usr/local/cuda/lib64. Five functions are
// resolved, through typedefs of our own: no cuBLAS header is included and nothing links to it.

#include "gemm.hpp"

#include <string>

namespace mlops::runtime::cuda {

// Whether a cuBLAS library was loaded with every function we use. Loads it on the first call
// (thread-safe); the answer does not change afterwards.
bool cublas_available();
// Why it could not be loaded (the dlopen/dlsym messages), or "" when it was.
std::string cublas_unavailable_reason();

// Whether cuBLAS's 32-bit interface can describe `problem` (sizes, leading dimensions and batch
// count under 2^31).
bool cublas_fits(const GemmProblem& problem);

// Enqueues `problem` on the device's stream through the device's cuBLAS handle, which is created
// on first use and bound to that stream. Requires cublas_available() and cublas_fits(problem).
// Returns false, having done nothing, when no handle can be created on the device's GPU (asked
// once per device: the caller then runs its own GEMM). Throws Error(failure) naming cuBLAS's
// status when a call on the handle fails.
bool cublas_sgemm(CudaDevice& device, const GemmProblem& problem);

// Destroys the device's handle, if it has one. For ~CudaDevice: without it the handle lives until
// the process ends, and is reused by a later device allocated at the same address.
void forget_cublas_handle(CudaDevice& device) noexcept;

} // namespace mlops::runtime::cuda
