#pragma once
// A prepared statement borrowed from a Database's cache. Values are bound by 1-based index and
// read by 0-based column, as in SQLite. SQL text is never assembled from values: bind them.
// A Statement must not outlive the Database that prepared it (moving the Database is fine).

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>

struct sqlite3_stmt;

namespace mlops::store {

struct Connection;

class Statement
{
public:
  Statement(Connection& connection, sqlite3_stmt* stmt);
  Statement(Statement&& other) noexcept;
  Statement& operator=(Statement&&) = delete;
  ~Statement();  // Resets the statement and clears its bindings for the next user.

  Statement& bind(int index, std::int64_t value);
  Statement& bind(int index, int value) { return bind(index, std::int64_t{value}); }
  Statement& bind(int index, double value);
  Statement& bind(int index, std::string_view value);
  Statement& bind(int index, const char* value) { return bind(index, std::string_view(value)); }
  Statement& bind(int index, const std::string& value) { return bind(index, std::string_view(value)); }
  Statement& bind(int index, std::nullptr_t);
  Statement& bind(int index, std::span<const std::uint8_t> blob);
  template <typename T> Statement& bind(int index, const std::optional<T>& value)
  {
    return value ? bind(index, *value) : bind(index, nullptr);
  }

  // Binds the arguments to parameters 1, 2, 3...
  template <typename... Args> Statement& bind_all(const Args&... args)
  {
    int index = 0;
    (bind(++index, args), ...);
    return *this;
  }

  // Advances to the next row: true when a row is available, false when done. Throws Error
  // (store::BusyError when the database stayed locked, interrupted after a signal).
  bool step();
  // Runs a statement to completion, for writes.
  void run();
  // Makes the statement ready to run again with new bindings, for many rows in one loop.
  void reset();

  bool column_is_null(int column) const;
  std::int64_t column_int64(int column) const;
  double column_double(int column) const;
  std::string column_text(int column) const;
  // nullopt for SQL NULL.
  std::optional<std::string> column_optional_text(int column) const;
  std::optional<std::int64_t> column_optional_int64(int column) const;
  // Valid until the next step() or the end of the statement.
  std::span<const std::uint8_t> column_blob(int column) const;

private:
  Connection* m_connection;
  sqlite3_stmt* m_stmt;
};

} // namespace mlops::store
