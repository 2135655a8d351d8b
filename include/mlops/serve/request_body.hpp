#pragma once
// Bodies of Open Inference Protocol requests, built for people and scripts that have rows of
// numbers rather than protocol documents (`serve predict`, `serve load`).

#include <nlohmann/json.hpp>

#include <string>

namespace mlops::serve {

// From what a user gives: a whole request ({"inputs": [...]}, sent as is), one row ([1, 2, 3])
// or a list of rows ([[1, 2, 3], [4, 5, 6]]) for a model with one input. `metadata` is the
// worker's model metadata (inputs with datatype and shape). Throws Error(usage) saying which
// form was expected.
std::string infer_body(const nlohmann::json& given, const nlohmann::json& metadata);

// One row of zeros for every input (symbolic dimensions set to 1): the default load.
std::string default_infer_body(const nlohmann::json& metadata);

} // namespace mlops::serve
