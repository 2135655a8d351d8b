#include "mlops/deploy/analysis.hpp"

#include "expect_error.hpp"

#include <doctest/doctest.h>

using namespace std::chrono_literals;
using namespace mlops::deploy;
using mlops::ExitCode;
using mlops::test::error_message;
using mlops::test::mentions;

namespace {

// A router's /admin/stats document with one backend, as the router writes it.
nlohmann::json stats(std::uint64_t requests, std::uint64_t ok, std::uint64_t client_errors, std::uint64_t server_errors,
                     std::uint64_t failed, std::vector<std::uint64_t> latency_counts)
{
  return {{"generation", 1},
          {"latency_bounds_seconds", {0.001, 0.002, 0.005, 0.010}},
          {"backends",
           {{"canary",
             {{"requests", requests},
              {"answered_2xx", ok},
              {"answered_4xx", client_errors},
              {"answered_5xx", server_errors},
              {"failed", failed},
              {"latency_counts", latency_counts}}}}}};
}

} // namespace

TEST_CASE("window_of subtracts two snapshots of the router's counters")
{
  auto before = stats(100, 90, 5, 3, 2, {50, 40, 10, 0, 0});
  auto after = stats(300, 280, 6, 8, 6, {150, 140, 10, 0, 0});
  auto window = window_of(before, after, "canary");
  CHECK(window.requests == 200);
  CHECK(window.errors == 1 + 5 + 4);  // 4xx, 5xx and no answer all count
  CHECK(window.error_rate() == doctest::Approx(0.05));
  // 200 answers in the window: 100 under 1 ms, 100 under 2 ms; the 99th percentile is in the second.
  REQUIRE(window.p99_ms);
  CHECK(*window.p99_ms == doctest::Approx(2.0));
}

TEST_CASE("window_of: a backend new in the window, absent, or past the last bound")
{
  nlohmann::json empty = {{"backends", nlohmann::json::object()}};
  auto window = window_of(empty, stats(10, 10, 0, 0, 0, {0, 0, 0, 0, 10}), "canary");
  CHECK(window.requests == 10);
  REQUIRE(window.p99_ms);
  CHECK(std::isinf(*window.p99_ms));  // slower than every bound: over the last one
  auto absent = window_of(empty, empty, "canary");
  CHECK(absent.requests == 0);
  CHECK_FALSE(absent.p99_ms);
}

TEST_CASE("analyse: pass, fail and inconclusive")
{
  Criteria criteria;
  criteria.max_error_rate = 0.01;
  criteria.min_requests = 20;
  criteria.max_p99_ms = 5.0;
  struct Case
  {
    const char* what;
    BackendWindow window;
    Verdict verdict;
    const char* says;
  };
  const Case cases[] = {
    {"healthy", {100, 1, 2.0}, Verdict::pass, "passed"},
    {"errors over the rate", {100, 2, 2.0}, Verdict::fail, "--max-error-rate"},
    {"errors fail even below --min-requests", {5, 3, 2.0}, Verdict::fail, "--max-error-rate"},
    {"too slow", {100, 0, 10.0}, Verdict::fail, "--max-p99-ms"},
    {"too few requests", {19, 0, 2.0}, Verdict::inconclusive, "--min-requests"},
    {"no requests at all", {0, 0, std::nullopt}, Verdict::inconclusive, "inconclusive"},
  };
  for (const auto& c : cases) {
    CAPTURE(c.what);
    auto analysis = analyse(c.window, std::nullopt, criteria);
    CHECK(analysis.verdict == c.verdict);
    CHECK(mentions(analysis.reason, c.says));
  }
}

TEST_CASE("analyse reports the stable version's numbers beside the new one's")
{
  auto analysis = analyse({100, 5, 1.0}, BackendWindow{300, 15, 1.0}, Criteria{});
  CHECK(analysis.verdict == Verdict::fail);
  CHECK(mentions(analysis.reason, "the stable version: 300 requests, 5.00% errors"));
  CHECK(analysis.to_json()["baseline"]["requests"] == 300);
}

TEST_CASE("Criteria::parse reads DURATION[,key=value...] and says what is wrong")
{
  auto criteria = Criteria::parse("30s,max-error-rate=0.05,max-p99-ms=20,min-requests=100", "--post-analysis");
  CHECK(criteria.duration == 30s);
  CHECK(criteria.max_error_rate == doctest::Approx(0.05));
  CHECK(criteria.max_p99_ms == 20.0);
  CHECK(criteria.min_requests == 100);
  auto defaults = Criteria::parse("500ms", "--pre-analysis");
  CHECK(defaults.duration == 500ms);
  CHECK(defaults.max_error_rate == doctest::Approx(0.01));
  CHECK_FALSE(defaults.max_p99_ms);
  CHECK(Criteria::from_json(criteria.to_json()).min_requests == 100);

  for (const char* bad : {"", "0s", "abc", "30s,max-error-rate", "30s,max-error-rate=2", "30s,min-requests=1.5",
                          "30s,max-p99-ms=-1", "30s,colour=blue", "30s,"}) {
    CAPTURE(bad);
    auto message = error_message(ExitCode::usage, [&] { Criteria::parse(bad, "--post-analysis"); });
    CHECK(mentions(message, "--post-analysis"));
    CHECK(mentions(message, "DURATION"));
  }
}
