#pragma once
// Experiment tracking: experiments, runs and what runs log, with MLflow's rules.
//   params   written once: the same value again is fine, another value is a conflict (exit 4)
//   metrics  appended (key, value, step, timestamp); search uses each key's latest point
//   tags     overwritten
// Keys: 1-250 characters of letters, digits, '_', '-', '.', ' ' and '/', not starting with '/'
// and without ".." segments (MLflow's rule). Param values up to 6000 characters, tag values up
// to 8000. Every batch is one transaction, so a killed logger loses at most its own batch.

#include "mlops/core/git_state.hpp"
#include "mlops/home/home.hpp"

#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <vector>

namespace mlops::tracking {

struct Experiment
{
  std::int64_t id = 0;
  std::string name;
  std::string created_at;
  std::optional<std::string> deleted_at;
  std::int64_t runs = 0;  // live runs
};

struct MetricPoint
{
  std::string key;
  std::optional<double> value;  // nullopt: NaN
  std::int64_t step = 0;
  std::int64_t timestamp = 0;  // ms since the epoch
};

struct LogBatch
{
  std::vector<MetricPoint> metrics;
  std::vector<std::pair<std::string, std::string>> params;
  std::vector<std::pair<std::string, std::string>> tags;
  bool empty() const { return metrics.empty() && params.empty() && tags.empty(); }
};

struct RunArtifact
{
  std::string name;
  std::string digest;  // 64 hex
  std::string kind;    // blob or tree
  std::int64_t size = 0;
  std::string created_at;
};

struct Run
{
  std::string id;
  std::int64_t experiment_id = 0;
  std::string experiment;
  std::string name;
  std::string status;  // running, finished, failed, killed
  std::optional<std::string> parent_id;
  std::int64_t start_time = 0;
  std::optional<std::int64_t> end_time;
  std::optional<std::string> command;  // JSON array
  std::optional<std::string> host;
  std::optional<std::int64_t> exit_code;
  std::optional<GitState> git;
  std::optional<std::string> deleted_at;
  // Filled by run(id), not by search:
  std::map<std::string, std::string> params;
  std::map<std::string, std::string> tags;
  std::map<std::string, MetricPoint> latest_metrics;
  std::vector<RunArtifact> artifacts;
  std::vector<std::string> children;
};

struct StartRequest
{
  std::string experiment;
  std::string name;  // generated when empty
  std::optional<std::string> parent;
  LogBatch initial;  // params and tags given at start
  std::optional<std::string> command;
  std::optional<GitState> git;
};

struct SearchRequest
{
  std::vector<std::string> experiments;  // empty: all
  std::string filter;
  std::string order_by;
  std::int64_t limit = 1000;
  bool include_deleted = false;
};

// Checks a key or value against MLflow's limits; throws Error(usage) saying which rule.
void validate_key(const std::string& key, const char* what);
void validate_param_value(const std::string& key, const std::string& value);
void validate_tag_value(const std::string& key, const std::string& value);
void validate_experiment_name(const std::string& name);

std::int64_t now_ms();

class Tracking
{
public:
  Tracking(const Home& home, store::Database& db);

  // Returns the experiment and whether this call created it.
  std::pair<Experiment, bool> create_experiment(const std::string& name);
  std::vector<Experiment> experiments(bool include_deleted);
  Experiment experiment(const std::string& name);  // Error(not_found)
  Experiment remove_experiment(const std::string& name);

  // Creates the run (and its experiment, when new); returns the run.
  Run start(const StartRequest& request);
  // Sets the status and end time; a run that has ended already is a conflict (exit 4) unless
  // the status is the same (then nothing changes and false is returned).
  bool end(const std::string& id, const std::string& status, std::optional<std::int64_t> exit_code = std::nullopt);
  // One transaction. Throws Error: conflict for a param given another value, usage for bad keys.
  void log(const std::string& id, const LogBatch& batch);
  // Logs batches 0, 1, 2... from `chunk` (which may block until batch i is ready, and returns
  // nullptr after the last) in one transaction: all of them or none. A retried transaction asks
  // for batch 0 again, so `chunk` must keep what it handed out.
  void log_chunks(const std::string& id, const std::function<const LogBatch*(size_t)>& chunk);

  // A full run id, from the id or a unique prefix of 8+ hex digits. Error(usage/not_found).
  std::string resolve(const std::string& text);
  Run run(const std::string& id);
  std::vector<Run> search(const SearchRequest& request);
  std::vector<MetricPoint> metric_history(const std::string& id, const std::string& key);
  // Marks a run deleted (`rm`) or live again (`restore`); returns false when it already was.
  bool set_deleted(const std::string& id, bool deleted);

  // Stores files or directories in the object store and lists them on the run under their base
  // names (an existing name is replaced). Returns the artifacts added.
  std::vector<RunArtifact> add_artifacts(const std::string& id, const std::vector<std::filesystem::path>& paths);
  RunArtifact artifact(const std::string& id, const std::string& name);  // Error(not_found)

private:
  void log_in_transaction(const std::string& id, const LogBatch& batch);
  Run read_run(const std::string& id);
  void require_live(const std::string& id);

  const Home& m_home;
  store::Database& m_db;
};

} // namespace mlops::tracking
