#pragma once
// exp, sigmoid and tanh over float32 arrays, eight lanes at a time, to about 2 ulp (Cephes'
// expf and tanhf). On x86-64 each function is compiled twice, for the baseline and for AVX2 with
// FMA, and the loader picks the one the processor runs: these are the loops where wide vectors
// pay, and the binary stays portable. Results match the C library's within a few ulp: exp is inf
// above about 88.7, 0 below about -104, subnormal in between; NaN stays NaN.

#include <cstdint>

namespace mlops::runtime::cpu {

// x[i] = e^x[i], in place.
void exp_floats(float* x, std::int64_t count);

// out[i] = e^(in[i] - shift); returns the sum of the out[i] (softmax's denominator).
float exp_shifted_sum(const float* in, float* out, std::int64_t count, float shift);

// out[i] = 1 / (1 + e^-in[i]). `in` may equal `out`.
void sigmoid_floats(const float* in, float* out, std::int64_t count);

// out[i] = tanh(in[i]). `in` may equal `out`.
void tanh_floats(const float* in, float* out, std::int64_t count);

} // namespace mlops::runtime::cpu
