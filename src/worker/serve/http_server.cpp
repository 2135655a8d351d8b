#include "mlops/worker/http_server.hpp"

#include "mlops/core/error.hpp"

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <mutex>
#include <thread>
#include <unordered_map>

#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

namespace mlops::worker {

namespace {

using Clock = std::chrono::steady_clock;

constexpr size_t read_chunk = 64 * 1024;
constexpr auto sweep_interval = std::chrono::milliseconds(100);
constexpr auto linger_time = std::chrono::seconds(2);
// While a request is being answered, or answers wait for the client to take them, a pipelining
// client may send at most this much more before the loop stops reading from it.
constexpr size_t max_buffered_while_answering = 1 << 20;
// Answers a client has not taken yet: past this, the loop stops parsing its requests (a client
// that pipelines without reading would otherwise make us buffer every answer).
constexpr size_t max_unsent_output = 1 << 20;

thread_local HttpEventLoop* t_current_loop = nullptr;

// Markers in epoll_event.data.ptr for the two descriptors that are not connections.
char g_listen_marker;
char g_wake_marker;

std::string error_body(std::string_view message)
{
  return nlohmann::json{{"error", message}}.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

} // namespace

class HttpEventLoop final : public EventLoop
{
public:
  HttpEventLoop(size_t index, const HttpServerOptions& options, const HttpHandler& handler, ResponseCounter& responses);
  ~HttpEventLoop();

  // Runs until drain() and the last connection. Loop 0 gets the listening socket and the others.
  void run(int listen_socket, const std::vector<HttpEventLoop*>& loops);

  // Any thread: `task` runs on this loop's thread.
  void post(std::function<void()> task) override;
  void drain();
  void respond(int fd, std::uint64_t serial, HttpResponse&& response);

  size_t index() const override { return m_index; }
  bool watch(int fd, std::uint32_t events, LoopWatcher& watcher) override;
  void release_later(std::unique_ptr<LoopWatcher> watcher) override { m_released.push_back(std::move(watcher)); }
  void every_sweep(std::function<void(Clock::time_point)> task) override { m_sweep_tasks.push_back(std::move(task)); }

private:
  struct Connection final : LoopWatcher
  {
    HttpEventLoop* loop = nullptr;
    int fd = -1;
    std::uint64_t serial = 0;
    HttpRequestParser parser;
    std::string in;  // received, from in_offset on not yet parsed
    size_t in_offset = 0;
    std::string out;  // to send, from out_offset on
    size_t out_offset = 0;
    bool answering = false;     // a request was handed to the handler, its answer is not written
    bool in_handler = false;
    bool keep_alive = true;
    bool http_1_0 = false;      // the request was HTTP/1.0
    bool head_only = false;     // the request was HEAD
    std::optional<std::string> request_id;
    bool continue_sent = false;
    bool read_paused = false;
    bool hangup_seen = false;   // epoll reported the client's FIN: read until recv says 0
    bool peer_closed = false;   // the client sent FIN and we have read up to it
    bool closing = false;       // closes once `out` is sent
    bool lingering = false;     // our FIN is sent; reading what is left before closing
    bool dead = false;
    Clock::time_point last_read;
    Clock::time_point last_write;
    Clock::time_point linger_deadline;

    Connection(HttpEventLoop* owner, HttpLimits limits) : loop(owner), parser(limits) {}
    void on_events(std::uint32_t events) override
    {
      if (!dead) {
        loop->on_connection_event(*this, events);
      }
    }
    bool has_output() const { return out_offset < out.size(); }
    bool output_full() const { return out.size() - out_offset > max_unsent_output; }
  };

  void accept_connections(const std::vector<HttpEventLoop*>& loops);
  void adopt(int fd);
  void run_tasks();
  void on_connection_event(Connection& connection, std::uint32_t events);
  void read_available(Connection& connection);
  void serve(Connection& connection);
  void write_response(Connection& connection, HttpResponse&& response, bool close);
  void write(Connection& connection, std::string_view head, std::string_view body);
  void flush(Connection& connection);
  void finish(Connection& connection);
  void close(Connection& connection);
  void sweep();

  size_t m_index;
  const HttpServerOptions& m_options;
  const HttpHandler& m_handler;
  ResponseCounter& m_responses;
  int m_epoll = -1;
  int m_wake = -1;
  int m_listen_socket = -1;
  size_t m_next_loop = 0;
  bool m_draining = false;
  bool m_accept_paused = false;
  Clock::time_point m_now = Clock::now();
  std::uint64_t m_serial = 0;
  std::unordered_map<int, std::unique_ptr<Connection>> m_connections;
  std::vector<std::unique_ptr<LoopWatcher>> m_released;  // freed after the events that may name them
  std::vector<std::function<void(Clock::time_point)>> m_sweep_tasks;
  std::vector<char> m_scratch = std::vector<char>(read_chunk);
  std::mutex m_tasks_mutex;
  std::vector<std::function<void()>> m_tasks;
};

void HttpResponder::send(HttpResponse response) const
{
  if (t_current_loop == m_loop) {
    m_loop->respond(m_fd, m_serial, std::move(response));
    return;
  }
  m_loop->post([loop = m_loop, fd = m_fd, serial = m_serial, response = std::move(response)]() mutable {
    loop->respond(fd, serial, std::move(response));
  });
}

HttpResponse json_response(int status, const nlohmann::json& document)
{
  return {status, "application/json", document.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace), {}};
}

HttpResponse error_response(int status, std::string_view message)
{
  return {status, "application/json", error_body(message), {}};
}

EventLoop& HttpResponder::loop() const
{
  return *m_loop;
}

HttpEventLoop::HttpEventLoop(size_t index, const HttpServerOptions& options, const HttpHandler& handler,
                             ResponseCounter& responses)
  : m_index(index), m_options(options), m_handler(handler), m_responses(responses)
{
  m_epoll = epoll_create1(EPOLL_CLOEXEC);
  m_wake = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  if (m_epoll < 0 || m_wake < 0) {
    throw Error(ExitCode::failure, fmt::format("cannot create an event loop: {}", std::strerror(errno)));
  }
  epoll_event event{EPOLLIN, {.ptr = &g_wake_marker}};
  epoll_ctl(m_epoll, EPOLL_CTL_ADD, m_wake, &event);
}

HttpEventLoop::~HttpEventLoop()
{
  for (auto& [fd, connection] : m_connections) {
    ::close(fd);
  }
  ::close(m_wake);
  ::close(m_epoll);
}

void HttpEventLoop::post(std::function<void()> task)
{
  bool was_empty = false;
  {
    std::lock_guard lock(m_tasks_mutex);
    was_empty = m_tasks.empty();
    m_tasks.push_back(std::move(task));
  }
  if (was_empty) {
    std::uint64_t one = 1;
    [[maybe_unused]] auto written = ::write(m_wake, &one, sizeof(one));
  }
}

bool HttpEventLoop::watch(int fd, std::uint32_t events, LoopWatcher& watcher)
{
  epoll_event event{events | EPOLLET, {.ptr = &watcher}};
  return epoll_ctl(m_epoll, EPOLL_CTL_ADD, fd, &event) == 0;
}

void HttpEventLoop::drain()
{
  post([this] {
    m_draining = true;
    if (m_listen_socket >= 0) {
      ::close(m_listen_socket);  // also leaves the epoll set
      m_listen_socket = -1;
    }
    sweep();  // closes the idle connections now
  });
}

void HttpEventLoop::run_tasks()
{
  std::uint64_t count = 0;
  [[maybe_unused]] auto got = ::read(m_wake, &count, sizeof(count));
  std::vector<std::function<void()>> tasks;
  {
    std::lock_guard lock(m_tasks_mutex);
    tasks.swap(m_tasks);
  }
  for (auto& task : tasks) {
    task();
  }
}

void HttpEventLoop::run(int listen_socket, const std::vector<HttpEventLoop*>& loops)
{
  t_current_loop = this;
  m_listen_socket = listen_socket;
  if (listen_socket >= 0) {
    epoll_event event{EPOLLIN, {.ptr = &g_listen_marker}};
    epoll_ctl(m_epoll, EPOLL_CTL_ADD, listen_socket, &event);
  }
  epoll_event events[128];
  auto last_sweep = Clock::now();
  while (!m_draining || !m_connections.empty()) {
    bool idle = m_connections.empty() && !m_accept_paused && m_sweep_tasks.empty();
    int timeout = idle ? -1 : static_cast<int>(sweep_interval.count());
    int ready = epoll_wait(m_epoll, events, std::size(events), timeout);
    m_now = Clock::now();
    for (int i = 0; i < ready; ++i) {
      auto* tag = events[i].data.ptr;
      if (tag == &g_listen_marker) {
        accept_connections(loops);
      } else if (tag == &g_wake_marker) {
        run_tasks();
      } else {
        static_cast<LoopWatcher*>(tag)->on_events(events[i].events);
      }
    }
    m_released.clear();
    if (m_now - last_sweep >= sweep_interval) {
      last_sweep = m_now;
      sweep();
      for (auto& task : m_sweep_tasks) {
        task(m_now);
      }
      m_released.clear();
    }
  }
}

void HttpEventLoop::accept_connections(const std::vector<HttpEventLoop*>& loops)
{
  while (m_listen_socket >= 0) {
    int fd = accept4(m_listen_socket, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd < 0) {
      if (errno == EINTR || errno == ECONNABORTED) {
        continue;
      }
      if (errno == EMFILE || errno == ENFILE) {
        // Out of descriptors: the pending connection stays in the backlog and the socket stays
        // readable, so keep it out of the epoll set for a sweep instead of spinning on it.
        epoll_ctl(m_epoll, EPOLL_CTL_DEL, m_listen_socket, nullptr);
        m_accept_paused = true;
      }
      return;  // EAGAIN, or the above
    }
    int yes = 1;  // small answers go out at once, not after a delayed ACK (40 ms)
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &yes, sizeof(yes));
    auto* owner = loops[m_next_loop++ % loops.size()];
    if (owner == this) {
      adopt(fd);
    } else {
      owner->post([owner, fd] { owner->adopt(fd); });
    }
  }
}

void HttpEventLoop::adopt(int fd)
{
  if (m_draining) {
    ::close(fd);
    return;
  }
  auto connection = std::make_unique<Connection>(this, m_options.limits);
  connection->fd = fd;
  connection->serial = ++m_serial;
  connection->last_read = connection->last_write = Clock::now();
  epoll_event event{EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET, {.ptr = connection.get()}};
  if (epoll_ctl(m_epoll, EPOLL_CTL_ADD, fd, &event) != 0) {
    ::close(fd);
    return;
  }
  m_connections[fd] = std::move(connection);
}

void HttpEventLoop::on_connection_event(Connection& connection, std::uint32_t events)
{
  if (events & EPOLLERR) {
    close(connection);
    return;
  }
  bool sent_some = false;
  if ((events & EPOLLOUT) && connection.has_output()) {
    flush(connection);
    sent_some = true;  // requests held back while the client's answers piled up may go on
  }
  if (events & (EPOLLRDHUP | EPOLLHUP)) {
    connection.hangup_seen = true;
  }
  if (!connection.dead && ((events & (EPOLLIN | EPOLLRDHUP | EPOLLHUP)) || sent_some)) {
    connection.read_paused = false;
    read_available(connection);
    if (!connection.dead) {
      serve(connection);
    }
  }
}

void HttpEventLoop::read_available(Connection& connection)
{
  while (!connection.peer_closed) {
    if ((connection.answering || connection.output_full()) &&
        connection.in.size() - connection.in_offset > max_buffered_while_answering) {
      connection.read_paused = true;
      return;
    }
    auto got = ::recv(connection.fd, m_scratch.data(), m_scratch.size(), 0);
    if (got > 0) {
      connection.last_read = m_now;
      if (!connection.lingering) {
        connection.in.append(m_scratch.data(), static_cast<size_t>(got));
      }
      if (static_cast<size_t>(got) < m_scratch.size() && !connection.hangup_seen) {
        return;  // the socket is empty; the next bytes raise a new edge
      }
    } else if (got == 0) {
      connection.peer_closed = true;
    } else if (errno == EINTR) {
      continue;
    } else if (errno == EAGAIN || errno == EWOULDBLOCK) {
      return;
    } else {
      close(connection);
      return;
    }
  }
  if (connection.lingering) {
    close(connection);  // the client has read our answer and closed
  }
}

// Parses and hands on the requests that have arrived in full, one at a time.
void HttpEventLoop::serve(Connection& connection)
{
  while (!connection.answering && !connection.closing && !connection.dead && !connection.output_full()) {
    std::string_view input(connection.in.data() + connection.in_offset, connection.in.size() - connection.in_offset);
    size_t available = input.size();
    auto status = connection.parser.feed(input);
    connection.in_offset += available - input.size();
    if (connection.in_offset == connection.in.size()) {
      connection.in.clear();
      connection.in_offset = 0;
    } else if (connection.in_offset >= read_chunk) {
      connection.in.erase(0, connection.in_offset);
      connection.in_offset = 0;
    }
    if (status == HttpRequestParser::Status::failed) {
      const auto& partial = connection.parser.request_so_far();
      const auto* id = partial.header("x-request-id");
      connection.request_id = id ? std::optional(*id) : std::nullopt;
      connection.head_only = false;
      HttpResponse response{connection.parser.error_status(), "application/json",
                            error_body(connection.parser.error_message()), {}};
      write_response(connection, std::move(response), true);
      return;
    }
    if (status == HttpRequestParser::Status::incomplete) {
      if (connection.peer_closed) {
        close(connection);  // the client gave up on the request, or left between requests
      } else if (connection.parser.expects_continue() && !connection.continue_sent) {
        connection.continue_sent = true;
        write(connection, "HTTP/1.1 100 Continue\r\n\r\n", {});
      }
      return;
    }
    auto request = connection.parser.take();
    const auto* id = request.header("x-request-id");
    connection.request_id = id ? std::optional(*id) : std::nullopt;
    connection.answering = true;
    connection.continue_sent = false;
    connection.keep_alive = request.keep_alive;
    connection.http_1_0 = request.minor_version == 0;
    connection.head_only = request.method == "HEAD";
    connection.in_handler = true;
    try {
      m_handler(std::move(request), HttpResponder(this, connection.fd, connection.serial));
    } catch (const std::exception& error) {
      if (connection.answering && !connection.dead) {
        write_response(connection, {500, "application/json", error_body(error.what()), {}}, false);
      }
    }
    connection.in_handler = false;
  }
}

void HttpEventLoop::respond(int fd, std::uint64_t serial, HttpResponse&& response)
{
  auto found = m_connections.find(fd);
  if (found == m_connections.end() || found->second->serial != serial || !found->second->answering) {
    return;  // the client has gone
  }
  auto& connection = *found->second;
  write_response(connection, std::move(response), false);
  if (!connection.in_handler && !connection.dead) {
    if (connection.read_paused) {
      connection.read_paused = false;
      read_available(connection);
    }
    if (!connection.dead) {
      serve(connection);  // a pipelined request may be waiting
    }
  }
}

void HttpEventLoop::write_response(Connection& connection, HttpResponse&& response, bool close)
{
  close = close || !connection.keep_alive || connection.peer_closed || m_draining;
  connection.answering = false;
  if (connection.request_id) {
    response.fields.emplace_back("X-Request-Id", *connection.request_id);
  }
  if (connection.http_1_0 && !close) {
    // An HTTP/1.0 client assumes we close after the answer unless it says otherwise (ab -k
    // would wait for a close that never comes).
    response.fields.emplace_back("Connection", "keep-alive");
  }
  m_responses.count(response.status);
  auto length = connection.head_only ? response.head_length.value_or(response.body.size()) : response.body.size();
  auto head = http_response_head(response.status, response.content_type, length, response.fields, close);
  connection.closing = close;
  write(connection, head, connection.head_only ? std::string_view() : std::string_view(response.body));
}

void HttpEventLoop::write(Connection& connection, std::string_view head, std::string_view body)
{
  if (connection.has_output()) {
    connection.out.append(head).append(body);
    return;
  }
  connection.out.clear();
  connection.out_offset = 0;
  iovec parts[2] = {{const_cast<char*>(head.data()), head.size()}, {const_cast<char*>(body.data()), body.size()}};
  msghdr message{};
  message.msg_iov = parts;
  message.msg_iovlen = body.empty() ? 1 : 2;
  size_t total = head.size() + body.size();
  auto sent = ::sendmsg(connection.fd, &message, MSG_NOSIGNAL);
  while (sent < 0 && errno == EINTR) {
    sent = ::sendmsg(connection.fd, &message, MSG_NOSIGNAL);
  }
  if (sent < 0 && errno != EAGAIN && errno != EWOULDBLOCK) {
    close(connection);
    return;
  }
  size_t done = sent < 0 ? 0 : static_cast<size_t>(sent);
  connection.last_write = m_now;
  if (done < total) {
    if (done < head.size()) {
      connection.out.append(head.substr(done)).append(body);
    } else {
      connection.out.append(body.substr(done - head.size()));
    }
    flush(connection);
    return;
  }
  if (connection.closing) {
    finish(connection);
  }
}

void HttpEventLoop::flush(Connection& connection)
{
  while (connection.has_output()) {
    auto sent = ::send(connection.fd, connection.out.data() + connection.out_offset,
                       connection.out.size() - connection.out_offset, MSG_NOSIGNAL);
    if (sent > 0) {
      connection.out_offset += static_cast<size_t>(sent);
      connection.last_write = m_now;
    } else if (sent < 0 && errno == EINTR) {
      continue;
    } else if (sent < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
      return;  // EPOLLOUT says when to go on
    } else {
      close(connection);
      return;
    }
  }
  connection.out.clear();
  connection.out_offset = 0;
  if (connection.closing) {
    finish(connection);
  }
}

// The answer is out and the connection ends. Closing with unread bytes in the socket would send
// a reset that can destroy the answer before the client reads it (a 413 sent while the body still
// arrives), so we send FIN and read until the client closes, for a while, like nginx's lingering
// close.
void HttpEventLoop::finish(Connection& connection)
{
  if (connection.peer_closed) {
    close(connection);
    return;
  }
  ::shutdown(connection.fd, SHUT_WR);
  connection.lingering = true;
  connection.linger_deadline = m_now + linger_time;
  read_available(connection);
}

void HttpEventLoop::close(Connection& connection)
{
  if (connection.dead) {
    return;
  }
  connection.dead = true;
  ::close(connection.fd);
  auto found = m_connections.find(connection.fd);
  m_released.push_back(std::move(found->second));
  m_connections.erase(found);
}

void HttpEventLoop::sweep()
{
  if (m_accept_paused && m_listen_socket >= 0) {
    m_accept_paused = false;
    epoll_event event{EPOLLIN, {.ptr = &g_listen_marker}};
    epoll_ctl(m_epoll, EPOLL_CTL_ADD, m_listen_socket, &event);
  }
  std::vector<Connection*> all;
  all.reserve(m_connections.size());
  for (auto& [fd, connection] : m_connections) {
    all.push_back(connection.get());
  }
  for (auto* connection : all) {
    auto& c = *connection;
    if (c.lingering) {
      if (m_now >= c.linger_deadline) {
        close(c);
      }
    } else if (c.has_output()) {
      if (m_now - c.last_write > m_options.read_timeout) {
        close(c);  // the client does not take its answer
      }
    } else if (c.answering) {
      continue;
    } else if (c.parser.in_progress() || c.in_offset < c.in.size()) {
      if (m_now - c.last_read > m_options.read_timeout) {
        c.request_id.reset();
        c.head_only = false;
        auto message = fmt::format("the rest of the request did not arrive within {} ms (--read-timeout)",
                                   m_options.read_timeout.count());
        write_response(c, {408, "application/json", error_body(message), {}}, true);
      }
    } else if (m_draining || m_now - std::max(c.last_read, c.last_write) > m_options.idle_timeout) {
      close(c);
    }
  }
}

// HttpServer ---------------------------------------------------------------------------------------

HttpServer::HttpServer(HttpServerOptions options, HttpHandler handler, ResponseCounter& responses)
  : m_options(std::move(options)), m_handler(std::move(handler))
{
  unsigned count = m_options.loops > 0 ? m_options.loops : std::max(1u, std::thread::hardware_concurrency());
  for (unsigned i = 0; i < count; ++i) {
    m_loops.push_back(std::make_unique<HttpEventLoop>(i, m_options, m_handler, responses));
  }
}

HttpServer::~HttpServer()
{
  if (m_listen_socket >= 0 && !m_running) {
    ::close(m_listen_socket);
  }
}

int HttpServer::listen()
{
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
  addrinfo* addresses = nullptr;
  auto port_text = std::to_string(m_options.port);
  auto cannot_listen = [&](std::string_view why) {
    return Error(ExitCode::conflict, fmt::format("cannot listen on {}:{}: {}; pick another --port (0 picks a free "
                                                 "one) or --host",
                                                 m_options.host, m_options.port, why));
  };
  if (int problem = getaddrinfo(m_options.host.c_str(), port_text.c_str(), &hints, &addresses); problem != 0) {
    throw cannot_listen(gai_strerror(problem));
  }
  std::string why = "no address";
  for (auto* address = addresses; address; address = address->ai_next) {
    int fd = socket(address->ai_family, address->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, address->ai_protocol);
    if (fd < 0) {
      why = std::strerror(errno);
      continue;
    }
    // SO_REUSEADDR allows a quick restart. SO_REUSEPORT stays off: it would let a second worker
    // bind this port and silently take half its traffic.
    int yes = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &yes, sizeof(yes));
    if (bind(fd, address->ai_addr, address->ai_addrlen) == 0 && ::listen(fd, SOMAXCONN) == 0) {
      m_listen_socket = fd;
      break;
    }
    why = errno == EADDRINUSE ? "the port is in use" : std::strerror(errno);
    ::close(fd);
  }
  freeaddrinfo(addresses);
  if (m_listen_socket < 0) {
    throw cannot_listen(why);
  }
  sockaddr_storage bound{};
  socklen_t length = sizeof(bound);
  getsockname(m_listen_socket, reinterpret_cast<sockaddr*>(&bound), &length);
  return ntohs(bound.ss_family == AF_INET6 ? reinterpret_cast<sockaddr_in6*>(&bound)->sin6_port
                                           : reinterpret_cast<sockaddr_in*>(&bound)->sin_port);
}

void HttpServer::run()
{
  m_running = true;
  std::vector<HttpEventLoop*> loops;
  for (auto& loop : m_loops) {
    loops.push_back(loop.get());
  }
  std::vector<std::thread> threads;
  for (size_t i = 1; i < loops.size(); ++i) {
    threads.emplace_back([&, i] { loops[i]->run(-1, loops); });
  }
  loops[0]->run(m_listen_socket, loops);
  for (auto& thread : threads) {
    thread.join();
  }
}

void HttpServer::stop_accepting()
{
  // Refuses new connections at once, even while loop 0 is busy; loop 0 closes the socket.
  ::shutdown(m_listen_socket, SHUT_RDWR);
  for (auto& loop : m_loops) {
    loop->drain();
  }
}

} // namespace mlops::worker
