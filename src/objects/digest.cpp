#include "mlops/objects/digest.hpp"

#include "mlops/core/error.hpp"

#include <fmt/format.h>

namespace mlops::objects {

namespace {

constexpr std::string_view scheme = "sha256:";

int hex_value(char c)
{
  if (c >= '0' && c <= '9') {
    return c - '0';
  }
  if (c >= 'a' && c <= 'f') {
    return c - 'a' + 10;
  }
  if (c >= 'A' && c <= 'F') {
    return c - 'A' + 10;
  }
  return -1;
}

// The user's text for an error message: control bytes (a NUL would end the message) shown as \xNN.
std::string printable(std::string_view text)
{
  std::string shown;
  for (unsigned char c : text) {
    shown += c < 0x20 || c == 0x7f ? fmt::format("\\x{:02x}", c) : std::string(1, static_cast<char>(c));
  }
  return shown;
}

std::string_view without_scheme(std::string_view text)
{
  return text.starts_with(scheme) ? text.substr(scheme.size()) : text;
}

} // namespace

std::string Digest::hex() const
{
  static constexpr char digits[] = "0123456789abcdef";
  std::string text(64, '0');
  for (size_t i = 0; i < bytes.size(); ++i) {
    text[2 * i] = digits[bytes[i] >> 4];
    text[2 * i + 1] = digits[bytes[i] & 0xf];
  }
  return text;
}

std::optional<Digest> Digest::parse(std::string_view text)
{
  text = without_scheme(text);
  if (text.size() != 64) {
    return std::nullopt;
  }
  Digest digest;
  for (size_t i = 0; i < digest.bytes.size(); ++i) {
    int high = hex_value(text[2 * i]);
    int low = hex_value(text[2 * i + 1]);
    if (high < 0 || low < 0) {
      return std::nullopt;
    }
    digest.bytes[i] = static_cast<std::uint8_t>(high << 4 | low);
  }
  return digest;
}

std::string parse_digest_prefix(std::string_view text)
{
  std::string_view digits = without_scheme(text);
  std::string prefix;
  for (char c : digits) {
    int value = hex_value(c);
    if (value < 0) {
      throw Error(ExitCode::usage,
                  fmt::format("`{}` is not a digest: `{}` is not a hex digit, use the 64 hex "
                              "digits `mlops artifact ls` shows, or a unique prefix of them",
                              printable(text), printable(std::string_view(&c, 1))));
    }
    prefix += "0123456789abcdef"[value];
  }
  if (prefix.size() < min_prefix_digits || prefix.size() > 64) {
    throw Error(ExitCode::usage,
                fmt::format("`{}` is not a digest: it has {} hex digits, use between {} and 64", printable(text),
                            prefix.size(), min_prefix_digits));
  }
  return prefix;
}

} // namespace mlops::objects
