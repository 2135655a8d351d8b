#pragma once
// What changed between two trees (two dataset versions, or a version and a directory): files
// added, removed, modified (content or mode), and renamed, meaning removed under one path and
// added under another with the same content and mode. A file that moved and changed is a removal
// plus an addition, as in git without similarity detection.

#include "mlops/objects/manifest.hpp"

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace mlops::data {

enum class ChangeKind { added, removed, modified, renamed };

const char* change_name(ChangeKind kind);  // "added", "removed", "modified", "renamed"

struct FileChange
{
  ChangeKind kind;
  std::string path;                          // the new path (the old one for a removal)
  std::optional<objects::TreeEntry> before;  // absent for an addition
  std::optional<objects::TreeEntry> after;   // absent for a removal
};

struct TreeDiff
{
  std::vector<FileChange> changes;  // sorted by path
  std::size_t count(ChangeKind kind) const;
  bool empty() const { return changes.empty(); }
};

// Both lists sorted by path, as manifests and tree walks are.
TreeDiff diff_trees(const std::vector<objects::TreeEntry>& before, const std::vector<objects::TreeEntry>& after);

} // namespace mlops::data
