#pragma once
// Services: registered model versions running on the bundled worker, launched and supervised
// by the control plane. A service is a row in the `services` table plus a detached
// `mlops-worker serve` process whose log is .mlops/workers/SERVICE/worker.log.
//
// Start-up: the row goes in first (pid 0), then the worker is spawned in its own session with
// --port-file; readiness is polled over HTTP with back-off, and the child is watched the whole
// time: if it exits or the timeout passes, it is killed, the row removed, and the error carries
// the log's tail (exit 7).

#include "mlops/home/home.hpp"
#include "mlops/registry/registry.hpp"

#include <chrono>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

namespace mlops::serve {

struct Service
{
  std::string name;
  std::string model;
  std::int64_t version = 0;
  std::string digest;
  int pid = 0;
  std::int64_t process_start = 0;
  std::string host;
  int port = 0;
  std::string device;
  std::int64_t max_batch = 0;
  std::string log_path;  // relative to the home's directory
  std::string started_at;

  std::string ref() const { return model + "@" + std::to_string(version); }
  std::string url() const;
  // POST here to infer: /v2/models/MODEL/versions/N/infer.
  std::string infer_url() const;
};

// What a service's process is doing now.
enum class Health {
  ready,       // answers /v2/health/ready with 200
  loading,     // alive, ready says 503 (loading or draining)
  unresponsive,// alive, but no HTTP answer in time
  dead,        // the process is gone (or the pid now belongs to another program)
};
std::string_view health_name(Health health);

struct StartRequest
{
  registry::ModelRef ref;
  std::string name;  // empty: the model's name
  std::string host = "127.0.0.1";
  int port = 0;
  std::string device = "auto";
  std::int64_t max_batch = 64;
  std::int64_t batch_delay_us = 0;
  unsigned threads = 0;
  std::chrono::milliseconds ready_timeout{60'000};
  std::filesystem::path worker;  // mlops-worker
};

struct Started
{
  Service service;
  double ready_ms = 0;
  std::optional<Service> replaced;  // a dead service of the same name that was forgotten
};

class Services
{
public:
  Services(const Home& home, store::Database& db);

  // Throws Error: not_found (model), conflict (name taken by a live service, archived version),
  // failure (not an ONNX model), worker_unhealthy (exited or not ready in time; the message
  // holds the log's tail).
  Started start(const StartRequest& request);
  std::vector<Service> list();
  Service get(const std::string& name);  // Error(not_found) listing the services
  std::optional<Service> find(const std::string& name);
  // A live service serving exactly `model`@`version`, if any.
  std::optional<Service> find_serving(const std::string& model, std::int64_t version);

  Health health(const Service& service, std::chrono::milliseconds timeout = std::chrono::milliseconds(1000));
  bool alive(const Service& service) const;

  // SIGTERM, up to `grace` for the drain, then SIGKILL; the row goes either way. Returns
  // whether the process had to be killed.
  bool stop(const Service& service, std::chrono::milliseconds grace);
  void forget(const Service& service);
  std::filesystem::path log_file(const Service& service) const;

private:
  const Home& m_home;
  store::Database& m_db;
};

// The last `lines` lines of a file (for error messages); empty when it cannot be read.
std::string tail_of_file(const std::filesystem::path& file, size_t lines);

} // namespace mlops::serve
