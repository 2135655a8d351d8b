#include "mlops/store/database.hpp"

#include "connection.hpp"
#include "mlops/core/interrupt.hpp"
#include "mlops/store/errors.hpp"
#include "mlops/store/statement.hpp"

#include <fmt/format.h>
#include <fmt/std.h>

#include <algorithm>
#include <cctype>
#include <thread>

namespace mlops::store {

namespace fs = std::filesystem;

namespace {

void interrupt_connection(void* db)
{
  sqlite3_interrupt(static_cast<sqlite3*>(db));
}

// SQLite calls this while another connection holds a lock we need. Returning 0 gives up with
// SQLITE_BUSY. Short sleeps first keep latency low when the lock holder is quick (the usual
// case: other commands hold the write lock for a few milliseconds).
int on_busy(void* ctx, int attempt)
{
  auto* connection = static_cast<Connection*>(ctx);
  auto now = Connection::Clock::now();
  if (attempt == 0) {
    connection->busy_since = now;
  }
  auto deadline = connection->busy_since + connection->busy_timeout;
  if (connection->busy_deadline) {
    deadline = std::min(deadline, *connection->busy_deadline);
  }
  if (interrupted() || now >= deadline) {
    return 0;
  }
  auto pause = std::chrono::microseconds(std::min(200 << std::min(attempt, 7), 20'000));
  std::this_thread::sleep_for(pause);
  return 1;
}

bool only_whitespace(const char* text)
{
  for (; text && *text; ++text) {
    if (!std::isspace(static_cast<unsigned char>(*text)) && *text != ';') {
      return false;
    }
  }
  return true;
}

} // namespace

Connection::~Connection()
{
  remove_interrupt_hook(interrupt_connection, db);
  for (auto& [sql, stmt] : statement_cache) {
    sqlite3_finalize(stmt);
  }
  sqlite3_close_v2(db);
}

void Connection::return_to_cache(sqlite3_stmt* stmt) noexcept
{
  try {
    if (statement_cache.try_emplace(sqlite3_sql(stmt), stmt).second) {
      return;
    }
  } catch (...) {
    // Out of memory: the statement is simply not cached.
  }
  sqlite3_finalize(stmt);  // The cache has one already (the same SQL was in use twice).
}

Database::Database(std::unique_ptr<Connection> connection) : m_connection(std::move(connection)) {}
Database::Database(Database&&) noexcept = default;
Database& Database::operator=(Database&&) noexcept = default;
Database::~Database() = default;

Database Database::open(const fs::path& path, const DatabaseOptions& options)
{
  throw_if_interrupted();
  if (!options.create && !fs::exists(path)) {
    throw Error(ExitCode::not_found, fmt::format("database {} does not exist", path));
  }
  auto connection = std::make_unique<Connection>();
  connection->path = path;
  connection->busy_timeout = options.busy_timeout;

  int flags = SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX | SQLITE_OPEN_EXRESCODE;
  if (options.create) {
    flags |= SQLITE_OPEN_CREATE;
  }
  int rc = sqlite3_open_v2(path.c_str(), &connection->db, flags, nullptr);
  if (rc != SQLITE_OK) {
    throw_sqlite_error(connection->db, rc, fmt::format("opening {}", path));
  }
  sqlite3_busy_handler(connection->db, on_busy, connection.get());
  sqlite3_db_config(connection->db, SQLITE_DBCONFIG_ENABLE_FKEY, 1, nullptr);
  sqlite3_db_config(connection->db, SQLITE_DBCONFIG_DEFENSIVE, 1, nullptr);
  add_interrupt_hook(interrupt_connection, connection->db);
  Database database(std::move(connection));
  // FULL is SQLite's usual default, but builds may change it: in WAL mode it is what makes a
  // commit survive a power cut, not only a crash of the process. The default page cache (2000
  // pages) spills to disk in the middle of large transactions (an add of 15,000 files rewrote its
  // pages ten times over); 64 MiB is only a ceiling, memory is used as pages are touched.
  database.exec("PRAGMA synchronous=FULL; PRAGMA cache_size=-65536");
  return database;
}

void Database::exec(std::string_view sql)
{
  throw_if_interrupted();
  std::string text(sql);
  int rc = sqlite3_exec(m_connection->db, text.c_str(), nullptr, nullptr, nullptr);
  if (rc != SQLITE_OK) {
    throw_sqlite_error(m_connection->db, rc, fmt::format("running SQL on {}", m_connection->path));
  }
}

Statement Database::prepare(std::string_view sql)
{
  auto& cache = m_connection->statement_cache;
  if (auto node = cache.extract(std::string(sql))) {
    return Statement(*m_connection, node.mapped());
  }
  sqlite3_stmt* stmt = nullptr;
  const char* tail = nullptr;
  int rc = sqlite3_prepare_v3(m_connection->db, sql.data(), static_cast<int>(sql.size()),
                              SQLITE_PREPARE_PERSISTENT, &stmt, &tail);
  if (rc != SQLITE_OK) {
    throw_sqlite_error(m_connection->db, rc, fmt::format("preparing SQL on {}", m_connection->path));
  }
  Statement statement(*m_connection, stmt);
  if (tail && !only_whitespace(std::string(tail, sql.data() + sql.size() - tail).c_str())) {
    throw Error(ExitCode::failure, fmt::format("prepare() takes one SQL statement, got more: `{}`", sql));
  }
  return statement;
}

std::int64_t Database::last_insert_rowid() const
{
  return sqlite3_last_insert_rowid(m_connection->db);
}

int Database::changes() const
{
  return sqlite3_changes(m_connection->db);
}

const fs::path& Database::path() const
{
  return m_connection->path;
}

std::chrono::milliseconds Database::busy_timeout() const
{
  return m_connection->busy_timeout;
}

sqlite3* Database::handle() const
{
  return m_connection->db;
}

} // namespace mlops::store
