#include "mlops/util/file_lock.hpp"

#include "mlops/core/error.hpp"
#include "mlops/core/interrupt.hpp"

#include <fmt/format.h>
#include <fmt/std.h>

#include <cerrno>
#include <cstring>
#include <thread>

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

namespace mlops::util {

FileLock::FileLock(const std::filesystem::path& file, bool exclusive, std::string_view what)
{
  m_fd = ::open(file.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  if (m_fd < 0) {
    throw Error(ExitCode::failure, fmt::format("cannot open {} {}: {}", what, file, std::strerror(errno)));
  }
  int operation = (exclusive ? LOCK_EX : LOCK_SH) | LOCK_NB;
  while (::flock(m_fd, operation) != 0) {
    if (errno != EWOULDBLOCK && errno != EINTR) {
      int error = errno;
      ::close(m_fd);
      throw Error(ExitCode::failure, fmt::format("cannot lock {} {}: {}", what, file, std::strerror(error)));
    }
    if (interrupted()) {
      ::close(m_fd);
      throw_if_interrupted();
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
}

FileLock::~FileLock()
{
  ::close(m_fd);  // releases the lock
}

} // namespace mlops::util
