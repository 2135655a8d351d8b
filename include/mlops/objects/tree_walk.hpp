#pragma once
// Lists what a directory tree contributes to its manifest (rules in schemas/tree-manifest.md):
// regular files and symbolic links, never following links; special files are skipped.

#include "mlops/objects/sha256.hpp"

#include <filesystem>
#include <string>
#include <vector>

namespace mlops::objects {

// Paths are plain strings: std::filesystem::path splits itself into components on construction,
// which for tens of thousands of files costs more than listing them.
struct WalkedFile
{
  std::string path;       // relative to the root, '/'-separated
  std::string full;       // root + '/' + path
  std::uint32_t mode;     // mode_file, mode_executable or mode_symlink
  FileIdentity identity;  // from lstat, for the hash cache
};

struct TreeWalk
{
  std::vector<WalkedFile> files;        // sorted by path bytes
  std::vector<std::string> skipped;     // special files, relative paths
  std::vector<std::string> unreadable;  // entries that could not be listed, relative paths
};

// Directories that hold metadata, not data: `.git` and `.mlops` (a home). Datasets skip them at
// any depth, so versioning a project directory never snapshots its own database or repository.
bool is_metadata_directory(std::string_view name);

// Lists `root`, its subdirectories on up to `jobs` threads (listing is dominated by one lstat per
// file), leaving out metadata directories when `skip_metadata`. Throws Error: not_found when
// `root` is missing, failure when it cannot be read. Deeper problems are listed in `unreadable`,
// so the caller can name them with unreadable files.
TreeWalk walk_tree(const std::filesystem::path& root, unsigned jobs = 1, bool skip_metadata = false);

} // namespace mlops::objects
