// libFuzzer target: durations come from command lines and environment variables.
#include "mlops/util/duration.hpp"

#include <cstddef>
#include <cstdint>
#include <string_view>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size)
{
  std::string_view text(reinterpret_cast<const char*>(data), size);
  for (auto bare : {std::optional<std::chrono::milliseconds>(), std::optional(std::chrono::milliseconds(1000))}) {
    if (auto duration = mlops::util::parse_duration(text, bare); duration && duration->count() < 0) {
      __builtin_trap();  // Overflow slipped through.
    }
  }
  return 0;
}
