#pragma once
// The models one worker serves: each version loaded once, with its executor, its batcher, its
// metrics and its Open Inference Protocol metadata. Given on the command line as
// NAME[@VERSION]=PATH (or a bare PATH: the file's stem, version 1), or in a config file:
//   {"models": [{"name": "churn", "version": "3", "path": "churn.onnx"}, ...]}
// with paths relative to the file.

#include "mlops/runtime/executor.hpp"
#include "mlops/worker/batcher.hpp"
#include "mlops/worker/metrics.hpp"

#include <nlohmann/json.hpp>

#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace mlops::worker {

struct ModelSpec
{
  std::string name;
  std::string version = "1";
  std::filesystem::path path;
};

// Throw Error(usage) saying what form is expected.
ModelSpec parse_model_spec(const std::string& text);
std::vector<ModelSpec> read_model_config(const std::filesystem::path& file);

struct ServedModel
{
  ModelSpec spec;
  std::unique_ptr<runtime::Executor> executor;
  std::unique_ptr<ModelMetrics> metrics;
  std::unique_ptr<Batcher> batcher;  // last: its runner finishes with the executor and metrics alive
  nlohmann::json metadata;  // GET /v2/models/NAME/versions/VERSION
};

struct LoadSettings
{
  std::string device = "auto";
  unsigned threads = 0;
  BatchOptions batching;
};

class ModelRepository
{
public:
  // Loads one model version; throws Error naming the model when it cannot be loaded.
  void load(const ModelSpec& spec, const LoadSettings& settings);

  // The version asked for, or the newest when `version` is empty; nullptr when not served.
  ServedModel* find(const std::string& name, const std::string& version);
  const std::vector<std::unique_ptr<ServedModel>>& models() const { return m_models; }
  // "churn@1, churn@2": for messages about unknown models.
  std::string listing() const;

private:
  std::vector<std::unique_ptr<ServedModel>> m_models;
};

} // namespace mlops::worker
