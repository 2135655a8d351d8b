#include "mlops/home/config.hpp"

#include "mlops/core/error.hpp"

#include <fmt/format.h>
#include <nlohmann/json.hpp>

namespace mlops {

namespace {

constexpr int current_format = 1;

[[noreturn]] void reject(std::string_view why)
{
  throw Error(ExitCode::integrity,
              fmt::format("config.json is invalid: {}, fix the file, or delete it and run `mlops "
                          "init` to write the defaults",
                          why));
}

std::map<std::string, std::string> parse_string_map(const nlohmann::json& value,
                                                    std::string_view key)
{
  if (!value.is_object()) {
    reject(fmt::format("\"{}\" must be an object of strings", key));
  }
  std::map<std::string, std::string> result;
  for (const auto& [name, item] : value.items()) {
    if (!item.is_string()) {
      reject(fmt::format("\"{}.{}\" must be a string", key, name));
    }
    result.emplace(name, item.get<std::string>());
  }
  return result;
}

} // namespace

HomeConfig parse_home_config(std::string_view text)
{
  auto document = nlohmann::json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (document.is_discarded()) {
    reject("it is not valid JSON");
  }
  if (!document.is_object()) {
    reject("the top level must be an object");
  }
  HomeConfig config;
  for (const auto& [key, value] : document.items()) {
    if (key == "format") {
      if (!value.is_number_integer() || value.get<std::int64_t>() != current_format) {
        reject(fmt::format("\"format\" must be {} (this mlops reads no other)", current_format));
      }
    } else if (key == "defaults") {
      config.defaults = parse_string_map(value, key);
    } else if (key == "remotes") {
      config.remotes = parse_string_map(value, key);
    } else {
      reject(fmt::format("unknown key \"{}\" (known: format, defaults, remotes)", key));
    }
  }
  if (!document.contains("format")) {
    reject("\"format\" is missing");
  }
  return config;
}

std::string render_home_config(const HomeConfig& config)
{
  nlohmann::json document = {
    {"format", config.format},
    {"defaults", config.defaults},
    {"remotes", config.remotes},
  };
  return document.dump(2) + "\n";
}

std::string default_config_text()
{
  return render_home_config(HomeConfig{});
}

} // namespace mlops
