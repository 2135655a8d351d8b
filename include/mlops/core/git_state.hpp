#pragma once
// Where the code stood when something was recorded: the git commit, branch and cleanliness of the
// repository holding a path. Datasets, runs and models keep it as lineage.

#include <filesystem>
#include <optional>
#include <string>

namespace mlops {

struct GitState
{
  std::optional<std::string> commit;  // 40 hex digits; none before the first commit
  std::optional<std::string> branch;  // none on a detached HEAD
  bool dirty = false;                 // tracked files differ from HEAD (untracked files do not count)
  std::string path;                   // the path asked about, relative to the repository root ("." for the root)
  std::optional<std::string> remote;  // origin's URL, without any user or password in it
};

// The state of the repository that contains `path` (searching upward, as git does), or nullopt
// when `path` is in no repository. libgit2 is loaded on the first call. Throws Error(failure)
// when the repository exists but cannot be read.
std::optional<GitState> git_state_of(const std::filesystem::path& path);

// A remote URL with its credentials removed: "https://user:token@host/x" -> "https://host/x".
std::string url_without_credentials(const std::string& url);

} // namespace mlops
