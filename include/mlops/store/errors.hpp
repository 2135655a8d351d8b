#pragma once
// How SQLite failures become mlops errors; one place, so every command words them the same way.

#include "mlops/core/error.hpp"

#include <string_view>

struct sqlite3;

namespace mlops::store {

// The database stayed locked by another process for longer than the busy timeout, or reported a
// lock that SQLite does not wait for. write_transaction() catches it and retries.
class BusyError : public Error
{
public:
  using Error::Error;
};

// Throws the Error that matches SQLite result `rc` on connection `db` (which may be null),
// with `doing` describing the operation ("opening /x/mlops.db").
[[noreturn]] void throw_sqlite_error(sqlite3* db, int rc, std::string_view doing);

} // namespace mlops::store
