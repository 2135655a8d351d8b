#include "mlops/serve/load_generator.hpp"

#include "mlops/core/error.hpp"
#include "mlops/core/interrupt.hpp"
#include "mlops/core/on_demand_libraries.hpp"

#include <algorithm>
#include <vector>

namespace mlops::serve {

namespace {

using Clock = std::chrono::steady_clock;

size_t discard_body(char*, size_t size, size_t count, void*)
{
  return size * count;
}

struct Connection
{
  CURL* easy = nullptr;
  Clock::time_point sent;
};

double percentile(const std::vector<double>& sorted, double fraction)
{
  if (sorted.empty()) {
    return 0;
  }
  auto index = static_cast<size_t>(fraction * static_cast<double>(sorted.size() - 1) + 0.5);
  return sorted[std::min(index, sorted.size() - 1)];
}

} // namespace

LoadReport generate_load(const LoadOptions& options)
{
  const auto& api = curl();
  CURLM* multi = api.multi_init();
  if (!multi) {
    throw Error(ExitCode::failure, "libcurl could not make a multi handle");
  }
  curl_slist* headers = api.slist_append(nullptr, ("Content-Type: " + options.content_type).c_str());
  headers = api.slist_append(headers, "Expect:");
  for (const auto& field : options.fields) {
    headers = api.slist_append(headers, field.c_str());
  }
  std::vector<Connection> connections(static_cast<size_t>(std::max(1, options.concurrency)));
  for (auto& connection : connections) {
    connection.easy = api.easy_init();
    CURL* easy = connection.easy;
    api.easy_setopt(easy, CURLOPT_URL, options.url.c_str());
    api.easy_setopt(easy, CURLOPT_NOSIGNAL, 1L);
    api.easy_setopt(easy, CURLOPT_PROXY, "");
    api.easy_setopt(easy, CURLOPT_TCP_NODELAY, 1L);
    api.easy_setopt(easy, CURLOPT_TIMEOUT_MS, static_cast<long>(options.timeout.count()));
    api.easy_setopt(easy, CURLOPT_HTTPHEADER, headers);
    api.easy_setopt(easy, CURLOPT_POSTFIELDS, options.body.data());
    api.easy_setopt(easy, CURLOPT_POSTFIELDSIZE_LARGE, static_cast<curl_off_t>(options.body.size()));
    api.easy_setopt(easy, CURLOPT_WRITEFUNCTION, discard_body);
    api.easy_setopt(easy, CURLOPT_PRIVATE, &connection);
  }

  LoadReport report;
  std::vector<double> latencies;
  const auto begin = Clock::now();
  const auto end = begin + options.duration;
  // Open loop: request k is due at begin + k / rate.
  std::uint64_t scheduled = 0;
  auto due = [&] {
    return begin + std::chrono::duration_cast<Clock::duration>(
                     std::chrono::duration<double>(static_cast<double>(scheduled) / *options.rate));
  };
  std::vector<Connection*> idle;
  for (auto& connection : connections) {
    idle.push_back(&connection);
  }
  int running = 0;
  while (true) {
    auto now = Clock::now();
    bool sending = now < end && !interrupted();
    while (sending && !idle.empty() && (!options.rate || due() <= now)) {
      auto* connection = idle.back();
      idle.pop_back();
      connection->sent = now;
      api.multi_add_handle(multi, connection->easy);
      ++running;
      ++scheduled;
    }
    if (running == 0 && !sending) {
      break;
    }
    int still_running = 0;
    api.multi_perform(multi, &still_running);
    int queued = 0;
    while (CURLMsg* message = api.multi_info_read(multi, &queued)) {
      if (message->msg != CURLMSG_DONE) {
        continue;
      }
      Connection* connection = nullptr;
      api.easy_getinfo(message->easy_handle, CURLINFO_PRIVATE, &connection);
      double elapsed = std::chrono::duration<double, std::milli>(Clock::now() - connection->sent).count();
      ++report.requests;
      long status = 0;
      if (message->data.result == CURLE_OK) {
        api.easy_getinfo(message->easy_handle, CURLINFO_RESPONSE_CODE, &status);
      }
      if (status == 200) {
        ++report.succeeded;
      } else {
        ++report.failed;
        ++report.errors[status ? "HTTP " + std::to_string(status) : api.easy_strerror(message->data.result)];
      }
      latencies.push_back(elapsed);
      api.multi_remove_handle(multi, message->easy_handle);
      --running;
      idle.push_back(connection);
    }
    // Wake for the next answer, the next scheduled start, or the end.
    auto wait = std::chrono::milliseconds(10);
    if (options.rate && !idle.empty()) {
      auto until_due = std::chrono::duration_cast<std::chrono::milliseconds>(due() - Clock::now());
      wait = std::clamp(until_due, std::chrono::milliseconds(0), wait);
    }
    if (running > 0 || wait.count() > 0) {
      api.multi_poll(multi, nullptr, 0, static_cast<int>(wait.count()), nullptr);
    }
  }
  report.seconds = std::chrono::duration<double>(Clock::now() - begin).count();
  for (auto& connection : connections) {
    api.easy_cleanup(connection.easy);
  }
  api.multi_cleanup(multi);
  api.slist_free_all(headers);

  std::sort(latencies.begin(), latencies.end());
  double total = 0;
  for (double latency : latencies) {
    total += latency;
  }
  report.throughput = report.seconds > 0 ? static_cast<double>(report.requests) / report.seconds : 0;
  report.mean_ms = latencies.empty() ? 0 : total / static_cast<double>(latencies.size());
  report.p50_ms = percentile(latencies, 0.50);
  report.p95_ms = percentile(latencies, 0.95);
  report.p99_ms = percentile(latencies, 0.99);
  report.max_ms = latencies.empty() ? 0 : latencies.back();
  return report;
}

} // namespace mlops::serve
