#include "mlops/store/migrations.hpp"

#include "mlops/core/error.hpp"
#include "mlops/store/database.hpp"
#include "mlops/store/statement.hpp"

#include "temp_dir.hpp"

#include <doctest/doctest.h>

#include <thread>
#include <vector>

using namespace mlops;
using store::Database;
using store::DatabaseOptions;
using store::Migration;

namespace {

const Migration base = {1, "core", "CREATE TABLE schema_migrations (version INTEGER PRIMARY KEY, "
                                   "name TEXT NOT NULL, applied_at TEXT NOT NULL)"};
const Migration second = {2, "runs", "CREATE TABLE runs (id INTEGER PRIMARY KEY)"};
const Migration broken = {3, "broken", "CREATE TABLE metrics (id INTEGER PRIMARY KEY); SYNTAX ERROR"};

std::int64_t count(Database& db, const char* sql)
{
  auto statement = db.prepare(sql);
  statement.step();
  return statement.column_int64(0);
}

} // namespace

TEST_CASE("mlops::store::embedded_migrations")
{
  auto migrations = store::embedded_migrations();
  REQUIRE(!migrations.empty());
  for (size_t i = 0; i < migrations.size(); ++i) {
    CHECK(migrations[i].version == static_cast<int>(i) + 1);  // Numbered without gaps.
    CHECK(!migrations[i].sql.empty());
  }
  CHECK(store::latest_version() == static_cast<int>(migrations.size()));
}

TEST_CASE("mlops::store::migrate")
{
  test::TempDir dir;
  auto path = dir.path() / "mlops.db";
  auto db = Database::open(path, DatabaseOptions{.create = true});

  SUBCASE("applies every migration once and records it")
  {
    const Migration both[] = {base, second};
    auto report = store::migrate(db, both);
    CHECK(report.from_version == 0);
    CHECK(report.to_version == 2);
    CHECK(report.applied == std::vector<int>{1, 2});
    CHECK(store::schema_version(db) == 2);
    CHECK(count(db, "SELECT count(*) FROM schema_migrations") == 2);

    auto again = store::migrate(db, both);
    CHECK(again.applied.empty());
    CHECK(count(db, "SELECT count(*) FROM schema_migrations") == 2);
  }
  SUBCASE("applies only what is pending after an upgrade")
  {
    const Migration first_only[] = {base};
    const Migration both[] = {base, second};
    store::migrate(db, first_only);
    auto report = store::migrate(db, both);
    CHECK(report.from_version == 1);
    CHECK(report.applied == std::vector<int>{2});
  }
  SUBCASE("switches the database to WAL")
  {
    const Migration first_only[] = {base};
    store::migrate(db, first_only);
    auto mode = db.prepare("PRAGMA journal_mode");
    mode.step();
    CHECK(mode.column_text(0) == "wal");
  }
  SUBCASE("a failing migration leaves the previous schema intact")
  {
    const Migration first_only[] = {base};
    const Migration all[] = {base, second, broken};
    store::migrate(db, first_only);
    CHECK_THROWS_AS(store::migrate(db, all), Error);
    CHECK(store::schema_version(db) == 1);
    CHECK(count(db, "SELECT count(*) FROM sqlite_schema WHERE name IN ('runs', 'metrics')") == 0);
  }
  SUBCASE("a database newer than the binary is refused and left alone")
  {
    const Migration both[] = {base, second};
    const Migration first_only[] = {base};
    store::migrate(db, both);
    try {
      store::migrate(db, first_only);
      FAIL("migrated a newer database");
    } catch (const Error& error) {
      CHECK(error.code() == ExitCode::conflict);
      CHECK(std::string(error.what()).find("upgrade mlops") != std::string::npos);
    }
    CHECK(store::schema_version(db) == 2);
  }
}

TEST_CASE("mlops::store::migrate from many connections at once")
{
  // Each thread has its own connection, as separate processes would: exactly one applies.
  test::TempDir dir;
  auto path = dir.path() / "mlops.db";
  const Migration both[] = {base, second};
  std::vector<std::vector<int>> applied(8);
  std::vector<std::thread> threads;
  for (auto& result : applied) {
    threads.emplace_back([&] {
      auto db = Database::open(path, DatabaseOptions{.create = true});
      result = store::migrate(db, both).applied;
    });
  }
  for (auto& thread : threads) {
    thread.join();
  }
  int appliers = 0;
  for (const auto& result : applied) {
    if (!result.empty()) {
      ++appliers;
      CHECK(result == std::vector<int>{1, 2});
    }
  }
  CHECK(appliers == 1);
  auto db = Database::open(path);
  CHECK(count(db, "SELECT count(*) FROM schema_migrations") == 2);
}
