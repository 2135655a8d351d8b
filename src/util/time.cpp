#include "mlops/util/time.hpp"

#include <fmt/chrono.h>

#include <chrono>

namespace mlops::util {

std::string now_iso8601()
{
  auto now = std::chrono::time_point_cast<std::chrono::milliseconds>(std::chrono::system_clock::now());
  auto seconds = std::chrono::time_point_cast<std::chrono::seconds>(now);
  auto millis = (now - seconds).count();
  return fmt::format("{:%Y-%m-%dT%H:%M:%S}.{:03}Z", seconds, millis);
}

} // namespace mlops::util
