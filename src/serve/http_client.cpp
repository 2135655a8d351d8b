#include "mlops/serve/http_client.hpp"

#include "mlops/core/error.hpp"
#include "mlops/core/on_demand_libraries.hpp"

#include <nlohmann/json.hpp>

#include <memory>

namespace mlops::serve {

namespace {

size_t append_body(char* data, size_t size, size_t count, void* body)
{
  static_cast<std::string*>(body)->append(data, size * count);
  return size * count;
}

HttpResponse perform(const char* method, const std::string& url, const std::string* body,
                     const std::string& content_type, std::chrono::milliseconds timeout, const HttpFields& fields)
{
  const auto& api = curl();
  std::unique_ptr<CURL, decltype(api.easy_cleanup)> handle(api.easy_init(), api.easy_cleanup);
  if (!handle) {
    throw Error(ExitCode::failure, "libcurl could not make a handle (out of memory?)");
  }
  HttpResponse response;
  curl_slist* headers = nullptr;
  CURL* easy = handle.get();
  api.easy_setopt(easy, CURLOPT_URL, url.c_str());
  api.easy_setopt(easy, CURLOPT_NOSIGNAL, 1L);
  api.easy_setopt(easy, CURLOPT_TIMEOUT_MS, static_cast<long>(timeout.count()));
  api.easy_setopt(easy, CURLOPT_WRITEFUNCTION, append_body);
  api.easy_setopt(easy, CURLOPT_WRITEDATA, &response.body);
  api.easy_setopt(easy, CURLOPT_PROXY, "");  // loopback workers: never through an http_proxy
  for (const auto& field : fields) {
    headers = api.slist_append(headers, field.c_str());
  }
  if (body) {
    headers = api.slist_append(headers, ("Content-Type: " + content_type).c_str());
    headers = api.slist_append(headers, "Expect:");  // no 100-continue round trip
    api.easy_setopt(easy, CURLOPT_CUSTOMREQUEST, method);
    api.easy_setopt(easy, CURLOPT_POSTFIELDS, body->data());
    api.easy_setopt(easy, CURLOPT_POSTFIELDSIZE_LARGE, static_cast<curl_off_t>(body->size()));
  }
  if (headers) {
    api.easy_setopt(easy, CURLOPT_HTTPHEADER, headers);
  }
  CURLcode code = api.easy_perform(easy);
  if (headers) {
    api.slist_free_all(headers);
  }
  if (code != CURLE_OK) {
    response.error = api.easy_strerror(code);
    response.body.clear();
    return response;
  }
  api.easy_getinfo(easy, CURLINFO_RESPONSE_CODE, &response.status);
  api.easy_getinfo(easy, CURLINFO_TOTAL_TIME, &response.seconds);
  return response;
}

} // namespace

HttpResponse http_get(const std::string& url, std::chrono::milliseconds timeout, const HttpFields& fields)
{
  return perform("GET", url, nullptr, {}, timeout, fields);
}

HttpResponse http_post(const std::string& url, const std::string& body, const std::string& content_type,
                       std::chrono::milliseconds timeout, const HttpFields& fields)
{
  return perform("POST", url, &body, content_type, timeout, fields);
}

HttpResponse http_put(const std::string& url, const std::string& body, const std::string& content_type,
                      std::chrono::milliseconds timeout, const HttpFields& fields)
{
  return perform("PUT", url, &body, content_type, timeout, fields);
}

std::string worker_error_text(const HttpResponse& response)
{
  if (response.status == 0) {
    return response.error;
  }
  auto document = nlohmann::json::parse(response.body, nullptr, false);
  if (document.is_object() && document.contains("error") && document["error"].is_string()) {
    return document["error"].get<std::string>();
  }
  return response.body.empty() ? "HTTP " + std::to_string(response.status) : response.body;
}

} // namespace mlops::serve
