// data::checkout: make a directory hold exactly a version's files. Plan first (what to write,
// replace, remove; refuse on any local change), then remove, then write on several threads.
#include "mlops/data/workspace.hpp"

#include "mlops/core/error.hpp"
#include "mlops/core/interrupt.hpp"
#include "mlops/core/progress.hpp"
#include "mlops/objects/store_files.hpp"
#include "mlops/util/file_descriptor.hpp"
#include "mlops/util/parallel.hpp"

#include <fcntl.h>
#include <fmt/format.h>
#include <fmt/std.h>
#include <linux/fs.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <mutex>
#include <set>
#include <unordered_map>

namespace mlops::data {

namespace fs = std::filesystem;
using objects::TreeEntry;

namespace {

std::pair<std::string, std::string> split_parent(const std::string& path)
{
  auto slash = path.rfind('/');
  if (slash == std::string::npos) {
    return {"", path};
  }
  return {path.substr(0, slash), path.substr(slash + 1)};
}

// The directories below the checkout root, opened one component at a time without following
// links and kept open: a link planted where the version has a directory is an error, never a way
// out of the root.
class DirectoryTree
{
public:
  explicit DirectoryTree(const fs::path& root) : m_root(root)
  {
    std::error_code error;
    fs::create_directories(root, error);
    int fd = ::open(root.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) {
      throw Error(ExitCode::failure, fmt::format("cannot open directory {}: {}", root, std::strerror(errno)));
    }
    m_open.emplace("", fd);
  }
  DirectoryTree(const DirectoryTree&) = delete;
  DirectoryTree& operator=(const DirectoryTree&) = delete;
  ~DirectoryTree()
  {
    for (auto& [path, fd] : m_open) {
      ::close(fd);
    }
  }

  // The directory `relative` ("" for the root), created when missing and `create`; -1 when it is
  // missing and not `create`.
  int open(const std::string& relative, bool create)
  {
    std::lock_guard lock(m_mutex);
    return open_locked(relative, create);
  }

  // Closes a directory that was removed.
  void forget(const std::string& relative)
  {
    std::lock_guard lock(m_mutex);
    if (auto found = m_open.find(relative); found != m_open.end()) {
      ::close(found->second);
      m_open.erase(found);
    }
  }

  // Closes `relative` and everything below it.
  void forget_below(const std::string& relative)
  {
    std::lock_guard lock(m_mutex);
    std::string prefix = relative + "/";
    for (auto it = m_open.begin(); it != m_open.end();) {
      if (it->first == relative || it->first.starts_with(prefix)) {
        ::close(it->second);
        it = m_open.erase(it);
      } else {
        ++it;
      }
    }
  }

private:
  int open_locked(const std::string& relative, bool create)
  {
    if (auto found = m_open.find(relative); found != m_open.end()) {
      return found->second;
    }
    auto [parent_path, name] = split_parent(relative);
    int parent = open_locked(parent_path, create);
    if (parent < 0) {
      return -1;
    }
    int fd = ::openat(parent, name.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0 && errno == ENOENT && create) {
      if (::mkdirat(parent, name.c_str(), 0755) != 0 && errno != EEXIST) {
        throw Error(ExitCode::failure, fmt::format("cannot create directory {}: {}", m_root / relative, std::strerror(errno)));
      }
      fd = ::openat(parent, name.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    }
    if (fd < 0 && errno == ENOENT && !create) {
      return -1;
    }
    if (fd < 0 && (errno == ELOOP || errno == ENOTDIR)) {
      throw Error(ExitCode::conflict,
                  fmt::format("{} is in the way: the version has a directory there, but it is a file or a "
                              "symbolic link that checkout does not manage; move it away",
                              m_root / relative));
    }
    if (fd < 0) {
      throw Error(ExitCode::failure, fmt::format("cannot open directory {}: {}", m_root / relative, std::strerror(errno)));
    }
    m_open.emplace(relative, fd);
    return fd;
  }

  fs::path m_root;
  std::mutex m_mutex;
  std::unordered_map<std::string, int> m_open;
};

// A manifest is outside input: beyond parse_manifest's checks, it must not reach into the
// repository or the home (a file under .git/hooks would run as code).
void refuse_metadata_paths(const std::vector<TreeEntry>& entries)
{
  for (const auto& entry : entries) {
    for (const auto& component : fs::path(entry.path)) {
      if (objects::is_metadata_directory(component.string())) {
        throw Error(ExitCode::integrity,
                    fmt::format("the version lists \"{}\", inside a {} directory, which checkout never writes; "
                                "the manifest was not made by `data add`",
                                entry.path, component.string()));
      }
    }
  }
}

struct Plan
{
  std::vector<const TreeEntry*> write;
  std::vector<const TreeEntry*> remove;  // from the directory's current entries
  std::vector<std::string> conflicts;
  std::vector<std::string> clear;        // directories (holding nothing else) where the version has a file
  std::size_t unchanged = 0;
  std::size_t replaced = 0;  // removed, then written anew
  std::size_t discarded = 0;
};

Plan make_plan(const std::vector<TreeEntry>& wanted, const std::vector<TreeEntry>& current,
               const std::vector<objects::Digest>& stored, bool force)
{
  auto is_stored = [&](const objects::Digest& digest) { return std::binary_search(stored.begin(), stored.end(), digest); };
  Plan plan;
  // Whether the file at `entry` may go: its content can always be had back from the store.
  auto may_lose = [&](const TreeEntry& entry, const char* what) {
    if (is_stored(entry.digest)) {
      return true;
    }
    if (force) {
      ++plan.discarded;
      return true;
    }
    plan.conflicts.push_back(fmt::format("{}: {}", what, entry.path));
    return false;
  };
  size_t i = 0;
  size_t j = 0;
  while (i < wanted.size() || j < current.size()) {
    if (j == current.size() || (i < wanted.size() && wanted[i].path < current[j].path)) {
      plan.write.push_back(&wanted[i++]);
    } else if (i == wanted.size() || current[j].path < wanted[i].path) {
      if (may_lose(current[j], "not in the version")) {
        plan.remove.push_back(&current[j]);
      }
      ++j;
    } else {
      const auto& want = wanted[i++];
      const auto& have = current[j++];
      if (want.digest == have.digest && want.mode == have.mode) {
        ++plan.unchanged;
      } else if (may_lose(have, "modified")) {
        // Also a change of mode alone: the file is replaced, never chmod-ed, because with
        // --link hardlink its inode is a stored object, which must keep its mode.
        plan.remove.push_back(&have);
        plan.write.push_back(&want);
        ++plan.replaced;
      }
    }
  }
  return plan;
}

// A directory where the version has a file. The scan saw only its files (links included), which
// the plan removes or refuses; what else it holds decides: nothing but directories, and it is
// cleared after the removals; anything else (a FIFO, a .git) is refused before anything changes.
void plan_directories_in_the_way(Plan& plan, const fs::path& dir)
{
  std::set<std::string> removed;
  for (const auto* entry : plan.remove) {
    removed.insert(entry->path);
  }
  for (const auto* entry : plan.write) {
    struct stat status = {};
    fs::path path = dir / entry->path;
    if (::lstat(path.c_str(), &status) != 0 || !S_ISDIR(status.st_mode)) {
      continue;
    }
    std::error_code error;
    for (fs::recursive_directory_iterator it(path, error), end; !error && it != end; it.increment(error)) {
      if (it->is_directory(error) && !it->is_symlink(error)) {
        continue;
      }
      std::string inside = entry->path + "/" + it->path().lexically_relative(path).string();
      if (removed.count(inside) == 0) {
        plan.conflicts.push_back(fmt::format("in the way of file {}: {}", entry->path, inside));
        error.clear();
        break;
      }
    }
    if (error) {
      plan.conflicts.push_back(fmt::format("in the way of file {}: an unreadable directory", entry->path));
    }
    plan.clear.push_back(entry->path);
  }
}

// Removes the directory tree `relative` once nothing but directories is left in it.
void clear_directory(DirectoryTree& dirs, const std::string& relative, const fs::path& dir)
{
  std::vector<fs::path> found{dir / relative};
  std::error_code error;
  for (fs::recursive_directory_iterator it(dir / relative, error), end; !error && it != end; it.increment(error)) {
    found.push_back(it->path());
  }
  dirs.forget_below(relative);
  // Deepest first: iteration lists a directory before what it holds.
  for (auto it = found.rbegin(); it != found.rend(); ++it) {
    if (::rmdir(it->c_str()) != 0 && errno != ENOENT) {
      throw Error(ExitCode::conflict, fmt::format("cannot remove directory {}, which is where the version has a file: {}; "
                                                  "nothing inside it was lost, move it away and run the checkout again",
                                                  *it, std::strerror(errno)));
    }
  }
}

[[noreturn]] void refuse(const Plan& plan, const fs::path& dir)
{
  constexpr size_t shown = 10;
  std::string list = fmt::format("{}", fmt::join(plan.conflicts.begin(),
                                                 plan.conflicts.begin() + std::min(shown, plan.conflicts.size()), "; "));
  if (plan.conflicts.size() > shown) {
    list += fmt::format("; and {} more", plan.conflicts.size() - shown);
  }
  throw Error(ExitCode::conflict,
              fmt::format("{} file(s) in {} hold content stored nowhere and would be lost ({}); nothing was changed; "
                          "save them with `mlops data add`, move them away, or pass --force to discard them",
                          plan.conflicts.size(), dir, list));
}

void remove_files(DirectoryTree& dirs, const Plan& plan, const std::vector<TreeEntry>& wanted, const fs::path& dir)
{
  std::set<std::string> emptied;
  for (const auto* entry : plan.remove) {
    auto [parent, name] = split_parent(entry->path);
    int fd = dirs.open(parent, false);
    if (fd >= 0 && ::unlinkat(fd, name.c_str(), 0) != 0 && errno != ENOENT) {
      throw Error(ExitCode::failure, fmt::format("cannot remove {}: {}", dir / entry->path, std::strerror(errno)));
    }
    for (; !parent.empty(); parent = split_parent(parent).first) {
      emptied.insert(parent);
    }
  }
  // Directories left empty go too, unless the version has files in them (those stay open).
  std::set<std::string> needed;
  for (const auto& entry : wanted) {
    for (auto parent = split_parent(entry.path).first; !parent.empty(); parent = split_parent(parent).first) {
      if (!needed.insert(parent).second) {
        break;
      }
    }
  }
  std::vector<std::string> candidates;
  std::copy_if(emptied.begin(), emptied.end(), std::back_inserter(candidates),
               [&](const std::string& path) { return needed.count(path) == 0; });
  auto depth = [](const std::string& path) { return std::count(path.begin(), path.end(), '/'); };
  std::stable_sort(candidates.begin(), candidates.end(), [&](const auto& a, const auto& b) { return depth(a) > depth(b); });
  for (const auto& path : candidates) {
    auto [parent, name] = split_parent(path);
    dirs.forget(path);
    if (int fd = dirs.open(parent, false); fd >= 0) {
      ::unlinkat(fd, name.c_str(), AT_REMOVEDIR);  // Fails, rightly, when something else is inside.
    }
  }
}

void write_file(objects::ObjectStore& store, DirectoryTree& dirs, const TreeEntry& entry, const fs::path& dir,
                objects::LinkMode link)
{
  using objects::LinkMode;
  auto [parent_path, name] = split_parent(entry.path);
  int parent = dirs.open(parent_path, true);
  fs::path shown = dir / entry.path;
  if (entry.mode == objects::mode_symlink) {
    std::string target = store.read(entry.digest);
    if (::symlinkat(target.c_str(), parent, name.c_str()) != 0) {
      throw Error(ExitCode::failure, fmt::format("cannot create link {}: {}", shown, std::strerror(errno)));
    }
    return;
  }
  bool executable = entry.mode == objects::mode_executable;
  fs::path object = store.object_path(entry.digest);
  // A hard link shares the object's inode, which must never change mode: never for executables.
  if (link == LinkMode::hardlink && !executable) {
    store.copy_verified(entry.digest, -1);
    if (::linkat(AT_FDCWD, object.c_str(), parent, name.c_str(), 0) != 0) {
      throw Error(ExitCode::failure, fmt::format("cannot hard-link {} from the store: {}; use --link copy",
                                                 shown, std::strerror(errno)));
    }
    return;
  }
  // An unnamed file in the very directory opened above (named through /proc, so no path is
  // walked again), linked under its name once complete and verified.
  objects::TempFile temp(fmt::format("/proc/self/fd/{}", parent), ".mlops-checkout-", executable ? 0755 : 0644,
                         /*unnamed=*/true);
  bool cloned = false;
  if (link == LinkMode::automatic || link == LinkMode::reflink) {
    int source = ::open(object.c_str(), O_RDONLY | O_CLOEXEC);
    cloned = source >= 0 && ::ioctl(temp.fd(), FICLONE, source) == 0;
    int error = errno;
    if (source >= 0) {
      ::close(source);
    }
    if (link == LinkMode::reflink && !cloned) {
      throw Error(ExitCode::failure, fmt::format("cannot reflink {}: {}; use --link copy or auto", shown, std::strerror(error)));
    }
  }
  store.copy_verified(entry.digest, cloned ? -1 : temp.fd());
  if (!temp.rename_to(parent, name, shown)) {
    throw Error(ExitCode::conflict, fmt::format("{} appeared while checkout was writing it; run the checkout again", shown));
  }
}

} // namespace

CheckoutReport checkout(objects::ObjectStore& store, const std::vector<TreeEntry>& entries, const fs::path& dir,
                        const CheckoutOptions& options)
{
  refuse_metadata_paths(entries);
  CheckoutReport report;
  std::vector<TreeEntry> current;
  std::error_code error;
  auto status = fs::status(dir, error);
  if (status.type() != fs::file_type::not_found) {
    if (!fs::is_directory(status)) {
      throw Error(ExitCode::conflict, fmt::format("{} exists and is not a directory; choose another DIR", dir));
    }
    auto scanned = scan_directory(dir, options.jobs, options.cache, nullptr);
    current = std::move(scanned.entries);
    report.skipped = std::move(scanned.skipped);
  }
  objects::StoreLock lock(store.objects_dir(), /*exclusive=*/false);  // No gc while objects are read.
  auto plan = make_plan(entries, current, store.stored_digests(), options.force);
  if (!current.empty() || status.type() == fs::file_type::directory) {
    plan_directories_in_the_way(plan, dir);
  }
  if (!plan.conflicts.empty()) {
    refuse(plan, dir);
  }

  DirectoryTree dirs(dir);
  remove_files(dirs, plan, entries, dir);
  for (const auto& path : plan.clear) {
    clear_directory(dirs, path, dir);
  }
  if (options.progress) {
    std::uint64_t bytes = 0;
    for (const auto* entry : plan.write) {
      bytes += static_cast<std::uint64_t>(entry->size);
    }
    options.progress->set_totals(plan.write.size(), bytes);
  }
  objects::raise_open_file_limit();
  // Small files wait on the disk more than on the CPU: several writers per core, as hashing does.
  util::parallel_for(
    plan.write.size(), options.jobs * 4,
    [&](size_t i) {
      write_file(store, dirs, *plan.write[i], dir, options.link);
      if (options.progress) {
        options.progress->advance(1, static_cast<std::uint64_t>(plan.write[i]->size));
      }
    },
    [] { return interrupted(); });
  throw_if_interrupted();
  report.written = plan.write.size();
  report.unchanged = plan.unchanged;
  report.removed = plan.remove.size() - plan.replaced;
  report.discarded = plan.discarded;
  return report;
}

} // namespace mlops::data
