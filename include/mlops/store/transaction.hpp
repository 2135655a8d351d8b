#pragma once
// Write transactions. They start with BEGIN IMMEDIATE, which takes the write lock up front:
// a transaction that began as a reader and later tries to write can fail with SQLITE_BUSY
// without waiting, which is exactly the "database is locked" error users of other tools see.

#include <functional>

namespace mlops::store {

class Database;

// RAII: BEGIN IMMEDIATE in the constructor, ROLLBACK in the destructor unless commit() ran.
class Transaction
{
public:
  explicit Transaction(Database& db);
  Transaction(const Transaction&) = delete;
  Transaction& operator=(const Transaction&) = delete;
  ~Transaction();

  void commit();

private:
  Database& m_db;
  bool m_done = false;
};

// Runs `body` inside a write transaction and commits. When the database is busy, the transaction
// is rolled back and `body` runs again from the start, with growing back-off, until the
// connection's busy timeout has passed (then BusyError reaches the caller). So `body` must only
// change the database and its own locals. Interrupts end the retries with ExitCode::interrupted.
// Transactions do not nest: `body` must not start another one on the same connection.
void write_transaction(Database& db, const std::function<void()>& body);

// Retries `attempt` on BusyError the same way, for work that is not one transaction (changing
// the journal mode, for example).
void retry_while_busy(Database& db, const std::function<void()>& attempt);

} // namespace mlops::store
