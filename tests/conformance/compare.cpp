#include "compare.hpp"

#include <fmt/format.h>

#include <cmath>
#include <cstdint>
#include <cstring>

namespace mlops::conformance {
namespace {

using runtime::ElementType;
using runtime::HostTensor;

// "[1, 2]": where a flat index lies in `shape`, as people index tensors.
std::string coordinates(std::int64_t index, const runtime::Shape& shape)
{
  runtime::Shape position(shape.size());
  for (size_t axis = shape.size(); axis-- > 0;) {
    position[axis] = shape[axis] ? index % shape[axis] : 0;
    index = shape[axis] ? index / shape[axis] : 0;
  }
  return runtime::shape_text(position);
}

template <class T> bool close(T actual, T expected, const Tolerance& tolerance)
{
  if constexpr (std::is_floating_point_v<T>) {
    if (std::isnan(expected) || std::isnan(actual)) {
      return std::isnan(expected) && std::isnan(actual);
    }
    if (std::isinf(expected) || std::isinf(actual)) {
      return actual == expected;
    }
    double difference = std::fabs(static_cast<double>(actual) - static_cast<double>(expected));
    return difference <= tolerance.atol + tolerance.rtol * std::fabs(static_cast<double>(expected));
  } else {
    return actual == expected;
  }
}

template <class T> std::string value_text(T value)
{
  if constexpr (std::is_floating_point_v<T>) {
    return fmt::format("{:.9g}", value);
  } else {
    return fmt::format("{}", static_cast<std::int64_t>(value));
  }
}

template <class T> T element(const HostTensor& tensor, std::int64_t index)
{
  // memcpy: the bytes of a HostTensor carry no alignment promise for T.
  T value;
  std::memcpy(&value, tensor.bytes.data() + index * static_cast<std::int64_t>(sizeof(T)), sizeof(T));
  return value;
}

template <class T>
std::string values_mismatch(const HostTensor& expected, const HostTensor& actual, const Tolerance& tolerance)
{
  std::int64_t count = expected.count();
  std::int64_t first = -1;
  std::int64_t differing = 0;
  double largest = 0;
  for (std::int64_t index = 0; index < count; ++index) {
    T want = element<T>(expected, index);
    T got = element<T>(actual, index);
    if (!close(got, want, tolerance)) {
      first = first < 0 ? index : first;
      ++differing;
      largest = std::max(largest, std::fabs(static_cast<double>(got) - static_cast<double>(want)));
    }
  }
  if (differing == 0) {
    return {};
  }
  return fmt::format("at {} (index {}): {}, expected {}; {} of {} values differ, by up to {:.3g}",
                     coordinates(first, expected.shape), first, value_text(element<T>(actual, first)),
                     value_text(element<T>(expected, first)), differing, count, largest);
}

} // namespace

std::string tensor_mismatch(const HostTensor& expected, const HostTensor& actual, const Tolerance& tolerance)
{
  if (actual.type != expected.type) {
    return fmt::format("element type {}, expected {}", runtime::element_type_name(actual.type),
                       runtime::element_type_name(expected.type));
  }
  if (actual.shape != expected.shape) {
    return fmt::format("shape {}, expected {}", runtime::shape_text(actual.shape), runtime::shape_text(expected.shape));
  }
  auto bytes = static_cast<size_t>(expected.count()) * runtime::element_size(expected.type);
  if (actual.bytes.size() != bytes || expected.bytes.size() != bytes) {
    return fmt::format("{} bytes for {} values of {}, expected {}", actual.bytes.size(), expected.count(),
                       runtime::element_type_name(expected.type), bytes);
  }
  switch (expected.type) {
  case ElementType::float32: return values_mismatch<float>(expected, actual, tolerance);
  case ElementType::float64: return values_mismatch<double>(expected, actual, tolerance);
  // Booleans as their bytes: a kernel that writes 2 for true is wrong too.
  case ElementType::uint8:
  case ElementType::boolean: return values_mismatch<std::uint8_t>(expected, actual, tolerance);
  case ElementType::int8: return values_mismatch<std::int8_t>(expected, actual, tolerance);
  case ElementType::int32: return values_mismatch<std::int32_t>(expected, actual, tolerance);
  case ElementType::int64: return values_mismatch<std::int64_t>(expected, actual, tolerance);
  }
  return fmt::format("element type {} cannot be compared", static_cast<int>(expected.type));
}

} // namespace mlops::conformance
