#include "mlops/store/database.hpp"

#include "mlops/core/error.hpp"
#include "mlops/store/statement.hpp"
#include "mlops/util/file.hpp"

#include "temp_dir.hpp"

#include <doctest/doctest.h>

#include <optional>

using namespace mlops;
using store::Database;
using store::DatabaseOptions;

TEST_CASE("mlops::store::Database::open")
{
  test::TempDir dir;
  auto path = dir.path() / "mlops.db";

  SUBCASE("a missing file is not found unless asked to create it")
  {
    try {
      Database::open(path);
      FAIL("opened a missing database");
    } catch (const Error& error) {
      CHECK(error.code() == ExitCode::not_found);
      CHECK(std::string(error.what()).find(path.string()) != std::string::npos);
    }
    Database::open(path, DatabaseOptions{.create = true});
    CHECK(std::filesystem::exists(path));
  }
  SUBCASE("a file that is not a database is an integrity error")
  {
    util::write_file_atomic(path, std::string(4096, 'x'));
    try {
      Database::open(path);
      FAIL("opened a file that is not a database");
    } catch (const Error& error) {
      CHECK(error.code() == ExitCode::integrity);
    }
  }
  SUBCASE("foreign keys are enforced on every connection")
  {
    auto db = Database::open(path, DatabaseOptions{.create = true});
    db.exec("CREATE TABLE parent (id INTEGER PRIMARY KEY);"
            "CREATE TABLE child (parent INTEGER NOT NULL REFERENCES parent (id))");
    try {
      db.exec("INSERT INTO child VALUES (42)");
      FAIL("inserted a dangling reference");
    } catch (const Error& error) {
      CHECK(error.code() == ExitCode::conflict);
    }
  }
  SUBCASE("synchronous is FULL, whatever SQLite was built with")
  {
    auto db = Database::open(path, DatabaseOptions{.create = true});
    auto synchronous = db.prepare("PRAGMA synchronous");
    REQUIRE(synchronous.step());
    CHECK(synchronous.column_int64(0) == 2);
  }
}

TEST_CASE("mlops::store::Statement")
{
  test::TempDir dir;
  auto db = Database::open(dir.path() / "mlops.db", DatabaseOptions{.create = true});
  db.exec("CREATE TABLE t (i INTEGER, r REAL, s TEXT, n TEXT)");

  SUBCASE("binds and reads every type, including text with quotes and NUL-free UTF-8")
  {
    db.prepare("INSERT INTO t VALUES (?, ?, ?, ?)")
      .bind_all(std::int64_t{1} << 40, 0.5, "it's \"ü\"", nullptr)
      .run();
    auto row = db.prepare("SELECT i, r, s, n FROM t");
    REQUIRE(row.step());
    CHECK(row.column_int64(0) == std::int64_t{1} << 40);
    CHECK(row.column_double(1) == 0.5);
    CHECK(row.column_text(2) == "it's \"ü\"");
    CHECK(row.column_is_null(3));
    CHECK_FALSE(row.step());
  }
  SUBCASE("the same SQL can be used twice at once, and again after")
  {
    db.exec("INSERT INTO t (i) VALUES (1), (2)");
    const char* sql = "SELECT i FROM t ORDER BY i";
    auto outer = db.prepare(sql);
    REQUIRE(outer.step());
    {
      auto inner = db.prepare(sql);
      REQUIRE(inner.step());
      CHECK(inner.column_int64(0) == 1);
    }
    CHECK(outer.column_int64(0) == 1);
    REQUIRE(outer.step());
    CHECK(outer.column_int64(0) == 2);
  }
  SUBCASE("a cached statement starts afresh with cleared bindings")
  {
    db.prepare("INSERT INTO t (i, s) VALUES (?, ?)").bind_all(7, "seven").run();
    db.prepare("INSERT INTO t (i, s) VALUES (?, ?)").bind(1, 8).run();
    auto rows = db.prepare("SELECT s FROM t WHERE i = 8");
    REQUIRE(rows.step());
    CHECK(rows.column_is_null(0));
  }
  SUBCASE("prepare refuses a second statement instead of silently dropping it")
  {
    CHECK_THROWS_AS(db.prepare("INSERT INTO t (i) VALUES (1); DROP TABLE t"), Error);
    CHECK_NOTHROW(db.prepare("SELECT i FROM t;  \n"));
    auto count = db.prepare("SELECT count(*) FROM sqlite_schema WHERE name = 't'");
    count.step();
    CHECK(count.column_int64(0) == 1);
  }
  SUBCASE("a statement stays valid when its Database is moved")
  {
    db.exec("INSERT INTO t (i) VALUES (5)");
    std::optional<Database> moved;  // Declared first: it must outlive the statement.
    auto statement = db.prepare("SELECT i FROM t");
    moved.emplace(std::move(db));
    REQUIRE(statement.step());
    CHECK(statement.column_int64(0) == 5);
  }
  SUBCASE("SQL errors name the database")
  {
    try {
      db.prepare("SELECT nope FROM t");
      FAIL("prepared bad SQL");
    } catch (const Error& error) {
      CHECK(std::string(error.what()).find("mlops.db") != std::string::npos);
      CHECK(std::string(error.what()).find("nope") != std::string::npos);
    }
  }
}
