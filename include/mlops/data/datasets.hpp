#pragma once
// Datasets: named, numbered snapshots of a directory. Each version is a tree object in the store
// (its manifest), pinned while the version is live, with the git commit its code stood at.
//
//   add      hashes (through the hash cache) and stores the directory; identical content to the
//            latest version makes no new version. The version row commits in the same
//            transaction as its objects: nothing half-recorded, numbers distinct under concurrency.
//   rm       marks a version deleted and drops its pin; the number is never reused.

#include "mlops/core/git_state.hpp"
#include "mlops/data/dataset_ref.hpp"
#include "mlops/objects/object_store.hpp"

#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

namespace mlops::data {

struct DatasetVersion
{
  std::string dataset;
  std::int64_t version = 0;
  objects::Digest tree;
  std::int64_t files = 0;
  std::int64_t size = 0;
  std::string message;
  std::string path;  // where it was added from: relative to the project, or absolute outside it
  std::optional<GitState> git;
  std::string created_at;
  std::optional<std::string> deleted_at;
  std::vector<std::string> tags;

  std::string ref() const { return dataset + "@" + std::to_string(version); }
};

struct DatasetSummary
{
  std::string name;
  std::string created_at;
  std::int64_t versions = 0;  // live ones
  std::optional<DatasetVersion> latest;
};

struct AddRequest
{
  std::string name;
  std::filesystem::path path;
  std::string message;
  std::vector<std::string> tags;
  objects::AddOptions store;  // link mode, jobs, cache, progress
};

struct AddOutcome
{
  DatasetVersion version;
  bool created = false;                       // false: identical to the latest version
  std::optional<std::int64_t> same_as_older;  // a new version whose content an older one had
  objects::AddResult stored;
  std::vector<std::string> skipped;           // special files left out
};

struct TagOutcome
{
  bool changed = false;
  std::optional<std::int64_t> moved_from;
};

class Datasets
{
public:
  Datasets(const Home& home, store::Database& db);

  // Throws Error: usage for a bad name, tag or a PATH that is no directory, not_found for a
  // missing PATH, conflict for a tag naming another version.
  AddOutcome add(const AddRequest& request);

  std::vector<DatasetSummary> list();
  // Newest first. Throws Error(not_found) for an unknown dataset.
  std::vector<DatasetVersion> versions(const std::string& name, bool include_deleted);
  // Throws Error(not_found): unknown dataset, version or tag, a deleted version, no live version.
  DatasetVersion resolve(const DatasetRef& ref);
  // The version's files, from its manifest, read and verified from the store.
  std::vector<objects::TreeEntry> files(const DatasetVersion& version);
  // Throws Error(conflict) when the tag names another version and not `force`.
  TagOutcome tag(const DatasetRef& ref, const std::string& tag, bool force);
  // Returns the version and the tags it lost; `already` when it was deleted before.
  struct Removal
  {
    DatasetVersion version;
    std::vector<std::string> tags;
    bool already = false;
  };
  Removal remove(const DatasetRef& ref);

  // Where a version was added from, as an absolute path.
  std::filesystem::path source_dir(const DatasetVersion& version) const;

  objects::ObjectStore& store() { return m_store; }

private:
  std::optional<DatasetVersion> find(const std::string& name, std::int64_t number);
  std::optional<DatasetVersion> latest(const std::string& name);
  void require_dataset(const std::string& name);
  void insert_tags(const DatasetVersion& version, const std::vector<std::string>& tags, bool force);

  const Home& m_home;
  store::Database& m_db;
  objects::ObjectStore m_store;
};

} // namespace mlops::data
