// Loading: parse, check the operators, put the nodes in order, ONNX's checker and shape
// inference, then the runtime's Graph with constants folded and unused nodes dropped.
#include "mlops/runtime/model_loader.hpp"

#include "constant_folding.hpp"
#include "cpu/cpu_device.hpp"
#include "mlops/core/error.hpp"
#include "mlops/runtime/device.hpp"
#include "onnx_tensors.hpp"

#include <fmt/format.h>
#include <fmt/ranges.h>
#include <fmt/std.h>
#include <onnx/checker.h>
#include <onnx/shape_inference/implementation.h>

#include <algorithm>
#include <fstream>
#include <optional>
#include <set>
#include <unordered_map>

namespace mlops::runtime {

namespace fs = std::filesystem;

namespace {

[[noreturn]] void invalid(const std::string& model, const std::string& why)
{
  throw Error(ExitCode::integrity, fmt::format("{} is not a valid model: {}", model, why));
}

std::int64_t default_opset(const onnx::ModelProto& model)
{
  for (const auto& opset : model.opset_import()) {
    if (opset.domain().empty() || opset.domain() == "ai.onnx") {
      return opset.version();
    }
  }
  return 0;
}

void refuse_unsupported_operators(const onnx::ModelProto& model, const std::string& name, std::int64_t opset,
                                  const std::vector<std::string>& operators)
{
  std::set<std::string> missing;
  for (const auto& node : model.graph().node()) {
    bool default_domain = node.domain().empty() || node.domain() == "ai.onnx";
    if (!default_domain) {
      missing.insert(node.domain() + "." + node.op_type());
    } else if (!std::binary_search(operators.begin(), operators.end(), node.op_type())) {
      missing.insert(node.op_type());
    }
  }
  if (!missing.empty()) {
    throw UnsupportedError(fmt::format("{} uses operators the runtime does not support: {} (model opset {}); "
                                       "supported: {}",
                                       name, fmt::join(missing, ", "), opset, fmt::join(operators, ", ")));
  }
}

// Puts the nodes in an order where every input is defined before it is read (Kahn's algorithm
// over value names). Exporters usually sort already, and ONNX's checker insists on it.
void sort_nodes(onnx::GraphProto& graph, const std::string& name)
{
  std::set<std::string> defined{""};
  for (const auto& input : graph.input()) {
    defined.insert(input.name());
  }
  for (const auto& initializer : graph.initializer()) {
    defined.insert(initializer.name());
  }
  std::unordered_map<std::string, int> producer;
  for (int i = 0; i < graph.node_size(); ++i) {
    for (const auto& output : graph.node(i).output()) {
      if (!output.empty() && !producer.emplace(output, i).second) {
        invalid(name, fmt::format("the value '{}' is produced by two nodes", output));
      }
    }
  }
  bool in_order = true;
  std::set<std::string> seen = defined;
  for (const auto& node : graph.node()) {
    for (const auto& input : node.input()) {
      if (!seen.count(input) && !producer.count(input)) {
        invalid(name, fmt::format("{} '{}' reads '{}', which no node, graph input or initializer defines",
                                  node.op_type(), node.name(), input));
      }
      in_order = in_order && seen.count(input);
    }
    seen.insert(node.output().begin(), node.output().end());
  }
  if (in_order) {
    return;
  }
  std::vector<int> waiting(static_cast<size_t>(graph.node_size()), 0);
  std::unordered_map<std::string, std::vector<int>> readers;
  std::vector<int> order;
  for (int i = 0; i < graph.node_size(); ++i) {
    for (const auto& input : graph.node(i).input()) {
      if (!defined.count(input)) {
        ++waiting[static_cast<size_t>(i)];
        readers[input].push_back(i);
      }
    }
    if (waiting[static_cast<size_t>(i)] == 0) {
      order.push_back(i);
    }
  }
  for (size_t head = 0; head < order.size(); ++head) {
    for (const auto& output : graph.node(order[head]).output()) {
      for (int reader : readers[output]) {
        if (--waiting[static_cast<size_t>(reader)] == 0) {
          order.push_back(reader);
        }
      }
    }
  }
  if (order.size() != static_cast<size_t>(graph.node_size())) {
    std::vector<std::string> stuck;
    for (int i = 0; i < graph.node_size(); ++i) {
      if (waiting[static_cast<size_t>(i)] > 0) {
        stuck.push_back(fmt::format("{} '{}'", graph.node(i).op_type(), graph.node(i).name()));
      }
    }
    invalid(name, fmt::format("its graph has a cycle through {}", fmt::join(stuck, ", ")));
  }
  google::protobuf::RepeatedPtrField<onnx::NodeProto> nodes;
  nodes.Swap(graph.mutable_node());
  for (int i : order) {
    *graph.add_node() = nodes.Get(i);
  }
}

// Strides, dilations or kernel sizes below 1 make libonnx's shape inference divide by zero
// (SIGFPE, which no catch stops), and kernels beyond any real model's make the pooling kernels
// loop for hours: both are refused before shape inference sees them.
void refuse_degenerate_windows(const onnx::GraphProto& graph, const std::string& name)
{
  constexpr std::int64_t max_window = std::int64_t{1} << 20;
  for (const auto& node : graph.node()) {
    for (const auto& attribute : node.attribute()) {
      const auto& key = attribute.name();
      if (key != "strides" && key != "dilations" && key != "kernel_shape") {
        continue;
      }
      std::int64_t taps = 1;
      for (auto value : attribute.ints()) {
        if (value < 1 || value > max_window || (taps *= value) > max_window * 16) {
          invalid(name, fmt::format("{} '{}' has {} {}: each must be between 1 and {}{}", node.op_type(), node.name(),
                                    key, value, max_window, key == "kernel_shape" ? ", and the window at most 16M taps" : ""));
        }
      }
    }
  }
}

// The shape of `value` when it is known before inference: an initializer's, or a graph input's or
// value_info's with every dimension fixed.
std::optional<std::vector<std::int64_t>> static_shape(const onnx::GraphProto& graph, const std::string& value)
{
  for (const auto& initializer : graph.initializer()) {
    if (initializer.name() == value) {
      return std::vector<std::int64_t>(initializer.dims().begin(), initializer.dims().end());
    }
  }
  auto declared = [&](const auto& infos) -> std::optional<std::vector<std::int64_t>> {
    for (const auto& info : infos) {
      if (info.name() != value || !info.type().tensor_type().has_shape()) {
        continue;
      }
      std::vector<std::int64_t> dims;
      for (const auto& dim : info.type().tensor_type().shape().dim()) {
        if (!dim.has_dim_value()) {
          return std::nullopt;
        }
        dims.push_back(dim.dim_value());
      }
      return dims;
    }
    return std::nullopt;
  };
  if (auto shape = declared(graph.input())) {
    return shape;
  }
  return declared(graph.value_info());
}

// A Conv without kernel_shape takes it from W's shape, and libonnx's shape inference then indexes
// its per-axis vectors (sized by X's rank) with W's rank unchecked: a W of another rank reads out
// of bounds (SIGSEGV, found by fuzzing). So the loader writes kernel_shape from W's static shape,
// which inference then checks against X's rank, and refuses a Conv whose W has none.
void complete_conv_kernel_shapes(onnx::GraphProto& graph, const std::string& name)
{
  for (auto& node : *graph.mutable_node()) {
    bool has_kernel_shape = std::any_of(node.attribute().begin(), node.attribute().end(),
                                        [](const auto& attribute) { return attribute.name() == "kernel_shape"; });
    if (node.op_type() != "Conv" || has_kernel_shape || node.input_size() < 2) {
      continue;
    }
    auto w_shape = static_shape(graph, node.input(1));
    if (!w_shape) {
      invalid(name, fmt::format("Conv '{}' has no kernel_shape, and its weights '{}' have no shape known before "
                                "inference (an initializer's or a declared one): give kernel_shape",
                                node.name(), node.input(1)));
    }
    if (w_shape->size() < 3) {
      invalid(name, fmt::format("Conv '{}' has weights '{}' of shape [{}]: they need at least 3 dimensions (M, C/group, "
                                "kernel...)", node.name(), node.input(1), fmt::join(*w_shape, ", ")));
    }
    auto* attribute = node.add_attribute();
    attribute->set_name("kernel_shape");
    attribute->set_type(onnx::AttributeProto::INTS);
    for (size_t i = 2; i < w_shape->size(); ++i) {
      attribute->add_ints((*w_shape)[i]);
    }
  }
}

std::int64_t limit_bytes_of(const LoadOptions& options)
{
  return options.max_tensor_bytes > 0 ? options.max_tensor_bytes : INT64_MAX;
}

ValueInfo value_info(const onnx::ValueInfoProto& proto, ValueId id, const std::string& model, std::int64_t max_bytes)
{
  ValueInfo info;
  info.name = proto.name();
  info.id = id;
  if (!proto.type().has_tensor_type()) {
    throw UnsupportedError(fmt::format("{}: '{}' is not a tensor (sequences, maps and optionals are not supported)",
                                       model, proto.name()));
  }
  const auto& tensor = proto.type().tensor_type();
  if (!is_known_element_type(tensor.elem_type())) {
    throw UnsupportedError(fmt::format("{}: '{}' has the element type {}, which the runtime does not support", model,
                                       proto.name(), onnx::TensorProto_DataType_Name(tensor.elem_type())));
  }
  info.type = static_cast<ElementType>(tensor.elem_type());
  if (!tensor.has_shape()) {
    return info;
  }
  std::vector<Dimension> dims;
  double bytes = static_cast<double>(element_size(info.type));
  for (const auto& dim : tensor.shape().dim()) {
    Dimension dimension;
    if (dim.has_dim_value()) {
      if (dim.dim_value() < 0) {
        invalid(model, fmt::format("'{}' has the negative dimension {}", proto.name(), dim.dim_value()));
      }
      dimension.value = dim.dim_value();
      bytes *= static_cast<double>(dimension.value);
    } else {
      dimension.symbol = dim.dim_param();
    }
    dims.push_back(std::move(dimension));
  }
  if (bytes > static_cast<double>(max_bytes)) {
    invalid(model, fmt::format("'{}' declares a tensor of {:.0f} bytes, over the limit of {} bytes", proto.name(),
                               bytes, max_bytes));
  }
  info.shape = std::move(dims);
  return info;
}

Attribute attribute_of(const onnx::AttributeProto& proto, const fs::path& folder, std::int64_t max_bytes,
                       const std::string& what)
{
  Attribute attribute;
  switch (proto.type()) {
  case onnx::AttributeProto::INT:
    attribute.kind = Attribute::Kind::integer;
    attribute.integer = proto.i();
    break;
  case onnx::AttributeProto::FLOAT:
    attribute.kind = Attribute::Kind::real;
    attribute.real = proto.f();
    break;
  case onnx::AttributeProto::STRING:
    attribute.kind = Attribute::Kind::text;
    attribute.text = proto.s();
    break;
  case onnx::AttributeProto::INTS:
    attribute.kind = Attribute::Kind::integers;
    attribute.integers.assign(proto.ints().begin(), proto.ints().end());
    break;
  case onnx::AttributeProto::FLOATS:
    attribute.kind = Attribute::Kind::reals;
    attribute.reals.assign(proto.floats().begin(), proto.floats().end());
    break;
  case onnx::AttributeProto::TENSOR:
    attribute.kind = Attribute::Kind::tensor;
    attribute.tensor = std::make_shared<HostTensor>(tensor_from_proto(proto.t(), folder, max_bytes, what));
    break;
  default:
    attribute.kind = Attribute::Kind::other;
  }
  return attribute;
}

// The runtime's graph from a checked, sorted model.
Graph build_graph(const onnx::ModelProto& model, const std::string& name, const fs::path& folder,
                  const LoadOptions& options)
{
  const auto limit = limit_bytes_of(options);
  Graph graph;
  graph.name = name;
  graph.opset = default_opset(model);
  std::unordered_map<std::string, ValueId> ids;
  auto id_of = [&](const std::string& value) {
    auto [it, added] = ids.emplace(value, static_cast<ValueId>(graph.value_names.size()));
    if (added) {
      graph.value_names.push_back(value);
    }
    return it->second;
  };
  const auto& proto = model.graph();
  for (const auto& initializer : proto.initializer()) {
    graph.constants[id_of(initializer.name())] = std::make_shared<HostTensor>(
      tensor_from_proto(initializer, folder, limit, fmt::format("{}: initializer '{}'", name, initializer.name())));
  }
  std::unordered_map<std::string, const onnx::ValueInfoProto*> inferred;
  for (const auto& value : proto.value_info()) {
    inferred[value.name()] = &value;
    value_info(value, no_value, name, limit);  // Refuses absurd dimensions anywhere in the graph.
  }
  for (const auto& input : proto.input()) {
    if (!graph.constants.count(id_of(input.name()))) {  // Before IR 4, initializers are inputs too.
      graph.inputs.push_back(value_info(input, id_of(input.name()), name, limit));
    }
  }
  for (const auto& node_proto : proto.node()) {
    Node node;
    node.op_type = node_proto.op_type();
    node.name = node_proto.name();
    node.opset = static_cast<int>(graph.opset);
    for (const auto& input : node_proto.input()) {
      node.inputs.push_back(input.empty() ? no_value : id_of(input));
    }
    for (const auto& output : node_proto.output()) {
      node.outputs.push_back(output.empty() ? no_value : id_of(output));
    }
    for (const auto& attribute : node_proto.attribute()) {
      node.attributes[attribute.name()] =
        attribute_of(attribute, folder, limit, fmt::format("{}: {} attribute {}", name, node.label(), attribute.name()));
    }
    graph.nodes.push_back(std::move(node));
  }
  for (const auto& output : proto.output()) {
    graph.outputs.push_back(value_info(output, id_of(output.name()), name, limit));
  }
  return graph;
}

} // namespace

const std::vector<std::string>& supported_operators()
{
  static const std::vector<std::string> operators = [] {
    std::vector<std::string> names;
    for (const auto& [op, factory] : cpu::cpu_op_table()) {
      names.push_back(op);
    }
    return names;
  }();
  return operators;
}

std::shared_ptr<const Graph> load_model_bytes(const std::string& bytes, const std::string& name,
                                              const fs::path& folder, const LoadOptions& options)
{
  onnx::ModelProto model;
  if (bytes.empty() || !model.ParseFromString(bytes)) {
    invalid(name, bytes.empty() ? "the file is empty" : "its bytes are not an ONNX protobuf (truncated, or another format)");
  }
  if (!model.has_graph()) {
    invalid(name, "it has no graph");
  }
  const auto opset = default_opset(model);
  auto operators = options.operators.empty() ? supported_operators() : options.operators;
  std::sort(operators.begin(), operators.end());
  refuse_unsupported_operators(model, name, opset, operators);
  sort_nodes(*model.mutable_graph(), name);
  inline_external_data(model, folder, limit_bytes_of(options), name);
  complete_conv_kernel_shapes(*model.mutable_graph(), name);
  refuse_degenerate_windows(model.graph(), name);
  try {
    onnx::checker::check_model(model);
    onnx::shape_inference::InferShapes(model);
  } catch (const std::exception& error) {
    invalid(name, error.what());
  }
  auto graph = std::make_shared<Graph>(build_graph(model, name, folder, options));
  fold_constants(*graph, limit_bytes_of(options));
  return graph;
}

std::shared_ptr<const Graph> load_model(const fs::path& path, const LoadOptions& options)
{
  if (fs::is_directory(path)) {
    throw Error(ExitCode::usage, fmt::format("{} is a directory; give the model's .onnx file", path));
  }
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    throw Error(std::filesystem::exists(path) ? ExitCode::failure : ExitCode::not_found,
                fmt::format("cannot read the model {}", path));
  }
  std::string bytes(std::istreambuf_iterator<char>(in), {});
  return load_model_bytes(bytes, path.filename().string(), path.parent_path().empty() ? "." : path.parent_path(),
                          options);
}

} // namespace mlops::runtime
