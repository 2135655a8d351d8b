#include "mlops/worker/tensor_json.hpp"

#include "mlops/core/error.hpp"

#include <fmt/format.h>

#include <cmath>
#include <limits>
#include <type_traits>

namespace mlops::worker {

using runtime::ElementType;

namespace {

struct Datatype
{
  ElementType type;
  std::string_view name;
};

constexpr Datatype datatypes[] = {
  {ElementType::float32, "FP32"}, {ElementType::float64, "FP64"}, {ElementType::int8, "INT8"},
  {ElementType::uint8, "UINT8"},  {ElementType::int32, "INT32"},  {ElementType::int64, "INT64"},
  {ElementType::boolean, "BOOL"},
};

// Deeper nesting than any tensor's rank is refused, not recursed into: a request nesting 200,000
// lists would otherwise overflow the stack.
constexpr int max_nesting = 64;

void flatten(const nlohmann::json& data, std::vector<const nlohmann::json*>& out, const std::string& what, int depth = 0)
{
  if (depth > max_nesting) {
    throw Error(ExitCode::usage, fmt::format("{}: data nests lists more than {} deep", what, max_nesting));
  }
  if (data.is_array()) {
    for (const auto& item : data) {
      flatten(item, out, what, depth + 1);
    }
  } else {
    out.push_back(&data);
  }
}

// A value for an error message: itself when it is a scalar, else its kind (printing a nested
// value recurses as deep as it nests).
std::string describe(const nlohmann::json& value)
{
  return value.is_primitive() ? value.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace)
                              : std::string("an ") + value.type_name();
}

template <class T> void fill(runtime::HostTensor& tensor, const std::vector<const nlohmann::json*>& values,
                             const std::string& what)
{
  auto* out = tensor.data<T>();
  for (size_t i = 0; i < values.size(); ++i) {
    const auto& value = *values[i];
    if (!value.is_number() && !value.is_boolean()) {
      throw Error(ExitCode::usage, fmt::format("{}: data[{}] is {}, not a number", what, i, describe(value)));
    }
    if (value.is_boolean()) {
      out[i] = static_cast<T>(value.get<bool>());
      continue;
    }
    // In range for T, and whole for integers: converting anything else is undefined behaviour.
    double number = value.get<double>();
    bool fits = false;
    if constexpr (std::is_floating_point_v<T>) {
      fits = std::abs(number) <= static_cast<double>(std::numeric_limits<T>::max());
    } else if (value.is_number_unsigned()) {
      // Compared as integers: 2^63 rounds to INT64_MAX as a double and would pass, then wrap.
      fits = value.get<std::uint64_t>() <= static_cast<std::uint64_t>(std::numeric_limits<T>::max());
    } else if (value.is_number_integer()) {
      auto whole = value.get<std::int64_t>();
      fits = whole >= static_cast<std::int64_t>(std::numeric_limits<T>::lowest()) &&
             whole <= static_cast<std::int64_t>(std::numeric_limits<T>::max());
    }
    if (!fits) {
      throw Error(ExitCode::usage, fmt::format("{}: data[{}] = {} does not fit the tensor's datatype", what, i,
                                               describe(value)));
    }
    out[i] = std::is_floating_point_v<T> ? static_cast<T>(number) : static_cast<T>(value.get<std::int64_t>());
  }
}

template <class T> void dump(const runtime::HostTensor& tensor, nlohmann::json& data)
{
  const auto* values = tensor.data<T>();
  for (std::int64_t i = 0; i < tensor.count(); ++i) {
    if constexpr (std::is_same_v<T, std::uint8_t>) {
      data.push_back(tensor.type == ElementType::boolean ? nlohmann::json(values[i] != 0) : nlohmann::json(values[i]));
    } else {
      data.push_back(values[i]);
    }
  }
}

} // namespace

std::string_view protocol_datatype(ElementType type)
{
  for (const auto& entry : datatypes) {
    if (entry.type == type) {
      return entry.name;
    }
  }
  return "UNKNOWN";
}

TensorHeader tensor_header_from_json(const nlohmann::json& document, const std::string& what)
{
  if (!document.is_object()) {
    throw Error(ExitCode::usage, fmt::format("{} must be an object with name, datatype, shape and data", what));
  }
  auto field = [&](const char* key) -> const nlohmann::json& {
    auto found = document.find(key);
    if (found == document.end()) {
      throw Error(ExitCode::usage, fmt::format("{} has no \"{}\"", what, key));
    }
    return *found;
  };
  const auto& name = field("name");
  const auto& datatype = field("datatype");
  const auto& shape = field("shape");
  if (!name.is_string() || !datatype.is_string() || !shape.is_array()) {
    throw Error(ExitCode::usage, fmt::format("{}: name and datatype must be strings and shape a list", what));
  }
  auto entry = std::find_if(std::begin(datatypes), std::end(datatypes),
                            [&](const auto& d) { return d.name == datatype.get<std::string>(); });
  if (entry == std::end(datatypes)) {
    throw Error(ExitCode::usage, fmt::format("{}: datatype \"{}\" is not one of FP32, FP64, INT8, UINT8, INT32, "
                                             "INT64, BOOL",
                                             what, datatype.get<std::string>()));
  }
  TensorHeader header{name.get<std::string>(), entry->type, {}};
  for (const auto& dim : shape) {
    if (!dim.is_number_integer() || dim.get<std::int64_t>() < 0) {
      throw Error(ExitCode::usage, fmt::format("{}: shape must list non-negative integers, not {}", what, describe(dim)));
    }
    header.shape.push_back(dim.get<std::int64_t>());
  }
  return header;
}

runtime::NamedTensor tensor_from_json(const nlohmann::json& document, const std::string& what)
{
  auto header = tensor_header_from_json(document, what);
  auto data = document.find("data");
  if (data == document.end()) {
    throw Error(ExitCode::usage, fmt::format("{} has no \"data\"", what));
  }
  const auto& dims = header.shape;
  std::vector<const nlohmann::json*> values;
  flatten(*data, values, what);
  auto count = runtime::element_count(dims);
  if (static_cast<std::int64_t>(values.size()) != count) {
    throw Error(ExitCode::usage, fmt::format("{}: data has {} values, the shape {} needs {}", what, values.size(),
                                             runtime::shape_text(dims), count));
  }
  runtime::NamedTensor tensor{header.name, runtime::HostTensor::zeros(header.type, dims)};
  switch (header.type) {
  case ElementType::float32: fill<float>(tensor.tensor, values, what); break;
  case ElementType::float64: fill<double>(tensor.tensor, values, what); break;
  case ElementType::int8: fill<std::int8_t>(tensor.tensor, values, what); break;
  case ElementType::uint8:
  case ElementType::boolean: fill<std::uint8_t>(tensor.tensor, values, what); break;
  case ElementType::int32: fill<std::int32_t>(tensor.tensor, values, what); break;
  case ElementType::int64: fill<std::int64_t>(tensor.tensor, values, what); break;
  }
  return tensor;
}

nlohmann::json tensor_to_json(const runtime::NamedTensor& tensor)
{
  nlohmann::json data = nlohmann::json::array();
  const auto& host = tensor.tensor;
  switch (host.type) {
  case ElementType::float32: dump<float>(host, data); break;
  case ElementType::float64: dump<double>(host, data); break;
  case ElementType::int8: dump<std::int8_t>(host, data); break;
  case ElementType::uint8:
  case ElementType::boolean: dump<std::uint8_t>(host, data); break;
  case ElementType::int32: dump<std::int32_t>(host, data); break;
  case ElementType::int64: dump<std::int64_t>(host, data); break;
  }
  return {{"name", tensor.name}, {"datatype", protocol_datatype(host.type)}, {"shape", host.shape}, {"data", data}};
}

} // namespace mlops::worker
