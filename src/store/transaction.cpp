#include "mlops/store/transaction.hpp"

#include "connection.hpp"
#include "mlops/core/interrupt.hpp"
#include "mlops/store/database.hpp"
#include "mlops/store/errors.hpp"

#include <spdlog/spdlog.h>
#include <sqlite3.h>

#include <algorithm>
#include <chrono>
#include <random>
#include <thread>

namespace mlops::store {

Transaction::Transaction(Database& db) : m_db(db)
{
  m_db.exec("BEGIN IMMEDIATE");
}

Transaction::~Transaction()
{
  if (!m_done && sqlite3_get_autocommit(m_db.handle()) == 0) {
    // Errors are ignored: if ROLLBACK fails, SQLite has already rolled back on its own.
    sqlite3_exec(m_db.handle(), "ROLLBACK", nullptr, nullptr, nullptr);
  }
}

void Transaction::commit()
{
  m_db.exec("COMMIT");
  m_done = true;
}

void retry_while_busy(Database& db, const std::function<void()>& attempt)
{
  using Clock = Connection::Clock;
  const auto deadline = Clock::now() + db.busy_timeout();
  // SQLite's busy handler waits inside an attempt; it must stop at the same deadline, or the
  // total wait could approach twice the timeout.
  auto& connection = db.connection();
  connection.busy_deadline = deadline;
  struct ClearDeadline
  {
    Connection& connection;
    ~ClearDeadline() { connection.busy_deadline.reset(); }
  } clear_deadline{connection};
  // Jitter keeps processes that lost the same race from retrying in lockstep.
  std::minstd_rand jitter(static_cast<unsigned>(Clock::now().time_since_epoch().count()));
  for (int tries = 1;; ++tries) {
    try {
      attempt();
      return;
    } catch (const BusyError&) {
      throw_if_interrupted();
      if (Clock::now() >= deadline) {
        throw;
      }
      auto pause = std::chrono::milliseconds(std::min(1 << std::min(tries, 6), 50) +
                                             static_cast<int>(jitter() % 5));
      spdlog::debug("database busy, retry {} in {} ms", tries, pause.count());
      std::this_thread::sleep_for(pause);
    }
  }
}

void write_transaction(Database& db, const std::function<void()>& body)
{
  retry_while_busy(db, [&] {
    Transaction transaction(db);
    body();
    transaction.commit();
  });
}

} // namespace mlops::store
