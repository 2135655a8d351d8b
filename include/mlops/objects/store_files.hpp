#pragma once
// File-level helpers of the object store: locks, temporary files, batched syncs. Checkout uses
// them too, to write into a user's directory the way the store writes its own.

#include "mlops/util/file_lock.hpp"

#include <filesystem>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

namespace mlops::objects {

// objects/lock: shared for readers and adders, exclusive for gc.
class StoreLock : public util::FileLock
{
public:
  StoreLock(const std::filesystem::path& objects_dir, bool exclusive)
    : FileLock(objects_dir / "lock", exclusive, "the object store lock")
  {
  }
};

// A new file in `dir`, open for writing; removed on destruction unless released. Its mode is `mode`
// from the start (the store creates its files read-only: no chmod later). With `unnamed`, it is an
// O_TMPFILE inode with no name at all until rename_to links it into place: no directory entry to
// create and remove, no cross-directory rename (which ext4 serializes), and nothing left behind by
// a crash. Filesystems without O_TMPFILE get a named file instead.
class TempFile
{
public:
  TempFile(const std::filesystem::path& dir, const std::string& prefix, unsigned mode = 0600, bool unnamed = false);
  // Takes over an open file that already has a name elsewhere (hard-link mode): rename_to then
  // links that very inode, and nothing is removed on destruction.
  static TempFile adopt(int fd);

  TempFile(TempFile&& other) noexcept;
  TempFile& operator=(TempFile&&) = delete;
  ~TempFile();

  int fd() const { return m_fd; }
  const std::filesystem::path& path() const { return m_path; }
  void close();
  // Gives the file the name `target` (closing it); nothing is left to remove afterwards. An
  // unnamed file whose target already exists is dropped (the store's files never differ): then
  // it returns false.
  bool rename_to(const std::filesystem::path& target);
  // The same, with the name `name` in the directory open as `dir_fd` (no path walk).
  bool rename_to(int dir_fd, const std::string& name, const std::filesystem::path& shown);
  // Forgets the file: the destructor will not remove it.
  void release() { m_path.clear(); }

private:
  TempFile() = default;
  int m_fd = -1;
  std::filesystem::path m_path;
};

// Directories opened once and kept open (the store's 256 fan-out directories), created on demand.
class DirectoryCache
{
public:
  DirectoryCache() = default;
  DirectoryCache(const DirectoryCache&) = delete;
  DirectoryCache& operator=(const DirectoryCache&) = delete;
  ~DirectoryCache();
  int open(const std::filesystem::path& dir);

private:
  std::unordered_map<std::string, int> m_open;  // by path: comparing std::filesystem::paths is slow
};

// Raises the soft limit of open files to the hard limit; returns the new soft limit.
size_t raise_open_file_limit();

// Flushes every dirty page of the filesystem holding `path` (one call for a whole batch instead
// of one fsync per file).
void sync_filesystem(const std::filesystem::path& path);

// Writes all of `data` to `fd`; throws Error(failure) mentioning `what` (disk full, I/O).
void write_fully(int fd, const void* data, size_t size, const std::string& what);

} // namespace mlops::objects
