#include "mlops/worker/inference_protocol.hpp"

#include "mlops/core/error.hpp"
#include "mlops/worker/tensor_json.hpp"

#include <fmt/format.h>

#include <algorithm>

namespace mlops::worker {

namespace {

// parameters.<key> of a request or tensor document, when present.
const nlohmann::json* parameter(const nlohmann::json& document, const char* key)
{
  auto parameters = document.find("parameters");
  if (parameters == document.end() || !parameters->is_object()) {
    return nullptr;
  }
  auto found = parameters->find(key);
  return found == parameters->end() ? nullptr : &*found;
}

bool flag(const nlohmann::json& document, const char* key)
{
  const auto* value = parameter(document, key);
  return value && value->is_boolean() && value->get<bool>();
}

runtime::NamedTensor binary_tensor(const nlohmann::json& document, const std::string& what, const nlohmann::json& size,
                                   std::string_view& binary)
{
  auto header = tensor_header_from_json(document, what);
  if (!size.is_number_unsigned()) {
    throw Error(ExitCode::usage, fmt::format("{}: binary_data_size must be a non-negative integer", what));
  }
  auto bytes = size.get<std::uint64_t>();
  auto needed = static_cast<std::uint64_t>(runtime::element_count(header.shape)) * runtime::element_size(header.type);
  if (bytes != needed) {
    throw Error(ExitCode::usage, fmt::format("{}: binary_data_size is {} bytes, but {} of shape {} takes {}", what,
                                             bytes, protocol_datatype(header.type), runtime::shape_text(header.shape),
                                             needed));
  }
  if (bytes > binary.size()) {
    throw Error(ExitCode::usage, fmt::format("{}: the body ends {} bytes before this tensor's binary data does", what,
                                             bytes - binary.size()));
  }
  runtime::NamedTensor tensor{header.name, runtime::HostTensor::from_bytes(header.type, header.shape,
                                                                           binary.substr(0, bytes))};
  binary.remove_prefix(bytes);
  return tensor;
}

} // namespace

InferRequest parse_infer_request(std::string_view body, std::optional<size_t> header_length)
{
  if (header_length && *header_length > body.size()) {
    throw Error(ExitCode::usage, fmt::format("Inference-Header-Content-Length is {}, but the body has only {} bytes",
                                             *header_length, body.size()));
  }
  std::string_view json_part = body.substr(0, header_length.value_or(body.size()));
  std::string_view binary = body.substr(json_part.size());
  auto document = nlohmann::json::parse(json_part, nullptr, false);
  // The parser stops at a NUL byte; what follows it would otherwise be silently ignored.
  if (document.is_discarded() || json_part.find('\0') != std::string_view::npos) {
    throw Error(ExitCode::usage, header_length ? "the request's header (its first Inference-Header-Content-Length "
                                                 "bytes) is not valid JSON"
                                               : "the request body is not valid JSON");
  }
  auto inputs = document.is_object() ? document.find("inputs") : document.end();
  if (!document.is_object() || inputs == document.end() || !inputs->is_array()) {
    throw Error(ExitCode::usage, "an inference request is a JSON object with \"inputs\": [{\"name\", \"datatype\", "
                                 "\"shape\", \"data\"}, ...]");
  }
  InferRequest request;
  if (auto id = document.find("id"); id != document.end()) {
    if (!id->is_string()) {
      throw Error(ExitCode::usage, "the request's \"id\" must be a string");
    }
    request.id = id->get<std::string>();
  }
  request.binary_outputs = flag(document, "binary_data_output");
  for (size_t i = 0; i < inputs->size(); ++i) {
    const auto& input = (*inputs)[i];
    auto what = fmt::format("inputs[{}]", i);
    const auto* size = input.is_object() ? parameter(input, "binary_data_size") : nullptr;
    request.inputs.push_back(size ? binary_tensor(input, what, *size, binary) : tensor_from_json(input, what));
  }
  if (!binary.empty()) {
    throw Error(ExitCode::usage, fmt::format("the body has {} bytes of binary data that no input claims (each binary "
                                             "input says its binary_data_size)",
                                             binary.size()));
  }
  if (auto outputs = document.find("outputs"); outputs != document.end()) {
    if (!outputs->is_array()) {
      throw Error(ExitCode::usage, "the request's \"outputs\" must be a list of {\"name\": ...}");
    }
    for (const auto& output : *outputs) {
      auto name = output.is_object() ? output.find("name") : output.end();
      if (!output.is_object() || name == output.end() || !name->is_string()) {
        throw Error(ExitCode::usage, "each requested output must be an object with a \"name\"");
      }
      request.outputs.push_back({name->get<std::string>(), flag(output, "binary_data")});
    }
  }
  return request;
}

InferResponse make_infer_response(const std::string& model, const std::string& version, const InferRequest& request,
                                  std::vector<runtime::NamedTensor> outputs)
{
  std::vector<RequestedOutput> wanted = request.outputs;
  if (wanted.empty()) {
    for (const auto& output : outputs) {
      wanted.push_back({output.name, false});
    }
  }
  nlohmann::json document = {{"model_name", model}, {"model_version", version}};
  if (request.id) {
    document["id"] = *request.id;
  }
  document["outputs"] = nlohmann::json::array();
  std::string binary;
  for (const auto& want : wanted) {
    auto found = std::find_if(outputs.begin(), outputs.end(), [&](const auto& output) { return output.name == want.name; });
    if (found == outputs.end()) {
      std::vector<std::string> names;
      for (const auto& output : outputs) {
        names.push_back(output.name);
      }
      throw Error(ExitCode::usage, fmt::format("{} has no output named '{}'; its outputs are {}", model, want.name,
                                               fmt::join(names, ", ")));
    }
    if (want.binary || request.binary_outputs) {
      const auto& host = found->tensor;
      document["outputs"].push_back({{"name", found->name},
                                     {"datatype", protocol_datatype(host.type)},
                                     {"shape", host.shape},
                                     {"parameters", {{"binary_data_size", host.bytes.size()}}}});
      binary.append(reinterpret_cast<const char*>(host.bytes.data()), host.bytes.size());
    } else {
      document["outputs"].push_back(tensor_to_json(*found));
    }
  }
  InferResponse response{document.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace), std::nullopt};
  if (!binary.empty() || std::any_of(wanted.begin(), wanted.end(), [&](const auto& w) { return w.binary; }) ||
      request.binary_outputs) {
    response.header_length = response.body.size();
    response.body += binary;
  }
  return response;
}

} // namespace mlops::worker
