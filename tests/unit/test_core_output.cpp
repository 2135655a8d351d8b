#include "mlops/core/output.hpp"

#include "mlops/core/error.hpp"

#include <doctest/doctest.h>
#include <nlohmann/json.hpp>

#include <sstream>

using namespace mlops;

TEST_CASE("mlops::Table")
{
  Table table({"NAME", "VERSION"});
  table.add_row({"resnet", "3"});
  table.add_row({"bert-large", "12"});

  SUBCASE("aligns columns on the widest cell, without trailing spaces")
  {
    CHECK(table.render(false) == "NAME        VERSION\n"
                                 "resnet      3\n"
                                 "bert-large  12\n");
  }
  SUBCASE("counts UTF-8 characters, not bytes")
  {
    Table utf8({"A", "B"});
    utf8.add_row({"é", "x"});
    CHECK(utf8.render(false) == "A  B\né  x\n");
  }
  SUBCASE("bold header only with colour")
  {
    CHECK(table.render(true).rfind("\033[1mNAME", 0) == 0);
    CHECK(table.render(false).find('\033') == std::string::npos);
  }
}

TEST_CASE("mlops::Fields aligns values")
{
  Fields fields;
  fields.add("home", "/x/.mlops").add("schema", "1");
  CHECK(fields.render(false) == "home:   /x/.mlops\nschema: 1\n");
}

TEST_CASE("mlops::Output prints exactly one result")
{
  std::ostringstream out;
  std::ostringstream err;
  nlohmann::json document = {{"name", "x"}, {"count", 2}};

  SUBCASE("human text by default, with a final newline")
  {
    Output output(OutputStyle{}, out, err);
    output.result(document, "x has 2");
    output.info("Done");
    CHECK(out.str() == "x has 2\nDone\n");
  }
  SUBCASE("only the JSON document with --json")
  {
    Output output(OutputStyle{.json = true}, out, err);
    output.result(document, "x has 2");
    output.info("Done");
    CHECK(nlohmann::json::parse(out.str()) == document);
  }
  SUBCASE("-q silences info lines, not results")
  {
    Output output(OutputStyle{.quiet = true}, out, err);
    output.result(document, "x has 2");
    output.info("Done");
    CHECK(out.str() == "x has 2\n");
  }
}

TEST_CASE("mlops::Output::error")
{
  std::ostringstream out;
  std::ostringstream err;
  Error error(ExitCode::not_found, "no mlops home in /tmp, run `mlops init`");

  SUBCASE("one line on stderr, nothing on stdout")
  {
    Output(OutputStyle{}, out, err).error(error);
    CHECK(err.str() == "mlops: error: no mlops home in /tmp, run `mlops init`\n");
    CHECK(out.str().empty());
  }
  SUBCASE("with --json also the error document on stdout")
  {
    Output(OutputStyle{.json = true}, out, err).error(error);
    auto document = nlohmann::json::parse(out.str());
    CHECK(document["error"]["code"] == "not_found");
    CHECK(document["error"]["exit_code"] == 3);
    CHECK(document["error"]["message"] == error.what());
    CHECK(!err.str().empty());
  }
}
