#include "mlops/worker/http_message.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <charconv>

namespace mlops::worker {

namespace {

constexpr std::string_view crlf = "\r\n";
constexpr size_t max_fields = 100;
constexpr size_t max_chunk_line = 1024;

char lower(char c)
{
  return c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c;
}

std::string lowered(std::string_view text)
{
  std::string out(text);
  std::transform(out.begin(), out.end(), out.begin(), lower);
  return out;
}

bool equals_ignoring_case(std::string_view a, std::string_view b)
{
  return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) { return lower(x) == lower(y); });
}

// RFC 9110's tchar: what a method or a field name is made of.
bool is_token_char(char c)
{
  return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
         std::string_view("!#$%&'*+-.^_`|~").find(c) != std::string_view::npos;
}

bool is_token(std::string_view text)
{
  return !text.empty() && std::all_of(text.begin(), text.end(), is_token_char);
}

std::string_view trim(std::string_view text)
{
  while (!text.empty() && (text.front() == ' ' || text.front() == '\t')) {
    text.remove_prefix(1);
  }
  while (!text.empty() && (text.back() == ' ' || text.back() == '\t')) {
    text.remove_suffix(1);
  }
  return text;
}

int hex_value(char c)
{
  if (c >= '0' && c <= '9') {
    return c - '0';
  }
  c = lower(c);
  return c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

std::optional<std::string> percent_decoded(std::string_view text)
{
  std::string out;
  out.reserve(text.size());
  for (size_t i = 0; i < text.size(); ++i) {
    if (text[i] != '%') {
      out += text[i];
      continue;
    }
    if (i + 2 >= text.size()) {
      return std::nullopt;
    }
    int high = hex_value(text[i + 1]);
    int low = hex_value(text[i + 2]);
    if (high < 0 || low < 0 || (high == 0 && low == 0)) {
      return std::nullopt;  // not a %XX escape, or a NUL
    }
    out += static_cast<char>(high * 16 + low);
    i += 2;
  }
  return out;
}

// Each comma-separated element of a field value, trimmed.
template <class Visit> void for_each_element(std::string_view value, Visit visit)
{
  while (true) {
    auto comma = value.find(',');
    visit(trim(value.substr(0, comma)));
    if (comma == std::string_view::npos) {
      return;
    }
    value.remove_prefix(comma + 1);
  }
}

const std::string* find_field(const std::vector<std::pair<std::string, std::string>>& fields, std::string_view lower_name)
{
  for (const auto& [name, value] : fields) {
    if (name == lower_name) {
      return &value;
    }
  }
  return nullptr;
}

} // namespace

const std::string* HttpRequest::header(std::string_view lower_name) const
{
  return find_field(headers, lower_name);
}

const std::string* HttpAnswer::header(std::string_view lower_name) const
{
  return find_field(headers, lower_name);
}

HttpRequestParser::Status HttpRequestParser::fail(int status, std::string message)
{
  m_state = State::failed;
  m_error_status = status;
  m_error_message = std::move(message);
  return Status::failed;
}

HttpRequestParser::Status HttpRequestParser::feed(std::string_view& input)
{
  while (true) {
    switch (m_state) {
    case State::head: {
      // Empty lines before a request line are tolerated (RFC 9112, 2.2).
      while (m_head.empty() && !input.empty() && (input.front() == '\r' || input.front() == '\n')) {
        input.remove_prefix(1);
      }
      if (input.empty()) {
        return Status::incomplete;
      }
      size_t old_size = m_head.size();
      size_t room = m_limits.max_head_bytes + 4 - std::min(old_size, m_limits.max_head_bytes + 4);
      m_head.append(input.substr(0, room));
      auto end = m_head.find("\r\n\r\n", old_size >= 3 ? old_size - 3 : 0);
      if (end == std::string::npos || end + 4 > m_limits.max_head_bytes) {
        if (m_head.size() > m_limits.max_head_bytes) {
          return fail(431, fmt::format("the request line and header fields are longer than {} bytes",
                                       m_limits.max_head_bytes));
        }
        input.remove_prefix(std::min(room, input.size()));
        return Status::incomplete;
      }
      input.remove_prefix(end + 4 - old_size);
      m_head.resize(end + 2);  // keep the last field's CRLF
      if (auto status = parse_head(); status == Status::failed) {
        return status;
      }
      break;
    }
    case State::body:
    case State::chunk_data: {
      auto piece = input.substr(0, m_remaining);
      m_request.body.append(piece);
      input.remove_prefix(piece.size());
      m_remaining -= piece.size();
      if (m_remaining > 0) {
        return Status::incomplete;
      }
      m_state = m_state == State::body ? State::done : State::chunk_end;
      break;
    }
    case State::chunk_size:
    case State::chunk_end:
    case State::trailers: {
      auto newline = input.find('\n');
      size_t limit = m_state == State::trailers ? m_limits.max_head_bytes : max_chunk_line;
      if (m_line.size() + std::min(newline, input.size()) > limit) {
        return fail(m_state == State::trailers ? 431 : 400, "a chunk-size line or a trailer field is too long");
      }
      if (newline == std::string_view::npos) {
        m_line.append(input);
        input.remove_prefix(input.size());
        return Status::incomplete;
      }
      m_line.append(input.substr(0, newline));
      input.remove_prefix(newline + 1);
      if (!m_line.empty() && m_line.back() == '\r') {
        m_line.pop_back();
      }
      std::string line = std::move(m_line);
      m_line.clear();
      if (m_state == State::chunk_size) {
        if (auto status = parse_chunk_size_line(line); status == Status::failed) {
          return status;
        }
      } else if (m_state == State::chunk_end) {
        if (!line.empty()) {
          return fail(400, "a chunk's data is longer than its size says");
        }
        m_state = State::chunk_size;
      } else if (line.empty()) {
        m_state = State::done;  // the trailer fields are read and dropped
      } else if ((m_trailer_bytes += line.size() + 2) > m_limits.max_head_bytes) {
        return fail(431, fmt::format("the trailer fields are longer than {} bytes", m_limits.max_head_bytes));
      }
      break;
    }
    case State::done: return Status::complete;
    case State::failed: return Status::failed;
    }
  }
}

HttpRequestParser::Status HttpRequestParser::parse_chunk_size_line(std::string_view line)
{
  size_t size = 0;
  auto [end, problem] = std::from_chars(line.data(), line.data() + line.size(), size, 16);
  auto rest = trim(std::string_view(end, static_cast<size_t>(line.data() + line.size() - end)));
  if (problem != std::errc() || line.empty() || hex_value(line.front()) < 0 || (!rest.empty() && rest.front() != ';')) {
    return fail(400, fmt::format("'{}' is not a chunk size", line.substr(0, 40)));
  }
  if (size > m_limits.max_body_bytes - m_request.body.size()) {
    return fail(413, "the request body is larger than the worker's limit (--max-body-bytes)");
  }
  m_remaining = size;
  m_state = size == 0 ? State::trailers : State::chunk_data;
  return Status::incomplete;
}

HttpRequestParser::Status HttpRequestParser::parse_head()
{
  std::string_view head = m_head;
  auto line_end = head.find(crlf);
  std::string_view request_line = head.substr(0, line_end);
  head.remove_prefix(line_end + 2);

  auto first_space = request_line.find(' ');
  auto last_space = request_line.rfind(' ');
  if (first_space == std::string_view::npos || first_space == last_space) {
    return fail(400, "the request line is not 'METHOD TARGET HTTP/1.1'");
  }
  auto method = request_line.substr(0, first_space);
  auto target = request_line.substr(first_space + 1, last_space - first_space - 1);
  auto version = request_line.substr(last_space + 1);
  if (!is_token(method) || target.empty() ||
      target.find_first_of(std::string_view(" \r\n\0", 4)) != std::string_view::npos) {
    return fail(400, "the request line is not 'METHOD TARGET HTTP/1.1'");
  }
  if (version == "HTTP/1.1" || version == "HTTP/1.0") {
    m_request.minor_version = version.back() - '0';
  } else if (version.size() == 8 && version.substr(0, 5) == "HTTP/" && version[6] == '.') {
    return fail(505, fmt::format("{} is not supported; send HTTP/1.1", version));
  } else {
    return fail(400, "the request line is not 'METHOD TARGET HTTP/1.1'");
  }
  // The absolute form (what a client sends to a proxy) names the same path after the authority.
  if (auto scheme = target.find("://"); target.front() != '/' && scheme != std::string_view::npos) {
    auto path_start = target.find('/', scheme + 3);
    target = path_start == std::string_view::npos ? std::string_view("/") : target.substr(path_start);
  }
  if (target.front() != '/') {
    return fail(400, fmt::format("the request target '{}' is not a path", target.substr(0, 80)));
  }
  auto question = target.find('?');
  auto path = percent_decoded(target.substr(0, question));
  if (!path) {
    return fail(400, "the request path has a malformed %-escape");
  }
  m_request.method = method;
  m_request.path = std::move(*path);
  m_request.query = question == std::string_view::npos ? "" : target.substr(question + 1);

  std::optional<size_t> content_length;
  bool chunked = false;
  bool has_transfer_encoding = false;
  bool close_asked = false;
  bool keep_alive_asked = false;
  while (!head.empty()) {
    line_end = head.find(crlf);
    auto line = head.substr(0, line_end);
    head.remove_prefix(line_end + 2);
    if (line.front() == ' ' || line.front() == '\t') {
      return fail(400, "folded header fields are not accepted");
    }
    auto colon = line.find(':');
    if (colon == std::string_view::npos || !is_token(line.substr(0, colon))) {
      return fail(400, fmt::format("'{}' is not a header field", line.substr(0, 80)));
    }
    if (m_request.headers.size() == max_fields) {
      return fail(431, fmt::format("the request has more than {} header fields", max_fields));
    }
    auto name = lowered(line.substr(0, colon));
    auto value = trim(line.substr(colon + 1));
    if (value.find_first_of(std::string_view("\r\n\0", 3)) != std::string_view::npos) {
      return fail(400, fmt::format("the header field '{}' holds a line break or a NUL", name));
    }
    if (name == "content-length") {
      size_t length = 0;
      auto [end, problem] = std::from_chars(value.data(), value.data() + value.size(), length);
      if (problem != std::errc() || end != value.data() + value.size() || value.empty()) {
        return fail(400, fmt::format("Content-Length '{}' is not a byte count", value.substr(0, 40)));
      }
      if (content_length && *content_length != length) {
        return fail(400, "the request has two different Content-Lengths");
      }
      content_length = length;
    } else if (name == "transfer-encoding") {
      has_transfer_encoding = true;
      bool unknown = false;
      for_each_element(value, [&](std::string_view coding) {
        chunked = equals_ignoring_case(coding, "chunked");
        unknown = unknown || !chunked;
      });
      if (unknown || !chunked) {
        return fail(501, fmt::format("the transfer coding '{}' is not supported; send chunked or a Content-Length",
                                     value.substr(0, 40)));
      }
    } else if (name == "connection") {
      for_each_element(value, [&](std::string_view option) {
        close_asked = close_asked || equals_ignoring_case(option, "close");
        keep_alive_asked = keep_alive_asked || equals_ignoring_case(option, "keep-alive");
      });
    } else if (name == "expect") {
      // An HTTP/1.0 client cannot know the interim answer (RFC 9110, 10.1.1).
      m_expect_continue = m_request.minor_version == 1 && equals_ignoring_case(value, "100-continue");
    }
    m_request.headers.emplace_back(std::move(name), std::string(value));
  }
  if (has_transfer_encoding && content_length) {
    return fail(400, "the request has both Content-Length and Transfer-Encoding");
  }
  if (has_transfer_encoding && m_request.minor_version == 0) {
    return fail(400, "HTTP/1.0 has no Transfer-Encoding; send a Content-Length");
  }
  // "close" wins over "keep-alive"; without either, HTTP/1.1 keeps the connection and 1.0 does not.
  m_request.keep_alive = !close_asked && (m_request.minor_version == 1 || keep_alive_asked);
  m_head.clear();
  if (chunked) {
    m_state = State::chunk_size;
  } else if (content_length.value_or(0) > m_limits.max_body_bytes) {
    return fail(413, "the request body is larger than the worker's limit (--max-body-bytes)");
  } else if (content_length.value_or(0) > 0) {
    m_remaining = *content_length;
    m_request.body.reserve(std::min<size_t>(m_remaining, size_t{1} << 20));
    m_state = State::body;
  } else {
    m_state = State::done;
  }
  return Status::incomplete;
}

HttpRequest HttpRequestParser::take()
{
  HttpRequest request = std::move(m_request);
  m_request = HttpRequest();
  m_state = State::head;
  m_head.clear();
  m_line.clear();
  m_remaining = 0;
  m_expect_continue = false;
  m_trailer_bytes = 0;
  return request;
}

// HttpResponseParser ------------------------------------------------------------------------------

void HttpResponseParser::expect(bool head_request)
{
  m_head_request = head_request;
}

HttpResponseParser::Status HttpResponseParser::fail(std::string message)
{
  m_state = State::failed;
  m_error_message = std::move(message);
  return Status::failed;
}

HttpResponseParser::Status HttpResponseParser::feed(std::string_view& input)
{
  m_started = m_started || !input.empty();
  switch (m_state) {
  case State::head: {
    constexpr size_t max_head = 64 * 1024;
    size_t old_size = m_head.size();
    m_head.append(input.substr(0, max_head + 4 - std::min(old_size, max_head + 4)));
    auto end = m_head.find("\r\n\r\n", old_size >= 3 ? old_size - 3 : 0);
    // The limit counts the blank line, so that where the pieces break cannot change the outcome.
    if (end == std::string::npos || end + 4 > max_head) {
      if (m_head.size() > max_head) {
        return fail(fmt::format("the backend's answer has a head longer than {} bytes", max_head));
      }
      input.remove_prefix(input.size());
      return Status::incomplete;
    }
    input.remove_prefix(end + 4 - old_size);
    m_head.resize(end + 2);
    if (auto status = parse_head(); status != Status::incomplete) {
      return status;
    }
    return feed(input);
  }
  case State::body: {
    auto piece = input.substr(0, m_remaining);
    m_answer.body.append(piece);
    input.remove_prefix(piece.size());
    m_remaining -= piece.size();
    if (m_remaining > 0) {
      return Status::incomplete;
    }
    m_state = State::done;
    return Status::complete;
  }
  case State::until_close:
    if (m_answer.body.size() + input.size() > m_max_body_bytes) {
      return fail("the backend's answer is larger than the limit");
    }
    m_answer.body.append(input);
    input.remove_prefix(input.size());
    return Status::incomplete;
  case State::done: return Status::complete;
  case State::failed: return Status::failed;
  }
  return Status::failed;
}

HttpResponseParser::Status HttpResponseParser::finish_at_close()
{
  if (m_state == State::until_close) {
    m_state = State::done;
    m_answer.keep_alive = false;
    return Status::complete;
  }
  if (m_state == State::done) {
    return Status::complete;
  }
  return fail(m_started ? "the backend closed the connection in the middle of its answer"
                        : "the backend closed the connection without answering");
}

HttpResponseParser::Status HttpResponseParser::parse_head()
{
  std::string_view head = m_head;
  auto line_end = head.find(crlf);
  auto status_line = head.substr(0, line_end);
  head.remove_prefix(line_end + 2);
  // HTTP/1.x NNN reason
  if (status_line.size() < 12 || status_line.substr(0, 7) != "HTTP/1." || (status_line[7] != '0' && status_line[7] != '1') ||
      status_line[8] != ' ' ||
      (status_line.size() > 12 && status_line[12] != ' ')) {
    return fail(fmt::format("'{}' is not an HTTP/1.x status line", status_line.substr(0, 80)));
  }
  auto [end, problem] = std::from_chars(status_line.data() + 9, status_line.data() + 12, m_answer.status);
  if (problem != std::errc() || end != status_line.data() + 12 || m_answer.status < 100 || m_answer.status > 599) {
    return fail(fmt::format("'{}' is not an HTTP/1.x status line", status_line.substr(0, 80)));
  }
  bool http_1_0 = status_line[7] == '0';
  std::optional<size_t> content_length;
  bool close_said = false;
  bool keep_alive_said = false;
  while (!head.empty()) {
    line_end = head.find(crlf);
    auto line = head.substr(0, line_end);
    head.remove_prefix(line_end + 2);
    auto colon = line.find(':');
    if (colon == std::string_view::npos || !is_token(line.substr(0, colon)) || m_answer.headers.size() == max_fields) {
      return fail(fmt::format("the backend's answer has a malformed header field '{}'", line.substr(0, 80)));
    }
    auto name = lowered(line.substr(0, colon));
    auto value = trim(line.substr(colon + 1));
    // The router passes the fields on to its client: a line break would add fields of its own.
    if (value.find_first_of(std::string_view("\r\n\0", 3)) != std::string_view::npos) {
      return fail(fmt::format("the backend's header field '{}' holds a line break or a NUL", name.substr(0, 80)));
    }
    if (name == "content-length") {
      size_t length = 0;
      auto [value_end, bad] = std::from_chars(value.data(), value.data() + value.size(), length);
      if (bad != std::errc() || value_end != value.data() + value.size() || value.empty() ||
          (content_length && *content_length != length)) {
        return fail(fmt::format("the backend's Content-Length '{}' is not one byte count", value.substr(0, 40)));
      }
      content_length = length;
    } else if (name == "transfer-encoding") {
      return fail("the backend sent a Transfer-Encoding; the router takes answers with a Content-Length");
    } else if (name == "connection") {
      for_each_element(value, [&](std::string_view option) {
        close_said = close_said || equals_ignoring_case(option, "close");
        keep_alive_said = keep_alive_said || equals_ignoring_case(option, "keep-alive");
      });
    }
    m_answer.headers.emplace_back(std::move(name), std::string(value));
  }
  m_head.clear();
  if (m_answer.status == 101) {
    return fail("the backend switched protocols (101); the router relays HTTP/1.1 answers only");
  }
  if (m_answer.status < 200) {
    // An interim answer (100 Continue, 103 Early Hints): the final one follows on the same connection.
    m_answer = {};
    return Status::incomplete;
  }
  m_answer.keep_alive = !close_said && (!http_1_0 || keep_alive_said);
  bool no_body = m_head_request || m_answer.status == 204 || m_answer.status == 304;
  if (no_body || content_length == size_t{0}) {
    m_state = State::done;
    return Status::complete;
  }
  if (!content_length) {
    m_answer.keep_alive = false;
    m_state = State::until_close;
    return Status::incomplete;
  }
  if (*content_length > m_max_body_bytes) {
    return fail(fmt::format("the backend's answer of {} bytes is larger than the limit", *content_length));
  }
  m_remaining = *content_length;
  m_answer.body.reserve(m_remaining);
  m_state = State::body;
  return Status::incomplete;
}

HttpAnswer HttpResponseParser::take()
{
  HttpAnswer answer = std::move(m_answer);
  m_answer = HttpAnswer();
  m_state = State::head;
  m_head.clear();
  m_remaining = 0;
  m_head_request = false;
  m_started = false;
  return answer;
}

std::string_view http_reason(int status)
{
  switch (status) {
  case 100: return "Continue";
  case 200: return "OK";
  case 400: return "Bad Request";
  case 401: return "Unauthorized";
  case 403: return "Forbidden";
  case 404: return "Not Found";
  case 405: return "Method Not Allowed";
  case 408: return "Request Timeout";
  case 413: return "Content Too Large";
  case 431: return "Request Header Fields Too Large";
  case 500: return "Internal Server Error";
  case 501: return "Not Implemented";
  case 502: return "Bad Gateway";
  case 503: return "Service Unavailable";
  case 504: return "Gateway Timeout";
  case 505: return "HTTP Version Not Supported";
  default: return "Unknown";
  }
}

std::string http_response_head(int status, std::string_view content_type, size_t content_length,
                               const std::vector<std::pair<std::string, std::string>>& fields, bool close)
{
  std::string head;
  head.reserve(160);
  fmt::format_to(std::back_inserter(head), "HTTP/1.1 {} {}\r\nContent-Type: {}\r\nContent-Length: {}\r\n", status,
                 http_reason(status), content_type, content_length);
  for (const auto& [name, value] : fields) {
    fmt::format_to(std::back_inserter(head), "{}: {}\r\n", name, value);
  }
  head += close ? "Connection: close\r\n\r\n" : "\r\n";
  return head;
}

} // namespace mlops::worker
