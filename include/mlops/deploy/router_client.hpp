#pragma once
// What the control plane asks a deployment's router (`mlops-worker route`) over its admin API,
// and which services are a deployment's backends: those named DEPLOYMENT-vN, N a version.

#include "mlops/deploy/deployments.hpp"
#include "mlops/serve/http_client.hpp"
#include "mlops/serve/services.hpp"

#include <nlohmann/json.hpp>

#include <cstdint>
#include <string>
#include <string_view>

namespace mlops::deploy {

std::string backend_service_name(const std::string& deployment, std::int64_t version);
bool is_backend_of(const std::string& deployment, const std::string& service);

// "Authorization: Bearer TOKEN".
serve::HttpFields admin_fields(const Deployment& deployment);

// The router's JSON answer, or Error(worker_unhealthy) saying what it did not do.
nlohmann::json router_call(const serve::HttpResponse& response, const Deployment& deployment, std::string_view what);
nlohmann::json router_stats(const Deployment& deployment);  // GET /admin/stats
nlohmann::json router_routes(const Deployment& deployment);  // GET /admin/routes
void send_routes(const Deployment& deployment, const nlohmann::json& table);  // PUT /admin/routes

// A backend entry of a routing table.
nlohmann::json route_entry(const serve::Service& service, int weight);

} // namespace mlops::deploy
