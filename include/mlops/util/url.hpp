#pragma once
// URLs of loopback HTTP endpoints (workers), as both the worker's log and the control plane
// write them.

#include <string>
#include <string_view>

namespace mlops::util {

// "http://HOST:PORT", with an IPv6 address in brackets: http://[::1]:8000.
std::string http_url(std::string_view host, int port);

} // namespace mlops::util
