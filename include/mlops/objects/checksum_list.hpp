#pragma once
// The `sha256sum` line format, which `mlops hash` prints and `mlops hash --check` reads:
//   "<64 hex>  <name>\n"   (or "<64 hex> *<name>" in binary mode)
// A name containing a backslash or a newline is escaped ("\\\\", "\\n") and the line starts with a
// backslash, exactly as GNU coreutils does, so any name round-trips.

#include "mlops/objects/digest.hpp"

#include <string>
#include <string_view>
#include <vector>

namespace mlops::objects {

struct ChecksumLine
{
  Digest digest;
  std::string name;
};

std::string format_checksum_line(const Digest& digest, std::string_view name);

// "<name>: <status>\n" as `sha256sum -c` prints it (escaped the same way).
std::string format_check_result(std::string_view name, std::string_view status);

// Throws Error(usage) naming the first malformed line (empty lines are skipped).
std::vector<ChecksumLine> parse_checksum_list(std::string_view text);

} // namespace mlops::objects
