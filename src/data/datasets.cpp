#include "mlops/data/datasets.hpp"

#include "mlops/core/error.hpp"
#include "mlops/store/database.hpp"
#include "mlops/store/git_columns.hpp"
#include "mlops/store/statement.hpp"
#include "mlops/store/transaction.hpp"
#include "mlops/util/time.hpp"

#include <fmt/format.h>
#include <fmt/std.h>
#include <spdlog/spdlog.h>

namespace mlops::data {

namespace fs = std::filesystem;

namespace {

constexpr const char* version_columns =
  "dataset, version, tree, files, size, message, path, git_commit, git_branch, git_dirty, git_path, "
  "git_remote, created_at, deleted_at";

DatasetVersion read_version(const store::Statement& row)
{
  DatasetVersion version;
  version.dataset = row.column_text(0);
  version.version = row.column_int64(1);
  version.tree = objects::Digest::parse(row.column_text(2)).value_or(objects::Digest{});
  version.files = row.column_int64(3);
  version.size = row.column_int64(4);
  version.message = row.column_text(5);
  version.path = row.column_text(6);
  version.git = store::read_git_columns(row, 7);
  version.created_at = row.column_text(12);
  version.deleted_at = row.column_optional_text(13);
  return version;
}

std::string pin_owner(const DatasetVersion& version)
{
  return version.ref();
}

// The git state of the data's directory, else of the working directory. Lineage is a bonus: a
// repository libgit2 cannot read costs a warning, not the version.
std::optional<GitState> lineage_of(const fs::path& path)
{
  try {
    if (auto state = git_state_of(path)) {
      return state;
    }
    return git_state_of(fs::current_path());
  } catch (const Error& error) {
    spdlog::warn("no git lineage recorded: {}", error.what());
    return std::nullopt;
  }
}

} // namespace

Datasets::Datasets(const Home& home, store::Database& db) : m_home(home), m_db(db), m_store(home, db) {}

fs::path Datasets::source_dir(const DatasetVersion& version) const
{
  fs::path path = version.path;
  return path.is_absolute() ? path : (m_home.project_dir() / path).lexically_normal();
}

std::optional<DatasetVersion> Datasets::find(const std::string& name, std::int64_t number)
{
  auto row = m_db.prepare(fmt::format("SELECT {} FROM dataset_versions WHERE dataset = ? AND version = ?", version_columns));
  row.bind_all(name, number);
  if (!row.step()) {
    return std::nullopt;
  }
  auto version = read_version(row);
  auto tags = m_db.prepare("SELECT tag FROM dataset_tags WHERE dataset = ? AND version = ? ORDER BY tag");
  tags.bind_all(name, number);
  while (tags.step()) {
    version.tags.push_back(tags.column_text(0));
  }
  return version;
}

std::optional<DatasetVersion> Datasets::latest(const std::string& name)
{
  auto row = m_db.prepare("SELECT max(version) FROM dataset_versions WHERE dataset = ? AND deleted_at IS NULL");
  row.bind(1, name);
  if (!row.step() || row.column_is_null(0)) {
    return std::nullopt;
  }
  std::int64_t number = row.column_int64(0);
  return find(name, number);
}

void Datasets::require_dataset(const std::string& name)
{
  auto row = m_db.prepare("SELECT 1 FROM datasets WHERE name = ?");
  if (!row.bind(1, name).step()) {
    throw Error(ExitCode::not_found,
                fmt::format("no dataset named \"{}\"; `mlops data ls` lists them, `mlops data add {} DIR` creates it", name, name));
  }
}

void Datasets::insert_tags(const DatasetVersion& version, const std::vector<std::string>& tags, bool force)
{
  for (const auto& tag : tags) {
    auto row = m_db.prepare("SELECT version FROM dataset_tags WHERE dataset = ? AND tag = ?");
    if (row.bind_all(version.dataset, tag).step()) {
      std::int64_t current = row.column_int64(0);
      if (current == version.version) {
        continue;
      }
      if (!force) {
        throw Error(ExitCode::conflict,
                    fmt::format("tag \"{}\" already names {}@{}; pass --force to move it to {}", tag,
                                version.dataset, current, version.ref()));
      }
    }
    m_db.prepare("INSERT OR REPLACE INTO dataset_tags (dataset, tag, version, created_at) VALUES (?, ?, ?, ?)")
      .bind_all(version.dataset, tag, version.version, util::now_iso8601())
      .run();
  }
}

AddOutcome Datasets::add(const AddRequest& request)
{
  validate_dataset_name(request.name);
  for (const auto& tag : request.tags) {
    validate_tag(tag);
  }
  std::error_code error;
  auto status = fs::status(request.path, error);
  if (status.type() == fs::file_type::not_found) {
    throw Error(ExitCode::not_found, fmt::format("{} does not exist", request.path));
  }
  if (!fs::is_directory(status)) {
    throw Error(ExitCode::usage, fmt::format("{} is not a directory: a dataset version is a snapshot of a directory; "
                                             "put the file in one", request.path));
  }
  fs::path absolute = fs::weakly_canonical(fs::absolute(request.path));
  fs::path relative = absolute.lexically_relative(fs::weakly_canonical(m_home.project_dir()));
  bool inside = !relative.empty() && *relative.begin() != "..";
  std::string recorded_path = inside ? relative.string() : absolute.string();
  auto git = lineage_of(absolute);

  AddOutcome outcome;
  auto options = request.store;
  options.ref_kind.clear();  // The version pins its tree, under its own name.
  options.skip_metadata = true;
  options.in_transaction = [&](const objects::AddResult& stored) {
    outcome = AddOutcome{};  // A transaction retried after a busy database starts over.
    const auto& tree = stored.targets.at(0);
    std::string now = util::now_iso8601();
    m_db.prepare("INSERT OR IGNORE INTO datasets (name, created_at) VALUES (?, ?)").bind_all(request.name, now).run();
    if (auto current = latest(request.name); current && current->tree == tree.digest) {
      outcome.version = *current;  // Identical content: no new version.
      insert_tags(outcome.version, request.tags, false);
      return;
    }
    auto next = m_db.prepare("SELECT coalesce(max(version), 0) + 1 FROM dataset_versions WHERE dataset = ?");
    next.bind(1, request.name).step();
    DatasetVersion version;
    version.dataset = request.name;
    version.version = next.column_int64(0);
    version.tree = tree.digest;
    version.files = static_cast<std::int64_t>(tree.entries.size());
    version.size = tree.size;
    version.message = request.message;
    version.path = recorded_path;
    version.git = git;
    version.created_at = now;
    auto insert = m_db.prepare(fmt::format("INSERT INTO dataset_versions ({}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, NULL)", version_columns));
    insert.bind_all(version.dataset, version.version, version.tree.hex(), version.files, version.size, version.message, version.path);
    store::bind_git_columns(insert, 8, git).bind(8 + store::git_column_count, version.created_at).run();
    m_db.prepare("INSERT INTO object_refs (digest, kind, owner, created_at) VALUES (?, 'dataset', ?, ?)")
      .bind_all(version.tree.hex(), pin_owner(version), now)
      .run();
    insert_tags(version, request.tags, false);
    auto older = m_db.prepare("SELECT max(version) FROM dataset_versions WHERE dataset = ? AND tree = ? AND version < ? "
                              "AND deleted_at IS NULL");
    if (older.bind_all(version.dataset, version.tree.hex(), version.version).step() && !older.column_is_null(0)) {
      outcome.same_as_older = older.column_int64(0);
    }
    outcome.version = std::move(version);
    outcome.created = true;
  };
  outcome.stored = m_store.add({request.path}, options);
  outcome.skipped = outcome.stored.targets.at(0).skipped;
  outcome.version.tags.clear();
  if (auto reread = find(outcome.version.dataset, outcome.version.version)) {
    outcome.version.tags = reread->tags;
  }
  return outcome;
}

std::vector<DatasetSummary> Datasets::list()
{
  std::vector<DatasetSummary> summaries;
  for (auto rows = m_db.prepare("SELECT d.name, d.created_at, (SELECT count(*) FROM dataset_versions v WHERE "
                                "v.dataset = d.name AND v.deleted_at IS NULL) FROM datasets d ORDER BY d.name");
       rows.step();) {
    summaries.push_back({rows.column_text(0), rows.column_text(1), rows.column_int64(2), std::nullopt});
  }
  for (auto& summary : summaries) {
    summary.latest = latest(summary.name);
  }
  return summaries;
}

std::vector<DatasetVersion> Datasets::versions(const std::string& name, bool include_deleted)
{
  require_dataset(name);
  std::vector<std::int64_t> numbers;
  auto rows = m_db.prepare(std::string("SELECT version FROM dataset_versions WHERE dataset = ?") +
                           (include_deleted ? "" : " AND deleted_at IS NULL") + " ORDER BY version DESC");
  for (rows.bind(1, name); rows.step();) {
    numbers.push_back(rows.column_int64(0));
  }
  std::vector<DatasetVersion> versions;
  for (auto number : numbers) {
    versions.push_back(*find(name, number));
  }
  return versions;
}

DatasetVersion Datasets::resolve(const DatasetRef& ref)
{
  require_dataset(ref.name);
  if (std::holds_alternative<Latest>(ref.version)) {
    if (auto version = latest(ref.name)) {
      return *version;
    }
    throw Error(ExitCode::not_found, fmt::format("dataset \"{}\" has no versions left (all were removed with `data rm`)", ref.name));
  }
  std::int64_t number = 0;
  if (const auto* given = std::get_if<std::int64_t>(&ref.version)) {
    number = *given;
  } else {
    const auto& tag = std::get<std::string>(ref.version);
    auto row = m_db.prepare("SELECT version FROM dataset_tags WHERE dataset = ? AND tag = ?");
    if (!row.bind_all(ref.name, tag).step()) {
      throw Error(ExitCode::not_found, fmt::format("dataset \"{}\" has no version tagged \"{}\"; `mlops data log {}` shows its tags",
                                                   ref.name, tag, ref.name));
    }
    number = row.column_int64(0);
  }
  auto version = find(ref.name, number);
  if (!version) {
    throw Error(ExitCode::not_found, fmt::format("dataset \"{}\" has no version {}; `mlops data log {}` lists them", ref.name,
                                                 number, ref.name));
  }
  if (version->deleted_at) {
    throw Error(ExitCode::not_found, fmt::format("{} was removed (`data rm`, {})", version->ref(), *version->deleted_at));
  }
  return *version;
}

std::vector<objects::TreeEntry> Datasets::files(const DatasetVersion& version)
{
  return objects::parse_manifest(m_store.read(version.tree));
}

TagOutcome Datasets::tag(const DatasetRef& ref, const std::string& tag, bool force)
{
  validate_tag(tag);
  TagOutcome outcome;
  store::write_transaction(m_db, [&] {
    auto version = resolve(ref);
    auto row = m_db.prepare("SELECT version FROM dataset_tags WHERE dataset = ? AND tag = ?");
    if (row.bind_all(version.dataset, tag).step()) {
      std::int64_t current = row.column_int64(0);
      if (current == version.version) {
        return;
      }
      outcome.moved_from = current;
    }
    insert_tags(version, {tag}, force);
    outcome.changed = true;
  });
  return outcome;
}

Datasets::Removal Datasets::remove(const DatasetRef& ref)
{
  Removal removal;
  store::write_transaction(m_db, [&] {
    if (const auto* number = std::get_if<std::int64_t>(&ref.version)) {
      require_dataset(ref.name);
      if (auto version = find(ref.name, *number); version && version->deleted_at) {
        removal.version = *version;
        removal.already = true;
        return;
      }
    }
    removal.version = resolve(ref);
    removal.tags = removal.version.tags;
    std::string now = util::now_iso8601();
    m_db.prepare("UPDATE dataset_versions SET deleted_at = ? WHERE dataset = ? AND version = ?")
      .bind_all(now, removal.version.dataset, removal.version.version)
      .run();
    m_db.prepare("DELETE FROM dataset_tags WHERE dataset = ? AND version = ?")
      .bind_all(removal.version.dataset, removal.version.version)
      .run();
    m_db.prepare("DELETE FROM object_refs WHERE kind = 'dataset' AND owner = ?").bind(1, pin_owner(removal.version)).run();
    removal.version.deleted_at = now;
  });
  return removal;
}

} // namespace mlops::data
