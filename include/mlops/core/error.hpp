#pragma once
// The one error type of mlops. Every failure that reaches the user is an Error carrying the exit
// code the README documents; main() is the only place that catches it.

#include <stdexcept>
#include <string>
#include <string_view>

namespace mlops {

enum class ExitCode : int {
  ok = 0,
  failure = 1,           // anything else that went wrong
  usage = 2,             // bad command line
  not_found = 3,         // no home, no such object, run, model...
  conflict = 4,          // the request contradicts what is stored
  integrity = 5,         // corrupt or missing data
  gate_failed = 6,       // a gate or rollout analysis failed (rollback happened)
  worker_unhealthy = 7,  // a worker did not become healthy, or timed out
  interrupted = 8,       // SIGINT or SIGTERM ended the command
};

// The stable machine-readable name of a code, as used in `{"error": {"code": ...}}`.
std::string_view exit_code_name(ExitCode code);

// What the code means, in words, for the README and the man page.
std::string_view exit_code_meaning(ExitCode code);

// Messages follow "what, why, what to do": "no mlops home above /src, run `mlops init`".
class Error : public std::runtime_error
{
public:
  Error(ExitCode code, const std::string& message);

  ExitCode code() const { return m_code; }
  int exit_status() const { return static_cast<int>(m_code); }

private:
  ExitCode m_code;
};

} // namespace mlops
