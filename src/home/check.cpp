#include "mlops/home/check.hpp"

#include "mlops/core/error.hpp"
#include "mlops/core/interrupt.hpp"
#include "mlops/home/config.hpp"
#include "mlops/store/migrations.hpp"
#include "mlops/store/statement.hpp"
#include "mlops/util/file.hpp"

#include <fmt/format.h>
#include <fmt/std.h>

#include <cctype>
#include <map>

namespace mlops {

namespace fs = std::filesystem;

namespace {

bool is_lower_hex(std::string_view text)
{
  for (char c : text) {
    if (!std::isxdigit(static_cast<unsigned char>(c)) || std::isupper(static_cast<unsigned char>(c))) {
      return false;
    }
  }
  return !text.empty();
}

void check_layout(const Home& home, HomeCheck& report)
{
  for (const auto& dir : {home.objects_dir(), home.tmp_dir(), home.workers_dir()}) {
    if (!fs::is_directory(dir)) {
      report.problems.push_back(
        fmt::format("{} is missing, run `mlops init {}` to recreate it", dir, home.dir().parent_path()));
    }
  }
  try {
    parse_home_config(util::read_file(home.config_path()));
  } catch (const Error& error) {
    report.problems.push_back(error.what());
  } catch (const std::exception& error) {
    report.problems.push_back(fmt::format("{} cannot be read: {}", home.config_path(), error.what()));
  }
}

// Objects live at objects/sha256/ab/cdef... (the digest split after two hex digits). Anything
// else in there was not written by mlops and would confuse gc, so it is reported.
void check_objects(const Home& home, HomeCheck& report)
{
  std::error_code error;
  fs::path root = home.objects_dir() / "sha256";
  if (!fs::is_directory(root, error)) {
    return;  // No object stored yet.
  }
  for (const auto& fan_out : fs::directory_iterator(root, error)) {
    throw_if_interrupted();
    std::string prefix = fan_out.path().filename().string();
    if (!fan_out.is_directory(error) || prefix.size() != 2 || !is_lower_hex(prefix)) {
      report.problems.push_back(fmt::format("{} does not belong in the object store, move it away",
                                            fan_out.path()));
      continue;
    }
    for (const auto& object : fs::directory_iterator(fan_out.path(), error)) {
      std::string rest = object.path().filename().string();
      if (!object.is_regular_file(error) || rest.size() != 62 || !is_lower_hex(rest)) {
        report.problems.push_back(
          fmt::format("{} is not a stored object, move it away", object.path()));
        continue;
      }
      ++report.object_count;
    }
  }
  if (error) {
    report.problems.push_back(fmt::format("cannot list {}: {}", root, error.message()));
  }
}

void check_database(store::Database& db, HomeCheck& report)
{
  for (auto integrity = db.prepare("PRAGMA integrity_check"); integrity.step();) {
    if (auto line = integrity.column_text(0); line != "ok") {
      report.problems.push_back(fmt::format("SQLite integrity check: {}", line));
    }
  }
  for (auto keys = db.prepare("PRAGMA foreign_key_check"); keys.step();) {
    report.problems.push_back(fmt::format("row {} of table {} refers to a missing row of {}",
                                          keys.column_int64(1), keys.column_text(0),
                                          keys.column_text(2)));
  }

  // Each applied migration must be recorded under the name this binary knows it by.
  std::map<int, std::string> recorded;
  if (report.schema_version > 0) {
    for (auto rows = db.prepare("SELECT version, name FROM schema_migrations"); rows.step();) {
      recorded.emplace(static_cast<int>(rows.column_int64(0)), rows.column_text(1));
    }
  }
  for (const auto& migration : store::embedded_migrations()) {
    if (migration.version > report.schema_version) {
      break;
    }
    auto found = recorded.find(migration.version);
    if (found == recorded.end()) {
      report.problems.push_back(
        fmt::format("migration {:04}_{} is applied but not recorded", migration.version, migration.name));
    } else if (found->second != migration.name) {
      report.problems.push_back(fmt::format("migration {} is recorded as \"{}\" but this mlops knows "
                                            "it as \"{}\"; the database came from another build",
                                            migration.version, found->second, migration.name));
    }
  }
}

} // namespace

HomeCheck check_home(const Home& home, const store::DatabaseOptions& options)
{
  HomeCheck report;
  report.latest_version = store::latest_version();
  check_layout(home, report);
  check_objects(home, report);
  std::error_code error;
  for (fs::directory_iterator entry(home.tmp_dir(), error), end; !error && entry != end;
       entry.increment(error)) {
    ++report.stale_tmp_files;
  }

  home.require_database();
  // Opened read-write although nothing is written: the last connection to close removes the
  // -wal and -shm files, which a read-only connection would leave behind.
  auto db = store::Database::open(home.database_path(), options);
  report.database_bytes = static_cast<std::int64_t>(fs::file_size(home.database_path(), error));
  report.schema_version = store::schema_version(db);
  store::require_known_version(db, report.schema_version, report.latest_version);
  {
    auto mode = db.prepare("PRAGMA journal_mode");
    mode.step();
    report.journal_mode = mode.column_text(0);
  }
  if (report.journal_mode != "wal") {
    report.problems.push_back(fmt::format("the database uses journal mode {} instead of wal, run "
                                          "`mlops db migrate` to switch it",
                                          report.journal_mode));
  }
  check_database(db, report);
  return report;
}

} // namespace mlops
