// libFuzzer target: model files are outside input; `mlops-worker inspect` reads them at
// registration. Whatever the bytes, the answer is a signature or Error(integrity), never a crash.
#include "mlops/core/error.hpp"
#include "mlops/worker/model_signature.hpp"

#include <cstddef>
#include <cstdint>
#include <string>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size)
{
  try {
    auto signature = mlops::worker::inspect_onnx_bytes(std::string(reinterpret_cast<const char*>(data), size), "input");
    if (!signature.contains("inputs") || !signature.contains("outputs")) {
      __builtin_trap();
    }
  } catch (const mlops::Error& error) {
    if (error.code() != mlops::ExitCode::integrity) {
      __builtin_trap();
    }
  }
  return 0;
}
