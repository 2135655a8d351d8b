#pragma once
// HTTP/1.1 messages for the worker's own server: an incremental request parser and the head of a
// response. The parser is a pure function of the bytes fed to it, in whatever pieces they come,
// so the fuzz target drives it directly.
//
// What it accepts: a request line with HTTP/1.0 or HTTP/1.1, header fields (names case-
// insensitive), a body by Content-Length or by chunked transfer coding (chunk extensions and
// trailers are read and dropped), and `Expect: 100-continue`. What it refuses, with the status to
// answer: a malformed line or field, folded headers, a Content-Length that is not a number or
// that disagrees with another, Content-Length together with Transfer-Encoding (the ambiguity
// behind request smuggling) (400); transfer codings other than chunked (501); a head over
// max_head_bytes or more than 100 header fields (431); a body over max_body_bytes, as soon as
// that is certain (413); another HTTP version (505).

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace mlops::worker {

struct HttpRequest
{
  std::string method;
  std::string path;   // percent-decoded, without the query
  std::string query;  // after '?', as sent
  int minor_version = 1;
  std::vector<std::pair<std::string, std::string>> headers;  // names in lower case
  std::string body;
  bool keep_alive = true;  // HTTP/1.1 unless "Connection: close"; HTTP/1.0 only with keep-alive

  // The value of the first field with this lower-case name, or null.
  const std::string* header(std::string_view lower_name) const;
};

struct HttpLimits
{
  size_t max_head_bytes = 64 * 1024;
  size_t max_body_bytes = size_t{64} << 20;
};

class HttpRequestParser
{
public:
  enum class Status { incomplete, complete, failed };

  explicit HttpRequestParser(HttpLimits limits) : m_limits(limits) {}

  // Consumes bytes from the front of `input` up to the end of one request, and says whether the
  // request is complete. After `complete`, take() it; bytes after it stay in `input` (pipelining).
  // After `failed`, error_status() and error_message() say why; the connection cannot be resynced.
  Status feed(std::string_view& input);

  // The complete request; the parser starts over for the next one.
  HttpRequest take();

  // The head is in and the client waits for "100 Continue" before it sends the body.
  bool expects_continue() const { return m_expect_continue && m_state != State::head; }
  // Whether any byte of a request has been consumed and its end not yet reached.
  bool in_progress() const { return m_state != State::head || !m_head.empty(); }

  // What has been parsed of the current request (after `failed`, its header fields if they were
  // read, for the request id).
  const HttpRequest& request_so_far() const { return m_request; }

  int error_status() const { return m_error_status; }
  const std::string& error_message() const { return m_error_message; }

private:
  enum class State { head, body, chunk_size, chunk_data, chunk_end, trailers, done, failed };

  Status fail(int status, std::string message);
  Status parse_head();
  Status parse_chunk_size_line(std::string_view line);

  HttpLimits m_limits;
  State m_state = State::head;
  std::string m_head;   // request line and fields, until the blank line
  std::string m_line;   // a chunk-size or trailer line being collected
  HttpRequest m_request;
  size_t m_remaining = 0;  // body bytes (or the current chunk's) still to come
  size_t m_trailer_bytes = 0;
  bool m_expect_continue = false;
  int m_error_status = 0;
  std::string m_error_message;
};

// An answer from a backend, for the router. Backends are mlops workers, which always send a
// Content-Length; an answer without one ends when the backend closes (finish_at_close()).
// Chunked answers are refused (failed), as are heads over 64 KiB, bodies over the limit, and
// CR, LF or NUL inside a field value (the router passes fields on to its client, so they would
// inject header fields there).
struct HttpAnswer
{
  int status = 0;
  std::vector<std::pair<std::string, std::string>> headers;  // names in lower case
  std::string body;
  bool keep_alive = true;

  const std::string* header(std::string_view lower_name) const;
};

class HttpResponseParser
{
public:
  enum class Status { incomplete, complete, failed };

  explicit HttpResponseParser(size_t max_body_bytes) : m_max_body_bytes(max_body_bytes) {}

  // Before each answer: whether it answers a HEAD (which has no body whatever it says).
  void expect(bool head_request);
  // Consumes bytes from the front of `input`, as HttpRequestParser::feed.
  Status feed(std::string_view& input);
  // The backend closed: completes an answer that runs until the close; otherwise failed.
  Status finish_at_close();
  // Whether any byte of the current answer has arrived.
  bool started() const { return m_started; }

  HttpAnswer take();
  const std::string& error_message() const { return m_error_message; }

private:
  enum class State { head, body, until_close, done, failed };

  Status fail(std::string message);
  Status parse_head();

  size_t m_max_body_bytes;
  State m_state = State::head;
  std::string m_head;
  HttpAnswer m_answer;
  size_t m_remaining = 0;
  bool m_head_request = false;
  bool m_started = false;
  std::string m_error_message;
};

// "HTTP/1.1 200 OK\r\n..." up to and including the blank line, with Content-Type and
// Content-Length, the extra fields, and "Connection: close" when the connection ends after it.
std::string http_response_head(int status, std::string_view content_type, size_t content_length,
                               const std::vector<std::pair<std::string, std::string>>& fields, bool close);

std::string_view http_reason(int status);

} // namespace mlops::worker
