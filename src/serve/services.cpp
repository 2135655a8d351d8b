#include "mlops/serve/services.hpp"

#include "mlops/core/error.hpp"
#include "mlops/core/interrupt.hpp"
#include "mlops/data/dataset_ref.hpp"
#include "mlops/objects/object_store.hpp"
#include "mlops/serve/http_client.hpp"
#include "mlops/serve/worker_launch.hpp"
#include "mlops/store/statement.hpp"
#include "mlops/store/transaction.hpp"
#include "mlops/util/child_process.hpp"
#include "mlops/util/time.hpp"
#include "mlops/util/url.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <csignal>
#include <fstream>
#include <sys/wait.h>
#include <thread>

namespace mlops::serve {

namespace fs = std::filesystem;
using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

namespace {

constexpr const char* columns =
  "name, model, version, digest, pid, process_start, host, port, device, max_batch, log_path, started_at";

Service read_service(store::Statement& row)
{
  Service service;
  service.name = row.column_text(0);
  service.model = row.column_text(1);
  service.version = row.column_int64(2);
  service.digest = row.column_text(3);
  service.pid = static_cast<int>(row.column_int64(4));
  service.process_start = row.column_int64(5);
  service.host = row.column_text(6);
  service.port = static_cast<int>(row.column_int64(7));
  service.device = row.column_text(8);
  service.max_batch = row.column_int64(9);
  service.log_path = row.column_text(10);
  service.started_at = row.column_text(11);
  return service;
}

// `mlops-worker serve` for one service.
std::vector<std::string> worker_command(const StartRequest& request, const Service& service, const fs::path& model_file,
                                        const fs::path& port_file)
{
  std::vector<std::string> argv = {request.worker.string(),
                                   "serve",
                                   "--model",
                                   fmt::format("{}@{}={}", service.model, service.version, model_file.string()),
                                   "--host",
                                   service.host,
                                   "--port",
                                   std::to_string(service.port),
                                   "--port-file",
                                   port_file.string(),
                                   "--device",
                                   service.device,
                                   "--max-batch",
                                   std::to_string(service.max_batch),
                                   "--batch-delay-us",
                                   std::to_string(request.batch_delay_us)};
  if (request.threads > 0) {
    argv.insert(argv.end(), {"--threads", std::to_string(request.threads)});
  }
  return argv;
}

} // namespace

std::string Service::url() const
{
  return util::http_url(host, port);
}

std::string Service::infer_url() const
{
  return fmt::format("{}/v2/models/{}/versions/{}/infer", url(), model, version);
}

std::string_view health_name(Health health)
{
  switch (health) {
  case Health::ready: return "ready";
  case Health::loading: return "not ready";
  case Health::unresponsive: return "unresponsive";
  case Health::dead: return "dead";
  }
  return "unknown";
}

std::string tail_of_file(const fs::path& file, size_t lines)
{
  std::ifstream in(file);
  std::vector<std::string> kept;
  std::string line;
  while (std::getline(in, line)) {
    kept.push_back(line);
    if (kept.size() > lines) {
      kept.erase(kept.begin());
    }
  }
  return fmt::format("{}", fmt::join(kept, "\n"));
}

Services::Services(const Home& home, store::Database& db) : m_home(home), m_db(db) {}

fs::path Services::log_file(const Service& service) const
{
  return m_home.dir() / service.log_path;
}

bool Services::alive(const Service& service) const
{
  return util::process_alive(service.pid, service.process_start);
}

Health Services::health(const Service& service, std::chrono::milliseconds timeout)
{
  if (!alive(service)) {
    return Health::dead;
  }
  if (service.port == 0) {
    return Health::loading;
  }
  auto response = http_get(service.url() + "/v2/health/ready", timeout);
  return response.status == 200 ? Health::ready : response.status == 0 ? Health::unresponsive : Health::loading;
}

std::vector<Service> Services::list()
{
  auto select = m_db.prepare(fmt::format("SELECT {} FROM services ORDER BY name", columns));
  std::vector<Service> services;
  while (select.step()) {
    services.push_back(read_service(select));
  }
  return services;
}

std::optional<Service> Services::find(const std::string& name)
{
  auto select = m_db.prepare(fmt::format("SELECT {} FROM services WHERE name = ?", columns));
  select.bind(1, name);
  if (!select.step()) {
    return std::nullopt;
  }
  return read_service(select);
}

Service Services::get(const std::string& name)
{
  if (auto service = find(name)) {
    return *service;
  }
  std::vector<std::string> names;
  for (const auto& service : list()) {
    names.push_back(service.name);
  }
  throw Error(ExitCode::not_found,
              fmt::format("no service named '{}'; {}", name,
                          names.empty() ? std::string("none is running: `mlops serve start MODEL@REF` starts one")
                                        : fmt::format("the services are {}", fmt::join(names, ", "))));
}

std::optional<Service> Services::find_serving(const std::string& model, std::int64_t version)
{
  for (const auto& service : list()) {
    if (service.model == model && service.version == version && alive(service)) {
      return service;
    }
  }
  return std::nullopt;
}

void Services::forget(const Service& service)
{
  store::write_transaction(m_db, [&] {
    m_db.prepare("DELETE FROM services WHERE name = ? AND pid = ?").bind_all(service.name, service.pid).run();
  });
}

Started Services::start(const StartRequest& request)
{
  registry::Registry registry(m_home, m_db);
  auto version = registry.resolve(request.ref);
  if (version.archived_at) {
    throw Error(ExitCode::conflict, fmt::format("{} is archived (since {}); restore it with `mlops model restore {}` "
                                                "or serve another version",
                                                version.ref(), *version.archived_at, version.ref()));
  }
  if (version.format != "onnx") {
    throw Error(ExitCode::failure, fmt::format("{} is not an ONNX model (its format is '{}'): the worker serves ONNX "
                                               "models only; register the model exported to ONNX",
                                               version.ref(), version.format));
  }
  objects::ObjectStore store(m_home, m_db);
  auto model_file = store.object_path(version.digest);
  if (!fs::exists(model_file)) {
    throw Error(ExitCode::integrity, fmt::format("the file of {} ({}) is missing from the object store; "
                                                 "`mlops artifact verify` checks the store",
                                                 version.ref(), version.digest.text()));
  }
  Started started;
  Service& service = started.service;
  service.name = request.name.empty() ? version.model : request.name;
  data::validate_name(service.name, "service name");
  service.model = version.model;
  service.version = version.version;
  service.digest = version.digest.text();
  service.host = request.host;
  service.port = request.port;
  service.device = request.device;
  service.max_batch = request.max_batch;
  service.started_at = util::now_iso8601();
  auto dir = m_home.workers_dir() / service.name;
  service.log_path = fs::relative(dir / "worker.log", m_home.dir()).string();

  // Claim the name: a live service keeps it; a dead one is forgotten.
  store::write_transaction(m_db, [&] {
    if (auto existing = find(service.name)) {
      if (alive(*existing) || existing->pid == 0) {
        throw Error(ExitCode::conflict,
                    existing->pid == 0
                      ? fmt::format("the service '{}' is being started by another mlops; wait for it, pick another "
                                    "--name, or `mlops serve prune` if that start was interrupted",
                                    existing->name)
                      : fmt::format("the service '{}' is already running {} (pid {}, {}); stop it with `mlops serve "
                                    "stop {}` or pick another --name",
                                    existing->name, existing->ref(), existing->pid, existing->url(), existing->name));
      }
      started.replaced = existing;
      m_db.prepare("DELETE FROM services WHERE name = ?").bind(1, service.name).run();
    }
    m_db
      .prepare("INSERT INTO services (name, model, version, digest, pid, process_start, host, port, device, max_batch, "
               "log_path, started_at) VALUES (?, ?, ?, ?, 0, 0, ?, ?, ?, ?, ?, ?)")
      .bind_all(service.name, service.model, service.version, service.digest, service.host, service.port,
                service.device, service.max_batch, service.log_path, service.started_at)
      .run();
  });

  auto port_file = dir / "port";
  WorkerLaunch launch{worker_command(request, service, model_file, port_file), log_file(service), port_file,
                      service.host, fmt::format("the worker for {}", service.ref()), request.ready_timeout,
                      [&](int pid, std::int64_t process_start) {
                        service.pid = pid;
                        service.process_start = process_start;
                        // Recorded at once: if this command dies while the worker starts, `serve ls` finds it.
                        bool recorded = false;
                        store::write_transaction(m_db, [&] {
                          m_db.prepare("UPDATE services SET pid = ?, process_start = ? WHERE name = ? AND started_at = ?")
                            .bind_all(pid, process_start, service.name, service.started_at)
                            .run();
                          recorded = m_db.changes() == 1;
                        });
                        if (!recorded) {
                          // Stopped before it had a pid (`serve stop`, a deployment's abort): the
                          // worker must not run on with no row (launch_worker kills it).
                          throw Error(ExitCode::conflict, fmt::format("the service '{}' was stopped while it started",
                                                                      service.name));
                        }
                      }};
  try {
    auto launched = launch_worker(launch);
    service.port = launched.port;
    started.ready_ms = launched.ready_ms;
  } catch (...) {
    InterruptSetAside set_aside;  // Ctrl-C during the start must still remove the record
    store::write_transaction(m_db, [&] {
      m_db.prepare("DELETE FROM services WHERE name = ? AND started_at = ?").bind_all(service.name, service.started_at).run();
    });
    throw;
  }
  store::write_transaction(m_db, [&] {
    m_db.prepare("UPDATE services SET port = ? WHERE name = ? AND started_at = ?")
      .bind_all(service.port, service.name, service.started_at)
      .run();
  });
  return started;
}

bool Services::stop(const Service& service, std::chrono::milliseconds grace)
{
  bool killed = stop_process(service.pid, [&] { return alive(service); }, grace);
  forget(service);
  return killed;
}

} // namespace mlops::serve
