#include "mlops/store/statement.hpp"

#include "connection.hpp"
#include "mlops/core/interrupt.hpp"
#include "mlops/store/errors.hpp"

#include <fmt/format.h>
#include <fmt/std.h>
#include <sqlite3.h>

namespace mlops::store {

Statement::Statement(Connection& connection, sqlite3_stmt* stmt) : m_connection(&connection), m_stmt(stmt) {}

Statement::Statement(Statement&& other) noexcept
  : m_connection(other.m_connection), m_stmt(other.m_stmt)
{
  other.m_stmt = nullptr;
}

Statement::~Statement()
{
  if (m_stmt) {
    sqlite3_reset(m_stmt);
    sqlite3_clear_bindings(m_stmt);
    m_connection->return_to_cache(m_stmt);
  }
}

namespace {

void check_bind(sqlite3_stmt* stmt, int rc)
{
  if (rc != SQLITE_OK) {
    throw_sqlite_error(sqlite3_db_handle(stmt), rc,
                       fmt::format("binding a value to `{}`", sqlite3_sql(stmt)));
  }
}

} // namespace

Statement& Statement::bind(int index, std::int64_t value)
{
  check_bind(m_stmt, sqlite3_bind_int64(m_stmt, index, value));
  return *this;
}

Statement& Statement::bind(int index, double value)
{
  check_bind(m_stmt, sqlite3_bind_double(m_stmt, index, value));
  return *this;
}

Statement& Statement::bind(int index, std::string_view value)
{
  check_bind(m_stmt, sqlite3_bind_text64(m_stmt, index, value.data(), value.size(),
                                         SQLITE_TRANSIENT, SQLITE_UTF8));
  return *this;
}

Statement& Statement::bind(int index, std::span<const std::uint8_t> blob)
{
  check_bind(m_stmt, sqlite3_bind_blob64(m_stmt, index, blob.data(), blob.size(), SQLITE_TRANSIENT));
  return *this;
}

Statement& Statement::bind(int index, std::nullptr_t)
{
  check_bind(m_stmt, sqlite3_bind_null(m_stmt, index));
  return *this;
}

bool Statement::step()
{
  // SQLite forgets an interrupt that arrives while no statement runs, so look at the flag too.
  throw_if_interrupted();
  int rc = sqlite3_step(m_stmt);
  if (rc == SQLITE_ROW) {
    return true;
  }
  if (rc == SQLITE_DONE) {
    return false;
  }
  // Reset now so the statement does not keep a read transaction open while the error unwinds.
  sqlite3_reset(m_stmt);
  throw_sqlite_error(sqlite3_db_handle(m_stmt), rc, fmt::format("querying {}", m_connection->path));
}

void Statement::run()
{
  while (step()) {
  }
}

void Statement::reset()
{
  sqlite3_reset(m_stmt);  // An error here repeats the last step's, which step() already threw.
}

bool Statement::column_is_null(int column) const
{
  return sqlite3_column_type(m_stmt, column) == SQLITE_NULL;
}

std::int64_t Statement::column_int64(int column) const
{
  return sqlite3_column_int64(m_stmt, column);
}

double Statement::column_double(int column) const
{
  return sqlite3_column_double(m_stmt, column);
}

std::string Statement::column_text(int column) const
{
  const auto* text = sqlite3_column_text(m_stmt, column);
  return text ? std::string(reinterpret_cast<const char*>(text),
                            static_cast<size_t>(sqlite3_column_bytes(m_stmt, column)))
              : std::string();
}

std::span<const std::uint8_t> Statement::column_blob(int column) const
{
  const auto* data = static_cast<const std::uint8_t*>(sqlite3_column_blob(m_stmt, column));
  return {data, data ? static_cast<size_t>(sqlite3_column_bytes(m_stmt, column)) : 0};
}

std::optional<std::string> Statement::column_optional_text(int column) const
{
  return column_is_null(column) ? std::nullopt : std::optional(column_text(column));
}

std::optional<std::int64_t> Statement::column_optional_int64(int column) const
{
  return column_is_null(column) ? std::nullopt : std::optional(column_int64(column));
}

} // namespace mlops::store
