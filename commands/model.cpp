// mlops model register | ls | show | versions | download | alias | tag | archive | restore | rm |
// lineage | gate
#include "context.hpp"
#include "key_value.hpp"
#include "nouns.hpp"

#include "mlops/objects/object_store.hpp"
#include "mlops/registry/model_documents.hpp"
#include "mlops/registry/registry.hpp"
#include "mlops/util/file.hpp"

#include <CLI/CLI.hpp>
#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include <cstdlib>
#include <unistd.h>

namespace mlops::cli {

namespace {

using namespace registry;
namespace fs = std::filesystem;

struct ModelOptions
{
  std::string name;
  std::string ref;
  std::string path;
  std::string artifact;
  std::string run;
  std::string run_path;
  std::vector<std::string> datasets;
  std::string description;
  std::vector<std::string> tags;
  std::string tag;
  std::string alias;
  std::int64_t version = 0;
  std::string out;
  std::string format = "triton";
  std::string against;
  std::string metric;
  bool higher_is_better = false;
  bool lower_is_better = false;
  std::optional<double> min_delta;
  std::optional<double> max_regression;
  bool signature_compatible = false;
  bool dedupe = false;
  bool force = false;
  bool all = false;
};

nlohmann::json version_json(const ModelVersion& version)
{
  auto optional = [](const auto& value) { return value ? nlohmann::json(*value) : nlohmann::json(nullptr); };
  nlohmann::json datasets = nlohmann::json::array();
  for (const auto& link : version.datasets) {
    datasets.push_back({{"dataset", link.dataset}, {"version", link.version}});
  }
  return {{"model", version.model},
          {"version", version.version},
          {"ref", version.ref()},
          {"digest", version.digest.text()},
          {"size", version.size},
          {"file_name", version.file_name},
          {"format", version.format},
          {"signature", version.signature ? *version.signature : nlohmann::json(nullptr)},
          {"description", version.description},
          {"run_id", optional(version.run_id)},
          {"git_commit", optional(version.git_commit)},
          {"git_branch", optional(version.git_branch)},
          {"git_dirty", optional(version.git_dirty)},
          {"same_as", optional(version.same_as)},
          {"datasets", datasets},
          {"tags", version.tags},
          {"aliases", version.aliases},
          {"created_at", version.created_at},
          {"archived_at", optional(version.archived_at)},
          {"deleted_at", optional(version.deleted_at)}};
}

Fields version_fields(const ModelVersion& version)
{
  Fields fields;
  fields.add("version", version.ref()).add("format", version.format).add("file", version.file_name);
  fields.add("digest", version.digest.text()).add("size", fmt::format("{} bytes", version.size));
  if (!version.description.empty()) {
    fields.add("description", version.description);
  }
  if (!version.aliases.empty()) {
    fields.add("aliases", fmt::format("{}", fmt::join(version.aliases, ", ")));
  }
  if (version.signature) {
    for (const auto& input : (*version.signature)["inputs"]) {
      fields.add("input", fmt::format("{} {} {}", input["name"].get<std::string>(), input["type"].get<std::string>(), shape_text(input["shape"], "[?]")));
    }
    for (const auto& output : (*version.signature)["outputs"]) {
      fields.add("output", fmt::format("{} {} {}", output["name"].get<std::string>(), output["type"].get<std::string>(), shape_text(output["shape"], "[?]")));
    }
    for (const auto& opset : (*version.signature)["opsets"]) {
      fields.add("opset", fmt::format("{} {}", opset["domain"].get<std::string>().empty() ? "ai.onnx" : opset["domain"].get<std::string>(),
                                      opset["version"].get<std::int64_t>()));
    }
  }
  if (version.run_id) {
    fields.add("run", *version.run_id);
  }
  for (const auto& link : version.datasets) {
    fields.add("dataset", fmt::format("{}@{}", link.dataset, link.version));
  }
  if (version.git_commit) {
    fields.add("git commit", *version.git_commit + (version.git_dirty.value_or(false) ? " (dirty)" : ""));
  }
  for (const auto& [key, value] : version.tags) {
    fields.add("tag " + key, value);
  }
  if (version.same_as) {
    fields.add("same content as", fmt::format("{}@{}", version.model, *version.same_as));
  }
  fields.add("created", version.created_at);
  if (version.archived_at) {
    fields.add("archived", *version.archived_at);
  }
  return fields;
}

void run_register(Context& context, const ModelOptions& options)
{
  RegisterRequest request;
  request.name = options.name;
  if (!options.path.empty()) {
    request.path = fs::path(options.path);
  }
  if (!options.artifact.empty()) {
    request.artifact = options.artifact;
  }
  if (!options.run.empty()) {
    request.run = options.run;
  }
  if (!options.run_path.empty()) {
    request.run_path = options.run_path;
  }
  request.datasets = options.datasets;
  request.description = options.description;
  for (const auto& text : options.tags) {
    request.tags.push_back(split_key_value(text, "tag"));
  }
  request.dedupe = options.dedupe;
  request.worker = worker_path();
  validate_model_name(request.name);
  Registry registry(context.home(), context.database());
  auto outcome = registry.register_version(request);
  auto document = version_json(outcome.version);
  document["created"] = outcome.created;
  std::string human = outcome.created ? fmt::format("registered {} ({}, {} bytes)\n", outcome.version.ref(), outcome.version.format, outcome.version.size)
                                      : fmt::format("{} already holds this content, nothing registered (--dedupe)\n", outcome.version.ref());
  if (outcome.created && outcome.version.same_as) {
    human += fmt::format("same content as {}@{}\n", outcome.version.model, *outcome.version.same_as);
  }
  context.out().result(document, human);
}

void run_ls(Context& context)
{
  Registry registry(context.home(), context.database());
  Table table({"NAME", "LATEST", "FORMAT", "ALIASES", "CREATED"});
  nlohmann::json list = nlohmann::json::array();
  for (const auto& [name, latest] : registry.models()) {
    list.push_back({{"name", name}, {"latest", latest ? version_json(*latest) : nlohmann::json(nullptr)}});
    table.add_row({name, latest ? std::to_string(latest->version) : "-", latest ? latest->format : "-",
                   latest ? fmt::format("{}", fmt::join(latest->aliases, ",")) : "", latest ? latest->created_at : "-"});
  }
  context.out().result({{"models", list}}, table.empty() ? std::string("no models yet; `mlops model register NAME FILE` adds one\n")
                                                         : table.render(context.out().style().color));
}

void run_versions(Context& context, const ModelOptions& options)
{
  validate_model_name(options.name);
  Registry registry(context.home(), context.database());
  Table table({"VERSION", "FORMAT", "ALIASES", "RUN", "CREATED", "STATE"});
  nlohmann::json list = nlohmann::json::array();
  for (const auto& version : registry.versions(options.name, options.all)) {
    list.push_back(version_json(version));
    table.add_row({std::to_string(version.version), version.format, fmt::format("{}", fmt::join(version.aliases, ",")),
                   version.run_id ? version.run_id->substr(0, 12) : "-", version.created_at,
                   version.deleted_at ? "removed" : version.archived_at ? "archived" : "live"});
  }
  context.out().result({{"model", options.name}, {"versions", list}}, table.render(context.out().style().color));
}

void run_alias_set(Context& context, const ModelOptions& options)
{
  validate_model_name(options.name);
  validate_alias(options.alias);
  Registry registry(context.home(), context.database());
  bool changed = false;
  auto previous = registry.set_alias(options.name, options.alias, options.version, context.command_line, changed);
  std::string human = !changed   ? fmt::format("{}@{} is already {}@{}, nothing to do\n", options.name, options.alias, options.name, options.version)
                      : previous ? fmt::format("moved {}@{}: {} -> {}\n", options.name, options.alias, *previous, options.version)
                                 : fmt::format("{}@{} -> {}\n", options.name, options.alias, options.version);
  context.out().result({{"model", options.name}, {"alias", options.alias}, {"version", options.version}, {"changed", changed},
                        {"previous", previous ? nlohmann::json(*previous) : nlohmann::json(nullptr)}},
                       human);
}

void run_gate(Context& context, const ModelOptions& options)
{
  if (options.higher_is_better && options.lower_is_better) {
    throw Error(ExitCode::usage, "give --higher-is-better or --lower-is-better, not both");
  }
  Registry registry(context.home(), context.database());
  GateRequest request;
  request.metric = options.metric;
  request.higher_is_better = !options.lower_is_better;
  request.min_delta = options.min_delta;
  request.max_regression = options.max_regression;
  request.signature_compatible = options.signature_compatible;
  auto report = registry.gate(parse_model_ref(options.ref), parse_model_ref(options.against), request);
  std::string human = fmt::format("{}\ngate {}\n", fmt::join(report.lines, "\n"), report.passed ? "passed" : "FAILED");
  context.out().result(report.document, human);
  if (!report.passed) {
    context.fail_after_result(Error(ExitCode::gate_failed, fmt::format("{} did not pass the gate against {}", options.ref, options.against)));
  }
}

void run_lineage(Context& context, const ModelOptions& options)
{
  Registry registry(context.home(), context.database());
  auto document = registry.lineage(parse_model_ref(options.ref));
  std::string human = fmt::format("{} ({}, {})\n", document["ref"].get<std::string>(), document["format"].get<std::string>(),
                                  document["digest"].get<std::string>().substr(0, 19));
  if (!document["run"].is_null()) {
    const auto& run = document["run"];
    human += fmt::format("└─ run {} ({}, {}, experiment {})\n", run["id"].get<std::string>(), run["name"].get<std::string>(),
                         run["status"].get<std::string>(), run["experiment"].get<std::string>());
    if (!run["git_commit"].is_null()) {
      human += fmt::format("   ├─ git commit {}\n", run["git_commit"].get<std::string>());
    }
    for (const auto& [key, value] : run["params"].items()) {
      human += fmt::format("   ├─ param {} = {}\n", key, value.get<std::string>());
    }
    for (const auto& [key, value] : run["metrics"].items()) {
      human += fmt::format("   ├─ metric {} = {}\n", key, value.dump());
    }
  } else if (!document["git_commit"].is_null()) {
    human += fmt::format("└─ git commit {}\n", document["git_commit"].get<std::string>());
  }
  for (const auto& dataset : document["datasets"]) {
    human += fmt::format("└─ dataset {}{}\n", dataset["ref"].get<std::string>(),
                         dataset["removed"].get<bool>() ? " (removed)"
                                                        : fmt::format(" ({} files, tree {}{})", dataset["files"].get<std::int64_t>(),
                                                                      dataset["tree"].get<std::string>().substr(0, 19),
                                                                      dataset["git_commit"].is_null() ? "" : ", git " + dataset["git_commit"].get<std::string>().substr(0, 10)));
  }
  context.out().result(document, human);
}

} // namespace

void setup_model(CLI::App& noun, Context& context)
{
  noun.require_subcommand(1);
  auto options = std::make_shared<ModelOptions>();
  const char* ref_help = "NAME@N, NAME@ALIAS, NAME@latest or NAME";

  auto* reg = add_verb(noun, context, "register", "Register a model file as the model's next version",
                       [&context, options] { run_register(context, *options); });
  reg->add_option("NAME", options->name, "Model name")->required();
  reg->add_option("PATH", options->path, "The model file (or --artifact, or --run with --path)");
  reg->add_option("--artifact", options->artifact, "A stored object's digest or prefix")->type_name("DIGEST");
  reg->add_option("--run", options->run, "The run that produced it (lineage; with --path, where the file is)")->type_name("RUN");
  reg->add_option("--path", options->run_path, "The run's artifact to register")->type_name("NAME");
  reg->add_option("--dataset", options->datasets, "Dataset version it was trained on (repeatable)")->type_name("DS@REF");
  reg->add_option("--description", options->description, "What it is");
  reg->add_option("--tag", options->tags, "A tag (repeatable)")->type_name("KEY=VALUE");
  reg->add_flag("--dedupe", options->dedupe, "When the content is registered already, return that version");

  add_verb(noun, context, "ls", "List models and their latest versions", [&context] { run_ls(context); });

  auto* show = add_verb(noun, context, "show", "Show a version: signature, lineage, aliases, tags", [&context, options] {
    Registry registry(context.home(), context.database());
    auto version = registry.resolve(parse_model_ref(options->ref));
    context.out().result(version_json(version), version_fields(version));
  });
  show->add_option("REF", options->ref, ref_help)->required();

  auto* versions = add_verb(noun, context, "versions", "List a model's versions", [&context, options] { run_versions(context, *options); });
  versions->add_option("NAME", options->name, "Model name")->required();
  versions->add_flag("--all", options->all, "Include removed versions");

  auto* download = add_verb(noun, context, "download", "Write a version's file to OUT, verified", [&context, options] {
    Registry registry(context.home(), context.database());
    auto version = registry.resolve(parse_model_ref(options->ref));
    objects::ObjectStore store(context.home(), context.database());
    store.get(store.resolve(version.digest.hex()), options->out, objects::LinkMode::automatic, options->force);
    context.out().result({{"ref", version.ref()}, {"digest", version.digest.text()}, {"out", options->out}},
                         fmt::format("{} -> {}\n", version.ref(), options->out));
  });
  download->add_option("REF", options->ref, ref_help)->required();
  download->add_option("OUT", options->out, "Where to write")->required();
  download->add_flag("--force", options->force, "Replace OUT when it exists");

  auto* alias = noun.add_subcommand("alias", "Aliases that promotions move: set, rm, history");
  alias->require_subcommand(1);
  auto* set = add_verb(*alias, context, "set", "Point ALIAS at version N", [&context, options] { run_alias_set(context, *options); });
  set->add_option("NAME", options->name, "Model name")->required();
  set->add_option("ALIAS", options->alias, "Alias (production, champion...)")->required();
  set->add_option("VERSION", options->version, "Version number")->required();
  auto* rm_alias = add_verb(*alias, context, "rm", "Remove an alias", [&context, options] {
    Registry registry(context.home(), context.database());
    auto removed = registry.remove_alias(options->name, options->alias, context.command_line);
    context.out().result({{"model", options->name}, {"alias", options->alias}, {"version", removed}},
                         fmt::format("removed {}@{} (was {})\n", options->name, options->alias, removed));
  });
  rm_alias->add_option("NAME", options->name, "Model name")->required();
  rm_alias->add_option("ALIAS", options->alias, "Alias")->required();
  auto* history = add_verb(*alias, context, "history", "Every alias move: time, from, to, command", [&context, options] {
    Registry registry(context.home(), context.database());
    Table table({"TIME", "ALIAS", "FROM", "TO", "COMMAND"});
    nlohmann::json list = nlohmann::json::array();
    for (const auto& move : registry.alias_history(options->name)) {
      auto number = [](const std::optional<std::int64_t>& value) { return value ? nlohmann::json(*value) : nlohmann::json(nullptr); };
      list.push_back({{"alias", move.alias}, {"from", number(move.from)}, {"to", number(move.to)}, {"at", move.at}, {"command", move.command}});
      table.add_row({move.at, move.alias, move.from ? std::to_string(*move.from) : "-", move.to ? std::to_string(*move.to) : "-", move.command});
    }
    context.out().result({{"model", options->name}, {"moves", list}},
                         table.empty() ? std::string("no alias was ever set\n") : table.render(context.out().style().color));
  });
  history->add_option("NAME", options->name, "Model name")->required();

  auto* tag = add_verb(noun, context, "tag", "Tag a version (KEY=VALUE)", [&context, options] {
    Registry registry(context.home(), context.database());
    auto [key, value] = split_key_value(options->tag, "tag");
    auto ref = parse_model_ref(options->ref);
    registry.tag(ref, key, value);
    auto version = registry.resolve(ref);
    context.out().result(version_json(version), fmt::format("tagged {}: {}={}\n", version.ref(), key, value));
  });
  tag->add_option("REF", options->ref, ref_help)->required();
  tag->add_option("TAG", options->tag, "KEY=VALUE")->required();

  for (bool archive : {true, false}) {
    auto* verb = add_verb(noun, context, archive ? "archive" : "restore",
                          archive ? "Archive a version (it can take no alias)" : "Restore an archived version", [&context, options, archive] {
                            Registry registry(context.home(), context.database());
                            auto ref = parse_model_ref(options->ref);
                            bool changed = registry.set_archived(ref, archive);
                            auto version = registry.resolve(ref);
                            auto document = version_json(version);
                            document["changed"] = changed;
                            context.out().result(document, changed ? fmt::format("{} {}\n", archive ? "archived" : "restored", version.ref())
                                                                   : fmt::format("{} was already {}, nothing to do\n", version.ref(),
                                                                                 archive ? "archived" : "live"));
                          });
    verb->add_option("REF", options->ref, ref_help)->required();
  }

  auto* rm = add_verb(noun, context, "rm", "Remove a version (refused while an alias points at it)", [&context, options] {
    Registry registry(context.home(), context.database());
    auto removed = registry.remove(parse_model_ref(options->ref));
    context.out().result(version_json(removed), fmt::format("removed {}; `mlops artifact gc` frees its file unless shared\n", removed.ref()));
  });
  rm->add_option("REF", options->ref, "NAME@N")->required();

  auto* lineage = add_verb(noun, context, "lineage", "The version's run (params, metrics, git) and datasets",
                           [&context, options] { run_lineage(context, *options); });
  lineage->add_option("REF", options->ref, ref_help)->required();

  auto* gate = add_verb(noun, context, "gate", "Compare a candidate with a baseline; exit 6 when it fails",
                        [&context, options] { run_gate(context, *options); });
  gate->add_option("CANDIDATE", options->ref, ref_help)->required();
  gate->add_option("--against", options->against, "The baseline version")->required()->type_name("REF");
  gate->add_option("--metric", options->metric, "Metric of the versions' runs to compare");
  gate->add_flag("--higher-is-better", options->higher_is_better, "Larger values win (the default)");
  gate->add_flag("--lower-is-better", options->lower_is_better, "Smaller values win (loss, error)");
  gate->add_option("--min-delta", options->min_delta, "The candidate must improve by at least this much");
  gate->add_option("--max-regression", options->max_regression, "The candidate may be worse by at most this much");
  gate->add_flag("--signature-compatible", options->signature_compatible, "Fail when callers of the baseline cannot call the candidate");

  auto* card = add_verb(noun, context, "card", "A Markdown model card from the registry", [&context, options] {
    Registry registry(context.home(), context.database());
    auto ref = parse_model_ref(options->ref);
    auto text = model_card(registry, ref);
    if (options->out.empty()) {
      context.out().result({{"ref", registry.resolve(ref).ref()}, {"markdown", text}, {"out", nullptr}}, text);
      return;
    }
    util::write_file_atomic(options->out, text);
    context.out().result({{"ref", registry.resolve(ref).ref()}, {"markdown", text}, {"out", options->out}},
                         fmt::format("wrote the model card of {} to {}\n", registry.resolve(ref).ref(), options->out));
  });
  card->add_option("REF", options->ref, ref_help)->required();
  card->add_option("--out", options->out, "Write it to FILE instead of stdout")->type_name("FILE");

  auto* export_verb = add_verb(noun, context, "export", "Export a version as a Triton model repository", [&context, options] {
    if (options->format != "triton") {
      throw Error(ExitCode::usage, fmt::format("--format {} is not known: triton is", options->format));
    }
    Registry registry(context.home(), context.database());
    auto version = registry.resolve(parse_model_ref(options->ref));
    auto written = export_triton(context.home(), context.database(), version, options->out);
    context.out().result({{"ref", version.ref()}, {"format", "triton"}, {"dir", written.string()},
                          {"model_file", (written / std::to_string(version.version) / "model.onnx").string()},
                          {"config", (written / "config.pbtxt").string()}},
                         fmt::format("exported {} to {} (config.pbtxt, {}/model.onnx)\n", version.ref(), written.string(), version.version));
  });
  export_verb->add_option("REF", options->ref, ref_help)->required();
  export_verb->add_option("--format", options->format, "triton (the only one so far)");
  export_verb->add_option("DIR", options->out, "The model repository")->required();
}

} // namespace mlops::cli
