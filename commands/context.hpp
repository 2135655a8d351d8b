#pragma once
// What every command handler gets: the global options, and the output, home and database, each
// set up on first use so that commands which need none of them (version, completion) stay fast.

#include "mlops/core/error.hpp"
#include "mlops/core/output.hpp"
#include "mlops/home/home.hpp"
#include "mlops/store/database.hpp"

#include <filesystem>
#include <optional>
#include <string>

namespace mlops::cli {

struct GlobalOptions
{
  std::string home;  // --home, or MLOPS_HOME
  bool json = false;
  bool quiet = false;
  bool no_color = false;
  int verbosity = 0;
};

class Context
{
public:
  GlobalOptions options;
  // The words after `--` on the command line (the command `run exec` runs), and whether there was a `--`.
  std::vector<std::string> trailing_args;
  bool has_trailing = false;
  // The whole command line, as typed (for records such as the alias history).
  std::string command_line;

  // Sets up logging and output from the parsed global options. Runs before every handler; never
  // throws (main() relies on it to report errors).
  void start();
  // Throws what start() could not apply (a bad MLOPS_LOG), before a command does anything.
  void throw_if_setup_failed() const;

  Output& out();
  std::optional<std::filesystem::path> explicit_home() const;
  store::DatabaseOptions database_options() const;
  const Home& home();
  // The home when there is one (for commands that also work without, like `hash`).
  const Home* find_home();
  // Whether long work may draw a progress bar: stderr is a terminal, no --json, no -q.
  bool progress_enabled();
  store::Database& database();

  // For commands whose result is itself the failure report (`db check`): the result is printed,
  // the error goes to stderr only (so --json output stays one document), and mlops exits with
  // the error's code.
  void fail_after_result(const Error& error);
  // For `run exec`, which exits with its child's status, whatever number that is.
  void exit_with(int code) { m_exit_code = static_cast<ExitCode>(code); }
  ExitCode exit_code() const { return m_exit_code; }

private:
  std::optional<Output> m_output;
  std::optional<Home> m_home;
  std::optional<store::Database> m_database;
  std::optional<Error> m_setup_error;
  ExitCode m_exit_code = ExitCode::ok;
};

// The bundled worker: beside this binary (as installed and as built), unless MLOPS_WORKER says.
std::filesystem::path worker_path();

} // namespace mlops::cli
