#include "mlops/util/file.hpp"

#include "mlops/util/file_descriptor.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <fstream>
#include <sstream>
#include <system_error>

namespace mlops::util {

namespace fs = std::filesystem;

namespace {

[[noreturn]] void throw_errno(const std::string& what)
{
  throw std::system_error(errno, std::generic_category(), what);
}

// Removes the temporary file unless the rename consumed it.
class TemporaryName
{
public:
  explicit TemporaryName(std::string path) : m_path(std::move(path)) {}
  TemporaryName(const TemporaryName&) = delete;
  TemporaryName& operator=(const TemporaryName&) = delete;
  ~TemporaryName()
  {
    if (!m_path.empty()) {
      ::unlink(m_path.c_str());
    }
  }
  const std::string& path() const { return m_path; }
  void release() { m_path.clear(); }

private:
  std::string m_path;
};

void write_all(int fd, std::string_view data, const std::string& what)
{
  while (!data.empty()) {
    ssize_t written = ::write(fd, data.data(), data.size());
    if (written < 0) {
      if (errno == EINTR) {
        continue;
      }
      throw_errno(what);
    }
    data.remove_prefix(static_cast<size_t>(written));
  }
}

void sync_directory(const fs::path& dir)
{
  FileDescriptor fd(::open(dir.empty() ? "." : dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (fd.get() < 0 || ::fsync(fd.get()) != 0) {
    throw_errno("flushing directory " + dir.string());
  }
}

} // namespace

void write_file_atomic(const fs::path& path, std::string_view content)
{
  // A unique name (mkstemp, O_EXCL): two writers, even in containers with separate PID
  // namespaces, never share a temporary file.
  std::string pattern = path.string() + ".tmp.XXXXXX";
  FileDescriptor fd(::mkstemp(pattern.data()));
  if (fd.get() < 0) {
    throw_errno("creating a temporary file for " + path.string());
  }
  TemporaryName temporary(pattern);
  if (::fchmod(fd.get(), 0644) != 0) {
    throw_errno("setting the mode of " + temporary.path());
  }
  write_all(fd.get(), content, "writing " + temporary.path());
  if (::fsync(fd.get()) != 0) {
    throw_errno("flushing " + temporary.path());
  }
  if (::rename(temporary.path().c_str(), path.c_str()) != 0) {
    throw_errno("renaming " + temporary.path() + " to " + path.string());
  }
  temporary.release();
  // The rename is durable only once the directory entry is on disk.
  sync_directory(path.parent_path());
}

std::string read_file(const fs::path& path)
{
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    throw std::system_error(errno, std::generic_category(), "reading " + path.string());
  }
  std::ostringstream buffer;
  buffer << in.rdbuf();
  return buffer.str();
}

} // namespace mlops::util
