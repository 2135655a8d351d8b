#include "mlops/worker/health_probe.hpp"

#include "mlops/worker/http_message.hpp"

#include <cerrno>
#include <cstring>

#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

namespace mlops::worker {

namespace {

using Clock = std::chrono::steady_clock;

// Waits until `fd` is ready for `events` or the deadline; false on timeout or error.
bool wait_for(int fd, short events, Clock::time_point deadline)
{
  while (true) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()).count();
    if (left <= 0) {
      return false;
    }
    pollfd wait{fd, events, 0};
    int ready = poll(&wait, 1, static_cast<int>(left));
    if (ready > 0) {
      return true;
    }
    if (ready < 0 && errno != EINTR) {
      return false;
    }
  }
}

} // namespace

int probe_status(const RouteBackend& backend, std::string_view path, std::chrono::milliseconds timeout)
{
  auto deadline = Clock::now() + timeout;
  int fd = ::socket(backend.address.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) {
    return 0;
  }
  struct Closer
  {
    int fd;
    ~Closer() { ::close(fd); }
  } closer{fd};
  if (::connect(fd, reinterpret_cast<const sockaddr*>(&backend.address), backend.address_size) != 0) {
    if (errno != EINPROGRESS || !wait_for(fd, POLLOUT, deadline)) {
      return 0;
    }
    int error = 0;
    socklen_t size = sizeof(error);
    if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &error, &size) != 0 || error != 0) {
      return 0;
    }
  }
  std::string request = "GET ";
  request.append(path).append(" HTTP/1.1\r\nHost: mlops-router\r\nConnection: close\r\n\r\n");
  if (::send(fd, request.data(), request.size(), MSG_NOSIGNAL) != static_cast<ssize_t>(request.size())) {
    return 0;  // a few bytes into an empty socket buffer go at once, or not at all
  }
  HttpResponseParser parser(1 << 20);
  char buffer[4096];
  while (wait_for(fd, POLLIN, deadline)) {
    auto got = ::recv(fd, buffer, sizeof(buffer), 0);
    if (got < 0 && (errno == EINTR || errno == EAGAIN)) {
      continue;
    }
    auto status = HttpResponseParser::Status::failed;
    if (got > 0) {
      std::string_view input(buffer, static_cast<size_t>(got));
      status = parser.feed(input);
    } else {
      status = parser.finish_at_close();
    }
    if (status == HttpResponseParser::Status::complete) {
      return parser.take().status;
    }
    if (status == HttpResponseParser::Status::failed || got <= 0) {
      return 0;
    }
  }
  return 0;
}

} // namespace mlops::worker
