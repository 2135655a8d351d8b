#include "vector_math.hpp"

#include <cstring>
#include <limits>

// The baseline clone keeps the binary running on any x86-64; the x86-64-v3 one (AVX2, FMA) runs
// eight lanes per instruction where the processor has them. Elsewhere there is one version.
#if defined(__x86_64__) && defined(__GNUC__)
#define MLOPS_VECTOR_CLONES __attribute__((target_clones("arch=x86-64-v3", "default")))
#else
#define MLOPS_VECTOR_CLONES
#endif

namespace mlops::runtime::cpu {
namespace {

// GCC's vector extensions: written as scalar code, exp's clamps are selects that GCC's -O2
// vectorizer gives up on. The helpers take their vector by reference and work in place: a
// 32-byte vector passed or returned by value has another calling convention with AVX than
// without, which GCC warns about even where every call is inlined.
using Floats = float __attribute__((vector_size(32)));
using Ints = std::int32_t __attribute__((vector_size(32)));
constexpr std::int64_t lanes = sizeof(Floats) / sizeof(float);

// The first `count` (<= lanes) values, the other lanes set to `fill`.
[[gnu::always_inline]] inline void load(Floats& v, const float* from, std::int64_t count = lanes, float fill = 0)
{
  v = Floats{} + fill;
  std::memcpy(&v, from, static_cast<size_t>(count) * sizeof(float));
}

[[gnu::always_inline]] inline void store(float* to, const Floats& v, std::int64_t count = lanes)
{
  std::memcpy(to, &v, static_cast<size_t>(count) * sizeof(float));
}

// e^x = 2^n * e^r with |r| <= ln2/2 and e^r a polynomial (Cephes' expf). 2^n is applied in two
// halves so that results in the subnormal range come out right.
[[gnu::always_inline]] inline void exp_lanes(Floats& x)
{
  const Floats low = Floats{} - 104.0f;
  const Floats high = Floats{} + 89.0f;
  x = x < low ? low : x;
  x = x > high ? high : x;
  // Adding and subtracting 1.5 * 2^23 rounds to the nearest integer (|x * log2e| < 2^22).
  Floats n = (x * 1.44269504088896341f + 12582912.0f) - 12582912.0f;
  n = n == n ? n : Floats{};  // NaN has no integer value; r below stays NaN anyway.
  Floats r = x - n * 0.693359375f + n * 2.12194440e-4f;
  Floats p = ((((1.9875691500e-4f * r + 1.3981999507e-3f) * r + 8.3334519073e-3f) * r + 4.1665795894e-2f) * r +
              1.6666665459e-1f) * r + 5.0000001201e-1f;
  p = p * r * r + r + 1.0f;
  Ints k = __builtin_convertvector(n, Ints);
  Ints half = k >> 1;
  // The builtin rather than std::bit_cast, a function that would return the vector by value.
  x = p * __builtin_bit_cast(Floats, (half + 127) << 23) * __builtin_bit_cast(Floats, (k - half + 127) << 23);
}

// 1 / (1 + e^-x), written as e^x / (1 + e^x) for negative x so that e^-x cannot overflow and
// tiny results keep their relative accuracy.
[[gnu::always_inline]] inline void sigmoid_lanes(Floats& x)
{
  Floats e = x < 0.0f ? x : -x;
  exp_lanes(e);
  Floats positive = 1.0f / (1.0f + e);
  x = x < 0.0f ? e * positive : positive;
}

// Cephes' tanhf: an odd polynomial near 0, where 1 - 2 / (e^2|x| + 1) would lose the low bits,
// and that formula elsewhere.
[[gnu::always_inline]] inline void tanh_lanes(Floats& x)
{
  Floats magnitude = x < 0.0f ? -x : x;
  Floats s = x * x;
  Floats near_zero = ((((-5.70498872745e-3f * s + 2.06390887954e-2f) * s - 5.37397155531e-2f) * s + 1.33314422036e-1f) *
                          s - 3.33332819422e-1f) * s * x + x;
  Floats e = 2.0f * magnitude;
  exp_lanes(e);
  Floats far = 1.0f - 2.0f / (e + 1.0f);
  far = x < 0.0f ? -far : far;
  x = magnitude < 0.625f ? near_zero : far;
}

// out[i] = f(in[i]) with f one of the functions above; the tail goes through a padded vector,
// so every element gets the same arithmetic. `in` may equal `out`. (A function as template
// argument rather than a lambda: a lambda's call operator is a function of its own, compiled for
// the baseline only.)
template <void (*lanes_function)(Floats&)>
[[gnu::always_inline]] inline void map_lanes(const float* in, float* out, std::int64_t count)
{
  Floats v;
  std::int64_t i = 0;
  for (; i + lanes <= count; i += lanes) {
    load(v, in + i);
    lanes_function(v);
    store(out + i, v);
  }
  if (i < count) {
    load(v, in + i, count - i);
    lanes_function(v);
    store(out + i, v, count - i);
  }
}

} // namespace

MLOPS_VECTOR_CLONES void exp_floats(float* x, std::int64_t count)
{
  map_lanes<exp_lanes>(x, x, count);
}

MLOPS_VECTOR_CLONES float exp_shifted_sum(const float* in, float* out, std::int64_t count, float shift)
{
  Floats sum = {};
  Floats v;
  std::int64_t i = 0;
  for (; i + lanes <= count; i += lanes) {
    load(v, in + i);
    v -= shift;
    exp_lanes(v);
    sum += v;
    store(out + i, v);
  }
  if (i < count) {
    // Padding with -inf makes the unused lanes e^-inf = 0, which adds nothing to the sum.
    load(v, in + i, count - i, -std::numeric_limits<float>::infinity());
    v -= shift;
    exp_lanes(v);
    sum += v;
    store(out + i, v, count - i);
  }
  float total = 0;
  for (std::int64_t k = 0; k < lanes; ++k) {
    total += sum[k];
  }
  return total;
}

MLOPS_VECTOR_CLONES void sigmoid_floats(const float* in, float* out, std::int64_t count)
{
  map_lanes<sigmoid_lanes>(in, out, count);
}

MLOPS_VECTOR_CLONES void tanh_floats(const float* in, float* out, std::int64_t count)
{
  map_lanes<tanh_lanes>(in, out, count);
}

} // namespace mlops::runtime::cpu
