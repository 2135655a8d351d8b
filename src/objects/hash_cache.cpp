#include "mlops/objects/hash_cache.hpp"

#include "mlops/store/database.hpp"
#include "mlops/store/statement.hpp"
#include "mlops/store/transaction.hpp"

#include <algorithm>
#include <tuple>

namespace mlops::objects {

namespace {

// Coarser than any filesystem's timestamp granularity (ext4 updates them per jiffy, 4-10 ms).
constexpr auto racy_window = std::chrono::milliseconds(50);

std::int64_t nanoseconds(std::chrono::system_clock::time_point time)
{
  return std::chrono::duration_cast<std::chrono::nanoseconds>(time.time_since_epoch()).count();
}

constexpr auto by_key = [](const auto& a, const auto& b) {
  return std::tie(a.identity.device, a.identity.inode) < std::tie(b.identity.device, b.identity.inode);
};

} // namespace

HashCache::HashCache(store::Database& db) : m_db(db) {}

void HashCache::preload()
{
  // The table is WITHOUT ROWID with key (device, inode): rows come out in key order, ready for a
  // binary search, with no hash table to build. SQLite compares the keys as signed integers, so
  // the order is checked rather than assumed (an inode above 2^63 would break it).
  auto rows = m_db.prepare("SELECT device, inode, size, mtime_ns, ctime_ns, digest FROM hash_cache "
                           "ORDER BY device, inode");
  while (rows.step()) {
    auto blob = rows.column_blob(5);
    Entry entry{{static_cast<std::uint64_t>(rows.column_int64(0)), static_cast<std::uint64_t>(rows.column_int64(1)),
                 rows.column_int64(2), rows.column_int64(3), rows.column_int64(4)},
                {}};
    if (blob.size() == entry.digest.bytes.size()) {
      std::copy(blob.begin(), blob.end(), entry.digest.bytes.begin());
      m_entries.push_back(entry);
    }
  }
  if (!std::is_sorted(m_entries.begin(), m_entries.end(), by_key)) {
    std::sort(m_entries.begin(), m_entries.end(), by_key);
  }
  m_preloaded = true;
}

std::optional<Digest> HashCache::lookup(const FileIdentity& identity)
{
  if (m_preloaded) {
    Entry wanted{identity, {}};
    auto found = std::lower_bound(m_entries.begin(), m_entries.end(), wanted, by_key);
    if (found != m_entries.end() && found->identity == identity) {
      return found->digest;
    }
    return std::nullopt;
  }
  std::lock_guard lock(m_mutex);
  auto row = m_db.prepare("SELECT digest FROM hash_cache WHERE device = ? AND inode = ? AND size = ? "
                          "AND mtime_ns = ? AND ctime_ns = ?");
  row.bind_all(static_cast<std::int64_t>(identity.device), static_cast<std::int64_t>(identity.inode),
               identity.size, identity.mtime_ns, identity.ctime_ns);
  if (!row.step()) {
    return std::nullopt;
  }
  auto blob = row.column_blob(0);
  Digest digest;
  if (blob.size() != digest.bytes.size()) {
    return std::nullopt;
  }
  std::copy(blob.begin(), blob.end(), digest.bytes.begin());
  return digest;
}

void HashCache::remember(const FileIdentity& identity, const Digest& digest,
                         std::chrono::system_clock::time_point read_started)
{
  auto limit = nanoseconds(read_started - racy_window);
  if (identity.mtime_ns >= limit || identity.ctime_ns >= limit) {
    return;  // Racily clean: a write in the same timestamp tick would go unnoticed.
  }
  std::lock_guard lock(m_mutex);
  m_pending.push_back(Entry{identity, digest});
}

void HashCache::flush()
{
  if (m_pending.empty()) {
    return;
  }
  store::write_transaction(m_db, [&] {
    for (const auto& entry : m_pending) {
      m_db.prepare("INSERT OR REPLACE INTO hash_cache (device, inode, size, mtime_ns, ctime_ns, "
                   "digest) VALUES (?, ?, ?, ?, ?, ?)")
        .bind_all(static_cast<std::int64_t>(entry.identity.device),
                  static_cast<std::int64_t>(entry.identity.inode), entry.identity.size,
                  entry.identity.mtime_ns, entry.identity.ctime_ns,
                  std::span<const std::uint8_t>(entry.digest.bytes))
        .run();
    }
  });
  m_pending.clear();
}

} // namespace mlops::objects
