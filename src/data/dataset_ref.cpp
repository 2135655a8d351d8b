#include "mlops/data/dataset_ref.hpp"

#include "mlops/core/error.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <charconv>

namespace mlops::data {

namespace {

constexpr size_t max_length = 128;

bool is_name_char(char c)
{
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' || c == '_' || c == '-';
}

bool is_letter(char c)
{
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

bool is_digit(char c)
{
  return c >= '0' && c <= '9';
}

// The text as a message can show it: printable ASCII kept, anything else as \xNN.
std::string shown(std::string_view text)
{
  std::string out;
  for (unsigned char c : text.substr(0, 200)) {
    out += c >= 0x20 && c < 0x7f ? std::string(1, static_cast<char>(c)) : fmt::format("\\x{:02x}", c);
  }
  return out;
}

void check_word(std::string_view word, std::string_view what, bool letter_first)
{
  if (word.empty()) {
    throw Error(ExitCode::usage, fmt::format("{} is empty, give 1 to {} characters", what, max_length));
  }
  if (word.size() > max_length) {
    throw Error(ExitCode::usage, fmt::format("{} \"{}...\" is longer than {} characters", what, shown(word.substr(0, 20)), max_length));
  }
  bool first_ok = letter_first ? is_letter(word[0]) : (is_letter(word[0]) || is_digit(word[0]));
  if (!first_ok || !std::all_of(word.begin(), word.end(), is_name_char)) {
    throw Error(ExitCode::usage,
                fmt::format("{} \"{}\" is not valid: use letters, digits, '.', '_' and '-', starting with a {}",
                            what, shown(word), letter_first ? "letter" : "letter or digit"));
  }
}

} // namespace

std::string DatasetRef::text() const
{
  if (std::holds_alternative<Latest>(version)) {
    return name + "@latest";
  }
  if (const auto* number = std::get_if<std::int64_t>(&version)) {
    return fmt::format("{}@{}", name, *number);
  }
  return name + "@" + std::get<std::string>(version);
}

void validate_name(std::string_view name, std::string_view what)
{
  check_word(name, what, false);
}

void validate_dataset_name(std::string_view name)
{
  validate_name(name, "dataset name");
}

void validate_tag(std::string_view tag)
{
  if (tag == "latest") {
    throw Error(ExitCode::usage, "\"latest\" cannot be a tag: NAME@latest always means the newest version");
  }
  if (!tag.empty() && is_digit(tag[0])) {
    throw Error(ExitCode::usage,
                fmt::format("tag \"{}\" starts with a digit, which NAME@{} would read as a version number; "
                            "start it with a letter (v{} is fine)",
                            shown(tag), shown(tag), shown(tag)));
  }
  check_word(tag, "tag", true);
}

DatasetRef parse_dataset_ref(std::string_view text)
{
  auto at = text.find('@');
  DatasetRef ref;
  ref.name = std::string(text.substr(0, at));
  validate_dataset_name(ref.name);
  if (at == std::string_view::npos) {
    return ref;  // NAME alone: the latest version
  }
  std::string_view version = text.substr(at + 1);
  if (version.empty()) {
    throw Error(ExitCode::usage, fmt::format("\"{}\" ends with '@': write NAME@N, NAME@latest or NAME@TAG", shown(text)));
  }
  if (version == "latest") {
    return ref;
  }
  if (std::all_of(version.begin(), version.end(), is_digit)) {
    std::int64_t number = 0;
    auto [end, error] = std::from_chars(version.data(), version.data() + version.size(), number);
    if (error != std::errc() || number < 1 || version[0] == '0') {
      throw Error(ExitCode::usage,
                  fmt::format("\"{}\" is not a version number: versions count from 1, without leading zeros", shown(version)));
    }
    ref.version = number;
    return ref;
  }
  validate_tag(version);
  ref.version = std::string(version);
  return ref;
}

} // namespace mlops::data
