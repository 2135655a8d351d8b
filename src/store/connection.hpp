#pragma once
// The inside of a Database, shared by database.cpp and statement.cpp only. It lives on the heap,
// so Statements can point at it while the Database object that owns it is moved.

#include <sqlite3.h>

#include <chrono>
#include <filesystem>
#include <optional>
#include <string>
#include <unordered_map>

namespace mlops::store {

struct Connection
{
  using Clock = std::chrono::steady_clock;

  sqlite3* db = nullptr;
  std::filesystem::path path;
  std::chrono::milliseconds busy_timeout{};
  // Set by retry_while_busy so that its retries and SQLite's own waiting share one deadline.
  std::optional<Clock::time_point> busy_deadline;
  Clock::time_point busy_since{};
  std::unordered_map<std::string, sqlite3_stmt*> statement_cache;

  Connection() = default;
  Connection(const Connection&) = delete;
  Connection& operator=(const Connection&) = delete;
  ~Connection();

  // Takes back a statement a Statement is done with; finalizes it when the cache already has one
  // for the same SQL, or when caching fails.
  void return_to_cache(sqlite3_stmt* stmt) noexcept;
};

} // namespace mlops::store
