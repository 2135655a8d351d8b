#include "mlops/data/tree_diff.hpp"

#include "mlops/objects/sha256.hpp"

#include <doctest/doctest.h>

#include <string>
#include <vector>

using namespace mlops;
using namespace mlops::data;
using objects::TreeEntry;

namespace {

TreeEntry entry(const std::string& path, const std::string& content, std::uint32_t mode = objects::mode_file)
{
  return TreeEntry{path, mode, static_cast<std::int64_t>(content.size()), objects::sha256(content)};
}

std::vector<std::string> described(const TreeDiff& diff)
{
  std::vector<std::string> lines;
  for (const auto& change : diff.changes) {
    std::string line = std::string(change_name(change.kind)) + " " + change.path;
    if (change.kind == ChangeKind::renamed) {
      line += " from " + change.before->path;
    }
    lines.push_back(line);
  }
  return lines;
}

} // namespace

TEST_CASE("mlops::data::diff_trees")
{
  SUBCASE("identical trees have no changes")
  {
    std::vector<TreeEntry> tree = {entry("a", "1"), entry("b/c", "2")};
    CHECK(diff_trees(tree, tree).empty());
    CHECK(diff_trees({}, {}).empty());
  }
  SUBCASE("added, removed, modified, sorted by path")
  {
    auto diff = diff_trees({entry("a", "1"), entry("b", "2"), entry("d", "4")},
                           {entry("a", "1"), entry("b", "22"), entry("c", "3")});
    CHECK(described(diff) == std::vector<std::string>{"modified b", "added c", "removed d"});
    CHECK(diff.count(ChangeKind::added) == 1);
    CHECK(diff.count(ChangeKind::renamed) == 0);
    CHECK(diff.changes[0].before->size == 1);
    CHECK(diff.changes[0].after->size == 2);
  }
  SUBCASE("a mode change alone is a modification")
  {
    auto diff = diff_trees({entry("run.sh", "x")}, {entry("run.sh", "x", objects::mode_executable)});
    CHECK(described(diff) == std::vector<std::string>{"modified run.sh"});
  }
  SUBCASE("same content under a new path is a rename; changed content is not")
  {
    auto diff = diff_trees({entry("old/a", "same"), entry("old/b", "before")},
                           {entry("new/a", "same"), entry("new/b", "after")});
    CHECK(described(diff) == std::vector<std::string>{"renamed new/a from old/a", "added new/b", "removed old/b"});
  }
  SUBCASE("files sharing content pair up in path order, the rest stay additions")
  {
    auto diff = diff_trees({entry("x1", "dup"), entry("x2", "dup")},
                           {entry("y1", "dup"), entry("y2", "dup"), entry("y3", "dup")});
    CHECK(described(diff) == std::vector<std::string>{"renamed y1 from x1", "renamed y2 from x2", "added y3"});
  }
  SUBCASE("a link and a file with the same bytes are not a rename")
  {
    auto diff = diff_trees({entry("target", "t")}, {entry("link", "t", objects::mode_symlink)});
    CHECK(described(diff) == std::vector<std::string>{"added link", "removed target"});
  }
}
