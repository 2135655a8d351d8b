// libFuzzer target: model references (NAME@N, NAME@ALIAS) come from command lines and scripts.
#include "mlops/core/error.hpp"
#include "mlops/registry/registry.hpp"

#include <cstddef>
#include <cstdint>
#include <string>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size)
{
  std::string text(reinterpret_cast<const char*>(data), size);
  try {
    auto ref = mlops::registry::parse_model_ref(text);
    auto again = mlops::registry::parse_model_ref(ref.text());  // accepted text prints back as itself
    if (again.name != ref.name || again.number != ref.number || again.alias != ref.alias) {
      __builtin_trap();
    }
  } catch (const mlops::Error& error) {
    if (error.code() != mlops::ExitCode::usage) {
      __builtin_trap();
    }
  }
  return 0;
}
