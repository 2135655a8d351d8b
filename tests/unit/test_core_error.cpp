#include "mlops/core/error.hpp"

#include <doctest/doctest.h>

#include <set>
#include <string>

using mlops::Error;
using mlops::ExitCode;

TEST_CASE("mlops::Error carries its exit code")
{
  Error error(ExitCode::not_found, "no such run");
  CHECK(error.code() == ExitCode::not_found);
  CHECK(error.exit_status() == 3);
  CHECK(std::string(error.what()) == "no such run");
}

TEST_CASE("mlops::exit_code_name")
{
  SUBCASE("the documented codes keep their numbers")
  {
    CHECK(static_cast<int>(ExitCode::usage) == 2);
    CHECK(static_cast<int>(ExitCode::conflict) == 4);
    CHECK(static_cast<int>(ExitCode::integrity) == 5);
    CHECK(static_cast<int>(ExitCode::gate_failed) == 6);
    CHECK(static_cast<int>(ExitCode::worker_unhealthy) == 7);
    CHECK(static_cast<int>(ExitCode::interrupted) == 8);
  }
  SUBCASE("every code has a distinct name and a meaning")
  {
    std::set<std::string> names;
    for (int code = 0; code <= 8; ++code) {
      auto exit_code = static_cast<ExitCode>(code);
      names.emplace(mlops::exit_code_name(exit_code));
      CHECK(!mlops::exit_code_meaning(exit_code).empty());
    }
    CHECK(names.size() == 9);
    CHECK(mlops::exit_code_name(ExitCode::not_found) == "not_found");
  }
}
