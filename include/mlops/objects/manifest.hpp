#pragma once
// The canonical manifest of a directory tree, whose SHA-256 is the tree's digest. Its exact bytes
// are specified in schemas/tree-manifest.md so that anyone can recompute a digest:
//
//   "mlops-tree 1\n"  then per entry, sorted by path bytes:  "<mode> <size> <hex digest> <path>\0"
//
// Modes are git's: 100644 file, 100755 executable file, 120000 symbolic link (whose "content" is
// its target). Paths are relative, '/'-separated, without empty, "." or ".." components; any
// other byte (spaces, newlines, non-UTF-8) is allowed, which is why entries end with NUL.

#include "mlops/objects/digest.hpp"

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace mlops::objects {

inline constexpr std::uint32_t mode_file = 0100644;
inline constexpr std::uint32_t mode_executable = 0100755;
inline constexpr std::uint32_t mode_symlink = 0120000;

struct TreeEntry
{
  std::string path;
  std::uint32_t mode = mode_file;
  std::int64_t size = 0;
  Digest digest;

  bool operator==(const TreeEntry&) const = default;
};

// Whether `path` may appear in a manifest (see above). Checkout relies on this to never write
// outside its directory.
bool is_safe_relative_path(std::string_view path);

// The manifest bytes of `entries`, in any order. Throws Error(failure) on an unsafe path or a
// path listed twice: a bug in the caller.
std::string render_manifest(const std::vector<TreeEntry>& entries);

// Parses manifest bytes, which are outside input once stored. Throws Error(integrity) naming the
// first problem: bad header, bad field, unsafe or duplicate path, entries out of order.
std::vector<TreeEntry> parse_manifest(std::string_view bytes);

} // namespace mlops::objects
