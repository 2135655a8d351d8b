#pragma once
// Starting a worker process (`mlops-worker serve` or `route`) detached, with its log, and waiting
// until it is ready: the port file (written once the worker listens), then GET /v2/health/ready,
// polled with back-off from 1 ms to 50 ms, while the child is watched. Services and deployments
// both start their workers through it.

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <string>
#include <vector>

namespace mlops::serve {

struct WorkerLaunch
{
  std::vector<std::string> argv;  // which passes --port-file port_file to the worker
  std::filesystem::path log;
  std::filesystem::path port_file;
  std::string host;
  std::string what;  // "the worker for churn@2", for messages
  std::chrono::milliseconds ready_timeout{60'000};
  // Called as soon as the process exists, to record it (a later crash of this command must not
  // leave a worker nobody knows about).
  std::function<void(int pid, std::int64_t process_start)> spawned;
};

struct LaunchedWorker
{
  int pid = 0;
  std::int64_t process_start = 0;
  int port = 0;
  double ready_ms = 0;
};

// Throws Error(worker_unhealthy) when the worker exits or is not ready in time (it is killed;
// the message ends with its log's tail), Error(interrupted) on Ctrl-C (it is killed too).
LaunchedWorker launch_worker(const WorkerLaunch& launch);

// SIGTERM, up to `grace` for the drain, then SIGKILL. Returns whether it had to be killed.
// `alive` says whether the process is still the one we started (pids are reused).
bool stop_process(int pid, const std::function<bool()>& alive, std::chrono::milliseconds grace);

} // namespace mlops::serve
