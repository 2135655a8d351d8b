#pragma once
// A loaded model as the runtime sees it: values numbered densely, nodes in topological order
// with their attributes parsed, constants (initializers, Constant nodes, folded subgraphs) on
// the host, and the signature with symbolic dimensions kept symbolic. Free of ONNX's headers.

#include "mlops/runtime/tensor.hpp"

#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace mlops::runtime {

struct Attribute
{
  enum class Kind { integer, real, text, integers, reals, tensor, other };
  Kind kind = Kind::other;
  std::int64_t integer = 0;
  float real = 0;
  std::string text;
  std::vector<std::int64_t> integers;
  std::vector<float> reals;
  std::shared_ptr<const HostTensor> tensor;
};

// A value id; absent optional inputs and outputs are no_value.
using ValueId = int;
inline constexpr ValueId no_value = -1;

struct Node
{
  std::string op_type;
  std::string name;            // may be empty; messages then use "op_type #index"
  int opset = 0;               // the model's version of the default domain
  std::vector<ValueId> inputs;
  std::vector<ValueId> outputs;
  std::map<std::string, Attribute, std::less<>> attributes;

  bool has_attribute(std::string_view key) const { return attributes.find(key) != attributes.end(); }
  // Each getter throws Error(integrity) when the attribute exists with another kind.
  std::int64_t attribute_int(std::string_view key, std::int64_t fallback) const;
  float attribute_float(std::string_view key, float fallback) const;
  std::string attribute_string(std::string_view key, std::string fallback) const;
  std::vector<std::int64_t> attribute_ints(std::string_view key, std::vector<std::int64_t> fallback = {}) const;
  std::vector<float> attribute_floats(std::string_view key, std::vector<float> fallback = {}) const;
  std::shared_ptr<const HostTensor> attribute_tensor(std::string_view key) const;
  // "Conv 'conv1'": how messages name the node.
  std::string label() const;
};

// One dimension of a declared shape: fixed (value >= 0) or symbolic ("batch", or "" when unnamed).
struct Dimension
{
  std::int64_t value = -1;
  std::string symbol;
  bool fixed() const { return value >= 0; }
};

struct ValueInfo
{
  std::string name;
  ValueId id = no_value;
  ElementType type = ElementType::float32;
  std::optional<std::vector<Dimension>> shape;  // absent when the model does not say
};

struct Graph
{
  std::string name;           // what messages call the model (its file name)
  std::int64_t opset = 0;     // default domain
  std::vector<std::string> value_names;  // by ValueId
  std::vector<ValueInfo> inputs;         // graph inputs that are not initializers
  std::vector<ValueInfo> outputs;
  std::vector<Node> nodes;               // topological order, constants folded away
  std::map<ValueId, std::shared_ptr<const HostTensor>> constants;

  std::string_view value_name(ValueId id) const { return value_names.at(static_cast<size_t>(id)); }
};

} // namespace mlops::runtime
