// libFuzzer target: a router reads its backends' answers in whatever pieces the network delivers
// them. HttpResponseParser must never crash or hang, never consume more than it was given, leave
// nothing unconsumed while it waits for more, keep every body within its limit and give none to
// an answer that has none, and fail only with a message. Being a pure function of the bytes, it
// must give the same answers and the same end whether the connection's bytes arrive in pieces or
// in one.
//
// Input layout: bytes 0-3 are the sizes of the pieces, used in turn (each byte plus one, so 1 to
// 256 bytes); bit 0 of byte 4 says whether the answers are to HEAD requests; the rest is what the
// backend sends before it closes the connection. The body limit is small (4 KiB) so that inputs
// reach it.
#include "mlops/worker/http_message.hpp"

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace {

using namespace mlops::worker;
using Status = HttpResponseParser::Status;

constexpr size_t max_body_bytes = 4096;
constexpr size_t piece_size_bytes = 4;
constexpr size_t header_bytes = piece_size_bytes + 1;

struct Outcome
{
  std::vector<HttpAnswer> answers;
  Status status = Status::incomplete;
  std::string error_message;
};

bool has_no_body(const HttpAnswer& answer, bool head_request)
{
  return head_request || answer.status < 200 || answer.status == 204 || answer.status == 304;
}

// Takes the complete answer and readies the parser for the next one.
void take_answer(HttpResponseParser& parser, bool head_request, Outcome& outcome)
{
  auto answer = parser.take();
  if (answer.body.size() > max_body_bytes || (has_no_body(answer, head_request) && !answer.body.empty()) ||
      answer.status < 100 || answer.status > 599 || parser.started()) {
    __builtin_trap();
  }
  outcome.answers.push_back(std::move(answer));
  parser.expect(head_request);
}

// Feeds what has arrived and takes every complete answer; false once the parser fails.
bool feed_arrived(HttpResponseParser& parser, std::string_view& pending, bool head_request, Outcome& outcome)
{
  while (true) {
    std::string_view input = pending;
    outcome.status = parser.feed(input);
    // What is left must be the tail of what was given.
    if (input.size() > pending.size() || input.data() + input.size() != pending.data() + pending.size()) {
      __builtin_trap();
    }
    pending = input;
    if (outcome.status == Status::failed) {
      if (parser.error_message().empty()) {
        __builtin_trap();
      }
      outcome.error_message = parser.error_message();
      return false;
    }
    if (outcome.status == Status::incomplete) {
      if (!pending.empty()) {
        __builtin_trap();  // the caller would wait for bytes it already holds
      }
      return true;
    }
    take_answer(parser, head_request, outcome);
  }
}

// The connection's bytes in pieces of the given sizes, in turn (no sizes: in one piece), then the
// backend's close.
Outcome read_connection(std::string_view stream, std::span<const std::uint8_t> piece_sizes, bool head_request)
{
  HttpResponseParser parser(max_body_bytes);
  parser.expect(head_request);
  Outcome outcome;
  size_t next = 0;
  size_t arrived = 0;
  do {
    size_t piece = piece_sizes.empty() ? stream.size() : size_t{piece_sizes[next++ % piece_sizes.size()]} + 1;
    size_t start = arrived;
    arrived = std::min(stream.size(), arrived + piece);
    // Pending bytes are always consumed before the next piece arrives (see feed_arrived).
    std::string_view pending = stream.substr(start, arrived - start);
    if (!feed_arrived(parser, pending, head_request, outcome)) {
      return outcome;
    }
  } while (arrived < stream.size());

  bool started = parser.started();
  outcome.status = parser.finish_at_close();
  if (outcome.status == Status::complete) {
    if (!started) {
      __builtin_trap();  // nothing arrived, yet an answer is complete
    }
    take_answer(parser, head_request, outcome);
    if (outcome.answers.back().keep_alive) {
      __builtin_trap();  // an answer that ends with the connection cannot keep it
    }
  } else if (parser.error_message().empty()) {
    __builtin_trap();
  }
  outcome.error_message = parser.error_message();
  return outcome;
}

bool same_answer(const HttpAnswer& a, const HttpAnswer& b)
{
  return a.status == b.status && a.headers == b.headers && a.body == b.body && a.keep_alive == b.keep_alive;
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size)
{
  if (size < header_bytes) {
    return 0;
  }
  bool head_request = (data[piece_size_bytes] & 1) != 0;
  std::string_view stream(reinterpret_cast<const char*>(data) + header_bytes, size - header_bytes);
  auto in_pieces = read_connection(stream, std::span(data, piece_size_bytes), head_request);
  auto in_one = read_connection(stream, {}, head_request);
  if (in_pieces.status != in_one.status || in_pieces.error_message != in_one.error_message ||
      in_pieces.answers.size() != in_one.answers.size()) {
    __builtin_trap();
  }
  for (size_t i = 0; i < in_one.answers.size(); ++i) {
    if (!same_answer(in_pieces.answers[i], in_one.answers[i])) {
      __builtin_trap();
    }
  }
  return 0;
}
