#include "mlops/registry/model_documents.hpp"

#include "mlops/core/error.hpp"
#include "mlops/objects/object_store.hpp"
#include "mlops/util/file.hpp"

#include <fmt/format.h>
#include <fmt/std.h>

namespace mlops::registry {

namespace fs = std::filesystem;

namespace {

const char* triton_type(const std::string& type)
{
  static const std::pair<const char*, const char*> types[] = {
    {"float32", "TYPE_FP32"}, {"float64", "TYPE_FP64"}, {"float16", "TYPE_FP16"}, {"bfloat16", "TYPE_BF16"},
    {"int8", "TYPE_INT8"},    {"int16", "TYPE_INT16"},  {"int32", "TYPE_INT32"},  {"int64", "TYPE_INT64"},
    {"uint8", "TYPE_UINT8"},  {"uint16", "TYPE_UINT16"}, {"uint32", "TYPE_UINT32"}, {"uint64", "TYPE_UINT64"},
    {"bool", "TYPE_BOOL"},    {"string", "TYPE_STRING"},
  };
  for (const auto& [ours, theirs] : types) {
    if (type == ours) {
      return theirs;
    }
  }
  throw Error(ExitCode::usage, fmt::format("element type {} has no Triton equivalent", type));
}

std::string tensors(const char* kind, const nlohmann::json& list)
{
  std::string text = fmt::format("{} [\n", kind);
  for (size_t i = 0; i < list.size(); ++i) {
    const auto& tensor = list[i];
    std::vector<std::string> dims;
    if (tensor["shape"].is_array()) {
      for (const auto& dim : tensor["shape"]) {
        dims.push_back(dim.is_number() ? std::to_string(dim.get<std::int64_t>()) : "-1");
      }
    } else {
      dims.push_back("-1");  // unknown rank: Triton needs some shape; -1 takes any one dimension
    }
    text += fmt::format("  {{\n    name: \"{}\"\n    data_type: {}\n    dims: [ {} ]\n  }}{}\n", tensor["name"].get<std::string>(),
                        triton_type(tensor["type"].get<std::string>()), fmt::join(dims, ", "), i + 1 < list.size() ? "," : "");
  }
  return text + "]\n";
}

} // namespace

std::string shape_text(const nlohmann::json& shape, const char* unknown_rank)
{
  if (!shape.is_array()) {
    return unknown_rank;
  }
  std::vector<std::string> dims;
  for (const auto& dim : shape) {
    dims.push_back(dim.is_number() ? std::to_string(dim.get<std::int64_t>()) : dim.is_string() ? dim.get<std::string>() : "?");
  }
  return fmt::format("[{}]", fmt::join(dims, ", "));
}

std::string triton_config(const ModelVersion& version)
{
  if (version.format != "onnx" || !version.signature) {
    throw Error(ExitCode::usage, fmt::format("{} is not an ONNX model (format {}); only ONNX versions export to Triton",
                                             version.ref(), version.format));
  }
  const auto& signature = *version.signature;
  return fmt::format("# {} exported by mlops from {}\nname: \"{}\"\nplatform: \"onnxruntime_onnx\"\nmax_batch_size: 0\n{}{}"
                     "version_policy: {{ specific: {{ versions: [ {} ] }} }}\n",
                     version.ref(), version.digest.text(), version.model, tensors("input", signature["inputs"]),
                     tensors("output", signature["outputs"]), version.version);
}

fs::path export_triton(const Home& home, store::Database& db, const ModelVersion& version, const fs::path& dir)
{
  std::string config = triton_config(version);  // refuses non-ONNX versions before writing anything
  fs::path model_dir = dir / version.model;
  fs::path version_dir = model_dir / std::to_string(version.version);
  if (fs::exists(version_dir)) {
    throw Error(ExitCode::conflict, fmt::format("{} exists already; remove it or choose another DIR", version_dir));
  }
  fs::create_directories(version_dir);
  objects::ObjectStore store(home, db);
  store.get(store.resolve(version.digest.hex()), version_dir / "model.onnx", objects::LinkMode::automatic, false);
  util::write_file_atomic(model_dir / "config.pbtxt", config);
  return model_dir;
}

std::string model_card(Registry& registry, const ModelRef& ref)
{
  auto version = registry.resolve(ref);
  auto lineage = registry.lineage(ref);
  auto tag = [&](const char* key, const char* missing) {
    auto found = version.tags.find(key);
    return found != version.tags.end() ? found->second : std::string(missing);
  };
  std::string card = fmt::format("# {} (version {})\n\n{}\n\n", version.model, version.version,
                                 version.description.empty() ? "*No description was registered.*" : version.description);
  card += "| | |\n| --- | --- |\n";
  card += fmt::format("| Version | `{}`{} |\n", version.ref(), version.aliases.empty() ? "" : fmt::format(" (aliases: {})", fmt::join(version.aliases, ", ")));
  card += fmt::format("| Format | {} |\n| File | `{}` ({} bytes) |\n| Digest | `{}` |\n| Registered | {} |\n", version.format,
                      version.file_name, version.size, version.digest.text(), version.created_at);
  card += fmt::format("| Git commit | {} |\n\n", version.git_commit ? fmt::format("`{}`{}", *version.git_commit, version.git_dirty.value_or(false) ? " (dirty)" : "") : "unknown");
  card += fmt::format("## Intended use\n\n{}\n\n", tag("intended_use", "*Not stated: tag the version `intended_use=...`.*"));
  card += "## Signature\n\n";
  if (version.signature) {
    card += "| | Name | Type | Shape |\n| --- | --- | --- | --- |\n";
    for (const char* kind : {"inputs", "outputs"}) {
      for (const auto& tensor : (*version.signature)[kind]) {
        card += fmt::format("| {} | `{}` | {} | {} |\n", kind[0] == 'i' ? "input" : "output", tensor["name"].get<std::string>(),
                            tensor["type"].get<std::string>(), shape_text(tensor["shape"], "unknown"));
      }
    }
    card += "\n";
  } else {
    card += "*Not an ONNX model: no signature.*\n\n";
  }
  card += "## Metrics\n\n";
  if (!lineage["run"].is_null()) {
    const auto& run = lineage["run"];
    card += fmt::format("From run `{}` ({}, experiment {}).\n\n| Metric | Value |\n| --- | --- |\n", run["id"].get<std::string>(),
                        run["name"].get<std::string>(), run["experiment"].get<std::string>());
    for (const auto& [key, value] : run["metrics"].items()) {
      card += fmt::format("| {} | {} |\n", key, value.dump());
    }
    card += "\n| Param | Value |\n| --- | --- |\n";
    for (const auto& [key, value] : run["params"].items()) {
      card += fmt::format("| {} | {} |\n", key, value.get<std::string>());
    }
    card += "\n";
  } else {
    card += "*Registered without a run: no metrics.*\n\n";
  }
  card += "## Training data\n\n";
  if (lineage["datasets"].empty()) {
    card += "*Not recorded: register with `--dataset NAME@REF`.*\n\n";
  }
  for (const auto& dataset : lineage["datasets"]) {
    card += dataset["removed"].get<bool>()
              ? fmt::format("- `{}` (since removed)\n", dataset["ref"].get<std::string>())
              : fmt::format("- `{}`: {} files, tree `{}`{}\n", dataset["ref"].get<std::string>(), dataset["files"].get<std::int64_t>(),
                            dataset["tree"].get<std::string>(),
                            dataset["git_commit"].is_null() ? "" : fmt::format(", git commit `{}`", dataset["git_commit"].get<std::string>()));
  }
  if (!lineage["datasets"].empty()) {
    card += "\n";
  }
  card += fmt::format("## Limitations\n\n{}\n", tag("limitations", "*Not stated: tag the version `limitations=...`.*"));
  return card;
}

} // namespace mlops::registry
