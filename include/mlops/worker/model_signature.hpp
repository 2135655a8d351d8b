#pragma once
// What a model file says about itself: for ONNX, checked with ONNX's own checker, its inputs and
// outputs (names, element types, shapes with symbolic dimensions) and operator sets. Built into
// the worker only (libonnx and protobuf stay out of the control plane's start-up); `mlops` asks
// `mlops-worker inspect FILE`.

#include <nlohmann/json.hpp>

#include <filesystem>

namespace mlops::worker {

// {"format": "onnx", "ir_version": N, "producer": "...", "opsets": [{"domain", "version"}],
//  "inputs": [{"name", "type": "float32", "shape": ["batch", 2]}], "outputs": [...]}.
// Throws Error(integrity) naming the problem when the file is not a valid ONNX model.
nlohmann::json inspect_onnx(const std::filesystem::path& path);

// The same for a model's bytes; `name` is what messages call it.
nlohmann::json inspect_onnx_bytes(const std::string& bytes, const std::string& name);

} // namespace mlops::worker
