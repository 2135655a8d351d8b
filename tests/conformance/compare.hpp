#pragma once
// Comparing a tensor the runtime computed with the one a test expects, the way ONNX's own backend
// tests do (numpy's assert_allclose): floating values within atol + rtol * |expected|, NaN
// matching NaN, everything else exactly.

#include "mlops/runtime/tensor.hpp"

#include <string>

namespace mlops::conformance {

struct Tolerance
{
  double rtol = 1e-3;
  double atol = 1e-7;
};

// "" when `actual` matches `expected` in element type, shape and values; otherwise what differs,
// for people: "shape [3, 2], expected [2, 3]", or "at [1, 2] (index 5): 0.5, expected 0.25;
// 3 of 6 values differ, by up to 0.25".
std::string tensor_mismatch(const runtime::HostTensor& expected, const runtime::HostTensor& actual,
                            const Tolerance& tolerance);

} // namespace mlops::conformance
