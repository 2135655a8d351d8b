#pragma once
// One SQLite connection to an mlops database. Every connection gets the same settings: foreign
// keys on, defensive mode, extended result codes, and a busy handler that waits with back-off for
// other processes' locks, gives up after `busy_timeout`, and stops early when the user interrupts.

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <string_view>

struct sqlite3;
struct sqlite3_stmt;

namespace mlops::store {

class Statement;

struct DatabaseOptions
{
  bool create = false;     // create the file when it does not exist
  bool read_only = false;  // open without write access (nothing may be written)
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
  // in use twice at once (the second gets a fresh statement).
  Statement prepare(std::string_view sql);

  std::int64_t last_insert_rowid() const;
  int changes() const;

  const std::filesystem::path& path() const;
  std::chrono::milliseconds busy_timeout() const;
  sqlite3* handle() const;

private:
  friend class Statement;
  void return_to_cache(sqlite3_stmt* stmt);

  struct Impl;
  explicit Database(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> m_impl;
};

} // namespace mlops::store
