#pragma once
// The worker's log: one line on stderr per event, with the time and the pid. When the control
// plane started the worker, stderr is its log file under .mlops/workers/ or .mlops/deployments/.

#include <fmt/format.h>

#include <string_view>

namespace mlops::worker {

void write_log_line(std::string_view message);

template <class... Args> void log_line(fmt::format_string<Args...> format, Args&&... args)
{
  write_log_line(fmt::format(format, std::forward<Args>(args)...));
}

} // namespace mlops::worker
