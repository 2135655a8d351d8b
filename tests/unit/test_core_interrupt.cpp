#include "mlops/core/interrupt.hpp"

#include "mlops/core/error.hpp"
#include "mlops/store/database.hpp"
#include "mlops/store/statement.hpp"

#include "temp_dir.hpp"

#include <doctest/doctest.h>

#include <csignal>
#include <functional>
#include <sys/wait.h>
#include <unistd.h>

using namespace mlops;

namespace {

// The interrupt flag is process-wide and never cleared, so each case runs in a child process.
// The child's exit status is the test's verdict: 0 passed, anything else names the failed step.
int in_child(const std::function<int()>& body)
{
  pid_t pid = fork();
  if (pid == 0) {
    int status = 99;
    try {
      status = body();
    } catch (...) {
      status = 98;
    }
    _exit(status);
  }
  int status = 0;
  waitpid(pid, &status, 0);
  return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

int expect_interrupted(const std::function<void()>& work, const char* expected_signal_name)
{
  try {
    work();
  } catch (const Error& error) {
    if (error.code() != ExitCode::interrupted) {
      return 2;
    }
    return std::string(error.what()).find(expected_signal_name) != std::string::npos ? 0 : 3;
  }
  return 1;
}

} // namespace

TEST_CASE("mlops::throw_if_interrupted")
{
  SUBCASE("nothing happens without a signal")
  {
    CHECK(in_child([] {
            install_interrupt_handlers();
            throw_if_interrupted();
            return interrupted() ? 1 : 0;
          }) == 0);
  }
  SUBCASE("SIGINT and SIGTERM become Error(interrupted) naming the signal")
  {
    CHECK(in_child([] {
            install_interrupt_handlers();
            raise(SIGINT);
            return expect_interrupted([] { throw_if_interrupted(); }, "SIGINT");
          }) == 0);
    CHECK(in_child([] {
            install_interrupt_handlers();
            raise(SIGTERM);
            return expect_interrupted([] { throw_if_interrupted(); }, "SIGTERM");
          }) == 0);
  }
  SUBCASE("a second signal exits at once with code 8")
  {
    CHECK(in_child([] {
            install_interrupt_handlers();
            raise(SIGINT);
            raise(SIGINT);
            return 0;
          }) == 8);
  }
}

TEST_CASE("mlops::store::Statement::step after a signal")
{
  // SQLite forgets an interrupt that arrives between statements; the store must not.
  test::TempDir dir;
  auto path = dir.path() / "mlops.db";
  CHECK(in_child([&] {
          install_interrupt_handlers();
          auto db = store::Database::open(path, store::DatabaseOptions{.create = true});
          db.exec("CREATE TABLE t (x)");
          raise(SIGTERM);
          return expect_interrupted(
            [&] {
              auto statement = db.prepare("SELECT count(*) FROM t");
              statement.step();
            },
            "SIGTERM");
        }) == 0);
}
