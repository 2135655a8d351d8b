#pragma once
// The runtime's own SGEMM, used when cuBLAS cannot be loaded (or MLOPS_CUDA_GEMM=own): 128x128
// tiles of C per block of 256 threads, 8x8 of them per thread, the K dimension walked 8 at a time
// through double-buffered shared memory. Any sizes, strides and transposes; 16-byte loads and
// stores where the matrices allow them. Plain FP32 arithmetic (no TF32), like cuBLAS's default.

#include "gemm.hpp"

#include <cuda_runtime_api.h>

namespace mlops::runtime::cuda {

// Enqueues `problem` on `stream`. Sizes and offsets are 64-bit, so matrices beyond 2^31
// elements work. Throws Error(failure) when the launch fails or the problem has more tiles than a
// grid can hold (over 2^31 tiles of 128x128).
void launch_tiled_sgemm(const GemmProblem& problem, cudaStream_t stream);

} // namespace mlops::runtime::cuda
