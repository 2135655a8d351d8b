// ObjectStore::verify and gc.
#include "mlops/objects/object_store.hpp"

#include "mlops/core/error.hpp"
#include "mlops/core/interrupt.hpp"
#include "mlops/store/statement.hpp"
#include "mlops/store/transaction.hpp"
#include "mlops/util/file_descriptor.hpp"
#include "mlops/util/parallel.hpp"
#include "mlops/objects/store_files.hpp"

#include <fcntl.h>
#include <fmt/format.h>
#include <fmt/std.h>
#include <stdio.h>

#include <cerrno>
#include <cstring>

#include <algorithm>
#include <mutex>
#include <set>

namespace mlops::objects {

namespace fs = std::filesystem;

VerifyReport ObjectStore::verify(const std::vector<StoredObject>& requested, unsigned jobs)
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
        util::FileDescriptor fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
        if (!fd.valid()) {
          throw Error(errno == ENOENT ? ExitCode::not_found : ExitCode::failure,
                      fmt::format("cannot open {}: {}", path, std::strerror(errno)));
        }
        // Not hash_file: a checkout hard-linking this object meanwhile moves its ctime, harmlessly.
        auto hashed = hash_stream(fd.get(), path.native(), buffer);
        if (hashed.digest != object.digest) {
          problem = fmt::format("corrupt: its content hashes to {}", hashed.digest.hex());
        } else if (hashed.size != object.size) {
          problem = fmt::format("corrupt: {} bytes, recorded as {}", hashed.size, object.size);
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
  return VerifyReport{objects.size(), std::move(problems)};
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
  std::set<std::string> recorded;  // Every row, including those about to go.
  std::set<std::string> removed;
  // Choosing and deleting happen in one write transaction, so a reference made by anything that
  // does not take the store lock (a dataset, run or model recorded meanwhile) is either seen
  // or waits. Rows go before files: if gc dies in between, the files are merely unrecorded and
  // the next gc removes them; no row ever points at a deleted file.
  store::write_transaction(m_db, [&] {
    report = GcReport{};
    recorded.clear();
    removed.clear();
    for (auto rows = m_db.prepare(unreferenced_sql); rows.step();) {
      report.removed.push_back(StoredObject{*Digest::parse(rows.column_text(0)), rows.column_text(1),
                                            rows.column_int64(2), rows.column_text(3)});
      report.bytes += static_cast<std::uint64_t>(rows.column_int64(2));
      removed.insert(rows.column_text(0));
    }
    for (auto all = m_db.prepare("SELECT digest FROM objects"); all.step();) {
      recorded.insert(all.column_text(0));
    }
    if (dry_run) {
      return;
    }
    // An unreferenced object is referred to only by unreferenced trees: drop their entries first,
    // then the objects (the foreign key forbids the other order).
    for (const auto& digest : removed) {
      m_db.prepare("DELETE FROM object_refs WHERE kind = 'tree' AND owner = ?").bind(1, digest).run();
    }
    for (const auto& digest : removed) {
      m_db.prepare("DELETE FROM objects WHERE digest = ?").bind(1, digest).run();
    }
  });

  std::vector<std::string> failures;
  auto remove_file = [&](const fs::path& path) {
    std::error_code error;
    if (!fs::remove_all(path, error) && error) {
      failures.push_back(fmt::format("{}: {}", path.string(), error.message()));
    }
  };
  std::error_code list_error;
  fs::path root = m_home.objects_dir() / "sha256";
  for (fs::recursive_directory_iterator it(root, list_error), end; !list_error && it != end; it.increment(list_error)) {
    throw_if_interrupted();
    std::error_code type_error;
    if (!it->is_regular_file(type_error)) {
      continue;
    }
    std::string digest = it->path().parent_path().filename().string() + it->path().filename().string();
    if (!Digest::parse(digest)) {
      continue;  // Not an object name: not gc's to delete (`mlops db check` reports it).
    }
    bool unrecorded = recorded.count(digest) == 0;
    report.unrecorded_files += unrecorded ? 1 : 0;
    if (!dry_run && (unrecorded || removed.count(digest) > 0)) {
      remove_file(it->path());
    }
  }
  if (list_error && list_error != std::errc::no_such_file_or_directory) {  // No object stored yet is fine.
    failures.push_back(fmt::format("{}: {}", root.string(), list_error.message()));
  }
  list_error.clear();
  for (fs::directory_iterator it(m_home.tmp_dir(), list_error), end; !list_error && it != end; it.increment(list_error)) {
    ++report.tmp_files;
    if (!dry_run) {
      remove_file(it->path());
    }
  }
  if (!failures.empty()) {
    throw Error(ExitCode::failure, fmt::format("gc could not remove {} file(s): {}; check their permissions",
                                               failures.size(), fmt::join(failures, "; ")));
  }
  return report;
}

} // namespace mlops::objects
