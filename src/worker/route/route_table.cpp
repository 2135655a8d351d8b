#include "mlops/worker/route_table.hpp"

#include "mlops/core/error.hpp"
#include "mlops/util/url.hpp"

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <cctype>
#include <charconv>
#include <cstring>

#include <netdb.h>

namespace mlops::worker {

namespace {

Error bad_table(std::string_view why)
{
  return Error(ExitCode::usage, fmt::format("the routing table is not valid: {}", why));
}

// http://HOST:PORT, with an IPv6 address in brackets; nothing after the port.
void parse_url(std::string_view url, RouteBackend& backend)
{
  constexpr std::string_view scheme = "http://";
  auto refuse = [&] { return bad_table(fmt::format("'{}' is not a URL http://HOST:PORT", url.substr(0, 100))); };
  if (url.substr(0, scheme.size()) != scheme) {
    throw refuse();
  }
  auto rest = url.substr(scheme.size());
  if (!rest.empty() && rest.back() == '/') {
    rest.remove_suffix(1);
  }
  auto colon = rest.rfind(':');
  if (colon == std::string_view::npos || colon == 0) {
    throw refuse();
  }
  auto host = rest.substr(0, colon);
  if (host.front() == '[') {
    if (host.back() != ']') {
      throw refuse();
    }
    host = host.substr(1, host.size() - 2);
  }
  auto port_text = rest.substr(colon + 1);
  auto [end, problem] = std::from_chars(port_text.data(), port_text.data() + port_text.size(), backend.port);
  // A NUL would end the host where the resolver reads it, and the rest would go unchecked.
  if (host.empty() || host.find('\0') != std::string_view::npos || problem != std::errc() ||
      end != port_text.data() + port_text.size() || backend.port < 1 || backend.port > 65535) {
    throw refuse();
  }
  backend.host = host;
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  // An address, never a name: a lookup could block the event loop that installs the table.
  hints.ai_flags = AI_NUMERICSERV | AI_NUMERICHOST;
  auto address = backend.host == "localhost" ? std::string("127.0.0.1") : backend.host;
  addrinfo* found = nullptr;
  auto port = std::to_string(backend.port);
  if (int failure = getaddrinfo(address.c_str(), port.c_str(), &hints, &found); failure != 0) {
    throw bad_table(fmt::format("the host of {} is not an IP address (or localhost): {}", url, gai_strerror(failure)));
  }
  std::memcpy(&backend.address, found->ai_addr, found->ai_addrlen);
  backend.address_size = found->ai_addrlen;
  freeaddrinfo(found);
}

} // namespace

std::string RouteBackend::url() const
{
  return util::http_url(host, port);
}

RouteTable RouteTable::parse(std::string_view json)
{
  auto document = nlohmann::json::parse(json, nullptr, false);
  if (document.is_discarded() || !document.is_object()) {
    throw bad_table("it is not a JSON object");
  }
  RouteTable table;
  if (auto model = document.find("model"); model != document.end()) {
    if (!model->is_string()) {
      throw bad_table("\"model\" is not a string");
    }
    table.model = model->get<std::string>();
  }
  auto backends = document.find("backends");
  if (backends == document.end() || !backends->is_array()) {
    throw bad_table("\"backends\" is missing or not a list");
  }
  if (backends->size() > max_backends) {
    throw bad_table(fmt::format("it has {} backends; the most is {}", backends->size(), max_backends));
  }
  for (const auto& item : *backends) {
    auto text = [&](const char* field) {
      auto value = item.is_object() ? item.find(field) : item.end();
      if (!item.is_object() || value == item.end() || !value->is_string() || value->get_ref<const std::string&>().empty()) {
        throw bad_table(fmt::format("a backend's \"{}\" is missing or not a non-empty string", field));
      }
      return value->get<std::string>();
    };
    RouteBackend backend;
    backend.name = text("name");
    // The name goes into X-Mlops-Backend on answers: a token, nothing that could break a line.
    if (!std::all_of(backend.name.begin(), backend.name.end(), [](char c) {
          return std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_' || c == '.' || c == '@';
        })) {
      throw bad_table(fmt::format("the backend name '{}' may hold only letters, digits, '-', '_', '.' and '@'",
                                  backend.name.substr(0, 100)));
    }
    parse_url(text("url"), backend);
    if (auto version = item.find("version"); version != item.end()) {
      if (!version->is_string()) {
        throw bad_table(fmt::format("the version of backend '{}' is not a string", backend.name));
      }
      backend.version = version->get<std::string>();
    }
    auto weight = item.find("weight");
    if (weight == item.end() || !weight->is_number_integer() || weight->get<std::int64_t>() < 0 ||
        weight->get<std::int64_t>() > max_weight) {
      throw bad_table(fmt::format("the weight of backend '{}' is missing or not an integer from 0 to {}", backend.name,
                                  max_weight));
    }
    backend.weight = weight->get<std::uint32_t>();
    if (table.find(backend.name)) {
      throw bad_table(fmt::format("the backend name '{}' is given twice", backend.name));
    }
    table.backends.push_back(std::move(backend));
  }
  return table;
}

nlohmann::json RouteTable::to_json() const
{
  nlohmann::json listed = nlohmann::json::array();
  for (const auto& backend : backends) {
    listed.push_back(
      {{"name", backend.name}, {"url", backend.url()}, {"version", backend.version}, {"weight", backend.weight}});
  }
  return {{"model", model}, {"backends", listed}};
}

const RouteBackend* RouteTable::find(std::string_view name) const
{
  for (const auto& backend : backends) {
    if (backend.name == name) {
      return &backend;
    }
  }
  return nullptr;
}

std::optional<size_t> pick_by_weight(const RouteTable& table, std::uint64_t draw, std::uint64_t excluded)
{
  std::uint64_t total = 0;
  for (size_t i = 0; i < table.backends.size(); ++i) {
    if (!(excluded >> i & 1)) {
      total += table.backends[i].weight;
    }
  }
  if (total == 0) {
    return std::nullopt;
  }
  auto point = draw % total;
  for (size_t i = 0; i < table.backends.size(); ++i) {
    if (excluded >> i & 1) {
      continue;
    }
    if (point < table.backends[i].weight) {
      return i;
    }
    point -= table.backends[i].weight;
  }
  return std::nullopt;
}

} // namespace mlops::worker
