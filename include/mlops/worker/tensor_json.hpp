#pragma once
// Tensors as JSON, in the Open Inference Protocol's shape: {"name", "datatype": "FP32",
// "shape": [2, 4], "data": [...]} with data flat in row-major order (nested lists are accepted
// on input and flattened). The worker's `run` verb and its HTTP API share these.

#include "mlops/runtime/executor.hpp"

#include <nlohmann/json.hpp>

namespace mlops::worker {

// "FP32", "INT64", "BOOL"... as the protocol names them.
std::string_view protocol_datatype(runtime::ElementType type);

struct TensorHeader
{
  std::string name;
  runtime::ElementType type;
  runtime::Shape shape;
};

// The name, datatype and shape of a tensor document (its data may be elsewhere, as with the
// binary extension). Throws Error(usage) naming `what` when they are missing or malformed.
TensorHeader tensor_header_from_json(const nlohmann::json& document, const std::string& what);

// Throws Error(usage) naming `what` when the document is not a tensor of a known type, or its
// data does not fill its shape.
runtime::NamedTensor tensor_from_json(const nlohmann::json& document, const std::string& what);
nlohmann::json tensor_to_json(const runtime::NamedTensor& tensor);

} // namespace mlops::worker
