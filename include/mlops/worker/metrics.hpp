#pragma once
// The worker's /metrics, in Prometheus' text format: per model version, request counters by
// outcome, histograms of queue, compute and total latency and of batch sizes, and an in-flight
// gauge; per worker, responses by status code, the device, and GPU memory on CUDA.

#include <fmt/format.h>

#include <atomic>
#include <cstdint>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

namespace mlops::worker {

class Histogram
{
public:
  explicit Histogram(std::vector<double> bounds);
  void observe(double value);
  // Appends NAME_bucket{LABELS,le="..."}, NAME_sum and NAME_count lines.
  void render(std::string& out, std::string_view name, std::string_view labels) const;

  struct Snapshot
  {
    std::vector<double> bounds;
    std::vector<std::uint64_t> counts;  // per bound, not cumulative; the last is +Inf
    double sum = 0;
    std::uint64_t count = 0;
  };
  Snapshot snapshot() const;

private:
  mutable std::mutex m_mutex;
  std::vector<double> m_bounds;
  std::vector<std::uint64_t> m_counts;  // per bound, not cumulative; the last is +Inf
  double m_sum = 0;
  std::uint64_t m_count = 0;
};

struct ModelMetrics
{
  explicit ModelMetrics(std::string labels);

  std::string labels;  // model="...",version="..."
  std::atomic<std::uint64_t> success{0};
  std::atomic<std::uint64_t> failure{0};
  std::atomic<std::int64_t> in_flight{0};
  Histogram queue_seconds;
  Histogram compute_seconds;
  Histogram request_seconds;
  Histogram batch_size;
};

// Bucket bounds in seconds, from 25 microseconds to 30 seconds, each 25% above the one before:
// fine enough that a p99 read from the buckets is within a quarter of the truth.
std::vector<double> fine_latency_bounds();

// Appends formatted text to `out` (a /metrics page being written).
template <class... Args> void append(std::string& out, fmt::format_string<Args...> format, Args&&... args)
{
  fmt::format_to(std::back_inserter(out), format, std::forward<Args>(args)...);
}

// `"` `\` and newlines escaped, as label values need.
std::string label_value(std::string_view text);

class ResponseCounter
{
public:
  void count(int status);
  void render(std::string& out) const;

private:
  static constexpr int lowest = 100;
  std::atomic<std::uint64_t> m_counts[500] = {};
};

} // namespace mlops::worker
