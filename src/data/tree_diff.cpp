#include "mlops/data/tree_diff.hpp"

#include <algorithm>
#include <map>
#include <tuple>

namespace mlops::data {

using objects::TreeEntry;

const char* change_name(ChangeKind kind)
{
  switch (kind) {
  case ChangeKind::added: return "added";
  case ChangeKind::removed: return "removed";
  case ChangeKind::modified: return "modified";
  case ChangeKind::renamed: return "renamed";
  }
  return "?";
}

std::size_t TreeDiff::count(ChangeKind kind) const
{
  return static_cast<std::size_t>(
    std::count_if(changes.begin(), changes.end(), [kind](const FileChange& change) { return change.kind == kind; }));
}

TreeDiff diff_trees(const std::vector<TreeEntry>& before, const std::vector<TreeEntry>& after)
{
  std::vector<const TreeEntry*> removed;
  std::vector<const TreeEntry*> added;
  TreeDiff diff;
  // A merge of the two sorted lists.
  size_t i = 0;
  size_t j = 0;
  while (i < before.size() || j < after.size()) {
    if (j == after.size() || (i < before.size() && before[i].path < after[j].path)) {
      removed.push_back(&before[i++]);
    } else if (i == before.size() || after[j].path < before[i].path) {
      added.push_back(&after[j++]);
    } else {
      if (before[i].digest != after[j].digest || before[i].mode != after[j].mode) {
        diff.changes.push_back({ChangeKind::modified, after[j].path, before[i], after[j]});
      }
      ++i;
      ++j;
    }
  }

  // Renames: same content and mode under a new path. Paired in path order when several files
  // share one content, so the result never depends on anything but the two trees.
  std::map<std::tuple<objects::Digest, std::uint32_t>, std::vector<const TreeEntry*>> removed_by_content;
  for (const auto* entry : removed) {
    removed_by_content[{entry->digest, entry->mode}].push_back(entry);
  }
  std::vector<const TreeEntry*> renamed_from;
  for (const auto* entry : added) {
    auto found = removed_by_content.find({entry->digest, entry->mode});
    if (found != removed_by_content.end() && !found->second.empty()) {
      const TreeEntry* source = found->second.front();
      found->second.erase(found->second.begin());
      renamed_from.push_back(source);
      diff.changes.push_back({ChangeKind::renamed, entry->path, *source, *entry});
    } else {
      diff.changes.push_back({ChangeKind::added, entry->path, std::nullopt, *entry});
    }
  }
  std::sort(renamed_from.begin(), renamed_from.end());
  for (const auto* entry : removed) {
    if (!std::binary_search(renamed_from.begin(), renamed_from.end(), entry)) {
      diff.changes.push_back({ChangeKind::removed, entry->path, *entry, std::nullopt});
    }
  }
  std::sort(diff.changes.begin(), diff.changes.end(),
            [](const FileChange& a, const FileChange& b) { return a.path < b.path; });
  return diff;
}

} // namespace mlops::data
