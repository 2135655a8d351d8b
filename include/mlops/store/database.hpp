#pragma once
// One SQLite connection to an mlops database. Every connection gets the same settings: foreign
// keys on, synchronous=FULL, defensive mode, extended result codes, and a busy handler that waits
// with back-off for other processes' locks, gives up after `busy_timeout`, and stops early when the
// user interrupts. A connection belongs to one thread at a time.

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <string_view>

struct sqlite3;

namespace mlops::store {

struct Connection;
class Statement;

struct DatabaseOptions
{
  bool create = false;  // create the file when it does not exist
  std::chrono::milliseconds busy_timeout{30'000};
};

class Database
{
public:
  // Throws Error: not_found when the file is missing and !create, integrity when it is not a
  // database, failure when it cannot be opened (permissions, I/O).
  static Database open(const std::filesystem::path& path, const DatabaseOptions& options = {});

  Database(Database&&) noexcept;
  Database& operator=(Database&&) noexcept;
  ~Database();

  // Runs one or more statements that return no rows.
  void exec(std::string_view sql);

  // A prepared statement from this connection's cache: preparing the same SQL again costs nothing.
  // The Statement goes back to the cache, reset, when it goes out of scope; the same SQL may be
  // in use twice at once (the second gets a fresh statement). `sql` must be one statement: text
  // after it is an error, not silently ignored.
  Statement prepare(std::string_view sql);

  std::int64_t last_insert_rowid() const;
  int changes() const;

  const std::filesystem::path& path() const;
  std::chrono::milliseconds busy_timeout() const;
  sqlite3* handle() const;
  Connection& connection() const { return *m_connection; }

private:
  explicit Database(std::unique_ptr<Connection> connection);
  std::unique_ptr<Connection> m_connection;
};

} // namespace mlops::store
