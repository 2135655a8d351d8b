// The worker's HTTP/1.1 request parser and response head: requests fed whole, byte by byte and
// pipelined, bodies by Content-Length and chunked, and each refusal with the status a client gets.
// The router's parser of backends' answers: the same pieces-or-whole agreement, the answers that
// have no body, bodies that run until the close, and each refusal with its message.
#include "mlops/worker/http_message.hpp"

#include "expect_error.hpp"

#include <doctest/doctest.h>

#include <string>
#include <string_view>
#include <vector>

using namespace mlops::worker;
using Status = HttpRequestParser::Status;
using AnswerStatus = HttpResponseParser::Status;
using mlops::test::mentions;

namespace {

constexpr HttpLimits small_limits{1024, 64};

// Feeds `text` in pieces of `piece` bytes (0: all at once) until the parser completes, fails or
// runs out of bytes; `text` keeps what the parser did not consume.
template <class Parser> typename Parser::Status feed_in_pieces(Parser& parser, std::string_view& text, size_t piece = 0)
{
  auto status = Parser::Status::incomplete;
  size_t consumed = 1;
  while (status == Parser::Status::incomplete && !text.empty() && consumed > 0) {
    std::string_view input = piece == 0 ? text : text.substr(0, piece);
    size_t given = input.size();
    status = parser.feed(input);
    consumed = given - input.size();
    text.remove_prefix(consumed);
  }
  return status;
}

// The one request in `text`, which must be complete.
HttpRequest parse(std::string_view text, size_t piece = 0, HttpLimits limits = small_limits)
{
  HttpRequestParser parser(limits);
  auto status = feed_in_pieces(parser, text, piece);
  REQUIRE(status == Status::complete);
  CHECK(text.empty());
  return parser.take();
}

// The status the parser refuses `text` with (0 when it does not fail), fed whole and byte by byte.
int refusal(std::string_view text, HttpLimits limits = small_limits)
{
  int statuses[2] = {0, 0};
  for (size_t piece : {size_t{0}, size_t{1}}) {
    HttpRequestParser parser(limits);
    std::string_view rest = text;
    if (feed_in_pieces(parser, rest, piece) == Status::failed) {
      CHECK_FALSE(parser.error_message().empty());
      statuses[piece] = parser.error_status();
    }
  }
  CHECK(statuses[0] == statuses[1]);
  return statuses[0];
}

bool same_request(const HttpRequest& a, const HttpRequest& b)
{
  return a.method == b.method && a.path == b.path && a.query == b.query && a.minor_version == b.minor_version &&
         a.headers == b.headers && a.body == b.body && a.keep_alive == b.keep_alive;
}

constexpr size_t answer_body_limit = 64;

struct ReadAnswer
{
  AnswerStatus status = AnswerStatus::incomplete;
  HttpAnswer answer;  // when complete
  std::string error;
  std::string left;  // what the parser did not consume
};

// One answer read from `text` in pieces of `piece` bytes (0: whole), for a HEAD request or not;
// with `closed`, the backend then closes the connection.
ReadAnswer read_answer(std::string_view text, size_t piece, bool head_request = false, bool closed = false)
{
  HttpResponseParser parser(answer_body_limit);
  parser.expect(head_request);
  ReadAnswer read;
  read.status = feed_in_pieces(parser, text, piece);
  if (closed && read.status != AnswerStatus::failed) {
    read.status = parser.finish_at_close();
  }
  read.error = parser.error_message();
  read.left = text;
  if (read.status == AnswerStatus::complete) {
    read.answer = parser.take();
  }
  return read;
}

bool same_answer(const HttpAnswer& a, const HttpAnswer& b)
{
  return a.status == b.status && a.headers == b.headers && a.body == b.body && a.keep_alive == b.keep_alive;
}

// Reads `text` whole, byte by byte and in 7-byte pieces, checks that all three agree, and returns
// the outcome.
ReadAnswer read_answer_every_way(std::string_view text, bool head_request = false, bool closed = false)
{
  auto whole = read_answer(text, 0, head_request, closed);
  for (size_t piece : {size_t{1}, size_t{7}}) {
    CAPTURE(piece);
    auto pieces = read_answer(text, piece, head_request, closed);
    CHECK(pieces.status == whole.status);
    if (whole.status != AnswerStatus::failed) {
      CHECK(pieces.left == whole.left);  // after a failure the connection is dropped, whatever is left
    }
    CHECK(pieces.error == whole.error);
    CHECK(same_answer(pieces.answer, whole.answer));
  }
  return whole;
}

} // namespace

TEST_CASE("a GET and a POST with Content-Length")
{
  SUBCASE("GET")
  {
    auto request = parse("GET /v2/health/ready HTTP/1.1\r\nHost: worker\r\n\r\n");
    CHECK(request.method == "GET");
    CHECK(request.path == "/v2/health/ready");
    CHECK(request.query.empty());
    CHECK(request.minor_version == 1);
    CHECK(request.keep_alive);
    CHECK(request.body.empty());
    REQUIRE(request.header("host"));
    CHECK(*request.header("host") == "worker");
  }
  SUBCASE("POST")
  {
    auto request = parse("POST /v2/models/m/infer HTTP/1.1\r\nContent-Length: 11\r\n\r\n{\"inputs\":}");
    CHECK(request.method == "POST");
    CHECK(request.body == "{\"inputs\":}");
  }
}

TEST_CASE("a request fed one byte at a time parses as when fed whole")
{
  std::string text = "POST /a%20b?x=1 HTTP/1.0\r\nConnection: keep-alive\r\nX-Request-Id:  r7 \r\n"
                     "Content-Length: 5\r\n\r\nhello";
  auto whole = parse(text);
  auto bytewise = parse(text, 1);
  CHECK(same_request(whole, bytewise));
  CHECK(bytewise.path == "/a b");
  CHECK(bytewise.body == "hello");
}

TEST_CASE("pipelined requests: the second stays in the input until the first is taken")
{
  HttpRequestParser parser(small_limits);
  std::string_view input = "POST /one HTTP/1.1\r\nContent-Length: 3\r\n\r\nabcGET /two HTTP/1.1\r\n\r\n";
  CHECK_FALSE(parser.in_progress());
  REQUIRE(parser.feed(input) == Status::complete);
  CHECK(input == "GET /two HTTP/1.1\r\n\r\n");
  CHECK(parser.in_progress());
  auto first = parser.take();
  CHECK(first.path == "/one");
  CHECK(first.body == "abc");
  CHECK_FALSE(parser.in_progress());

  REQUIRE(parser.feed(input) == Status::complete);
  CHECK(input.empty());
  CHECK(parser.take().path == "/two");
  CHECK_FALSE(parser.in_progress());
}

TEST_CASE("in_progress: from the first byte of a request until it is taken")
{
  HttpRequestParser parser(small_limits);
  std::string_view blank = "\r\n\r\n";
  CHECK(parser.feed(blank) == Status::incomplete);
  CHECK_FALSE(parser.in_progress());  // empty lines between requests are not a request
  std::string_view part = "GET / HT";
  CHECK(parser.feed(part) == Status::incomplete);
  CHECK(parser.in_progress());
  std::string_view rest = "TP/1.1\r\nContent-Length: 2\r\n\r\n";
  CHECK(parser.feed(rest) == Status::incomplete);
  CHECK(parser.in_progress());
  std::string_view body = "ok";
  CHECK(parser.feed(body) == Status::complete);
  CHECK(parser.in_progress());
  parser.take();
  CHECK_FALSE(parser.in_progress());
}

TEST_CASE("empty lines before the request line are tolerated")
{
  auto request = parse("\r\n\r\n\nGET /x HTTP/1.1\r\n\r\n");
  CHECK(request.path == "/x");
}

TEST_CASE("the target: query split off, path percent-decoded, absolute form")
{
  SUBCASE("query")
  {
    auto request = parse("GET /a%2Fb/c%7e?q=%20&r HTTP/1.1\r\n\r\n");
    CHECK(request.path == "/a/b/c~");
    CHECK(request.query == "q=%20&r");
  }
  SUBCASE("absolute form")
  {
    auto request = parse("GET http://worker:8080/v2/models?x=1 HTTP/1.1\r\n\r\n");
    CHECK(request.path == "/v2/models");
    CHECK(request.query == "x=1");
    CHECK(parse("GET http://worker:8080 HTTP/1.1\r\n\r\n").path == "/");
  }
  SUBCASE("malformed escapes and NUL are refused")
  {
    CHECK(refusal("GET /a%00b HTTP/1.1\r\n\r\n") == 400);
    CHECK(refusal("GET /a%zzb HTTP/1.1\r\n\r\n") == 400);
    CHECK(refusal("GET /a%4 HTTP/1.1\r\n\r\n") == 400);
    CHECK(refusal("GET /a% HTTP/1.1\r\n\r\n") == 400);
    CHECK(refusal("GET a/b HTTP/1.1\r\n\r\n") == 400);
  }
}

TEST_CASE("keep-alive: HTTP/1.1 unless Connection: close, HTTP/1.0 only with keep-alive")
{
  CHECK(parse("GET / HTTP/1.1\r\n\r\n").keep_alive);
  CHECK_FALSE(parse("GET / HTTP/1.1\r\nConnection: Close\r\n\r\n").keep_alive);
  CHECK_FALSE(parse("GET / HTTP/1.1\r\nConnection: upgrade, close\r\n\r\n").keep_alive);
  auto old = parse("GET / HTTP/1.0\r\n\r\n");
  CHECK(old.minor_version == 0);
  CHECK_FALSE(old.keep_alive);
  CHECK(parse("GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n").keep_alive);
  CHECK_FALSE(parse("GET / HTTP/1.0\r\nConnection: close, keep-alive\r\n\r\n").keep_alive);  // close wins
}

TEST_CASE("header fields: names in lower case, values trimmed, the first one found")
{
  auto request = parse("GET / HTTP/1.1\r\nX-Request-ID: \t abc def \t\r\nAccept:\r\nx-request-id: second\r\n\r\n");
  REQUIRE(request.headers.size() == 3);
  CHECK(request.headers[0].first == "x-request-id");
  CHECK(request.headers[0].second == "abc def");
  CHECK(request.headers[1].second.empty());
  REQUIRE(request.header("x-request-id"));
  CHECK(*request.header("x-request-id") == "abc def");
  CHECK(request.header("accept"));
  CHECK_FALSE(request.header("X-Request-ID"));  // the lookup takes the lower-case name
  CHECK_FALSE(request.header("content-length"));
}

TEST_CASE("chunked bodies: several chunks, extensions, trailers, hex in either case")
{
  std::string text = "POST /c HTTP/1.1\r\nTransfer-Encoding: Chunked\r\nX-Request-Id: r1\r\n\r\n"
                     "3\r\nabc\r\n"
                     "A;name=value\r\n0123456789\r\n"
                     "0b ; x=\"y\"\r\nhello world\r\n"
                     "000\r\nExpires: never\r\nX-Trailer: 1\r\n\r\n"
                     "GET /next HTTP/1.1\r\n\r\n";
  for (size_t piece : {size_t{0}, size_t{1}, size_t{7}}) {
    CAPTURE(piece);
    HttpRequestParser parser(small_limits);
    std::string_view input = text;
    REQUIRE(feed_in_pieces(parser, input, piece) == Status::complete);
    CHECK(input == "GET /next HTTP/1.1\r\n\r\n");
    auto request = parser.take();
    CHECK(request.body == "abc0123456789hello world");
    CHECK(request.header("x-request-id"));
    CHECK_FALSE(request.header("expires"));  // trailers are dropped
  }
  CHECK(parse("POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n").body.empty());
}

TEST_CASE("what feed leaves in the input is its tail, also in the middle of a chunk-size line")
{
  HttpRequestParser parser(small_limits);
  std::string text = "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n1";
  std::string_view input = text;
  CHECK(parser.feed(input) == Status::incomplete);
  CHECK(input.empty());
  CHECK(input.data() == text.data() + text.size());
}

TEST_CASE("Expect: 100-continue is seen after the head, before the body")
{
  HttpRequestParser parser(small_limits);
  std::string_view head = "POST / HTTP/1.1\r\nExpect: 100-Continue\r\nContent-Length: 4\r\n";
  CHECK(parser.feed(head) == Status::incomplete);
  CHECK_FALSE(parser.expects_continue());
  std::string_view end = "\r\n";
  CHECK(parser.feed(end) == Status::incomplete);
  CHECK(parser.expects_continue());
  std::string_view body = "data";
  REQUIRE(parser.feed(body) == Status::complete);
  CHECK(parser.take().body == "data");
  CHECK_FALSE(parser.expects_continue());

  std::string_view plain = "POST / HTTP/1.1\r\nContent-Length: 4\r\n\r\n";
  CHECK(parser.feed(plain) == Status::incomplete);
  CHECK_FALSE(parser.expects_continue());

  // An HTTP/1.0 client cannot know the interim answer: the expectation is ignored.
  HttpRequestParser old(small_limits);
  std::string_view old_head = "POST / HTTP/1.0\r\nExpect: 100-continue\r\nContent-Length: 4\r\n\r\n";
  CHECK(old.feed(old_head) == Status::incomplete);
  CHECK_FALSE(old.expects_continue());
}

TEST_CASE("malformed heads are refused with 400, other versions with 505")
{
  CHECK(refusal("GET /\r\n\r\n") == 400);
  CHECK(refusal("GET  / HTTP/1.1\r\n\r\n") == 400);
  CHECK(refusal("G(T / HTTP/1.1\r\n\r\n") == 400);
  CHECK(refusal("GET / http/1.1\r\n\r\n") == 400);
  CHECK(refusal("GET / HTTP/2.0\r\n\r\n") == 505);
  CHECK(refusal("GET / HTTP/1.1\r\nNoColon\r\n\r\n") == 400);
  CHECK(refusal("GET / HTTP/1.1\r\nBad Name: x\r\n\r\n") == 400);
  CHECK(refusal("GET / HTTP/1.1\r\nA: x\r\n folded\r\n\r\n") == 400);
  CHECK(refusal("GET / HTTP/1.1\r\nA: x\nB: y\r\n\r\n") == 400);
  constexpr char nul_in_value[] = "GET / HTTP/1.1\r\nA: x\0y\r\n\r\n";
  CHECK(refusal(std::string_view(nul_in_value, sizeof(nul_in_value) - 1)) == 400);
}

TEST_CASE("the body's framing: conflicting or unknown lengths and codings are refused")
{
  CHECK(refusal("POST / HTTP/1.1\r\nContent-Length: 12a\r\n\r\n") == 400);
  CHECK(refusal("POST / HTTP/1.1\r\nContent-Length: -1\r\n\r\n") == 400);
  CHECK(refusal("POST / HTTP/1.1\r\nContent-Length:\r\n\r\n") == 400);
  CHECK(refusal("POST / HTTP/1.1\r\nContent-Length: 99999999999999999999999\r\n\r\n") == 400);
  CHECK(refusal("POST / HTTP/1.1\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\nabcd") == 400);
  CHECK(parse("POST / HTTP/1.1\r\nContent-Length: 3\r\nContent-Length: 3\r\n\r\nabc").body == "abc");
  CHECK(refusal("POST / HTTP/1.1\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n") == 400);
  CHECK(refusal("POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n") == 400);
  CHECK(refusal("POST / HTTP/1.1\r\nTransfer-Encoding: gzip\r\n\r\n") == 501);
  CHECK(refusal("POST / HTTP/1.1\r\nTransfer-Encoding: gzip, chunked\r\n\r\n") == 501);
  CHECK(refusal("POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n") == 400);
}

TEST_CASE("trailer fields, each small, add up to at most max_head_bytes")
{
  std::string body = "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n1\r\na\r\n0\r\n";
  for (int i = 0; i < 100; ++i) {
    body += "X-Trailer: 0123456789\r\n";  // 24 bytes each, 2400 in all
  }
  body += "\r\n";
  CHECK(refusal(body) == 431);
}

TEST_CASE("a head over max_head_bytes or with more than 100 fields gets 431")
{
  std::string field = "X-Pad: " + std::string(1100, 'a') + "\r\n";
  CHECK(refusal("GET / HTTP/1.1\r\n" + field + "\r\n") == 431);
  SUBCASE("even when the head never ends")
  {
    HttpRequestParser parser(small_limits);
    std::string endless = "GET / HTTP/1.1\r\nX-Pad: " + std::string(1100, 'a');
    std::string_view input = endless;
    REQUIRE(parser.feed(input) == Status::failed);
    CHECK(parser.error_status() == 431);
  }
  SUBCASE("the limit counts the whole head, the blank line included")
  {
    std::string head = "GET / HTTP/1.1\r\nX-Pad: ";
    head += std::string(1024 - head.size() - 4, 'a') + "\r\n\r\n";
    REQUIRE(head.size() == 1024);
    CHECK(parse(head).method == "GET");
    CHECK(refusal(head.insert(20, "a")) == 431);
  }
  std::string many = "GET / HTTP/1.1\r\n";
  for (int i = 0; i < 100; ++i) {
    many += "A:\r\n";
  }
  HttpLimits roomy{64 * 1024, 64};
  CHECK(parse(many + "\r\n", 0, roomy).headers.size() == 100);
  CHECK(refusal(many + "B:\r\n\r\n", roomy) == 431);
}

TEST_CASE("a body over max_body_bytes gets 413 as soon as that is certain")
{
  SUBCASE("Content-Length: from the head alone")
  {
    HttpRequestParser parser(small_limits);
    std::string_view input = "POST / HTTP/1.1\r\nX-Request-Id: big\r\nContent-Length: 65\r\n\r\n";
    REQUIRE(parser.feed(input) == Status::failed);
    CHECK(parser.error_status() == 413);
    REQUIRE(parser.request_so_far().header("x-request-id"));
    CHECK(*parser.request_so_far().header("x-request-id") == "big");
    CHECK(parse("POST / HTTP/1.1\r\nContent-Length: 64\r\n\r\n" + std::string(64, 'b')).body.size() == 64);
  }
  SUBCASE("chunked: at the chunk size that passes the limit")
  {
    HttpRequestParser parser(small_limits);
    std::string_view input = "POST / HTTP/1.1\r\nX-Request-Id: big\r\nTransfer-Encoding: chunked\r\n\r\n"
                             "20\r\n" "0123456789abcdef0123456789abcdef\r\n"
                             "21\r\n";
    REQUIRE(parser.feed(input) == Status::failed);
    CHECK(parser.error_status() == 413);
    REQUIRE(parser.request_so_far().header("x-request-id"));
    CHECK(*parser.request_so_far().header("x-request-id") == "big");
  }
  SUBCASE("chunked: up to the limit is accepted")
  {
    auto text = "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n20\r\n" + std::string(32, 'x') + "\r\n20\r\n" +
                std::string(32, 'y') + "\r\n0\r\n\r\n";
    CHECK(parse(text).body.size() == 64);
    CHECK(parse(text, 1).body.size() == 64);
  }
}

TEST_CASE("malformed chunks are refused with 400")
{
  std::string head = "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n";
  CHECK(refusal(head + "g\r\n") == 400);
  CHECK(refusal(head + "\r\n") == 400);
  CHECK(refusal(head + "-1\r\n") == 400);
  CHECK(refusal(head + "0x3\r\nabc\r\n") == 400);
  CHECK(refusal(head + " 3\r\nabc\r\n") == 400);
  CHECK(refusal(head + "3 4\r\nabc\r\n") == 400);
  CHECK(refusal(head + "ffffffffffffffffffff\r\n") == 400);
  CHECK(refusal(head + "3\r\nabcd\r\n0\r\n\r\n") == 400);
  CHECK(refusal(head + std::string(1100, '0')) == 400);
}

TEST_CASE("http_response_head: status line, type, length, fields, and close only when asked")
{
  CHECK(http_response_head(200, "application/json", 17, {}, false) ==
        "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 17\r\n\r\n");
  CHECK(http_response_head(413, "application/json", 0, {{"X-Request-Id", "r1"}, {"Retry-After", "1"}}, true) ==
        "HTTP/1.1 413 Content Too Large\r\nContent-Type: application/json\r\nContent-Length: 0\r\n"
        "X-Request-Id: r1\r\nRetry-After: 1\r\nConnection: close\r\n\r\n");
  CHECK(http_reason(505) == "HTTP Version Not Supported");
  CHECK(http_reason(431) == "Request Header Fields Too Large");
}

TEST_CASE("HttpResponseParser: answers fed whole, byte by byte and in pieces agree")
{
  struct Case
  {
    std::string what;
    std::string text;
    bool head_request;
    bool closed;  // the backend closes after the bytes
    int status;
    std::string body;
    bool keep_alive;
  };
  const std::vector<Case> cases = {
    {"Content-Length", "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 11\r\n\r\n{\"ok\":true}",
     false, false, 200, "{\"ok\":true}", true},
    {"no reason phrase", "HTTP/1.1 503\r\nContent-Length: 2\r\n\r\nno", false, false, 503, "no", true},
    {"Content-Length: 0", "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n", false, false, 200, "", true},
    {"the same Content-Length twice", "HTTP/1.1 200 OK\r\nContent-Length: 2\r\ncontent-length: 2\r\n\r\nok", false,
     false, 200, "ok", true},
    {"a body at the limit", "HTTP/1.1 200 OK\r\nContent-Length: 64\r\n\r\n" + std::string(64, 'b'), false, false, 200,
     std::string(64, 'b'), true},
    {"HTTP/1.0 closes", "HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\nok", false, false, 200, "ok", false},
    {"HTTP/1.0 with keep-alive", "HTTP/1.0 200 OK\r\nConnection: Keep-Alive\r\nContent-Length: 2\r\n\r\nok", false,
     false, 200, "ok", true},
    {"Connection: close", "HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 2\r\n\r\nok", false, false, 200,
     "ok", false},
    {"close wins over keep-alive", "HTTP/1.1 200 OK\r\nConnection: keep-alive, Close\r\nContent-Length: 2\r\n\r\nok",
     false, false, 200, "ok", false},
    {"HEAD: no body whatever Content-Length says", "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n", true, false, 200, "",
     true},
    {"HEAD: even a length over the limit", "HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n", true, false, 200, "",
     true},
    {"204: no body", "HTTP/1.1 204 No Content\r\nContent-Length: 5\r\n\r\n", false, false, 204, "", true},
    {"304: no body", "HTTP/1.1 304 Not Modified\r\nContent-Length: 5\r\n\r\n", false, false, 304, "", true},
    {"an interim 100 Continue is passed over", "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok",
     false, false, 200, "ok", true},
    {"interim answers with fields, then a final one that closes",
     "HTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\nHTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 503\r\nConnection: close\r\n"
     "Content-Length: 2\r\n\r\nno",
     false, false, 503, "no", false},
    {"no Content-Length: the body runs until the close", "HTTP/1.1 200 OK\r\nX-A: 1\r\n\r\nall of it", false, true, 200,
     "all of it", false},
    {"until the close, empty", "HTTP/1.1 500 Internal Server Error\r\n\r\n", false, true, 500, "", false},
    {"until the close, up to the limit", "HTTP/1.0 200 OK\r\n\r\n" + std::string(64, 'c'), false, true, 200,
     std::string(64, 'c'), false},
    {"a close after a complete answer changes nothing", "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok", false, true,
     200, "ok", true},
  };
  for (const auto& item : cases) {
    CAPTURE(item.what);
    auto read = read_answer_every_way(item.text, item.head_request, item.closed);
    REQUIRE(read.status == AnswerStatus::complete);
    CHECK(read.left.empty());
    CHECK(read.answer.status == item.status);
    CHECK(read.answer.body == item.body);
    CHECK(read.answer.keep_alive == item.keep_alive);
  }
}

TEST_CASE("HttpResponseParser: an interim answer leaves none of its fields in the final one")
{
  auto read = read_answer_every_way("HTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\nHTTP/1.1 200 OK\r\n"
                                    "Content-Length: 2\r\n\r\nok");
  REQUIRE(read.status == AnswerStatus::complete);
  CHECK(read.answer.headers == std::vector<std::pair<std::string, std::string>>{{"content-length", "2"}});
}

TEST_CASE("HttpResponseParser: header fields in lower case, values trimmed")
{
  auto read = read_answer("HTTP/1.1 200 OK\r\nContent-Type: \t application/json \r\nX-Request-Id:r1\r\n"
                          "Content-Length: 0\r\n\r\n",
                          0);
  REQUIRE(read.status == AnswerStatus::complete);
  REQUIRE(read.answer.headers.size() == 3);
  CHECK(read.answer.headers[0] == std::pair<std::string, std::string>{"content-type", "application/json"});
  REQUIRE(read.answer.header("x-request-id"));
  CHECK(*read.answer.header("x-request-id") == "r1");
  CHECK_FALSE(read.answer.header("X-Request-Id"));
}

TEST_CASE("HttpResponseParser: each refusal says why, fed whole or in pieces")
{
  const std::string not_status_line = "is not an HTTP/1.x status line";
  const std::string malformed_field = "malformed header field";
  const std::string not_one_length = "is not one byte count";
  constexpr char nul_in_value[] = "HTTP/1.1 200 OK\r\nX-A: x\0y\r\nContent-Length: 0\r\n\r\n";
  std::string many_fields = "HTTP/1.1 200 OK\r\n";
  for (int i = 0; i < 101; ++i) {
    many_fields += "A:\r\n";
  }
  struct Case
  {
    std::string what;
    std::string text;
    std::string message;
  };
  const std::vector<Case> cases = {
    {"HTTP/2", "HTTP/2 200 OK\r\n\r\n", not_status_line},
    {"HTTP/1.2", "HTTP/1.2 200 OK\r\n\r\n", not_status_line},
    {"lower-case name", "http/1.1 200 OK\r\n\r\n", not_status_line},
    {"no status", "HTTP/1.1\r\n\r\n", not_status_line},
    {"two spaces", "HTTP/1.1  200 OK\r\n\r\n", not_status_line},
    {"two digits", "HTTP/1.1 20 OK\r\n\r\n", not_status_line},
    {"four digits", "HTTP/1.1 2000 OK\r\n\r\n", not_status_line},
    {"a letter", "HTTP/1.1 2a0 OK\r\n\r\n", not_status_line},
    {"negative", "HTTP/1.1 -20 OK\r\n\r\n", not_status_line},
    {"below 100", "HTTP/1.1 099 OK\r\n\r\n", not_status_line},
    {"above 599", "HTTP/1.1 600 OK\r\n\r\n", not_status_line},
    {"a request", "GET / HTTP/1.1\r\n\r\n", not_status_line},
    {"101 Switching Protocols", "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n\r\n", "switched protocols"},
    {"no colon", "HTTP/1.1 200 OK\r\nNoColon\r\n\r\n", malformed_field},
    {"a space in the name", "HTTP/1.1 200 OK\r\nBad Name: x\r\n\r\n", malformed_field},
    {"folded", "HTTP/1.1 200 OK\r\nA: x\r\n folded\r\n\r\n", malformed_field},
    {"101 fields", many_fields + "\r\n", malformed_field},
    {"a bare LF in a value", "HTTP/1.1 200 OK\r\nX-A: x\nSet-Cookie: y\r\nContent-Length: 0\r\n\r\n",
     "holds a line break or a NUL"},
    {"a NUL in a value", std::string(nul_in_value, sizeof(nul_in_value) - 1), "holds a line break or a NUL"},
    {"Content-Length not a number", "HTTP/1.1 200 OK\r\nContent-Length: 12a\r\n\r\n", not_one_length},
    {"Content-Length negative", "HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n", not_one_length},
    {"Content-Length empty", "HTTP/1.1 200 OK\r\nContent-Length:\r\n\r\n", not_one_length},
    {"Content-Length a list", "HTTP/1.1 200 OK\r\nContent-Length: 2, 2\r\n\r\nok", not_one_length},
    {"Content-Length past 64 bits", "HTTP/1.1 200 OK\r\nContent-Length: 99999999999999999999999\r\n\r\n",
     not_one_length},
    {"two different Content-Lengths", "HTTP/1.1 200 OK\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\nabcd",
     not_one_length},
    {"chunked", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", "Transfer-Encoding"},
    {"chunked after a length", "HTTP/1.1 200 OK\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n",
     "Transfer-Encoding"},
    {"a Content-Length over the limit", "HTTP/1.1 200 OK\r\nContent-Length: 65\r\n\r\n",
     "answer of 65 bytes is larger than the limit"},
    {"a body until the close over the limit", "HTTP/1.1 200 OK\r\n\r\n" + std::string(65, 'c'),
     "larger than the limit"},
  };
  for (const auto& item : cases) {
    CAPTURE(item.what);
    auto read = read_answer_every_way(item.text);
    CHECK(read.status == AnswerStatus::failed);
    CHECK_MESSAGE(mentions(read.error, item.message), read.error);
  }
}

TEST_CASE("HttpResponseParser: a head over 64 KiB is refused, the blank line counted, in any pieces")
{
  constexpr size_t max_head = 64 * 1024;
  for (size_t size : {max_head - 1, max_head, max_head + 1, max_head + 2, max_head + 4, max_head + 5}) {
    CAPTURE(size);
    std::string head = "HTTP/1.1 204 No Content\r\nX-Pad: ";
    head += std::string(size - head.size() - 4, 'a') + "\r\n\r\n";
    REQUIRE(head.size() == size);
    auto whole = read_answer(head, 0);
    auto bytewise = read_answer(head, 1);
    CHECK(whole.status == bytewise.status);
    CHECK(whole.status == (size <= max_head ? AnswerStatus::complete : AnswerStatus::failed));
  }
  SUBCASE("even when the head never ends")
  {
    HttpResponseParser parser(answer_body_limit);
    std::string endless = "HTTP/1.1 200 OK\r\nX-Pad: " + std::string(max_head, 'a');
    std::string_view input = endless;
    REQUIRE(parser.feed(input) == AnswerStatus::failed);
    CHECK(parser.error_message().find("longer than 65536 bytes") != std::string::npos);
  }
}

TEST_CASE("HttpResponseParser::finish_at_close: completes only an answer that runs until the close")
{
  SUBCASE("until the close: incomplete until then, however much arrives")
  {
    HttpResponseParser parser(answer_body_limit);
    std::string_view input = "HTTP/1.1 200 OK\r\n\r\npart one, ";
    CHECK(parser.feed(input) == AnswerStatus::incomplete);
    CHECK(input.empty());
    std::string_view more = "part two";
    CHECK(parser.feed(more) == AnswerStatus::incomplete);
    REQUIRE(parser.finish_at_close() == AnswerStatus::complete);
    auto answer = parser.take();
    CHECK(answer.body == "part one, part two");
    CHECK_FALSE(answer.keep_alive);
  }
  struct Case
  {
    std::string what;
    std::string text;
    std::string message;
  };
  const std::vector<Case> cases = {
    {"before any byte", "", "the backend closed the connection without answering"},
    {"in the status line", "HTTP/1.1 2", "the backend closed the connection in the middle of its answer"},
    {"in the head", "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n", "in the middle of its answer"},
    {"in a body with Content-Length", "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nabc", "in the middle of its answer"},
  };
  for (const auto& item : cases) {
    CAPTURE(item.what);
    HttpResponseParser parser(answer_body_limit);
    std::string_view input = item.text;
    CHECK(parser.feed(input) == AnswerStatus::incomplete);
    CHECK(parser.started() == !item.text.empty());
    CHECK(parser.finish_at_close() == AnswerStatus::failed);
    CHECK_MESSAGE(mentions(parser.error_message(), item.message), parser.error_message());
  }
}

TEST_CASE("HttpResponseParser::take: the next answer on the same connection starts afresh")
{
  HttpResponseParser parser(answer_body_limit);
  CHECK_FALSE(parser.started());
  std::string_view input = "HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nabcHTTP/1.1 204 No Content\r\n\r\n";
  REQUIRE(parser.feed(input) == AnswerStatus::complete);
  CHECK(input == "HTTP/1.1 204 No Content\r\n\r\n");  // the second answer stays in the input
  CHECK(parser.feed(input) == AnswerStatus::complete);     // and stays there until take()
  CHECK(input == "HTTP/1.1 204 No Content\r\n\r\n");
  auto first = parser.take();
  CHECK(first.status == 200);
  CHECK(first.body == "abc");
  CHECK_FALSE(parser.started());

  REQUIRE(parser.feed(input) == AnswerStatus::complete);
  CHECK(input.empty());
  auto second = parser.take();
  CHECK(second.status == 204);
  CHECK(second.headers.empty());
  CHECK(second.body.empty());

  SUBCASE("an answer to HEAD, then one to GET: expect() holds for one answer")
  {
    parser.expect(true);
    std::string_view head_answer = "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n";
    REQUIRE(parser.feed(head_answer) == AnswerStatus::complete);
    CHECK(parser.take().body.empty());
    std::string_view get_answer = "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello";
    REQUIRE(parser.feed(get_answer) == AnswerStatus::complete);
    CHECK(parser.take().body == "hello");
  }
}
