#include "context.hpp"

#include "mlops/core/logging.hpp"
#include "mlops/util/duration.hpp"

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <cstdlib>
#include <iostream>
#include <unistd.h>

namespace mlops::cli {

namespace {

std::optional<std::string> env(const char* name)
{
  const char* value = std::getenv(name);
  return value ? std::optional<std::string>(value) : std::nullopt;
}

// NO_COLOR (https://no-color.org) and --no-color win; otherwise colour only on a terminal.
bool wants_color(bool no_color, int fd)
{
  return !no_color && !env("NO_COLOR") && isatty(fd) && env("TERM").value_or("dumb") != "dumb";
}

} // namespace

void Context::start()
{
  if (m_output) {
    return;
  }
  OutputStyle style;
  style.json = options.json;
  style.quiet = options.quiet;
  style.color = wants_color(options.no_color, STDOUT_FILENO);
  style.error_color = wants_color(options.no_color, STDERR_FILENO);
  m_output.emplace(style, std::cout, std::cerr);
  LogSettings settings{options.quiet ? -1 : options.verbosity, env("MLOPS_LOG"), style.error_color};
  try {
    setup_logging(settings);
  } catch (const Error& error) {
    // start() must not throw: main() calls it to report other errors. Log with the defaults and
    // let the command fail on the bad setting before it does anything.
    settings.env_level.reset();
    setup_logging(settings);
    m_setup_error = error;
  }
}

void Context::throw_if_setup_failed() const
{
  if (m_setup_error) {
    throw *m_setup_error;
  }
}

Output& Context::out()
{
  start();
  return *m_output;
}

std::optional<std::filesystem::path> Context::explicit_home() const
{
  if (options.home.empty()) {
    return std::nullopt;
  }
  return std::filesystem::path(options.home);
}

store::DatabaseOptions Context::database_options() const
{
  store::DatabaseOptions database_options;
  if (auto value = env("MLOPS_BUSY_TIMEOUT_MS")) {
    auto timeout = util::parse_duration(*value, std::chrono::milliseconds(1));
    if (!timeout) {
      throw Error(ExitCode::usage, fmt::format("MLOPS_BUSY_TIMEOUT_MS={} is not a duration, use "
                                               "milliseconds (30000) or a unit (30s)",
                                               *value));
    }
    database_options.busy_timeout = *timeout;
  }
  return database_options;
}

const Home& Context::home()
{
  if (!m_home) {
    m_home.emplace(locate_home(explicit_home(), std::filesystem::current_path()));
    spdlog::debug("home {} ({})", m_home->dir().string(),
                  explicit_home() ? "from --home or MLOPS_HOME" : "found upward");
  }
  return *m_home;
}

const Home* Context::find_home()
{
  if (!m_home) {
    if (explicit_home()) {
      return &home();  // An explicit home that does not exist is an error, not "no home".
    }
    auto found = find_home_upward(std::filesystem::current_path());
    if (!found) {
      return nullptr;
    }
    m_home.emplace(*found);
  }
  return &*m_home;
}

bool Context::progress_enabled()
{
  return isatty(STDERR_FILENO) && !options.json && !options.quiet;
}

store::Database& Context::database()
{
  if (!m_database) {
    m_database.emplace(home().open_database(database_options()));
  }
  return *m_database;
}

void Context::fail_after_result(const Error& error)
{
  OutputStyle style = out().style();
  style.json = false;  // The JSON result was the document; the error line is for people.
  Output(style, std::cout, std::cerr).error(error);
  m_exit_code = error.code();
}

std::filesystem::path worker_path()
{
  if (const char* given = std::getenv("MLOPS_WORKER"); given && *given) {
    return given;
  }
  std::error_code error;
  auto self = std::filesystem::read_symlink("/proc/self/exe", error);
  return error ? std::filesystem::path("mlops-worker") : self.parent_path() / "mlops-worker";
}

} // namespace mlops::cli
