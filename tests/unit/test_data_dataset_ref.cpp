#include "mlops/data/dataset_ref.hpp"

#include "expect_error.hpp"

#include <doctest/doctest.h>

#include <string>

using namespace mlops;
using namespace mlops::data;
using test::mentions;

namespace {

std::string rejection(const std::string& text)
{
  CAPTURE(text);
  return test::error_message(ExitCode::usage, [&] { parse_dataset_ref(text); });
}

} // namespace

TEST_CASE("mlops::data::parse_dataset_ref")
{
  SUBCASE("NAME alone and NAME@latest mean the latest version")
  {
    auto plain = parse_dataset_ref("images");
    CHECK(plain.name == "images");
    CHECK(std::holds_alternative<Latest>(plain.version));
    CHECK(std::holds_alternative<Latest>(parse_dataset_ref("images@latest").version));
    CHECK(plain.text() == "images@latest");
  }
  SUBCASE("a number is a version, anything else a tag")
  {
    auto numbered = parse_dataset_ref("my-data.v2_x@12");
    CHECK(numbered.name == "my-data.v2_x");
    CHECK(std::get<std::int64_t>(numbered.version) == 12);
    CHECK(numbered.text() == "my-data.v2_x@12");
    auto tagged = parse_dataset_ref("images@v1.0-rc_2");
    CHECK(std::get<std::string>(tagged.version) == "v1.0-rc_2");
    CHECK(tagged.text() == "images@v1.0-rc_2");
    CHECK(std::get<std::int64_t>(parse_dataset_ref("2024@1").version) == 1);  // names may start with a digit
  }
  SUBCASE("versions count from 1 and are written without leading zeros")
  {
    CHECK(mentions(rejection("images@0"), "count from 1"));
    CHECK(mentions(rejection("images@007"), "leading zeros"));
    CHECK(mentions(rejection("images@99999999999999999999"), "not a version number"));
  }
  SUBCASE("malformed references say what is allowed")
  {
    CHECK(mentions(rejection(""), "empty"));
    CHECK(mentions(rejection("@3"), "empty"));
    CHECK(mentions(rejection("images@"), "ends with '@'"));
    CHECK(mentions(rejection("ima ges"), "letters, digits"));
    CHECK(mentions(rejection("../etc@1"), "starting with a letter or digit"));
    CHECK(mentions(rejection("a@b@c"), "tag \"b@c\""));
    CHECK(mentions(rejection(std::string(129, 'a')), "longer than 128"));
    CHECK(mentions(rejection("bad\x01name"), "\\x01"));  // control bytes are shown, not printed
    CHECK(mentions(rejection("images@-x"), "starting with a letter"));
  }
}

TEST_CASE("mlops::data::validate_tag")
{
  CHECK_NOTHROW(validate_tag("v1"));
  CHECK_NOTHROW(validate_tag("production"));
  CHECK(mentions(test::error_message(ExitCode::usage, [] { validate_tag("latest"); }), "newest version"));
  CHECK(mentions(test::error_message(ExitCode::usage, [] { validate_tag("3"); }), "version number"));
  CHECK(mentions(test::error_message(ExitCode::usage, [] { validate_tag("1abc"); }), "start it with a letter"));
  CHECK(mentions(test::error_message(ExitCode::usage, [] { validate_tag("a/b"); }), "not valid"));
  CHECK(mentions(test::error_message(ExitCode::usage, [] { validate_dataset_name(".hidden"); }), "not valid"));
}
