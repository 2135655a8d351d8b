#include "mlops/tracking/tracking.hpp"

#include "mlops/core/error.hpp"
#include "mlops/objects/object_store.hpp"
#include "mlops/store/database.hpp"
#include "mlops/store/git_columns.hpp"
#include "mlops/store/statement.hpp"
#include "mlops/store/transaction.hpp"
#include "mlops/tracking/run_filter.hpp"
#include "mlops/util/time.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <chrono>
#include <random>
#include <unistd.h>
#include <tuple>
#include <unordered_map>

namespace mlops::tracking {

namespace {

constexpr size_t max_key_length = 250;
constexpr size_t max_param_value = 6000;
constexpr size_t max_tag_value = 8000;

std::string new_run_id()
{
  std::random_device random;
  std::string id;
  for (int i = 0; i < 4; ++i) {
    id += fmt::format("{:08x}", random());
  }
  return id;
}

constexpr const char* run_columns =
  "r.id, r.experiment_id, e.name, r.name, r.status, r.parent_id, r.start_time, r.end_time, r.command, r.host, "
  "r.exit_code, r.git_commit, r.git_branch, r.git_dirty, r.git_path, r.git_remote, r.deleted_at";

Run read_run_row(const store::Statement& row)
{
  Run run;
  run.id = row.column_text(0);
  run.experiment_id = row.column_int64(1);
  run.experiment = row.column_text(2);
  run.name = row.column_text(3);
  run.status = row.column_text(4);
  run.parent_id = row.column_optional_text(5);
  run.start_time = row.column_int64(6);
  run.end_time = row.column_optional_int64(7);
  run.command = row.column_optional_text(8);
  run.host = row.column_optional_text(9);
  run.exit_code = row.column_optional_int64(10);
  run.git = store::read_git_columns(row, 11);
  run.deleted_at = row.column_optional_text(16);
  return run;
}

void bind_value(store::Statement& statement, int index, const SqlValue& value)
{
  std::visit([&](const auto& v) { statement.bind(index, v); }, value);
}

// MLflow's order of "latest": highest step, then timestamp, then value (NaN lowest).
auto latest_order(const MetricPoint& point)
{
  return std::make_tuple(point.step, point.timestamp, point.value.has_value(), point.value.value_or(0));
}

} // namespace

std::int64_t now_ms()
{
  return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch()).count();
}

void validate_key(const std::string& key, const char* what)
{
  if (key.empty()) {
    throw Error(ExitCode::usage, fmt::format("a {} key is empty", what));
  }
  if (key.size() > max_key_length) {
    throw Error(ExitCode::usage, fmt::format("{} key \"{}...\" is {} characters long, the limit is {}", what,
                                             key.substr(0, 20), key.size(), max_key_length));
  }
  bool allowed = std::all_of(key.begin(), key.end(), [](unsigned char c) {
    return std::isalnum(c) || c == '_' || c == '-' || c == '.' || c == ' ' || c == '/';
  });
  bool path_like_escape = key.front() == '/' || key == ".." || key.starts_with("../") || key.ends_with("/..") ||
                          key.find("/../") != std::string::npos;
  if (!allowed || path_like_escape) {
    std::string shown;
    for (unsigned char c : key.substr(0, 60)) {
      shown += c < 0x20 || c >= 0x7f ? fmt::format("\\x{:02x}", c) : std::string(1, static_cast<char>(c));
    }
    throw Error(ExitCode::usage, fmt::format("{} key \"{}\" is not valid: keys may contain only letters, digits, '_', "
                                             "'-', '.', ' ' and '/', may not start with '/' or contain \"..\" segments",
                                             what, shown));
  }
}

// Characters, as MLflow counts them: UTF-8 bytes that do not continue a character.
size_t characters(const std::string& text)
{
  return static_cast<size_t>(std::count_if(text.begin(), text.end(), [](char c) { return (static_cast<unsigned char>(c) & 0xC0) != 0x80; }));
}

void validate_param_value(const std::string& key, const std::string& value)
{
  if (value.size() > max_param_value && characters(value) > max_param_value) {
    throw Error(ExitCode::usage, fmt::format("the value of param \"{}\" is {} characters long, the limit is {}", key,
                                             characters(value), max_param_value));
  }
}

void validate_tag_value(const std::string& key, const std::string& value)
{
  if (value.size() > max_tag_value && characters(value) > max_tag_value) {
    throw Error(ExitCode::usage, fmt::format("the value of tag \"{}\" is {} characters long, the limit is {}", key,
                                             characters(value), max_tag_value));
  }
}

void validate_experiment_name(const std::string& name)
{
  if (name.empty() || name.size() > 500) {
    throw Error(ExitCode::usage, "an experiment name must have 1 to 500 characters");
  }
  if (std::any_of(name.begin(), name.end(), [](unsigned char c) { return c < 0x20 || c == 0x7f; })) {
    throw Error(ExitCode::usage, "an experiment name may not contain control characters");
  }
}

Tracking::Tracking(const Home& home, store::Database& db) : m_home(home), m_db(db) {}

std::pair<Experiment, bool> Tracking::create_experiment(const std::string& name)
{
  validate_experiment_name(name);
  bool created = false;
  store::write_transaction(m_db, [&] {
    auto insert = m_db.prepare("INSERT INTO experiments (name, created_at) VALUES (?, ?) ON CONFLICT (name) DO NOTHING");
    insert.bind_all(name, util::now_iso8601()).run();
    created = m_db.changes() > 0;
  });
  auto found = experiment(name);
  if (found.deleted_at) {
    throw Error(ExitCode::conflict, fmt::format("experiment \"{}\" was removed ({}); its runs keep the name, choose another",
                                                name, *found.deleted_at));
  }
  return {found, created};
}

std::vector<Experiment> Tracking::experiments(bool include_deleted)
{
  std::vector<Experiment> list;
  auto rows = m_db.prepare(std::string("SELECT e.id, e.name, e.created_at, e.deleted_at, (SELECT count(*) FROM runs r "
                                       "WHERE r.experiment_id = e.id AND r.deleted_at IS NULL) FROM experiments e") +
                           (include_deleted ? "" : " WHERE e.deleted_at IS NULL") + " ORDER BY e.name");
  while (rows.step()) {
    list.push_back({rows.column_int64(0), rows.column_text(1), rows.column_text(2), rows.column_optional_text(3), rows.column_int64(4)});
  }
  return list;
}

Experiment Tracking::experiment(const std::string& name)
{
  auto row = m_db.prepare("SELECT e.id, e.name, e.created_at, e.deleted_at, (SELECT count(*) FROM runs r WHERE "
                          "r.experiment_id = e.id AND r.deleted_at IS NULL) FROM experiments e WHERE e.name = ?");
  if (!row.bind(1, name).step()) {
    throw Error(ExitCode::not_found, fmt::format("no experiment named \"{}\"; `mlops exp ls` lists them", name));
  }
  return {row.column_int64(0), row.column_text(1), row.column_text(2), row.column_optional_text(3), row.column_int64(4)};
}

Experiment Tracking::remove_experiment(const std::string& name)
{
  store::write_transaction(m_db, [&] {
    experiment(name);
    m_db.prepare("UPDATE experiments SET deleted_at = ? WHERE name = ? AND deleted_at IS NULL")
      .bind_all(util::now_iso8601(), name)
      .run();
  });
  return experiment(name);
}

std::string Tracking::resolve(const std::string& text)
{
  bool hex = !text.empty() && std::all_of(text.begin(), text.end(), [](char c) { return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'); });
  if (!hex || text.size() < 8 || text.size() > 32) {
    throw Error(ExitCode::usage, fmt::format("\"{}\" is not a run id: give its 32 hex digits or a unique prefix of 8 or more", text));
  }
  auto rows = m_db.prepare("SELECT id FROM runs WHERE id >= ? AND id < ? ORDER BY id LIMIT 2");
  rows.bind_all(text, text + "g");
  std::vector<std::string> found;
  while (rows.step()) {
    found.push_back(rows.column_text(0));
  }
  if (found.empty()) {
    throw Error(ExitCode::not_found, fmt::format("no run {}; `mlops run ls` lists them", text));
  }
  if (found.size() > 1) {
    throw Error(ExitCode::usage, fmt::format("run id prefix {} is ambiguous ({}, {}...): give more digits", text, found[0], found[1]));
  }
  return found[0];
}

void Tracking::require_live(const std::string& id)
{
  auto row = m_db.prepare("SELECT deleted_at FROM runs WHERE id = ?");
  if (!row.bind(1, id).step()) {
    throw Error(ExitCode::not_found, fmt::format("no run {}; `mlops run ls` lists them", id));
  }
  if (!row.column_is_null(0)) {
    throw Error(ExitCode::conflict, fmt::format("run {} was removed; `mlops run restore {}` brings it back", id, id));
  }
}

Run Tracking::start(const StartRequest& request)
{
  validate_experiment_name(request.experiment);
  for (const auto& [key, value] : request.initial.params) {
    validate_key(key, "param");
    validate_param_value(key, value);
  }
  for (const auto& [key, value] : request.initial.tags) {
    validate_key(key, "tag");
    validate_tag_value(key, value);
  }
  std::string id = new_run_id();
  store::write_transaction(m_db, [&] {
    m_db.prepare("INSERT INTO experiments (name, created_at) VALUES (?, ?) ON CONFLICT (name) DO NOTHING")
      .bind_all(request.experiment, util::now_iso8601())
      .run();
    auto experiment_row = m_db.prepare("SELECT id, deleted_at FROM experiments WHERE name = ?");
    experiment_row.bind(1, request.experiment).step();
    if (!experiment_row.column_is_null(1)) {
      throw Error(ExitCode::conflict, fmt::format("experiment \"{}\" was removed; choose another name", request.experiment));
    }
    std::int64_t experiment_id = experiment_row.column_int64(0);
    if (request.parent) {
      require_live(*request.parent);
    }
    char host[256] = {};
    ::gethostname(host, sizeof host - 1);
    auto insert = m_db.prepare("INSERT INTO runs (id, experiment_id, name, status, parent_id, start_time, command, host, "
                               "git_commit, git_branch, git_dirty, git_path, git_remote) "
                               "VALUES (?, ?, ?, 'running', ?, ?, ?, ?, ?, ?, ?, ?, ?)");
    insert.bind_all(id, experiment_id, request.name.empty() ? "run-" + id.substr(0, 8) : request.name, request.parent,
                    now_ms(), request.command, std::string(host));
    store::bind_git_columns(insert, 8, request.git).run();
    log_in_transaction(id, request.initial);
  });
  return run(id);
}

bool Tracking::end(const std::string& id, const std::string& status, std::optional<std::int64_t> exit_code)
{
  if (status != "finished" && status != "failed" && status != "killed") {
    throw Error(ExitCode::usage, fmt::format("\"{}\" is not a final status: use finished, failed or killed", status));
  }
  bool changed = false;
  store::write_transaction(m_db, [&] {
    require_live(id);
    auto row = m_db.prepare("SELECT status FROM runs WHERE id = ?");
    row.bind(1, id).step();
    std::string current = row.column_text(0);
    if (current == status) {
      return;
    }
    if (current != "running") {
      throw Error(ExitCode::conflict, fmt::format("run {} already ended as {}", id, current));
    }
    m_db.prepare("UPDATE runs SET status = ?, end_time = ?, exit_code = ? WHERE id = ?")
      .bind_all(status, now_ms(), exit_code, id)
      .run();
    changed = true;
  });
  return changed;
}

void Tracking::log(const std::string& id, const LogBatch& batch)
{
  store::write_transaction(m_db, [&] { log_in_transaction(id, batch); });
}

void Tracking::log_chunks(const std::string& id, const std::function<const LogBatch*(size_t)>& chunk)
{
  store::write_transaction(m_db, [&] {
    for (size_t i = 0; const LogBatch* batch = chunk(i); ++i) {
      log_in_transaction(id, *batch);
    }
  });
}

void Tracking::log_in_transaction(const std::string& id, const LogBatch& batch)
{
  for (const auto& point : batch.metrics) {
    validate_key(point.key, "metric");
  }
  for (const auto& [key, value] : batch.params) {
    validate_key(key, "param");
    validate_param_value(key, value);
  }
  for (const auto& [key, value] : batch.tags) {
    validate_key(key, "tag");
    validate_tag_value(key, value);
  }
  // The latest point of each key in this batch: one upsert per key, not per point.
  std::unordered_map<std::string, const MetricPoint*> latest;
  for (const auto& point : batch.metrics) {
    auto& best = latest[point.key];
    if (!best || latest_order(*best) < latest_order(point)) {
      best = &point;
    }
  }
  {
    require_live(id);
    for (const auto& [key, value] : batch.params) {
      auto existing = m_db.prepare("SELECT value FROM run_params WHERE run_id = ? AND key = ?");
      if (existing.bind_all(id, key).step()) {
        if (existing.column_text(0) != value) {
          throw Error(ExitCode::conflict,
                      fmt::format("param \"{}\" of run {} is already \"{}\"; params are written once (log the new value "
                                  "in a new run, or as a tag)",
                                  key, id, existing.column_text(0)));
        }
        continue;
      }
      m_db.prepare("INSERT INTO run_params (run_id, key, value) VALUES (?, ?, ?)").bind_all(id, key, value).run();
    }
    for (const auto& [key, value] : batch.tags) {
      m_db.prepare("INSERT INTO run_tags (run_id, key, value) VALUES (?, ?, ?) ON CONFLICT (run_id, key) DO UPDATE SET "
                   "value = excluded.value")
        .bind_all(id, key, value)
        .run();
    }
    auto seq = m_db.prepare("SELECT seq FROM runs WHERE id = ?");
    seq.bind(1, id).step();
    std::int64_t run = seq.column_int64(0);
    auto insert = m_db.prepare("INSERT INTO run_metrics (run, key, step, timestamp, value) VALUES (?, ?, ?, ?, ?)");
    for (const auto& point : batch.metrics) {
      insert.bind(1, run).bind(2, point.key).bind(3, point.step).bind(4, point.timestamp).bind(5, point.value);
      insert.run();
      insert.reset();
    }
    for (const auto& [key, point] : latest) {
      // Replaces the stored latest point only when this one comes later in MLflow's order.
      m_db.prepare("INSERT INTO run_latest_metrics (run_id, key, step, timestamp, value) VALUES (?, ?, ?, ?, ?) "
                   "ON CONFLICT (run_id, key) DO UPDATE SET step = excluded.step, timestamp = excluded.timestamp, "
                   "value = excluded.value WHERE (excluded.step, excluded.timestamp, excluded.value IS NOT NULL, "
                   "coalesce(excluded.value, 0)) > (step, timestamp, value IS NOT NULL, coalesce(value, 0))")
        .bind_all(id, key, point->step, point->timestamp, point->value)
        .run();
    }
  }
}

Run Tracking::read_run(const std::string& id)
{
  auto row = m_db.prepare(fmt::format("SELECT {} FROM runs r JOIN experiments e ON e.id = r.experiment_id WHERE r.id = ?", run_columns));
  if (!row.bind(1, id).step()) {
    throw Error(ExitCode::not_found, fmt::format("no run {}; `mlops run ls` lists them", id));
  }
  return read_run_row(row);
}

Run Tracking::run(const std::string& id)
{
  Run run = read_run(id);
  auto params = m_db.prepare("SELECT key, value FROM run_params WHERE run_id = ? ORDER BY key");
  for (params.bind(1, id); params.step();) {
    run.params[params.column_text(0)] = params.column_text(1);
  }
  auto tags = m_db.prepare("SELECT key, value FROM run_tags WHERE run_id = ? ORDER BY key");
  for (tags.bind(1, id); tags.step();) {
    run.tags[tags.column_text(0)] = tags.column_text(1);
  }
  auto metrics = m_db.prepare("SELECT key, step, timestamp, value FROM run_latest_metrics WHERE run_id = ? ORDER BY key");
  for (metrics.bind(1, id); metrics.step();) {
    MetricPoint point{metrics.column_text(0), std::nullopt, metrics.column_int64(1), metrics.column_int64(2)};
    if (!metrics.column_is_null(3)) {
      point.value = metrics.column_double(3);
    }
    run.latest_metrics[point.key] = point;
  }
  auto artifacts = m_db.prepare("SELECT name, digest, kind, size, created_at FROM run_artifacts WHERE run_id = ? ORDER BY name");
  for (artifacts.bind(1, id); artifacts.step();) {
    run.artifacts.push_back({artifacts.column_text(0), artifacts.column_text(1), artifacts.column_text(2),
                             artifacts.column_int64(3), artifacts.column_text(4)});
  }
  auto children = m_db.prepare("SELECT id FROM runs WHERE parent_id = ? AND deleted_at IS NULL ORDER BY start_time");
  for (children.bind(1, id); children.step();) {
    run.children.push_back(children.column_text(0));
  }
  return run;
}

std::vector<Run> Tracking::search(const SearchRequest& request)
{
  auto filter = compile_filter(request.filter);
  auto order = compile_order_by(request.order_by);
  std::vector<std::int64_t> experiment_ids;
  for (const auto& name : request.experiments) {
    experiment_ids.push_back(experiment(name).id);
  }
  std::string sql = fmt::format("SELECT {} FROM runs r JOIN experiments e ON e.id = r.experiment_id WHERE ({})", run_columns, filter.sql);
  if (!request.include_deleted) {
    sql += " AND r.deleted_at IS NULL";
  }
  if (!experiment_ids.empty()) {
    sql += " AND r.experiment_id IN (";
    for (size_t i = 0; i < experiment_ids.size(); ++i) {
      sql += i == 0 ? "?" : ", ?";
    }
    sql += ")";
  }
  sql += " ORDER BY " + (order.sql.empty() ? std::string() : order.sql + ", ") + "r.start_time DESC, r.id LIMIT ?";
  auto rows = m_db.prepare(sql);
  int index = 0;
  for (const auto& value : filter.values) {
    bind_value(rows, ++index, value);
  }
  for (auto id : experiment_ids) {
    rows.bind(++index, id);
  }
  for (const auto& value : order.values) {
    bind_value(rows, ++index, value);
  }
  rows.bind(++index, request.limit);
  std::vector<Run> runs;
  while (rows.step()) {
    runs.push_back(read_run_row(rows));
  }
  return runs;
}

std::vector<MetricPoint> Tracking::metric_history(const std::string& id, const std::string& key)
{
  read_run(id);
  std::vector<MetricPoint> points;
  auto rows = m_db.prepare("SELECT m.step, m.timestamp, m.value FROM run_metrics m JOIN runs r ON r.seq = m.run "
                           "WHERE r.id = ? AND m.key = ? ORDER BY m.step, m.timestamp, m.rowid");
  for (rows.bind_all(id, key); rows.step();) {
    MetricPoint point{key, std::nullopt, rows.column_int64(0), rows.column_int64(1)};
    if (!rows.column_is_null(2)) {
      point.value = rows.column_double(2);
    }
    points.push_back(point);
  }
  if (points.empty()) {
    throw Error(ExitCode::not_found, fmt::format("run {} has no metric \"{}\"; `mlops run show {}` lists its metrics", id, key, id));
  }
  return points;
}

bool Tracking::set_deleted(const std::string& id, bool deleted)
{
  bool changed = false;
  store::write_transaction(m_db, [&] {
    Run run = read_run(id);
    if (run.deleted_at.has_value() == deleted) {
      return;
    }
    m_db.prepare("UPDATE runs SET deleted_at = ? WHERE id = ?")
      .bind_all(deleted ? std::optional(util::now_iso8601()) : std::nullopt, id)
      .run();
    changed = true;
  });
  return changed;
}

std::vector<RunArtifact> Tracking::add_artifacts(const std::string& id, const std::vector<std::filesystem::path>& paths)
{
  require_live(id);
  std::vector<RunArtifact> added;
  objects::ObjectStore store(m_home, m_db);
  objects::AddOptions options;
  options.ref_kind.clear();  // pinned below as the run's, under its own name
  options.in_transaction = [&](const objects::AddResult& result) {
    added.clear();
    std::string now = util::now_iso8601();
    for (const auto& target : result.targets) {
      std::string name = std::filesystem::path(target.path).lexically_normal().filename().string();
      if (name.empty() || name == "." || name == "..") {
        name = std::filesystem::absolute(target.path).lexically_normal().parent_path().filename().string();
      }
      RunArtifact artifact{name, target.digest.hex(), target.is_tree ? "tree" : "blob", target.size, now};
      m_db.prepare("DELETE FROM object_refs WHERE kind = 'run' AND owner = ?").bind(1, id + "/" + name).run();
      m_db.prepare("INSERT OR REPLACE INTO run_artifacts (run_id, name, digest, kind, size, created_at) VALUES (?, ?, ?, ?, ?, ?)")
        .bind_all(id, artifact.name, artifact.digest, artifact.kind, artifact.size, now)
        .run();
      m_db.prepare("INSERT INTO object_refs (digest, kind, owner, created_at) VALUES (?, 'run', ?, ?)")
        .bind_all(artifact.digest, id + "/" + name, now)
        .run();
      added.push_back(artifact);
    }
  };
  store.add(paths, options);
  return added;
}

RunArtifact Tracking::artifact(const std::string& id, const std::string& name)
{
  read_run(id);
  auto row = m_db.prepare("SELECT name, digest, kind, size, created_at FROM run_artifacts WHERE run_id = ? AND name = ?");
  if (!row.bind_all(id, name).step()) {
    throw Error(ExitCode::not_found, fmt::format("run {} has no artifact \"{}\"; `mlops run show {}` lists them", id, name, id));
  }
  return {row.column_text(0), row.column_text(1), row.column_text(2), row.column_int64(3), row.column_text(4)};
}

} // namespace mlops::tracking
