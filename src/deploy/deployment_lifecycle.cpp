// Creating, removing and describing deployments (the rollouts themselves: rollout.cpp).
#include "mlops/deploy/rollout.hpp"

#include "mlops/core/error.hpp"
#include "mlops/core/interrupt.hpp"
#include "mlops/data/dataset_ref.hpp"
#include "mlops/deploy/router_client.hpp"
#include "mlops/serve/services.hpp"
#include "mlops/serve/worker_launch.hpp"
#include "mlops/store/statement.hpp"
#include "mlops/store/transaction.hpp"
#include "mlops/util/child_process.hpp"
#include "mlops/util/file.hpp"
#include "mlops/util/time.hpp"

#include <fmt/format.h>

#include <fstream>

namespace mlops::deploy {

namespace fs = std::filesystem;
using namespace std::chrono_literals;

namespace {

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

constexpr std::chrono::milliseconds restart_ready_timeout{60'000};
} // namespace

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
  d.stable_service = backend_service_name(d.name, version.version);
  d.created_at = d.updated_at = util::now_iso8601();
  auto dir = d.dir(m_home);
  d.log_path = fs::relative(dir / "router.log", m_home.dir()).string();
  d.sticky_header = request.sticky_header;
  m_deployments.insert(d, fmt::format("created for {}", version.ref()));
  m_last_event = m_deployments.events(d.name).back().id;

  serve::Services services(m_home, m_db);
  std::optional<serve::Service> stable;
  try {
    fs::create_directories(dir);
    util::write_file_atomic(dir / "token", d.token + "\n");
    fs::permissions(dir / "token", fs::perms::owner_read | fs::perms::owner_write);
    stable = start_backend(d, d.stable_version, request.ready_timeout);
    nlohmann::json table = {{"model", d.model},
                            {"backends", {route_entry(*stable, 100)}}};
    util::write_file_atomic(dir / "routes.json", table.dump(2) + "\n");
    auto held = lock(d);  // a `resume` meanwhile would see no router yet and start one
    start_router(d, request.ready_timeout);
  } catch (...) {
    InterruptSetAside set_aside;
    if (stable) {
      services.stop(*stable, 5s);  // only what this command started: the name may be someone else's
    }
    serve::stop_process(m_deployments.get(d.name).router_pid, [&] {
      auto now = m_deployments.get(d.name);
      return util::process_alive(now.router_pid, now.router_start);
    }, 5s);
    m_deployments.remove(d, "creation failed");
    std::error_code ignored;
    fs::remove_all(dir, ignored);
    throw;
  }
  return m_deployments.get(d.name);
}

serve::Service Deployer::start_backend(const Deployment& d, std::int64_t version, std::chrono::milliseconds ready_timeout)
{
  serve::StartRequest start;
  start.ref = registry::parse_model_ref(fmt::format("{}@{}", d.model, version));
  start.name = backend_service_name(d.name, version);
  start.host = d.host;
  start.device = d.device;
  start.ready_timeout = ready_timeout;
  start.worker = m_worker;
  return serve::Services(m_home, m_db).start(start).service;
}

void Deployer::start_router(const Deployment& d, std::chrono::milliseconds ready_timeout)
{
  auto dir = d.dir(m_home);
  std::vector<std::string> argv = {m_worker.string(), "route", "--routes", (dir / "routes.json").string(),
                                   "--admin-token-file", (dir / "token").string(), "--host", d.host, "--port",
                                   std::to_string(d.port), "--port-file", (dir / "port").string(),
                                   "--health-interval-ms", "200"};
  if (!d.sticky_header.empty()) {
    argv.insert(argv.end(), {"--sticky-header", d.sticky_header});
  }
  auto launched = serve::launch_worker({argv, dir / "router.log", dir / "port", d.host,
                                        fmt::format("the router of '{}'", d.name), ready_timeout,
                                        [&](int pid, std::int64_t start_time) {
                                          // At once: a command killed now leaves a router `rm` finds.
                                          m_deployments.record_router(d.name, pid, start_time, d.port);
                                        }});
  try {
    m_deployments.record_router(d.name, launched.pid, launched.process_start, launched.port);
  } catch (...) {
    serve::stop_process(launched.pid, [&] { return util::process_alive(launched.pid, launched.process_start); }, 5s);
    throw;
  }
}

std::vector<std::string> Deployer::restart_what_died(const std::string& name)
{
  std::vector<std::string> restarted;
  auto d = m_deployments.get(name);
  serve::Services services(m_home, m_db);
  auto stable = services.find(d.stable_service);
  if (!stable || !services.alive(*stable)) {
    auto started = start_backend(d, d.stable_version, restart_ready_timeout);
    auto what = fmt::format("the worker of version {} ({}, pid {})", d.stable_version, started.name, started.pid);
    note(name, fmt::format("restarted {}: {}", what,
                           stable ? fmt::format("pid {} had died", stable->pid) : std::string("its service was gone")));
    restarted.push_back(what);
  }
  if ((!restarted.empty() || !util::process_alive(d.router_pid, d.router_start)) && apply_routes(name)) {
    restarted.push_back(fmt::format("the router (pid {})", m_deployments.get(name).router_pid));
  }
  return restarted;
}

void Deployer::remove(const std::string& name, bool force)
{
  // --force removes even a row whose rollout cannot be read: it needs only the processes.
  auto reading = force ? Reading::without_rollouts : Reading::whole;
  auto d = m_deployments.get(name, reading);
  bool controlled = util::process_alive(d.controller_pid, d.controller_start);
  if (d.phase != "stable" && !force) {
    throw Error(ExitCode::conflict,
                fmt::format("'{}' has a rollout under way ({}{}); `mlops deploy abort {}` ends it first, or --force "
                            "removes it anyway",
                            name, d.phase, controlled ? fmt::format(", driven by pid {}", d.controller_pid) : "", name));
  }
  if (controlled) {
    // Its next step would act on a deployment that is gone (and could start a worker nobody
    // owns): it stops first. SIGTERM lets it unwind; it records nothing more.
    serve::stop_process(d.controller_pid, [&] { return util::process_alive(d.controller_pid, d.controller_start); }, 10s);
  }
  // Under the lock, from the row as it is then: a router being restarted by another command
  // has its pid recorded by the time the lock is ours.
  auto held = lock(d);
  d = m_deployments.get(name, reading);
  serve::stop_process(d.router_pid, [&] { return util::process_alive(d.router_pid, d.router_start); }, 10s);
  serve::Services services(m_home, m_db);
  for (const auto& service : services.list()) {
    if (is_backend_of(d.name, service.name)) {
      services.stop(service, 10s);
    }
  }
  m_deployments.remove(d, "removed by `mlops deploy rm`");
  std::error_code ignored;
  fs::remove_all(d.dir(m_home), ignored);
}

nlohmann::json Deployer::status(const std::string& name)
{
  auto d = m_deployments.get(name);
  serve::Services services(m_home, m_db);
  auto process = [](int pid, std::int64_t start) {
    return nlohmann::json{{"pid", pid}, {"alive", util::process_alive(pid, start)}};
  };
  nlohmann::json status = {{"deployment", d.name},
                           {"model", d.model},
                           {"url", d.url()},
                           {"phase", d.phase},
                           {"stable_version", d.stable_version},
                           {"previous_version", d.previous_version ? nlohmann::json(*d.previous_version) : nlohmann::json()},
                           {"router", process(d.router_pid, d.router_start)},
                           {"controller", d.controller_pid > 0 ? process(d.controller_pid, d.controller_start) : nlohmann::json()},
                           {"rollout", d.rollout ? d.rollout->to_json() : nlohmann::json()},
                           {"last_rollout", d.last_rollout ? d.last_rollout->to_json() : nlohmann::json()},
                           {"created_at", d.created_at},
                           {"updated_at", d.updated_at}};
  status["router"]["log"] = d.log_path;
  status["router"]["error"] = nullptr;
  nlohmann::json backends = nlohmann::json::array();
  auto live = serve::http_get(d.url() + "/admin/routes", 2s, admin_fields(d));
  auto table = nlohmann::json::parse(live.body, nullptr, false);
  if (live.status == 200 && table.is_object() && table.contains("backends") && table["backends"].is_array()) {
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
    if (event.phase == "removed") {
      last_analysis = nullptr;  // an earlier deployment of the same name
    } else if (event.details.is_object() && event.details.contains("analysis")) {
      last_analysis = event.details["analysis"];
      last_analysis["at"] = event.at;
      last_analysis["step"] = event.step ? nlohmann::json(*event.step + 1) : nlohmann::json();
    }
  }
  status["last_analysis"] = last_analysis;
  return status;
}

} // namespace mlops::deploy
