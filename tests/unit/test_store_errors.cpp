#include "mlops/store/errors.hpp"

#include <doctest/doctest.h>
#include <sqlite3.h>

#include <string>

using namespace mlops;

namespace {

struct Mapped
{
  ExitCode code;
  bool busy;
  std::string message;
};

Mapped map(int rc)
{
  try {
    store::throw_sqlite_error(nullptr, rc, "reading /x/mlops.db");
  } catch (const store::BusyError& error) {
    return {error.code(), true, error.what()};
  } catch (const Error& error) {
    return {error.code(), false, error.what()};
  }
  return {ExitCode::ok, false, ""};
}

} // namespace

TEST_CASE("mlops::store::throw_sqlite_error")
{
  SUBCASE("a lock held too long is a BusyError, which write transactions retry")
  {
    auto mapped = map(SQLITE_BUSY);
    CHECK(mapped.busy);
    CHECK(mapped.code == ExitCode::failure);
    CHECK(mapped.message.find("MLOPS_BUSY_TIMEOUT_MS") != std::string::npos);
    CHECK(map(SQLITE_BUSY_SNAPSHOT).busy);  // Extended codes map like their primary code.
  }
  SUBCASE("a table lock inside one connection is not retried: waiting cannot fix it")
  {
    CHECK_FALSE(map(SQLITE_LOCKED).busy);
  }
  SUBCASE("damage is an integrity error")
  {
    CHECK(map(SQLITE_CORRUPT).code == ExitCode::integrity);
    CHECK(map(SQLITE_NOTADB).code == ExitCode::integrity);
    CHECK(map(SQLITE_CORRUPT).message.find("mlops db check") != std::string::npos);
  }
  SUBCASE("constraint violations are conflicts")
  {
    CHECK(map(SQLITE_CONSTRAINT_UNIQUE).code == ExitCode::conflict);
  }
  SUBCASE("permissions and space are failures that say what to do")
  {
    CHECK(map(SQLITE_READONLY).message.find("not writable") != std::string::npos);
    CHECK(map(SQLITE_CANTOPEN).message.find("cannot be opened") != std::string::npos);
    CHECK(map(SQLITE_FULL).message.find("disk is full") != std::string::npos);
  }
  SUBCASE("an interrupt is exit 8")
  {
    CHECK(map(SQLITE_INTERRUPT).code == ExitCode::interrupted);
  }
  SUBCASE("every message says what was being done")
  {
    CHECK(map(SQLITE_IOERR).message.rfind("reading /x/mlops.db failed", 0) == 0);
  }
}
