// libFuzzer target: model files are outside input; the worker loads whatever was registered.
// Whatever the bytes, loading gives a graph or an mlops::Error, and a graph that loads runs (on
// zeros of its declared shapes) to outputs or an mlops::Error: never a crash, a hang, or an
// allocation the model asked for beyond the limit.
#include "mlops/core/error.hpp"
#include "mlops/runtime/device.hpp"
#include "mlops/runtime/executor.hpp"
#include "mlops/runtime/model_loader.hpp"

#include <cstddef>
#include <cstdint>
#include <string>

namespace {

using namespace mlops::runtime;

// Small, so that a fuzzed shape cannot make the fuzzer itself run out of memory.
constexpr std::int64_t max_tensor_bytes = std::int64_t{1} << 24;

// Zeros of the input's declared shape, symbolic dimensions taken as 1.
HostTensor zeros_like(const ValueInfo& input)
{
  Shape shape;
  for (const auto& dimension : input.shape.value_or(std::vector<Dimension>{})) {
    shape.push_back(dimension.fixed() ? dimension.value : 1);
  }
  return HostTensor::zeros(input.type, shape);
}

void run_once(std::shared_ptr<const Graph> graph)
{
  std::vector<NamedTensor> inputs;
  for (const auto& input : graph->inputs) {
    inputs.push_back(NamedTensor{input.name, zeros_like(input)});
  }
  Executor executor(std::move(graph), make_device("cpu", DeviceOptions{1}), ExecutorOptions{max_tensor_bytes});
  executor.run(inputs);
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size)
{
  LoadOptions options;
  options.max_tensor_bytes = max_tensor_bytes;
  try {
    run_once(load_model_bytes(std::string(reinterpret_cast<const char*>(data), size), "fuzz", "", options));
  } catch (const mlops::Error&) {
    // A refusal with a message is the right answer to bad bytes.
  }
  return 0;
}
