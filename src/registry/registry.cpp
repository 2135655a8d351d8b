#include "mlops/registry/registry.hpp"

#include "mlops/core/error.hpp"
#include "mlops/core/git_state.hpp"
#include "mlops/data/datasets.hpp"
#include "mlops/objects/object_store.hpp"
#include "mlops/store/database.hpp"
#include "mlops/store/statement.hpp"
#include "mlops/store/transaction.hpp"
#include "mlops/tracking/tracking.hpp"
#include "mlops/util/child_process.hpp"
#include "mlops/util/time.hpp"

#include <fmt/format.h>
#include <fmt/std.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <cmath>
#include <regex>

namespace mlops::registry {

namespace fs = std::filesystem;

namespace {

bool word_char(char c)
{
  return std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '-';
}

// `mlops-worker inspect FILE`: the signature, or nullopt when the file is not ONNX. A file named
// *.onnx must be ONNX: then the worker's complaint is the error.
std::optional<nlohmann::json> inspect(const fs::path& worker, const fs::path& file, const std::string& name)
{
  auto run = util::run_capturing({worker.string(), "inspect", file.string()});
  if (run.exit_code == 0) {
    return nlohmann::json::parse(run.out);
  }
  std::string problem = run.err;
  while (!problem.empty() && problem.back() == '\n') {
    problem.pop_back();
  }
  // Say it of the user's file, not of the stored object the worker read.
  for (std::string stored = fmt::format("\"{}\"", file.string()); problem.find(stored) != std::string::npos;) {
    problem.replace(problem.find(stored), stored.size(), name);
  }
  if (problem.starts_with("mlops-worker: error: ")) {
    problem.erase(0, std::string_view("mlops-worker: error: ").size());
  }
  if (name.ends_with(".onnx")) {
    throw Error(ExitCode::integrity, fmt::format("{} is named like an ONNX model but is not a valid one ({}); nothing was "
                                                 "registered", name, problem.empty() ? "inspection failed" : problem));
  }
  spdlog::info("{} is not ONNX: registered with format unknown", name);
  return std::nullopt;
}

} // namespace

std::string ModelRef::text() const
{
  if (number) {
    return fmt::format("{}@{}", name, *number);
  }
  return name + "@" + alias.value_or("latest");
}

void validate_model_name(const std::string& name)
{
  data::validate_name(name, "model name");
}

void validate_alias(const std::string& alias)
{
  static const std::regex version_like("[vV][0-9]+");
  if (alias.empty() || alias.size() > 255 || !std::all_of(alias.begin(), alias.end(), word_char)) {
    throw Error(ExitCode::usage, fmt::format("alias \"{}\" is not valid: use 1 to 255 letters, digits, '_' and '-'", alias));
  }
  if (alias == "latest" || std::regex_match(alias, version_like) ||
      std::all_of(alias.begin(), alias.end(), [](char c) { return std::isdigit(static_cast<unsigned char>(c)); })) {
    throw Error(ExitCode::usage, fmt::format("alias \"{}\" is reserved: NAME@latest, NAME@N and NAME@vN are versions "
                                             "(MLflow's rule); choose a name like production or champion",
                                             alias));
  }
}

ModelRef parse_model_ref(const std::string& text)
{
  auto at = text.find('@');
  ModelRef ref;
  ref.name = text.substr(0, at);
  validate_model_name(ref.name);
  if (at == std::string::npos) {
    return ref;
  }
  std::string version = text.substr(at + 1);
  if (version == "latest") {
    return ref;
  }
  if (!version.empty() && std::all_of(version.begin(), version.end(), [](char c) { return std::isdigit(static_cast<unsigned char>(c)); })) {
    if (version[0] == '0' || version.size() > 18) {
      throw Error(ExitCode::usage, fmt::format("\"{}\" is not a version number: versions count from 1", version));
    }
    ref.number = std::stoll(version);
    return ref;
  }
  validate_alias(version);
  ref.alias = version;
  return ref;
}

Registry::Registry(const Home& home, store::Database& db) : m_home(home), m_db(db) {}

void Registry::require_model(const std::string& name)
{
  if (!m_db.prepare("SELECT 1 FROM models WHERE name = ?").bind(1, name).step()) {
    throw Error(ExitCode::not_found, fmt::format("no model named \"{}\"; `mlops model ls` lists them", name));
  }
}

ModelVersion Registry::read_version(const std::string& name, std::int64_t number)
{
  auto row = m_db.prepare("SELECT digest, size, file_name, format, signature, description, run_id, git_commit, git_branch, "
                          "git_dirty, same_as, created_at, archived_at, deleted_at FROM model_versions WHERE model = ? AND version = ?");
  if (!row.bind_all(name, number).step()) {
    throw Error(ExitCode::not_found, fmt::format("model \"{}\" has no version {}; `mlops model versions {}` lists them", name, number, name));
  }
  ModelVersion version;
  version.model = name;
  version.version = number;
  version.digest = objects::Digest::parse(row.column_text(0)).value_or(objects::Digest{});
  version.size = row.column_int64(1);
  version.file_name = row.column_text(2);
  version.format = row.column_text(3);
  if (auto signature = row.column_optional_text(4)) {
    version.signature = nlohmann::json::parse(*signature);
  }
  version.description = row.column_text(5);
  version.run_id = row.column_optional_text(6);
  version.git_commit = row.column_optional_text(7);
  version.git_branch = row.column_optional_text(8);
  if (auto dirty = row.column_optional_int64(9)) {
    version.git_dirty = *dirty != 0;
  }
  version.same_as = row.column_optional_int64(10);
  version.created_at = row.column_text(11);
  version.archived_at = row.column_optional_text(12);
  version.deleted_at = row.column_optional_text(13);
  auto datasets = m_db.prepare("SELECT dataset, dataset_version FROM model_version_datasets WHERE model = ? AND version = ? ORDER BY dataset");
  for (datasets.bind_all(name, number); datasets.step();) {
    version.datasets.push_back({datasets.column_text(0), datasets.column_int64(1)});
  }
  auto tags = m_db.prepare("SELECT key, value FROM model_version_tags WHERE model = ? AND version = ?");
  for (tags.bind_all(name, number); tags.step();) {
    version.tags[tags.column_text(0)] = tags.column_text(1);
  }
  auto aliases = m_db.prepare("SELECT alias FROM model_aliases WHERE model = ? AND version = ? ORDER BY alias");
  for (aliases.bind_all(name, number); aliases.step();) {
    version.aliases.push_back(aliases.column_text(0));
  }
  return version;
}

ModelVersion Registry::resolve(const ModelRef& ref)
{
  require_model(ref.name);
  std::int64_t number = 0;
  if (ref.number) {
    number = *ref.number;
  } else if (ref.alias) {
    auto row = m_db.prepare("SELECT version FROM model_aliases WHERE model = ? AND alias = ?");
    if (!row.bind_all(ref.name, *ref.alias).step()) {
      throw Error(ExitCode::not_found, fmt::format("model \"{}\" has no alias \"{}\"; `mlops model show {}` lists its aliases",
                                                   ref.name, *ref.alias, ref.name));
    }
    number = row.column_int64(0);
  } else {
    auto row = m_db.prepare("SELECT max(version) FROM model_versions WHERE model = ? AND deleted_at IS NULL");
    if (!row.bind(1, ref.name).step() || row.column_is_null(0)) {
      throw Error(ExitCode::not_found, fmt::format("model \"{}\" has no versions left", ref.name));
    }
    number = row.column_int64(0);
  }
  auto version = read_version(ref.name, number);
  if (version.deleted_at) {
    throw Error(ExitCode::not_found, fmt::format("{} was removed ({})", version.ref(), *version.deleted_at));
  }
  return version;
}

RegisterOutcome Registry::register_version(const RegisterRequest& request)
{
  validate_model_name(request.name);
  for (const auto& [key, value] : request.tags) {
    tracking::validate_key(key, "tag");
    tracking::validate_tag_value(key, value);
  }
  int sources = (request.path ? 1 : 0) + (request.artifact ? 1 : 0) + (request.run_path ? 1 : 0);
  if (sources != 1) {
    throw Error(ExitCode::usage, "give exactly one of PATH, --artifact DIGEST, or --run RUN --path NAME");
  }
  objects::ObjectStore store(m_home, m_db);
  tracking::Tracking tracking(m_home, m_db);
  std::optional<std::string> run_id;
  if (request.run) {
    run_id = tracking.resolve(*request.run);
  }
  // The datasets, resolved before anything is stored.
  std::vector<DatasetLink> datasets;
  data::Datasets catalog(m_home, m_db);
  for (const auto& text : request.datasets) {
    auto version = catalog.resolve(data::parse_dataset_ref(text));
    datasets.push_back({version.dataset, version.version});
  }
  // The file: stored first (or found in the store), then inspected from the store.
  std::string file_name;
  objects::StoredObject object;
  if (request.path) {
    if (!fs::exists(*request.path)) {
      throw Error(ExitCode::not_found, fmt::format("{} does not exist", *request.path));
    }
    if (!fs::is_regular_file(*request.path)) {
      throw Error(ExitCode::usage, fmt::format("{} is not a file: a model version is one file (an ONNX model, or any artifact)", *request.path));
    }
    file_name = request.path->filename().string();
    objects::AddOptions options;
    options.ref_kind.clear();  // pinned below, by the version
    auto added = store.add({*request.path}, options);
    object = store.resolve(added.targets.at(0).digest.hex());
  } else if (request.artifact) {
    object = store.resolve(*request.artifact);
    file_name = "model";
  } else {
    if (!run_id) {
      throw Error(ExitCode::usage, "--path names a run's artifact: give --run RUN too");
    }
    auto artifact = tracking.artifact(*run_id, *request.run_path);
    object = store.resolve(artifact.digest);
    file_name = artifact.name;
  }
  if (object.kind != "blob") {
    throw Error(ExitCode::usage, fmt::format("{} is a directory tree: a model version is one file", file_name));
  }
  auto signature = inspect(request.worker, store.object_path(object.digest), file_name);

  std::optional<GitState> git;
  if (run_id) {
    auto run = tracking.run(*run_id);
    git = run.git;
  } else {
    try {
      git = git_state_of(fs::current_path());
    } catch (const Error& error) {
      spdlog::warn("no git lineage recorded: {}", error.what());
    }
  }

  RegisterOutcome outcome;
  std::int64_t number = 0;
  store::write_transaction(m_db, [&] {
    outcome = RegisterOutcome{};
    std::string now = util::now_iso8601();
    m_db.prepare("INSERT INTO models (name, created_at) VALUES (?, ?) ON CONFLICT (name) DO NOTHING").bind_all(request.name, now).run();
    auto same = m_db.prepare("SELECT max(version) FROM model_versions WHERE model = ? AND digest = ? AND deleted_at IS NULL");
    same.bind_all(request.name, object.digest.hex()).step();
    std::optional<std::int64_t> same_as;
    if (!same.column_is_null(0)) {
      same_as = same.column_int64(0);
    }
    if (same_as && request.dedupe) {
      number = *same_as;
      return;
    }
    auto next = m_db.prepare("SELECT coalesce(max(version), 0) + 1 FROM model_versions WHERE model = ?");
    next.bind(1, request.name).step();
    number = next.column_int64(0);
    m_db.prepare("INSERT INTO model_versions (model, version, digest, size, file_name, format, signature, description, run_id, "
                 "git_commit, git_branch, git_dirty, same_as, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)")
      .bind_all(request.name, number, object.digest.hex(), object.size, file_name, signature ? "onnx" : "unknown",
                signature ? std::optional(signature->dump()) : std::nullopt, request.description, run_id,
                git ? git->commit : std::nullopt, git ? git->branch : std::nullopt,
                git ? std::optional<std::int64_t>(git->dirty) : std::nullopt, same_as, now)
      .run();
    for (const auto& link : datasets) {
      m_db.prepare("INSERT OR IGNORE INTO model_version_datasets (model, version, dataset, dataset_version) VALUES (?, ?, ?, ?)")
        .bind_all(request.name, number, link.dataset, link.version)
        .run();
    }
    for (const auto& [key, value] : request.tags) {
      m_db.prepare("INSERT OR REPLACE INTO model_version_tags (model, version, key, value) VALUES (?, ?, ?, ?)")
        .bind_all(request.name, number, key, value)
        .run();
    }
    m_db.prepare("INSERT INTO object_refs (digest, kind, owner, created_at) VALUES (?, 'model', ?, ?)")
      .bind_all(object.digest.hex(), fmt::format("{}@{}", request.name, number), now)
      .run();
    outcome.created = true;
  });
  outcome.version = read_version(request.name, number);
  return outcome;
}

std::vector<std::pair<std::string, std::optional<ModelVersion>>> Registry::models()
{
  std::vector<std::string> names;
  for (auto rows = m_db.prepare("SELECT name FROM models ORDER BY name"); rows.step();) {
    names.push_back(rows.column_text(0));
  }
  std::vector<std::pair<std::string, std::optional<ModelVersion>>> list;
  for (const auto& name : names) {
    std::optional<ModelVersion> latest;
    try {
      latest = resolve(ModelRef{name, std::nullopt, std::nullopt});
    } catch (const Error&) {
    }
    list.emplace_back(name, std::move(latest));
  }
  return list;
}

std::vector<ModelVersion> Registry::versions(const std::string& name, bool include_deleted)
{
  require_model(name);
  std::vector<std::int64_t> numbers;
  auto rows = m_db.prepare(std::string("SELECT version FROM model_versions WHERE model = ?") +
                           (include_deleted ? "" : " AND deleted_at IS NULL") + " ORDER BY version DESC");
  for (rows.bind(1, name); rows.step();) {
    numbers.push_back(rows.column_int64(0));
  }
  std::vector<ModelVersion> list;
  for (auto number : numbers) {
    list.push_back(read_version(name, number));
  }
  return list;
}

std::optional<std::int64_t> Registry::set_alias(const std::string& name, const std::string& alias, std::int64_t number,
                                                const std::string& command, bool& changed)
{
  std::optional<std::int64_t> previous;
  store::write_transaction(m_db, [&] { previous = set_alias_in_transaction(name, alias, number, command, changed); });
  return previous;
}

std::optional<std::int64_t> Registry::set_alias_in_transaction(const std::string& name, const std::string& alias,
                                                               std::int64_t number, const std::string& command,
                                                               bool& changed)
{
  validate_alias(alias);
  std::optional<std::int64_t> previous;
  changed = false;
  auto version = resolve(ModelRef{name, number, std::nullopt});
  if (version.archived_at) {
    throw Error(ExitCode::conflict, fmt::format("{} is archived and cannot take an alias; `mlops model restore {}` first",
                                                version.ref(), version.ref()));
  }
  auto current = m_db.prepare("SELECT version FROM model_aliases WHERE model = ? AND alias = ?");
  if (current.bind_all(name, alias).step()) {
    previous = current.column_int64(0);
    if (*previous == number) {
      return previous;
    }
  }
  std::string now = util::now_iso8601();
  m_db.prepare("INSERT OR REPLACE INTO model_aliases (model, alias, version, updated_at) VALUES (?, ?, ?, ?)")
    .bind_all(name, alias, number, now)
    .run();
  m_db.prepare("INSERT INTO model_alias_history (model, alias, from_version, to_version, at, command) VALUES (?, ?, ?, ?, ?, ?)")
    .bind_all(name, alias, previous, number, now, command)
    .run();
  changed = true;
  return previous;
}

std::int64_t Registry::remove_alias(const std::string& name, const std::string& alias, const std::string& command)
{
  validate_alias(alias);
  std::int64_t removed = 0;
  store::write_transaction(m_db, [&] {
    require_model(name);
    auto current = m_db.prepare("SELECT version FROM model_aliases WHERE model = ? AND alias = ?");
    if (!current.bind_all(name, alias).step()) {
      throw Error(ExitCode::not_found, fmt::format("model \"{}\" has no alias \"{}\"", name, alias));
    }
    removed = current.column_int64(0);
    std::string now = util::now_iso8601();
    m_db.prepare("DELETE FROM model_aliases WHERE model = ? AND alias = ?").bind_all(name, alias).run();
    m_db.prepare("INSERT INTO model_alias_history (model, alias, from_version, to_version, at, command) VALUES (?, ?, ?, NULL, ?, ?)")
      .bind_all(name, alias, removed, now, command)
      .run();
  });
  return removed;
}

std::vector<AliasMove> Registry::alias_history(const std::string& name)
{
  require_model(name);
  std::vector<AliasMove> moves;
  auto rows = m_db.prepare("SELECT alias, from_version, to_version, at, command FROM model_alias_history WHERE model = ? ORDER BY id");
  for (rows.bind(1, name); rows.step();) {
    moves.push_back({rows.column_text(0), rows.column_optional_int64(1), rows.column_optional_int64(2), rows.column_text(3), rows.column_text(4)});
  }
  return moves;
}

void Registry::tag(const ModelRef& ref, const std::string& key, const std::string& value)
{
  tracking::validate_key(key, "tag");
  tracking::validate_tag_value(key, value);
  store::write_transaction(m_db, [&] {
    auto version = resolve(ref);
    m_db.prepare("INSERT OR REPLACE INTO model_version_tags (model, version, key, value) VALUES (?, ?, ?, ?)")
      .bind_all(version.model, version.version, key, value)
      .run();
  });
}

bool Registry::set_archived(const ModelRef& ref, bool archived)
{
  bool changed = false;
  store::write_transaction(m_db, [&] {
    changed = false;
    auto version = resolve(ref);
    if (version.archived_at.has_value() == archived) {
      return;
    }
    if (archived && !version.aliases.empty()) {
      throw Error(ExitCode::conflict, fmt::format("{} is aliased as {}; move the alias first (an archived version takes no alias)",
                                                  version.ref(), fmt::join(version.aliases, ", ")));
    }
    m_db.prepare("UPDATE model_versions SET archived_at = ? WHERE model = ? AND version = ?")
      .bind_all(archived ? std::optional(util::now_iso8601()) : std::nullopt, version.model, version.version)
      .run();
    changed = true;
  });
  return changed;
}

ModelVersion Registry::remove(const ModelRef& ref)
{
  ModelVersion removed;
  store::write_transaction(m_db, [&] {
    removed = resolve(ref);
    if (!removed.aliases.empty()) {
      throw Error(ExitCode::conflict, fmt::format("{} is aliased as {}; move or remove the alias first", removed.ref(),
                                                  fmt::join(removed.aliases, ", ")));
    }
    std::string now = util::now_iso8601();
    m_db.prepare("UPDATE model_versions SET deleted_at = ? WHERE model = ? AND version = ?").bind_all(now, removed.model, removed.version).run();
    m_db.prepare("DELETE FROM object_refs WHERE kind = 'model' AND owner = ?").bind(1, removed.ref()).run();
    removed.deleted_at = now;
  });
  return removed;
}

std::vector<std::string> signature_problems(const nlohmann::json& baseline, const nlohmann::json& candidate)
{
  std::vector<std::string> problems;
  const nlohmann::json none = nlohmann::json::array();
  const auto& old_inputs = baseline.contains("inputs") ? baseline["inputs"] : none;
  const auto& new_inputs = candidate.contains("inputs") ? candidate["inputs"] : none;
  const auto& old_outputs = baseline.contains("outputs") ? baseline["outputs"] : none;
  const auto& new_outputs = candidate.contains("outputs") ? candidate["outputs"] : none;
  auto find = [](const nlohmann::json& list, const std::string& name) -> const nlohmann::json* {
    for (const auto& item : list) {
      if (item.value("name", "") == name) {
        return &item;
      }
    }
    return nullptr;
  };
  for (const auto& input : old_inputs) {
    std::string name = input.value("name", "");
    const auto* theirs = find(new_inputs, name);
    if (!theirs) {
      problems.push_back(fmt::format("input {} is gone", name));
      continue;
    }
    if ((*theirs)["type"] != input["type"]) {
      problems.push_back(fmt::format("input {} changed type: {} -> {}", name, input["type"].dump(), (*theirs)["type"].dump()));
    }
    const auto& old_shape = input["shape"];
    const auto& new_shape = (*theirs)["shape"];
    if (old_shape.is_array() && new_shape.is_array()) {
      if (old_shape.size() != new_shape.size()) {
        problems.push_back(fmt::format("input {} changed rank: {} -> {}", name, old_shape.dump(), new_shape.dump()));
        continue;
      }
      for (size_t i = 0; i < old_shape.size(); ++i) {
        // A caller may send anything the old dimension allowed: the new one must allow it too.
        bool accepts = !new_shape[i].is_number() || (old_shape[i].is_number() && old_shape[i] == new_shape[i]);
        if (!accepts) {
          problems.push_back(fmt::format("input {} dimension {} narrowed: {} -> {}", name, i, old_shape[i].dump(), new_shape[i].dump()));
        }
      }
    }
  }
  for (const auto& input : new_inputs) {
    if (!find(old_inputs, input.value("name", ""))) {
      problems.push_back(fmt::format("input {} is new: callers of the baseline do not send it", input.value("name", "")));
    }
  }
  for (const auto& output : old_outputs) {
    std::string name = output.value("name", "");
    const auto* theirs = find(new_outputs, name);
    if (!theirs) {
      problems.push_back(fmt::format("output {} is gone", name));
    } else if ((*theirs)["type"] != output["type"]) {
      problems.push_back(fmt::format("output {} changed type: {} -> {}", name, output["type"].dump(), (*theirs)["type"].dump()));
    }
  }
  return problems;
}

GateReport Registry::gate(const ModelRef& candidate_ref, const ModelRef& baseline_ref, const GateRequest& request)
{
  if (request.min_delta && request.max_regression) {
    throw Error(ExitCode::usage, "give --min-delta or --max-regression, not both");
  }
  auto candidate = resolve(candidate_ref);
  auto baseline = resolve(baseline_ref);
  GateReport report;
  report.document = {{"candidate", candidate.ref()}, {"baseline", baseline.ref()}};
  tracking::Tracking tracking(m_home, m_db);
  auto metric_of = [&](const ModelVersion& version) {
    if (!version.run_id) {
      throw Error(ExitCode::not_found, fmt::format("{} was registered without a run, so it has no metrics to gate on; "
                                                   "register with --run RUN",
                                                   version.ref()));
    }
    auto run = tracking.run(*version.run_id);
    auto found = run.latest_metrics.find(request.metric);
    if (found == run.latest_metrics.end() || !found->second.value) {
      throw Error(ExitCode::not_found, fmt::format("the run of {} ({}) has no value for metric {}", version.ref(), run.id, request.metric));
    }
    return *found->second.value;
  };
  if (!request.metric.empty()) {
    double ours = metric_of(candidate);
    double theirs = metric_of(baseline);
    double improvement = request.higher_is_better ? ours - theirs : theirs - ours;
    double needed = request.min_delta ? *request.min_delta : request.max_regression ? -*request.max_regression : 0.0;
    bool passed = improvement >= needed - 1e-12 * std::max(1.0, std::abs(needed));
    report.passed = report.passed && passed;
    report.lines.push_back(fmt::format("{} {}: {} = {:.6g} against {} = {:.6g} ({}, improvement {:+.6g} needs >= {:+.6g}): {}",
                                       passed ? "PASS" : "FAIL", request.metric, candidate.ref(), ours, baseline.ref(), theirs,
                                       request.higher_is_better ? "higher is better" : "lower is better", improvement, needed,
                                       passed ? "ok" : "not enough"));
    report.document["metric"] = {{"name", request.metric}, {"candidate", ours}, {"baseline", theirs},
                                 {"higher_is_better", request.higher_is_better}, {"improvement", improvement},
                                 {"required", needed}, {"passed", passed}};
  }
  if (request.signature_compatible) {
    if (!candidate.signature || !baseline.signature) {
      throw Error(ExitCode::not_found, "--signature-compatible needs ONNX versions with signatures on both sides");
    }
    auto problems = signature_problems(*baseline.signature, *candidate.signature);
    report.passed = report.passed && problems.empty();
    report.lines.push_back(problems.empty() ? std::string("PASS signature: callers of the baseline can call the candidate")
                                            : fmt::format("FAIL signature: {}", fmt::join(problems, "; ")));
    report.document["signature"] = {{"compatible", problems.empty()}, {"problems", problems}};
  }
  if (request.metric.empty() && !request.signature_compatible) {
    throw Error(ExitCode::usage, "nothing to check: give --metric M and/or --signature-compatible");
  }
  report.document["passed"] = report.passed;
  return report;
}

nlohmann::json Registry::lineage(const ModelRef& ref)
{
  auto version = resolve(ref);
  nlohmann::json document = {{"model", version.model}, {"version", version.version}, {"ref", version.ref()},
                             {"digest", version.digest.text()}, {"format", version.format},
                             {"git_commit", version.git_commit ? nlohmann::json(*version.git_commit) : nlohmann::json(nullptr)}};
  document["run"] = nullptr;
  if (version.run_id) {
    tracking::Tracking tracking(m_home, m_db);
    auto run = tracking.run(*version.run_id);
    nlohmann::json metrics = nlohmann::json::object();
    for (const auto& [key, point] : run.latest_metrics) {
      metrics[key] = point.value ? nlohmann::json(*point.value) : nlohmann::json("NaN");
    }
    document["run"] = {{"id", run.id}, {"name", run.name}, {"experiment", run.experiment}, {"status", run.status},
                       {"params", run.params}, {"metrics", metrics},
                       {"git_commit", run.git && run.git->commit ? nlohmann::json(*run.git->commit) : nlohmann::json(nullptr)}};
  }
  nlohmann::json datasets = nlohmann::json::array();
  data::Datasets catalog(m_home, m_db);
  for (const auto& link : version.datasets) {
    nlohmann::json entry = {{"dataset", link.dataset}, {"version", link.version}, {"ref", fmt::format("{}@{}", link.dataset, link.version)}};
    try {
      auto found = catalog.resolve(data::DatasetRef{link.dataset, link.version});
      entry["tree"] = found.tree.text();
      entry["files"] = found.files;
      entry["git_commit"] = found.git && found.git->commit ? nlohmann::json(*found.git->commit) : nlohmann::json(nullptr);
      entry["removed"] = false;
    } catch (const Error&) {
      entry["tree"] = nullptr;
      entry["files"] = nullptr;
      entry["git_commit"] = nullptr;
      entry["removed"] = true;  // the dataset version was removed since
    }
    datasets.push_back(entry);
  }
  document["datasets"] = datasets;
  return document;
}

} // namespace mlops::registry
