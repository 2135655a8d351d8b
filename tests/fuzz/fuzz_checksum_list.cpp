// libFuzzer target: `mlops hash --check FILE` reads lists that people and other tools wrote
// (sha256sum's format, with GNU's escaping of names). parse_checksum_list must reject anything
// malformed with Error(usage) and never crash, hang or leak; whatever it accepts must survive a
// round trip: formatting the lines and parsing them again gives the same digests and names.
#include "mlops/core/error.hpp"
#include "mlops/objects/checksum_list.hpp"

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size)
{
  std::string_view text(reinterpret_cast<const char*>(data), size);
  std::vector<mlops::objects::ChecksumLine> lines;
  try {
    lines = mlops::objects::parse_checksum_list(text);
  } catch (const mlops::Error& error) {
    if (error.code() != mlops::ExitCode::usage) {
      __builtin_trap();
    }
    return 0;
  }
  std::string formatted;
  for (const auto& line : lines) {
    std::string one = mlops::objects::format_checksum_line(line.digest, line.name);
    // One line per entry, however odd the name: the only newline is the last byte.
    if (one.empty() || one.find('\n') != one.size() - 1) {
      __builtin_trap();
    }
    formatted += one;
  }
  auto again = mlops::objects::parse_checksum_list(formatted);
  if (again.size() != lines.size()) {
    __builtin_trap();
  }
  for (size_t i = 0; i < lines.size(); ++i) {
    if (again[i].digest != lines[i].digest || again[i].name != lines[i].name) {
      __builtin_trap();
    }
  }
  return 0;
}
