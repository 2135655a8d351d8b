#include "mlops/deploy/router_client.hpp"

#include "mlops/core/error.hpp"

#include <fmt/format.h>

#include <algorithm>

namespace mlops::deploy {

using namespace std::chrono_literals;

std::string backend_service_name(const std::string& deployment, std::int64_t version)
{
  return fmt::format("{}-v{}", deployment, version);
}

bool is_backend_of(const std::string& deployment, const std::string& service)
{
  auto prefix = deployment + "-v";
  if (service.size() <= prefix.size() || service.compare(0, prefix.size(), prefix) != 0) {
    return false;
  }
  return std::all_of(service.begin() + static_cast<std::ptrdiff_t>(prefix.size()), service.end(),
                     [](char c) { return c >= '0' && c <= '9'; });
}

serve::HttpFields admin_fields(const Deployment& d)
{
  return {"Authorization: Bearer " + d.token};
}

nlohmann::json router_call(const serve::HttpResponse& response, const Deployment& d, std::string_view what)
{
  auto document = nlohmann::json::parse(response.body, nullptr, false);
  if (response.status != 200 || !document.is_object()) {
    throw Error(ExitCode::worker_unhealthy, fmt::format("the router of '{}' ({}) did not {}: {}; `mlops deploy status {}` "
                                                        "shows its state",
                                                        d.name, d.url(), what, serve::worker_error_text(response), d.name));
  }
  return document;
}

nlohmann::json router_stats(const Deployment& d)
{
  return router_call(serve::http_get(d.url() + "/admin/stats", 5s, admin_fields(d)), d, "report its numbers");
}

nlohmann::json router_routes(const Deployment& d)
{
  return router_call(serve::http_get(d.url() + "/admin/routes", 2s, admin_fields(d)), d, "report its routing table");
}

void send_routes(const Deployment& d, const nlohmann::json& table)
{
  router_call(serve::http_put(d.url() + "/admin/routes", table.dump(), "application/json", 5s, admin_fields(d)), d,
              "take the new routing table");
}

nlohmann::json route_entry(const serve::Service& service, int weight)
{
  return {{"name", service.name}, {"url", service.url()}, {"version", std::to_string(service.version)}, {"weight", weight}};
}

} // namespace mlops::deploy
