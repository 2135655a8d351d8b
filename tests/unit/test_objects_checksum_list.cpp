#include "mlops/objects/checksum_list.hpp"

#include "mlops/core/error.hpp"
#include "mlops/objects/sha256.hpp"

#include "expect_error.hpp"

#include <doctest/doctest.h>

#include <string>
#include <vector>

using namespace mlops;
using namespace mlops::objects;
using namespace std::string_literals;

namespace {

const std::string abc_hex = "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad";  // sha256("abc")

// The message of the Error(usage) that parse_checksum_list throws; fails the test if it accepts.
std::string rejection(const std::string& text)
{
  CAPTURE(text);
  return test::error_message(ExitCode::usage, [&] { parse_checksum_list(text); });
}

using test::mentions;

} // namespace

TEST_CASE("mlops::objects::format_checksum_line")
{
  auto abc = sha256("abc");
  SUBCASE("sha256sum's text format")
  {
    CHECK(format_checksum_line(abc, "file.txt") == abc_hex + "  file.txt\n");
    CHECK(format_checksum_line(abc, "dir/with space/ x ") == abc_hex + "  dir/with space/ x \n");
    CHECK(format_checksum_line(abc, "*star\t\r\xff") == abc_hex + "  *star\t\r\xff\n");
  }
  SUBCASE("a backslash or a newline escapes the whole line, as GNU coreutils does")
  {
    CHECK(format_checksum_line(abc, "back\\slash") == "\\" + abc_hex + "  back\\\\slash\n");
    CHECK(format_checksum_line(abc, "new\nline") == "\\" + abc_hex + "  new\\nline\n");
    CHECK(format_checksum_line(abc, "\\n\n\\") == "\\" + abc_hex + "  \\\\n\\n\\\\\n");
    CHECK(format_checksum_line(abc, "\n") == "\\" + abc_hex + "  \\n\n");
  }
}

TEST_CASE("mlops::objects::parse_checksum_list")
{
  auto abc = sha256("abc");
  auto empty = sha256("");
  SUBCASE("every name round-trips through format and parse")
  {
    std::vector<std::string> names = {"plain", "with space", "  leading and trailing  ", "back\\slash", "new\nline",
                                      "\\", "\n", "\\n", "a\\nb\nc\\\\", "*star", "tab\there", "cr\r", "\xff\xfe",
                                      "\xc3\xa9t\xc3\xa9", "dir/sub/file", "/absolute/path", "-"};
    std::string text;
    for (size_t i = 0; i < names.size(); ++i) {
      text += format_checksum_line(i % 2 ? abc : empty, names[i]);
    }
    auto lines = parse_checksum_list(text);
    REQUIRE(lines.size() == names.size());
    std::string again;
    for (size_t i = 0; i < names.size(); ++i) {
      CAPTURE(names[i]);
      CHECK(lines[i].name == names[i]);
      CHECK(lines[i].digest == (i % 2 ? abc : empty));
      again += format_checksum_line(lines[i].digest, lines[i].name);
    }
    CHECK(again == text);
  }
  SUBCASE("what GNU sha256sum writes: binary mode, uppercase, no final newline, blank lines")
  {
    auto lines = parse_checksum_list(abc_hex + " *binary.bin\n\n\n" + std::string(64, 'E') + "  text\n" + abc_hex + "  last");
    REQUIRE(lines.size() == 3);
    CHECK(lines[0].name == "binary.bin");
    CHECK(lines[0].digest == abc);
    CHECK(lines[1].name == "text");
    CHECK(lines[1].digest.hex() == std::string(64, 'e'));
    CHECK(lines[2].name == "last");
    CHECK(parse_checksum_list("").empty());
    CHECK(parse_checksum_list("\n\n").empty());
  }
  SUBCASE("the name is everything after the two-character separator")
  {
    auto lines = parse_checksum_list(abc_hex + "   three spaces\n" + abc_hex + " **two stars\n");
    REQUIRE(lines.size() == 2);
    CHECK(lines[0].name == " three spaces");
    CHECK(lines[1].name == "*two stars");
  }
  SUBCASE("backslashes are literal on a line that does not start with one")
  {
    auto lines = parse_checksum_list(abc_hex + "  a\\nb\\\\c\n");
    REQUIRE(lines.size() == 1);
    CHECK(lines[0].name == "a\\nb\\\\c");
  }
  SUBCASE("an escaped line unescapes \\\\ and \\n only")
  {
    auto lines = parse_checksum_list("\\" + abc_hex + "  a\\nb\\\\c\\\\n\n");
    REQUIRE(lines.size() == 1);
    CHECK(lines[0].name == "a\nb\\c\\n");
  }
  SUBCASE("rejects malformed lines, naming the line (blank lines count)")
  {
    auto good = abc_hex + "  good\n";
    CHECK(mentions(rejection("not a checksum line\n"), "line 1"));
    CHECK(mentions(rejection(good + "\n" + "abc123  short\n"), "line 3"));
    for (std::string bad : {abc_hex.substr(0, 63) + "  name"s, abc_hex + "0  name"s, std::string(64, 'g') + "  name",
                            abc_hex + " name"s, abc_hex + "\tname"s, abc_hex + "*name"s, abc_hex + " "s, abc_hex,
                            "sha256:" + abc_hex + "  name", " " + abc_hex + "  name", "\\" + abc_hex + " name",
                            "\\" + abc_hex + "  a\\tb", "\\" + abc_hex + "  ends with \\", "\\" + abc_hex + "  \\x",
                            "\\\\" + abc_hex + "  name"}) {
      CAPTURE(bad);
      CHECK(mentions(rejection(good + bad + "\n" + good), "line 2"));
    }
  }
}
