#include "mlops/runtime/tensor.hpp"

#include "mlops/core/error.hpp"

#include <fmt/format.h>
#include <fmt/ranges.h>

namespace mlops::runtime {

size_t element_size(ElementType type)
{
  switch (type) {
  case ElementType::float32: return 4;
  case ElementType::uint8: return 1;
  case ElementType::int8: return 1;
  case ElementType::int32: return 4;
  case ElementType::int64: return 8;
  case ElementType::boolean: return 1;
  case ElementType::float64: return 8;
  }
  return 0;
}

bool is_known_element_type(int onnx_type)
{
  return element_size(static_cast<ElementType>(onnx_type)) != 0;
}

std::string_view element_type_name(ElementType type)
{
  switch (type) {
  case ElementType::float32: return "float32";
  case ElementType::uint8: return "uint8";
  case ElementType::int8: return "int8";
  case ElementType::int32: return "int32";
  case ElementType::int64: return "int64";
  case ElementType::boolean: return "bool";
  case ElementType::float64: return "float64";
  }
  return "unknown";
}

std::int64_t element_count(const Shape& shape)
{
  std::int64_t count = 1;
  for (auto dimension : shape) {
    if (dimension < 0 || (dimension > 0 && count > INT64_MAX / dimension)) {
      throw Error(ExitCode::usage, fmt::format("the shape {} is not a valid tensor shape", shape_text(shape)));
    }
    count *= dimension;
  }
  return count;
}

std::string shape_text(const Shape& shape)
{
  return fmt::format("[{}]", fmt::join(shape, ", "));
}

HostTensor HostTensor::zeros(ElementType type, Shape shape)
{
  HostTensor tensor;
  tensor.type = type;
  auto count = element_count(shape);
  if (count > INT64_MAX / 16) {
    throw Error(ExitCode::usage, fmt::format("a tensor of shape {} is too large", shape_text(shape)));
  }
  tensor.shape = std::move(shape);
  tensor.bytes.resize(static_cast<size_t>(count) * element_size(type));
  return tensor;
}

HostTensor HostTensor::from_bytes(ElementType type, Shape shape, std::string_view raw)
{
  HostTensor tensor = zeros(type, std::move(shape));
  // std::copy_n, not memcpy: an empty tensor's buffer may be null, which memcpy must not be given.
  std::copy_n(reinterpret_cast<const std::byte*>(raw.data()), std::min(tensor.bytes.size(), raw.size()),
              tensor.bytes.begin());
  return tensor;
}

std::vector<std::int64_t> HostTensor::as_int64s() const
{
  std::vector<std::int64_t> values(static_cast<size_t>(count()));
  for (size_t i = 0; i < values.size(); ++i) {
    switch (type) {
    case ElementType::int64: values[i] = data<std::int64_t>()[i]; break;
    case ElementType::int32: values[i] = data<std::int32_t>()[i]; break;
    case ElementType::int8: values[i] = data<std::int8_t>()[i]; break;
    case ElementType::uint8: values[i] = data<std::uint8_t>()[i]; break;
    case ElementType::boolean: values[i] = data<std::uint8_t>()[i] != 0; break;
    default:
      throw Error(ExitCode::usage, fmt::format("expected integers, got a {} tensor", element_type_name(type)));
    }
  }
  return values;
}

} // namespace mlops::runtime
