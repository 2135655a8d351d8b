#pragma once
// The router's connections to its backends, from one event loop: opened without blocking, kept
// alive and reused, one request at a time each (like nginx's upstream keepalive). A pool belongs
// to one loop and is used only from its thread, so nothing here takes a lock.

#include "mlops/worker/http_message.hpp"
#include "mlops/worker/http_server.hpp"
#include "mlops/worker/route_table.hpp"

#include <chrono>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

namespace mlops::worker {

struct UpstreamResult
{
  std::optional<HttpAnswer> answer;  // none: see the rest
  std::string error;                 // why there is no answer
  bool refused = false;              // the connection could not be made
  bool timed_out = false;            // no whole answer before the deadline
  bool answer_started = false;       // some of an answer arrived before the failure
};

using UpstreamCallback = std::function<void(UpstreamResult&& result)>;

class Upstream;

class UpstreamPool
{
public:
  UpstreamPool(EventLoop& loop, size_t max_answer_bytes);
  ~UpstreamPool();

  // Sends `request` (a whole HTTP/1.1 request) to `backend` on an idle connection or a new one;
  // `done` is called once, on this loop's thread, possibly before send() returns.
  void send(const RouteBackend& backend, const std::string& request, bool head,
            std::chrono::steady_clock::time_point deadline, UpstreamCallback done);

private:
  friend class Upstream;
  void make_idle(Upstream& connection);
  void close(Upstream& connection);
  void expire(std::chrono::steady_clock::time_point now);

  EventLoop& m_loop;
  size_t m_max_answer_bytes;
  std::unordered_map<Upstream*, std::unique_ptr<Upstream>> m_connections;
  std::unordered_map<std::string, std::vector<Upstream*>> m_idle;  // by backend URL
  std::vector<char> m_scratch;
};

} // namespace mlops::worker
