#pragma once
// Schema migrations: the numbered files of schemas/sql, embedded into the binary at build time.
// PRAGMA user_version holds the applied version; schema_migrations records when each was applied.

#include <span>
#include <string_view>
#include <vector>

namespace mlops::store {

class Database;

struct Migration
{
  int version;  // 1, 2, 3... without gaps
  std::string_view name;
  std::string_view sql;
};

// The migrations this binary knows, in order (generated from schemas/sql).
std::span<const Migration> embedded_migrations();

// The version the last of `migrations` brings the database to.
int latest_version(std::span<const Migration> migrations = embedded_migrations());

// The schema version recorded in the database (0 for a new, empty file).
int schema_version(Database& db);

struct MigrationReport
{
  int from_version = 0;
  int to_version = 0;
  std::vector<int> applied;  // empty when the database was already current
};

// Brings the database to the latest version: makes sure it is in WAL mode, then applies every pending
// migration in one write transaction, so concurrent processes apply each migration exactly once
// and a failure leaves the old schema intact. Throws Error(conflict) when the database is newer
// than this binary understands.
MigrationReport migrate(Database& db, std::span<const Migration> migrations = embedded_migrations());

// Throws the "database is newer than this mlops" error when `version` is beyond `latest`.
void require_known_version(const Database& db, int version, int latest);

} // namespace mlops::store
