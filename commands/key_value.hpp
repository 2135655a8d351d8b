#pragma once
// KEY=VALUE arguments (--param, --tag, --metric, model tag): split at the first '='.

#include "mlops/core/error.hpp"

#include <fmt/format.h>

#include <string>
#include <string_view>
#include <utility>

namespace mlops::cli {

// Throws Error(usage) naming `label` (the option or argument) when there is no '=' or no key.
inline std::pair<std::string, std::string> split_key_value(const std::string& text, std::string_view label)
{
  auto equals = text.find('=');
  if (equals == std::string::npos || equals == 0) {
    throw Error(ExitCode::usage, fmt::format("{} \"{}\" is not KEY=VALUE", label, text));
  }
  return {text.substr(0, equals), text.substr(equals + 1)};
}

} // namespace mlops::cli
