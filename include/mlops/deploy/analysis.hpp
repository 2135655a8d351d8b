#pragma once
// Rollout analysis: what a backend did in a window, from two snapshots of the router's
// /admin/stats, and whether that passes the rollout's criteria.
//
// An error is any request the backend did not answer with 2xx: 5xx, no answer at all (refused,
// broken, timed out; the router may have retried it elsewhere, so the client never saw it), and
// also 4xx. Both versions get the same requests, so a request the stable version takes and the
// new one refuses (a changed input signature, the commonest bad deployment) is the new
// version's fault. The stable backend's numbers for the same window are reported beside the
// new one's, so that errors from bad clients, which hit both, can be told apart.

#include <nlohmann/json.hpp>

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>

namespace mlops::deploy {

struct Criteria
{
  std::chrono::milliseconds duration{30'000};  // the window: a canary step's --interval
  double max_error_rate = 0.01;
  std::optional<double> max_p99_ms;
  std::uint64_t min_requests = 20;  // fewer is inconclusive, not a pass

  nlohmann::json to_json() const;
  static Criteria from_json(const nlohmann::json& document);
  // "DURATION[,max-error-rate=R][,max-p99-ms=X][,min-requests=N]" (--pre-analysis/--post-analysis);
  // Error(usage) saying what was expected.
  static Criteria parse(const std::string& text, const std::string& option);
};

struct BackendWindow
{
  std::uint64_t requests = 0;
  std::uint64_t errors = 0;
  std::optional<double> p99_ms;  // the upper bound of the bucket holding the 99th percentile

  double error_rate() const { return requests == 0 ? 0.0 : static_cast<double>(errors) / static_cast<double>(requests); }
  nlohmann::json to_json() const;
};

// The numbers of `backend` between two /admin/stats documents (absent: zeros).
BackendWindow window_of(const nlohmann::json& before, const nlohmann::json& after, const std::string& backend);

enum class Verdict { pass, fail, inconclusive };

struct Analysis
{
  Verdict verdict = Verdict::inconclusive;
  std::string reason;  // for people: the numbers and the limit they broke
  BackendWindow candidate;
  std::optional<BackendWindow> baseline;

  nlohmann::json to_json() const;
};

Analysis analyse(const BackendWindow& candidate, const std::optional<BackendWindow>& baseline, const Criteria& criteria);

std::string_view verdict_name(Verdict verdict);

} // namespace mlops::deploy
