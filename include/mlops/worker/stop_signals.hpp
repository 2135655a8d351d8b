#pragma once
// How a worker (serve or route mode) starts and ends. It ends thus: the first SIGTERM or SIGINT calls `drain` (on a thread
// of its own), which stops accepting and lets the requests in flight finish; a second signal, or
// `drain_timeout` without the process having exited, ends it at once with status 8.

#include <chrono>
#include <filesystem>
#include <functional>

namespace mlops::worker {

void drain_on_stop_signals(std::function<void()> drain, std::chrono::seconds drain_timeout);

// Writes `port` to `file` atomically (a reader never sees half of it), once the port is open.
void write_port_file(const std::filesystem::path& file, int port);

} // namespace mlops::worker
