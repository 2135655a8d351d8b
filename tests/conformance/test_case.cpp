#include "test_case.hpp"

#include "mlops/core/error.hpp"
#include "mlops/runtime/tensor.hpp"

#include <fmt/format.h>
#include <onnx/onnx_pb.h>  // defines ONNX_API, then includes onnx-ml.pb.h

#include <algorithm>
#include <fstream>
#include <set>

namespace fs = std::filesystem;

namespace mlops::conformance {
namespace {

void collect_operators(const onnx::GraphProto& graph, std::set<std::string>& operators)
{
  for (const auto& node : graph.node()) {
    bool default_domain = node.domain().empty() || node.domain() == "ai.onnx";
    operators.insert(default_domain ? node.op_type() : node.domain() + ":" + node.op_type());
    // If, Loop and Scan carry their bodies as attributes; their operators must be claimed too.
    for (const auto& attribute : node.attribute()) {
      if (attribute.has_g()) {
        collect_operators(attribute.g(), operators);
      }
      for (const auto& subgraph : attribute.graphs()) {
        collect_operators(subgraph, operators);
      }
    }
  }
}

// Why a graph input or output cannot be fed or compared as a runtime tensor, or "".
std::string unrunnable_value(const onnx::ValueInfoProto& value, std::string_view role)
{
  const auto& type = value.type();
  if (type.has_sequence_type()) {
    return fmt::format("{} '{}' is a sequence", role, value.name());
  }
  if (type.has_optional_type()) {
    return fmt::format("{} '{}' is an optional", role, value.name());
  }
  if (!type.has_tensor_type()) {
    return fmt::format("{} '{}' is not a tensor", role, value.name());
  }
  int element = type.tensor_type().elem_type();
  if (!runtime::is_known_element_type(element)) {
    auto name = onnx::TensorProto_DataType_IsValid(element)
                    ? onnx::TensorProto_DataType_Name(static_cast<onnx::TensorProto_DataType>(element))
                    : std::to_string(element);
    return fmt::format("{} '{}' has element type {}, which the runtime has no type for", role, value.name(), name);
  }
  return {};
}

std::string unrunnable_signature(const onnx::GraphProto& graph)
{
  std::set<std::string> initializers;
  for (const auto& initializer : graph.initializer()) {
    initializers.insert(initializer.name());
  }
  for (const auto& input : graph.input()) {
    if (!initializers.contains(input.name())) {
      if (auto why = unrunnable_value(input, "input"); !why.empty()) {
        return why;
      }
    }
  }
  for (const auto& output : graph.output()) {
    if (auto why = unrunnable_value(output, "output"); !why.empty()) {
      return why;
    }
  }
  return {};
}

// "input_0.pb", "input_1.pb"... while they exist: the backend tests number them densely.
std::vector<fs::path> numbered_files(const fs::path& folder, std::string_view prefix)
{
  std::vector<fs::path> files;
  for (int index = 0;; ++index) {
    auto path = folder / fmt::format("{}_{}.pb", prefix, index);
    if (!fs::exists(path)) {
      return files;
    }
    files.push_back(path);
  }
}

std::vector<DataSet> find_data_sets(const fs::path& case_folder)
{
  std::vector<DataSet> sets;
  for (int index = 0;; ++index) {
    auto folder = case_folder / fmt::format("test_data_set_{}", index);
    if (!fs::is_directory(folder)) {
      return sets;
    }
    sets.push_back(DataSet{folder, numbered_files(folder, "input"), numbered_files(folder, "output")});
  }
}

TestCase read_test_case(const fs::path& folder)
{
  TestCase test_case;
  test_case.name = fs::absolute(folder).lexically_normal().filename().string();
  if (test_case.name.empty()) {  // "cases/" ends in a separator
    test_case.name = fs::absolute(folder).lexically_normal().parent_path().filename().string();
  }
  test_case.model = folder / "model.onnx";
  std::ifstream in(test_case.model, std::ios::binary);
  onnx::ModelProto model;
  if (!in || !model.ParseFromIstream(&in)) {
    throw Error(ExitCode::integrity, fmt::format("{} is not an ONNX model", test_case.model.string()));
  }
  std::set<std::string> operators;
  collect_operators(model.graph(), operators);
  test_case.operators.assign(operators.begin(), operators.end());
  test_case.unrunnable = unrunnable_signature(model.graph());
  test_case.data_sets = find_data_sets(folder);
  return test_case;
}

} // namespace

std::vector<TestCase> find_test_cases(const fs::path& data)
{
  if (fs::exists(data / "model.onnx")) {
    return {read_test_case(data)};
  }
  std::vector<fs::path> folders;
  if (fs::is_directory(data)) {
    for (const auto& entry : fs::directory_iterator(data)) {
      if (fs::exists(entry.path() / "model.onnx")) {
        folders.push_back(entry.path());
      }
    }
  }
  if (folders.empty()) {
    throw Error(ExitCode::not_found,
                fmt::format("no test cases under {}: a case is a folder holding model.onnx "
                            "(Debian's libonnx-testdata installs them under /usr/share/libonnx-testdata)",
                            data.string()));
  }
  std::sort(folders.begin(), folders.end());
  std::vector<TestCase> cases;
  cases.reserve(folders.size());
  for (const auto& folder : folders) {
    cases.push_back(read_test_case(folder));
  }
  return cases;
}

} // namespace mlops::conformance
