#include "mlops/objects/manifest.hpp"

#include "mlops/core/error.hpp"
#include "mlops/objects/sha256.hpp"

#include "expect_error.hpp"

#include <doctest/doctest.h>

#include <algorithm>
#include <cctype>
#include <string>
#include <vector>

using namespace mlops;
using namespace mlops::objects;
using namespace std::string_literals;

namespace {

const std::string header = "mlops-tree 1\n";
const std::string hello_hex = "5891b5b522d5df086d0ff0b110fbd9d21bb4fc7163af34d08286a2e846f6be03";  // "hello\n"
const std::string empty_hex = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";  // ""

Digest digest_of(const std::string& hex)
{
  auto digest = Digest::parse(hex);
  REQUIRE(digest);
  return *digest;
}

TreeEntry entry(std::string path, std::uint32_t mode = mode_file, std::int64_t size = 6,
                const std::string& hex = hello_hex)
{
  return TreeEntry{std::move(path), mode, size, digest_of(hex)};
}

// One entry's bytes, written out by hand from schemas/tree-manifest.md.
std::string line(const std::string& mode, const std::string& size, const std::string& hex, const std::string& path)
{
  return mode + " " + size + " " + hex + " " + path + '\0';
}

// The message of the Error(integrity) that parse_manifest throws; fails the test if it accepts.
std::string rejection(const std::string& bytes)
{
  CAPTURE(bytes);
  return test::error_message(ExitCode::integrity, [&] { parse_manifest(bytes); });
}

using test::mentions;

} // namespace

TEST_CASE("mlops::objects::render_manifest")
{
  SUBCASE("the example of schemas/tree-manifest.md, byte for byte, and its digest")
  {
    auto bytes = render_manifest({entry("a.txt")});
    CHECK(bytes == header + line("100644", "6", hello_hex, "a.txt"));
    CHECK(sha256(bytes).hex() == "f97057e95fdc6181a4e25fdeec2ef1eb4974cf930f36d17c5adca71abbf42420");
  }
  SUBCASE("an empty tree is the header alone")
  {
    CHECK(render_manifest({}) == header);
    CHECK(sha256(render_manifest({})).hex() == "203073d492c9b499775f678aa46e5df6cc60e57443faa0f82695a991b07fb841");
  }
  SUBCASE("modes in octal, sizes in decimal, digests in lowercase hex")
  {
    auto bytes = render_manifest({entry("run.sh", mode_executable, 0, empty_hex), entry("link", mode_symlink, 1234567890123)});
    CHECK(bytes == header + line("120000", "1234567890123", hello_hex, "link") + line("100755", "0", empty_hex, "run.sh"));
  }
  SUBCASE("entries are sorted by the unsigned bytes of their path, whatever the input order")
  {
    std::vector<std::string> sorted = {"A", "B/c", "a", "a b", "a-b", "a.txt", "a/b", "a/b/c", "a0", "b", "z", "\xc3\xa9",
                                       "\xff"};
    auto shuffled = sorted;
    std::reverse(shuffled.begin(), shuffled.end());
    std::rotate(shuffled.begin(), shuffled.begin() + 5, shuffled.end());
    std::vector<TreeEntry> entries;
    for (const auto& path : shuffled) {
      entries.push_back(entry(path));
    }
    std::string expected = header;
    for (const auto& path : sorted) {
      expected += line("100644", "6", hello_hex, path);
    }
    CHECK(render_manifest(entries) == expected);
  }
  SUBCASE("any byte but NUL may be in a path component")
  {
    std::string path = "dir with space/new\nline/back\\slash/\x01\x7f\x80\xfe/...";
    CHECK(render_manifest({entry(path)}) == header + line("100644", "6", hello_hex, path));
  }
  SUBCASE("refuses an unsafe path or a path listed twice: a bug in the caller")
  {
    for (std::string path : {""s, "/a"s, "a//b"s, "./a"s, "a/.."s, "a/./b"s, "a/"s, "."s, ".."s, "a\0b"s}) {
      CAPTURE(path);
      try {
        render_manifest({entry("fine"), entry(path)});
        FAIL_CHECK("rendered an unsafe path");
      } catch (const Error& error) {
        CHECK(error.code() == ExitCode::failure);
      }
    }
    CHECK_THROWS_AS(render_manifest({entry("b"), entry("a"), entry("b", mode_executable)}), Error);
  }
}

TEST_CASE("mlops::objects::parse_manifest")
{
  SUBCASE("round trip: parse(render(entries)) is the sorted entries, render(parse(bytes)) is bytes")
  {
    std::vector<TreeEntry> entries = {entry("z/last", mode_file, 0, empty_hex), entry("bin/tool", mode_executable, 42),
                                      entry("link", mode_symlink, 5), entry("name with\nnewline and \xff", mode_file, 7),
                                      entry("a", mode_file, 9223372036854775807LL)};
    auto bytes = render_manifest(entries);
    auto parsed = parse_manifest(bytes);
    auto sorted = entries;
    std::sort(sorted.begin(), sorted.end(), [](const auto& a, const auto& b) { return a.path < b.path; });
    CHECK(parsed == sorted);
    CHECK(render_manifest(parsed) == bytes);
  }
  SUBCASE("the header alone is an empty tree")
  {
    CHECK(parse_manifest(header).empty());
  }
  SUBCASE("reads fields exactly as written")
  {
    auto parsed = parse_manifest(header + line("120000", "13", empty_hex, "a b/c d"));
    REQUIRE(parsed.size() == 1);
    CHECK(parsed[0].path == "a b/c d");
    CHECK(parsed[0].mode == mode_symlink);
    CHECK(parsed[0].size == 13);
    CHECK(parsed[0].digest.hex() == empty_hex);
  }
  SUBCASE("rejects a bad header")
  {
    std::string body = line("100644", "6", hello_hex, "a");
    for (std::string bad : {""s, "mlops-tree 1"s, "mlops-tree 2\n"s, "mlops-tree 1\r\n"s, "MLOPS-TREE 1\n"s,
                            "mlops-tree  1\n"s, " mlops-tree 1\n"s, "\nmlops-tree 1\n"s, "mlops-tree 1\0"s}) {
      CAPTURE(bad);
      CHECK(mentions(rejection(bad + body), "mlops-tree 1"));
    }
    CHECK(mentions(rejection(body), "mlops-tree 1"));
  }
  SUBCASE("rejects a bad mode")
  {
    for (std::string mode : {"100600"s, "100777"s, "644"s, "040000"s, "160000"s, "100644x"s, ""s, "1006440"s, "-100644"s,
                             "100 644"s, "0x81a4"s, "33188"s}) {
      CAPTURE(mode);
      CHECK(mentions(rejection(header + line(mode, "6", hello_hex, "a")), "mode"));
    }
  }
  SUBCASE("rejects a bad size")
  {
    for (std::string size : {"-1"s, ""s, "6x"s, "x"s, "0x6"s, "99999999999999999999"s, "1e3"s, "+6"s}) {
      CAPTURE(size);
      CHECK(mentions(rejection(header + line("100644", size, hello_hex, "a")), "size"));
    }
  }
  SUBCASE("rejects numbers that are not written canonically: the manifest bytes are the tree's identity")
  {
    // A manifest that parses must render back to the same bytes; these would not.
    for (std::string mode : {"0100644"s, "00100755"s}) {
      CAPTURE(mode);
      rejection(header + line(mode, "6", hello_hex, "a"));
    }
    for (std::string size : {"06"s, "00"s, "-0"s}) {
      CAPTURE(size);
      rejection(header + line("100644", size, hello_hex, "a"));
    }
  }
  SUBCASE("rejects a digest that is not 64 lowercase hex digits")
  {
    std::string upper = hello_hex;
    std::transform(upper.begin(), upper.end(), upper.begin(), [](char c) { return static_cast<char>(std::toupper(c)); });
    std::string one_upper = hello_hex;
    one_upper[10] = 'B';
    for (std::string digest : {upper, one_upper, hello_hex.substr(0, 63), hello_hex + "0", hello_hex.substr(0, 8),
                               "sha256:" + hello_hex, std::string(64, 'g'), ""s, hello_hex.substr(0, 63) + " "}) {
      CAPTURE(digest);
      CHECK(mentions(rejection(header + line("100644", "6", digest, "a")), "digest"));
    }
  }
  SUBCASE("rejects unsafe paths")
  {
    for (std::string path : {""s, "/a"s, "/"s, "a//b"s, "./a"s, "a/.."s, "a/./b"s, "a/"s, "."s, ".."s, "../a"s, "a/../b"s,
                             "//"s}) {
      CAPTURE(path);
      CHECK(mentions(rejection(header + line("100644", "6", hello_hex, path)), "path"));
    }
  }
  SUBCASE("rejects duplicates and entries out of order")
  {
    auto a = line("100644", "6", hello_hex, "a");
    auto b = line("100644", "6", hello_hex, "b");
    CHECK(mentions(rejection(header + a + a), "duplicate"));
    CHECK(mentions(rejection(header + a + line("100755", "6", hello_hex, "a")), "duplicate"));
    CHECK(mentions(rejection(header + b + a), "order"));
    // Unsigned byte order: "\xff" after "z", "a-b" before "a/b".
    CHECK(mentions(rejection(header + line("100644", "6", hello_hex, "\xff") + line("100644", "6", hello_hex, "z")), "order"));
    CHECK(mentions(rejection(header + line("100644", "6", hello_hex, "a/b") + line("100644", "6", hello_hex, "a-b")), "order"));
    CHECK(parse_manifest(header + line("100644", "6", hello_hex, "a-b") + line("100644", "6", hello_hex, "a/b")).size() == 2);
  }
  SUBCASE("rejects a missing NUL, missing fields and stray bytes")
  {
    auto good = line("100644", "6", hello_hex, "a");
    auto unterminated = good.substr(0, good.size() - 1);
    CHECK(mentions(rejection(header + unterminated), "NUL"));
    CHECK(mentions(rejection(header + good + unterminated), "NUL"));
    CHECK(mentions(rejection(header + good + "\n"), "NUL"));
    rejection(header + "\0"s);
    rejection(header + good + "\0"s);
    rejection(header + "100644 6\0"s);
    rejection(header + "100644 6 " + hello_hex + "\0"s);
    rejection(header + "100644  6 " + hello_hex + " a\0"s);
    rejection(header + "100644 6 " + hello_hex + "\0a\0"s);
  }
  SUBCASE("names the entry at fault")
  {
    auto message = rejection(header + line("100644", "6", hello_hex, "a") + line("100644", "6", hello_hex, "b") +
                             line("100600", "6", hello_hex, "c"));
    CHECK(mentions(message, "entry 3"));
  }
}

TEST_CASE("mlops::objects::is_safe_relative_path")
{
  for (std::string path : {"a"s, "a/b"s, "a/b/c"s, "a b"s, "a\nb"s, ".a"s, "..a"s, "a.."s, "..."s, "a/.b"s, "a/..b"s,
                           "\xff"s, "a\\b"s, "C:"s, "-"s, " "s, "a/ /b"s, "~"s}) {
    CAPTURE(path);
    CHECK(is_safe_relative_path(path));
  }
  for (std::string path : {""s, "/"s, "/a"s, "a/"s, "a//b"s, "//a"s, "."s, ".."s, "./a"s, "a/."s, "a/.."s, "a/./b"s,
                           "a/../b"s, "../a"s, "a\0b"s, "\0"s}) {
    CAPTURE(path);
    CHECK_FALSE(is_safe_relative_path(path));
  }
}

TEST_CASE("mlops::objects::parse_manifest refuses a path that is both a file and a directory")
{
  // A link "a" and a file "a/b": writing the tree out would follow the link out of the tree.
  using namespace mlops::objects;
  auto digest = sha256("x");
  std::string bytes = "mlops-tree 1\n";
  bytes += "120000 9 " + digest.hex() + " a";
  bytes += '\0';
  bytes += "100644 1 " + digest.hex() + " a-b";
  bytes += '\0';
  bytes += "100644 1 " + digest.hex() + " a/b";
  bytes += '\0';
  try {
    parse_manifest(bytes);
    FAIL("accepted a file beneath a link");
  } catch (const mlops::Error& error) {
    CHECK(error.code() == mlops::ExitCode::integrity);
    CHECK(std::string(error.what()).find("directory a is listed as a file or link") != std::string::npos);
  }
}
