#include "mlops/serve/worker_launch.hpp"

#include "mlops/core/error.hpp"
#include "mlops/core/interrupt.hpp"
#include "mlops/serve/http_client.hpp"
#include "mlops/serve/services.hpp"
#include "mlops/util/child_process.hpp"
#include "mlops/util/url.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <csignal>
#include <fstream>
#include <thread>

#include <sys/wait.h>

namespace mlops::serve {

namespace fs = std::filesystem;
using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

namespace {

std::optional<int> read_port_file(const fs::path& file)
{
  std::ifstream in(file);
  int port = 0;
  if (in >> port && port > 0 && port < 65536) {
    return port;
  }
  return std::nullopt;
}

// Whether the child exited; reaps it. `status` gets a description.
bool child_exited(int pid, std::string& status)
{
  int raw = 0;
  if (waitpid(pid, &raw, WNOHANG) != pid) {
    return false;
  }
  status = WIFSIGNALED(raw) ? fmt::format("was killed by signal {}", WTERMSIG(raw))
                            : fmt::format("exited with status {}", WEXITSTATUS(raw));
  return true;
}

} // namespace

LaunchedWorker launch_worker(const WorkerLaunch& launch)
{
  auto begin = Clock::now();
  fs::create_directories(launch.log.parent_path());
  fs::remove(launch.port_file);
  std::ofstream(launch.log, std::ios::trunc).flush();
  LaunchedWorker launched;
  auto fail = [&](const std::string& what, ExitCode code = ExitCode::worker_unhealthy) -> Error {
    if (launched.pid > 0) {
      kill(launched.pid, SIGKILL);
      waitpid(launched.pid, nullptr, 0);
    }
    auto tail = tail_of_file(launch.log, 20);
    return Error(code, fmt::format("{}{}", what, tail.empty() ? std::string() : "; the end of its log:\n" + tail));
  };
  try {
    launched.pid = util::spawn_detached(launch.argv, launch.log);
  } catch (const Error& error) {
    throw fail(error.what());
  }
  launched.process_start = util::process_start_time(launched.pid).value_or(0);
  if (launch.spawned) {
    try {
      launch.spawned(launched.pid, launched.process_start);
    } catch (...) {
      fail("");
      throw;
    }
  }
  auto deadline = begin + launch.ready_timeout;
  auto pause = 1ms;
  while (true) {
    std::string status;
    if (child_exited(launched.pid, status)) {
      launched.pid = 0;
      throw fail(fmt::format("{} {} before it was ready", launch.what, status));
    }
    if (interrupted()) {
      throw fail(fmt::format("interrupted while {} was starting", launch.what), ExitCode::interrupted);
    }
    if (auto port = read_port_file(launch.port_file)) {
      launched.port = *port;
      auto remaining = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
      auto response = http_get(util::http_url(launch.host, *port) + "/v2/health/ready", std::clamp(remaining, 10ms, 1000ms));
      if (response.status == 200) {
        break;
      }
    }
    if (Clock::now() >= deadline) {
      throw fail(fmt::format("{} was not ready within {} ms (--ready-timeout)", launch.what, launch.ready_timeout.count()));
    }
    std::this_thread::sleep_for(pause);
    pause = std::min(pause * 2, std::chrono::milliseconds(50));
  }
  launched.ready_ms = std::chrono::duration<double, std::milli>(Clock::now() - begin).count();
  return launched;
}

bool stop_process(int pid, const std::function<bool()>& alive, std::chrono::milliseconds grace)
{
  if (pid <= 0 || !alive()) {
    return false;
  }
  kill(pid, SIGTERM);
  auto deadline = Clock::now() + grace;
  while (alive() && Clock::now() < deadline) {
    std::this_thread::sleep_for(5ms);
  }
  if (!alive()) {
    return false;
  }
  kill(pid, SIGKILL);
  while (alive()) {
    std::this_thread::sleep_for(5ms);
  }
  return true;
}

} // namespace mlops::serve
