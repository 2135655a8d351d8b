// libFuzzer target: the bytes on a worker's connection are whatever a client sends, in whatever
// pieces the network delivers them. HttpRequestParser must never crash or hang, never consume
// more than it was given, leave nothing unconsumed while it waits for more, keep every body it
// accepts within max_body_bytes, and refuse only with 400, 413, 431, 501 or 505 and a message.
// Being a pure function of the bytes, it must give the same requests and the same final status
// whether the connection's bytes arrive in pieces or in one.
//
// Input layout: bytes 0-3 are the sizes of the pieces, used in turn (each byte plus one, so 1 to
// 256 bytes); the rest is what the client sends on the connection. The limits are small (1 KiB of
// head, 4 KiB of body) so that inputs reach them.
#include "mlops/worker/http_message.hpp"

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <span>
#include <string_view>
#include <vector>

namespace {

using namespace mlops::worker;
using Status = HttpRequestParser::Status;

constexpr HttpLimits limits{1024, 4096};
constexpr size_t piece_size_bytes = 4;

struct Outcome
{
  std::vector<HttpRequest> requests;
  Status status = Status::incomplete;
  int error_status = 0;
};

void check_failure(const HttpRequestParser& parser)
{
  int status = parser.error_status();
  if ((status != 400 && status != 413 && status != 431 && status != 501 && status != 505) ||
      parser.error_message().empty()) {
    __builtin_trap();
  }
}

// Feeds what has arrived and takes every complete request; false once the parser fails.
bool feed_arrived(HttpRequestParser& parser, std::string_view& pending, Outcome& outcome)
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
      check_failure(parser);
      outcome.error_status = parser.error_status();
      return false;
    }
    if (outcome.status == Status::incomplete) {
      if (!pending.empty()) {
        __builtin_trap();  // the caller would wait for bytes it already holds
      }
      return true;
    }
    auto request = parser.take();
    if (request.body.size() > limits.max_body_bytes || parser.in_progress()) {
      __builtin_trap();
    }
    outcome.requests.push_back(std::move(request));
  }
}

// The connection's bytes in pieces of the given sizes, in turn; no sizes: in one piece.
Outcome parse_connection(std::string_view stream, std::span<const std::uint8_t> piece_sizes)
{
  HttpRequestParser parser(limits);
  Outcome outcome;
  size_t next = 0;
  size_t arrived = 0;
  do {
    size_t piece = piece_sizes.empty() ? stream.size() : size_t{piece_sizes[next++ % piece_sizes.size()]} + 1;
    size_t start = arrived;
    arrived = std::min(stream.size(), arrived + piece);
    // Pending bytes are always consumed before the next piece arrives (see feed_arrived).
    std::string_view pending = stream.substr(start, arrived - start);
    if (!feed_arrived(parser, pending, outcome)) {
      break;
    }
  } while (arrived < stream.size());
  return outcome;
}

bool same_request(const HttpRequest& a, const HttpRequest& b)
{
  return a.method == b.method && a.path == b.path && a.query == b.query && a.minor_version == b.minor_version &&
         a.headers == b.headers && a.body == b.body && a.keep_alive == b.keep_alive;
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size)
{
  if (size < piece_size_bytes) {
    return 0;
  }
  std::string_view stream(reinterpret_cast<const char*>(data) + piece_size_bytes, size - piece_size_bytes);
  auto in_pieces = parse_connection(stream, std::span(data, piece_size_bytes));
  auto in_one = parse_connection(stream, {});
  if (in_pieces.status != in_one.status || in_pieces.error_status != in_one.error_status ||
      in_pieces.requests.size() != in_one.requests.size()) {
    __builtin_trap();
  }
  for (size_t i = 0; i < in_one.requests.size(); ++i) {
    if (!same_request(in_pieces.requests[i], in_one.requests[i])) {
      __builtin_trap();
    }
  }
  return 0;
}
