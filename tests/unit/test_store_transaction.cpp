#include "mlops/store/transaction.hpp"

#include "mlops/core/error.hpp"
#include "mlops/store/database.hpp"
#include "mlops/store/errors.hpp"
#include "mlops/store/statement.hpp"

#include "temp_dir.hpp"

#include <doctest/doctest.h>

#include <chrono>
#include <thread>

using namespace mlops;
using namespace std::chrono_literals;
using store::Database;
using store::DatabaseOptions;

namespace {

std::int64_t rows(Database& db)
{
  auto statement = db.prepare("SELECT count(*) FROM t");
  statement.step();
  return statement.column_int64(0);
}

struct Fixture
{
  test::TempDir dir;
  std::filesystem::path path = dir.path() / "mlops.db";
  Database db = [this] {
    auto created = Database::open(path, DatabaseOptions{.create = true});
    created.exec("PRAGMA journal_mode=WAL; CREATE TABLE t (x INTEGER)");
    return created;
  }();
};

} // namespace

TEST_CASE_FIXTURE(Fixture, "mlops::store::Transaction")
{
  SUBCASE("commit keeps the writes")
  {
    store::Transaction transaction(db);
    db.exec("INSERT INTO t VALUES (1)");
    transaction.commit();
    CHECK(rows(db) == 1);
  }
  SUBCASE("leaving the scope without commit rolls back")
  {
    {
      store::Transaction transaction(db);
      db.exec("INSERT INTO t VALUES (1)");
    }
    CHECK(rows(db) == 0);
  }
}

TEST_CASE_FIXTURE(Fixture, "mlops::store::write_transaction")
{
  SUBCASE("an exception in the body rolls everything back")
  {
    CHECK_THROWS_AS(store::write_transaction(db,
                                             [&] {
                                               db.exec("INSERT INTO t VALUES (1)");
                                               throw Error(ExitCode::conflict, "no");
                                             }),
                    Error);
    CHECK(rows(db) == 0);
  }
  SUBCASE("waits for another connection's write lock, then succeeds")
  {
    // Another process holding the write lock for a while is normal; the writer waits it out.
    auto holder = Database::open(path);
    holder.exec("BEGIN IMMEDIATE; INSERT INTO t VALUES (1)");
    std::thread release([&] {
      std::this_thread::sleep_for(200ms);
      holder.exec("COMMIT");
    });
    auto writer = Database::open(path, DatabaseOptions{.busy_timeout = 5s});
    int attempts = 0;
    store::write_transaction(writer, [&] {
      ++attempts;
      writer.exec("INSERT INTO t VALUES (2)");
    });
    release.join();
    CHECK(rows(writer) == 2);
    CHECK(attempts >= 1);
  }
  SUBCASE("gives up with BusyError after the busy timeout, with a clear message")
  {
    auto holder = Database::open(path);
    holder.exec("BEGIN IMMEDIATE; INSERT INTO t VALUES (1)");
    auto writer = Database::open(path, DatabaseOptions{.busy_timeout = 150ms});
    auto started = std::chrono::steady_clock::now();
    try {
      store::write_transaction(writer, [&] { writer.exec("INSERT INTO t VALUES (2)"); });
      FAIL("wrote while another connection held the lock");
    } catch (const store::BusyError& error) {
      CHECK(std::string(error.what()).find("locked") != std::string::npos);
    }
    auto waited = std::chrono::steady_clock::now() - started;
    CHECK(waited >= 150ms);
    CHECK(waited < 3s);
    holder.exec("ROLLBACK");
  }
  SUBCASE("retries and SQLite's own waiting share one deadline")
  {
    // The holder never lets go: the whole call must end near the timeout, not twice it.
    auto holder = Database::open(path);
    holder.exec("BEGIN IMMEDIATE; INSERT INTO t VALUES (1)");
    auto writer = Database::open(path, DatabaseOptions{.busy_timeout = 400ms});
    auto started = std::chrono::steady_clock::now();
    int attempts = 0;
    CHECK_THROWS_AS(store::write_transaction(writer,
                                             [&] {
                                               // Fails at once the first time, then SQLite waits.
                                               if (++attempts == 1) {
                                                 throw store::BusyError(ExitCode::failure, "busy");
                                               }
                                               writer.exec("INSERT INTO t VALUES (2)");
                                             }),
                    store::BusyError);
    CHECK(std::chrono::steady_clock::now() - started < 700ms);
    holder.exec("ROLLBACK");
  }
  SUBCASE("retries the whole body when a lock SQLite does not wait for is reported")
  {
    int attempts = 0;
    store::write_transaction(db, [&] {
      if (++attempts < 3) {
        throw store::BusyError(ExitCode::failure, "simulated SQLITE_BUSY_SNAPSHOT");
      }
      db.exec("INSERT INTO t VALUES (1)");
    });
    CHECK(attempts == 3);
    CHECK(rows(db) == 1);
  }
}
