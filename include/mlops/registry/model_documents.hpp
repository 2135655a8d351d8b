#pragma once
// Documents made from the registry: a Markdown model card, and a Triton model repository.

#include "mlops/registry/registry.hpp"

#include <filesystem>
#include <string>

namespace mlops::registry {

// A tensor's shape as people read it: "[batch, 2]" (symbolic dimensions by name, unnamed ones as
// "?"), or `unknown_rank` when the model does not say.
std::string shape_text(const nlohmann::json& shape, const char* unknown_rank);

// A Markdown model card: description, intended use (tag intended_use), signature, metrics of the
// run, training data lineage, git commit, limitations (tag limitations).
std::string model_card(Registry& registry, const ModelRef& ref);

// config.pbtxt for Triton's onnxruntime backend, from an ONNX signature: max_batch_size 0 and
// every dimension listed, symbolic ones as -1.
std::string triton_config(const ModelVersion& version);

// Writes DIR/NAME/config.pbtxt and DIR/NAME/N/model.onnx (verified from the store). Throws
// Error: usage for a version that is not ONNX, conflict when DIR/NAME/N exists.
std::filesystem::path export_triton(const Home& home, store::Database& db, const ModelVersion& version,
                                    const std::filesystem::path& dir);

} // namespace mlops::registry
