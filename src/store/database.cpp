#include "mlops/store/database.hpp"

#include "mlops/core/interrupt.hpp"
#include "mlops/store/errors.hpp"
#include "mlops/store/statement.hpp"

#include <fmt/format.h>
#include <fmt/std.h>
#include <sqlite3.h>

#include <algorithm>
#include <string>
#include <thread>
#include <unordered_map>

namespace mlops::store {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

struct Database::Impl
{
  sqlite3* db = nullptr;
  fs::path path;
  std::chrono::milliseconds busy_timeout{};
  Clock::time_point busy_since{};
  std::unordered_map<std::string, sqlite3_stmt*> statement_cache;

  ~Impl()
  {
    remove_interrupt_hook(interrupt_connection, db);
    for (auto& [sql, stmt] : statement_cache) {
      sqlite3_finalize(stmt);
    }
    sqlite3_close_v2(db);
  }

  static void interrupt_connection(void* db) { sqlite3_interrupt(static_cast<sqlite3*>(db)); }

  // SQLite calls this while another connection holds a lock we need. Returning 0 gives up with
  // SQLITE_BUSY. Short sleeps first keep latency low when the lock holder is quick (the usual
  // case: other commands hold the write lock for a few milliseconds).
  static int on_busy(void* ctx, int attempt)
  {
    auto* impl = static_cast<Impl*>(ctx);
    if (attempt == 0) {
      impl->busy_since = Clock::now();
    }
    if (interrupted() || Clock::now() - impl->busy_since >= impl->busy_timeout) {
      return 0;
    }
    auto pause = std::chrono::microseconds(std::min(200 << std::min(attempt, 7), 20'000));
    std::this_thread::sleep_for(pause);
    return 1;
  }
};

Database::Database(std::unique_ptr<Impl> impl) : m_impl(std::move(impl)) {}
Database::Database(Database&&) noexcept = default;
Database& Database::operator=(Database&&) noexcept = default;
Database::~Database() = default;

Database Database::open(const fs::path& path, const DatabaseOptions& options)
{
  if (!options.create && !fs::exists(path)) {
    throw Error(ExitCode::not_found,
                fmt::format("database {} does not exist, run `mlops init` to create a home", path));
  }
  auto impl = std::make_unique<Impl>();
  impl->path = path;
  impl->busy_timeout = options.busy_timeout;

  int flags = SQLITE_OPEN_NOMUTEX | SQLITE_OPEN_EXRESCODE;
  flags |= options.read_only ? SQLITE_OPEN_READONLY : SQLITE_OPEN_READWRITE;
  if (options.create && !options.read_only) {
    flags |= SQLITE_OPEN_CREATE;
  }
  int rc = sqlite3_open_v2(path.c_str(), &impl->db, flags, nullptr);
  if (rc != SQLITE_OK) {
    throw_sqlite_error(impl->db, rc, fmt::format("opening {}", path));
  }
  sqlite3_busy_handler(impl->db, Impl::on_busy, impl.get());
  sqlite3_db_config(impl->db, SQLITE_DBCONFIG_ENABLE_FKEY, 1, nullptr);
  sqlite3_db_config(impl->db, SQLITE_DBCONFIG_DEFENSIVE, 1, nullptr);
  add_interrupt_hook(Impl::interrupt_connection, impl->db);
  return Database(std::move(impl));
}

void Database::exec(std::string_view sql)
{
  throw_if_interrupted();
  std::string text(sql);
  char* message = nullptr;
  int rc = sqlite3_exec(m_impl->db, text.c_str(), nullptr, nullptr, &message);
  sqlite3_free(message);  // The connection keeps the same message for throw_sqlite_error.
  if (rc != SQLITE_OK) {
    throw_sqlite_error(m_impl->db, rc, fmt::format("running SQL on {}", m_impl->path));
  }
}

Statement Database::prepare(std::string_view sql)
{
  auto& cache = m_impl->statement_cache;
  if (auto node = cache.extract(std::string(sql))) {
    return Statement(*this, node.mapped());
  }
  sqlite3_stmt* stmt = nullptr;
  int rc = sqlite3_prepare_v3(m_impl->db, sql.data(), static_cast<int>(sql.size()),
                              SQLITE_PREPARE_PERSISTENT, &stmt, nullptr);
  if (rc != SQLITE_OK) {
    throw_sqlite_error(m_impl->db, rc, fmt::format("preparing SQL on {}", m_impl->path));
  }
  return Statement(*this, stmt);
}

void Database::return_to_cache(sqlite3_stmt* stmt)
{
  auto [it, inserted] = m_impl->statement_cache.try_emplace(sqlite3_sql(stmt), stmt);
  if (!inserted) {
    sqlite3_finalize(stmt);  // Someone used the same SQL at the same time; one copy is enough.
  }
}

std::int64_t Database::last_insert_rowid() const
{
  return sqlite3_last_insert_rowid(m_impl->db);
}

int Database::changes() const
{
  return sqlite3_changes(m_impl->db);
}

const fs::path& Database::path() const
{
  return m_impl->path;
}

std::chrono::milliseconds Database::busy_timeout() const
{
  return m_impl->busy_timeout;
}

sqlite3* Database::handle() const
{
  return m_impl->db;
}

} // namespace mlops::store
