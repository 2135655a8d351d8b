// libFuzzer target: dataset references (NAME@N, NAME@TAG) come from command lines and scripts.
#include "mlops/core/error.hpp"
#include "mlops/data/dataset_ref.hpp"

#include <cstddef>
#include <cstdint>
#include <string_view>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size)
{
  std::string_view text(reinterpret_cast<const char*>(data), size);
  try {
    auto ref = mlops::data::parse_dataset_ref(text);
    // Whatever is accepted prints back as a reference that parses to the same thing.
    auto again = mlops::data::parse_dataset_ref(ref.text());
    if (again.name != ref.name || again.version != ref.version) {
      __builtin_trap();
    }
  } catch (const mlops::Error& error) {
    if (error.code() != mlops::ExitCode::usage) {
      __builtin_trap();
    }
  }
  return 0;
}
