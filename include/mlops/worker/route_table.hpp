#pragma once
// The routing table of a router (`mlops-worker route`): the serve-mode workers (backends) behind
// a deployment's stable endpoint and the share of requests each gets. The control plane writes
// it as JSON, in the --routes file at start and in PUT /admin/routes afterwards:
//
//   {"model": "churn",
//    "backends": [{"name": "churn-prod-v1", "url": "http://127.0.0.1:41234", "version": "1", "weight": 90},
//                 {"name": "churn-prod-v2", "url": "http://127.0.0.1:41235", "version": "2", "weight": 10}]}
//
// Weights are relative (90/10 is 90%/10%); a backend with weight 0 gets no share of the traffic
// but still answers requests pinned to it (by version in the path, or by X-Mlops-Backend).

#include <nlohmann/json_fwd.hpp>

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <sys/socket.h>

namespace mlops::worker {

struct RouteBackend
{
  std::string name;
  std::string host;
  int port = 0;
  std::string version;  // the model version it serves
  std::uint32_t weight = 0;
  sockaddr_storage address{};  // resolved when the table is read
  socklen_t address_size = 0;

  std::string url() const;
};

struct RouteTable
{
  static constexpr size_t max_backends = 16;
  static constexpr std::uint32_t max_weight = 1'000'000;

  std::string model;
  std::vector<RouteBackend> backends;

  // Throws Error(usage) saying what is wrong: not JSON, a field missing or of the wrong type, a
  // URL that is not http://HOST:PORT, a name given twice, too many backends, a weight out of range.
  static RouteTable parse(std::string_view json);
  nlohmann::json to_json() const;

  const RouteBackend* find(std::string_view name) const;
};

// The backend that `draw` picks by weight among those whose bit in `excluded` is clear (bit i is
// backend i); nothing when their weights add up to 0. The same draw picks the same backend for
// the same table, which makes sticky routing a hash of the sticky header.
std::optional<size_t> pick_by_weight(const RouteTable& table, std::uint64_t draw, std::uint64_t excluded);

} // namespace mlops::worker
