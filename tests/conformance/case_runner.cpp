#include "case_runner.hpp"

#include "mlops/runtime/device.hpp"
#include "mlops/runtime/executor.hpp"
#include "mlops/runtime/model_loader.hpp"

#include <fmt/format.h>

#include <exception>

namespace mlops::conformance {
namespace {

using runtime::NamedTensor;

// A failure found while checking outputs (not an exception of the runtime's).
struct Mismatch
{
  std::string message;
};

// The backend tests give inputs by position: input_N.pb feeds the graph's Nth input.
std::vector<NamedTensor> read_inputs(const DataSet& data_set, const runtime::Graph& graph)
{
  if (data_set.inputs.size() > graph.inputs.size()) {
    throw Mismatch{fmt::format("{} input files, but the graph has {} inputs", data_set.inputs.size(),
                               graph.inputs.size())};
  }
  std::vector<NamedTensor> inputs;
  for (size_t index = 0; index < data_set.inputs.size(); ++index) {
    inputs.push_back(NamedTensor{graph.inputs[index].name, runtime::read_tensor_file(data_set.inputs[index])});
  }
  return inputs;
}

std::vector<NamedTensor> check_data_set(const DataSet& data_set, const runtime::Graph& graph,
                                       runtime::Executor& executor, const Tolerance& tolerance)
{
  auto outputs = executor.run(read_inputs(data_set, graph));
  if (data_set.outputs.empty()) {
    return outputs;  // nothing expected: compared with the other device only
  }
  if (outputs.size() != data_set.outputs.size()) {
    throw Mismatch{fmt::format("{} outputs, expected {}", outputs.size(), data_set.outputs.size())};
  }
  for (size_t index = 0; index < outputs.size(); ++index) {
    auto expected = runtime::read_tensor_file(data_set.outputs[index]);
    if (auto mismatch = tensor_mismatch(expected, outputs[index].tensor, tolerance); !mismatch.empty()) {
      throw Mismatch{fmt::format("output '{}': {}", outputs[index].name, mismatch)};
    }
  }
  return outputs;
}

// Where in a case a message arose: "data set 0, " when the case has several.
std::string data_set_prefix(const TestCase& test_case, size_t index)
{
  return test_case.data_sets.size() > 1 ? fmt::format("data set {}, ", index) : "";
}

} // namespace

std::string_view outcome_name(Outcome outcome)
{
  switch (outcome) {
  case Outcome::passed: return "passed";
  case Outcome::failed: return "failed";
  case Outcome::unsupported: return "unsupported";
  }
  return "?";
}

CaseRun run_case(const TestCase& test_case, std::string_view device_kind, unsigned threads,
                 const Tolerance& tolerance)
{
  CaseRun run;
  if (!test_case.unrunnable.empty()) {
    return CaseRun{Outcome::unsupported, test_case.unrunnable, {}};
  }
  size_t current = 0;
  try {
    auto device = runtime::make_device(device_kind, runtime::DeviceOptions{threads});
    runtime::LoadOptions load_options;
    load_options.operators = device->operators();
    auto graph = runtime::load_model(test_case.model, load_options);
    runtime::Executor executor(graph, std::move(device));
    for (; current < test_case.data_sets.size(); ++current) {
      run.outputs.push_back(check_data_set(test_case.data_sets[current], *graph, executor, tolerance));
    }
  } catch (const Mismatch& mismatch) {
    return CaseRun{Outcome::failed, data_set_prefix(test_case, current) + mismatch.message, {}};
  } catch (const runtime::UnsupportedError& error) {
    return CaseRun{Outcome::unsupported, error.what(), {}};
  } catch (const std::exception& error) {
    return CaseRun{Outcome::failed, data_set_prefix(test_case, current) + "error: " + error.what(), {}};
  }
  return run;
}

std::string runs_mismatch(const CaseRun& reference, const CaseRun& other, const Tolerance& tolerance)
{
  for (size_t set = 0; set < reference.outputs.size() && set < other.outputs.size(); ++set) {
    for (size_t index = 0; index < reference.outputs[set].size() && index < other.outputs[set].size(); ++index) {
      const auto& expected = reference.outputs[set][index];
      auto mismatch = tensor_mismatch(expected.tensor, other.outputs[set][index].tensor, tolerance);
      if (!mismatch.empty()) {
        return fmt::format("data set {}, output '{}': {}", set, expected.name, mismatch);
      }
    }
  }
  return {};
}

} // namespace mlops::conformance
