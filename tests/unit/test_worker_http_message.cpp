// The worker's HTTP/1.1 request parser and response head: requests fed whole, byte by byte and
// pipelined, bodies by Content-Length and chunked, and each refusal with the status a client gets.
#include "mlops/worker/http_message.hpp"

#include <doctest/doctest.h>

#include <string>
#include <string_view>
#include <vector>

using namespace mlops::worker;
using Status = HttpRequestParser::Status;

namespace {

constexpr HttpLimits small_limits{1024, 64};

// Feeds `text` in pieces of `piece` bytes (0: all at once) until the parser completes, fails or
// runs out of bytes; `text` keeps what the parser did not consume.
Status feed_in_pieces(HttpRequestParser& parser, std::string_view& text, size_t piece = 0)
{
  auto status = Status::incomplete;
  size_t consumed = 1;
  while (status == Status::incomplete && !text.empty() && consumed > 0) {
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
