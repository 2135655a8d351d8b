// mlops deploy create | ls | status | history | rm | canary | bluegreen | promote | abort | rollback | resume
#include "context.hpp"
#include "nouns.hpp"

#include "mlops/core/interrupt.hpp"
#include "mlops/deploy/rollout.hpp"
#include "mlops/util/child_process.hpp"
#include "mlops/util/duration.hpp"
#include "mlops/util/file.hpp"

#include <CLI/CLI.hpp>
#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include <iostream>

namespace mlops::cli {

namespace {

using namespace deploy;
using namespace std::chrono_literals;

struct DeployOptions
{
  std::string name;
  std::string model;
  CreateRequest create;
  RolloutRequest rollout;
  std::string steps = "10,25,50,100";
  std::string interval = "30s";
  double max_error_rate = 0.01;
  double max_p99_ms = 0;
  std::uint64_t min_requests = 20;
  std::string pre_analysis;
  std::string post_analysis;
  std::string scale_down_delay = "30s";
  std::string alias;
  std::string sample;
  bool manual = false;
  bool force = false;
  std::string ready_timeout = "60s";
};

std::chrono::milliseconds duration_option(const std::string& text, const char* option, bool zero_ok = false)
{
  auto value = util::parse_duration(text, 1000ms);
  if (!value || (value->count() == 0 && !zero_ok)) {
    throw Error(ExitCode::usage, fmt::format("{} {} is not a {}duration: use seconds (30) or a unit (250ms, 30s, 5m)",
                                             option, text, zero_ok ? "" : "positive "));
  }
  return *value;
}

Deployer make_deployer(Context& context)
{
  bool quiet = context.options.quiet || context.options.json;
  return Deployer(context.home(), context.database(), worker_path(), [quiet](const DeploymentEvent& event) {
    if (!quiet) {
      std::cerr << fmt::format("mlops: deploy {}: {}\n", event.deployment, event.reason);
    }
  });
}

nlohmann::json deployment_json(const Deployment& d)
{
  return {{"deployment", d.name},
          {"model", d.model},
          {"url", d.url()},
          {"phase", d.phase},
          {"stable_version", d.stable_version},
          {"previous_version", d.previous_version ? nlohmann::json(*d.previous_version) : nlohmann::json()},
          {"router_pid", d.router_pid},
          {"router_alive", util::process_alive(d.router_pid, d.router_start)},
          {"created_at", d.created_at},
          {"updated_at", d.updated_at}};
}

// The end of a rollout command: the result, and exit 6 when it went back to the old version
// (unless going back is what the command asked for: `deploy abort`).
void report_rollout(Context& context, const RolloutResult& result, bool asked_to_go_back = false)
{
  const auto& d = result.deployment;
  auto document = deployment_json(d);
  document["outcome"] = result.outcome;
  document["reason"] = result.reason;
  document["warnings"] = result.warnings;
  document["restarted"] = result.restarted;
  for (const auto& warning : result.warnings) {
    std::cerr << "mlops: warning: " << warning << "\n";
  }
  std::string human;
  if (result.outcome == "promoted") {
    human = fmt::format("'{}' now serves {}@{} at {}", d.name, d.model, d.stable_version, d.url());
  } else if (result.outcome == "paused") {
    human = result.reason;
  } else if (result.outcome == "rolled back") {
    human = fmt::format("'{}' is back on {}@{} at {}", d.name, d.model, d.stable_version, d.url());
  } else {
    human = result.reason;  // nothing to do, and why
  }
  context.out().result(document, human);
  if (result.outcome == "rolled back" && !asked_to_go_back) {
    context.fail_after_result(Error(ExitCode::gate_failed, fmt::format("the rollout of '{}' was rolled back: {}", d.name,
                                                                       result.reason)));
  }
}

void run_create(Context& context, DeployOptions& options)
{
  options.create.name = options.name;
  options.create.ref = registry::parse_model_ref(options.model);
  options.create.ready_timeout = duration_option(options.ready_timeout, "--ready-timeout");
  auto deployer = make_deployer(context);
  auto d = deployer.create(options.create);
  Fields fields;
  fields.add("deployment", d.name).add("url", d.url()).add("stable", fmt::format("{}@{}", d.model, d.stable_version));
  fields.add("router", fmt::format("pid {}, log {}", d.router_pid, d.log_path));
  context.out().result(deployment_json(d), fields);
}

void run_ls(Context& context)
{
  Deployments deployments(context.database());
  nlohmann::json all = nlohmann::json::array();
  Table table({"DEPLOYMENT", "MODEL", "STABLE", "PHASE", "URL", "ROUTER"});
  for (const auto& d : deployments.list(Reading::without_rollouts)) {
    all.push_back(deployment_json(d));
    table.add_row({d.name, d.model, std::to_string(d.stable_version), d.phase, d.url(),
                   util::process_alive(d.router_pid, d.router_start) ? "running" : "dead"});
  }
  if (table.empty()) {
    context.out().result({{"deployments", all}}, "no deployments: `mlops deploy create NAME --model M@REF` makes one");
    return;
  }
  context.out().result({{"deployments", all}}, table);
}

void run_status(Context& context, const DeployOptions& options)
{
  auto status = make_deployer(context).status(options.name);
  Fields fields;
  fields.add("deployment", status["deployment"].get<std::string>()).add("url", status["url"].get<std::string>());
  fields.add("phase", status["phase"].get<std::string>());
  fields.add("stable", fmt::format("{}@{}", status["model"].get<std::string>(), status["stable_version"].get<std::int64_t>()));
  const auto& router = status["router"];
  fields.add("router", fmt::format("pid {}, {}", router["pid"].get<int>(),
                                   !router["alive"].get<bool>()
                                     ? fmt::format("dead: `mlops deploy resume {}` starts it again", options.name)
                                   : router["ready"].get<bool>() ? "ready"
                                                                 : "not ready"));
  for (const auto& backend : status["backends"]) {
    fields.add("backend", fmt::format("{} (version {}) weight {}, {}, pid {}{}", backend["service"].get<std::string>(),
                                      backend["version"].get<std::int64_t>(), backend["weight"].get<int>(),
                                      backend["healthy"].get<bool>() ? "healthy" : "unhealthy", backend["pid"].get<int>(),
                                      backend["alive"].get<bool>() ? "" : " (dead)"));
  }
  if (status["rollout"].is_object()) {
    auto rollout = Rollout::from_json(status["rollout"]);
    fields.add("rollout", fmt::format("{} to version {}, step {} of {} ({})", rollout.strategy, rollout.to_version,
                                      rollout.step + 1, rollout.steps.size(), fmt::join(rollout.steps, ",")));
    const auto& controller = status["controller"];
    fields.add("controller", controller.is_object() && controller["alive"].get<bool>()
                               ? fmt::format("pid {}, running", controller["pid"].get<int>())
                               : fmt::format("not running: `mlops deploy resume {}` goes on, `mlops deploy abort {}` goes back",
                                             options.name, options.name));
  }
  if (status["last_analysis"].is_object()) {
    const auto& analysis = status["last_analysis"];
    fields.add("last analysis", fmt::format("{} ({}): {}", analysis["verdict"].get<std::string>(),
                                            analysis["at"].get<std::string>(), analysis["reason"].get<std::string>()));
  }
  if (status["last_rollout"].is_object()) {
    auto last = FinishedRollout::from_json(status["last_rollout"]);
    fields.add("last rollout", fmt::format("{} to version {}: {}", last.strategy, last.to_version, last.outcome));
  }
  context.out().result(status, fields);
}

void run_history(Context& context, const DeployOptions& options)
{
  Deployments deployments(context.database());
  auto events = deployments.events(options.name);
  if (events.empty()) {
    deployments.get(options.name);  // not found: lists the deployments
  }
  nlohmann::json all = nlohmann::json::array();
  Table table({"AT", "PHASE", "STEP", "WHAT"});
  for (const auto& event : events) {
    // Every event has every detail, null when it does not apply (one shape for scripts).
    auto detail = [&](const char* key, nlohmann::json otherwise) {
      return event.details.is_object() && event.details.contains(key) ? event.details[key] : otherwise;
    };
    nlohmann::json details = {{"weight", detail("weight", nullptr)},
                              {"analysis", detail("analysis", nullptr)},
                              {"smoke_requests", detail("smoke_requests", nullptr)},
                              {"pre_analysis", detail("pre_analysis", nullptr)},
                              {"warnings", detail("warnings", nlohmann::json::array())}};
    all.push_back({{"at", event.at},
                   {"phase", event.phase},
                   {"step", event.step ? nlohmann::json(*event.step + 1) : nlohmann::json()},
                   {"reason", event.reason},
                   {"details", details}});
    table.add_row({event.at, event.phase, event.step ? std::to_string(*event.step + 1) : "", event.reason});
  }
  context.out().result({{"deployment", options.name}, {"events", all}}, table);
}

void run_rm(Context& context, const DeployOptions& options)
{
  make_deployer(context).remove(options.name, options.force);
  context.out().result({{"deployment", options.name}, {"removed", true}},
                       fmt::format("removed '{}': its router and workers are stopped", options.name));
}

RolloutRequest rollout_request(const DeployOptions& options, const std::string& strategy)
{
  auto request = options.rollout;
  request.name = options.name;
  request.to = registry::parse_model_ref(options.model);
  request.strategy = strategy;
  request.force = options.force;
  request.ready_timeout = duration_option(options.ready_timeout, "--ready-timeout");
  if (!options.alias.empty()) {
    registry::validate_alias(options.alias);
    request.set_alias = options.alias;
  }
  if (!options.sample.empty()) {
    auto text = util::read_file(options.sample);
    auto document = nlohmann::json::parse(text, nullptr, false);
    if (!document.is_object() || !document.contains("inputs")) {
      throw Error(ExitCode::usage, fmt::format("--sample {} is not an inference request {{\"inputs\": [...]}}",
                                               options.sample));
    }
    request.sample_body = document.dump();
  }
  return request;
}

void run_canary(Context& context, const DeployOptions& options)
{
  auto request = rollout_request(options, "canary");
  for (std::string_view rest = options.steps; !rest.empty();) {
    auto comma = rest.find(',');
    request.steps.emplace_back(rest.substr(0, comma));
    rest = comma == std::string_view::npos ? std::string_view() : rest.substr(comma + 1);
  }
  Criteria criteria;
  criteria.duration = duration_option(options.interval, "--interval");
  criteria.max_error_rate = options.max_error_rate;
  if (options.max_p99_ms > 0) {
    criteria.max_p99_ms = options.max_p99_ms;
  }
  criteria.min_requests = options.min_requests;
  request.analysis = criteria;
  report_rollout(context, make_deployer(context).start_rollout(request));
}

void run_bluegreen(Context& context, const DeployOptions& options)
{
  auto request = rollout_request(options, "bluegreen");
  request.steps = options.manual ? std::vector<std::string>{"pause", "100"} : std::vector<std::string>{"100"};
  if (!options.pre_analysis.empty()) {
    request.pre_analysis = Criteria::parse(options.pre_analysis, "--pre-analysis");
  }
  if (!options.post_analysis.empty()) {
    request.analysis = Criteria::parse(options.post_analysis, "--post-analysis");
  }
  request.scale_down_delay = duration_option(options.scale_down_delay, "--scale-down-delay", true);
  report_rollout(context, make_deployer(context).start_rollout(request));
}

} // namespace

void setup_deploy(CLI::App& noun, Context& context)
{
  noun.require_subcommand(1);
  auto options = std::make_shared<DeployOptions>();
  auto name = [&](CLI::App* verb) { verb->add_option("NAME", options->name, "The deployment")->required(); };

  auto* create = add_verb(noun, context, "create", "Start a deployment: a stable endpoint serving a model version",
                          [&context, options] { run_create(context, *options); });
  name(create);
  create->add_option("--model", options->model, "NAME@VERSION, NAME@ALIAS or NAME@latest")->required();
  create->add_option("--host", options->create.host, "Address the endpoint listens on")->capture_default_str();
  create->add_option("--port", options->create.port, "The endpoint's port (default 0: any free port)")
    ->check(CLI::Range(0, 65535));
  create->add_option("--device", options->create.device, "For the workers: auto, cpu or cuda")
    ->check(CLI::IsMember({"auto", "cpu", "cuda"}))
    ->capture_default_str();
  create->add_option("--sticky-header", options->create.sticky_header,
                     "Requests with the same value of this header go to the same version");
  create->add_option("--ready-timeout", options->ready_timeout, "How long to wait for the workers")->capture_default_str();

  add_verb(noun, context, "ls", "List deployments", [&context] { run_ls(context); });

  auto* status = add_verb(noun, context, "status", "Show a deployment: backends, weights, health, rollout, last analysis",
                          [&context, options] { run_status(context, *options); });
  name(status);
  auto* history = add_verb(noun, context, "history", "Every transition of a deployment, with time and reason",
                           [&context, options] { run_history(context, *options); });
  name(history);
  auto* rm = add_verb(noun, context, "rm", "Stop a deployment's router and workers and remove it",
                      [&context, options] { run_rm(context, *options); });
  name(rm);
  rm->add_flag("--force", options->force, "Remove it even in the middle of a rollout");

  auto rollout_options = [&](CLI::App* verb) {
    name(verb);
    verb->add_option("--to", options->model, "The new version: NAME@VERSION or NAME@ALIAS")->required();
    verb->add_option("--set-alias", options->alias, "On success, move this registry alias to the new version");
    verb->add_option("--sample", options->sample, "A request {\"inputs\": [...]} for the smoke test (default: zeros "
                                                  "shaped by the signature)");
    verb->add_flag("--force", options->force, "Deploy even when the input signature is not compatible");
    verb->add_option("--ready-timeout", options->ready_timeout, "How long to wait for the new worker")
      ->capture_default_str();
  };
  auto* canary = add_verb(noun, context, "canary", "Shift traffic to a new version step by step, analysing each step",
                          [&context, options] { run_canary(context, *options); });
  rollout_options(canary);
  canary->add_option("--steps", options->steps, "Weights in percent, or pause")->capture_default_str();
  canary->add_option("--interval", options->interval, "How long each step is analysed")->capture_default_str();
  canary->add_option("--max-error-rate", options->max_error_rate, "Most errors per request on the new version")
    ->check(CLI::Range(0.0, 1.0))
    ->capture_default_str();
  canary->add_option("--max-p99-ms", options->max_p99_ms, "Most p99 latency on the new version")
    ->check(CLI::PositiveNumber);
  canary->add_option("--min-requests", options->min_requests, "Fewer requests in a step is inconclusive")
    ->capture_default_str();
  canary->add_option("--failure-limit", options->rollout.failure_limit, "Failed analyses tolerated before rolling back")
    ->check(CLI::Range(0, 1000))
    ->capture_default_str();

  auto* bluegreen = add_verb(noun, context, "bluegreen", "Start the new version beside the old, check it, switch at once",
                             [&context, options] { run_bluegreen(context, *options); });
  rollout_options(bluegreen);
  bluegreen->add_option("--pre-analysis", options->pre_analysis,
                        "Before the switch, on test requests: DURATION[,max-error-rate=R][,max-p99-ms=X][,min-requests=N]");
  bluegreen->add_option("--post-analysis", options->post_analysis, "After the switch, on live traffic (same form)");
  bluegreen->add_option("--scale-down-delay", options->scale_down_delay, "How long the old version stays warm")
    ->capture_default_str();
  bluegreen->add_flag("--manual", options->manual, "Stop before the switch until `deploy promote`");

  auto* promote = add_verb(noun, context, "promote", "Go on past a pause",
                           [&context, options] { report_rollout(context, make_deployer(context).promote(options->name)); });
  name(promote);
  auto* abort = add_verb(noun, context, "abort", "Send all traffic back to the stable version and stop the new one",
                         [&context, options] { report_rollout(context, make_deployer(context).abort(options->name), true); });
  name(abort);
  auto* rollback = add_verb(noun, context, "rollback", "After a promotion, go back to the version before it",
                            [&context, options] {
                              auto timeout = duration_option(options->ready_timeout, "--ready-timeout");
                              report_rollout(context, make_deployer(context).rollback(options->name, timeout));
                            });
  name(rollback);
  rollback->add_option("--ready-timeout", options->ready_timeout, "How long to wait for the old version's worker")
    ->capture_default_str();
  auto* resume = add_verb(noun, context, "resume",
                          "Start again what died (router, stable worker), then carry on a rollout whose mlops was stopped",
                          [&context, options] { report_rollout(context, make_deployer(context).resume(options->name)); });
  name(resume);
}

} // namespace mlops::cli
