#pragma once
// Loads ONNX models into the runtime's Graph: parse, ONNX's checker, shape inference, topological
// order (cycles and undefined inputs are errors), external data confined to the model's folder,
// constants folded on the CPU, and every operator checked against the runtime's list.

#include "mlops/runtime/graph.hpp"

#include <filesystem>
#include <memory>
#include <string>

namespace mlops::runtime {

struct LoadOptions
{
  // The largest tensor the model may declare or an initializer may hold.
  std::int64_t max_tensor_bytes = std::int64_t{4} << 30;
  // Operators to accept (the device's list); empty: the CPU's.
  std::vector<std::string> operators;
};

// Throws Error(integrity) for a file that is not a valid model (with what is wrong),
// UnsupportedError listing the unsupported operators and the model's opset, Error(not_found)
// for a missing file.
std::shared_ptr<const Graph> load_model(const std::filesystem::path& path, const LoadOptions& options = {});

// The same for bytes; `name` is what messages call the model, `folder` where external data lives
// (empty: external data is refused).
std::shared_ptr<const Graph> load_model_bytes(const std::string& bytes, const std::string& name,
                                              const std::filesystem::path& folder, const LoadOptions& options = {});

// A tensor stored as a serialized ONNX TensorProto (the backend tests' input_N.pb/output_N.pb),
// its values in raw_data or in the typed fields. Throws Error(integrity) for anything else.
HostTensor read_tensor_file(const std::filesystem::path& path);
// The same for bytes already read; `name` is what messages call them.
HostTensor parse_tensor(const std::string& bytes, const std::string& name);

// The operators the runtime runs on every device, sorted.
const std::vector<std::string>& supported_operators();

} // namespace mlops::runtime
