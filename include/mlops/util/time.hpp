#pragma once

#include <string>

namespace mlops::util {

// The current UTC time as ISO-8601 with milliseconds: "2026-11-24T23:15:40.123Z".
std::string now_iso8601();

} // namespace mlops::util
