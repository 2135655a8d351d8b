#pragma once
// The JSON of things several nouns print the same way.

#include "mlops/core/git_state.hpp"

#include <nlohmann/json.hpp>

#include <optional>

namespace mlops::cli {

// {"commit", "branch", "dirty", "path", "remote"}, or null outside a repository.
inline nlohmann::json git_json(const std::optional<GitState>& git)
{
  if (!git) {
    return nullptr;
  }
  auto optional = [](const std::optional<std::string>& value) { return value ? nlohmann::json(*value) : nlohmann::json(nullptr); };
  return {{"commit", optional(git->commit)}, {"branch", optional(git->branch)}, {"dirty", git->dirty},
          {"path", git->path}, {"remote", optional(git->remote)}};
}

} // namespace mlops::cli
