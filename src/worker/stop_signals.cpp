#include "mlops/worker/stop_signals.hpp"

#include "mlops/core/error.hpp"
#include "mlops/worker/worker_log.hpp"

#include <fmt/chrono.h>

#include <cerrno>
#include <csignal>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <fstream>
#include <thread>

#include <fcntl.h>
#include <poll.h>
#include <unistd.h>

namespace mlops::worker {

namespace {

// SIGTERM and SIGINT write their number here. A handler rather than sigwait: threads that
// libraries start before main (OpenBLAS's) do not block signals, and one would die of it.
int g_signal_pipe[2] = {-1, -1};

extern "C" void on_stop_signal(int signal)
{
  auto byte = static_cast<unsigned char>(signal);
  [[maybe_unused]] auto written = write(g_signal_pipe[1], &byte, 1);
}

// Waits for a signal byte for up to `timeout_ms` (forever when negative); the signal, or 0.
int wait_for_signal(int timeout_ms)
{
  pollfd wait{g_signal_pipe[0], POLLIN, 0};
  while (true) {
    int ready = poll(&wait, 1, timeout_ms);
    if (ready > 0) {
      unsigned char byte = 0;
      if (read(g_signal_pipe[0], &byte, 1) == 1) {
        return byte;
      }
    } else if (ready == 0 || errno != EINTR) {
      return 0;
    }
  }
}

} // namespace

void write_log_line(std::string_view message)
{
  auto line = fmt::format("{:%Y-%m-%dT%H:%M:%S} mlops-worker[{}]: {}\n", fmt::localtime(std::time(nullptr)), getpid(),
                          message);
  std::fputs(line.c_str(), stderr);
}

void drain_on_stop_signals(std::function<void()> drain, std::chrono::seconds drain_timeout)
{
  if (pipe2(g_signal_pipe, O_CLOEXEC) != 0) {
    throw Error(ExitCode::failure, fmt::format("cannot create a pipe: {}", std::strerror(errno)));
  }
  struct sigaction action = {};
  action.sa_handler = on_stop_signal;
  sigemptyset(&action.sa_mask);
  action.sa_flags = SA_RESTART;
  sigaction(SIGTERM, &action, nullptr);
  sigaction(SIGINT, &action, nullptr);
  std::thread([drain = std::move(drain), drain_timeout] {
    int received = wait_for_signal(-1);
    log_line("received {}: no new connections; finishing the requests in flight (a second signal exits at once)",
             strsignal(received));
    drain();
    if (wait_for_signal(static_cast<int>(drain_timeout.count() * 1000)) != 0) {
      log_line("second signal: exiting without finishing the requests in flight");
    } else {
      log_line("requests still in flight after {} s: exiting", drain_timeout.count());
    }
    std::_Exit(static_cast<int>(ExitCode::interrupted));
  }).detach();
}

void write_port_file(const std::filesystem::path& file, int port)
{
  auto staging = file;
  staging += ".tmp";
  {
    std::ofstream out(staging, std::ios::trunc);
    out << port << "\n";
    if (!out.flush()) {
      throw Error(ExitCode::failure, fmt::format("cannot write the port file {}", file.string()));
    }
  }
  std::filesystem::rename(staging, file);
}

} // namespace mlops::worker
