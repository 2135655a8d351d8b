#pragma once
// The worker's HTTP/1.1 server: a few event loops (epoll, non-blocking sockets), each owning the
// connections it was given, like nginx's workers. cpp-httplib, which the worker used before,
// gives every connection a thread; on two cores 64 busy connections then spend their time
// switching threads (measured: 0.29x nginx's throughput). Here a loop reads whatever arrived on
// any of its connections, parses it (HttpRequestParser), and calls the handler on the loop's own
// thread. A handler answers at once (health, metadata, metrics) or later from any thread (an
// inference that waits for its batch); the answer is written by the connection's own loop.
//
// Keep-alive and pipelining, "100 Continue", HEAD, request ids (X-Request-Id is echoed on every
// answer, errors included), limits on the head and the body, and timeouts: a client has
// read_timeout to send the rest of a request once it has begun one and to take an answer we are
// writing; an idle keep-alive connection is closed after idle_timeout.
//
// Loop 0 accepts and deals connections out round robin. stop_accepting() (any thread, once)
// closes the port; answers in flight are still written, with "Connection: close", and run()
// returns when every connection has closed.

#include "mlops/worker/http_message.hpp"
#include "mlops/worker/metrics.hpp"

#include <nlohmann/json_fwd.hpp>

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace mlops::worker {

struct HttpResponse
{
  int status = 200;
  std::string content_type = "application/json";
  std::string body;
  std::vector<std::pair<std::string, std::string>> fields;  // extra header fields
  // The length an answer to HEAD declares, when its body is not at hand (the router relays a
  // backend's answer to HEAD, which has none); unset: body.size().
  std::optional<size_t> head_length = std::nullopt;
};

// A JSON answer; errors are {"error": message}, from the worker and the router alike.
HttpResponse json_response(int status, const nlohmann::json& document);
HttpResponse error_response(int status, std::string_view message);

class HttpEventLoop;

// Something besides client connections that a loop watches for handlers that do their own I/O
// there: the router's connections to its backends. Called on the loop's thread.
class LoopWatcher
{
public:
  virtual ~LoopWatcher() = default;
  virtual void on_events(std::uint32_t epoll_events) = 0;
};

// The loop a handler runs on. Everything but post() must be called from the loop's own thread.
class EventLoop
{
public:
  virtual size_t index() const = 0;  // 0 .. loops - 1
  // Watches `fd` edge-triggered for `events` (EPOLLIN, EPOLLOUT...); false when epoll refuses.
  // Closing the descriptor ends the watch.
  virtual bool watch(int fd, std::uint32_t events, LoopWatcher& watcher) = 0;
  // Frees `watcher` once the events already gathered have been handed out (they may name it).
  virtual void release_later(std::unique_ptr<LoopWatcher> watcher) = 0;
  // Runs `task` on every sweep of the loop's timers, about every 100 ms, for timeouts.
  virtual void every_sweep(std::function<void(std::chrono::steady_clock::time_point now)> task) = 0;
  virtual void post(std::function<void()> task) = 0;

protected:
  ~EventLoop() = default;
};

// Answers one request. Any thread may call send(), once; an answer for a connection that has
// gone meanwhile is dropped.
class HttpResponder
{
public:
  HttpResponder(HttpEventLoop* loop, int fd, std::uint64_t serial) : m_loop(loop), m_fd(fd), m_serial(serial) {}
  void send(HttpResponse response) const;
  EventLoop& loop() const;

private:
  HttpEventLoop* m_loop;
  int m_fd;
  std::uint64_t m_serial;
};

using HttpHandler = std::function<void(HttpRequest&& request, HttpResponder responder)>;

struct HttpServerOptions
{
  std::string host = "127.0.0.1";
  int port = 0;                      // 0: any free port
  unsigned loops = 0;                // 0: one per core
  HttpLimits limits;
  std::chrono::milliseconds read_timeout{5000};
  std::chrono::milliseconds idle_timeout{60000};
};

class HttpServer
{
public:
  // `responses` counts every answer by status, those the server gives by itself included.
  HttpServer(HttpServerOptions options, HttpHandler handler, ResponseCounter& responses);
  ~HttpServer();
  HttpServer(const HttpServer&) = delete;
  HttpServer& operator=(const HttpServer&) = delete;

  // Binds and listens; returns the port. Throws Error(conflict) when the port is taken (a second
  // worker cannot share it: SO_REUSEPORT stays off) or the host is not this machine's.
  int listen();

  // Serves on the loops (this thread runs loop 0) until stop_accepting() and the last connection.
  void run();

  // Closes the port at once and lets the connections finish their requests in flight.
  void stop_accepting();

  size_t loop_count() const { return m_loops.size(); }

private:
  HttpServerOptions m_options;
  HttpHandler m_handler;
  int m_listen_socket = -1;
  bool m_running = false;
  std::vector<std::unique_ptr<HttpEventLoop>> m_loops;
};

} // namespace mlops::worker
