#pragma once
// Logs go to stderr through spdlog: "mlops: warning: ...". The level comes from -q/-v when given,
// else from MLOPS_LOG (trace, debug, info, warn, error, off), else warnings and errors only.

#include <optional>
#include <string>

namespace mlops {

struct LogSettings
{
  int verbosity = 0;  // -1 for -q, 1 per -v
  std::optional<std::string> env_level;  // the value of MLOPS_LOG
  bool color = false;
};

// Throws Error(usage) for an MLOPS_LOG value that is not a level.
void setup_logging(const LogSettings& settings);

} // namespace mlops
