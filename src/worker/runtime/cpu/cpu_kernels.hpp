#pragma once
// What the CPU's element-wise, activation, softmax and ArgMax kernels share: dispatch from an
// ElementType to a C++ type, loops that GCC vectorizes at -O2, and parallel ranges for large
// tensors.

#include "cpu_device.hpp"
#include "vector_math.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdint>
#include <functional>
#include <type_traits>

namespace mlops::runtime::cpu {

void add_activation_ops(OpTable& table);  // Relu LeakyRelu Sigmoid Tanh Clip (ops_activation.cpp)
void add_argmax_ops(OpTable& table);      // ArgMax (ops_argmax.cpp)

// ---- Element types ----------------------------------------------------------------------------

template <class... Types> struct TypeList {};
using NumericTypes = TypeList<float, double, std::int32_t, std::int64_t, std::int8_t, std::uint8_t>;
using RealTypes = TypeList<float, double>;

template <class T> constexpr ElementType element_type_of()
{
  if constexpr (std::is_same_v<T, float>) return ElementType::float32;
  else if constexpr (std::is_same_v<T, double>) return ElementType::float64;
  else if constexpr (std::is_same_v<T, std::int32_t>) return ElementType::int32;
  else if constexpr (std::is_same_v<T, std::int64_t>) return ElementType::int64;
  else if constexpr (std::is_same_v<T, std::int8_t>) return ElementType::int8;
  else {
    static_assert(std::is_same_v<T, std::uint8_t>, "no ElementType for this C++ type");
    return ElementType::uint8;
  }
}

// Calls body(T{}) where T is the C++ type of `type`, when `Types` lists it. Otherwise throws
// UnsupportedError naming the node and the types its kernel supports.
template <class... Types, class Body>
void visit_element_type(TypeList<Types...>, ElementType type, const Node& node, Body&& body)
{
  bool matched = ((type == element_type_of<Types>() && (body(Types{}), true)) || ...);
  if (!matched) {
    std::array names{element_type_name(element_type_of<Types>())...};
    throw UnsupportedError(fmt::format("{}: {} supports {}; this input is {}", node.label(), node.op_type,
                                       fmt::join(names, ", "), element_type_name(type)));
  }
}

// ---- Loops ------------------------------------------------------------------------------------

// Calls f(i) for i in [0, n), where no call may depend on another's writes (f(i) may update
// element i in place). RelWithDebInfo builds with -O2, where GCC 12 vectorizes only loops with no
// scalar remainder and no run-time aliasing checks: blocks of a fixed 16, declared free of
// dependences, are such loops; the tail runs scalar.
template <class F> inline void for_each_index(std::int64_t n, F&& f)
{
  constexpr std::int64_t block = 16;
  std::int64_t i = 0;
  for (; i + block <= n; i += block) {
#if defined(__GNUC__) && !defined(__clang__)  // Clang vectorizes these at -O2 as they are.
#pragma GCC ivdep
#endif
    for (std::int64_t k = 0; k < block; ++k) {
      f(i + k);
    }
  }
  for (; i < n; ++i) {
    f(i);
  }
}

// The largest value, over 16 lanes so that it vectorizes; n > 0. With NaNs in x the result is
// one of the values or NaN: callers whose result turns NaN anyway (softmax) need no more.
template <class T> T max_of(const T* __restrict x, std::int64_t n)
{
  constexpr std::int64_t lanes = 16;
  T best = x[0];
  std::int64_t i = 0;
  if (n >= lanes) {
    T lane_best[lanes];
    for (std::int64_t k = 0; k < lanes; ++k) {
      lane_best[k] = x[k];
    }
    for (i = lanes; i + lanes <= n; i += lanes) {
      for (std::int64_t k = 0; k < lanes; ++k) {
        lane_best[k] = lane_best[k] < x[i + k] ? x[i + k] : lane_best[k];
      }
    }
    for (std::int64_t k = 0; k < lanes; ++k) {
      best = best < lane_best[k] ? lane_best[k] : best;
    }
  }
  for (; i < n; ++i) {
    best = best < x[i] ? x[i] : best;
  }
  return best;
}

// The sum, over 16 partial sums: that vectorizes, and is if anything more accurate than one
// running sum.
template <class T> T sum_of(const T* __restrict x, std::int64_t n)
{
  constexpr std::int64_t lanes = 16;
  T lane_sum[lanes] = {};
  std::int64_t i = 0;
  for (; i + lanes <= n; i += lanes) {
    for (std::int64_t k = 0; k < lanes; ++k) {
      lane_sum[k] += x[i + k];
    }
  }
  T sum = 0;
  for (; i < n; ++i) {
    sum += x[i];
  }
  for (std::int64_t k = 0; k < lanes; ++k) {
    sum += lane_sum[k];
  }
  return sum;
}

// ---- Parallelism ------------------------------------------------------------------------------

// Elements per chunk of a parallel loop: below two of these a wake-up costs more than it saves.
inline constexpr std::int64_t parallel_grain = 32 * 1024;

// Calls body(begin, end) over [0, count), in parallel when count is at least two grains. Small
// loops call body directly: no std::function, no lock. `grain` is in units of `count`.
template <class Body> void parallel_ranges(ThreadPool& pool, std::int64_t count, std::int64_t grain, Body&& body)
{
  if (count < 2 * grain || pool.size() == 1) {
    if (count > 0) {
      body(std::int64_t{0}, count);
    }
    return;
  }
  // std::ref keeps std::function from copying (and allocating for) the lambda.
  pool.parallel_for(count, grain, std::function<void(std::int64_t, std::int64_t)>(std::ref(body)));
}

// The grain, in rows, for loops whose unit of work is a row of `row_elements` elements.
inline std::int64_t rows_grain(std::int64_t row_elements)
{
  return std::max<std::int64_t>(1, parallel_grain / std::max<std::int64_t>(row_elements, 1));
}

// ---- Transcendental functions ---------------------------------------------------------------

// x[i] = e^x[i] in place: vectorized for float32, the C library's exp otherwise.
template <class T> void exp_in_place(T* x, std::int64_t n)
{
  if constexpr (std::is_same_v<T, float>) {
    exp_floats(x, n);
  } else {
    for (std::int64_t i = 0; i < n; ++i) {
      x[i] = std::exp(x[i]);
    }
  }
}

} // namespace mlops::runtime::cpu
