#pragma once
// Remembers the digests of files on disk by their identity (device, inode, size, mtime, ctime), so
// an unchanged file is never read twice. Any change to those fields misses the cache.
//
// A file written within the filesystem's timestamp granularity of being read could change without
// its mtime changing ("racily clean", as git calls it); such files are not remembered.

#include "mlops/objects/sha256.hpp"

#include <chrono>
#include <mutex>
#include <optional>
#include <vector>

namespace mlops::store {
class Database;
}

namespace mlops::objects {

class HashCache
{
public:
  explicit HashCache(store::Database& db);

  // Loads every entry into memory: one query instead of one per file, for large batches.
  void preload();

  // The remembered digest, when `identity` matches exactly. Thread-safe after preload().
  std::optional<Digest> lookup(const FileIdentity& identity);

  // Remembers a digest computed from a read that started at `read_started`. Thread-safe.
  void remember(const FileIdentity& identity, const Digest& digest,
                std::chrono::system_clock::time_point read_started);

  // Writes what was remembered, in one transaction.
  void flush();

private:
  struct Entry
  {
    FileIdentity identity;
    Digest digest;
  };

  store::Database& m_db;
  bool m_preloaded = false;
  std::vector<Entry> m_entries;  // After preload(): sorted by (device, inode), the table's key order.
  std::mutex m_mutex;
  std::vector<Entry> m_pending;
};

} // namespace mlops::objects
