// mlops run start | end | log | exec | ls | show | compare | metrics | rm | restore | artifact
#include "context.hpp"
#include "key_value.hpp"
#include "lineage_json.hpp"
#include "nouns.hpp"

#include "mlops/core/git_state.hpp"
#include "mlops/objects/object_store.hpp"
#include "mlops/tracking/log_file.hpp"
#include "mlops/tracking/tracking.hpp"
#include "mlops/util/child_process.hpp"

#include <CLI/CLI.hpp>
#include <fmt/format.h>
#include <nlohmann/json.hpp>
#include <spdlog/spdlog.h>

#include <cmath>
#include <cstdlib>
#include <fstream>
#include <iostream>
#include <set>

namespace mlops::cli {

namespace {

using namespace tracking;

struct RunOptions
{
  std::string run;  // RUN argument; MLOPS_RUN_ID when empty
  std::vector<std::string> runs;
  std::string experiment;
  std::vector<std::string> experiments;
  std::string name;
  std::string parent;
  std::vector<std::string> params;
  std::vector<std::string> tags;
  std::vector<std::string> metrics;
  std::optional<std::int64_t> step;
  std::optional<std::int64_t> time;
  std::string file;
  std::string status = "finished";
  std::string filter;
  std::string order_by;
  std::int64_t limit = 1000;
  std::string key;
  std::string format = "csv";
  std::vector<std::string> command;
  std::vector<std::string> paths;
  std::string artifact;
  std::string out;
  bool shell = false;
  bool all = false;
  bool force = false;
};

std::optional<double> parse_metric_value(const std::string& key, const std::string& text)
{
  std::string lowered;
  for (char c : text) {
    lowered += static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  }
  if (lowered == "nan") {
    return std::nullopt;
  }
  char* end = nullptr;
  errno = 0;
  double value = std::strtod(text.c_str(), &end);
  if (text.empty() || end != text.c_str() + text.size() || (errno == ERANGE && std::isfinite(value))) {
    throw Error(ExitCode::usage, fmt::format("metric {} has value \"{}\", which is not a number", key, text));
  }
  return value;
}

// The run a verb works on: its argument, else MLOPS_RUN_ID.
std::string target_run(Tracking& tracking, const std::string& given)
{
  std::string text = given;
  if (text.empty()) {
    const char* from_environment = std::getenv("MLOPS_RUN_ID");
    if (!from_environment || !*from_environment) {
      throw Error(ExitCode::usage, "no run given: pass RUN, or set MLOPS_RUN_ID (`eval \"$(mlops run start --exp NAME --shell)\"`)");
    }
    text = from_environment;
  }
  return tracking.resolve(text);
}

std::optional<GitState> lineage()
{
  try {
    return git_state_of(std::filesystem::current_path());
  } catch (const Error& error) {
    spdlog::warn("no git lineage recorded: {}", error.what());
    return std::nullopt;
  }
}

LogBatch batch_from(const RunOptions& options)
{
  LogBatch batch;
  std::int64_t timestamp = options.time.value_or(now_ms());
  for (const auto& text : options.metrics) {
    auto [key, value] = split_key_value(text, "--metric");
    batch.metrics.push_back({key, parse_metric_value(key, value), options.step.value_or(0), timestamp});
  }
  for (const auto& text : options.params) {
    batch.params.push_back(split_key_value(text, "--param"));
  }
  for (const auto& text : options.tags) {
    batch.tags.push_back(split_key_value(text, "--tag"));
  }
  return batch;
}

nlohmann::json value_json(const std::optional<double>& value)
{
  if (!value) {
    return "NaN";  // JSON has no NaN
  }
  if (std::isinf(*value)) {
    return *value > 0 ? "Infinity" : "-Infinity";
  }
  return *value;
}

std::string value_text(const std::optional<double>& value)
{
  return value ? fmt::format("{}", *value) : "nan";
}

nlohmann::json run_json(const Run& run, bool details)
{
  auto optional = [](const auto& value) { return value ? nlohmann::json(*value) : nlohmann::json(nullptr); };
  nlohmann::json document = {{"id", run.id},
                             {"name", run.name},
                             {"experiment", run.experiment},
                             {"status", run.status},
                             {"parent_id", optional(run.parent_id)},
                             {"start_time", run.start_time},
                             {"end_time", optional(run.end_time)},
                             {"command", run.command ? nlohmann::json::parse(*run.command) : nlohmann::json(nullptr)},
                             {"host", optional(run.host)},
                             {"exit_code", optional(run.exit_code)},
                             {"git", git_json(run.git)},
                             {"deleted_at", optional(run.deleted_at)}};
  if (details) {
    nlohmann::json metrics = nlohmann::json::object();
    for (const auto& [key, point] : run.latest_metrics) {
      metrics[key] = {{"value", value_json(point.value)}, {"step", point.step}, {"timestamp", point.timestamp}};
    }
    nlohmann::json artifacts = nlohmann::json::array();
    for (const auto& artifact : run.artifacts) {
      artifacts.push_back({{"name", artifact.name}, {"digest", "sha256:" + artifact.digest}, {"kind", artifact.kind},
                           {"size", artifact.size}, {"created_at", artifact.created_at}});
    }
    document["params"] = run.params;
    document["tags"] = run.tags;
    document["metrics"] = metrics;
    document["artifacts"] = artifacts;
    document["children"] = run.children;
  }
  return document;
}

std::string time_text(std::int64_t ms)
{
  std::time_t seconds = static_cast<std::time_t>(ms / 1000);
  std::tm utc = {};
  gmtime_r(&seconds, &utc);
  return fmt::format("{:04}-{:02}-{:02} {:02}:{:02}:{:02}", utc.tm_year + 1900, utc.tm_mon + 1, utc.tm_mday, utc.tm_hour,
                     utc.tm_min, utc.tm_sec);
}

std::string duration_text(const Run& run)
{
  if (!run.end_time) {
    return "-";
  }
  return fmt::format("{:.1f}s", static_cast<double>(*run.end_time - run.start_time) / 1000);
}

// What `run start` and `run exec` share: experiment, name, parent, params, tags, git lineage.
StartRequest start_request(Tracking& tracking, const RunOptions& options)
{
  StartRequest request;
  request.experiment = options.experiment;
  request.name = options.name;
  if (!options.parent.empty()) {
    request.parent = tracking.resolve(options.parent);
  }
  request.initial = batch_from(options);
  request.git = lineage();
  return request;
}

void run_start(Context& context, const RunOptions& options)
{
  Tracking tracking(context.home(), context.database());
  auto run = tracking.start(start_request(tracking, options));
  context.out().result(run_json(run, true), options.shell ? fmt::format("export MLOPS_RUN_ID={}\n", run.id) : run.id + "\n");
}

void run_end(Context& context, const RunOptions& options)
{
  Tracking tracking(context.home(), context.database());
  auto id = target_run(tracking, options.run);
  bool changed = tracking.end(id, options.status);
  auto run = tracking.run(id);
  auto document = run_json(run, false);
  document["changed"] = changed;
  context.out().result(document, changed ? fmt::format("run {} {}\n", id, run.status)
                                         : fmt::format("run {} had already ended as {}, nothing to do\n", id, run.status));
}

void run_log(Context& context, const RunOptions& options)
{
  Tracking tracking(context.home(), context.database());
  auto id = target_run(tracking, options.run);
  auto batch = batch_from(options);
  LogCounts counts{batch.metrics.size(), batch.params.size(), batch.tags.size()};
  if (!options.file.empty()) {
    if (!batch.empty()) {
      throw Error(ExitCode::usage, "give either --file or --metric/--param/--tag, not both");
    }
    if (options.file == "-") {
      counts = log_lines(tracking, id, std::cin, "standard input", false);
    } else {
      std::ifstream in(options.file, std::ios::binary);
      if (!in) {
        throw Error(std::filesystem::exists(options.file) ? ExitCode::failure : ExitCode::not_found,
                    fmt::format("cannot read {}", options.file));
      }
      counts = log_lines(tracking, id, in, options.file, std::filesystem::is_regular_file(options.file));
    }
  } else if (batch.empty()) {
    throw Error(ExitCode::usage, "nothing to log: give --metric, --param, --tag or --file");
  } else {
    tracking.log(id, batch);
  }
  context.out().result({{"run", id}, {"metrics", counts.metrics}, {"params", counts.params}, {"tags", counts.tags}},
                       fmt::format("logged {} metric(s), {} param(s), {} tag(s) to run {}\n", counts.metrics, counts.params,
                                   counts.tags, id));
}

void run_exec(Context& context, const RunOptions& options)
{
  if (options.command.empty()) {
    throw Error(ExitCode::usage, "no command: write it after --, as in `mlops run exec --exp NAME -- python train.py`");
  }
  Tracking tracking(context.home(), context.database());
  auto request = start_request(tracking, options);
  request.command = nlohmann::json(options.command).dump();
  auto run = tracking.start(request);
  spdlog::info("run {} started: {}", run.id, fmt::join(options.command, " "));
  util::ChildExit exit;
  try {
    exit = util::run_child(options.command, {{"MLOPS_RUN_ID", run.id}, {"MLOPS_HOME", context.home().dir().string()}});
  } catch (const Error& error) {
    tracking.end(run.id, "failed", 127);
    throw;
  }
  std::string status = exit.exit_code == 0 ? "finished" : (exit.signal != 0 || exit.received != 0) ? "killed" : "failed";
  if (tracking.run(run.id).status == "running") {
    tracking.end(run.id, status, exit.exit_code);
  } else {
    spdlog::info("the command ended run {} itself; its status stays", run.id);  // `mlops run end` from inside
  }
  auto ended = tracking.run(run.id);
  status = ended.status;
  context.out().result(run_json(ended, true), fmt::format("run {} {} (exit code {}, {})\n", run.id, status, exit.exit_code, duration_text(ended)));
  context.exit_with(exit.exit_code);
}

void run_ls(Context& context, const RunOptions& options)
{
  if (options.limit < 1) {
    throw Error(ExitCode::usage, "--limit must be 1 or more");
  }
  Tracking tracking(context.home(), context.database());
  SearchRequest request{options.experiments, options.filter, options.order_by, options.limit, options.all};
  auto runs = tracking.search(request);
  Table table({"ID", "NAME", "EXPERIMENT", "STATUS", "STARTED", "DURATION"});
  nlohmann::json list = nlohmann::json::array();
  for (const auto& found : runs) {
    list.push_back(run_json(tracking.run(found.id), true));
    table.add_row({found.id.substr(0, 12), found.name, found.experiment, found.status + (found.deleted_at ? " (removed)" : ""),
                   time_text(found.start_time), duration_text(found)});
  }
  context.out().result({{"runs", list}}, table.empty() ? std::string("no runs match\n") : table.render(context.out().style().color));
}

void run_show(Context& context, const RunOptions& options)
{
  Tracking tracking(context.home(), context.database());
  auto run = tracking.run(target_run(tracking, options.run));
  Fields fields;
  fields.add("id", run.id).add("name", run.name).add("experiment", run.experiment).add("status", run.status);
  fields.add("started", time_text(run.start_time)).add("duration", duration_text(run));
  if (run.parent_id) {
    fields.add("parent", *run.parent_id);
  }
  if (run.command) {
    fields.add("command", fmt::format("{}", fmt::join(nlohmann::json::parse(*run.command).get<std::vector<std::string>>(), " ")));
  }
  if (run.exit_code) {
    fields.add("exit code", std::to_string(*run.exit_code));
  }
  if (run.host) {
    fields.add("host", *run.host);
  }
  if (run.git) {
    fields.add("git commit", run.git->commit ? *run.git->commit + (run.git->dirty ? " (dirty)" : "") : "(no commit yet)");
    fields.add("git branch", run.git->branch.value_or("(detached HEAD)"));
    if (run.git->remote) {
      fields.add("git remote", *run.git->remote);
    }
  }
  if (run.deleted_at) {
    fields.add("removed", *run.deleted_at);
  }
  for (const auto& [key, value] : run.params) {
    fields.add("param " + key, value);
  }
  for (const auto& [key, point] : run.latest_metrics) {
    fields.add("metric " + key, fmt::format("{} (step {})", value_text(point.value), point.step));
  }
  for (const auto& [key, value] : run.tags) {
    fields.add("tag " + key, value);
  }
  for (const auto& artifact : run.artifacts) {
    fields.add("artifact " + artifact.name, fmt::format("{} {} ({} bytes)", artifact.kind, artifact.digest.substr(0, 12), artifact.size));
  }
  for (const auto& child : run.children) {
    fields.add("child", child);
  }
  context.out().result(run_json(run, true), fields);
}

void run_compare(Context& context, const RunOptions& options)
{
  if (options.runs.size() < 2) {
    throw Error(ExitCode::usage, "give two or more runs to compare");
  }
  Tracking tracking(context.home(), context.database());
  std::vector<Run> runs;
  for (const auto& text : options.runs) {
    runs.push_back(tracking.run(tracking.resolve(text)));
  }
  std::vector<std::string> headers = {"", "KEY"};
  for (const auto& run : runs) {
    headers.push_back(run.id.substr(0, 12));
  }
  Table table(headers);
  nlohmann::json rows = nlohmann::json::array();
  auto add_rows = [&](const char* kind, auto get) {
    std::set<std::string> keys;
    for (const auto& run : runs) {
      for (const auto& [key, value] : get(run)) {
        keys.insert(key);
      }
    }
    for (const auto& key : keys) {
      std::vector<std::string> cells;
      nlohmann::json values = nlohmann::json::array();
      for (const auto& run : runs) {
        auto of_run = get(run);
        auto found = of_run.find(key);
        if (found == of_run.end()) {
          cells.push_back("-");
          values.push_back(nullptr);
        } else {
          cells.push_back(found->second);
          // JSON gets metrics as numbers, as everywhere else ("NaN" and "Infinity" as text).
          values.push_back(std::string_view(kind) == "metrics" ? value_json(run.latest_metrics.at(key).value)
                                                               : nlohmann::json(found->second));
        }
      }
      bool differs = std::adjacent_find(cells.begin(), cells.end(), std::not_equal_to<>()) != cells.end();
      std::vector<std::string> row = {differs ? "*" : "", fmt::format("{}.{}", kind, key)};
      row.insert(row.end(), cells.begin(), cells.end());
      table.add_row(row);
      rows.push_back({{"kind", kind}, {"key", key}, {"values", values}, {"differs", differs}});
    }
  };
  add_rows("params", [](const Run& run) { return run.params; });
  add_rows("metrics", [](const Run& run) {
    std::map<std::string, std::string> values;
    for (const auto& [key, point] : run.latest_metrics) {
      values[key] = value_text(point.value);
    }
    return values;
  });
  add_rows("tags", [](const Run& run) { return run.tags; });
  nlohmann::json ids = nlohmann::json::array();
  for (const auto& run : runs) {
    ids.push_back(run.id);
  }
  context.out().result({{"runs", ids}, {"rows", rows}}, table.render(context.out().style().color) + "(* marks values that differ)\n");
}

void run_metrics(Context& context, const RunOptions& options)
{
  if (options.format != "csv" && options.format != "json") {
    throw Error(ExitCode::usage, fmt::format("--format {} is not csv or json", options.format));
  }
  Tracking tracking(context.home(), context.database());
  auto id = target_run(tracking, options.run);
  auto points = tracking.metric_history(id, options.key);
  nlohmann::json list = nlohmann::json::array();
  std::string csv = "step,timestamp,value\n";
  for (const auto& point : points) {
    list.push_back({{"step", point.step}, {"timestamp", point.timestamp}, {"value", value_json(point.value)}});
    csv += fmt::format("{},{},{}\n", point.step, point.timestamp, value_text(point.value));
  }
  nlohmann::json document = {{"run", id}, {"key", options.key}, {"points", list}};
  if (options.format == "json" && !context.out().style().json) {
    std::cout << document.dump(2) << "\n";
    return;
  }
  context.out().result(document, csv);
}

void run_set_deleted(Context& context, const RunOptions& options, bool deleted)
{
  Tracking tracking(context.home(), context.database());
  auto id = target_run(tracking, options.run);
  bool changed = tracking.set_deleted(id, deleted);
  auto document = run_json(tracking.run(id), false);
  document["changed"] = changed;
  const char* done = deleted ? "removed" : "restored";
  context.out().result(document, changed ? fmt::format("run {} {}\n", id, done) : fmt::format("run {} was already {}, nothing to do\n", id, done));
}

void run_artifact_add(Context& context, const RunOptions& options)
{
  Tracking tracking(context.home(), context.database());
  auto id = target_run(tracking, options.run);
  std::vector<std::filesystem::path> paths(options.paths.begin(), options.paths.end());
  auto added = tracking.add_artifacts(id, paths);
  nlohmann::json list = nlohmann::json::array();
  std::string human;
  for (const auto& artifact : added) {
    list.push_back({{"name", artifact.name}, {"digest", "sha256:" + artifact.digest}, {"kind", artifact.kind}, {"size", artifact.size},
                    {"created_at", artifact.created_at}});
    human += fmt::format("{}  {}\n", artifact.digest, artifact.name);
  }
  context.out().result({{"run", id}, {"artifacts", list}}, human);
}

void run_artifact_get(Context& context, const RunOptions& options)
{
  Tracking tracking(context.home(), context.database());
  auto id = target_run(tracking, options.run);
  auto artifact = tracking.artifact(id, options.artifact);
  objects::ObjectStore store(context.home(), context.database());
  auto object = store.resolve(artifact.digest);
  std::filesystem::path out = options.out.empty() ? std::filesystem::path(artifact.name) : std::filesystem::path(options.out);
  store.get(object, out, objects::LinkMode::automatic, options.force);
  context.out().result({{"run", id}, {"name", artifact.name}, {"digest", "sha256:" + artifact.digest}, {"out", out.string()}}, "");
  context.out().info(fmt::format("{} -> {}", artifact.name, out.string()));
}

} // namespace

void setup_run(CLI::App& noun, Context& context)
{
  noun.require_subcommand(1);
  auto options = std::make_shared<RunOptions>();
  const char* run_help = "Run id or unique prefix of 8+ hex digits (default: $MLOPS_RUN_ID)";
  auto start_options = [&](CLI::App* verb) {
    verb->add_option("--exp", options->experiment, "Experiment (created when new)")->required()->type_name("NAME");
    verb->add_option("--name", options->name, "Run name (default: run-<id prefix>)");
    verb->add_option("--param", options->params, "A param, written once (repeatable)")->type_name("KEY=VALUE");
    verb->add_option("--tag", options->tags, "A tag (repeatable)")->type_name("KEY=VALUE");
    verb->add_option("--parent", options->parent, "Parent run (nested runs)")->type_name("RUN");
  };

  auto* start = add_verb(noun, context, "start", "Start a run; print its id", [&context, options] { run_start(context, *options); });
  start_options(start);
  start->add_flag("--shell", options->shell, "Print `export MLOPS_RUN_ID=...` for eval");

  auto* end = add_verb(noun, context, "end", "End a run as finished, failed or killed", [&context, options] { run_end(context, *options); });
  end->add_option("RUN", options->run, run_help);
  end->add_option("--status", options->status, "finished (default), failed or killed");

  auto* log = add_verb(noun, context, "log", "Log metrics, params and tags (or a JSON-lines file)", [&context, options] { run_log(context, *options); });
  log->add_option("RUN", options->run, run_help);
  log->add_option("--metric", options->metrics, "A metric point (repeatable)")->type_name("KEY=VALUE");
  log->add_option("--step", options->step, "Step of the metrics (default 0)");
  log->add_option("--time", options->time, "Timestamp of the metrics, ms since the epoch (default: now)")->type_name("MS");
  log->add_option("--param", options->params, "A param, written once (repeatable)")->type_name("KEY=VALUE");
  log->add_option("--tag", options->tags, "A tag (repeatable)")->type_name("KEY=VALUE");
  log->add_option("--file", options->file, "JSON lines of metrics, params and tags (- for stdin)")->type_name("FILE");

  auto* exec = noun.add_subcommand("exec", "Run a command as a tracked run; exit with its code");
  on_run(
    *exec, context,
    [&context, options] {
      options->command = context.trailing_args;  // everything after `--`, its own options included
      run_exec(context, *options);
    },
    /*takes_command=*/true);
  start_options(exec);
  exec->footer("The command follows `--`: mlops run exec --exp NAME -- CMD ARGS...");

  auto* ls = add_verb(noun, context, "ls", "Search runs (MLflow's filter language)", [&context, options] { run_ls(context, *options); });
  ls->add_option("--exp", options->experiments, "Only these experiments (repeatable)")->type_name("NAME");
  ls->add_option("--filter", options->filter, "e.g. \"metrics.rmse < 0.5 and params.lr = '0.01'\"")->type_name("EXPR");
  ls->add_option("--order-by", options->order_by, "e.g. \"metrics.acc DESC\" (default: newest first)")->type_name("EXPR");
  ls->add_option("--limit", options->limit, "At most this many runs (default 1000)");
  ls->add_flag("--all", options->all, "Include removed runs");

  auto* show = add_verb(noun, context, "show", "Show a run: params, latest metrics, tags, git, artifacts, children",
                        [&context, options] { run_show(context, *options); });
  show->add_option("RUN", options->run, run_help);

  auto* compare = add_verb(noun, context, "compare", "Compare runs side by side; differences marked",
                           [&context, options] { run_compare(context, *options); });
  compare->add_option("RUN", options->runs, "Two or more runs")->required();

  auto* metrics = add_verb(noun, context, "metrics", "A metric's history", [&context, options] { run_metrics(context, *options); });
  metrics->add_option("RUN", options->run, run_help)->required();
  metrics->add_option("KEY", options->key, "Metric key")->required();
  metrics->add_option("--format", options->format, "csv (default) or json");

  auto* rm = add_verb(noun, context, "rm", "Remove a run (restorable)", [&context, options] { run_set_deleted(context, *options, true); });
  rm->add_option("RUN", options->run, run_help);
  auto* restore = add_verb(noun, context, "restore", "Restore a removed run", [&context, options] { run_set_deleted(context, *options, false); });
  restore->add_option("RUN", options->run, run_help);

  auto* artifact = noun.add_subcommand("artifact", "Files stored with a run");
  artifact->require_subcommand(1);
  auto* artifact_add = add_verb(*artifact, context, "add", "Store files or directories with a run", [&context, options] {
    run_artifact_add(context, *options);
  });
  artifact_add->add_option("RUN", options->run, "Run id or unique prefix")->required();
  artifact_add->add_option("PATH", options->paths, "Files and directories")->required();
  auto* artifact_get = add_verb(*artifact, context, "get", "Write a run's artifact to OUT, verified", [&context, options] {
    run_artifact_get(context, *options);
  });
  artifact_get->add_option("RUN", options->run, "Run id or unique prefix")->required();
  artifact_get->add_option("NAME", options->artifact, "Artifact name (as `run show` lists it)")->required();
  artifact_get->add_option("OUT", options->out, "Where to write (default: NAME)");
  artifact_get->add_flag("--force", options->force, "Replace OUT when it exists");
}

} // namespace mlops::cli
