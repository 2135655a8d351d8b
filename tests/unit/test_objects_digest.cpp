#include "mlops/objects/digest.hpp"

#include "mlops/core/error.hpp"
#include "mlops/objects/sha256.hpp"

#include "expect_error.hpp"

#include <doctest/doctest.h>

#include <algorithm>
#include <string>

using namespace mlops;
using namespace mlops::objects;
using namespace std::string_literals;

namespace {

const std::string abc_hex = "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad";  // sha256("abc")
const std::string abc_upper = "BA7816BF8F01CFEA414140DE5DAE2223B00361A396177A9CB410FF61F20015AD";

// The message of the Error(usage) that parse_digest_prefix throws; fails the test if it accepts.
std::string prefix_rejection(const std::string& text)
{
  CAPTURE(text);
  return test::error_message(ExitCode::usage, [&] { parse_digest_prefix(text); });
}

using test::mentions;

} // namespace

TEST_CASE("mlops::objects::Digest")
{
  SUBCASE("parse and hex round-trip; text adds the scheme")
  {
    auto digest = Digest::parse(abc_hex);
    REQUIRE(digest);
    CHECK(digest->bytes[0] == 0xba);
    CHECK(digest->bytes[31] == 0xad);
    CHECK(digest->hex() == abc_hex);
    CHECK(digest->text() == "sha256:" + abc_hex);
    CHECK(Digest::parse(digest->text()) == digest);
    CHECK(*digest == sha256("abc"));
  }
  SUBCASE("uppercase and mixed case are accepted, and printed lowercase")
  {
    auto upper = Digest::parse(abc_upper);
    REQUIRE(upper);
    CHECK(upper->hex() == abc_hex);
    std::string mixed = abc_hex;
    mixed[0] = 'B';
    mixed[63] = 'D';
    CHECK(Digest::parse(mixed) == upper);
    CHECK(Digest::parse("sha256:" + abc_upper) == upper);
  }
  SUBCASE("every nibble, high and low")
  {
    std::string hex;
    for (int i = 0; i < 32; ++i) {
      int byte = i * 8 + 7;
      hex += "0123456789abcdef"[byte >> 4];
      hex += "0123456789abcdef"[byte & 0xf];
    }
    auto digest = Digest::parse(hex);
    REQUIRE(digest);
    for (int i = 0; i < 32; ++i) {
      CHECK(digest->bytes[static_cast<size_t>(i)] == i * 8 + 7);
    }
    CHECK(digest->hex() == hex);
    CHECK(Digest{}.hex() == std::string(64, '0'));
    CHECK(Digest::parse(std::string(64, 'f'))->hex() == std::string(64, 'f'));
  }
  SUBCASE("rejects anything but exactly 64 hex digits, with or without sha256:")
  {
    for (std::string text : {""s, "sha256:"s, abc_hex.substr(0, 63), abc_hex + "0", abc_hex.substr(0, 8),
                             "sha256:" + abc_hex.substr(1), "sha256:sha256:" + abc_hex, " " + abc_hex.substr(1),
                             abc_hex.substr(0, 63) + "g", abc_hex.substr(0, 63) + " ", abc_hex.substr(0, 63) + "\0"s,
                             "0x" + abc_hex.substr(2), "sha1:" + abc_hex.substr(5), "sha256 " + abc_hex,
                             "-" + abc_hex.substr(1)}) {
      CAPTURE(text);
      CHECK_FALSE(Digest::parse(text));
    }
  }
  SUBCASE("compares by bytes")
  {
    auto low = *Digest::parse(std::string(63, '0') + "1");
    auto high = *Digest::parse("1" + std::string(63, '0'));
    CHECK(low < high);
    CHECK(low != high);
    CHECK(low == *Digest::parse(low.hex()));
  }
}

TEST_CASE("mlops::objects::parse_digest_prefix")
{
  SUBCASE("8 to 64 hex digits, lowercased, with or without sha256:")
  {
    CHECK(parse_digest_prefix("abcdef01") == "abcdef01");
    CHECK(parse_digest_prefix("ABCDEF01") == "abcdef01");
    CHECK(parse_digest_prefix("AbCdEf0123") == "abcdef0123");
    CHECK(parse_digest_prefix("sha256:abcdef01") == "abcdef01");
    CHECK(parse_digest_prefix("sha256:" + abc_upper) == abc_hex);
    CHECK(parse_digest_prefix(abc_hex) == abc_hex);
    CHECK(parse_digest_prefix(abc_hex.substr(0, 8)) == abc_hex.substr(0, 8));
    CHECK(parse_digest_prefix("00000000") == "00000000");
  }
  SUBCASE("too short")
  {
    for (std::string text : {""s, "a"s, "abcdef0"s, "sha256:"s, "sha256:abcdef0"s}) {
      CAPTURE(text);
      auto message = prefix_rejection(text);
      CHECK(mentions(message, "between 8 and 64"));
    }
    CHECK(mentions(prefix_rejection("abcdef0"), "7 hex digits"));
  }
  SUBCASE("too long")
  {
    auto message = prefix_rejection(abc_hex + "0");
    CHECK(mentions(message, "65 hex digits"));
    prefix_rejection("sha256:" + abc_hex + "00");
  }
  SUBCASE("not hex")
  {
    for (std::string text : {"abcdefg1"s, "abcdef01 "s, " abcdef01"s, "abcd-ef01"s, "0xabcdef01"s, "abcdef01\n"s,
                             "SHA256:abcdef01"s, "sha256 abcdef01"s, "sha256:sha256:abcdef01"s, "abcdef\0" "01"s,
                             "\xc3\xa9" "abcdef01"s}) {
      CAPTURE(text);
      CHECK(mentions(prefix_rejection(text), "hex digit"));
    }
    CHECK(mentions(prefix_rejection("abcdefg1"), "`g`"));
  }
}

TEST_CASE("mlops::objects::Sha256")
{
  SUBCASE("known digests")
  {
    CHECK(sha256("").hex() == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
    CHECK(sha256("abc").hex() == abc_hex);
    CHECK(sha256(std::string(1000000, 'a')).hex() == "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");
  }
  SUBCASE("updates in pieces equal one update; finish starts over")
  {
    std::string data;
    for (int i = 0; i < 5000; ++i) {
      data += static_cast<char>(i * 131 % 251);
    }
    Sha256 hasher;
    for (size_t at = 0, step = 1; at < data.size(); at += step, step = step * 3 % 997 + 1) {
      hasher.update(data.data() + at, std::min(step, data.size() - at));
    }
    CHECK(hasher.finish() == sha256(data));
    hasher.update("abc", 3);
    CHECK(hasher.finish().hex() == abc_hex);
    CHECK(hasher.finish() == sha256(""));
  }
}
