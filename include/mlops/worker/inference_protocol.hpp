#pragma once
// The infer call of the Open Inference Protocol (KServe v2), as plain JSON or with Triton's binary
// tensor extension: the body starts with a JSON header of Inference-Header-Content-Length bytes,
// and each tensor whose parameters say {"binary_data_size": N} has its N raw bytes (little
// endian, row-major, BOOL as one byte) after the header, in the order the tensors are listed.
// Parsing and formatting are pure functions of bytes, so the fuzz target drives them directly.

#include "mlops/runtime/executor.hpp"

#include <nlohmann/json.hpp>

#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace mlops::worker {

struct RequestedOutput
{
  std::string name;
  bool binary = false;
};

struct InferRequest
{
  std::optional<std::string> id;         // echoed in the response
  std::vector<runtime::NamedTensor> inputs;
  std::vector<RequestedOutput> outputs;  // empty: every output of the model
  bool binary_outputs = false;           // parameters.binary_data_output: all outputs as binary
};

// `header_length` is the Inference-Header-Content-Length header, when the request had one.
// Throws Error(usage) saying what is wrong: not JSON, a malformed tensor, binary sizes that do
// not match the datatype and shape or the body.
InferRequest parse_infer_request(std::string_view body, std::optional<size_t> header_length);

struct InferResponse
{
  std::string body;
  std::optional<size_t> header_length;  // set when binary data follows the JSON header
};

// `outputs` are the model's outputs in its order; the response keeps the ones the request asked
// for, in the order it asked. Throws Error(usage) for an output the model does not have.
InferResponse make_infer_response(const std::string& model, const std::string& version, const InferRequest& request,
                                  std::vector<runtime::NamedTensor> outputs);

} // namespace mlops::worker
