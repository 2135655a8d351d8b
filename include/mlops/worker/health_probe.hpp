#pragma once
// One blocking GET to a backend, for the router's health checks (a thread of their own, away
// from the event loops).

#include "mlops/worker/route_table.hpp"

#include <chrono>
#include <string_view>

namespace mlops::worker {

// The HTTP status of GET `path`, or 0 when no whole answer came within `timeout`.
int probe_status(const RouteBackend& backend, std::string_view path, std::chrono::milliseconds timeout);

} // namespace mlops::worker
