#include "mlops/worker/model_repository.hpp"

#include "mlops/core/error.hpp"
#include "mlops/runtime/model_loader.hpp"
#include "mlops/worker/tensor_json.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <fstream>
#include <iterator>

namespace mlops::worker {

namespace {

void validate_name(const std::string& text, const std::string& what, const std::string& given)
{
  bool valid = !text.empty() && text.size() <= 200 && std::all_of(text.begin(), text.end(), [](unsigned char c) {
    return std::isalnum(c) || c == '_' || c == '-' || c == '.';
  });
  if (!valid) {
    throw Error(ExitCode::usage, fmt::format("'{}': the model's {} '{}' may use letters, digits, '_', '-' and '.' "
                                             "(as a URL path segment must)",
                                             given, what, text));
  }
}

nlohmann::json tensor_metadata(const runtime::ValueInfo& info)
{
  nlohmann::json shape = nlohmann::json::array();
  for (const auto& dim : info.shape.value_or(std::vector<runtime::Dimension>{})) {
    shape.push_back(dim.fixed() ? dim.value : -1);
  }
  return {{"name", info.name}, {"datatype", protocol_datatype(info.type)}, {"shape", shape}};
}

// A version "10" is newer than "9": compare numbers as numbers.
bool older(const std::string& a, const std::string& b)
{
  auto numeric = [](const std::string& s) { return std::all_of(s.begin(), s.end(), ::isdigit); };
  if (numeric(a) && numeric(b) && a.size() != b.size()) {
    return a.size() < b.size();
  }
  return a < b;
}

} // namespace

ModelSpec parse_model_spec(const std::string& text)
{
  ModelSpec spec;
  auto equals = text.find('=');
  if (equals == std::string::npos) {
    spec.path = text;
    spec.name = spec.path.stem().string();
  } else {
    auto name = text.substr(0, equals);
    spec.path = text.substr(equals + 1);
    auto at = name.find('@');
    spec.name = name.substr(0, at);
    if (at != std::string::npos) {
      spec.version = name.substr(at + 1);
    }
  }
  if (spec.path.empty()) {
    throw Error(ExitCode::usage, fmt::format("'{}' names no model file; give NAME[@VERSION]=PATH or PATH", text));
  }
  validate_name(spec.name, "name", text);
  validate_name(spec.version, "version", text);
  return spec;
}

std::vector<ModelSpec> read_model_config(const std::filesystem::path& file)
{
  std::ifstream in(file);
  if (!in || std::filesystem::is_directory(file)) {
    throw Error(ExitCode::not_found, fmt::format("cannot read the config file {}", file.string()));
  }
  std::string text(std::istreambuf_iterator<char>(in), {});
  auto document = nlohmann::json::parse(text, nullptr, false);
  const char* expected = "expected {\"models\": [{\"name\": \"...\", \"version\": \"1\", \"path\": \"model.onnx\"}]}";
  if (document.is_discarded() || !document.is_object() || !document.contains("models") ||
      !document["models"].is_array()) {
    throw Error(ExitCode::usage, fmt::format("{} is not a worker config: {}", file.string(), expected));
  }
  std::vector<ModelSpec> specs;
  for (const auto& entry : document["models"]) {
    auto text_field = [&](const char* key) -> std::optional<std::string> {
      if (!entry.is_object() || !entry.contains(key)) {
        return std::nullopt;
      }
      const auto& value = entry[key];
      if (value.is_number_integer()) {
        return std::to_string(value.get<std::int64_t>());
      }
      if (!value.is_string()) {
        throw Error(ExitCode::usage, fmt::format("{}: \"{}\" must be a string; {}", file.string(), key, expected));
      }
      return value.get<std::string>();
    };
    auto name = text_field("name");
    auto path = text_field("path");
    if (!name || !path) {
      throw Error(ExitCode::usage, fmt::format("{}: each model needs a name and a path; {}", file.string(), expected));
    }
    ModelSpec spec{*name, text_field("version").value_or("1"), std::filesystem::path(*path)};
    if (spec.path.is_relative()) {
      spec.path = file.parent_path() / spec.path;
    }
    validate_name(spec.name, "name", file.string());
    validate_name(spec.version, "version", file.string());
    specs.push_back(std::move(spec));
  }
  if (specs.empty()) {
    throw Error(ExitCode::usage, fmt::format("{} lists no models; {}", file.string(), expected));
  }
  return specs;
}

void ModelRepository::load(const ModelSpec& spec, const LoadSettings& settings)
{
  if (find(spec.name, spec.version)) {
    throw Error(ExitCode::usage, fmt::format("{}@{} is given twice", spec.name, spec.version));
  }
  auto model = std::make_unique<ServedModel>();
  model->spec = spec;
  auto device = runtime::make_device(settings.device, runtime::DeviceOptions{settings.threads});
  runtime::LoadOptions load;
  load.operators = device->operators();
  model->executor = std::make_unique<runtime::Executor>(runtime::load_model(spec.path, load), std::move(device));
  model->batcher = std::make_unique<Batcher>(*model->executor, settings.batching);
  model->metrics = std::make_unique<ModelMetrics>(
    fmt::format("model=\"{}\",version=\"{}\"", label_value(spec.name), label_value(spec.version)));
  const auto& graph = model->executor->graph();
  nlohmann::json inputs = nlohmann::json::array();
  nlohmann::json outputs = nlohmann::json::array();
  for (const auto& info : graph.inputs) {
    inputs.push_back(tensor_metadata(info));
  }
  for (const auto& info : graph.outputs) {
    outputs.push_back(tensor_metadata(info));
  }
  model->metadata = {{"name", spec.name},
                     {"versions", {spec.version}},
                     {"platform", "onnx"},
                     {"inputs", inputs},
                     {"outputs", outputs},
                     {"parameters",
                      {{"device", model->executor->device().description()},
                       {"max_batch_size", model->batcher->batchable() ? settings.batching.max_batch : 0}}}};
  m_models.push_back(std::move(model));
}

ServedModel* ModelRepository::find(const std::string& name, const std::string& version)
{
  ServedModel* found = nullptr;
  for (const auto& model : m_models) {
    if (model->spec.name != name) {
      continue;
    }
    if (model->spec.version == version) {
      return model.get();
    }
    if (version.empty() && (!found || older(found->spec.version, model->spec.version))) {
      found = model.get();
    }
  }
  return found;
}

std::string ModelRepository::listing() const
{
  std::vector<std::string> names;
  for (const auto& model : m_models) {
    names.push_back(model->spec.name + "@" + model->spec.version);
  }
  return names.empty() ? std::string("none yet") : fmt::format("{}", fmt::join(names, ", "));
}

} // namespace mlops::worker
