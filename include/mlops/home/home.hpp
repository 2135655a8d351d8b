#pragma once
// The mlops home: the .mlops directory that holds a project's metadata and objects.
//
//   .mlops/mlops.db        metadata (SQLite, WAL)
//   .mlops/objects/        content-addressed blobs
//   .mlops/tmp/            staging for atomic writes (same filesystem as objects/)
//   .mlops/workers/        worker logs and runtime files
//   .mlops/config.json     settings

#include "mlops/store/database.hpp"
#include "mlops/store/migrations.hpp"

#include <filesystem>
#include <optional>
#include <string_view>
#include <vector>

namespace mlops {

inline constexpr std::string_view home_dir_name = ".mlops";

class Home
{
public:
  // `dir` is the .mlops directory itself.
  explicit Home(std::filesystem::path dir);

  const std::filesystem::path& dir() const { return m_dir; }
  std::filesystem::path database_path() const { return m_dir / "mlops.db"; }
  std::filesystem::path objects_dir() const { return m_dir / "objects"; }
  std::filesystem::path tmp_dir() const { return m_dir / "tmp"; }
  std::filesystem::path workers_dir() const { return m_dir / "workers"; }
  std::filesystem::path config_path() const { return m_dir / "config.json"; }
  // The directory holding .mlops: paths recorded relative to it survive moving the project.
  std::filesystem::path project_dir() const { return m_dir.parent_path(); }

  // Throws Error(not_found), saying how to recreate it, when the database file is missing.
  void require_database() const;

  // Opens the database and applies pending migrations, so that a binary upgrade upgrades the
  // schema on first use. Throws Error (not_found when the database is missing, conflict when it
  // is newer than this binary).
  store::Database open_database(const store::DatabaseOptions& options = {}) const;

  // Brings the database to the latest schema, creating it when it does not exist yet (so that a
  // `db migrate` racing an `init` finishes the job instead of failing). Throws Error.
  store::MigrationReport migrate_database(const store::DatabaseOptions& options = {}) const;

private:
  std::filesystem::path m_dir;
};

// The .mlops directory that `dir` names: `dir` itself when it is called .mlops, else dir/.mlops.
// Relative paths are made absolute; a trailing slash (as tab completion adds) is ignored.
std::filesystem::path home_dir_for(const std::filesystem::path& dir);

// The nearest `.mlops` directory at or above `start`, if any.
std::optional<std::filesystem::path> find_home_upward(const std::filesystem::path& start);

// The home a command works on: `explicit_dir` (from --home or MLOPS_HOME, naming either a project
// directory containing .mlops or the .mlops directory itself) when given, else the nearest one
// above `cwd`. Throws Error(not_found) saying how to create one.
Home locate_home(const std::optional<std::filesystem::path>& explicit_dir,
                 const std::filesystem::path& cwd);

struct InitResult
{
  Home home;
  bool created;              // this call made the .mlops directory (init is idempotent)
  int schema_version;        // after migration
  std::vector<int> applied;  // migrations this call applied
};

// Creates the home that `dir` names (see home_dir_for) with its database, directories and default
// config, or completes and migrates an existing one. Safe to run from many processes at once.
InitResult init_home(const std::filesystem::path& dir, const store::DatabaseOptions& options = {});

} // namespace mlops
