#include "mlops/deploy/rollout.hpp"

#include "mlops/core/error.hpp"
#include "mlops/core/interrupt.hpp"
#include "mlops/data/dataset_ref.hpp"
#include "mlops/serve/http_client.hpp"
#include "mlops/serve/load_generator.hpp"
#include "mlops/serve/request_body.hpp"
#include "mlops/serve/services.hpp"
#include "mlops/serve/worker_launch.hpp"
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

std::string service_name(const std::string& deployment, std::int64_t version)
{
  return fmt::format("{}-v{}", deployment, version);
}

std::string random_token()
{
  std::ifstream random("/dev/urandom", std::ios::binary);
  unsigned char bytes[16] = {};
  if (!random.read(reinterpret_cast<char*>(bytes), sizeof(bytes))) {
    throw Error(ExitCode::failure, "cannot read /dev/urandom for the router's admin token");
  }
  std::string token;
  for (auto byte : bytes) {
    token += fmt::format("{:02x}", byte);
  }
  return token;
}

// The deployment's lock file, held while the router's table is derived from the row and sent.
class DeploymentLock
{
public:
  explicit DeploymentLock(const fs::path& dir)
  {
    fs::create_directories(dir);
    m_fd = ::open((dir / "lock").c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (m_fd < 0 || flock(m_fd, LOCK_EX) != 0) {
      throw Error(ExitCode::failure, fmt::format("cannot lock {}", (dir / "lock").string()));
    }
  }
  ~DeploymentLock()
  {
    if (m_fd >= 0) {
      ::close(m_fd);
    }
  }
  DeploymentLock(const DeploymentLock&) = delete;
  DeploymentLock& operator=(const DeploymentLock&) = delete;

private:
  int m_fd = -1;
};

serve::HttpFields admin_fields(const Deployment& d)
{
  return {"Authorization: Bearer " + d.token};
}

nlohmann::json router_call(const serve::HttpResponse& response, const Deployment& d, std::string_view what)
{
  auto document = nlohmann::json::parse(response.body, nullptr, false);
  if (response.status != 200 || !document.is_object()) {
    throw Error(ExitCode::worker_unhealthy, fmt::format("the router of '{}' ({}) did not {}: {}; `mlops deploy status {}` "
                                                        "shows its state",
                                                        d.name, d.url(), what, serve::worker_error_text(response), d.name));
  }
  return document;
}

nlohmann::json router_stats(const Deployment& d)
{
  return router_call(serve::http_get(d.url() + "/admin/stats", 5s, admin_fields(d)), d, "report its numbers");
}

// The weight in percent of the new version at `step` (a pause keeps the step before it's).
int weight_at(const nlohmann::json& rollout, std::int64_t step)
{
  const auto& steps = rollout["steps"];
  for (auto i = std::min<std::int64_t>(step, static_cast<std::int64_t>(steps.size()) - 1); i >= 0; --i) {
    if (steps[i] != "pause") {
      return std::stoi(steps[i].get<std::string>());
    }
  }
  return 0;
}

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

} // namespace

Deployer::Deployer(const Home& home, store::Database& db, fs::path worker, EventReporter report)
  : m_home(home), m_db(db), m_deployments(db), m_worker(std::move(worker)), m_report(std::move(report))
{
}

// --- create, remove -------------------------------------------------------------------------------

Deployment Deployer::create(const CreateRequest& request)
{
  data::validate_name(request.name, "deployment name");
  registry::Registry registry(m_home, m_db);
  auto version = registry.resolve(request.ref);
  Deployment d;
  d.name = request.name;
  d.model = version.model;
  d.host = request.host;
  d.port = request.port;
  d.device = request.device;
  d.token = random_token();
  d.stable_version = version.version;
  d.stable_service = service_name(d.name, version.version);
  d.created_at = d.updated_at = util::now_iso8601();
  auto dir = d.dir(m_home);
  d.log_path = fs::relative(dir / "router.log", m_home.dir()).string();
  m_deployments.insert(d, fmt::format("created for {}", version.ref()));
  m_last_event = m_deployments.events(d.name).back().id;

  serve::Services services(m_home, m_db);
  try {
    fs::create_directories(dir);
    util::write_file_atomic(dir / "token", d.token + "\n");
    fs::permissions(dir / "token", fs::perms::owner_read | fs::perms::owner_write);
    serve::StartRequest start;
    start.ref = registry::parse_model_ref(version.ref());
    start.name = d.stable_service;
    start.host = d.host;
    start.device = d.device;
    start.ready_timeout = request.ready_timeout;
    start.worker = m_worker;
    auto stable = services.start(start).service;
    nlohmann::json table = {{"model", d.model},
                            {"backends", {{{"name", stable.name}, {"url", stable.url()},
                                           {"version", std::to_string(stable.version)}, {"weight", 100}}}}};
    util::write_file_atomic(dir / "routes.json", table.dump(2) + "\n");
    std::vector<std::string> argv = {m_worker.string(), "route", "--routes", (dir / "routes.json").string(),
                                     "--admin-token-file", (dir / "token").string(), "--host", d.host, "--port",
                                     std::to_string(d.port), "--port-file", (dir / "port").string(),
                                     "--health-interval-ms", "200"};
    if (!request.sticky_header.empty()) {
      argv.insert(argv.end(), {"--sticky-header", request.sticky_header});
    }
    auto record = [&](int pid, std::int64_t start_time, int port) {
      store::write_transaction(m_db, [&] {
        m_db.prepare("UPDATE deployments SET router_pid = ?, router_start = ?, port = ? WHERE name = ?")
          .bind_all(pid, start_time, port, d.name)
          .run();
      });
    };
    auto launched = serve::launch_worker({argv, dir / "router.log", dir / "port", d.host,
                                          fmt::format("the router of '{}'", d.name), request.ready_timeout,
                                          [&](int pid, std::int64_t start_time) { record(pid, start_time, d.port); }});
    record(launched.pid, launched.process_start, launched.port);
  } catch (...) {
    InterruptSetAside set_aside;
    if (auto stable = services.find(d.stable_service)) {
      services.stop(*stable, 5s);
    }
    m_deployments.remove(d, "creation failed");
    throw;
  }
  return m_deployments.get(d.name);
}

void Deployer::remove(const std::string& name, bool force)
{
  auto d = m_deployments.get(name);
  bool controlled = d.controller_pid > 0 && util::process_start_time(d.controller_pid) == d.controller_start;
  if (d.phase != "stable" && !force) {
    throw Error(ExitCode::conflict,
                fmt::format("'{}' has a rollout under way ({}{}); `mlops deploy abort {}` ends it first, or --force "
                            "removes it anyway",
                            name, d.phase, controlled ? fmt::format(", driven by pid {}", d.controller_pid) : "", name));
  }
  if (controlled) {
    // Its next step would act on a deployment that is gone (and could start a worker nobody
    // owns): it stops first. SIGTERM lets it unwind; it records nothing more.
    serve::stop_process(d.controller_pid, [&] { return util::process_start_time(d.controller_pid) == d.controller_start; },
                        10s);
  }
  serve::stop_process(d.router_pid, [&] { return util::process_start_time(d.router_pid) == d.router_start; }, 10s);
  serve::Services services(m_home, m_db);
  for (const auto& service : services.list()) {
    if (service.name.rfind(d.name + "-v", 0) == 0) {
      services.stop(service, 10s);
    }
  }
  m_deployments.remove(d, "removed by `mlops deploy rm`");
  std::error_code ignored;
  fs::remove_all(d.dir(m_home), ignored);
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
    return {"nothing to do", fmt::format("{} is already the stable version of '{}'", target.ref(), d.name), d, {}};
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
  nlohmann::json rollout = {{"strategy", request.strategy},
                            {"from_version", d.stable_version},
                            {"from_service", d.stable_service},
                            {"to_version", target.version},
                            {"to_service", service_name(d.name, target.version)},
                            {"steps", request.steps},
                            {"step", 0},
                            {"analysis", request.analysis ? request.analysis->to_json() : nlohmann::json()},
                            {"pre_analysis", request.pre_analysis ? request.pre_analysis->to_json() : nlohmann::json()},
                            {"failure_limit", request.failure_limit},
                            {"failures", 0},
                            {"inconclusive", 0},
                            {"scale_down_delay_ms", request.scale_down_delay.count()},
                            {"set_alias", request.set_alias ? nlohmann::json(*request.set_alias) : nlohmann::json()},
                            {"sample_body", request.sample_body},
                            {"forced", !warnings.empty()},
                            {"ready_timeout_ms", request.ready_timeout.count()},
                            {"started_at", util::now_iso8601()},
                            {"abort_reason", nullptr}};
  auto reason = fmt::format("{} from version {} to {}", request.strategy, d.stable_version, target.version);
  return begin(d, rollout, reason, warnings);
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
  const auto& last = d.last_rollout;
  nlohmann::json rollout = {{"strategy", "rollback"},
                            {"from_version", d.stable_version},
                            {"from_service", d.stable_service},
                            {"to_version", *d.previous_version},
                            {"to_service", service_name(d.name, *d.previous_version)},
                            {"steps", {"100"}},
                            {"step", 0},
                            {"analysis", nullptr},
                            {"pre_analysis", nullptr},
                            {"failure_limit", 0},
                            {"failures", 0},
                            {"inconclusive", 0},
                            {"scale_down_delay_ms", 0},
                            // The alias the promotion moved goes back with it.
                            {"set_alias", last.is_object() ? last.value("set_alias", nlohmann::json()) : nlohmann::json()},
                            {"sample_body", ""},
                            {"forced", false},
                            {"ready_timeout_ms", ready_timeout.count()},
                            {"started_at", util::now_iso8601()},
                            {"abort_reason", nullptr}};
  return begin(d, rollout, fmt::format("rollback from version {} to {}", d.stable_version, *d.previous_version), {});
}

RolloutResult Deployer::begin(Deployment d, nlohmann::json rollout, const std::string& reason,
                              std::vector<std::string> warnings)
{
  m_last_event = m_deployments.events(d.name).empty() ? 0 : m_deployments.events(d.name).back().id;
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
  bool controlled = d.controller_pid > 0 && d.controller_pid != getpid() &&
                    util::process_start_time(d.controller_pid) == d.controller_start;
  if (controlled) {
    throw Error(ExitCode::conflict, fmt::format("the rollout of '{}' is being driven by another mlops (pid {}); wait "
                                                "for it, or `mlops deploy abort {}`",
                                                d.name, d.controller_pid, d.name));
  }
  store::write_transaction(m_db, [&] {
    m_db.prepare("UPDATE deployments SET controller_pid = ?, controller_start = ? WHERE name = ?")
      .bind_all(static_cast<int>(getpid()), util::process_start_time(getpid()).value_or(0), d.name)
      .run();
  });
  auto events = m_deployments.events(d.name);
  m_last_event = events.empty() ? 0 : events.back().id;
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
  auto next = d;
  next.phase = "progressing";
  next.rollout["step"] = d.rollout["step"].get<std::int64_t>() + 1;
  if (next.rollout["step"].get<size_t>() >= d.rollout["steps"].size()) {
    next.phase = "finishing";
  }
  move(d, next, "promoted past the pause by `mlops deploy promote`");
  return drive(name);
}

RolloutResult Deployer::resume(const std::string& name)
{
  auto d = m_deployments.get(name);
  if (d.phase == "stable") {
    return {"nothing to do", fmt::format("'{}' has no rollout under way", name), d, {}};
  }
  if (d.phase == "paused") {
    return {"paused", fmt::format("'{}' is paused at step {}; `mlops deploy promote {}` goes on", name,
                                  d.rollout["step"].get<std::int64_t>() + 1, name),
            d, {}};
  }
  claim(d);
  m_report({0, name, util::now_iso8601(), d.phase, std::nullopt, fmt::format("resumed by pid {}", getpid()), nullptr});
  return drive(name);
}

RolloutResult Deployer::abort(const std::string& name)
{
  auto d = m_deployments.get(name);
  if (d.phase == "stable") {
    return {"nothing to do", fmt::format("'{}' has no rollout under way; version {} is stable", name, d.stable_version),
            d, {}};
  }
  auto events = m_deployments.events(name);
  m_last_event = events.empty() ? 0 : events.back().id;
  if (d.phase != "aborting") {
    abort_with(d, "aborted by `mlops deploy abort`");
  }
  return drive(name);
}

// --- the state machine ------------------------------------------------------------------------------

bool Deployer::move(const Deployment& from, Deployment to, const std::string& reason, const nlohmann::json& details)
{
  if (!m_deployments.transition(from, std::move(to), reason, details)) {
    return false;
  }
  for (const auto& event : m_deployments.events(from.name, m_last_event)) {
    m_last_event = event.id;
    m_report(event);
  }
  return true;
}

void Deployer::abort_with(const Deployment& d, const std::string& reason, const nlohmann::json& details)
{
  auto next = d;
  next.phase = "aborting";
  next.rollout["abort_reason"] = reason;
  move(d, next, reason, details);
}

RolloutResult Deployer::drive(const std::string& name)
{
  while (true) {
    auto d = m_deployments.get(name);
    if (d.phase == "stable") {
      const auto& last = d.last_rollout;
      return {last.value("outcome", "nothing to do"), last.value("reason", ""), d, {}};
    }
    if (d.phase == "paused") {
      auto step = d.rollout["step"].get<std::int64_t>();
      return {"paused",
              fmt::format("'{}' is paused at step {} of {} with {} of requests on version {}; `mlops deploy promote {}` "
                          "goes on, `mlops deploy abort {}` goes back",
                          name, step + 1, d.rollout["steps"].size(), percent_text(weight_at(d.rollout, step)),
                          d.rollout["to_version"].get<std::int64_t>(), name, name),
              d,
              {}};
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
                                name, d.phase, d.rollout.value("step", std::int64_t{0}) + 1, name, name));
      }
      if (d.phase == "aborting") {
        throw;
      }
      abort_with(d, error.what());
    }
  }
}

void Deployer::apply_routes(const std::string& name)
{
  auto d = m_deployments.get(name);
  DeploymentLock lock(d.dir(m_home));
  d = m_deployments.get(name);  // as it is now that nobody else can send a table
  serve::Services services(m_home, m_db);
  int to_new = 0;
  std::optional<serve::Service> added;
  if (d.phase != "stable" && d.phase != "aborting") {
    to_new = d.phase == "starting" ? 0 : d.phase == "finishing" ? 100 : weight_at(d.rollout, d.rollout["step"].get<std::int64_t>());
    added = services.find(d.rollout["to_service"].get<std::string>());
  }
  nlohmann::json backends = nlohmann::json::array();
  auto stable = services.find(d.stable_service);
  if (stable && services.alive(*stable)) {
    backends.push_back({{"name", stable->name}, {"url", stable->url()}, {"version", std::to_string(stable->version)},
                        {"weight", added ? 100 - to_new : 100}});
  }
  if (added && services.alive(*added)) {
    backends.push_back({{"name", added->name}, {"url", added->url()}, {"version", std::to_string(added->version)},
                        {"weight", to_new}});
  }
  nlohmann::json table = {{"model", d.model}, {"backends", backends}};
  // The file first: a router restarted from it gets the table the row says.
  util::write_file_atomic(d.dir(m_home) / "routes.json", table.dump(2) + "\n");
  router_call(serve::http_put(d.url() + "/admin/routes", table.dump(), "application/json", 5s, admin_fields(d)), d,
              "take the new routing table");
}

bool Deployer::watch(const Deployment& d, std::chrono::milliseconds duration, const std::function<bool()>& aborted_early)
{
  serve::Services services(m_home, m_db);
  auto service = services.find(d.rollout["to_service"].get<std::string>());
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
                                d.rollout["to_version"].get<std::int64_t>(), service ? service->pid : 0,
                                d.rollout["to_service"].get<std::string>()));
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
  const auto& rollout = d.rollout;
  auto to_version = rollout["to_version"].get<std::int64_t>();
  auto to_service = rollout["to_service"].get<std::string>();
  serve::Services services(m_home, m_db);
  auto existing = services.find(to_service);
  if (!existing || !services.alive(*existing) || existing->version != to_version) {
    serve::StartRequest start;
    start.ref = registry::parse_model_ref(fmt::format("{}@{}", d.model, to_version));
    start.name = to_service;
    start.host = d.host;
    start.device = d.device;
    start.ready_timeout = std::chrono::milliseconds(rollout.value("ready_timeout_ms", std::int64_t{60'000}));
    start.worker = m_worker;
    services.start(start);
  }
  apply_routes(d.name);

  // Smoke test: requests pinned to the new version through the router, which counts them.
  auto fields = admin_fields(d);
  fields.push_back("X-Mlops-Backend: " + to_service);
  auto url = fmt::format("{}/v2/models/{}/infer", d.url(), d.model);
  auto body = rollout.value("sample_body", std::string());
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
  if (!rollout["pre_analysis"].is_null()) {
    auto criteria = Criteria::from_json(rollout["pre_analysis"]);
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
  auto rollout = d.rollout;
  auto step = rollout["step"].get<std::int64_t>();
  const auto& steps = rollout["steps"];
  auto to_version = rollout["to_version"].get<std::int64_t>();
  if (steps[step] == "pause") {
    auto next = d;
    next.phase = "paused";
    move(d, next, fmt::format("paused at step {} of {}; `mlops deploy promote {}` goes on", step + 1, steps.size(), d.name));
    return;
  }
  apply_routes(d.name);
  auto weight = weight_at(rollout, step);
  auto next = d;
  auto advance = [&](const std::string& why, const nlohmann::json& details) {
    next.rollout["step"] = step + 1;
    next.rollout["failures"] = 0;
    next.rollout["inconclusive"] = 0;
    next.phase = static_cast<size_t>(step + 1) >= steps.size() ? "finishing" : "progressing";
    auto entering = next.phase == "finishing"
                      ? std::string("; promoting")
                      : steps[step + 1] == "pause" ? std::string()
                                                   : fmt::format("; step {}: {} to version {}", step + 2,
                                                                 percent_text(weight_at(next.rollout, step + 1)), to_version);
    move(d, next, why + entering, details);
  };
  if (rollout["analysis"].is_null()) {
    advance(fmt::format("step {}: {} to version {}", step + 1, percent_text(weight), to_version), nullptr);
    return;
  }
  auto criteria = Criteria::from_json(rollout["analysis"]);
  auto before = router_stats(d);
  auto where = fmt::format("step {} ({} to version {})", step + 1, percent_text(weight), to_version);
  // Errors end the window early once there are enough requests to judge: every request more
  // would go to a version already known to be bad. (Only with no --failure-limit to spend.)
  auto fails_already = [&] {
    auto so_far = window_of(before, router_stats(d), rollout["to_service"].get<std::string>());
    auto analysis = analyse(so_far, std::nullopt, criteria);
    if (analysis.verdict != Verdict::fail || so_far.requests < criteria.min_requests ||
        rollout["failure_limit"].get<int>() > 0) {
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
  auto candidate = window_of(before, after, rollout["to_service"].get<std::string>());
  std::optional<BackendWindow> baseline;
  if (weight < 100) {
    baseline = window_of(before, after, rollout["from_service"].get<std::string>());
  }
  auto analysis = analyse(candidate, baseline, criteria);
  nlohmann::json details = {{"weight", weight}, {"analysis", analysis.to_json()}};
  if (analysis.verdict == Verdict::pass) {
    advance(fmt::format("{}: analysis {}", where, analysis.reason), details);
  } else if (analysis.verdict == Verdict::fail) {
    auto failures = rollout["failures"].get<int>() + 1;
    auto limit = rollout["failure_limit"].get<int>();
    if (failures > limit) {
      abort_with(d, fmt::format("{}: analysis failed: {}", where, analysis.reason), details);
      return;
    }
    next.rollout["failures"] = failures;
    move(d, next, fmt::format("{}: analysis failed ({} of {} tolerated by --failure-limit): {}; measuring again", where,
                              failures, limit, analysis.reason),
         details);
  } else {
    auto inconclusive = rollout["inconclusive"].get<int>() + 1;
    if (inconclusive >= inconclusive_limit) {
      abort_with(d, fmt::format("{}: {} windows in a row, {}", where, inconclusive, analysis.reason),
                 details);
      return;
    }
    next.rollout["inconclusive"] = inconclusive;
    move(d, next, fmt::format("{}: {}; measuring again", where, analysis.reason), details);
  }
}

void Deployer::run_finishing(const Deployment& d)
{
  const auto& rollout = d.rollout;
  auto to_version = rollout["to_version"].get<std::int64_t>();
  auto from_service = rollout["from_service"].get<std::string>();
  apply_routes(d.name);  // 100% to the new version; the old one stays warm
  auto delay = std::chrono::milliseconds(rollout["scale_down_delay_ms"].get<std::int64_t>());
  if (delay.count() > 0 && !watch(d, delay)) {
    return;
  }
  serve::Services services(m_home, m_db);
  if (auto old = services.find(from_service)) {
    services.stop(*old, 30s);
  }
  std::string alias_note;
  if (rollout["set_alias"].is_string()) {
    registry::Registry registry(m_home, m_db);
    bool changed = false;
    auto alias = rollout["set_alias"].get<std::string>();
    registry.set_alias(d.model, alias, to_version, fmt::format("mlops deploy {} {}", rollout["strategy"].get<std::string>(), d.name),
                       changed);
    alias_note = fmt::format("; {}@{} now names version {}", d.model, alias, to_version);
  }
  auto next = d;
  next.phase = "stable";
  next.stable_version = to_version;
  next.stable_service = rollout["to_service"].get<std::string>();
  next.previous_version = rollout["from_version"].get<std::int64_t>();
  auto reason = fmt::format("promoted: version {} is stable, version {} stopped{}", to_version,
                            rollout["from_version"].get<std::int64_t>(), alias_note);
  next.last_rollout = rollout;
  next.last_rollout["outcome"] = "promoted";  // for `deploy rollback` too: the old version was promoted again
  next.last_rollout["reason"] = reason;
  next.last_rollout["ended_at"] = util::now_iso8601();
  next.rollout = nullptr;
  next.controller_pid = 0;
  next.controller_start = 0;
  if (move(d, next, reason)) {
    apply_routes(d.name);  // the old version leaves the table
  }
}

void Deployer::run_aborting(const Deployment& d)
{
  const auto& rollout = d.rollout;
  apply_routes(d.name);  // everything back on the stable version
  serve::Services services(m_home, m_db);
  auto to_service = rollout["to_service"].get<std::string>();
  if (auto added = services.find(to_service); added && to_service != d.stable_service) {
    services.stop(*added, 10s);
  }
  auto next = d;
  next.phase = "stable";
  auto why = rollout["abort_reason"].is_string() ? rollout["abort_reason"].get<std::string>() : std::string("aborted");
  auto reason = fmt::format("rolled back to version {}: {}", d.stable_version, why);
  next.last_rollout = rollout;
  next.last_rollout["outcome"] = "rolled back";
  next.last_rollout["reason"] = why;
  next.last_rollout["ended_at"] = util::now_iso8601();
  next.rollout = nullptr;
  next.controller_pid = 0;
  next.controller_start = 0;
  move(d, next, reason);
}

// --- status -----------------------------------------------------------------------------------------

nlohmann::json Deployer::status(const std::string& name)
{
  auto d = m_deployments.get(name);
  serve::Services services(m_home, m_db);
  auto process = [](int pid, std::int64_t start) {
    return nlohmann::json{{"pid", pid}, {"alive", pid > 0 && util::process_start_time(pid) == start}};
  };
  nlohmann::json status = {{"deployment", d.name},
                           {"model", d.model},
                           {"url", d.url()},
                           {"phase", d.phase},
                           {"stable_version", d.stable_version},
                           {"previous_version", d.previous_version ? nlohmann::json(*d.previous_version) : nlohmann::json()},
                           {"router", process(d.router_pid, d.router_start)},
                           {"controller", d.controller_pid > 0 ? process(d.controller_pid, d.controller_start) : nlohmann::json()},
                           {"rollout", d.rollout},
                           {"last_rollout", d.last_rollout},
                           {"created_at", d.created_at},
                           {"updated_at", d.updated_at}};
  status["router"]["log"] = d.log_path;
  status["router"]["error"] = nullptr;
  nlohmann::json backends = nlohmann::json::array();
  auto live = serve::http_get(d.url() + "/admin/routes", 2s, admin_fields(d));
  auto table = nlohmann::json::parse(live.body, nullptr, false);
  if (live.status == 200 && table.is_object()) {
    for (const auto& backend : table["backends"]) {
      auto service = services.find(backend["name"].get<std::string>());
      backends.push_back({{"service", backend["name"]},
                          {"version", std::stoll(backend["version"].get<std::string>())},
                          {"url", backend["url"]},
                          {"weight", backend["weight"]},
                          {"healthy", backend["healthy"]},
                          {"pid", service ? service->pid : 0},
                          {"alive", service && services.alive(*service)}});
    }
    status["router"]["ready"] = serve::http_get(d.url() + "/v2/health/ready", 2s).status == 200;
  } else {
    status["router"]["ready"] = false;
    status["router"]["error"] = serve::worker_error_text(live);
  }
  status["backends"] = backends;
  nlohmann::json last_analysis;
  for (const auto& event : m_deployments.events(name)) {
    if (event.details.is_object() && event.details.contains("analysis")) {
      last_analysis = event.details["analysis"];
      last_analysis["at"] = event.at;
      last_analysis["step"] = event.step ? nlohmann::json(*event.step + 1) : nlohmann::json();
    }
  }
  status["last_analysis"] = last_analysis;
  return status;
}

} // namespace mlops::deploy
