#include "mlops/util/file.hpp"

#include <fcntl.h>
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

class FileDescriptor
{
public:
  explicit FileDescriptor(int fd) : m_fd(fd) {}
  FileDescriptor(const FileDescriptor&) = delete;
  FileDescriptor& operator=(const FileDescriptor&) = delete;
  ~FileDescriptor()
  {
    if (m_fd >= 0) {
      ::close(m_fd);
    }
  }
  int get() const { return m_fd; }

private:
  int m_fd;
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

} // namespace

void write_file_atomic(const fs::path& path, std::string_view content)
{
  fs::path temporary = path;
  temporary += ".tmp." + std::to_string(::getpid());
  {
    FileDescriptor fd(::open(temporary.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644));
    if (fd.get() < 0) {
      throw_errno("creating " + temporary.string());
    }
    write_all(fd.get(), content, "writing " + temporary.string());
    if (::fsync(fd.get()) != 0) {
      throw_errno("flushing " + temporary.string());
    }
  }
  if (::rename(temporary.c_str(), path.c_str()) != 0) {
    int saved = errno;
    ::unlink(temporary.c_str());
    errno = saved;
    throw_errno("renaming " + temporary.string() + " to " + path.string());
  }
  // The rename is durable only once the directory entry is on disk.
  FileDescriptor dir(::open(path.parent_path().empty() ? "." : path.parent_path().c_str(),
                            O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (dir.get() >= 0) {
    ::fsync(dir.get());
  }
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
