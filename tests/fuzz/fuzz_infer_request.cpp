// libFuzzer target: an inference request's body and its Inference-Header-Content-Length header
// are whatever a client sends. parse_infer_request must give a request or an mlops::Error, never
// a crash, a hang or another exception; a request it accepts must be answerable:
// make_infer_response, given the inputs back as the model's outputs, formats them (JSON or binary)
// or refuses an output name with an mlops::Error.
//
// Input layout: byte 0 says whether there is a header (odd: yes), byte 1 is its value as an offset
// from the body's length (so that the header can fall inside, at the end of, or past the body);
// the rest is the body.
#include "mlops/core/error.hpp"
#include "mlops/worker/inference_protocol.hpp"

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string_view>

namespace {

using namespace mlops::worker;

std::optional<size_t> header_length(std::uint8_t mode, std::uint8_t offset, size_t body_size)
{
  if ((mode & 1) == 0) {
    return std::nullopt;
  }
  // 0..127 bytes before the body's end, or 1..128 past it (the header lies about the body).
  if (offset < 128) {
    return offset <= body_size ? body_size - offset : 0;
  }
  return body_size + (offset - 127);
}

void answer(const InferRequest& request)
{
  std::vector<mlops::runtime::NamedTensor> outputs = request.inputs;
  InferResponse response;
  try {
    response = make_infer_response("fuzz", "1", request, std::move(outputs));
  } catch (const mlops::Error&) {
    return;  // an output the "model" does not have
  }
  // A binary answer's header is the JSON part: never past the body's end.
  if (response.header_length && *response.header_length > response.body.size()) {
    __builtin_trap();
  }
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size)
{
  if (size < 2) {
    return 0;
  }
  std::string_view body(reinterpret_cast<const char*>(data) + 2, size - 2);
  InferRequest request;
  try {
    request = parse_infer_request(body, header_length(data[0], data[1], body.size()));
  } catch (const mlops::Error&) {
    return 0;  // a refusal with a message is the right answer to bad bytes
  }
  answer(request);
  return 0;
}
