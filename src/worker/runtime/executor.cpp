#include "mlops/runtime/executor.hpp"

#include "memory_pool.hpp"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <unordered_map>

namespace mlops::runtime {

namespace {

// A value while a request runs: a view of device memory and the block that owns it (shared by
// aliases). Constants have views and no block: the executor owns them for its whole life.
struct Slot
{
  TensorView view;
  std::shared_ptr<Block> block;
  bool present = false;
};

std::string signature_text(const ValueInfo& info)
{
  if (!info.shape) {
    return std::string(element_type_name(info.type));
  }
  std::vector<std::string> dims;
  for (const auto& dim : *info.shape) {
    dims.push_back(dim.fixed() ? std::to_string(dim.value) : dim.symbol.empty() ? "?" : dim.symbol);
  }
  return fmt::format("{} [{}]", element_type_name(info.type), fmt::join(dims, ", "));
}

} // namespace

struct Executor::State
{
  std::shared_ptr<const Graph> graph;
  std::unique_ptr<Device> device;
  ExecutorOptions options;
  MemoryPool pool;
  std::vector<std::unique_ptr<Kernel>> kernels;
  std::vector<std::vector<size_t>> host_inputs;  // per node
  std::vector<int> last_reader;                  // per value: the last node reading it, -1 if none
  std::vector<bool> needed;                      // per value: read by a node or a graph output
  std::vector<bool> is_output;                   // per value
  std::vector<Slot> constants;                   // per value: uploaded constants
  std::vector<void*> constant_memory;

  State(std::shared_ptr<const Graph> g, std::unique_ptr<Device> d, ExecutorOptions o)
    : graph(std::move(g)), device(std::move(d)), options(o), pool(*device)
  {
  }

  ~State()
  {
    for (size_t i = 0; i < constants.size(); ++i) {
      if (constants[i].present) {
        device->release(constant_memory[i], constants[i].view.bytes());
      }
    }
  }
};

namespace {

class NodeContext : public KernelContext
{
public:
  NodeContext(Executor::State& state, const Node& node, std::vector<Slot>& slots, size_t index)
    : m_state(state), m_node(node), m_slots(slots)
  {
    for (size_t input : state.host_inputs[index]) {
      if (!has_input(input)) {
        continue;
      }
      ValueId id = node.inputs[input];
      auto constant = state.graph->constants.find(id);
      if (constant != state.graph->constants.end()) {
        m_host.emplace(input, *constant->second);
        continue;
      }
      const auto& view = this->input(input);
      HostTensor copy = HostTensor::zeros(view.type, view.shape);
      state.device->copy_to_host(copy.bytes.data(), view.data, copy.bytes.size());
      m_host.emplace(input, std::move(copy));
    }
  }

  size_t input_count() const override { return m_node.inputs.size(); }
  bool has_input(size_t index) const override
  {
    return index < m_node.inputs.size() && m_node.inputs[index] != no_value;
  }
  const TensorView& input(size_t index) const override
  {
    if (!has_input(index)) {
      throw Error(ExitCode::integrity, fmt::format("{}: input {} is missing", m_node.label(), index));
    }
    return m_slots[static_cast<size_t>(m_node.inputs[index])].view;
  }
  const HostTensor& host_input(size_t index) const override
  {
    auto found = m_host.find(index);
    if (found == m_host.end()) {
      throw Error(ExitCode::integrity, fmt::format("{}: input {} is missing", m_node.label(), index));
    }
    return found->second;
  }

  size_t output_count() const override { return m_node.outputs.size(); }
  bool wants_output(size_t index) const override
  {
    return index < m_node.outputs.size() && m_node.outputs[index] != no_value &&
           m_state.needed[static_cast<size_t>(m_node.outputs[index])];
  }
  TensorView& allocate_output(size_t index, ElementType type, Shape shape) override
  {
    Slot& slot = output_slot(index);
    auto count = element_count(shape);
    auto limit = m_state.options.max_tensor_bytes;
    if (limit > 0 && count > limit / static_cast<std::int64_t>(element_size(type))) {
      throw Error(ExitCode::usage, fmt::format("{} would make a {} tensor of shape {}, over the limit of {} bytes; "
                                               "send a smaller request",
                                               m_node.label(), element_type_name(type), shape_text(shape), limit));
    }
    slot.block = m_state.pool.take(static_cast<size_t>(count) * element_size(type));
    slot.view = TensorView{type, std::move(shape), slot.block->memory()};
    slot.present = true;
    return slot.view;
  }
  TensorView& alias_output(size_t index, size_t input, Shape shape) override
  {
    const Slot& source = m_slots[static_cast<size_t>(m_node.inputs.at(input))];
    if (element_count(shape) != source.view.count()) {
      throw Error(ExitCode::usage, fmt::format("{}: cannot view {} values as the shape {}", m_node.label(),
                                               source.view.count(), shape_text(shape)));
    }
    Slot& slot = output_slot(index);
    slot.block = source.block;
    slot.view = TensorView{source.view.type, std::move(shape), source.view.data};
    slot.present = true;
    return slot.view;
  }
  void* scratch(size_t bytes) override
  {
    auto limit = m_state.options.max_tensor_bytes;
    if (limit > 0 && bytes > static_cast<size_t>(limit)) {
      throw Error(ExitCode::usage, fmt::format("{} would need {} bytes of working memory, over the limit of {} bytes; "
                                               "send a smaller request",
                                               m_node.label(), bytes, limit));
    }
    m_scratch.push_back(m_state.pool.take(bytes));
    return m_scratch.back()->memory();
  }

private:
  Slot& output_slot(size_t index)
  {
    if (index >= m_node.outputs.size() || m_node.outputs[index] == no_value) {
      throw Error(ExitCode::integrity, fmt::format("{}: output {} is not in the model", m_node.label(), index));
    }
    return m_slots[static_cast<size_t>(m_node.outputs[index])];
  }

  Executor::State& m_state;
  const Node& m_node;
  std::vector<Slot>& m_slots;
  std::unordered_map<size_t, HostTensor> m_host;
  std::vector<std::shared_ptr<Block>> m_scratch;
};

} // namespace

void validate_inputs(const Graph& graph, const std::vector<NamedTensor>& inputs)
{
  std::unordered_map<std::string, std::int64_t> symbols;
  std::vector<std::string> expected;
  for (const auto& info : graph.inputs) {
    expected.push_back(fmt::format("{} ({})", info.name, signature_text(info)));
  }
  for (const auto& given : inputs) {
    if (std::count_if(inputs.begin(), inputs.end(), [&](const auto& other) { return other.name == given.name; }) > 1) {
      throw Error(ExitCode::usage, fmt::format("the request gives the input '{}' of {} twice", given.name, graph.name));
    }
    auto info = std::find_if(graph.inputs.begin(), graph.inputs.end(), [&](const auto& i) { return i.name == given.name; });
    if (info == graph.inputs.end()) {
      throw Error(ExitCode::usage, fmt::format("{} has no input named '{}'; its inputs are {}", graph.name, given.name,
                                               fmt::join(expected, ", ")));
    }
    const auto& tensor = given.tensor;
    auto what = fmt::format("input '{}' of {}", given.name, graph.name);
    if (tensor.type != info->type) {
      throw Error(ExitCode::usage, fmt::format("{} must be {}, not {}", what, element_type_name(info->type),
                                               element_type_name(tensor.type)));
    }
    if (tensor.bytes.size() != static_cast<size_t>(element_count(tensor.shape)) * element_size(tensor.type)) {
      throw Error(ExitCode::usage, fmt::format("{} has {} bytes of data for the shape {}", what, tensor.bytes.size(),
                                               shape_text(tensor.shape)));
    }
    if (!info->shape) {
      continue;
    }
    const auto& dims = *info->shape;
    if (dims.size() != tensor.shape.size()) {
      throw Error(ExitCode::usage, fmt::format("{} has {} dimensions {}, the model expects {}: {}", what,
                                               tensor.shape.size(), shape_text(tensor.shape), dims.size(),
                                               signature_text(*info)));
    }
    for (size_t d = 0; d < dims.size(); ++d) {
      if (dims[d].fixed() && dims[d].value != tensor.shape[d]) {
        throw Error(ExitCode::usage, fmt::format("{} has the shape {}, the model expects {} (dimension {} must be {})",
                                                 what, shape_text(tensor.shape), signature_text(*info), d, dims[d].value));
      }
      if (!dims[d].fixed() && !dims[d].symbol.empty()) {
        auto [known, added] = symbols.emplace(dims[d].symbol, tensor.shape[d]);
        if (!added && known->second != tensor.shape[d]) {
          throw Error(ExitCode::usage, fmt::format("{}: dimension '{}' is {} here but {} in another input", what,
                                                   dims[d].symbol, tensor.shape[d], known->second));
        }
      }
    }
  }
  for (const auto& info : graph.inputs) {
    if (std::none_of(inputs.begin(), inputs.end(), [&](const auto& given) { return given.name == info.name; })) {
      throw Error(ExitCode::usage, fmt::format("{} needs the input '{}' ({})", graph.name, info.name, signature_text(info)));
    }
  }
}

Executor::Executor(std::shared_ptr<const Graph> graph, std::unique_ptr<Device> device, ExecutorOptions options)
  : m_state(std::make_unique<State>(std::move(graph), std::move(device), options))
{
  auto& state = *m_state;
  const Graph& g = *state.graph;
  const size_t values = g.value_names.size();
  state.last_reader.assign(values, -1);
  state.needed.assign(values, false);
  state.is_output.assign(values, false);
  for (const auto& output : g.outputs) {
    state.is_output[static_cast<size_t>(output.id)] = state.needed[static_cast<size_t>(output.id)] = true;
  }
  for (size_t i = 0; i < g.nodes.size(); ++i) {
    for (ValueId input : g.nodes[i].inputs) {
      if (input != no_value) {
        state.last_reader[static_cast<size_t>(input)] = static_cast<int>(i);
        state.needed[static_cast<size_t>(input)] = true;
      }
    }
    state.kernels.push_back(state.device->make_kernel(g.nodes[i]));
    state.host_inputs.push_back(state.kernels.back()->host_inputs());
  }
  // Constants go to the device once; the executor owns them for its whole life.
  state.constants.resize(values);
  state.constant_memory.resize(values, nullptr);
  for (const auto& [id, tensor] : g.constants) {
    if (!state.needed[static_cast<size_t>(id)]) {
      continue;
    }
    void* memory = state.device->allocate(std::max<size_t>(tensor->bytes.size(), 1));
    state.device->copy_from_host(memory, tensor->bytes.data(), tensor->bytes.size());
    state.constant_memory[static_cast<size_t>(id)] = memory;
    state.constants[static_cast<size_t>(id)] = Slot{TensorView{tensor->type, tensor->shape, memory}, nullptr, true};
  }
}

Executor::~Executor() = default;

std::vector<NamedTensor> Executor::run(const std::vector<NamedTensor>& inputs)
{
  auto& state = *m_state;
  const Graph& graph = *state.graph;
  validate_inputs(graph, inputs);
  std::vector<Slot> slots = state.constants;
  for (const auto& given : inputs) {
    auto id = std::find_if(graph.inputs.begin(), graph.inputs.end(), [&](const auto& i) { return i.name == given.name; })->id;
    Slot& slot = slots[static_cast<size_t>(id)];
    slot.block = state.pool.take(given.tensor.bytes.size());
    slot.view = TensorView{given.tensor.type, given.tensor.shape, slot.block->memory()};
    slot.present = true;
    state.device->copy_from_host(slot.view.data, given.tensor.bytes.data(), given.tensor.bytes.size());
  }
  for (size_t i = 0; i < graph.nodes.size(); ++i) {
    const Node& node = graph.nodes[i];
    {
      NodeContext context(state, node, slots, i);
      state.kernels[i]->run(context);
    }
    // Blocks whose last reader has run go back to the pool (aliases keep theirs alive).
    for (ValueId input : node.inputs) {
      if (input != no_value && state.last_reader[static_cast<size_t>(input)] == static_cast<int>(i) &&
          !state.is_output[static_cast<size_t>(input)]) {
        slots[static_cast<size_t>(input)].block.reset();
      }
    }
  }
  std::vector<NamedTensor> outputs;
  for (const auto& info : graph.outputs) {
    const Slot& slot = slots[static_cast<size_t>(info.id)];
    if (!slot.present) {
      throw Error(ExitCode::integrity, fmt::format("{}: no node produced the output '{}'", graph.name, info.name));
    }
    NamedTensor output{info.name, HostTensor::zeros(slot.view.type, slot.view.shape)};
    state.device->copy_to_host(output.tensor.bytes.data(), slot.view.data, output.tensor.bytes.size());
    outputs.push_back(std::move(output));
  }
  return outputs;
}

const Graph& Executor::graph() const
{
  return *m_state->graph;
}

Device& Executor::device()
{
  return *m_state->device;
}

size_t Executor::pool_bytes() const
{
  return m_state->pool.held_bytes();
}

} // namespace mlops::runtime
