#include "mlops/runtime/graph.hpp"

#include "mlops/core/error.hpp"

#include <fmt/format.h>

namespace mlops::runtime {

namespace {

const Attribute* find_attribute(const Node& node, std::string_view key, Attribute::Kind kind)
{
  auto found = node.attributes.find(key);
  if (found == node.attributes.end()) {
    return nullptr;
  }
  if (found->second.kind != kind) {
    throw Error(ExitCode::integrity, fmt::format("{}: attribute {} has the wrong type", node.label(), key));
  }
  return &found->second;
}

} // namespace

std::int64_t Node::attribute_int(std::string_view key, std::int64_t fallback) const
{
  auto* attribute = find_attribute(*this, key, Attribute::Kind::integer);
  return attribute ? attribute->integer : fallback;
}

float Node::attribute_float(std::string_view key, float fallback) const
{
  auto* attribute = find_attribute(*this, key, Attribute::Kind::real);
  return attribute ? attribute->real : fallback;
}

std::string Node::attribute_string(std::string_view key, std::string fallback) const
{
  auto* attribute = find_attribute(*this, key, Attribute::Kind::text);
  return attribute ? attribute->text : fallback;
}

std::vector<std::int64_t> Node::attribute_ints(std::string_view key, std::vector<std::int64_t> fallback) const
{
  auto* attribute = find_attribute(*this, key, Attribute::Kind::integers);
  return attribute ? attribute->integers : fallback;
}

std::vector<float> Node::attribute_floats(std::string_view key, std::vector<float> fallback) const
{
  auto* attribute = find_attribute(*this, key, Attribute::Kind::reals);
  return attribute ? attribute->reals : fallback;
}

std::shared_ptr<const HostTensor> Node::attribute_tensor(std::string_view key) const
{
  auto* attribute = find_attribute(*this, key, Attribute::Kind::tensor);
  return attribute ? attribute->tensor : nullptr;
}

std::string Node::label() const
{
  return name.empty() ? op_type : fmt::format("{} '{}'", op_type, name);
}

} // namespace mlops::runtime
