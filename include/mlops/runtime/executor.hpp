#pragma once
// Runs a loaded graph on a device. Inputs are validated against the model's signature (names,
// element types, ranks, fixed dimensions) before anything runs. Intermediate tensors live in a
// pool of device memory: each is released after its last reader, so later tensors reuse it
// within a request, and the pool stays warm across requests. Constants are uploaded once.
// One executor runs one request at a time (callers serialize or batch).

#include "mlops/runtime/device.hpp"
#include "mlops/runtime/graph.hpp"

#include <memory>
#include <string>
#include <vector>

namespace mlops::runtime {

struct NamedTensor
{
  std::string name;
  HostTensor tensor;
};

struct ExecutorOptions
{
  // The largest tensor a request may make; bigger ones fail the request with Error(usage).
  std::int64_t max_tensor_bytes = std::int64_t{4} << 30;
};

// Checks a request against the graph's signature: every input present and known, element types,
// ranks, fixed dimensions, and one value per symbolic dimension ("batch") across inputs. Throws
// Error(usage) naming the input and what was expected. Executor::run calls it; a server calls it
// too before merging requests into one batch, so that one bad request cannot fail the others.
void validate_inputs(const Graph& graph, const std::vector<NamedTensor>& inputs);

class Executor
{
public:
  Executor(std::shared_ptr<const Graph> graph, std::unique_ptr<Device> device, ExecutorOptions options = {});
  ~Executor();
  Executor(const Executor&) = delete;
  Executor& operator=(const Executor&) = delete;

  // The graph's outputs, in its order. Throws Error(usage) for inputs that do not fit the
  // signature, naming the input and what was expected.
  std::vector<NamedTensor> run(const std::vector<NamedTensor>& inputs);

  const Graph& graph() const;
  Device& device();
  // Bytes the memory pool holds (in use and free).
  size_t pool_bytes() const;

  struct State;  // defined in executor.cpp

private:
  std::unique_ptr<State> m_state;
};

} // namespace mlops::runtime
