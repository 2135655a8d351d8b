#include "mlops/serve/request_body.hpp"

#include "mlops/core/error.hpp"

#include <fmt/format.h>

namespace mlops::serve {

namespace {

const nlohmann::json& model_inputs(const nlohmann::json& metadata)
{
  static const nlohmann::json none = nlohmann::json::array();
  auto inputs = metadata.find("inputs");
  return inputs != metadata.end() && inputs->is_array() ? *inputs : none;
}

void flatten_row(const nlohmann::json& value, nlohmann::json& out, const std::string& where, int depth = 0)
{
  if (depth > 64) {
    throw Error(ExitCode::usage, fmt::format("{} nests lists more than 64 deep", where));
  }
  if (value.is_array()) {
    for (const auto& item : value) {
      flatten_row(item, out, where, depth + 1);
    }
  } else if (value.is_number() || value.is_boolean()) {
    out.push_back(value);
  } else {
    throw Error(ExitCode::usage, fmt::format("{} holds {}, not a number", where, value.is_primitive() ? value.dump() : std::string("an ") + value.type_name()));
  }
}

} // namespace

std::string infer_body(const nlohmann::json& given, const nlohmann::json& metadata)
{
  if (given.is_object() && given.contains("inputs")) {
    return given.dump();
  }
  const auto& inputs = model_inputs(metadata);
  if (!given.is_array() || given.empty()) {
    throw Error(ExitCode::usage, "the input must be an inference request {\"inputs\": [...]}, a row [1, 2, 3], or "
                                 "a list of rows [[1, 2, 3], [4, 5, 6]]");
  }
  if (inputs.size() != 1) {
    throw Error(ExitCode::usage, fmt::format("the model takes {} inputs, so rows cannot say which is which: give a "
                                             "whole request {{\"inputs\": [...]}}",
                                             inputs.size()));
  }
  const auto& input = inputs[0];
  bool one_row = std::none_of(given.begin(), given.end(), [](const auto& item) { return item.is_array(); });
  nlohmann::json rows = one_row ? nlohmann::json::array({given}) : given;
  nlohmann::json data = nlohmann::json::array();
  size_t row_size = 0;
  for (size_t i = 0; i < rows.size(); ++i) {
    auto before = data.size();
    flatten_row(rows[i], data, fmt::format("row {}", i + 1));
    auto size = data.size() - before;
    if (i > 0 && size != row_size) {
      throw Error(ExitCode::usage, fmt::format("row {} has {} values but row 1 has {}", i + 1, size, row_size));
    }
    row_size = size;
  }
  // The row's shape: the model's dimensions after the batch, when they are all fixed; else flat.
  nlohmann::json shape = nlohmann::json::array({rows.size()});
  const auto& dims = input.value("shape", nlohmann::json::array());
  bool fixed = dims.size() > 1 && std::all_of(dims.begin() + 1, dims.end(), [](const auto& d) { return d.template get<std::int64_t>() >= 0; });
  if (fixed) {
    for (auto d = dims.begin() + 1; d != dims.end(); ++d) {
      shape.push_back(*d);
    }
  } else {
    shape.push_back(row_size);
  }
  nlohmann::json request = {
    {"inputs", {{{"name", input.value("name", "")}, {"datatype", input.value("datatype", "FP32")}, {"shape", shape},
                 {"data", data}}}}};
  return request.dump();
}

std::string default_infer_body(const nlohmann::json& metadata)
{
  nlohmann::json request = {{"inputs", nlohmann::json::array()}};
  for (const auto& input : model_inputs(metadata)) {
    nlohmann::json shape = nlohmann::json::array();
    std::int64_t count = 1;
    for (const auto& dim : input.value("shape", nlohmann::json::array())) {
      auto size = std::max<std::int64_t>(dim.get<std::int64_t>(), 1);
      shape.push_back(size);
      count *= size;
    }
    auto datatype = input.value("datatype", "FP32");
    nlohmann::json data = nlohmann::json::array();
    for (std::int64_t i = 0; i < count; ++i) {
      data.push_back(datatype == "BOOL" ? nlohmann::json(false) : nlohmann::json(0));
    }
    request["inputs"].push_back({{"name", input.value("name", "")}, {"datatype", datatype}, {"shape", shape}, {"data", data}});
  }
  return request.dump();
}

} // namespace mlops::serve
