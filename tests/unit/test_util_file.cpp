#include "mlops/util/file.hpp"

#include "temp_dir.hpp"

#include <doctest/doctest.h>

#include <system_error>

using namespace mlops;

TEST_CASE("mlops::util::write_file_atomic")
{
  test::TempDir dir;
  auto path = dir.path() / "config.json";

  SUBCASE("writes, then replaces, leaving no temporary file")
  {
    util::write_file_atomic(path, "one");
    util::write_file_atomic(path, "two");
    CHECK(util::read_file(path) == "two");
    int entries = 0;
    for ([[maybe_unused]] const auto& entry : std::filesystem::directory_iterator(dir.path())) {
      ++entries;
    }
    CHECK(entries == 1);
  }
  SUBCASE("fails with the path in the message when the directory is missing")
  {
    try {
      util::write_file_atomic(dir.path() / "missing" / "x", "data");
      FAIL("no error");
    } catch (const std::system_error& error) {
      CHECK(std::string(error.what()).find("missing") != std::string::npos);
    }
  }
}
