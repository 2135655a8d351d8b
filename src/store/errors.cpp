#include "mlops/store/errors.hpp"

#include "mlops/core/interrupt.hpp"

#include <fmt/format.h>
#include <sqlite3.h>

namespace mlops::store {

void throw_sqlite_error(sqlite3* db, int rc, std::string_view doing)
{
  // A signal makes SQLite fail in several ways (SQLITE_INTERRUPT, or SQLITE_BUSY when the busy
  // handler stops waiting); the user's request to stop is the real cause.
  throw_if_interrupted();
  const char* detail = db ? sqlite3_errmsg(db) : sqlite3_errstr(rc);
  switch (rc & 0xff) {
  case SQLITE_INTERRUPT:
    throw Error(ExitCode::interrupted, fmt::format("{} was interrupted", doing));
  case SQLITE_BUSY:
    throw BusyError(ExitCode::failure,
                    fmt::format("{} failed: another process kept the database locked longer than "
                                "MLOPS_BUSY_TIMEOUT_MS allows ({}), retry later, raise "
                                "MLOPS_BUSY_TIMEOUT_MS, or find the process with `fuser -v` on "
                                "the database file",
                                doing, detail));
  case SQLITE_CORRUPT:
  case SQLITE_NOTADB:
    throw Error(ExitCode::integrity,
                fmt::format("{} failed: the database is damaged ({}), run `mlops db check` and "
                            "restore the database file from a backup",
                            doing, detail));
  case SQLITE_READONLY:
  case SQLITE_PERM:
  case SQLITE_AUTH:
    throw Error(ExitCode::failure,
                fmt::format("{} failed: the home is not writable ({}), check the permissions of "
                            "the database file and its directory",
                            doing, detail));
  case SQLITE_CANTOPEN:
    throw Error(ExitCode::failure,
                fmt::format("{} failed: the database file cannot be opened ({}), check that its "
                            "directory exists and is readable and writable",
                            doing, detail));
  case SQLITE_FULL:
    throw Error(ExitCode::failure,
                fmt::format("{} failed: the disk is full ({}), free some space and retry", doing,
                            detail));
  case SQLITE_CONSTRAINT:
    throw Error(ExitCode::conflict, fmt::format("{} failed: {}", doing, detail));
  default:
    throw Error(ExitCode::failure, fmt::format("{} failed: {}", doing, detail));
  }
}

} // namespace mlops::store
