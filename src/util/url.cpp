#include "mlops/util/url.hpp"

#include <fmt/format.h>

namespace mlops::util {

std::string http_url(std::string_view host, int port)
{
  bool ipv6 = host.find(':') != std::string_view::npos;
  return fmt::format("http://{}{}{}:{}", ipv6 ? "[" : "", host, ipv6 ? "]" : "", port);
}

} // namespace mlops::util
