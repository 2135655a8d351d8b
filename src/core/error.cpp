#include "mlops/core/error.hpp"

namespace mlops {

std::string_view exit_code_name(ExitCode code)
{
  switch (code) {
  case ExitCode::ok: return "ok";
  case ExitCode::failure: return "failure";
  case ExitCode::usage: return "usage";
  case ExitCode::not_found: return "not_found";
  case ExitCode::conflict: return "conflict";
  case ExitCode::integrity: return "integrity";
  case ExitCode::gate_failed: return "gate_failed";
  case ExitCode::worker_unhealthy: return "worker_unhealthy";
  case ExitCode::interrupted: return "interrupted";
  }
  return "failure";
}

std::string_view exit_code_meaning(ExitCode code)
{
  switch (code) {
  case ExitCode::ok: return "success";
  case ExitCode::failure: return "failure (I/O, permissions, anything not listed below)";
  case ExitCode::usage: return "usage error: unknown command, bad option or value";
  case ExitCode::not_found: return "not found: no home, or no such object, run, model or service";
  case ExitCode::conflict: return "conflict with what is stored (a param logged twice, a newer database)";
  case ExitCode::integrity: return "integrity: corrupt or missing data, a failed check";
  case ExitCode::gate_failed: return "a gate or rollout analysis failed (the rollback happened)";
  case ExitCode::worker_unhealthy: return "a worker did not become healthy, or timed out";
  case ExitCode::interrupted: return "interrupted by SIGINT or SIGTERM";
  }
  return "failure";
}

Error::Error(ExitCode code, const std::string& message) : std::runtime_error(message), m_code(code) {}

} // namespace mlops
