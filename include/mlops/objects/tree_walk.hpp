#pragma once
// Lists what a directory tree contributes to its manifest (rules in schemas/tree-manifest.md):
// regular files and symbolic links, never following links; special files are skipped.

#include "mlops/objects/sha256.hpp"

#include <filesystem>
#include <string>
#include <vector>

namespace mlops::objects {

struct WalkedFile
{
  std::string path;            // relative to the root, '/'-separated
  std::filesystem::path full;  // root / path
  std::uint32_t mode;          // mode_file, mode_executable or mode_symlink
  FileIdentity identity;       // from lstat, for the hash cache
};

struct TreeWalk
{
  std::vector<WalkedFile> files;     // sorted by path bytes
  std::vector<std::string> skipped;  // special files, relative paths
};

// Throws Error: not_found when `root` is missing, failure naming every directory that cannot be
// read.
TreeWalk walk_tree(const std::filesystem::path& root);

} // namespace mlops::objects
