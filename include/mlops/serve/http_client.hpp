#pragma once
// Plain HTTP/1.1 calls to workers on loopback, through libcurl (loaded on first use).

#include <chrono>
#include <string>
#include <vector>

namespace mlops::serve {

struct HttpResponse
{
  long status = 0;     // 0 when no answer came: see `error`
  std::string body;
  std::string error;   // curl's reason (connection refused, timeout...) when status is 0
  double seconds = 0;  // from sending to the whole answer
};

// Extra request header fields, "Name: value".
using HttpFields = std::vector<std::string>;

// Never throws for network failures: they come back as status 0 with the reason.
HttpResponse http_get(const std::string& url, std::chrono::milliseconds timeout, const HttpFields& fields = {});
HttpResponse http_post(const std::string& url, const std::string& body, const std::string& content_type,
                       std::chrono::milliseconds timeout, const HttpFields& fields = {});
HttpResponse http_put(const std::string& url, const std::string& body, const std::string& content_type,
                      std::chrono::milliseconds timeout, const HttpFields& fields = {});

// The "error" of a worker's {"error": "..."} body, or the body itself.
std::string worker_error_text(const HttpResponse& response);

} // namespace mlops::serve
