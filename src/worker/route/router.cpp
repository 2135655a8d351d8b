#include "mlops/worker/router.hpp"

#include "mlops/core/error.hpp"
#include "mlops/util/url.hpp"
#include "mlops/worker/health_probe.hpp"
#include "mlops/worker/http_server.hpp"
#include "mlops/worker/metrics.hpp"
#include "mlops/worker/route_table.hpp"
#include "mlops/worker/stop_signals.hpp"
#include "mlops/worker/upstream.hpp"
#include "mlops/worker/worker_log.hpp"

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <csignal>
#include <fstream>
#include <iterator>
#include <map>
#include <mutex>
#include <thread>

namespace mlops::worker {

namespace {

using Clock = std::chrono::steady_clock;

// Counters per backend name. They outlive routing tables, so that a rollout step's numbers are
// not reset by the weight change that starts the next one; analysis reads differences.
struct BackendStats
{
  explicit BackendStats(std::string backend_name) : name(std::move(backend_name)), seconds(fine_latency_bounds()) {}

  std::string name;
  std::atomic<bool> healthy{true};  // until a refused connection or a failed health check
  std::atomic<std::uint64_t> requests{0};
  std::atomic<std::uint64_t> answered_2xx{0};
  std::atomic<std::uint64_t> answered_4xx{0};
  std::atomic<std::uint64_t> answered_5xx{0};  // and 3xx, which no backend should send
  std::atomic<std::uint64_t> failed{0};        // no answer: refused, broken, timed out
  std::atomic<std::uint64_t> retried{0};       // of the failed, sent once more elsewhere
  Histogram seconds;                           // answered requests, from sending to the whole answer
};

struct Routes
{
  RouteTable table;
  std::vector<std::shared_ptr<BackendStats>> stats;  // by backend index
  std::uint64_t generation = 0;
};

// One client request on its way to a backend, and back.
struct Exchange
{
  explicit Exchange(HttpResponder client) : responder(client) {}

  HttpResponder responder;
  std::string wire;  // the request as sent to backends
  bool head = false;
  bool pinned = false;  // to one backend: not retried elsewhere
  std::shared_ptr<const Routes> routes;
  std::uint64_t tried = 0;  // bit per backend index
  int attempts = 0;
};

// Fields that describe one connection, not the message (RFC 9110, 7.6.1), those we set, and
// Authorization, which may hold the admin token: it never leaves the router.
bool hop_by_hop(std::string_view name)
{
  for (std::string_view field : {"connection", "keep-alive", "proxy-connection", "te", "trailer", "transfer-encoding",
                                 "upgrade", "expect", "content-length", "x-mlops-backend", "authorization"}) {
    if (name == field) {
      return true;
    }
  }
  return false;
}

void append_percent_encoded(std::string& out, std::string_view path)
{
  constexpr std::string_view kept = "-._~/!$&'()*+,;=:@";
  for (char c : path) {
    bool plain = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                 kept.find(c) != std::string_view::npos;
    if (plain) {
      out += c;
    } else {
      fmt::format_to(std::back_inserter(out), "%{:02X}", static_cast<unsigned char>(c));
    }
  }
}

std::string request_wire(const HttpRequest& request)
{
  std::string wire;
  wire.reserve(256 + request.body.size());
  wire.append(request.method).append(" ");
  append_percent_encoded(wire, request.path);
  if (!request.query.empty()) {
    wire.append("?").append(request.query);
  }
  wire.append(" HTTP/1.1\r\n");
  bool has_host = false;
  for (const auto& [name, value] : request.headers) {
    if (!hop_by_hop(name)) {
      has_host = has_host || name == "host";
      wire.append(name).append(": ").append(value).append("\r\n");
    }
  }
  if (!has_host) {
    wire.append("host: mlops-router\r\n");
  }
  if (!request.body.empty() || request.method == "POST" || request.method == "PUT") {
    fmt::format_to(std::back_inserter(wire), "content-length: {}\r\n", request.body.size());
  }
  wire.append("\r\n").append(request.body);
  return wire;
}

bool same_secret(std::string_view given, std::string_view secret)
{
  // Every byte compared whatever the first difference, so timing does not reveal a prefix.
  unsigned char difference = given.size() == secret.size() ? 0 : 1;
  for (size_t i = 0; i < given.size(); ++i) {
    difference |= static_cast<unsigned char>(given[i] ^ secret[i % std::max<size_t>(secret.size(), 1)]);
  }
  return difference == 0;
}

std::uint64_t fnv1a(std::string_view text)
{
  std::uint64_t hash = 14695981039346656037ull;
  for (char c : text) {
    hash = (hash ^ static_cast<unsigned char>(c)) * 1099511628211ull;
  }
  return hash;
}

// The version a /v2/models/M/versions/V/... path names, or "".
std::string_view version_in_path(std::string_view path)
{
  constexpr std::string_view models = "/v2/models/";
  if (path.substr(0, models.size()) != models) {
    return {};
  }
  path.remove_prefix(models.size());
  auto slash = path.find('/');
  if (slash == std::string_view::npos || path.substr(slash + 1, 9) != "versions/") {
    return {};
  }
  path.remove_prefix(slash + 10);
  return path.substr(0, path.find('/'));
}

std::string read_secret(const std::filesystem::path& file)
{
  std::ifstream in(file);
  std::string token;
  if (!in || !std::getline(in, token) || token.empty()) {
    throw Error(ExitCode::usage, fmt::format("cannot read an admin token from {}: give a file whose first line is the "
                                             "token",
                                             file.string()));
  }
  return token;
}

std::string read_text(const std::filesystem::path& file)
{
  std::ifstream in(file);
  if (!in) {
    throw Error(ExitCode::not_found, fmt::format("cannot read the routing table {}", file.string()));
  }
  return std::string(std::istreambuf_iterator<char>(in), {});
}

// The backend for a draw, by weight, among the healthy ones not `excluded`. When every backend
// with a share is down, a first try goes to one of them anyway (a health check can be wrong,
// and a backend without a share may not have passed its smoke test yet); a retry may go to a
// healthy backend without a share (a blue version kept warm), since the request failed anyway.
std::optional<size_t> pick(const Routes& routes, std::uint64_t draw, std::uint64_t excluded, bool retry)
{
  std::uint64_t unhealthy = 0;
  for (size_t i = 0; i < routes.stats.size(); ++i) {
    unhealthy |= std::uint64_t{!routes.stats[i]->healthy.load(std::memory_order_relaxed)} << i;
  }
  if (auto chosen = pick_by_weight(routes.table, draw, excluded | unhealthy)) {
    return chosen;
  }
  if (!retry) {
    return pick_by_weight(routes.table, draw, excluded);
  }
  for (size_t i = 0; i < routes.table.backends.size(); ++i) {
    if (!((excluded | unhealthy) >> i & 1)) {
      return i;
    }
  }
  return std::nullopt;
}

class Router
{
public:
  explicit Router(const RouteOptions& options);
  int run();

private:
  struct LoopState
  {
    std::unique_ptr<UpstreamPool> pool;
    std::shared_ptr<const Routes> routes;
    std::uint64_t generation = 0;
    std::uint64_t random = 0;
  };

  void handle(HttpRequest&& request, const HttpResponder& responder);
  std::optional<HttpResponse> forward(HttpRequest&& request, const HttpResponder& responder);
  void attempt(const std::shared_ptr<Exchange>& exchange, size_t backend);
  void on_result(const std::shared_ptr<Exchange>& exchange, size_t backend, Clock::time_point start,
                 UpstreamResult&& result);
  HttpResponse admin(const HttpRequest& request);
  bool authorized(const HttpRequest& request) const;
  std::uint64_t install(RouteTable table);
  LoopState& loop_state(EventLoop& loop);
  nlohmann::json routes_json();
  nlohmann::json stats_json();
  std::string metrics_text();
  void check_health_until_stopped();

  const RouteOptions& m_options;
  std::string m_token;
  ResponseCounter m_responses;
  HttpServer m_server;
  std::vector<LoopState> m_loop_states;
  std::mutex m_routes_mutex;  // guards m_routes and m_stats
  std::shared_ptr<const Routes> m_routes;
  std::map<std::string, std::shared_ptr<BackendStats>> m_stats;
  std::atomic<std::uint64_t> m_generation{0};
  std::mutex m_health_mutex;
  std::condition_variable m_health_wake;
  bool m_stopping = false;  // under m_health_mutex: the health checks end
};

Router::Router(const RouteOptions& options)
  : m_options(options), m_token(read_secret(options.admin_token_file)),
    m_server(HttpServerOptions{options.host, options.port, options.http_threads,
                               HttpLimits{64 * 1024, options.max_body_bytes},
                               std::chrono::duration_cast<std::chrono::milliseconds>(options.read_timeout)},
             [this](HttpRequest&& request, HttpResponder responder) { handle(std::move(request), responder); },
             m_responses),
    m_loop_states(m_server.loop_count())
{
  install(RouteTable::parse(read_text(options.routes_file)));
}

std::uint64_t Router::install(RouteTable table)
{
  auto routes = std::make_shared<Routes>();
  std::lock_guard lock(m_routes_mutex);
  for (const auto& backend : table.backends) {
    auto& stats = m_stats[backend.name];
    if (!stats) {
      stats = std::make_shared<BackendStats>(backend.name);
    }
    routes->stats.push_back(stats);
  }
  routes->table = std::move(table);
  routes->generation = m_generation.load() + 1;
  m_routes = routes;
  m_generation.store(routes->generation, std::memory_order_release);
  return routes->generation;
}

Router::LoopState& Router::loop_state(EventLoop& loop)
{
  auto& state = m_loop_states[loop.index()];
  if (!state.pool) {
    // Answers may be larger than requests (a batch's outputs); the request limit, with room.
    state.pool = std::make_unique<UpstreamPool>(loop, std::max(m_options.max_body_bytes, size_t{256} << 20));
    state.random = 0x9E3779B97F4A7C15ull * (loop.index() + 1) ^
                   static_cast<std::uint64_t>(Clock::now().time_since_epoch().count());
  }
  if (state.generation != m_generation.load(std::memory_order_acquire)) {
    std::lock_guard lock(m_routes_mutex);
    state.routes = m_routes;
    state.generation = m_routes->generation;
  }
  return state;
}

void Router::handle(HttpRequest&& request, const HttpResponder& responder)
{
  const auto& path = request.path;
  bool reads = request.method == "GET" || request.method == "HEAD";
  std::optional<HttpResponse> response;
  if (path.rfind("/admin/", 0) == 0) {
    response = admin(request);
  } else if (path == "/v2/health/live" || path == "/v2/health/ready" || path == "/metrics") {
    if (!reads) {
      response = error_response(405, fmt::format("{} {} is not allowed; use GET, HEAD", request.method, path));
      response->fields.emplace_back("Allow", "GET, HEAD");
    } else if (path == "/v2/health/live") {
      response = json_response(200, {{"live", true}});
    } else if (path == "/metrics") {
      response = HttpResponse{200, "text/plain; version=0.0.4", metrics_text(), {}};
    } else {
      const auto& routes = *loop_state(responder.loop()).routes;
      bool ready = false;
      for (size_t i = 0; i < routes.table.backends.size(); ++i) {
        ready = ready || (routes.table.backends[i].weight > 0 && routes.stats[i]->healthy.load());
      }
      response = ready ? json_response(200, {{"ready", true}})
                       : error_response(503, "no backend with a share of the traffic is healthy");
    }
  } else {
    response = forward(std::move(request), responder);
  }
  if (response) {
    responder.send(std::move(*response));
  }
}

std::optional<HttpResponse> Router::forward(HttpRequest&& request, const HttpResponder& responder)
{
  auto& state = loop_state(responder.loop());
  const auto& routes = *state.routes;
  auto exchange = std::make_shared<Exchange>(responder);
  exchange->routes = state.routes;
  exchange->head = request.method == "HEAD";
  std::optional<size_t> chosen;
  auto names = [&] {
    std::vector<std::string> listed;
    for (const auto& backend : routes.table.backends) {
      listed.push_back(fmt::format("{} (version {})", backend.name, backend.version));
    }
    return listed.empty() ? std::string("none") : fmt::format("{}", fmt::join(listed, ", "));
  };
  const auto* pin = request.header("x-mlops-backend");
  auto version = version_in_path(request.path);
  if (pin && authorized(request)) {
    for (size_t i = 0; i < routes.table.backends.size() && !chosen; ++i) {
      if (routes.table.backends[i].name == *pin) {
        chosen = i;
      }
    }
    if (!chosen) {
      return error_response(404, fmt::format("no backend named '{}'; the backends are {}", *pin, names()));
    }
    exchange->pinned = true;
  } else if (!version.empty()) {
    for (size_t i = 0; i < routes.table.backends.size() && !chosen; ++i) {
      if (routes.table.backends[i].version == version) {
        chosen = i;
      }
    }
    if (!chosen) {
      return error_response(404, fmt::format("this deployment does not serve version {}; its backends are {}", version,
                                             names()));
    }
    exchange->pinned = true;
  } else {
    const std::string* sticky = m_options.sticky_header.empty() ? nullptr : request.header(m_options.sticky_header);
    std::uint64_t draw = 0;
    if (sticky) {
      draw = fnv1a(*sticky);
    } else {
      // xorshift64*: a draw per request, with no lock and no shared state.
      state.random ^= state.random >> 12;
      state.random ^= state.random << 25;
      state.random ^= state.random >> 27;
      draw = (state.random * 2685821657736338717ull) >> 11;
    }
    chosen = pick(routes, draw, 0, false);
    if (!chosen) {
      bool weighted = std::any_of(routes.table.backends.begin(), routes.table.backends.end(),
                                  [](const auto& backend) { return backend.weight > 0; });
      return error_response(503, fmt::format("no backend can take the request ({}); the backends are {}",
                                             weighted ? "none is reachable" : "every weight is 0", names()));
    }
  }
  exchange->wire = request_wire(request);
  attempt(exchange, *chosen);
  return std::nullopt;
}

void Router::attempt(const std::shared_ptr<Exchange>& exchange, size_t backend)
{
  auto& state = m_loop_states[exchange->responder.loop().index()];
  ++exchange->routes->stats[backend]->requests;
  exchange->tried |= std::uint64_t{1} << backend;
  ++exchange->attempts;
  auto start = Clock::now();
  state.pool->send(exchange->routes->table.backends[backend], exchange->wire, exchange->head,
                   start + m_options.upstream_timeout, [this, exchange, backend, start](UpstreamResult&& result) {
                     on_result(exchange, backend, start, std::move(result));
                   });
}

void Router::on_result(const std::shared_ptr<Exchange>& exchange, size_t backend, Clock::time_point start,
                       UpstreamResult&& result)
{
  const auto& target = exchange->routes->table.backends[backend];
  auto& stats = *exchange->routes->stats[backend];
  if (result.answer) {
    auto& answer = *result.answer;
    stats.seconds.observe(std::chrono::duration<double>(Clock::now() - start).count());
    ++(answer.status < 300 && answer.status >= 200 ? stats.answered_2xx
       : answer.status >= 400 && answer.status < 500 ? stats.answered_4xx
                                                     : stats.answered_5xx);
    HttpResponse response{answer.status, "application/json", std::move(answer.body), {}};
    for (auto& [name, value] : answer.headers) {
      if (name == "content-type") {
        response.content_type = std::move(value);
      } else if (name == "content-length" && exchange->head) {
        response.head_length = std::stoull(value);  // the parser checked it is a byte count
      } else if (!hop_by_hop(name) && name != "x-request-id") {
        response.fields.emplace_back(std::move(name), std::move(value));
      }
    }
    response.fields.emplace_back("X-Mlops-Backend", target.name);
    exchange->responder.send(std::move(response));
    return;
  }
  ++stats.failed;
  if (result.refused && stats.healthy.exchange(false)) {
    log_line("backend {} ({}) refused a connection: no share of the traffic until its health check passes",
             target.name, target.url());
  }
  if (!result.timed_out && !result.answer_started && exchange->attempts < 2) {
    auto& state = m_loop_states[exchange->responder.loop().index()];
    std::optional<size_t> next;
    if (!exchange->pinned) {
      next = pick(*exchange->routes, state.random++, exchange->tried, true);
    }
    if (!next && !result.refused) {
      next = backend;  // a kept-alive connection the backend had just closed: once more, afresh
    }
    if (next) {
      ++stats.retried;
      attempt(exchange, *next);
      return;
    }
  }
  auto response = error_response(result.timed_out ? 504 : 502, fmt::format("the backend {} ({}) gave no answer: {}",
                                                                           target.name, target.url(), result.error));
  response.fields.emplace_back("X-Mlops-Backend", target.name);
  exchange->responder.send(std::move(response));
}

bool Router::authorized(const HttpRequest& request) const
{
  const auto* given = request.header("authorization");
  constexpr std::string_view bearer = "Bearer ";
  return given && given->size() > bearer.size() && given->compare(0, bearer.size(), bearer) == 0 &&
         same_secret(std::string_view(*given).substr(bearer.size()), m_token);
}

HttpResponse Router::admin(const HttpRequest& request)
{
  if (!request.header("authorization")) {
    return error_response(401, "admin calls need \"Authorization: Bearer TOKEN\" (the token of --admin-token-file)");
  }
  if (!authorized(request)) {
    return error_response(403, "the admin token is wrong");
  }
  bool reads = request.method == "GET" || request.method == "HEAD";
  auto wrong_method = [&](const char* allowed) {
    auto response = error_response(405, fmt::format("{} {} is not allowed; use {}", request.method, request.path, allowed));
    response.fields.emplace_back("Allow", allowed);
    return response;
  };
  if (request.path == "/admin/routes") {
    if (reads) {
      return json_response(200, routes_json());
    }
    if (request.method != "PUT") {
      return wrong_method("GET, HEAD, PUT");
    }
    try {
      auto table = RouteTable::parse(request.body);
      auto described = table.to_json().dump();
      auto generation = install(std::move(table));
      log_line("routing table {}: {}", generation, described);
      return json_response(200, {{"generation", generation}});
    } catch (const Error& error) {
      return error_response(400, error.what());
    }
  }
  if (request.path == "/admin/stats") {
    return reads ? json_response(200, stats_json()) : wrong_method("GET, HEAD");
  }
  return error_response(404, fmt::format("no such admin call: {}; there are /admin/routes and /admin/stats", request.path));
}

nlohmann::json Router::routes_json()
{
  std::lock_guard lock(m_routes_mutex);
  auto document = m_routes->table.to_json();
  for (size_t i = 0; i < m_routes->stats.size(); ++i) {
    document["backends"][i]["healthy"] = m_routes->stats[i]->healthy.load();
  }
  document["generation"] = m_routes->generation;
  return document;
}

nlohmann::json Router::stats_json()
{
  std::lock_guard lock(m_routes_mutex);
  nlohmann::json backends = nlohmann::json::object();
  std::vector<double> bounds;
  for (const auto& [name, stats] : m_stats) {
    auto latency = stats->seconds.snapshot();
    bounds = latency.bounds;
    const auto* backend = m_routes->table.find(name);
    backends[name] = {{"in_table", backend != nullptr},
                      {"weight", backend ? backend->weight : 0},
                      {"version", backend ? backend->version : ""},
                      {"healthy", stats->healthy.load()},
                      {"requests", stats->requests.load()},
                      {"answered_2xx", stats->answered_2xx.load()},
                      {"answered_4xx", stats->answered_4xx.load()},
                      {"answered_5xx", stats->answered_5xx.load()},
                      {"failed", stats->failed.load()},
                      {"retried", stats->retried.load()},
                      {"latency_counts", latency.counts},
                      {"latency_sum_seconds", latency.sum}};
  }
  return {{"generation", m_routes->generation}, {"latency_bounds_seconds", bounds}, {"backends", backends}};
}

std::string Router::metrics_text()
{
  std::shared_ptr<const Routes> routes;
  {
    std::lock_guard lock(m_routes_mutex);
    routes = m_routes;
  }
  std::string out;
  append(out, "# HELP mlops_worker_http_responses_total HTTP responses by status code.\n"
         "# TYPE mlops_worker_http_responses_total counter\n");
  m_responses.render(out);
  append(out, "# HELP mlops_router_generation The routing table's generation (1 at start, +1 per change).\n"
         "# TYPE mlops_router_generation gauge\nmlops_router_generation {}\n",
         routes->generation);
  std::vector<std::string> labels;
  for (const auto& backend : routes->table.backends) {
    labels.push_back(fmt::format("backend=\"{}\",version=\"{}\"", label_value(backend.name), label_value(backend.version)));
  }
  append(out, "# HELP mlops_router_backend_weight The backend's weight in the routing table.\n"
         "# TYPE mlops_router_backend_weight gauge\n");
  for (size_t i = 0; i < labels.size(); ++i) {
    append(out, "mlops_router_backend_weight{{{}}} {}\n", labels[i], routes->table.backends[i].weight);
  }
  append(out, "# HELP mlops_router_backend_healthy 1 when the backend's last health check passed.\n"
         "# TYPE mlops_router_backend_healthy gauge\n");
  for (size_t i = 0; i < labels.size(); ++i) {
    append(out, "mlops_router_backend_healthy{{{}}} {}\n", labels[i], routes->stats[i]->healthy.load() ? 1 : 0);
  }
  append(out, "# HELP mlops_router_requests_total Requests sent to each backend, by outcome.\n"
         "# TYPE mlops_router_requests_total counter\n");
  for (size_t i = 0; i < labels.size(); ++i) {
    const auto& stats = *routes->stats[i];
    append(out, "mlops_router_requests_total{{{},outcome=\"2xx\"}} {}\n", labels[i], stats.answered_2xx.load());
    append(out, "mlops_router_requests_total{{{},outcome=\"4xx\"}} {}\n", labels[i], stats.answered_4xx.load());
    append(out, "mlops_router_requests_total{{{},outcome=\"5xx\"}} {}\n", labels[i], stats.answered_5xx.load());
    append(out, "mlops_router_requests_total{{{},outcome=\"no_answer\"}} {}\n", labels[i], stats.failed.load());
  }
  append(out, "# HELP mlops_router_retries_total Requests that got no answer from the backend and were sent again.\n"
         "# TYPE mlops_router_retries_total counter\n");
  for (size_t i = 0; i < labels.size(); ++i) {
    append(out, "mlops_router_retries_total{{{}}} {}\n", labels[i], routes->stats[i]->retried.load());
  }
  append(out, "# HELP mlops_router_upstream_seconds Time from sending a request to a backend to its whole answer.\n"
         "# TYPE mlops_router_upstream_seconds histogram\n");
  for (size_t i = 0; i < labels.size(); ++i) {
    routes->stats[i]->seconds.render(out, "mlops_router_upstream_seconds", labels[i]);
  }
  return out;
}

void Router::check_health_until_stopped()
{
  auto timeout = std::clamp(m_options.health_interval, std::chrono::milliseconds(50), std::chrono::milliseconds(2000));
  while (true) {
    auto next = Clock::now() + m_options.health_interval;
    std::shared_ptr<const Routes> routes;
    {
      std::lock_guard lock(m_routes_mutex);
      routes = m_routes;
    }
    for (size_t i = 0; i < routes->table.backends.size(); ++i) {
      const auto& backend = routes->table.backends[i];
      bool healthy = probe_status(backend, "/v2/health/ready", timeout) == 200;
      if (routes->stats[i]->healthy.exchange(healthy) != healthy) {
        log_line("backend {} ({}) is {}", backend.name, backend.url(),
                 healthy ? "healthy again" : "unhealthy: its health check failed; no share of the traffic");
      }
    }
    std::unique_lock lock(m_health_mutex);
    if (m_health_wake.wait_until(lock, next, [this] { return m_stopping; })) {
      return;
    }
  }
}

int Router::run()
{
  std::signal(SIGPIPE, SIG_IGN);
  int port = m_server.listen();
  if (!m_options.port_file.empty()) {
    write_port_file(m_options.port_file, port);  // connections wait in the backlog meanwhile
  }
  std::thread server([this] { m_server.run(); });
  {
    std::lock_guard lock(m_routes_mutex);
    log_line("routing on {} to {}", util::http_url(m_options.host, port), m_routes->table.to_json()["backends"].dump());
  }
  drain_on_stop_signals([this] { m_server.stop_accepting(); }, m_options.drain_timeout);
  std::thread health([this] { check_health_until_stopped(); });
  server.join();
  {
    std::lock_guard lock(m_health_mutex);
    m_stopping = true;
  }
  m_health_wake.notify_all();
  health.join();
  log_line("stopped");
  return 0;
}

} // namespace

int route(const RouteOptions& options)
{
  Router router(options);
  return router.run();
}

} // namespace mlops::worker
