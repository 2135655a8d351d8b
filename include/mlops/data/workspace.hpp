#pragma once
// A dataset's directory on disk: what it holds now (hashed through the hash cache, so an
// unchanged workspace costs one lstat per file), and checkout, which makes it hold a version.

#include "mlops/objects/object_store.hpp"

#include <filesystem>
#include <string>
#include <vector>

namespace mlops::data {

struct ScannedDirectory
{
  std::vector<objects::TreeEntry> entries;  // sorted by path; .git and .mlops left out
  std::vector<std::string> skipped;         // special files
};

// Throws Error: not_found when `dir` is missing, failure naming every unreadable entry.
ScannedDirectory scan_directory(const std::filesystem::path& dir, unsigned jobs, objects::HashCache* cache,
                                Progress* progress);

struct CheckoutOptions
{
  objects::LinkMode link = objects::LinkMode::automatic;
  bool force = false;  // overwrite and delete files whose content is stored nowhere
  unsigned jobs = 1;
  objects::HashCache* cache = nullptr;
  Progress* progress = nullptr;
};

struct CheckoutReport
{
  std::size_t written = 0;    // files created or replaced
  std::size_t unchanged = 0;  // already right: not touched
  std::size_t removed = 0;    // files the version does not have
  std::size_t discarded = 0;  // of those replaced or removed, how many held content stored nowhere (--force)
  std::vector<std::string> skipped;  // special files found in the directory, left alone
};

// Makes `dir` hold exactly `entries` (a version's manifest), creating it when missing.
//
// Safety: every path comes from a manifest that parse_manifest vetted (relative, no "..", no
// duplicates, nothing beneath a link) and none may enter .git or .mlops; directories are opened
// one component at a time without following links, so nothing is written outside `dir`. A file
// whose content is not in the store (a local change) is never replaced or deleted without
// `force`: then nothing at all is changed and Error(conflict) lists them. Each file appears under
// its name only complete and verified against its digest (an unnamed file linked into place), so
// an interrupted checkout leaves only whole files, and running it again finishes the job.
CheckoutReport checkout(objects::ObjectStore& store, const std::vector<objects::TreeEntry>& entries,
                        const std::filesystem::path& dir, const CheckoutOptions& options);

} // namespace mlops::data
