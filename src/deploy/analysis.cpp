#include "mlops/deploy/analysis.hpp"

#include "mlops/core/error.hpp"
#include "mlops/util/duration.hpp"

#include <fmt/format.h>

#include <charconv>
#include <cmath>
#include <span>
#include <vector>

namespace mlops::deploy {

namespace {

std::uint64_t counter(const nlohmann::json& stats, const std::string& backend, const char* name)
{
  const auto* found = stats.contains("backends") && stats["backends"].contains(backend) ? &stats["backends"][backend]
                                                                                         : nullptr;
  return found && found->contains(name) ? (*found)[name].get<std::uint64_t>() : 0;
}

std::optional<double> number(std::string_view text)
{
  double value = 0;
  auto [end, problem] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (problem != std::errc() || end != text.data() + text.size() || !std::isfinite(value) || value < 0) {
    return std::nullopt;
  }
  return value;
}

} // namespace

nlohmann::json Criteria::to_json() const
{
  return {{"duration_ms", duration.count()},
          {"max_error_rate", max_error_rate},
          {"max_p99_ms", max_p99_ms ? nlohmann::json(*max_p99_ms) : nlohmann::json()},
          {"min_requests", min_requests}};
}

Criteria Criteria::from_json(const nlohmann::json& document)
{
  Criteria criteria;
  criteria.duration = std::chrono::milliseconds(document.at("duration_ms").get<std::int64_t>());
  criteria.max_error_rate = document.at("max_error_rate").get<double>();
  if (!document.at("max_p99_ms").is_null()) {
    criteria.max_p99_ms = document["max_p99_ms"].get<double>();
  }
  criteria.min_requests = document.at("min_requests").get<std::uint64_t>();
  return criteria;
}

Criteria Criteria::parse(const std::string& text, const std::string& option)
{
  auto refuse = [&](std::string_view why) {
    return Error(ExitCode::usage, fmt::format("{} '{}': {}; write DURATION[,max-error-rate=R][,max-p99-ms=X]"
                                              "[,min-requests=N], for example 30s,max-error-rate=0.01",
                                              option, text, why));
  };
  std::vector<std::string_view> parts;
  for (std::string_view rest = text;;) {
    auto comma = rest.find(',');
    parts.push_back(rest.substr(0, comma));
    if (comma == std::string_view::npos) {
      break;
    }
    rest.remove_prefix(comma + 1);
  }
  Criteria criteria;
  auto duration = util::parse_duration(parts.front(), std::chrono::milliseconds(1000));
  if (!duration || duration->count() == 0) {
    throw refuse(fmt::format("'{}' is not a positive duration (30s, 500ms, 2m)", parts.front()));
  }
  criteria.duration = *duration;
  for (auto part : std::span(parts).subspan(1)) {
    auto equals = part.find('=');
    auto key = part.substr(0, equals);
    auto value = equals == std::string_view::npos ? std::optional<double>() : number(part.substr(equals + 1));
    if (!value) {
      throw refuse(fmt::format("'{}' is not KEY=NUMBER", part));
    }
    if (key == "max-error-rate" && *value <= 1) {
      criteria.max_error_rate = *value;
    } else if (key == "max-p99-ms") {
      criteria.max_p99_ms = *value;
    } else if (key == "min-requests" && *value == std::floor(*value) && *value <= 1e12) {
      criteria.min_requests = static_cast<std::uint64_t>(*value);
    } else {
      throw refuse(fmt::format("'{}' is not one of max-error-rate (0 to 1), max-p99-ms, min-requests (whole)", part));
    }
  }
  return criteria;
}

nlohmann::json BackendWindow::to_json() const
{
  return {{"requests", requests},
          {"errors", errors},
          {"error_rate", error_rate()},
          {"p99_ms", p99_ms ? nlohmann::json(*p99_ms) : nlohmann::json()}};
}

BackendWindow window_of(const nlohmann::json& before, const nlohmann::json& after, const std::string& backend)
{
  auto delta = [&](const char* name) { return counter(after, backend, name) - counter(before, backend, name); };
  BackendWindow window;
  window.requests = delta("requests");
  window.errors = delta("answered_4xx") + delta("answered_5xx") + delta("failed");
  if (!after.contains("backends") || !after["backends"].contains(backend)) {
    return window;
  }
  const auto& bounds = after.value("latency_bounds_seconds", nlohmann::json::array());
  const auto& now = after["backends"][backend]["latency_counts"];
  nlohmann::json then = nlohmann::json::array();
  if (before.contains("backends") && before["backends"].contains(backend)) {
    then = before["backends"][backend]["latency_counts"];
  }
  std::vector<std::uint64_t> counts;
  std::uint64_t total = 0;
  for (size_t i = 0; i < now.size(); ++i) {
    counts.push_back(now[i].get<std::uint64_t>() - (i < then.size() ? then[i].get<std::uint64_t>() : 0));
    total += counts.back();
  }
  if (total == 0) {
    return window;
  }
  auto wanted = static_cast<std::uint64_t>(std::ceil(0.99 * static_cast<double>(total)));
  std::uint64_t seen = 0;
  for (size_t i = 0; i < counts.size(); ++i) {
    seen += counts[i];
    if (seen >= wanted) {
      window.p99_ms = i < bounds.size() ? bounds[i].get<double>() * 1000 : std::numeric_limits<double>::infinity();
      break;
    }
  }
  return window;
}

nlohmann::json Analysis::to_json() const
{
  return {{"verdict", verdict_name(verdict)},
          {"reason", reason},
          {"candidate", candidate.to_json()},
          {"baseline", baseline ? baseline->to_json() : nlohmann::json()}};
}

Analysis analyse(const BackendWindow& candidate, const std::optional<BackendWindow>& baseline, const Criteria& criteria)
{
  Analysis analysis{Verdict::pass, "", candidate, baseline};
  auto numbers = fmt::format("{} requests, {} errors ({:.2f}%), p99 {}", candidate.requests, candidate.errors,
                             candidate.error_rate() * 100,
                             candidate.p99_ms ? fmt::format("{:.2f} ms", *candidate.p99_ms) : std::string("n/a"));
  if (baseline) {
    numbers += fmt::format("; the stable version: {} requests, {:.2f}% errors", baseline->requests,
                           baseline->error_rate() * 100);
  }
  // Errors fail the window even when there are too few requests to pass it.
  if (candidate.error_rate() > criteria.max_error_rate && candidate.errors > 0) {
    analysis.verdict = Verdict::fail;
    analysis.reason = fmt::format("error rate {:.2f}% is over --max-error-rate {}% ({})", candidate.error_rate() * 100,
                                  criteria.max_error_rate * 100, numbers);
  } else if (criteria.max_p99_ms && candidate.p99_ms && *candidate.p99_ms > *criteria.max_p99_ms) {
    analysis.verdict = Verdict::fail;
    analysis.reason = fmt::format("p99 latency is over --max-p99-ms {} ({})", *criteria.max_p99_ms, numbers);
  } else if (candidate.requests < criteria.min_requests) {
    analysis.verdict = Verdict::inconclusive;
    analysis.reason = fmt::format("inconclusive: {} requests, fewer than --min-requests {} ({})", candidate.requests,
                                  criteria.min_requests, numbers);
  } else {
    analysis.reason = fmt::format("passed: {}", numbers);
  }
  return analysis;
}

std::string_view verdict_name(Verdict verdict)
{
  switch (verdict) {
  case Verdict::pass: return "pass";
  case Verdict::fail: return "fail";
  case Verdict::inconclusive: return "inconclusive";
  }
  return "unknown";
}

} // namespace mlops::deploy
