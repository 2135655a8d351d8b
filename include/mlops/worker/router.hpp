#pragma once
// `mlops-worker route`: the stable endpoint of a deployment. It answers the Open Inference
// Protocol by forwarding each request, whole, to one serve-mode backend chosen by weight from the
// routing table (route_table.hpp), and keeps per-backend numbers that rollout analysis reads.
//
//   /v2/...                    forwarded. A request naming a version (/v2/models/M/versions/V/...)
//                              goes to the backend serving V; X-Mlops-Backend: NAME, with the
//                              admin token, pins a request to a backend (smoke tests); with
//                              --sticky-header H, requests with the same H go to the same
//                              backend while the table stays the same. Answers carry
//                              X-Mlops-Backend: the backend that answered.
//   GET  /v2/health/live       200 once the port is open
//   GET  /v2/health/ready      200 while a backend with weight > 0 is healthy, else 503
//   GET  /metrics              Prometheus text: per backend requests by outcome, latency, weight, health
//   GET  /admin/routes         the table, each backend's health, and the table's generation
//   PUT  /admin/routes         a new table; it applies to every request that starts after the answer
//   GET  /admin/stats          per backend counters and latency buckets, as JSON (for analysis)
//
// /admin/ calls need "Authorization: Bearer TOKEN" with the token of --admin-token-file (401
// without one, 403 with a wrong one). A request whose backend refuses the connection, or breaks
// it before any answer, is sent once more to another backend (inference is a function of its
// inputs, so a request that got no answer at all is safe to repeat); a refusal also marks the
// backend unhealthy until its health check passes again. Health checks (GET /v2/health/ready)
// run every --health-interval.

#include <chrono>
#include <filesystem>
#include <string>

namespace mlops::worker {

struct RouteOptions
{
  std::filesystem::path routes_file;       // the table at start (JSON)
  std::filesystem::path admin_token_file;  // the token /admin/ calls need
  std::string host = "127.0.0.1";
  int port = 8000;
  std::filesystem::path port_file;
  unsigned http_threads = 0;
  std::string sticky_header;  // empty: none
  std::chrono::milliseconds health_interval{500};
  std::chrono::milliseconds upstream_timeout{60'000};
  size_t max_body_bytes = size_t{64} << 20;
  std::chrono::seconds read_timeout{5};
  std::chrono::seconds drain_timeout{30};
};

// Runs until a signal ends it; returns the exit status. Throws Error when the table or the token
// cannot be read or the port cannot be opened.
int route(const RouteOptions& options);

} // namespace mlops::worker
