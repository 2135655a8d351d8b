#include "gemm_kernel.hpp"

#include "cuda_device.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <cstdint>
#include <limits>

namespace mlops::runtime::cuda {

namespace {

using Index = std::int64_t;

constexpr int tile_m = 128;
constexpr int tile_n = 128;
constexpr int tile_k = 8;
constexpr int block_threads = 256;
// Shared rows padded by 4 floats: the transposing stores of one warp then hit 32 different banks,
// and rows stay 16-byte aligned for float4 reads.
constexpr int shared_pad = 4;
// Blocks walk the tiles 8 tile-rows at a time, so that the blocks resident together share rows
// of A and columns of B in L2 instead of each streaming a different part of both.
constexpr int group_rows = 8;

using SharedTile = float[tile_k][tile_m + shared_pad];

// The thread layouts below hard-code these: 256 threads load a 128 x 8 tile as 4 floats each
// (2 per row along k, or 32 per row along m/n) and compute it as a 16 x 16 grid of 8 x 8 tiles.
static_assert(tile_m == 128 && tile_n == 128 && tile_k == 8 && block_threads == 256);

struct Operand
{
  const float* data;
  Index ld;
  Index stride;
  bool vector;  // 16-byte loads allowed: aligned base, ld and stride multiples of 4
};

// Sizes are 32-bit (the host checks), offsets 64-bit: registers are what limits this kernel.
struct Params
{
  int m, n, k;
  float alpha, beta;
  Operand a, b;
  float* c;
  Index ldc, stride_c;
  bool vector_c;
  int tiles_m, tiles_n;
};

// Walks one operand's K-tiles for one thread, which loads 4 consecutive floats of the operand as
// stored each time. Along k (AlongK: A as given, B transposed) 2 threads share an 8-float row
// segment; along m or n (A transposed, B as given) 32 threads share a 128-float row.
template <bool AlongK> struct TileLoader
{
  const float* next;  // this thread's 4 floats of the current K-tile
  int k_position;     // where along k they (or the first of them) lie
  int fixed_valid;    // floats in range along m or n, which does not change with k (0-4)
  bool vector;

  __device__ __forceinline__ TileLoader(const Operand& op, const float* base, Index first, int extent)
  {
    int t = threadIdx.x;
    vector = op.vector;
    if (AlongK) {
      Index row = first + t / 2;
      next = base + (row < extent ? row : 0) * op.ld + (t % 2) * 4;
      k_position = (t % 2) * 4;
      fixed_valid = row < extent ? 4 : 0;
    } else {
      Index col = first + (t % 32) * 4;
      next = base + (t / 32) * op.ld + col;
      k_position = t / 32;
      fixed_valid = static_cast<int>(max(Index{0}, min(Index{4}, extent - col)));
    }
  }

  // How many of the 4 floats lie inside the matrix for the current K-tile (the rest read as 0).
  __device__ __forceinline__ int valid(int k) const
  {
    if (AlongK) {
      return fixed_valid == 0 ? 0 : min(max(k - k_position, 0), 4);
    }
    return k_position < k ? fixed_valid : 0;
  }

  __device__ __forceinline__ float4 load(int k) const
  {
    int count = valid(k);
    if (count == 4 && vector) {
      return __ldg(reinterpret_cast<const float4*>(next));
    }
    float v[4];
#pragma unroll
    for (int i = 0; i < 4; ++i) {
      v[i] = i < count ? __ldg(next + i) : 0.f;
    }
    return make_float4(v[0], v[1], v[2], v[3]);
  }

  __device__ __forceinline__ void advance(Index ld)
  {
    next += AlongK ? Index{tile_k} : tile_k * ld;
    k_position += tile_k;
  }

  // Shared tiles are k-major ([k][m] and [k][n]) whatever the layout in global memory.
  __device__ __forceinline__ void store(SharedTile& tile, float4 v) const
  {
    int t = threadIdx.x;
    if (AlongK) {
      int row = t / 2;
      int k = (t % 2) * 4;
      tile[k + 0][row] = v.x;
      tile[k + 1][row] = v.y;
      tile[k + 2][row] = v.z;
      tile[k + 3][row] = v.w;
    } else {
      *reinterpret_cast<float4*>(&tile[t / 32][(t % 32) * 4]) = v;
    }
  }
};

// C[row][col..col+3] = alpha * values + beta * C, clipped to the matrix.
__device__ __forceinline__ void store_row(const Params& p, float* c, int row, int col, const float* values)
{
  if (row >= p.m) {
    return;
  }
  float* out = c + row * p.ldc + col;
  if (p.vector_c && col + 3 < p.n) {
    float4 v = make_float4(p.alpha * values[0], p.alpha * values[1], p.alpha * values[2], p.alpha * values[3]);
    if (p.beta != 0.f) {
      float4 old = *reinterpret_cast<const float4*>(out);
      v.x += p.beta * old.x;
      v.y += p.beta * old.y;
      v.z += p.beta * old.z;
      v.w += p.beta * old.w;
    }
    *reinterpret_cast<float4*>(out) = v;
    return;
  }
#pragma unroll
  for (int j = 0; j < 4; ++j) {
    if (col + j < p.n) {
      // beta == 0 must not read C: it may be uninitialized memory holding NaN.
      out[j] = p.beta != 0.f ? p.alpha * values[j] + p.beta * out[j] : p.alpha * values[j];
    }
  }
}

template <bool TransA, bool TransB>
__global__ void __launch_bounds__(block_threads, 2) tiled_sgemm(Params p)
{
  __shared__ __align__(16) SharedTile a_tile[2];
  __shared__ __align__(16) SharedTile b_tile[2];

  // Grouped tile order (see group_rows).
  int tile = blockIdx.x;
  int per_group = group_rows * p.tiles_n;
  int first_tile_row = tile / per_group * group_rows;
  int rows_in_group = min(p.tiles_m - first_tile_row, group_rows);
  int in_group = tile % per_group;
  int m0 = (first_tile_row + in_group % rows_in_group) * tile_m;
  int n0 = in_group / rows_in_group * tile_n;

  // Thread (ty, tx) of a 16 x 16 grid owns rows ty*4.. and 64+ty*4.. (4 each), and likewise
  // columns. A warp is a 4 x 8 patch of that grid, so its shared reads touch few distinct addresses.
  int warp = threadIdx.x / 32;
  int lane = threadIdx.x % 32;
  int ty = (warp / 2) * 4 + lane / 8;
  int tx = (warp % 2) * 8 + lane % 8;

  // One matrix of the batch per grid row. (A loop over them here would keep enough values live
  // across iterations to push the kernel past 128 registers, into spills.)
  Index batch = blockIdx.y;
  float acc[8][8];
#pragma unroll
  for (int i = 0; i < 8; ++i) {
#pragma unroll
    for (int j = 0; j < 8; ++j) {
      acc[i][j] = 0.f;
    }
  }

  TileLoader<!TransA> a_loader(p.a, p.a.data + batch * p.a.stride, m0, p.m);
  TileLoader<TransB> b_loader(p.b, p.b.data + batch * p.b.stride, n0, p.n);
  if (p.k > 0) {
    a_loader.store(a_tile[0], a_loader.load(p.k));
    b_loader.store(b_tile[0], b_loader.load(p.k));
    __syncthreads();
  }
  int current = 0;
  for (int k0 = 0; k0 < p.k; k0 += tile_k) {
    bool has_next = k0 + tile_k < p.k;
    float4 next_a, next_b;
    // Issued before the arithmetic, so the global loads overlap it.
    if (has_next) {
      a_loader.advance(p.a.ld);
      b_loader.advance(p.b.ld);
      next_a = a_loader.load(p.k);
      next_b = b_loader.load(p.k);
    }
#pragma unroll
    for (int kk = 0; kk < tile_k; ++kk) {
      float4 a_low = *reinterpret_cast<const float4*>(&a_tile[current][kk][ty * 4]);
      float4 a_high = *reinterpret_cast<const float4*>(&a_tile[current][kk][64 + ty * 4]);
      float4 b_low = *reinterpret_cast<const float4*>(&b_tile[current][kk][tx * 4]);
      float4 b_high = *reinterpret_cast<const float4*>(&b_tile[current][kk][64 + tx * 4]);
      float av[8] = {a_low.x, a_low.y, a_low.z, a_low.w, a_high.x, a_high.y, a_high.z, a_high.w};
      float bv[8] = {b_low.x, b_low.y, b_low.z, b_low.w, b_high.x, b_high.y, b_high.z, b_high.w};
#pragma unroll
      for (int i = 0; i < 8; ++i) {
#pragma unroll
        for (int j = 0; j < 8; ++j) {
          acc[i][j] = fmaf(av[i], bv[j], acc[i][j]);
        }
      }
    }
    if (has_next) {
      // The other buffer was last read before the previous barrier, so it is free to fill.
      a_loader.store(a_tile[current ^ 1], next_a);
      b_loader.store(b_tile[current ^ 1], next_b);
    }
    __syncthreads();
    current ^= 1;
  }

  float* c = p.c + batch * p.stride_c;
#pragma unroll
  for (int i = 0; i < 8; ++i) {
    int row = m0 + (i < 4 ? ty * 4 + i : 64 + ty * 4 + i - 4);
    store_row(p, c, row, n0 + tx * 4, &acc[i][0]);
    store_row(p, c, row, n0 + 64 + tx * 4, &acc[i][4]);
  }
}

bool aligned16(const void* pointer)
{
  return reinterpret_cast<std::uintptr_t>(pointer) % 16 == 0;
}

Operand operand(const float* data, Index ld, Index stride)
{
  return Operand{data, ld, stride, aligned16(data) && ld % 4 == 0 && stride % 4 == 0};
}

} // namespace

void launch_tiled_sgemm(const GemmProblem& problem, cudaStream_t stream)
{
  if (problem.m <= 0 || problem.n <= 0 || problem.batch <= 0) {
    return;
  }
  // m + tile_m and k + tile_k must not overflow either: the kernel walks tiles in int.
  constexpr Index limit = std::numeric_limits<int>::max() - tile_m;
  if (problem.m > limit || problem.n > limit || problem.k > limit) {
    throw Error(ExitCode::failure, fmt::format("GEMM of {} x {} x {} is too large for the tiled kernel",
                                               problem.m, problem.n, problem.k));
  }
  Params p{};
  p.m = static_cast<int>(problem.m);
  p.n = static_cast<int>(problem.n);
  p.k = static_cast<int>(std::max<Index>(problem.k, 0));
  p.alpha = problem.alpha;
  p.beta = problem.beta;
  p.a = operand(problem.a, problem.lda, problem.stride_a);
  p.b = operand(problem.b, problem.ldb, problem.stride_b);
  p.c = problem.c;
  p.ldc = problem.ldc;
  p.stride_c = problem.stride_c;
  p.vector_c = aligned16(problem.c) && problem.ldc % 4 == 0 && problem.stride_c % 4 == 0;
  p.tiles_m = (p.m + tile_m - 1) / tile_m;
  p.tiles_n = (p.n + tile_n - 1) / tile_n;
  // Tile numbers (and group_rows * tiles_n) are ints in the kernel.
  if (Index{p.tiles_m} * p.tiles_n > std::numeric_limits<int>::max() - Index{group_rows} * p.tiles_n) {
    throw Error(ExitCode::failure, fmt::format("GEMM of {} x {} has too many tiles for one grid", p.m, p.n));
  }
  // Grids have at most 65535 rows: larger batches go in several launches.
  constexpr Index max_grid_rows = 65535;
  for (Index first = 0; first < problem.batch; first += max_grid_rows) {
    Params chunk = p;
    chunk.a.data += first * problem.stride_a;
    chunk.b.data += first * problem.stride_b;
    chunk.c += first * problem.stride_c;
    dim3 grid(static_cast<unsigned>(p.tiles_m * p.tiles_n),
              static_cast<unsigned>(std::min(problem.batch - first, max_grid_rows)));
    if (problem.trans_a && problem.trans_b) {
      tiled_sgemm<true, true><<<grid, block_threads, 0, stream>>>(chunk);
    } else if (problem.trans_a) {
      tiled_sgemm<true, false><<<grid, block_threads, 0, stream>>>(chunk);
    } else if (problem.trans_b) {
      tiled_sgemm<false, true><<<grid, block_threads, 0, stream>>>(chunk);
    } else {
      tiled_sgemm<false, false><<<grid, block_threads, 0, stream>>>(chunk);
    }
  }
  check(cudaGetLastError(), "launching the tiled SGEMM");
}

} // namespace mlops::runtime::cuda
