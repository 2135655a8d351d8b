#pragma once
// A load generator on libcurl's multi interface: `concurrency` connections kept alive, each
// sending the same request again as soon as its answer arrives (closed loop), or, with a rate,
// requests started on a fixed schedule shared by all connections (open loop, at most
// `concurrency` in flight). `mlops serve load` prints its report; rollout analysis reads it too.

#include <chrono>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

namespace mlops::serve {

struct LoadOptions
{
  std::string url;
  std::string body;
  std::string content_type = "application/json";
  std::vector<std::string> fields;  // extra header fields, "Name: value"
  int concurrency = 1;
  std::chrono::milliseconds duration{10'000};
  std::optional<double> rate;  // requests per second, all connections together
  std::chrono::milliseconds timeout{10'000};
};

struct LoadReport
{
  std::uint64_t requests = 0;
  std::uint64_t succeeded = 0;  // HTTP 200
  std::uint64_t failed = 0;
  std::map<std::string, std::uint64_t> errors;  // "HTTP 503", "Couldn't connect to server"...
  double seconds = 0;
  double throughput = 0;  // answered requests per second
  double mean_ms = 0;
  double p50_ms = 0;
  double p95_ms = 0;
  double p99_ms = 0;
  double max_ms = 0;
};

// Throws Error(failure) only when libcurl cannot be used at all; failed requests are counted.
LoadReport generate_load(const LoadOptions& options);

} // namespace mlops::serve
