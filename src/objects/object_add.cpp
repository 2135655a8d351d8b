// ObjectStore::add: hash and store files and trees, in three phases.
//   1. In parallel: every file not already stored is copied (or cloned) into tmp/ while it is
//      hashed; files whose cached digest names an existing object are not even read.
//   2. One syncfs, then each new object is renamed to its final name, then another syncfs.
//   3. One transaction records the objects, the tree entries and the pins.
#include "mlops/objects/object_store.hpp"

#include "mlops/core/error.hpp"
#include "mlops/core/interrupt.hpp"
#include "mlops/core/progress.hpp"
#include "mlops/objects/hash_cache.hpp"
#include "mlops/store/statement.hpp"
#include "mlops/store/transaction.hpp"
#include "mlops/util/file_descriptor.hpp"
#include "mlops/util/parallel.hpp"
#include "mlops/util/time.hpp"
#include "mlops/objects/store_files.hpp"

#include <fcntl.h>
#include <fmt/format.h>
#include <fmt/std.h>
#include <spdlog/spdlog.h>
#include <linux/fs.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <atomic>
#include <mutex>
#include <set>
#include <optional>
#include <utility>

namespace mlops::objects {

namespace fs = std::filesystem;

namespace {

// An object that phase 1 prepared and phase 2 puts in place: an unnamed copy, or (hardlink mode)
// the source file itself, kept open so that the inode that was hashed is the one linked even if
// the path is replaced meanwhile.
struct NewObject
{
  Digest digest;
  std::optional<TempFile> temp;
  std::optional<FileIdentity> hashed;  // hardlink mode: the source must still be this
  std::string source;                  // for messages
  std::uint64_t size = 0;
};

util::FileDescriptor open_source(const std::string& path)
{
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    throw Error(errno == ENOENT ? ExitCode::not_found : ExitCode::failure,
                fmt::format("cannot open \"{}\": {}", path, std::strerror(errno)));
  }
  return util::FileDescriptor(fd);
}

// Objects are created read-only: stored objects never change.
constexpr unsigned object_mode = 0444;

class Adder
{
public:
  Adder(ObjectStore& store, const Home& home, store::Database& db, LinkMode mode, HashCache* cache, Progress* progress)
    : m_store(store), m_home(home), m_mode(mode), m_cache(cache), m_progress(progress)
  {
    // What is stored, in memory: one query instead of a stat per file. (A recorded object whose
    // file was lost is `artifact verify`'s business, not add's.)
    for (auto rows = db.prepare("SELECT digest FROM objects"); rows.step();) {
      if (auto digest = Digest::parse(rows.column_text(0))) {
        m_stored.insert(*digest);
      }
    }
  }

  // Phase 1 for one file. Returns its digest; queues a NewObject when it is not stored yet.
  Digest store_file(const FileJob& job)
  {
    thread_local std::vector<char> buffer;
    if (job.mode == mode_symlink) {
      std::string target = read_link_target(job);
      Digest digest = sha256(target);
      if (!stored(digest)) {
        TempFile temp(m_home.tmp_dir(), "object-", object_mode, /*unnamed=*/true);
        write_fully(temp.fd(), target.data(), target.size(), job.full);
        queue(NewObject{digest, std::move(temp), std::nullopt, job.full, target.size()});
      }
      return digest;
    }
    if (m_cache) {
      if (auto cached = m_cache->lookup(job.identity); cached && stored(*cached)) {
        advance(job.identity.size);
        return *cached;  // Unchanged and already stored: not read at all.
      }
    }
    auto started = std::chrono::system_clock::now();
    auto source = open_source(job.full);
    HashedFile hashed;
    std::optional<TempFile> temp;
    // Reading against the listed identity catches any change since the listing, also during a
    // clone, so the stored bytes, the digest and the manifest's size always agree.
    if (m_mode == LinkMode::hardlink) {
      hashed = hash_open_file(source.get(), job.full, buffer, -1, &job.identity);
    } else {
      temp.emplace(m_home.tmp_dir(), "object-", object_mode, /*unnamed=*/true);
      bool cloned = clone_into(source.get(), *temp, job.full);
      hashed = hash_open_file(source.get(), job.full, buffer, cloned ? -1 : temp->fd(), &job.identity);
    }
    if (m_cache) {
      m_cache->remember(hashed.identity, hashed.digest, started);
    }
    advance(hashed.identity.size);
    if (!stored(hashed.digest)) {
      std::optional<FileIdentity> source_identity;
      if (m_mode == LinkMode::hardlink) {
        temp.emplace(TempFile::adopt(source.release()));
        source_identity = hashed.identity;
      }
      queue(NewObject{hashed.digest, std::move(temp), source_identity, job.full,
                      static_cast<std::uint64_t>(hashed.identity.size)});
    }
    return hashed.digest;
  }

  void store_manifest(const HashedTarget& tree)
  {
    if (!stored(tree.digest)) {
      TempFile temp(m_home.tmp_dir(), "tree-", object_mode, /*unnamed=*/true);
      write_fully(temp.fd(), tree.manifest.data(), tree.manifest.size(), "a tree manifest");
      queue(NewObject{tree.digest, std::move(temp), std::nullopt, tree.path.string(), tree.manifest.size()});
    }
  }

  // Phase 2 for what is still queued. Returns the number of objects written and their bytes.
  std::pair<size_t, std::uint64_t> put_in_place(unsigned jobs)
  {
    std::lock_guard lock(m_mutex);
    put_queued_in_place(jobs);
    return {m_written, m_bytes_written};
  }

private:
  // Phase 2 for the queue, linking on `jobs` threads (a link costs the kernel some 20 us: 15,000
  // of them are worth two cores); the caller holds m_mutex. Also runs early, from phase 1 with
  // one thread, when the queue holds as many open files as the process may have.
  void put_queued_in_place(unsigned jobs)
  {
    if (m_new.empty()) {
      return;
    }
    sync_filesystem(m_home.tmp_dir());  // Every byte on disk before any name appears.
    struct Placing
    {
      NewObject* object;
      int dir;
      fs::path target;
    };
    std::vector<Placing> placing;
    for (auto& object : m_new) {
      if (!m_placed.insert(object.digest).second) {
        continue;  // Another file of this add had the same content.
      }
      m_stored.insert(object.digest);
      fs::path target = m_store.object_path(object.digest);
      int dir = m_fan_out_dirs.open(target.parent_path());
      placing.push_back({&object, dir, std::move(target)});
    }
    std::atomic<size_t> written{0};
    std::atomic<std::uint64_t> bytes_written{0};
    util::parallel_for(
      placing.size(), jobs,
      [&](size_t i) {
        auto& [object, dir, target] = placing[i];
        if (object->hashed) {
          require_source_unchanged(*object->temp, *object->hashed, object->source);
        }
        // An object another process stored meanwhile stays: same name, same bytes.
        if (!object->temp->rename_to(dir, target.filename().string(), target)) {
          return;
        }
        if (object->hashed) {
          // Hard link: the object must never change, so the file (the user's too) becomes
          // read-only, but only now that it really is an object.
          ::chmod(target.c_str(), 0444);
        }
        written.fetch_add(1);
        bytes_written.fetch_add(object->size);
      },
      [] { return interrupted(); });
    throw_if_interrupted();
    m_written += written.load();
    m_bytes_written += bytes_written.load();
    m_new.clear();
    sync_filesystem(m_home.objects_dir());  // The names on disk before the database row.
  }

  // Recorded and present. A recorded object whose file is gone (deleted, or moved aside by
  // `artifact verify` as corrupt) is stored anew: adding the original files repairs the store.
  bool stored(const Digest& digest)
  {
    {
      std::lock_guard lock(m_mutex);
      if (m_stored.count(digest) == 0) {
        return false;
      }
    }
    return ::access(m_store.object_path(digest).c_str(), F_OK) == 0;
  }

  void queue(NewObject object)
  {
    std::lock_guard lock(m_mutex);
    m_new.push_back(std::move(object));
    if (m_new.size() >= m_max_open) {
      put_queued_in_place(1);
    }
  }

  void advance(std::int64_t bytes)
  {
    if (m_progress) {
      m_progress->advance(1, static_cast<std::uint64_t>(bytes));
    }
  }

  // Reflink (copy-on-write clone). False when the mode or the filesystem does not allow it, so
  // the caller copies instead; throws when --link reflink was demanded and is impossible.
  bool clone_into(int source, TempFile& temp, const std::string& path)
  {
    if (m_mode == LinkMode::copy || m_mode == LinkMode::hardlink || !m_reflink_works.load()) {
      return false;
    }
    if (::ioctl(temp.fd(), FICLONE, source) != 0) {
      if (errno == EOPNOTSUPP || errno == EXDEV || errno == EINVAL) {
        m_reflink_works.store(false);  // The filesystem cannot: do not ask again for every file.
      }
      if (m_mode == LinkMode::reflink) {
        throw Error(ExitCode::failure,
                    fmt::format("cannot reflink \"{}\" into the store: {}; this filesystem may not support "
                                "it, use --link copy or auto",
                                path, std::strerror(errno)));
      }
      return false;
    }
    return true;
  }

  // Hard-link mode: the source inode becomes the object, so it must still hold what was hashed.
  static void require_source_unchanged(TempFile& source, const FileIdentity& hashed, const std::string& path)
  {
    struct stat status = {};
    if (::fstat(source.fd(), &status) != 0 || FileIdentity::of(status) != hashed) {
      throw Error(ExitCode::failure, fmt::format("\"{}\" changed while it was being stored, retry once nothing writes to it", path));
    }
  }

  ObjectStore& m_store;
  const Home& m_home;
  LinkMode m_mode;
  HashCache* m_cache;
  Progress* m_progress;
  // Guarded by m_mutex: phase 2 may run on a phase 1 thread whenever the queue is full.
  std::set<Digest> m_stored;
  std::set<Digest> m_placed;  // Put in place by this add.
  DirectoryCache m_fan_out_dirs;
  // Files held open until they are linked, within the process's limit: leave room for the
  // fan-out directories (256), the readers (two each) and the database.
  size_t m_max_open = [] {
    size_t limit = raise_open_file_limit();
    return limit > 2048 + 512 ? limit - 2048 : std::max<size_t>(64, limit / 4);
  }();
  size_t m_written = 0;
  std::uint64_t m_bytes_written = 0;
  std::atomic<bool> m_reflink_works{true};
  std::mutex m_mutex;
  std::vector<NewObject> m_new;
};

void record(store::Database& db, const AddResult& result, const HashPlan& plan,
            const std::vector<FileDigest>& digests, const AddOptions& options)
{
  std::string now = util::now_iso8601();
  auto insert_object = [&](const Digest& digest, const char* kind, std::int64_t size) {
    db.prepare("INSERT OR IGNORE INTO objects (digest, kind, size, created_at) VALUES (?, ?, ?, ?)")
      .bind_all(digest.hex(), kind, size, now)
      .run();
  };
  auto insert_ref = [&](const Digest& digest, std::string_view kind, const std::string& owner) {
    db.prepare("INSERT OR IGNORE INTO object_refs (digest, kind, owner, created_at) VALUES (?, ?, ?, ?)")
      .bind_all(digest.hex(), kind, owner, now)
      .run();
  };
  store::write_transaction(db, [&] {
    for (size_t i = 0; i < plan.files.size(); ++i) {
      insert_object(digests[i].digest, "blob", plan.files[i].identity.size);
    }
    for (const auto& target : result.targets) {
      if (target.is_tree) {
        insert_object(target.digest, "tree", static_cast<std::int64_t>(target.manifest.size()));
        for (const auto& entry : target.entries) {
          insert_ref(entry.digest, "tree", target.digest.hex());
        }
      }
      if (!options.ref_kind.empty()) {
        insert_ref(target.digest, options.ref_kind, fs::absolute(target.path).lexically_normal().string());
      }
    }
    if (options.in_transaction) {
      options.in_transaction(result);
    }
  });
}

} // namespace

AddResult ObjectStore::add(const std::vector<fs::path>& paths, const AddOptions& options)
{
  auto [link, jobs, cache, progress] = std::tie(options.link, options.jobs, options.cache, options.progress);
  auto started = std::chrono::steady_clock::now();
  auto elapsed = [&] { return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - started).count(); };
  auto plan = plan_hashing(paths, jobs, options.skip_metadata);
  spdlog::debug("listed {} file(s): {:.1f} ms", plan.files.size(), elapsed());
  if (!plan.unreadable.empty()) {
    throw_unreadable(plan.unreadable);  // Before anything is written.
  }
  if (progress) {
    progress->set_totals(plan.files.size(), plan.total_bytes);
  }
  StoreLock lock(m_home.objects_dir(), /*exclusive=*/false);
  if (cache && plan.files.size() > preload_threshold) {
    cache->preload();
  }
  Adder adder(*this, m_home, m_db, link, cache, progress);
  std::vector<FileDigest> digests(plan.files.size());
  std::vector<std::string> failures;
  std::mutex failures_mutex;
  util::parallel_for(
    plan.files.size(), reader_threads(plan, jobs),
    [&](size_t i) {
      try {
        digests[i].digest = adder.store_file(plan.files[i]);
      } catch (const Error& error) {
        if (error.code() == ExitCode::interrupted) {
          throw;
        }
        std::lock_guard guard(failures_mutex);
        failures.push_back(error.what());  // Every bad file is named; nothing gets stored.
      }
    },
    [] { return interrupted(); });
  throw_if_interrupted();
  if (!failures.empty()) {
    throw_unreadable(std::move(failures));
  }

  spdlog::debug("hashed and copied: {:.1f} ms", elapsed());
  AddResult result;
  result.targets = assemble_targets(plan, digests);
  for (const auto& target : result.targets) {
    if (target.is_tree) {
      adder.store_manifest(target);
    }
  }
  std::tie(result.objects_written, result.bytes_written) = adder.put_in_place(jobs);
  spdlog::debug("objects in place: {:.1f} ms", elapsed());
  if (cache) {
    cache->flush();
  }
  size_t objects = plan.files.size();
  for (const auto& target : result.targets) {
    objects += target.is_tree ? 1 : 0;
  }
  result.objects_existing = objects - result.objects_written;
  record(m_db, result, plan, digests, options);
  spdlog::debug("recorded: {:.1f} ms", elapsed());
  return result;
}

} // namespace mlops::objects
