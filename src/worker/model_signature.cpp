#include "mlops/worker/model_signature.hpp"

#include "mlops/core/error.hpp"

#include <fmt/format.h>
#include <fmt/std.h>
#include <onnx/checker.h>
#include <onnx/onnx-ml.pb.h>

#include <fstream>
#include <set>

namespace mlops::worker {

namespace {

const char* element_type(int type)
{
  switch (type) {
  case onnx::TensorProto::FLOAT: return "float32";
  case onnx::TensorProto::DOUBLE: return "float64";
  case onnx::TensorProto::FLOAT16: return "float16";
  case onnx::TensorProto::BFLOAT16: return "bfloat16";
  case onnx::TensorProto::INT8: return "int8";
  case onnx::TensorProto::INT16: return "int16";
  case onnx::TensorProto::INT32: return "int32";
  case onnx::TensorProto::INT64: return "int64";
  case onnx::TensorProto::UINT8: return "uint8";
  case onnx::TensorProto::UINT16: return "uint16";
  case onnx::TensorProto::UINT32: return "uint32";
  case onnx::TensorProto::UINT64: return "uint64";
  case onnx::TensorProto::BOOL: return "bool";
  case onnx::TensorProto::STRING: return "string";
  default: return "unknown";
  }
}

nlohmann::json tensor(const onnx::ValueInfoProto& value)
{
  nlohmann::json shape = nullptr;  // unknown rank
  const char* type = "unknown";
  if (value.type().has_tensor_type()) {
    const auto& tensor_type = value.type().tensor_type();
    type = element_type(tensor_type.elem_type());
    if (tensor_type.has_shape()) {
      shape = nlohmann::json::array();
      for (const auto& dim : tensor_type.shape().dim()) {
        if (dim.has_dim_value()) {
          shape.push_back(dim.dim_value());
        } else if (dim.has_dim_param() && !dim.dim_param().empty()) {
          shape.push_back(dim.dim_param());
        } else {
          shape.push_back(nullptr);  // unknown, unnamed
        }
      }
    }
  }
  return {{"name", value.name()}, {"type", type}, {"shape", shape}};
}

} // namespace

nlohmann::json inspect_onnx(const std::filesystem::path& path)
{
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    throw Error(ExitCode::not_found, fmt::format("cannot read {}", path));
  }
  std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  return inspect_onnx_bytes(bytes, fmt::format("{}", path));
}

nlohmann::json inspect_onnx_bytes(const std::string& bytes, const std::string& path)
{
  onnx::ModelProto model;
  if (!model.ParseFromString(bytes)) {
    throw Error(ExitCode::integrity, fmt::format("{} is not an ONNX model (it does not parse as one; truncated?)", path));
  }
  if (!model.has_graph()) {
    throw Error(ExitCode::integrity, fmt::format("{} is not an ONNX model: it has no graph", path));
  }
  try {
    onnx::checker::check_model(model);
  } catch (const std::exception& error) {
    throw Error(ExitCode::integrity, fmt::format("{} fails the ONNX checker: {}", path, error.what()));
  }
  const auto& graph = model.graph();
  std::set<std::string> initializers;
  for (const auto& initializer : graph.initializer()) {
    initializers.insert(initializer.name());
  }
  nlohmann::json inputs = nlohmann::json::array();
  for (const auto& input : graph.input()) {
    if (initializers.count(input.name()) == 0) {  // weights listed as inputs (IR < 4) are not inputs
      inputs.push_back(tensor(input));
    }
  }
  nlohmann::json outputs = nlohmann::json::array();
  for (const auto& output : graph.output()) {
    outputs.push_back(tensor(output));
  }
  nlohmann::json opsets = nlohmann::json::array();
  for (const auto& opset : model.opset_import()) {
    opsets.push_back({{"domain", opset.domain()}, {"version", opset.version()}});
  }
  return {{"format", "onnx"},      {"ir_version", model.ir_version()}, {"producer", model.producer_name()},
          {"opsets", opsets},      {"inputs", inputs},                 {"outputs", outputs}};
}

} // namespace mlops::worker
