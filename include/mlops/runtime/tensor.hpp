#pragma once
// Tensors of the runtime: element types (numbered as ONNX's TensorProto numbers them), shapes,
// host tensors that callers hand in and get back, and views that kernels compute on.

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace mlops::runtime {

enum class ElementType : int {
  float32 = 1,
  uint8 = 2,
  int8 = 3,
  int32 = 6,
  int64 = 7,
  boolean = 9,
  float64 = 11,
};

// 0 for a number that is not one of the types above.
size_t element_size(ElementType type);
bool is_known_element_type(int onnx_type);
// "float32", "int64"... as in the Open Inference Protocol's lower-case names ("bool" for boolean).
std::string_view element_type_name(ElementType type);

using Shape = std::vector<std::int64_t>;

// The product of the dimensions (1 for a scalar). Throws Error(usage) when it overflows.
std::int64_t element_count(const Shape& shape);
// "[2, 3, 4]".
std::string shape_text(const Shape& shape);

// Where a kernel reads or writes: memory of the executor's device (host memory on the CPU).
struct TensorView
{
  ElementType type = ElementType::float32;
  Shape shape;
  void* data = nullptr;

  std::int64_t count() const { return element_count(shape); }
  size_t bytes() const { return static_cast<size_t>(count()) * element_size(type); }
  template <class T> T* as() const { return static_cast<T*>(data); }
};

// A tensor in host memory that owns its bytes: inputs, outputs, initializers.
struct HostTensor
{
  ElementType type = ElementType::float32;
  Shape shape;
  std::vector<std::byte> bytes;

  // Zero-filled; throws Error(usage) when the size overflows.
  static HostTensor zeros(ElementType type, Shape shape);
  template <class T> static HostTensor from(ElementType type, Shape shape, const std::vector<T>& values);
  // A copy of `raw`, the tensor's bytes as stored (ONNX's raw_data, a request's binary data);
  // bytes beyond raw's end stay zero.
  static HostTensor from_bytes(ElementType type, Shape shape, std::string_view raw);

  std::int64_t count() const { return element_count(shape); }
  template <class T> T* data() { return reinterpret_cast<T*>(bytes.data()); }
  template <class T> const T* data() const { return reinterpret_cast<const T*>(bytes.data()); }
  TensorView view() const { return TensorView{type, shape, const_cast<std::byte*>(bytes.data())}; }
  // The values as int64 whatever the integer type (for shapes and axes given as tensors).
  std::vector<std::int64_t> as_int64s() const;
};

template <class T> HostTensor HostTensor::from(ElementType type, Shape shape, const std::vector<T>& values)
{
  HostTensor tensor = zeros(type, std::move(shape));
  std::copy_n(reinterpret_cast<const std::byte*>(values.data()),
              std::min(tensor.bytes.size(), values.size() * sizeof(T)), tensor.bytes.begin());
  return tensor;
}

} // namespace mlops::runtime
