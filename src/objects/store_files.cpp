#include "mlops/objects/store_files.hpp"

#include "mlops/core/error.hpp"
#include "mlops/core/interrupt.hpp"

#include <fcntl.h>
#include <fmt/format.h>
#include <fmt/std.h>
#include <sys/file.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <atomic>
#include <random>
#include <thread>

namespace mlops::objects {

namespace fs = std::filesystem;

namespace {

[[noreturn]] void fail(const std::string& doing)
{
  int error = errno;
  std::string hint = error == ENOSPC ? ", free some space and retry" : "";
  throw Error(ExitCode::failure, fmt::format("cannot {}: {}{}", doing, std::strerror(error), hint));
}

} // namespace

TempFile::TempFile(const fs::path& dir, const std::string& prefix, unsigned mode, bool unnamed)
{
  if (unnamed) {
    m_fd = ::open(dir.c_str(), O_TMPFILE | O_WRONLY | O_CLOEXEC, mode);
    if (m_fd >= 0) {
      return;
    }
    if (errno != EOPNOTSUPP && errno != EISDIR && errno != EINVAL) {
      fail(fmt::format("create a temporary file in {}", dir));
    }
  }
  // Unique across processes (random per process, even in containers that share PIDs) and threads
  // (a counter); O_EXCL makes a collision an error rather than a shared file.
  static const std::uint64_t process_tag = std::random_device()() * 0x9E3779B97F4A7C15ull ^ std::random_device()();
  static std::atomic<std::uint64_t> counter{0};
  for (int attempt = 0; attempt < 100; ++attempt) {
    m_path = dir / fmt::format("{}{:016x}-{}", prefix, process_tag, counter.fetch_add(1));
    m_fd = ::open(m_path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode);
    if (m_fd >= 0 || errno != EEXIST) {
      break;
    }
  }
  if (m_fd < 0) {
    m_path.clear();
    fail(fmt::format("create a temporary file in {}", dir));
  }
}

TempFile TempFile::adopt(int fd)
{
  TempFile file;
  file.m_fd = fd;
  return file;
}

TempFile::TempFile(TempFile&& other) noexcept : m_fd(other.m_fd), m_path(std::move(other.m_path))
{
  other.m_fd = -1;
  other.m_path.clear();
}

TempFile::~TempFile()
{
  close();
  if (!m_path.empty()) {
    ::unlink(m_path.c_str());
  }
}

void TempFile::close()
{
  if (m_fd >= 0) {
    ::close(m_fd);
    m_fd = -1;
  }
}

bool TempFile::rename_to(const fs::path& target)
{
  return rename_to(AT_FDCWD, target.string(), target);
}

bool TempFile::rename_to(int dir_fd, const std::string& name, const fs::path& shown)
{
  if (m_path.empty() && m_fd >= 0) {
    // AT_EMPTY_PATH links the open file directly but needs CAP_DAC_READ_SEARCH; the /proc path
    // needs no privilege but costs a path walk. Remember which one works.
    static std::atomic<bool> empty_path_allowed{true};
    int rc = -1;
    if (empty_path_allowed.load()) {
      rc = ::linkat(m_fd, "", dir_fd, name.c_str(), AT_EMPTY_PATH);
      if (rc != 0 && (errno == EPERM || errno == ENOENT)) {
        empty_path_allowed.store(false);
      }
    }
    if (rc != 0 && !empty_path_allowed.load()) {
      std::string self = fmt::format("/proc/self/fd/{}", m_fd);
      rc = ::linkat(AT_FDCWD, self.c_str(), dir_fd, name.c_str(), AT_SYMLINK_FOLLOW);
    }
    bool created = rc == 0;
    if (!created && errno != EEXIST) {
      fail(fmt::format("store {}", shown));
    }
    close();
    return created;
  }
  close();
  if (::renameat(AT_FDCWD, m_path.c_str(), dir_fd, name.c_str()) != 0) {
    fail(fmt::format("move {} to {}", m_path, shown));
  }
  m_path.clear();
  return true;
}



DirectoryCache::~DirectoryCache()
{
  for (auto& [path, fd] : m_open) {
    ::close(fd);
  }
}

int DirectoryCache::open(const fs::path& dir)
{
  if (auto found = m_open.find(dir.native()); found != m_open.end()) {
    return found->second;
  }
  std::error_code ignored;
  fs::create_directories(dir, ignored);
  int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) {
    fail(fmt::format("open directory {}", dir));
  }
  m_open.emplace(dir.native(), fd);
  return fd;
}

size_t raise_open_file_limit()
{
  rlimit limit = {};
  if (::getrlimit(RLIMIT_NOFILE, &limit) != 0) {
    return 1024;
  }
  if (limit.rlim_cur < limit.rlim_max) {
    limit.rlim_cur = limit.rlim_max;
    ::setrlimit(RLIMIT_NOFILE, &limit);
    ::getrlimit(RLIMIT_NOFILE, &limit);
  }
  return static_cast<size_t>(limit.rlim_cur);
}

void sync_filesystem(const fs::path& path)
{
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0 || ::syncfs(fd) != 0) {
    int error = errno;
    if (fd >= 0) {
      ::close(fd);
    }
    errno = error;
    fail(fmt::format("flush the filesystem of {} to disk", path));
  }
  ::close(fd);
}

void write_fully(int fd, const void* data, size_t size, const std::string& what)
{
  const char* bytes = static_cast<const char*>(data);
  while (size > 0) {
    ssize_t written = ::write(fd, bytes, size);
    if (written < 0) {
      if (errno == EINTR) {
        continue;
      }
      fail("write " + what);
    }
    bytes += written;
    size -= static_cast<size_t>(written);
  }
}

} // namespace mlops::objects
