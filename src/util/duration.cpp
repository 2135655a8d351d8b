#include "mlops/util/duration.hpp"

#include <array>
#include <charconv>
#include <cstdint>
#include <limits>
#include <utility>

namespace mlops::util {

std::optional<std::chrono::milliseconds> parse_duration(std::string_view text,
                                                        std::optional<std::chrono::milliseconds> bare_unit)
{
  std::uint64_t amount = 0;
  auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), amount);
  if (error != std::errc() || end == text.data()) {
    return std::nullopt;
  }
  std::string_view suffix(end, static_cast<size_t>(text.data() + text.size() - end));
  using std::chrono::milliseconds;
  static constexpr std::array<std::pair<std::string_view, std::int64_t>, 4> units = {{
    {"ms", 1}, {"s", 1'000}, {"m", 60'000}, {"h", 3'600'000},
  }};
  std::int64_t unit = 0;
  if (suffix.empty() && bare_unit) {
    unit = bare_unit->count();
  }
  for (const auto& [name, millis] : units) {
    if (suffix == name) {
      unit = millis;
    }
  }
  if (unit <= 0 || amount > static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max() / unit)) {
    return std::nullopt;
  }
  return milliseconds(static_cast<std::int64_t>(amount) * unit);
}

} // namespace mlops::util
