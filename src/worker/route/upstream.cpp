#include "mlops/worker/upstream.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

namespace mlops::worker {

using Clock = std::chrono::steady_clock;

class Upstream final : public LoopWatcher
{
public:
  Upstream(UpstreamPool& pool, std::string key, int fd, bool connecting, size_t max_answer_bytes)
    : m_pool(pool), m_key(std::move(key)), m_fd(fd), m_connecting(connecting), m_parser(max_answer_bytes)
  {
  }
  ~Upstream() override
  {
    if (m_fd >= 0) {
      ::close(m_fd);
    }
  }

  const std::string& key() const { return m_key; }
  bool busy() const { return static_cast<bool>(m_done); }
  Clock::time_point deadline() const { return m_deadline; }

  void start(const std::string& request, bool head, Clock::time_point deadline, UpstreamCallback done)
  {
    m_out.assign(request);
    m_out_offset = 0;
    m_parser.expect(head);
    m_deadline = deadline;
    m_done = std::move(done);
    if (!m_connecting) {
      flush();
    }
  }

  void on_events(std::uint32_t events) override
  {
    if (m_closed) {
      return;
    }
    if (m_connecting && (events & (EPOLLOUT | EPOLLERR | EPOLLHUP))) {
      int error = 0;
      socklen_t size = sizeof(error);
      getsockopt(m_fd, SOL_SOCKET, SO_ERROR, &error, &size);
      if (error != 0) {
        fail(fmt::format("cannot connect: {}", std::strerror(error)), true);
        return;
      }
      m_connecting = false;
    }
    if (m_connecting) {
      return;
    }
    if (events & EPOLLERR) {
      fail("the connection failed", false);
      return;
    }
    if (m_out_offset < m_out.size()) {
      flush();
    }
    if (events & (EPOLLRDHUP | EPOLLHUP)) {
      m_hangup_seen = true;  // read until recv says 0
    }
    if (!m_closed && (events & (EPOLLIN | EPOLLRDHUP | EPOLLHUP))) {
      read();
    }
  }

  // Ends the exchange without an answer and closes the connection.
  void fail(std::string why, bool refused, bool timed_out = false)
  {
    auto done = std::move(m_done);
    m_done = nullptr;
    bool started = m_parser.started();
    m_pool.close(*this);
    if (done) {
      UpstreamResult result;
      result.error = std::move(why);
      result.refused = refused;
      result.timed_out = timed_out;
      result.answer_started = started;
      done(std::move(result));
    }
  }

  void mark_closed()
  {
    m_closed = true;
    ::close(m_fd);
    m_fd = -1;
  }

private:
  void flush()
  {
    while (m_out_offset < m_out.size()) {
      auto sent = ::send(m_fd, m_out.data() + m_out_offset, m_out.size() - m_out_offset, MSG_NOSIGNAL);
      if (sent > 0) {
        m_out_offset += static_cast<size_t>(sent);
      } else if (sent < 0 && errno == EINTR) {
        continue;
      } else if (sent < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
        return;  // EPOLLOUT goes on
      } else {
        fail(fmt::format("cannot send the request: {}", std::strerror(errno)), false);
        return;
      }
    }
    m_out.clear();
    m_out_offset = 0;
  }

  void read()
  {
    auto& buffer = m_pool.m_scratch;
    while (!m_closed) {
      auto got = ::recv(m_fd, buffer.data(), buffer.size(), 0);
      if (got > 0) {
        if (!m_done) {
          fail("", false);  // an idle connection has nothing to say; whatever it says ends it
          return;
        }
        std::string_view input(buffer.data(), static_cast<size_t>(got));
        auto status = m_parser.feed(input);
        if (status == HttpResponseParser::Status::failed) {
          fail(m_parser.error_message(), false);
        } else if (status == HttpResponseParser::Status::complete) {
          finish();
        }
        if (static_cast<size_t>(got) < buffer.size() && !m_hangup_seen) {
          return;  // the socket is empty: no need for a recv that says so; new bytes raise a new edge
        }
      } else if (got == 0) {
        if (m_done && m_parser.finish_at_close() == HttpResponseParser::Status::complete) {
          finish();
        }
        fail(m_parser.error_message(), false);
      } else if (errno == EINTR) {
        continue;
      } else if (errno == EAGAIN || errno == EWOULDBLOCK) {
        return;
      } else {
        fail(fmt::format("the connection broke: {}", std::strerror(errno)), false);
      }
    }
  }

  void finish()
  {
    auto done = std::move(m_done);
    m_done = nullptr;
    UpstreamResult result;
    result.answer = m_parser.take();
    if (result.answer->keep_alive) {
      m_pool.make_idle(*this);
    } else {
      m_pool.close(*this);
    }
    done(std::move(result));
  }

  UpstreamPool& m_pool;
  std::string m_key;
  int m_fd;
  bool m_connecting;
  bool m_closed = false;
  bool m_hangup_seen = false;
  HttpResponseParser m_parser;
  std::string m_out;
  size_t m_out_offset = 0;
  Clock::time_point m_deadline;
  UpstreamCallback m_done;
};

UpstreamPool::UpstreamPool(EventLoop& loop, size_t max_answer_bytes)
  : m_loop(loop), m_max_answer_bytes(max_answer_bytes), m_scratch(64 * 1024)
{
  m_loop.every_sweep([this](Clock::time_point now) { expire(now); });
}

UpstreamPool::~UpstreamPool() = default;

void UpstreamPool::send(const RouteBackend& backend, const std::string& request, bool head, Clock::time_point deadline,
                        UpstreamCallback done)
{
  auto key = backend.url();
  if (auto idle = m_idle.find(key); idle != m_idle.end() && !idle->second.empty()) {
    auto* connection = idle->second.back();
    idle->second.pop_back();
    connection->start(request, head, deadline, std::move(done));
    return;
  }
  auto refuse = [&](int error) {
    UpstreamResult result;
    result.error = fmt::format("cannot connect: {}", std::strerror(error));
    result.refused = true;
    done(std::move(result));
  };
  int fd = ::socket(backend.address.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) {
    refuse(errno);
    return;
  }
  int yes = 1;
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &yes, sizeof(yes));
  bool connecting = false;
  if (::connect(fd, reinterpret_cast<const sockaddr*>(&backend.address), backend.address_size) != 0) {
    if (errno != EINPROGRESS) {
      int error = errno;
      ::close(fd);
      refuse(error);
      return;
    }
    connecting = true;
  }
  auto connection = std::make_unique<Upstream>(*this, std::move(key), fd, connecting, m_max_answer_bytes);
  auto* raw = connection.get();
  if (!m_loop.watch(fd, EPOLLIN | EPOLLOUT | EPOLLRDHUP, *raw)) {
    refuse(errno);
    return;  // the connection closes its descriptor
  }
  m_connections.emplace(raw, std::move(connection));
  raw->start(request, head, deadline, std::move(done));
}

void UpstreamPool::make_idle(Upstream& connection)
{
  m_idle[connection.key()].push_back(&connection);
}

void UpstreamPool::close(Upstream& connection)
{
  auto found = m_connections.find(&connection);
  if (found == m_connections.end()) {
    return;
  }
  if (auto idle = m_idle.find(connection.key()); idle != m_idle.end()) {
    std::erase(idle->second, &connection);
  }
  connection.mark_closed();
  m_loop.release_later(std::move(found->second));
  m_connections.erase(found);
}

void UpstreamPool::expire(Clock::time_point now)
{
  std::vector<Upstream*> late;
  for (auto& [raw, connection] : m_connections) {
    if (connection->busy() && now >= connection->deadline()) {
      late.push_back(raw);
    }
  }
  for (auto* connection : late) {
    connection->fail("no whole answer in time (--upstream-timeout)", false, true);
  }
}

} // namespace mlops::worker
