#include "mlops/store/migrations.hpp"

#include "mlops/core/error.hpp"
#include "mlops/store/database.hpp"
#include "mlops/store/statement.hpp"
#include "mlops/store/transaction.hpp"
#include "mlops/util/time.hpp"

#include <fmt/format.h>
#include <fmt/std.h>
#include <spdlog/spdlog.h>

namespace mlops::store {

int latest_version(std::span<const Migration> migrations)
{
  return migrations.empty() ? 0 : migrations.back().version;
}

int schema_version(Database& db)
{
  auto statement = db.prepare("PRAGMA user_version");
  statement.step();
  return static_cast<int>(statement.column_int64(0));
}

void require_known_version(const Database& db, int version, int latest)
{
  if (version > latest) {
    throw Error(ExitCode::conflict,
                fmt::format("database {} has schema version {}, newer than this mlops understands "
                            "({}), upgrade mlops to use this home",
                            db.path(), version, latest));
  }
}

namespace {

void ensure_wal(Database& db)
{
  // Changing the journal mode needs an exclusive lock that SQLite does not wait for in every case,
  // so it is retried like a write transaction.
  retry_while_busy(db, [&] {
    auto statement = db.prepare("PRAGMA journal_mode=WAL");
    statement.step();
    if (statement.column_text(0) != "wal") {
      throw Error(ExitCode::failure,
                  fmt::format("database {} cannot use write-ahead logging (journal mode stays {}), "
                              "put the home on a local filesystem",
                              db.path(), statement.column_text(0)));
    }
  });
}

} // namespace

MigrationReport migrate(Database& db, std::span<const Migration> migrations)
{
  const int latest = latest_version(migrations);
  MigrationReport report;
  report.from_version = schema_version(db);
  report.to_version = report.from_version;
  require_known_version(db, report.from_version, latest);
  ensure_wal(db);  // Also repairs a current database whose journal mode was changed by hand.
  if (report.from_version == latest) {
    return report;
  }

  write_transaction(db, [&] {
    // Another process may have migrated between our first look and taking the lock.
    report.applied.clear();
    report.from_version = schema_version(db);
    report.to_version = report.from_version;
    require_known_version(db, report.from_version, latest);
    if (report.from_version == latest) {
      return;  // Nothing to write: no commit, no fsync.
    }
    for (const auto& migration : migrations) {
      if (migration.version <= report.from_version) {
        continue;
      }
      spdlog::debug("applying migration {:04}_{}", migration.version, migration.name);
      db.exec(migration.sql);
      db.prepare("INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)")
        .bind_all(migration.version, migration.name, util::now_iso8601())
        .run();
      report.applied.push_back(migration.version);
    }
    db.exec(fmt::format("PRAGMA user_version = {}", latest));
    report.to_version = latest;
  });
  return report;
}

} // namespace mlops::store
