// libFuzzer target: .mlops/config.json is edited by people, so its parser must reject any input
// with an Error and never crash, hang or leak.
#include "mlops/core/error.hpp"
#include "mlops/home/config.hpp"

#include <cstddef>
#include <cstdint>
#include <string_view>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size)
{
  std::string_view text(reinterpret_cast<const char*>(data), size);
  try {
    auto config = mlops::parse_home_config(text);
    // Whatever parses must survive a round trip unchanged.
    auto again = mlops::parse_home_config(mlops::render_home_config(config));
    if (again.defaults != config.defaults || again.remotes != config.remotes) {
      __builtin_trap();
    }
  } catch (const mlops::Error&) {
  }
  return 0;
}
