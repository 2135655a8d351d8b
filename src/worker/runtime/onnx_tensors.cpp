#include "onnx_tensors.hpp"

#include "mlops/core/error.hpp"
#include "mlops/runtime/device.hpp"
#include "mlops/runtime/model_loader.hpp"

#include <fmt/format.h>
#include <fmt/std.h>

#include <algorithm>
#include <fstream>

namespace mlops::runtime {

namespace fs = std::filesystem;

namespace {

[[noreturn]] void invalid(const std::string& what, const std::string& why)
{
  throw Error(ExitCode::integrity, fmt::format("{}: {}", what, why));
}

// The typed field's values converted to the tensor's type, element by element.
template <class Target, class Field> void copy_typed(const Field& field, HostTensor& tensor, const std::string& what)
{
  if (static_cast<std::int64_t>(field.size()) != tensor.count()) {
    invalid(what, fmt::format("has {} values for the shape {}", field.size(), shape_text(tensor.shape)));
  }
  auto* out = tensor.data<Target>();
  for (int i = 0; i < field.size(); ++i) {
    out[i] = static_cast<Target>(field.Get(i));
  }
}

// Reads `expected` bytes of external data. The location must be relative and stay inside
// `folder`, even through symbolic links, so that a model cannot make the worker read (and
// serve) arbitrary files; sizes are checked before anything is allocated.
std::string read_external(const onnx::TensorProto& proto, const fs::path& folder, std::int64_t expected,
                          const std::string& what)
{
  std::string location;
  std::int64_t offset = 0;
  std::int64_t length = -1;
  for (const auto& entry : proto.external_data()) {
    try {
      if (entry.key() == "location") {
        location = entry.value();
      } else if (entry.key() == "offset") {
        offset = std::stoll(entry.value());
      } else if (entry.key() == "length") {
        length = std::stoll(entry.value());
      }
    } catch (const std::exception&) {
      invalid(what, fmt::format("external data {} \"{}\" is not a number", entry.key(), entry.value()));
    }
  }
  if (folder.empty()) {
    invalid(what, "its data is in an external file, and this model was given without its folder");
  }
  fs::path relative(location);
  if (location.empty() || relative.is_absolute() || offset < 0) {
    invalid(what, fmt::format("external data location \"{}\" must be a path relative to the model's folder", location));
  }
  if (length >= 0 && length != expected) {
    invalid(what, fmt::format("external data length {} does not match its shape, which needs {} bytes", length, expected));
  }
  std::error_code error;
  fs::path root = fs::canonical(folder, error);
  fs::path file = fs::canonical(folder / relative, error);
  if (!error) {
    auto [end, unused] = std::mismatch(root.begin(), root.end(), file.begin(), file.end());
    if (end != root.end()) {
      invalid(what, fmt::format("external data location \"{}\" points outside the model's folder", location));
    }
  }
  // Said only after the location is known to be inside: no probing for files elsewhere.
  if (error || !fs::is_regular_file(file)) {
    invalid(what, fmt::format("external data file \"{}\" does not exist in the model's folder", location));
  }
  auto size = static_cast<std::int64_t>(fs::file_size(file, error));
  if (error || offset > size || size - offset < expected) {
    invalid(what, fmt::format("external data file \"{}\" is shorter than offset {} + {} bytes", location, offset, expected));
  }
  std::ifstream in(file, std::ios::binary);
  in.seekg(offset);
  std::string bytes(static_cast<size_t>(expected), '\0');
  in.read(bytes.data(), expected);
  if (in.gcount() != expected) {
    invalid(what, fmt::format("cannot read {} bytes from external data file \"{}\"", expected, location));
  }
  return bytes;
}

// The number of values in the typed field that holds the tensor's type.
std::int64_t typed_count(const onnx::TensorProto& proto, ElementType type)
{
  switch (type) {
  case ElementType::float32: return proto.float_data_size();
  case ElementType::float64: return proto.double_data_size();
  case ElementType::int64: return proto.int64_data_size();
  default: return proto.int32_data_size();
  }
}

} // namespace

HostTensor tensor_from_proto(const onnx::TensorProto& proto, const fs::path& folder, std::int64_t max_bytes,
                             const std::string& what)
{
  if (!is_known_element_type(proto.data_type())) {
    throw UnsupportedError(fmt::format("{}: element type {} is not supported (float32, float64, int8, uint8, "
                                       "int32, int64 and bool are)",
                                       what, onnx::TensorProto_DataType_Name(proto.data_type())));
  }
  auto type = static_cast<ElementType>(proto.data_type());
  Shape shape(proto.dims().begin(), proto.dims().end());
  for (auto dimension : shape) {
    if (dimension < 0) {
      invalid(what, fmt::format("has the negative dimension {}", dimension));
    }
  }
  std::int64_t count = 1;
  for (auto dimension : shape) {
    if (dimension && count > max_bytes / dimension) {
      count = max_bytes + 1;
      break;
    }
    count *= dimension;
  }
  if (count > max_bytes / static_cast<std::int64_t>(element_size(type))) {
    invalid(what, fmt::format("its shape {} needs more than the limit of {} bytes", shape_text(shape), max_bytes));
  }
  const auto expected = count * static_cast<std::int64_t>(element_size(type));
  const bool external = proto.data_location() == onnx::TensorProto::EXTERNAL;
  if (external || proto.has_raw_data()) {
    std::string external_bytes = external ? read_external(proto, folder, expected, what) : std::string();
    const std::string& raw = external ? external_bytes : proto.raw_data();
    if (static_cast<std::int64_t>(raw.size()) != expected) {
      invalid(what, fmt::format("holds {} bytes of data, its shape {} needs {}", raw.size(), shape_text(shape), expected));
    }
    return HostTensor::from_bytes(type, shape, raw);
  }
  if (typed_count(proto, type) != count) {
    invalid(what, fmt::format("has {} values for the shape {}", typed_count(proto, type), shape_text(shape)));
  }
  HostTensor tensor = HostTensor::zeros(type, shape);
  switch (type) {
  case ElementType::float32: copy_typed<float>(proto.float_data(), tensor, what); break;
  case ElementType::float64: copy_typed<double>(proto.double_data(), tensor, what); break;
  case ElementType::int64: copy_typed<std::int64_t>(proto.int64_data(), tensor, what); break;
  case ElementType::int32: copy_typed<std::int32_t>(proto.int32_data(), tensor, what); break;
  case ElementType::int8: copy_typed<std::int8_t>(proto.int32_data(), tensor, what); break;
  case ElementType::uint8: copy_typed<std::uint8_t>(proto.int32_data(), tensor, what); break;
  case ElementType::boolean: copy_typed<std::uint8_t>(proto.int32_data(), tensor, what); break;
  }
  return tensor;
}

namespace {

void inline_tensor(onnx::TensorProto& proto, const fs::path& folder, std::int64_t max_bytes, const std::string& what)
{
  if (proto.data_location() != onnx::TensorProto::EXTERNAL) {
    return;
  }
  HostTensor tensor = tensor_from_proto(proto, folder, max_bytes, what);
  proto.clear_external_data();
  proto.set_data_location(onnx::TensorProto::DEFAULT);
  proto.set_raw_data(tensor.bytes.data(), tensor.bytes.size());
}

} // namespace

void inline_external_data(onnx::ModelProto& model, const fs::path& folder, std::int64_t max_bytes,
                          const std::string& name)
{
  auto& graph = *model.mutable_graph();
  for (auto& initializer : *graph.mutable_initializer()) {
    inline_tensor(initializer, folder, max_bytes, fmt::format("{}: initializer '{}'", name, initializer.name()));
  }
  for (auto& node : *graph.mutable_node()) {
    for (auto& attribute : *node.mutable_attribute()) {
      if (attribute.has_t()) {
        inline_tensor(*attribute.mutable_t(), folder, max_bytes,
                      fmt::format("{}: {} attribute {}", name, node.op_type(), attribute.name()));
      }
    }
  }
}

HostTensor parse_tensor(const std::string& bytes, const std::string& name)
{
  onnx::TensorProto proto;
  if (!proto.ParseFromString(bytes)) {
    invalid(name, "is not a serialized ONNX tensor (TensorProto)");
  }
  return tensor_from_proto(proto, {}, std::int64_t{1} << 40, name);
}

HostTensor read_tensor_file(const fs::path& path)
{
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    throw Error(ExitCode::not_found, fmt::format("cannot read the tensor file {}", path));
  }
  std::string bytes(std::istreambuf_iterator<char>(in), {});
  return parse_tensor(bytes, path.string());
}

} // namespace mlops::runtime
