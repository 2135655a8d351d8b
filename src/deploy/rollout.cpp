#include "mlops/deploy/rollout.hpp"

#include "mlops/core/error.hpp"
#include "mlops/core/interrupt.hpp"
#include "mlops/deploy/router_client.hpp"
#include "mlops/serve/http_client.hpp"
#include "mlops/serve/load_generator.hpp"
#include "mlops/serve/request_body.hpp"
#include "mlops/serve/services.hpp"
#include "mlops/store/statement.hpp"
#include "mlops/store/transaction.hpp"
#include "mlops/util/child_process.hpp"
#include "mlops/util/file.hpp"
#include "mlops/util/time.hpp"

#include <fmt/format.h>

#include <charconv>
#include <fstream>
#include <thread>

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

namespace mlops::deploy {

namespace fs = std::filesystem;
using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;


namespace {

constexpr int smoke_requests = 5;
constexpr int inconclusive_limit = 3;

std::string percent_text(int weight)
{
  return fmt::format("{}%", weight);
}

void parse_steps(const std::vector<std::string>& steps)
{
  int last = 0;
  for (const auto& step : steps) {
    if (step == "pause") {
      continue;
    }
    int weight = 0;
    auto [end, problem] = std::from_chars(step.data(), step.data() + step.size(), weight);
    if (problem != std::errc() || end != step.data() + step.size() || weight < 1 || weight > 100 || weight < last) {
      throw Error(ExitCode::usage, fmt::format("--steps: '{}' is not a weight; give percentages from 1 to 100 that do "
                                               "not decrease, or 'pause', for example 10,25,pause,50,100",
                                               step));
    }
    last = weight;
  }
  if (steps.empty()) {
    throw Error(ExitCode::usage, "--steps is empty; give weights such as 10,25,50,100");
  }
}

// A new rollout, at its first step, from the deployment's stable version to `to_version`.
Rollout rollout_plan(const Deployment& d, const RolloutRequest& request, std::int64_t to_version, bool forced)
{
  Rollout rollout;
  rollout.strategy = request.strategy;
  rollout.from_version = d.stable_version;
  rollout.from_service = d.stable_service;
  rollout.to_version = to_version;
  rollout.to_service = backend_service_name(d.name, to_version);
  rollout.steps = request.steps;
  rollout.analysis = request.analysis;
  rollout.pre_analysis = request.pre_analysis;
  rollout.failure_limit = request.failure_limit;
  rollout.scale_down_delay = request.scale_down_delay;
  rollout.set_alias = request.set_alias;
  rollout.sample_body = request.sample_body;
  rollout.forced = forced;
  rollout.ready_timeout = request.ready_timeout;
  rollout.started_at = util::now_iso8601();
  return rollout;
}

} // namespace

Deployer::Deployer(const Home& home, store::Database& db, fs::path worker, EventReporter report)
  : m_home(home), m_db(db), m_deployments(db), m_worker(std::move(worker)), m_report(std::move(report))
{
}
// --- starting rollouts ------------------------------------------------------------------------------

RolloutResult Deployer::start_rollout(const RolloutRequest& request)
{
  parse_steps(request.steps);
  auto d = m_deployments.get(request.name);
  registry::Registry registry(m_home, m_db);
  auto target = registry.resolve(request.to);
  if (target.model != d.model) {
    throw Error(ExitCode::usage, fmt::format("'{}' serves the model {}, not {}; deploy a version of {}", d.name, d.model,
                                             target.model, d.model));
  }
  if (d.phase != "stable") {
    throw Error(ExitCode::conflict, fmt::format("'{}' has a rollout under way ({}); `mlops deploy status {}` shows it, "
                                                "`mlops deploy resume` or `abort` ends it",
                                                d.name, d.phase, d.name));
  }
  if (target.version == d.stable_version) {
    return {"nothing to do", fmt::format("{} is already the stable version of '{}'", target.ref(), d.name), d, {}, {}};
  }
  std::vector<std::string> warnings;
  auto stable = registry.resolve(registry::parse_model_ref(fmt::format("{}@{}", d.model, d.stable_version)));
  if (stable.signature && target.signature) {
    auto problems = registry::signature_problems(*stable.signature, *target.signature);
    if (!problems.empty()) {
      auto text = fmt::format("{}'s inputs are not compatible with {}'s, which clients call now: {}", target.ref(),
                              stable.ref(), fmt::join(problems, "; "));
      if (!request.force) {
        throw Error(ExitCode::gate_failed, text + "; fix the model, or --force deploys it anyway");
      }
      warnings.push_back(text + " (deployed anyway: --force)");
    }
  }
  auto reason = fmt::format("{} from version {} to {}", request.strategy, d.stable_version, target.version);
  return begin(d, rollout_plan(d, request, target.version, !warnings.empty()), reason, warnings);
}

RolloutResult Deployer::rollback(const std::string& name, std::chrono::milliseconds ready_timeout)
{
  auto d = m_deployments.get(name);
  if (d.phase != "stable") {
    throw Error(ExitCode::conflict, fmt::format("'{}' has a rollout under way ({}); `mlops deploy abort {}` returns to "
                                                "the stable version",
                                                name, d.phase, name));
  }
  if (!d.previous_version) {
    throw Error(ExitCode::not_found, fmt::format("'{}' has had no promotion to roll back: version {} is its first",
                                                 name, d.stable_version));
  }
  RolloutRequest request;
  request.strategy = "rollback";
  request.steps = {"100"};
  request.ready_timeout = ready_timeout;
  // The alias the promotion moved goes back with it.
  if (d.last_rollout) {
    request.set_alias = d.last_rollout->set_alias;
  }
  auto rollout = rollout_plan(d, request, *d.previous_version, false);
  return begin(d, rollout, fmt::format("rollback from version {} to {}", d.stable_version, *d.previous_version), {});
}

RolloutResult Deployer::begin(Deployment d, Rollout rollout, const std::string& reason,
                              std::vector<std::string> warnings)
{
  m_last_event = latest_event(d.name);
  auto next = d;
  next.phase = "starting";
  next.rollout = std::move(rollout);
  next.controller_pid = getpid();
  next.controller_start = util::process_start_time(getpid()).value_or(0);
  if (!move(d, next, reason, warnings.empty() ? nlohmann::json() : nlohmann::json{{"warnings", warnings}})) {
    throw Error(ExitCode::conflict, fmt::format("another mlops started a rollout of '{}' at the same moment; `mlops "
                                                "deploy status {}` shows it",
                                                d.name, d.name));
  }
  auto result = drive(d.name);
  result.warnings = std::move(warnings);
  return result;
}

// --- promote, resume, abort -------------------------------------------------------------------------

void Deployer::claim(const Deployment& d)
{
  if (!m_deployments.claim_controller(d.name, getpid(), util::process_start_time(getpid()).value_or(0))) {
    auto now = m_deployments.get(d.name);
    throw Error(ExitCode::conflict, fmt::format("the rollout of '{}' is being driven by another mlops (pid {}); wait "
                                                "for it, or `mlops deploy abort {}`",
                                                d.name, now.controller_pid, d.name));
  }
  m_last_event = latest_event(d.name);
}

RolloutResult Deployer::promote(const std::string& name)
{
  auto d = m_deployments.get(name);
  if (d.phase != "paused") {
    throw Error(ExitCode::conflict,
                fmt::format("'{}' is not paused (it is {}); promote goes on from a pause step or a --manual blue-green",
                            name, d.phase));
  }
  claim(d);
  d = m_deployments.get(name);
  if (d.phase != "paused") {
    // An abort from another shell got there first (it claims nothing); going on would undo it.
    throw Error(ExitCode::conflict, fmt::format("'{}' is no longer paused (it is {}); `mlops deploy status {}` shows "
                                                "why",
                                                name, d.phase, name));
  }
  auto next = d;
  next.rollout->step += 1;
  next.phase = next.rollout->past_last_step() ? "finishing" : "progressing";
  move(d, next, "promoted past the pause by `mlops deploy promote`");
  return drive(name);
}

RolloutResult Deployer::resume(const std::string& name)
{
  auto d = m_deployments.get(name);
  m_last_event = latest_event(name);
  if (d.phase != "stable" && d.phase != "paused") {
    claim(d);  // before restarting anything: a live controller may be doing it
  }
  auto restarted = restart_what_died(name);
  d = m_deployments.get(name);
  RolloutResult result;
  if (d.phase == "stable") {
    result = {restarted.empty() ? "nothing to do" : "restarted",
              restarted.empty() ? fmt::format("'{}' has no rollout under way and nothing of it had died", name)
                                : fmt::format("'{}' serves {}@{} at {} again", name, d.model, d.stable_version, d.url()),
              d, {}, {}};
  } else if (d.phase == "paused") {
    result = {"paused", fmt::format("'{}' is paused at step {}; `mlops deploy promote {}` goes on", name,
                                    d.rollout->step + 1, name),
              d, {}, {}};
  } else {
    claim(d);  // again: a rollout may have begun while the restarts ran
    m_report({0, name, util::now_iso8601(), d.phase, std::nullopt, fmt::format("resumed by pid {}", getpid()), nullptr});
    result = drive(name);
  }
  result.restarted = std::move(restarted);
  return result;
}

RolloutResult Deployer::abort(const std::string& name)
{
  auto d = m_deployments.get(name);
  if (d.phase == "stable") {
    return {"nothing to do", fmt::format("'{}' has no rollout under way; version {} is stable", name, d.stable_version),
            d, {}, {}};
  }
  m_last_event = latest_event(name);
  // The controller may move the row meanwhile (to the next step): abort what it is now.
  while (d.phase != "aborting" && !abort_with(d, "aborted by `mlops deploy abort`")) {
    d = m_deployments.get(name);
    if (d.phase == "stable") {
      return drive(name);
    }
  }
  return drive(name);
}

// --- the state machine ------------------------------------------------------------------------------

bool Deployer::move(const Deployment& from, Deployment to, const std::string& reason, const nlohmann::json& details,
                    const std::function<void()>& also)
{
  if (!m_deployments.transition(from, std::move(to), reason, details, also)) {
    return false;
  }
  report_new_events(from.name);
  return true;
}

void Deployer::note(const std::string& name, const std::string& reason)
{
  m_deployments.note(name, reason);
  report_new_events(name);
}

void Deployer::report_new_events(const std::string& name)
{
  for (const auto& event : m_deployments.events(name, m_last_event)) {
    m_last_event = event.id;
    m_report(event);
  }
}

bool Deployer::abort_with(const Deployment& d, const std::string& reason, const nlohmann::json& details)
{
  auto next = d;
  next.phase = "aborting";
  next.rollout->abort_reason = reason;
  return move(d, next, reason, details);
}

std::int64_t Deployer::latest_event(const std::string& name)
{
  auto events = m_deployments.events(name);
  return events.empty() ? 0 : events.back().id;
}

RolloutResult Deployer::drive(const std::string& name)
{
  while (true) {
    auto d = m_deployments.get(name);
    if (d.phase == "stable") {
      clean_up_after(d);
      if (!d.last_rollout) {
        return {"nothing to do", "", d, {}, {}};
      }
      return {d.last_rollout->outcome, d.last_rollout->reason, d, {}, {}};
    }
    if (d.phase == "paused") {
      const auto& rollout = *d.rollout;
      return {"paused",
              fmt::format("'{}' is paused at step {} of {} with {} of requests on version {}; `mlops deploy promote {}` "
                          "goes on, `mlops deploy abort {}` goes back",
                          name, rollout.step + 1, rollout.steps.size(), percent_text(rollout.current_weight()),
                          rollout.to_version, name, name),
              d,
              {}, {}};
    }
    try {
      if (d.phase == "starting") {
        run_starting(d);
      } else if (d.phase == "progressing") {
        run_progressing(d);
      } else if (d.phase == "finishing") {
        run_finishing(d);
      } else {
        run_aborting(d);
      }
    } catch (const Error& error) {
      if (error.code() == ExitCode::interrupted) {
        throw Error(ExitCode::interrupted,
                    fmt::format("interrupted; the rollout of '{}' stays where it was ({}, step {}): `mlops deploy resume {}` "
                                "goes on, `mlops deploy abort {}` goes back",
                                name, d.phase, d.rollout->step + 1, name, name));
      }
      if (d.phase == "aborting") {
        throw;
      }
      abort_with(d, error.what());
    }
  }
}

bool Deployer::apply_routes(const std::string& name)
{
  auto d = m_deployments.get(name);
  auto held = lock(d);
  d = m_deployments.get(name);  // as it is now that nobody else can send a table
  serve::Services services(m_home, m_db);
  int to_new = 0;
  std::optional<serve::Service> added;
  if (d.phase != "stable" && d.phase != "aborting") {
    to_new = d.phase == "starting" ? 0 : d.phase == "finishing" ? 100 : d.rollout->current_weight();
    added = services.find(d.rollout->to_service);
    if (added && added->version != d.rollout->to_version) {
      added.reset();  // a service of that name serving something else is not ours
    }
  }
  nlohmann::json backends = nlohmann::json::array();
  auto stable = services.find(d.stable_service);
  if (stable && services.alive(*stable)) {
    backends.push_back(route_entry(*stable, added ? 100 - to_new : 100));
  }
  if (added && services.alive(*added)) {
    backends.push_back(route_entry(*added, to_new));
  }
  if (backends.empty()) {
    throw Error(ExitCode::worker_unhealthy, fmt::format("no worker of '{}' is alive to route to; the router keeps its "
                                                        "table; `mlops serve ls` shows the workers",
                                                        d.name));
  }
  nlohmann::json table = {{"model", d.model}, {"backends", backends}};
  // The file first: a router restarted from it gets the table the row says.
  util::write_file_atomic(d.dir(m_home) / "routes.json", table.dump(2) + "\n");
  if (util::process_alive(d.router_pid, d.router_start)) {
    send_routes(d, table);
    return false;
  }
  // The stable endpoint died (a reboot, the OOM killer): it comes back on its port. The logs of
  // the routers before it are kept, appended to router.log.1, since they may say why.
  {
    std::ifstream log(d.dir(m_home) / "router.log", std::ios::binary);
    std::ofstream(d.dir(m_home) / "router.log.1", std::ios::binary | std::ios::app) << log.rdbuf();
  }
  start_router(d, 60s);
  auto now = m_deployments.get(d.name);
  note(d.name, fmt::format("restarted the router (pid {}, port {}): pid {} had died; its log is {}.1", now.router_pid,
                           now.port, d.router_pid, d.log_path));
  return true;
}

util::FileLock Deployer::lock(const Deployment& d)
{
  fs::create_directories(d.dir(m_home));
  return util::FileLock(d.dir(m_home) / "lock", true, fmt::format("the lock of deployment '{}'", d.name));
}

bool Deployer::watch(const Deployment& d, std::chrono::milliseconds duration, const std::function<bool()>& aborted_early)
{
  serve::Services services(m_home, m_db);
  auto service = services.find(d.rollout->to_service);
  auto end = Clock::now() + duration;
  auto next_look = Clock::now() + 250ms;
  while (true) {
    throw_if_interrupted();
    auto now = m_deployments.get(d.name);
    if (now.updated_at != d.updated_at || now.phase != d.phase) {
      return false;
    }
    if (!service || !services.alive(*service)) {
      abort_with(d, fmt::format("the worker of version {} died (pid {}); `mlops serve logs {}` may say why",
                                d.rollout->to_version, service ? service->pid : 0, d.rollout->to_service));
      return false;
    }
    if (Clock::now() >= end) {
      return true;
    }
    if (aborted_early && Clock::now() >= next_look) {
      next_look = Clock::now() + 250ms;
      if (aborted_early()) {
        return false;
      }
    }
    std::this_thread::sleep_for(std::min<Clock::duration>(100ms, end - Clock::now()));
  }
}

void Deployer::run_starting(const Deployment& d)
{
  const auto& rollout = *d.rollout;
  auto to_version = rollout.to_version;
  const auto& to_service = rollout.to_service;
  serve::Services services(m_home, m_db);
  auto existing = services.find(to_service);
  if (!existing || !services.alive(*existing) || existing->version != to_version) {
    start_backend(d, to_version, rollout.ready_timeout);
  }
  apply_routes(d.name);

  // Smoke test: requests pinned to the new version through the router, which counts them.
  auto fields = admin_fields(d);
  fields.push_back("X-Mlops-Backend: " + to_service);
  auto url = fmt::format("{}/v2/models/{}/infer", d.url(), d.model);
  auto body = rollout.sample_body;
  if (body.empty()) {
    auto metadata = router_call(serve::http_get(fmt::format("{}/v2/models/{}", d.url(), d.model), 5s, fields), d,
                                "describe the new version");
    body = serve::default_infer_body(metadata);
  }
  for (int i = 0; i < smoke_requests; ++i) {
    auto response = serve::http_post(url, body, "application/json", 30s, fields);
    if (response.status != 200) {
      throw Error(ExitCode::gate_failed, fmt::format("the smoke test of version {} failed: request {} of {} got {}",
                                                     to_version, i + 1, smoke_requests,
                                                     response.status == 0 ? response.error
                                                                          : fmt::format("HTTP {}: {}", response.status,
                                                                                        serve::worker_error_text(response))));
    }
  }
  nlohmann::json details = {{"smoke_requests", smoke_requests}};
  if (rollout.pre_analysis) {
    const auto& criteria = *rollout.pre_analysis;
    auto before = router_stats(d);
    serve::LoadOptions load;
    load.url = url;
    load.body = body;
    load.fields = fields;
    load.concurrency = 2;
    load.duration = criteria.duration;
    serve::generate_load(load);
    throw_if_interrupted();
    auto analysis = analyse(window_of(before, router_stats(d), to_service), std::nullopt, criteria);
    if (analysis.verdict != Verdict::pass) {
      abort_with(d, "pre-analysis " + analysis.reason, {{"analysis", analysis.to_json()}});
      return;
    }
    details["pre_analysis"] = analysis.to_json();
  }
  auto next = d;
  next.phase = "progressing";
  move(d, next,
       fmt::format("version {} is ready and passed its smoke test ({} requests){}", to_version, smoke_requests,
                   details.contains("pre_analysis") ? " and pre-analysis" : ""),
       details);
}

void Deployer::run_progressing(const Deployment& d)
{
  const auto& rollout = *d.rollout;
  auto step = rollout.step;
  const auto& steps = rollout.steps;
  auto to_version = rollout.to_version;
  if (steps[step] == "pause") {
    auto next = d;
    next.phase = "paused";
    move(d, next, fmt::format("paused at step {} of {}; `mlops deploy promote {}` goes on", step + 1, steps.size(), d.name));
    return;
  }
  apply_routes(d.name);
  auto weight = rollout.current_weight();
  auto next = d;
  auto advance = [&](const std::string& why, const nlohmann::json& details) {
    next.rollout->step = step + 1;
    next.rollout->failures = 0;
    next.rollout->inconclusive = 0;
    next.phase = next.rollout->past_last_step() ? "finishing" : "progressing";
    auto entering = next.phase == "finishing"
                      ? std::string("; promoting")
                      : steps[step + 1] == "pause" ? std::string()
                                                   : fmt::format("; step {}: {} to version {}", step + 2,
                                                                 percent_text(next.rollout->current_weight()), to_version);
    move(d, next, why + entering, details);
  };
  if (!rollout.analysis) {
    advance(fmt::format("step {}: {} to version {}", step + 1, percent_text(weight), to_version), nullptr);
    return;
  }
  const auto& criteria = *rollout.analysis;
  auto before = router_stats(d);
  auto where = fmt::format("step {} ({} to version {})", step + 1, percent_text(weight), to_version);
  // Errors end the window early once there are enough requests to judge: every request more
  // would go to a version already known to be bad. (Only with no --failure-limit to spend.)
  auto fails_already = [&] {
    auto so_far = window_of(before, router_stats(d), rollout.to_service);
    auto analysis = analyse(so_far, std::nullopt, criteria);
    if (analysis.verdict != Verdict::fail || so_far.requests < criteria.min_requests || rollout.failure_limit > 0) {
      return false;
    }
    abort_with(d, fmt::format("{}: analysis failed before the end of the window: {}", where, analysis.reason),
               {{"weight", weight}, {"analysis", analysis.to_json()}});
    return true;
  };
  if (!watch(d, criteria.duration, fails_already)) {
    return;
  }
  auto after = router_stats(d);
  auto candidate = window_of(before, after, rollout.to_service);
  std::optional<BackendWindow> baseline;
  if (weight < 100) {
    baseline = window_of(before, after, rollout.from_service);
  }
  auto analysis = analyse(candidate, baseline, criteria);
  nlohmann::json details = {{"weight", weight}, {"analysis", analysis.to_json()}};
  if (analysis.verdict == Verdict::pass) {
    advance(fmt::format("{}: analysis {}", where, analysis.reason), details);
  } else if (analysis.verdict == Verdict::fail) {
    auto failures = rollout.failures + 1;
    auto limit = rollout.failure_limit;
    if (failures > limit) {
      abort_with(d, fmt::format("{}: analysis failed: {}", where, analysis.reason), details);
      return;
    }
    next.rollout->failures = failures;
    move(d, next, fmt::format("{}: analysis failed ({} of {} tolerated by --failure-limit): {}; measuring again", where,
                              failures, limit, analysis.reason),
         details);
  } else {
    auto inconclusive = rollout.inconclusive + 1;
    if (inconclusive >= inconclusive_limit) {
      abort_with(d, fmt::format("{}: {} windows in a row, {}", where, inconclusive, analysis.reason),
                 details);
      return;
    }
    next.rollout->inconclusive = inconclusive;
    move(d, next, fmt::format("{}: {}; measuring again", where, analysis.reason), details);
  }
}

void Deployer::run_finishing(const Deployment& d)
{
  const auto& rollout = *d.rollout;
  auto to_version = rollout.to_version;
  apply_routes(d.name);  // 100% to the new version; the old one stays warm (an abort goes back to it)
  if (rollout.scale_down_delay.count() > 0 && !watch(d, rollout.scale_down_delay)) {
    return;
  }
  // The promotion: the row and the alias move in one transaction, before anything is stopped,
  // so an abort can no longer race with it, and a kill leaves only the old worker to stop.
  std::string alias_note;
  std::function<void()> move_alias;
  if (rollout.set_alias) {
    auto alias = *rollout.set_alias;
    alias_note = fmt::format("; {}@{} now names version {}", d.model, alias, to_version);
    move_alias = [this, &d, alias, to_version, &rollout] {
      registry::Registry registry(m_home, m_db);
      bool changed = false;
      registry.set_alias_in_transaction(d.model, alias, to_version,
                                        fmt::format("mlops deploy {} {}", rollout.strategy, d.name), changed);
    };
  }
  auto next = d;
  next.phase = "stable";
  next.stable_version = to_version;
  next.stable_service = rollout.to_service;
  next.previous_version = rollout.from_version;
  auto reason = fmt::format("promoted: version {} is stable, version {} stops{}", to_version, rollout.from_version,
                            alias_note);
  // "promoted" for `deploy rollback` too: the old version was promoted again.
  next.last_rollout = FinishedRollout{rollout, "promoted", reason, util::now_iso8601()};
  next.rollout.reset();
  next.controller_pid = 0;
  next.controller_start = 0;
  if (move(d, next, reason, nullptr, move_alias)) {
    clean_up_after(m_deployments.get(d.name));
  }
}

void Deployer::run_aborting(const Deployment& d)
{
  const auto& rollout = *d.rollout;
  try {
    apply_routes(d.name);  // everything back on the stable version
  } catch (const Error& error) {
    // The router is gone: its table file already says "stable only", which is what a restarted
    // router reads; the rollout still ends.
    m_report({0, d.name, util::now_iso8601(), d.phase, std::nullopt,
              fmt::format("warning: {}", error.what()), nullptr});
  }
  auto next = d;
  next.phase = "stable";
  auto why = rollout.abort_reason.value_or("aborted");
  auto reason = fmt::format("rolled back to version {}: {}", d.stable_version, why);
  next.last_rollout = FinishedRollout{rollout, "rolled back", why, util::now_iso8601()};
  next.rollout.reset();
  next.controller_pid = 0;
  next.controller_start = 0;
  if (move(d, next, reason)) {
    clean_up_after(m_deployments.get(d.name));
  }
}

// After a rollout ended: stops the worker it left behind (the old version after a promotion, the
// new one after a rollback). Idempotent, so whoever finds it undone (a later command) redoes it.
void Deployer::clean_up_after(const Deployment& d)
{
  if (!d.last_rollout || d.phase != "stable") {
    return;
  }
  const auto& last = *d.last_rollout;
  auto promoted = last.outcome == "promoted";
  const auto& leftover = promoted ? last.from_service : last.to_service;
  auto version = promoted ? last.from_version : last.to_version;
  serve::Services services(m_home, m_db);
  auto service = services.find(leftover);
  if (!service || leftover == d.stable_service || service->version != version) {
    return;  // gone already, or not ours
  }
  try {
    apply_routes(d.name);  // out of the table before it stops
  } catch (const Error&) {
    // A dead router sends nothing anywhere; the worker still stops.
  }
  services.stop(*service, 30s);
}
} // namespace mlops::deploy
