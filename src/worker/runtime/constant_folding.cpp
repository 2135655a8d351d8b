#include "constant_folding.hpp"

#include "cpu/cpu_device.hpp"
#include "mlops/runtime/executor.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <set>

namespace mlops::runtime {

namespace {

bool all_inputs_constant(const Graph& graph, const Node& node)
{
  return std::all_of(node.inputs.begin(), node.inputs.end(),
                     [&](ValueId id) { return id == no_value || graph.constants.count(id); });
}

// The node alone as a graph with no inputs: its inputs are the constants it reads.
std::shared_ptr<Graph> single_node_graph(const Graph& graph, const Node& node)
{
  auto single = std::make_shared<Graph>();
  single->name = graph.name;
  single->opset = graph.opset;
  single->value_names = graph.value_names;
  single->nodes.push_back(node);
  for (ValueId id : node.inputs) {
    if (id != no_value) {
      single->constants[id] = graph.constants.at(id);
    }
  }
  for (ValueId id : node.outputs) {
    if (id != no_value) {
      single->outputs.push_back(ValueInfo{graph.value_names[static_cast<size_t>(id)], id, ElementType::float32, {}});
    }
  }
  return single;
}

void drop_unused(Graph& graph)
{
  std::set<ValueId> needed;
  for (const auto& output : graph.outputs) {
    needed.insert(output.id);
  }
  std::vector<Node> kept;
  for (auto node = graph.nodes.rbegin(); node != graph.nodes.rend(); ++node) {
    if (std::none_of(node->outputs.begin(), node->outputs.end(), [&](ValueId id) { return needed.count(id); })) {
      continue;
    }
    needed.insert(node->inputs.begin(), node->inputs.end());
    kept.push_back(std::move(*node));
  }
  graph.nodes.assign(std::make_move_iterator(kept.rbegin()), std::make_move_iterator(kept.rend()));
  std::erase_if(graph.constants, [&](const auto& constant) { return !needed.count(constant.first); });
}

} // namespace

void fold_constants(Graph& graph, std::int64_t max_tensor_bytes)
{
  std::vector<Node> remaining;
  for (auto& node : graph.nodes) {
    if (!all_inputs_constant(graph, node)) {
      remaining.push_back(std::move(node));
      continue;
    }
    std::vector<NamedTensor> outputs;
    try {
      Executor executor(single_node_graph(graph, node), std::make_unique<cpu::CpuDevice>(1), ExecutorOptions{max_tensor_bytes});
      outputs = executor.run({});
    } catch (const UnsupportedError&) {
      remaining.push_back(std::move(node));  // Left for the device, which will say so when it cannot run it.
      continue;
    } catch (const Error& error) {
      throw Error(ExitCode::integrity, fmt::format("{} is not a valid model: {}", graph.name, error.what()));
    }
    size_t next = 0;
    for (ValueId id : node.outputs) {
      if (id != no_value) {
        graph.constants[id] = std::make_shared<HostTensor>(std::move(outputs[next++].tensor));
      }
    }
  }
  graph.nodes = std::move(remaining);
  drop_unused(graph);
}

} // namespace mlops::runtime
