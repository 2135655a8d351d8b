#pragma once
// SHA-256 digests and the references people type for them: the full 64 hex digits, optionally
// with a "sha256:" prefix, or a unique prefix of 8 or more digits.

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace mlops::objects {

struct Digest
{
  std::array<std::uint8_t, 32> bytes{};

  std::string hex() const;  // 64 lowercase hex digits
  std::string text() const { return "sha256:" + hex(); }
  bool operator==(const Digest&) const = default;
  auto operator<=>(const Digest&) const = default;

  // Exactly 64 hex digits (either case), with or without "sha256:"; nullopt otherwise.
  static std::optional<Digest> parse(std::string_view text);
};

inline constexpr size_t min_prefix_digits = 8;

// What a user typed for an object: a lowercase hex prefix of 8..64 digits. Throws Error(usage)
// saying what is wrong ("too short", "not hex") for anything else.
std::string parse_digest_prefix(std::string_view text);

} // namespace mlops::objects
