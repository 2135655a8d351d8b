#include "mlops/objects/manifest.hpp"

#include "mlops/core/error.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <charconv>
#include <set>

namespace mlops::objects {

namespace {

constexpr std::string_view header = "mlops-tree 1\n";

[[noreturn]] void reject(size_t entry, std::string_view why)
{
  throw Error(ExitCode::integrity,
              fmt::format("tree manifest entry {} is invalid: {}; the object is damaged, run "
                          "`mlops artifact verify`",
                          entry, why));
}

bool valid_mode(std::uint32_t mode)
{
  return mode == mode_file || mode == mode_executable || mode == mode_symlink;
}

// Splits off the text up to the next space.
std::string_view next_field(std::string_view& rest)
{
  auto space = rest.find(' ');
  auto field = rest.substr(0, space);
  rest = space == std::string_view::npos ? std::string_view() : rest.substr(space + 1);
  return field;
}

template <typename Number> bool parse_number(std::string_view text, Number& value, int base)
{
  auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), value, base);
  return error == std::errc() && end == text.data() + text.size() && !text.empty();
}

} // namespace

bool is_safe_relative_path(std::string_view path)
{
  if (path.empty() || path.front() == '/' || path.find('\0') != std::string_view::npos) {
    return false;
  }
  for (size_t start = 0; start <= path.size();) {
    size_t end = std::min(path.find('/', start), path.size());
    std::string_view component = path.substr(start, end - start);
    if (component.empty() || component == "." || component == "..") {
      return false;
    }
    start = end + 1;
  }
  return true;
}

std::string render_manifest(const std::vector<TreeEntry>& entries)
{
  // Tree walks come sorted; anything else is put in order through pointers, never copied.
  std::vector<const TreeEntry*> sorted(entries.size());
  std::transform(entries.begin(), entries.end(), sorted.begin(), [](const TreeEntry& entry) { return &entry; });
  auto by_path = [](const TreeEntry* a, const TreeEntry* b) { return a->path < b->path; };
  if (!std::is_sorted(sorted.begin(), sorted.end(), by_path)) {
    std::sort(sorted.begin(), sorted.end(), by_path);
  }
  static constexpr char hex_digits[] = "0123456789abcdef";
  std::string text(header);
  text.reserve(header.size() + entries.size() * 100);
  for (size_t i = 0; i < sorted.size(); ++i) {
    const auto& entry = *sorted[i];
    if (!is_safe_relative_path(entry.path) || (i > 0 && sorted[i - 1]->path == entry.path)) {
      throw Error(ExitCode::failure, fmt::format("cannot list `{}` in a tree manifest", entry.path));
    }
    fmt::format_to(std::back_inserter(text), "{:o} {} ", entry.mode, entry.size);
    for (auto byte : entry.digest.bytes) {
      text += hex_digits[byte >> 4];
      text += hex_digits[byte & 0xf];
    }
    text += ' ';
    text += entry.path;
    text += '\0';
  }
  return text;
}

std::vector<TreeEntry> parse_manifest(std::string_view bytes)
{
  if (!bytes.starts_with(header)) {
    reject(0, "the manifest does not start with \"mlops-tree 1\"");
  }
  std::vector<TreeEntry> entries;
  std::set<std::string, std::less<>> listed;
  std::string_view rest = bytes.substr(header.size());
  while (!rest.empty()) {
    size_t number = entries.size() + 1;
    auto end = rest.find('\0');
    if (end == std::string_view::npos) {
      reject(number, "it does not end with a NUL byte");
    }
    std::string_view line = rest.substr(0, end);
    rest = rest.substr(end + 1);

    TreeEntry entry;
    // Numbers must be written exactly as render_manifest writes them (no leading zeros or signs):
    // one tree, one manifest, one digest.
    auto mode_text = next_field(line);
    if (!parse_number(mode_text, entry.mode, 8) || !valid_mode(entry.mode) || mode_text != fmt::format("{:o}", entry.mode)) {
      reject(number, "its mode is not 100644, 100755 or 120000");
    }
    auto size_text = next_field(line);
    if (!parse_number(size_text, entry.size, 10) || entry.size < 0 || size_text != std::to_string(entry.size)) {
      reject(number, "its size is not a non-negative number written without leading zeros");
    }
    auto digest_text = next_field(line);
    auto digest = Digest::parse(digest_text);
    if (!digest || digest_text.size() != 64 || digest->hex() != digest_text) {
      reject(number, "its digest is not 64 lowercase hex digits");
    }
    entry.digest = *digest;
    entry.path = std::string(line);
    if (!is_safe_relative_path(entry.path)) {
      reject(number, "its path is absolute, empty, or has an empty, \".\" or \"..\" component");
    }
    if (!entries.empty() && !(entries.back().path < entry.path)) {
      reject(number, "its path is not after the previous one (duplicate or out of order)");
    }
    // A file or link cannot also be a directory: with a link "a" and a file "a/b", writing the
    // tree out would write through the link, outside the tree.
    for (auto slash = entry.path.find('/'); slash != std::string::npos; slash = entry.path.find('/', slash + 1)) {
      if (listed.count(std::string_view(entry.path).substr(0, slash)) > 0) {
        reject(number, fmt::format("its directory {} is listed as a file or link", entry.path.substr(0, slash)));
      }
    }
    entries.push_back(std::move(entry));
    listed.insert(entries.back().path);
  }
  return entries;
}

} // namespace mlops::objects
