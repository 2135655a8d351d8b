#include "mlops/util/child_process.hpp"

#include "mlops/core/error.hpp"
#include "mlops/core/interrupt.hpp"

#include <fcntl.h>
#include <poll.h>
#include <fmt/format.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <csignal>
#include <cstdio>
#include <cstring>

namespace mlops::util {

namespace {

std::atomic<pid_t> g_child{0};
std::atomic<int> g_received{0};

void forward(int signo, siginfo_t* info, void*)
{
  g_received.store(signo);
  bool from_a_process = info && (info->si_code == SI_USER || info->si_code == SI_QUEUE || info->si_code == SI_TKILL);
  pid_t child = g_child.load();
  if (child > 0 && (signo == SIGTERM || from_a_process)) {
    ::kill(child, signo);
  }
}

// In a forked child: runs `argv`, or writes errno to `status_fd` (close-on-exec, so the parent
// reads nothing when the exec worked) and exits 127.
[[noreturn]] void exec_or_report(const std::vector<std::string>& argv, int status_fd)
{
  std::vector<char*> args;
  for (const auto& arg : argv) {
    args.push_back(const_cast<char*>(arg.c_str()));
  }
  args.push_back(nullptr);
  ::execvp(args[0], args.data());
  int error = errno;
  [[maybe_unused]] auto written = ::write(status_fd, &error, sizeof error);
  ::_exit(127);
}

void set_handler(int signo, void (*action)(int, siginfo_t*, void*))
{
  struct sigaction handler = {};
  handler.sa_sigaction = action;
  handler.sa_flags = SA_SIGINFO | SA_RESTART;
  sigemptyset(&handler.sa_mask);
  sigaction(signo, &handler, nullptr);
}

} // namespace

ChildExit run_child(const std::vector<std::string>& argv, const std::vector<std::pair<std::string, std::string>>& environment)
{
  if (argv.empty()) {
    throw Error(ExitCode::usage, "no command given to run");
  }
  int status_pipe[2];
  if (::pipe2(status_pipe, O_CLOEXEC) != 0) {
    throw Error(ExitCode::failure, fmt::format("cannot start {}: {}", argv[0], std::strerror(errno)));
  }
  g_received.store(0);
  set_handler(SIGINT, forward);
  set_handler(SIGTERM, forward);
  pid_t child = ::fork();
  if (child == 0) {
    // The child: default signal handling, our environment plus the additions, then the program.
    // On failure errno goes back through the pipe (closed on a successful exec).
    ::close(status_pipe[0]);
    signal(SIGINT, SIG_DFL);
    signal(SIGTERM, SIG_DFL);
    for (const auto& [name, value] : environment) {
      ::setenv(name.c_str(), value.c_str(), 1);
    }
    exec_or_report(argv, status_pipe[1]);
  }
  ::close(status_pipe[1]);
  if (child < 0) {
    int error = errno;
    ::close(status_pipe[0]);
    install_interrupt_handlers();
    throw Error(ExitCode::failure, fmt::format("cannot start {}: {}", argv[0], std::strerror(error)));
  }
  g_child.store(child);
  int exec_error = 0;
  ssize_t got = 0;
  do {
    got = ::read(status_pipe[0], &exec_error, sizeof exec_error);
  } while (got < 0 && errno == EINTR);
  ::close(status_pipe[0]);

  int status = 0;
  while (::waitpid(child, &status, 0) < 0 && errno == EINTR) {
  }
  g_child.store(0);
  ChildExit result;
  result.received = g_received.load();
  install_interrupt_handlers();  // mlops' own handling again
  if (got == sizeof exec_error) {
    throw Error(exec_error == ENOENT ? ExitCode::not_found : ExitCode::failure,
                fmt::format("cannot run {}: {}{}", argv[0], std::strerror(exec_error),
                            exec_error == ENOENT ? " (is it installed and on PATH?)" : ""));
  }
  if (WIFSIGNALED(status)) {
    result.signal = WTERMSIG(status);
    result.exit_code = 128 + result.signal;
  } else {
    result.exit_code = WEXITSTATUS(status);
  }
  return result;
}

CapturedRun run_capturing(const std::vector<std::string>& argv)
{
  int out_pipe[2];
  int err_pipe[2];
  int status_pipe[2];
  if (::pipe2(out_pipe, O_CLOEXEC) != 0 || ::pipe2(err_pipe, O_CLOEXEC) != 0 || ::pipe2(status_pipe, O_CLOEXEC) != 0) {
    throw Error(ExitCode::failure, fmt::format("cannot start {}: {}", argv.at(0), std::strerror(errno)));
  }
  pid_t child = ::fork();
  if (child == 0) {
    ::dup2(out_pipe[1], STDOUT_FILENO);
    ::dup2(err_pipe[1], STDERR_FILENO);
    exec_or_report(argv, status_pipe[1]);
  }
  for (int fd : {out_pipe[1], err_pipe[1], status_pipe[1]}) {
    ::close(fd);
  }
  if (child < 0) {
    int error = errno;
    for (int fd : {out_pipe[0], err_pipe[0], status_pipe[0]}) {
      ::close(fd);
    }
    throw Error(ExitCode::failure, fmt::format("cannot start {}: {}", argv[0], std::strerror(error)));
  }
  CapturedRun result;
  // Both pipes at once, so that a child filling one while we wait on the other cannot block.
  struct pollfd fds[2] = {{out_pipe[0], POLLIN, 0}, {err_pipe[0], POLLIN, 0}};
  std::string* sinks[2] = {&result.out, &result.err};
  int open_pipes = 2;
  while (open_pipes > 0) {
    if (::poll(fds, 2, -1) < 0) {
      if (errno == EINTR) {
        continue;
      }
      break;
    }
    for (int i = 0; i < 2; ++i) {
      if (fds[i].fd >= 0 && (fds[i].revents & (POLLIN | POLLHUP | POLLERR))) {
        char buffer[65536];
        ssize_t got = ::read(fds[i].fd, buffer, sizeof buffer);
        if (got > 0) {
          sinks[i]->append(buffer, static_cast<size_t>(got));
        } else if (got == 0 || errno != EINTR) {
          ::close(fds[i].fd);
          fds[i].fd = -1;
          --open_pipes;
        }
      }
    }
  }
  int exec_error = 0;
  ssize_t got = ::read(status_pipe[0], &exec_error, sizeof exec_error);
  ::close(status_pipe[0]);
  int status = 0;
  while (::waitpid(child, &status, 0) < 0 && errno == EINTR) {
  }
  if (got == sizeof exec_error) {
    throw Error(exec_error == ENOENT ? ExitCode::not_found : ExitCode::failure,
                fmt::format("cannot run {}: {}", argv[0], std::strerror(exec_error)));
  }
  result.exit_code = WIFSIGNALED(status) ? 128 + WTERMSIG(status) : WEXITSTATUS(status);
  return result;
}

int spawn_detached(const std::vector<std::string>& argv, const std::filesystem::path& log)
{
  // Everything the child needs is prepared before fork: after it, only async-signal-safe calls.
  std::vector<char*> args;
  for (const auto& arg : argv) {
    args.push_back(const_cast<char*>(arg.c_str()));
  }
  args.push_back(nullptr);
  int log_fd = ::open(log.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  if (log_fd < 0) {
    throw Error(ExitCode::failure, fmt::format("cannot open the log {}: {}", log.string(), std::strerror(errno)));
  }
  int null_fd = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
  pid_t pid = fork();
  if (pid < 0) {
    int error = errno;
    ::close(log_fd);
    ::close(null_fd);
    throw Error(ExitCode::failure, fmt::format("cannot start {}: {}", argv[0], std::strerror(error)));
  }
  if (pid == 0) {
    setsid();
    // Default dispositions and mask: the worker installs its own SIGTERM handling.
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, nullptr);
    signal(SIGINT, SIG_DFL);
    signal(SIGTERM, SIG_DFL);
    signal(SIGPIPE, SIG_DFL);
    dup2(null_fd, STDIN_FILENO);
    dup2(log_fd, STDOUT_FILENO);
    dup2(log_fd, STDERR_FILENO);
    execv(args[0], args.data());
    const char* message = "mlops: cannot execute the worker: ";
    [[maybe_unused]] auto written = write(STDERR_FILENO, message, strlen(message));
    const char* reason = strerror(errno);
    written = write(STDERR_FILENO, reason, strlen(reason));
    written = write(STDERR_FILENO, "\n", 1);
    _exit(127);
  }
  ::close(log_fd);
  ::close(null_fd);
  return pid;
}

std::optional<std::int64_t> process_start_time(int pid)
{
  if (pid <= 0) {
    return std::nullopt;
  }
  char path[64];
  std::snprintf(path, sizeof(path), "/proc/%d/stat", pid);
  int fd = ::open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    return std::nullopt;
  }
  char buffer[1024];
  auto size = ::read(fd, buffer, sizeof(buffer) - 1);
  ::close(fd);
  if (size <= 0) {
    return std::nullopt;
  }
  buffer[size] = '\0';
  // "pid (comm) state ppid ...": comm may hold spaces and parentheses, so parse after the last ')'.
  const char* fields = std::strrchr(buffer, ')');
  if (!fields) {
    return std::nullopt;
  }
  char state = 0;
  long long start = 0;
  int parsed = std::sscanf(fields + 1, " %c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %*u %*u %*d %*d %*d %*d %*d %*d %lld",
                           &state, &start);
  if (parsed != 2 || state == 'Z' || state == 'X') {
    return std::nullopt;
  }
  return start;
}

bool process_alive(int pid, std::int64_t start_time)
{
  return pid > 0 && process_start_time(pid) == start_time;
}

} // namespace mlops::util
