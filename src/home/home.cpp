#include "mlops/home/home.hpp"

#include "mlops/core/error.hpp"
#include "mlops/home/config.hpp"
#include "mlops/store/migrations.hpp"
#include "mlops/util/file.hpp"

#include <fmt/format.h>
#include <fmt/std.h>
#include <spdlog/spdlog.h>

#include <system_error>

namespace mlops {

namespace fs = std::filesystem;

Home::Home(fs::path dir) : m_dir(std::move(dir)) {}

void Home::require_database() const
{
  if (!fs::exists(database_path())) {
    throw Error(ExitCode::not_found,
                fmt::format("the home {} has no database (mlops.db is missing), run `mlops init {}` "
                            "to create a new one",
                            m_dir, m_dir.parent_path()));
  }
}

store::Database Home::open_database(const store::DatabaseOptions& options) const
{
  require_database();
  auto db = store::Database::open(database_path(), options);
  int version = store::schema_version(db);
  if (version != store::latest_version()) {
    auto report = store::migrate(db);  // Refuses a database newer than this binary.
    spdlog::info("migrated {} from schema version {} to {}", database_path().string(),
                 report.from_version, report.to_version);
  }
  return db;
}

store::MigrationReport Home::migrate_database(const store::DatabaseOptions& options) const
{
  store::DatabaseOptions create = options;
  create.create = true;
  auto db = store::Database::open(database_path(), create);
  return store::migrate(db);
}

fs::path home_dir_for(const fs::path& dir)
{
  fs::path normal = fs::absolute(dir).lexically_normal();
  if (!normal.has_filename() && normal.has_parent_path()) {
    normal = normal.parent_path();  // "proj/.mlops/" -> "proj/.mlops"
  }
  return normal.filename() == home_dir_name ? normal : normal / home_dir_name;
}

std::optional<fs::path> find_home_upward(const fs::path& start)
{
  std::error_code ignored;
  for (fs::path dir = start; !dir.empty(); dir = dir.parent_path()) {
    fs::path candidate = dir / home_dir_name;
    if (fs::is_directory(candidate, ignored)) {
      return candidate;
    }
    if (dir == dir.root_path()) {
      break;
    }
  }
  return std::nullopt;
}

Home locate_home(const std::optional<fs::path>& explicit_dir, const fs::path& cwd)
{
  if (explicit_dir) {
    fs::path dir = home_dir_for(*explicit_dir);
    std::error_code ignored;
    if (fs::is_directory(dir, ignored)) {
      return Home(dir);
    }
    throw Error(ExitCode::not_found,
                fmt::format("{} is not an mlops home ({} does not exist), run `mlops init {}` to "
                            "create one there",
                            explicit_dir->string(), dir, dir.parent_path()));
  }
  if (auto found = find_home_upward(cwd)) {
    return Home(*found);
  }
  throw Error(ExitCode::not_found,
              fmt::format("no mlops home in {} or any directory above it, run `mlops init` in your "
                          "project directory, or pass --home DIR (or set MLOPS_HOME)",
                          cwd));
}

namespace {

// Creating a directory that another process created a moment ago is fine; anything else is not.
void make_directory(const fs::path& dir)
{
  std::error_code error;
  fs::create_directories(dir, error);
  if (error && !fs::is_directory(dir)) {
    throw Error(ExitCode::failure,
                fmt::format("cannot create {}: {}, check that its parent is writable", dir,
                            error.message()));
  }
}

} // namespace

InitResult init_home(const fs::path& dir, const store::DatabaseOptions& options)
{
  Home home(home_dir_for(dir));

  make_directory(home.dir().parent_path());
  // Only one of many processes racing to create the home can make its directory.
  std::error_code exists;
  const bool created = fs::create_directory(home.dir(), exists);
  make_directory(home.dir());
  for (const auto& subdir : {home.objects_dir(), home.tmp_dir(), home.workers_dir()}) {
    make_directory(subdir);
  }
  if (!fs::exists(home.config_path())) {
    try {
      util::write_file_atomic(home.config_path(), default_config_text());
    } catch (const std::system_error& error) {
      throw Error(ExitCode::failure, fmt::format("cannot write {}: {}, check the permissions of {}",
                                                 home.config_path(), error.code().message(),
                                                 home.dir()));
    }
  }

  auto report = home.migrate_database(options);
  return InitResult{home, created, report.to_version, report.applied};
}

} // namespace mlops
