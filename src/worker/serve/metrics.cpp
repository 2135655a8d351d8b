#include "mlops/worker/metrics.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>

namespace mlops::worker {

namespace {

// Latency buckets from 50 microseconds to 10 seconds: a small model answers in tens of
// microseconds, a big batch on a CPU in seconds.
std::vector<double> latency_bounds()
{
  return {0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10};
}

std::vector<double> batch_bounds()
{
  return {1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024};
}

} // namespace

Histogram::Histogram(std::vector<double> bounds) : m_bounds(std::move(bounds)), m_counts(m_bounds.size() + 1, 0) {}

void Histogram::observe(double value)
{
  auto bucket = static_cast<size_t>(std::lower_bound(m_bounds.begin(), m_bounds.end(), value) - m_bounds.begin());
  std::lock_guard lock(m_mutex);
  ++m_counts[bucket];
  m_sum += value;
  ++m_count;
}

void Histogram::render(std::string& out, std::string_view name, std::string_view labels) const
{
  std::lock_guard lock(m_mutex);
  std::uint64_t cumulative = 0;
  for (size_t i = 0; i <= m_bounds.size(); ++i) {
    cumulative += m_counts[i];
    auto bound = i < m_bounds.size() ? fmt::format("{}", m_bounds[i]) : std::string("+Inf");
    fmt::format_to(std::back_inserter(out), "{}_bucket{{{},le=\"{}\"}} {}\n", name, labels, bound, cumulative);
  }
  fmt::format_to(std::back_inserter(out), "{}_sum{{{}}} {}\n{}_count{{{}}} {}\n", name, labels, m_sum, name, labels,
                 m_count);
}

Histogram::Snapshot Histogram::snapshot() const
{
  std::lock_guard lock(m_mutex);
  return {m_bounds, m_counts, m_sum, m_count};
}

std::vector<double> fine_latency_bounds()
{
  std::vector<double> bounds;
  for (double bound = 0.000025; bound < 30; bound *= 1.25) {
    bounds.push_back(std::round(bound * 1e7) / 1e7);
  }
  return bounds;
}

ModelMetrics::ModelMetrics(std::string label_text)
  : labels(std::move(label_text)), queue_seconds(latency_bounds()), compute_seconds(latency_bounds()),
    request_seconds(latency_bounds()), batch_size(batch_bounds())
{
}

std::string label_value(std::string_view text)
{
  std::string out;
  for (char c : text) {
    if (c == '\\' || c == '"') {
      out += '\\';
      out += c;
    } else if (c == '\n') {
      out += "\\n";
    } else {
      out += c;
    }
  }
  return out;
}

void ResponseCounter::count(int status)
{
  if (status >= lowest && status < lowest + 500) {
    m_counts[status - lowest].fetch_add(1, std::memory_order_relaxed);
  }
}

void ResponseCounter::render(std::string& out) const
{
  for (int i = 0; i < 500; ++i) {
    if (auto count = m_counts[i].load(std::memory_order_relaxed)) {
      fmt::format_to(std::back_inserter(out), "mlops_worker_http_responses_total{{code=\"{}\"}} {}\n", i + lowest, count);
    }
  }
}

} // namespace mlops::worker
