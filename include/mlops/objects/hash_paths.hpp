#pragma once
// Hashing what a command was given: files and directory trees, every file of every argument in
// one parallel pass, through the hash cache. `mlops hash` and `mlops artifact add` both start
// here; add then does its own per-file work (copying into the store) on the same plan.

#include "mlops/objects/manifest.hpp"
#include "mlops/objects/tree_walk.hpp"

#include <filesystem>
#include <functional>
#include <optional>
#include <string>
#include <vector>

namespace mlops {
class Progress;
}

namespace mlops::objects {

class HashCache;

// Above this many files one query loading the whole hash cache beats one query per file.
inline constexpr size_t preload_threshold = 64;

// One file to read: a plain argument, or a file inside a directory argument.
struct FileJob
{
  std::string full;       // the path to open
  std::string tree_path;  // path inside its tree; empty for a plain file argument
  std::uint32_t mode;
  FileIdentity identity;  // as listed (lstat inside trees, stat for arguments)
  size_t target;          // index of the argument it belongs to
};

struct Target
{
  std::filesystem::path path;  // as given
  bool is_tree = false;
  std::vector<std::string> skipped;  // special files inside a tree
};

struct HashPlan
{
  std::vector<Target> targets;
  std::vector<FileJob> files;
  std::uint64_t total_bytes = 0;
  std::vector<std::string> unreadable;  // directories or entries the listing could not read
};

// Throws one Error(failure) naming every problem (up to ten, then a count).
[[noreturn]] void throw_unreadable(std::vector<std::string> problems);

// A link's target text, as the manifest records it. Throws Error(failure) when it cannot be read
// or changed since it was listed.
std::string read_link_target(const FileJob& job);

// How many files to read at once for `jobs` cores. Small files are I/O-bound, not CPU-bound
// (hashing 4 KiB costs nothing; waiting for the disk does), so they get four readers per core.
unsigned reader_threads(const HashPlan& plan, unsigned jobs);

// Lists the files of `paths` (following symbolic links given as arguments, not inside trees),
// listing directories on up to `jobs` threads, without metadata directories when
// `skip_metadata` (see walk_tree). Throws Error: not_found for a missing path, failure for an
// unreadable one or a special file given as an argument.
HashPlan plan_hashing(const std::vector<std::filesystem::path>& paths, unsigned jobs = 1, bool skip_metadata = false);

struct FileDigest
{
  Digest digest;
  bool from_cache = false;
};

// The digest of every file of the plan, in plan order, read on `jobs` threads. Symbolic links
// hash their target text. Every unreadable file is named in one Error(failure).
std::vector<FileDigest> hash_files(const HashPlan& plan, unsigned jobs, HashCache* cache, Progress* progress);

struct HashedTarget
{
  std::filesystem::path path;
  bool is_tree = false;
  Digest digest;                    // of the file, or of the tree's manifest
  std::int64_t size = 0;            // of the file, or of all the tree's files
  std::vector<TreeEntry> entries;   // trees only
  std::string manifest;             // trees only
  std::vector<std::string> skipped;
};

// Puts the per-file digests together into one result per argument, building tree manifests.
std::vector<HashedTarget> assemble_targets(const HashPlan& plan, const std::vector<FileDigest>& digests);

} // namespace mlops::objects
