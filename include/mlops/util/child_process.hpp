#pragma once
// Runs a command as a child process and waits for it, as a shell would, for `mlops run exec`.

#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace mlops::util {

struct ChildExit
{
  int exit_code = 0;  // the child's exit status, or 128 + signal when a signal ended it
  int signal = 0;     // the signal that ended it, 0 when it exited
  int received = 0;   // SIGINT or SIGTERM that reached mlops while the child ran, 0 if none
};

// Runs `argv` (looked up in PATH) with `environment` added to ours and waits. SIGTERM, and SIGINT
// sent by another process, are forwarded to the child; a SIGINT from the terminal already reaches
// the child (same process group), so it is only noted, never sent twice. Throws Error: not_found
// when the program does not exist, failure when it cannot be started.
ChildExit run_child(const std::vector<std::string>& argv, const std::vector<std::pair<std::string, std::string>>& environment);

struct CapturedRun
{
  int exit_code = 0;  // 128 + signal when a signal ended it
  std::string out;
  std::string err;
};

// Runs `argv` (a path, or looked up in PATH) to completion, capturing its stdout and stderr.
// Throws Error: not_found when the program does not exist, failure when it cannot be started.
CapturedRun run_capturing(const std::vector<std::string>& argv);

// Starts `argv[0]` (a path) in a session of its own (so the terminal's Ctrl-C and the end of
// this process leave it running), stdin from /dev/null, stdout and stderr appended to `log`.
// Returns its pid; the caller may waitpid() it while it lives. Throws Error(failure) when it
// cannot be started; a failed exec is written to the log and exits 127.
int spawn_detached(const std::vector<std::string>& argv, const std::filesystem::path& log);

// The kernel's start time of `pid` (clock ticks since boot), or nothing when there is no such
// process or it is a zombie: with the pid, it names one process for good (pids are reused).
std::optional<std::int64_t> process_start_time(int pid);

// Whether the process that started at `start_time` as `pid` still runs.
bool process_alive(int pid, std::int64_t start_time);

} // namespace mlops::util
