#pragma once
// .mlops/config.json: the home's settings. The file is outside input (users edit it), so the
// parser rejects anything it does not understand with a message naming the key.
//
//   {"format": 1, "defaults": {"link_mode": "auto"}, "remotes": {"origin": "s3://bucket/x"}}

#include <map>
#include <string>
#include <string_view>

namespace mlops {

struct HomeConfig
{
  int format = 1;
  std::map<std::string, std::string> defaults;  // default option values, by option name
  std::map<std::string, std::string> remotes;   // remote object stores, by name (URL)
};

// Throws Error(integrity) naming what is wrong and where.
HomeConfig parse_home_config(std::string_view text);

std::string render_home_config(const HomeConfig& config);
std::string default_config_text();

} // namespace mlops
