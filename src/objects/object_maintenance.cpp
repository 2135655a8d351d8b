// ObjectStore::verify and gc.
#include "mlops/objects/object_store.hpp"

#include "mlops/core/error.hpp"
#include "mlops/core/interrupt.hpp"
#include "mlops/store/statement.hpp"
#include "mlops/store/transaction.hpp"
#include "mlops/util/parallel.hpp"
#include "store_files.hpp"

#include <fmt/format.h>
#include <stdio.h>

#include <algorithm>
#include <mutex>
#include <set>

namespace mlops::objects {

namespace fs = std::filesystem;

std::vector<VerifyProblem> ObjectStore::verify(const std::vector<StoredObject>& requested, unsigned jobs)
{
  StoreLock lock(m_home.objects_dir(), /*exclusive=*/false);
  auto objects = requested.empty() ? list() : requested;
  std::vector<VerifyProblem> problems;
  std::mutex problems_mutex;
  util::parallel_for(
    objects.size(), jobs,
    [&](size_t i) {
      thread_local std::vector<char> buffer;
      const auto& object = objects[i];
      std::string problem;
      try {
        auto path = object_path(object.digest);
        auto hashed = hash_file(path.native(), buffer);
        if (hashed.digest != object.digest) {
          problem = fmt::format("corrupt: its content hashes to {}", hashed.digest.hex());
        } else if (hashed.identity.size != object.size) {
          problem = fmt::format("corrupt: {} bytes, recorded as {}", hashed.identity.size, object.size);
        }
        if (!problem.empty()) {
          // Moved aside so that nothing serves it again; adding the original file stores it anew,
          // and gc deletes the corrupt copy with the rest of tmp/.
          auto aside = m_home.tmp_dir() / ("corrupt-" + object.digest.hex());
          if (::rename(path.c_str(), aside.c_str()) == 0) {
            problem += fmt::format(" (moved aside to {})", aside.string());
          }
        }
      } catch (const Error& error) {
        if (error.code() == ExitCode::interrupted) {
          throw;
        }
        auto aside = m_home.tmp_dir() / ("corrupt-" + object.digest.hex());
        problem = error.code() != ExitCode::not_found ? fmt::format("unreadable: {}", error.what())
                  : fs::exists(aside) ? fmt::format("corrupt: moved aside to {} by an earlier verify", aside.string())
                                      : "missing";
      }
      if (!problem.empty()) {
        std::lock_guard guard(problems_mutex);
        problems.push_back(VerifyProblem{object.digest, problem});
      }
    },
    [] { return interrupted(); });
  throw_if_interrupted();
  std::sort(problems.begin(), problems.end(), [](const auto& a, const auto& b) { return a.digest < b.digest; });
  return problems;
}

namespace {

// Objects nothing keeps alive: no reference except from trees that are themselves unreferenced.
constexpr const char* unreferenced_sql = R"sql(
  WITH pinned AS (SELECT DISTINCT digest FROM object_refs WHERE kind <> 'tree'),
  live AS (
    SELECT digest FROM pinned
    UNION
    SELECT refs.digest FROM object_refs AS refs JOIN pinned ON refs.kind = 'tree' AND refs.owner = pinned.digest
  )
  SELECT digest, kind, size, created_at FROM objects WHERE digest NOT IN (SELECT digest FROM live)
  ORDER BY digest
)sql";

} // namespace

GcReport ObjectStore::gc(bool dry_run)
{
  // Exclusive: no add, get or verify runs meanwhile, so nothing is removed that one of them is
  // about to record or read, and every file in tmp/ is a leftover.
  StoreLock lock(m_home.objects_dir(), /*exclusive=*/true);
  GcReport report;
  auto rows = m_db.prepare(unreferenced_sql);
  while (rows.step()) {
    report.removed.push_back(StoredObject{*Digest::parse(rows.column_text(0)), rows.column_text(1),
                                          rows.column_int64(2), rows.column_text(3)});
    report.bytes += static_cast<std::uint64_t>(rows.column_int64(2));
  }

  std::set<std::string> recorded;  // Every row, including those about to go.
  for (auto all = m_db.prepare("SELECT digest FROM objects"); all.step();) {
    recorded.insert(all.column_text(0));
  }
  std::set<std::string> removed;
  for (const auto& object : report.removed) {
    removed.insert(object.digest.hex());
  }
  // Rows go first: if gc dies before the files, they are merely unrecorded, and the next gc
  // removes them; no row ever points at a deleted file.
  if (!dry_run && !report.removed.empty()) {
    store::write_transaction(m_db, [&] {
      for (const auto& object : report.removed) {
        m_db.prepare("DELETE FROM object_refs WHERE kind = 'tree' AND owner = ?").bind(1, object.digest.hex()).run();
        m_db.prepare("DELETE FROM object_refs WHERE digest = ?").bind(1, object.digest.hex()).run();
        m_db.prepare("DELETE FROM objects WHERE digest = ?").bind(1, object.digest.hex()).run();
      }
    });
  }

  std::error_code error;
  fs::path root = m_home.objects_dir() / "sha256";
  for (fs::recursive_directory_iterator it(root, error), end; !error && it != end; it.increment(error)) {
    throw_if_interrupted();
    if (!it->is_regular_file(error)) {
      continue;
    }
    std::string digest = it->path().parent_path().filename().string() + it->path().filename().string();
    bool unrecorded = recorded.count(digest) == 0;
    report.unrecorded_files += unrecorded ? 1 : 0;
    if (!dry_run && (unrecorded || removed.count(digest) > 0)) {
      fs::remove(it->path(), error);
    }
  }

  for (fs::directory_iterator it(m_home.tmp_dir(), error), end; !error && it != end; it.increment(error)) {
    ++report.tmp_files;
    if (!dry_run) {
      fs::remove_all(it->path(), error);
    }
  }
  return report;
}

} // namespace mlops::objects
