// The router's routing table: the JSON the control plane writes, each refusal with the message an
// operator reads, the round trip through to_json(), and the pick by weight behind the traffic split.
#include "mlops/worker/route_table.hpp"

#include "expect_error.hpp"

#include <doctest/doctest.h>
#include <fmt/format.h>
#include <fmt/ranges.h>
#include <nlohmann/json.hpp>

#include <cstdint>
#include <limits>
#include <string>
#include <vector>

#include <netinet/in.h>

using namespace mlops;
using namespace mlops::worker;
using mlops::test::error_message;
using mlops::test::mentions;

namespace {

std::string backend_json(const std::string& name, const std::string& url, int weight = 1)
{
  return fmt::format(R"({{"name": "{}", "url": "{}", "version": "1", "weight": {}}})", name, url, weight);
}

// A table of the given backends, each a JSON object's text.
std::string table_json(const std::vector<std::string>& backends)
{
  return fmt::format(R"({{"model": "churn", "backends": [{}]}})", fmt::join(backends, ", "));
}

std::string refusal(const std::string& json)
{
  return error_message(ExitCode::usage, [&] { RouteTable::parse(json); });
}

bool same_table(const RouteTable& a, const RouteTable& b)
{
  if (a.model != b.model || a.backends.size() != b.backends.size()) {
    return false;
  }
  for (size_t i = 0; i < a.backends.size(); ++i) {
    const auto& x = a.backends[i];
    const auto& y = b.backends[i];
    if (x.name != y.name || x.host != y.host || x.port != y.port || x.version != y.version || x.weight != y.weight ||
        x.address.ss_family != y.address.ss_family || x.address_size != y.address_size) {
      return false;
    }
  }
  return true;
}

RouteTable weighted(const std::vector<std::uint32_t>& weights)
{
  RouteTable table;
  for (size_t i = 0; i < weights.size(); ++i) {
    RouteBackend backend;
    backend.name = fmt::format("b{}", i);
    backend.weight = weights[i];
    table.backends.push_back(backend);
  }
  return table;
}

// How many of the draws 0..total-1 pick each backend; nothing when a draw picks none.
std::vector<std::uint64_t> picks(const RouteTable& table, std::uint64_t total, std::uint64_t excluded)
{
  std::vector<std::uint64_t> counts(table.backends.size());
  for (std::uint64_t draw = 0; draw < total; ++draw) {
    auto picked = pick_by_weight(table, draw, excluded);
    if (!picked || *picked >= counts.size()) {
      return {};
    }
    ++counts[*picked];
  }
  return counts;
}

} // namespace

TEST_CASE("RouteTable::parse: a valid table")
{
  auto table = RouteTable::parse(R"({"model": "churn", "backends": [
      {"name": "churn-prod-v1", "url": "http://127.0.0.1:41234", "version": "1", "weight": 90},
      {"name": "churn-prod-v2", "url": "http://[::1]:41235", "version": "2", "weight": 10},
      {"name": "local", "url": "http://localhost:8000/", "weight": 0}]})");
  CHECK(table.model == "churn");
  REQUIRE(table.backends.size() == 3);

  const auto& v4 = table.backends[0];
  CHECK(v4.name == "churn-prod-v1");
  CHECK(v4.host == "127.0.0.1");
  CHECK(v4.port == 41234);
  CHECK(v4.version == "1");
  CHECK(v4.weight == 90);
  CHECK(v4.url() == "http://127.0.0.1:41234");
  CHECK(v4.address.ss_family == AF_INET);
  CHECK(v4.address_size == sizeof(sockaddr_in));

  const auto& v6 = table.backends[1];
  CHECK(v6.host == "::1");
  CHECK(v6.port == 41235);
  CHECK(v6.url() == "http://[::1]:41235");
  CHECK(v6.address.ss_family == AF_INET6);
  CHECK(v6.address_size == sizeof(sockaddr_in6));

  const auto& local = table.backends[2];
  CHECK(local.host == "localhost");
  CHECK(local.url() == "http://localhost:8000");  // the trailing slash is dropped
  CHECK(local.version.empty());
  CHECK(local.weight == 0);
  CHECK(local.address_size > 0);

  CHECK(table.find("local") == &local);
  CHECK_FALSE(table.find("Local"));
}

TEST_CASE("RouteTable::parse: the edges of what is accepted")
{
  CHECK(RouteTable::parse(R"({"backends": []})").backends.empty());
  CHECK(RouteTable::parse(R"({"backends": []})").model.empty());
  auto edges = RouteTable::parse(table_json({backend_json("low", "http://127.0.0.1:1", 0),
                                             backend_json("high", "http://127.0.0.1:65535", 1'000'000)}));
  CHECK(edges.backends[0].port == 1);
  CHECK(edges.backends[1].port == 65535);
  CHECK(edges.backends[1].weight == RouteTable::max_weight);

  std::vector<std::string> sixteen;
  for (int i = 0; i < 16; ++i) {
    sixteen.push_back(backend_json(fmt::format("b{}", i), fmt::format("http://127.0.0.1:{}", 8000 + i)));
  }
  CHECK(RouteTable::parse(table_json(sixteen)).backends.size() == RouteTable::max_backends);
}

TEST_CASE("RouteTable::parse: each refusal says what is wrong")
{
  const std::string prefix = "the routing table is not valid: ";
  std::vector<std::string> seventeen;
  for (int i = 0; i < 17; ++i) {
    seventeen.push_back(backend_json(fmt::format("b{}", i), "http://127.0.0.1:8000"));
  }
  auto url = [](const std::string& text) { return table_json({backend_json("a", text)}); };
  auto not_url = [](const std::string& text) { return fmt::format("'{}' is not a URL http://HOST:PORT", text); };
  auto weight = [](const std::string& text) {
    return table_json({fmt::format(R"({{"name": "a", "url": "http://127.0.0.1:8000", "weight": {}}})", text)});
  };
  const std::string bad_weight = "the weight of backend 'a' is missing or not an integer from 0 to 1000000";

  struct Case
  {
    std::string what;
    std::string json;
    std::string message;
  };
  const std::vector<Case> cases = {
    {"not JSON", "{\"backends\": [", "it is not a JSON object"},
    {"empty", "", "it is not a JSON object"},
    {"not an object", "[]", "it is not a JSON object"},
    {"a string", "\"backends\"", "it is not a JSON object"},
    {"model not a string", R"({"model": 7, "backends": []})", "\"model\" is not a string"},
    {"backends missing", R"({"model": "churn"})", "\"backends\" is missing or not a list"},
    {"backends not a list", R"({"backends": {}})", "\"backends\" is missing or not a list"},
    {"17 backends", table_json(seventeen), "it has 17 backends; the most is 16"},
    {"backend not an object", table_json({"\"a\""}), "a backend's \"name\" is missing or not a non-empty string"},
    {"name missing", table_json({R"({"url": "http://127.0.0.1:8000", "weight": 1})"}),
     "a backend's \"name\" is missing or not a non-empty string"},
    {"name empty", table_json({backend_json("", "http://127.0.0.1:8000")}),
     "a backend's \"name\" is missing or not a non-empty string"},
    {"name not a string", table_json({R"({"name": 1, "url": "http://127.0.0.1:8000", "weight": 1})"}),
     "a backend's \"name\" is missing or not a non-empty string"},
    {"url missing", table_json({R"({"name": "a", "weight": 1})"}),
     "a backend's \"url\" is missing or not a non-empty string"},
    {"https", url("https://127.0.0.1:8000"), not_url("https://127.0.0.1:8000")},
    {"upper-case scheme", url("HTTP://127.0.0.1:8000"), not_url("HTTP://127.0.0.1:8000")},
    {"no scheme", url("127.0.0.1:8000"), not_url("127.0.0.1:8000")},
    {"no port", url("http://127.0.0.1"), not_url("http://127.0.0.1")},
    {"empty port", url("http://127.0.0.1:"), not_url("http://127.0.0.1:")},
    {"no host", url("http://:8000"), not_url("http://:8000")},
    {"empty brackets", url("http://[]:8000"), not_url("http://[]:8000")},
    {"unclosed bracket", url("http://[::1:8000"), not_url("http://[::1:8000")},
    {"a path", url("http://127.0.0.1:8000/v2"), not_url("http://127.0.0.1:8000/v2")},
    {"two slashes", url("http://127.0.0.1:8000//"), not_url("http://127.0.0.1:8000//")},
    {"port 0", url("http://127.0.0.1:0"), not_url("http://127.0.0.1:0")},
    {"port 65536", url("http://127.0.0.1:65536"), not_url("http://127.0.0.1:65536")},
    {"port huge", url("http://127.0.0.1:99999999999"), not_url("http://127.0.0.1:99999999999")},
    {"port negative", url("http://127.0.0.1:-80"), not_url("http://127.0.0.1:-80")},
    {"port not numeric", url("http://127.0.0.1:http"), not_url("http://127.0.0.1:http")},
    {"port with a sign", url("http://127.0.0.1:+80"), not_url("http://127.0.0.1:+80")},
    {"host unknown", url("http://no-such-host.invalid:8000"),
     "the host of http://no-such-host.invalid:8000 is not an IP address"},
    // The message ends at the NUL, as a C string does.
    {"host with a NUL", url("http://127.0.0.1\\u0000.evil:8000"), "'http://127.0.0.1"},
    {"version not a string",
     table_json({R"({"name": "a", "url": "http://127.0.0.1:8000", "version": 2, "weight": 1})"}),
     "the version of backend 'a' is not a string"},
    {"weight missing", table_json({R"({"name": "a", "url": "http://127.0.0.1:8000"})"}), bad_weight},
    {"weight negative", weight("-1"), bad_weight},
    {"weight over the most", weight("1000001"), bad_weight},
    {"weight past 64 bits", weight("18446744073709551615"), bad_weight},
    {"weight a fraction", weight("1.5"), bad_weight},
    {"weight in exponent form", weight("1e3"), bad_weight},
    {"weight a string", weight("\"5\""), bad_weight},
    {"weight a boolean", weight("true"), bad_weight},
    {"weight null", weight("null"), bad_weight},
    {"name given twice",
     table_json({backend_json("a", "http://127.0.0.1:8000"), backend_json("a", "http://127.0.0.1:8001")}),
     "the backend name 'a' is given twice"},
  };
  for (const auto& item : cases) {
    CAPTURE(item.what);
    auto message = refusal(item.json);
    CHECK(mentions(message, prefix));
    CHECK_MESSAGE(mentions(message, item.message), message);
  }
}

TEST_CASE("RouteTable::to_json: parsing it again gives the same table")
{
  auto table = RouteTable::parse(R"({"model": "churn", "backends": [
      {"name": "v1", "url": "http://127.0.0.1:41234/", "version": "1", "weight": 90},
      {"name": "v2", "url": "http://[::1]:41235", "weight": 10}]})");
  auto json = table.to_json();
  CHECK(json == nlohmann::json::parse(R"({"model": "churn", "backends": [
      {"name": "v1", "url": "http://127.0.0.1:41234", "version": "1", "weight": 90},
      {"name": "v2", "url": "http://[::1]:41235", "version": "", "weight": 10}]})"));
  CHECK(same_table(RouteTable::parse(json.dump()), table));
  CHECK(RouteTable().to_json() == nlohmann::json::parse(R"({"model": "", "backends": []})"));
}

TEST_CASE("pick_by_weight")
{
  auto table = weighted({3, 0, 5, 2});
  SUBCASE("the draws 0..total-1 split exactly by weight")
  {
    CHECK(picks(table, 10, 0) == std::vector<std::uint64_t>{3, 0, 5, 2});
    CHECK(picks(weighted({1'000'000, 1}), 1'000'001, 0) == std::vector<std::uint64_t>{1'000'000, 1});
  }
  SUBCASE("excluded backends get no share; the others split the whole")
  {
    CHECK(picks(table, 5, 0b0100) == std::vector<std::uint64_t>{3, 0, 0, 2});
    CHECK(picks(table, 2, 0b0101) == std::vector<std::uint64_t>{0, 0, 0, 2});
    CHECK(picks(table, 10, ~std::uint64_t{0} << 4) == std::vector<std::uint64_t>{3, 0, 5, 2});  // bits past the table
  }
  SUBCASE("nothing when the weights left add up to 0")
  {
    CHECK_FALSE(pick_by_weight(table, 0, 0b1101));
    CHECK_FALSE(pick_by_weight(table, 7, ~std::uint64_t{0}));
    CHECK_FALSE(pick_by_weight(weighted({0, 0}), 1, 0));
    CHECK_FALSE(pick_by_weight(RouteTable(), 1, 0));
  }
  SUBCASE("the same draw picks the same backend")
  {
    for (std::uint64_t draw : {std::uint64_t{0}, std::uint64_t{7}, std::uint64_t{123'456'789},
                               std::numeric_limits<std::uint64_t>::max()}) {
      CAPTURE(draw);
      auto first = pick_by_weight(table, draw, 0);
      REQUIRE(first);
      CHECK(pick_by_weight(table, draw, 0) == first);
      CHECK(pick_by_weight(weighted({3, 0, 5, 2}), draw, 0) == first);
      CHECK(table.backends[*first].weight > 0);
    }
  }
}
