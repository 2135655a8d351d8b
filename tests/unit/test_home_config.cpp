#include "mlops/home/config.hpp"

#include "mlops/core/error.hpp"

#include <doctest/doctest.h>

using namespace mlops;

namespace {

std::string rejection(std::string_view text)
{
  try {
    parse_home_config(text);
  } catch (const Error& error) {
    CHECK(error.code() == ExitCode::integrity);
    return error.what();
  }
  FAIL("accepted: " << text);
  return {};
}

} // namespace

TEST_CASE("mlops::parse_home_config")
{
  SUBCASE("the default config round-trips")
  {
    auto config = parse_home_config(default_config_text());
    CHECK(config.format == 1);
    CHECK(config.remotes.empty());
  }
  SUBCASE("reads defaults and remotes")
  {
    auto config = parse_home_config(
      R"({"format": 1, "defaults": {"link_mode": "copy"}, "remotes": {"origin": "s3://b/x"}})");
    CHECK(config.defaults.at("link_mode") == "copy");
    CHECK(config.remotes.at("origin") == "s3://b/x");
    CHECK(parse_home_config(render_home_config(config)).remotes == config.remotes);
  }
  SUBCASE("rejects what it does not understand, naming it")
  {
    CHECK(rejection("{").find("not valid JSON") != std::string::npos);
    CHECK(rejection("[]").find("top level") != std::string::npos);
    CHECK(rejection(R"({"defaults": {}})").find("\"format\" is missing") != std::string::npos);
    CHECK(rejection(R"({"format": 2})").find("\"format\" must be 1") != std::string::npos);
    CHECK(rejection(R"({"format": 1, "remote": {}})").find("unknown key \"remote\"") != std::string::npos);
    CHECK(rejection(R"({"format": 1, "remotes": {"a": 3}})").find("\"remotes.a\"") != std::string::npos);
    CHECK(rejection(R"({"format": 1, "defaults": []})").find("\"defaults\"") != std::string::npos);
  }
}
