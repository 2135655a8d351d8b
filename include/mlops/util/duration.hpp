#pragma once
// Durations as people write them on command lines and in environment variables: "250ms", "30s",
// "5m", "2h". Rollout intervals and timeouts all parse through here.

#include <chrono>
#include <optional>
#include <string_view>

namespace mlops::util {

// A non-negative whole number with a unit (ms, s, m, h). A bare number is accepted only when
// `bare_unit` is given and means that many of it. nullopt for anything else, including overflow.
std::optional<std::chrono::milliseconds>
parse_duration(std::string_view text, std::optional<std::chrono::milliseconds> bare_unit = std::nullopt);

} // namespace mlops::util
