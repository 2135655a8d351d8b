// libFuzzer target: --pre-analysis and --post-analysis specs come from command lines and scripts.
#include "mlops/core/error.hpp"
#include "mlops/deploy/analysis.hpp"

#include <cstddef>
#include <cstdint>
#include <string>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size)
{
  std::string text(reinterpret_cast<const char*>(data), size);
  try {
    auto criteria = mlops::deploy::Criteria::parse(text, "--post-analysis");
    // What parses is stored in a rollout's row and read back on resume: it must survive that.
    auto again = mlops::deploy::Criteria::from_json(criteria.to_json());
    if (again.duration != criteria.duration || again.min_requests != criteria.min_requests ||
        criteria.duration.count() <= 0 || criteria.max_error_rate < 0 || criteria.max_error_rate > 1) {
      __builtin_trap();
    }
  } catch (const mlops::Error&) {
    // Refused with a message: what bad input should get.
  }
  return 0;
}
