#include "mlops/objects/checksum_list.hpp"

#include "mlops/core/error.hpp"

#include <fmt/format.h>

namespace mlops::objects {

namespace {

[[noreturn]] void reject(size_t line, std::string_view why)
{
  throw Error(ExitCode::usage, fmt::format("line {} of the checksum list is not in sha256sum format: {}",
                                           line, why));
}

// GNU's rule: a name with a backslash or newline is escaped, and its line starts with a backslash.
std::string escaped_line(std::string_view before, std::string_view name, std::string_view after)
{
  bool escape = name.find_first_of("\\\n") != std::string_view::npos;
  std::string line = escape ? "\\" : "";
  line += before;
  for (char c : name) {
    if (escape && c == '\\') {
      line += "\\\\";
    } else if (escape && c == '\n') {
      line += "\\n";
    } else {
      line += c;
    }
  }
  line += after;
  return line;
}

} // namespace

std::string format_checksum_line(const Digest& digest, std::string_view name)
{
  return escaped_line(digest.hex() + "  ", name, "\n");
}

std::string format_check_result(std::string_view name, std::string_view status)
{
  return escaped_line("", name, fmt::format(": {}\n", status));
}

std::vector<ChecksumLine> parse_checksum_list(std::string_view text)
{
  std::vector<ChecksumLine> lines;
  size_t number = 0;
  while (!text.empty()) {
    ++number;
    auto end = text.find('\n');
    std::string_view line = text.substr(0, end);
    text = end == std::string_view::npos ? std::string_view() : text.substr(end + 1);
    if (line.empty()) {
      continue;
    }
    bool escaped = line.front() == '\\';
    if (escaped) {
      line.remove_prefix(1);
    }
    if (line.size() < 66 || (line.substr(64, 2) != "  " && line.substr(64, 2) != " *")) {
      reject(number, "expected 64 hex digits, two spaces (or \" *\"), and a name");
    }
    auto digest = Digest::parse(line.substr(0, 64));
    if (!digest) {
      reject(number, "the digest is not 64 hex digits");
    }
    std::string name;
    for (size_t i = 66; i < line.size(); ++i) {
      if (escaped && line[i] == '\\') {
        if (i + 1 == line.size() || (line[i + 1] != '\\' && line[i + 1] != 'n')) {
          reject(number, "a backslash in the name is followed by neither \\ nor n");
        }
        name += line[++i] == 'n' ? '\n' : '\\';
      } else {
        name += line[i];
      }
    }
    lines.push_back(ChecksumLine{*digest, std::move(name)});
  }
  return lines;
}

} // namespace mlops::objects
