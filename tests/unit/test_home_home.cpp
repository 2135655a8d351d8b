#include "mlops/home/home.hpp"

#include "mlops/core/error.hpp"
#include "mlops/home/check.hpp"
#include "mlops/store/migrations.hpp"
#include "mlops/store/statement.hpp"
#include "mlops/util/file.hpp"

#include "temp_dir.hpp"

#include <doctest/doctest.h>

using namespace mlops;
namespace fs = std::filesystem;

TEST_CASE("mlops::init_home")
{
  test::TempDir dir;
  auto project = dir.path() / "project";

  SUBCASE("creates the layout, the database and the config, once")
  {
    auto first = init_home(project);
    CHECK(first.created);
    CHECK(first.home.dir() == project / ".mlops");
    for (const auto& path : {first.home.database_path(), first.home.objects_dir(),
                             first.home.tmp_dir(), first.home.workers_dir(), first.home.config_path()}) {
      CHECK_MESSAGE(fs::exists(path), path);
    }
    CHECK(first.schema_version == store::latest_version());

    auto second = init_home(project);
    CHECK_FALSE(second.created);
    CHECK(second.schema_version == first.schema_version);
  }
  SUBCASE("completes a home whose directories were removed, keeping the config")
  {
    auto home = init_home(project).home;
    util::write_file_atomic(home.config_path(), R"({"format": 1, "remotes": {"o": "s3://x"}})");
    fs::remove_all(home.tmp_dir());
    init_home(project);
    CHECK(fs::is_directory(home.tmp_dir()));
    CHECK(util::read_file(home.config_path()).find("s3://x") != std::string::npos);
  }
}

TEST_CASE("mlops::locate_home")
{
  test::TempDir dir;
  auto project = dir.path() / "project";
  auto nested = project / "src" / "deep";
  fs::create_directories(nested);

  SUBCASE("outside any home: not found, saying how to create one")
  {
    try {
      locate_home(std::nullopt, nested);
      FAIL("found a home that does not exist");
    } catch (const Error& error) {
      CHECK(error.code() == ExitCode::not_found);
      CHECK(std::string(error.what()).find("mlops init") != std::string::npos);
    }
  }
  SUBCASE("finds the nearest home upward")
  {
    init_home(project);
    CHECK(locate_home(std::nullopt, nested).dir() == project / ".mlops");
    init_home(project / "src");
    CHECK(locate_home(std::nullopt, nested).dir() == project / "src" / ".mlops");
  }
  SUBCASE("an explicit home may name the project or the .mlops directory, with a trailing slash")
  {
    init_home(project);
    CHECK(locate_home(project, "/").dir() == project / ".mlops");
    CHECK(locate_home(project / ".mlops", "/").dir() == project / ".mlops");
    CHECK(locate_home(project.string() + "/", "/").dir() == project / ".mlops");
    CHECK(locate_home((project / ".mlops").string() + "/", "/").dir() == project / ".mlops");
    CHECK_THROWS_AS(locate_home(nested, "/"), Error);
  }
  SUBCASE("init given the .mlops directory does not nest another one")
  {
    init_home((project / ".mlops").string() + "/");
    CHECK(fs::exists(project / ".mlops" / "mlops.db"));
    CHECK_FALSE(fs::exists(project / ".mlops" / ".mlops"));
  }
}

TEST_CASE("mlops::Home::open_database")
{
  test::TempDir dir;
  auto home = init_home(dir.path()).home;

  SUBCASE("refuses a database from a newer mlops")
  {
    store::Database::open(home.database_path()).exec("PRAGMA user_version = 999");
    try {
      home.open_database();
      FAIL("opened a newer database");
    } catch (const Error& error) {
      CHECK(error.code() == ExitCode::conflict);
    }
  }
  SUBCASE("a missing database says how to recreate it")
  {
    fs::remove(home.database_path());
    try {
      home.open_database();
      FAIL("opened a missing database");
    } catch (const Error& error) {
      CHECK(error.code() == ExitCode::not_found);
      CHECK(std::string(error.what()).find("mlops init") != std::string::npos);
    }
  }
}

TEST_CASE("mlops::check_home")
{
  test::TempDir dir;
  auto home = init_home(dir.path()).home;

  SUBCASE("a new home is healthy")
  {
    auto report = check_home(home);
    CHECK(report.healthy());
    CHECK(report.journal_mode == "wal");
    CHECK(report.schema_version == report.latest_version);
  }
  SUBCASE("reports what does not belong in the object store, and counts objects")
  {
    auto fan_out = home.objects_dir() / "sha256" / "ab";
    fs::create_directories(fan_out);
    util::write_file_atomic(fan_out / std::string(62, 'c'), "object");
    util::write_file_atomic(fan_out / "notes.txt", "stray");
    auto report = check_home(home);
    CHECK(report.object_count == 1);
    REQUIRE(report.problems.size() == 1);
    CHECK(report.problems[0].find("notes.txt") != std::string::npos);
  }
  SUBCASE("reports a broken config and a missing directory")
  {
    util::write_file_atomic(home.config_path(), "{not json");
    fs::remove_all(home.workers_dir());
    auto report = check_home(home);
    CHECK(report.problems.size() == 2);
  }
  SUBCASE("reports a migration recorded under another name")
  {
    store::Database::open(home.database_path())
      .exec("UPDATE schema_migrations SET name = 'other' WHERE version = 1");
    auto report = check_home(home);
    REQUIRE(report.problems.size() == 1);
    CHECK(report.problems[0].find("other") != std::string::npos);
  }
}
