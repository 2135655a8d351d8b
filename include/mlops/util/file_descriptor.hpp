#pragma once
// An owned POSIX file descriptor, closed when the object dies.

#include <unistd.h>

#include <utility>

namespace mlops::util {

class FileDescriptor
{
public:
  explicit FileDescriptor(int fd = -1) : m_fd(fd) {}
  FileDescriptor(FileDescriptor&& other) noexcept : m_fd(other.release()) {}
  FileDescriptor& operator=(FileDescriptor&& other) noexcept
  {
    std::swap(m_fd, other.m_fd);
    return *this;
  }
  FileDescriptor(const FileDescriptor&) = delete;
  FileDescriptor& operator=(const FileDescriptor&) = delete;
  ~FileDescriptor()
  {
    if (m_fd >= 0) {
      ::close(m_fd);
    }
  }

  int get() const { return m_fd; }
  bool valid() const { return m_fd >= 0; }
  // Gives up ownership: the caller closes the descriptor.
  int release() { return std::exchange(m_fd, -1); }

private:
  int m_fd;
};

} // namespace mlops::util
