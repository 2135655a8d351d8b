#include "mlops/objects/hash_cache.hpp"

#include "mlops/store/database.hpp"
#include "mlops/store/statement.hpp"
#include "mlops/store/transaction.hpp"

namespace mlops::objects {

namespace {

// Coarser than any filesystem's timestamp granularity (ext4 updates them per jiffy, 4-10 ms).
constexpr auto racy_window = std::chrono::milliseconds(50);

std::int64_t nanoseconds(std::chrono::system_clock::time_point time)
{
  return std::chrono::duration_cast<std::chrono::nanoseconds>(time.time_since_epoch()).count();
}

} // namespace

HashCache::HashCache(store::Database& db) : m_db(db) {}

void HashCache::preload()
{
  auto rows = m_db.prepare("SELECT device, inode, size, mtime_ns, ctime_ns, digest FROM hash_cache");
  while (rows.step()) {
    FileIdentity identity{static_cast<std::uint64_t>(rows.column_int64(0)),
                          static_cast<std::uint64_t>(rows.column_int64(1)), rows.column_int64(2),
                          rows.column_int64(3), rows.column_int64(4)};
    if (auto digest = Digest::parse(rows.column_text(5))) {
      m_entries[Key{identity.device, identity.inode}] = Entry{identity, *digest};
    }
  }
  m_preloaded = true;
}

std::optional<Digest> HashCache::lookup(const FileIdentity& identity)
{
  if (m_preloaded) {
    auto found = m_entries.find(Key{identity.device, identity.inode});
    if (found != m_entries.end() && found->second.identity == identity) {
      return found->second.digest;
    }
    return std::nullopt;
  }
  std::lock_guard lock(m_mutex);
  auto row = m_db.prepare("SELECT digest FROM hash_cache WHERE device = ? AND inode = ? AND size = ? "
                          "AND mtime_ns = ? AND ctime_ns = ?");
  row.bind_all(static_cast<std::int64_t>(identity.device), static_cast<std::int64_t>(identity.inode),
               identity.size, identity.mtime_ns, identity.ctime_ns);
  return row.step() ? Digest::parse(row.column_text(0)) : std::nullopt;
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
                  entry.identity.mtime_ns, entry.identity.ctime_ns, entry.digest.hex())
        .run();
    }
  });
  m_pending.clear();
}

} // namespace mlops::objects
