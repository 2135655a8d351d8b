#pragma once
// The cases of ONNX's backend-test layout: a folder holding model.onnx and test_data_set_N
// folders of input_N.pb and output_N.pb (serialized TensorProtos). What the runner must know about
// a model before running it (its operators, whether its signature holds only tensors) is read
// here from the ONNX file itself, not from the runtime under test.

#include <algorithm>
#include <filesystem>
#include <string>
#include <vector>

namespace mlops::conformance {

struct DataSet
{
  std::filesystem::path folder;
  std::vector<std::filesystem::path> inputs;   // input_0.pb, input_1.pb... in order
  // output_0.pb...; none in cases made only to compare devices (tests/cuda_emulation), whose
  // outputs are checked against the other device's.
  std::vector<std::filesystem::path> outputs;
};

struct TestCase
{
  std::string name;  // the folder's name: "test_conv_with_strides_padding"
  std::filesystem::path model;
  // Every operator of the graph and its subgraphs, sorted, without duplicates. Operators of
  // another domain than ONNX's default are written "domain:op_type", so no runtime claims them.
  std::vector<std::string> operators;
  // Why the runner cannot check this case whatever the runtime does (an input or output that is
  // a sequence, an optional, or of an element type the runtime has no name for); "" when it can.
  std::string unrunnable;
  std::vector<DataSet> data_sets;

  bool has_expected_outputs() const
  {
    return std::any_of(data_sets.begin(), data_sets.end(), [](const DataSet& set) { return !set.outputs.empty(); });
  }
};

// `data` is one case (it holds model.onnx) or a folder of cases, found in name order. Throws
// Error(not_found) when there is no case there and Error(integrity) for a model.onnx that is not
// an ONNX model.
std::vector<TestCase> find_test_cases(const std::filesystem::path& data);

} // namespace mlops::conformance
