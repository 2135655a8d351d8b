// mlops db check | migrate | status
#include "context.hpp"
#include "nouns.hpp"

#include "mlops/home/check.hpp"
#include "mlops/store/migrations.hpp"

#include <CLI/CLI.hpp>
#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include <filesystem>

namespace mlops::cli {

namespace {

void run_check(Context& context)
{
  const Home& home = context.home();
  HomeCheck report = check_home(home, context.database_options());
  nlohmann::json document = {
    {"home", home.dir().string()},
    {"healthy", report.healthy()},
    {"schema_version", report.schema_version},
    {"latest_version", report.latest_version},
    {"journal_mode", report.journal_mode},
    {"database_bytes", report.database_bytes},
    {"objects", report.object_count},
    {"stale_tmp_files", report.stale_tmp_files},
    {"problems", report.problems},
  };
  Fields fields;
  fields.add("home", home.dir().string())
    .add("schema", fmt::format("version {} of {}{}", report.schema_version, report.latest_version,
                               report.schema_version < report.latest_version
                                 ? " (run `mlops db migrate`)"
                                 : ""))
    .add("journal", report.journal_mode)
    .add("database", fmt::format("{} bytes", report.database_bytes))
    .add("objects", std::to_string(report.object_count))
    .add("stale tmp files", std::to_string(report.stale_tmp_files))
    .add("status", report.healthy() ? "healthy" : fmt::format("{} problem(s)", report.problems.size()));
  std::string human = fields.render(context.out().style().color);
  for (const auto& problem : report.problems) {
    human += "problem: " + problem + "\n";
  }
  context.out().result(document, human);
  if (!report.healthy()) {
    context.fail_after_result(Error(
      ExitCode::integrity, fmt::format("the home {} has {} problem(s), listed above", home.dir().string(),
                                       report.problems.size())));
  }
}

void run_migrate(Context& context)
{
  const Home& home = context.home();
  auto report = home.migrate_database(context.database_options());
  nlohmann::json document = {
    {"home", home.dir().string()},
    {"from_version", report.from_version},
    {"to_version", report.to_version},
    {"applied", report.applied},
  };
  context.out().result(document, "");
  context.out().info(report.applied.empty()
                       ? fmt::format("Database is current (schema version {})", report.to_version)
                       : fmt::format("Migrated {} from schema version {} to {}",
                                     home.database_path().string(), report.from_version,
                                     report.to_version));
}

void run_status(Context& context)
{
  const Home& home = context.home();
  auto& db = context.database();
  nlohmann::json document = {
    {"home", home.dir().string()},
    {"database", home.database_path().string()},
    {"schema_version", store::schema_version(db)},
    {"latest_version", store::latest_version()},
    {"database_bytes", std::filesystem::file_size(home.database_path())},
  };
  Fields fields;
  fields.add("home", home.dir().string())
    .add("database", home.database_path().string())
    .add("schema", fmt::format("version {}", document["schema_version"].get<int>()));
  context.out().result(document, fields);
}

} // namespace

void setup_db(CLI::App& noun, Context& context)
{
  noun.require_subcommand(1);
  auto* check = noun.add_subcommand(
    "check", "Check the database (integrity, schema) and the object store layout; exit 5 on problems");
  on_run(*check, context, [&context] { run_check(context); });
  auto* migrate = noun.add_subcommand("migrate", "Apply pending schema migrations");
  on_run(*migrate, context, [&context] { run_migrate(context); });
  auto* status = noun.add_subcommand("status", "Show the home, database and schema version");
  on_run(*status, context, [&context] { run_status(context); });
}

} // namespace mlops::cli
