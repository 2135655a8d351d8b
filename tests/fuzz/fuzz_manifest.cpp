// libFuzzer target: tree manifests are read back from the object store, which is outside input
// once stored (a damaged disk, another tool). parse_manifest must reject anything malformed with
// Error(integrity) and never crash, hang or leak; whatever it accepts must be canonical: rendering
// the entries gives back the very bytes, so one tree has exactly one manifest and one digest.
// The same input also goes through the digest parsers (what users type for an object).
#include "mlops/core/error.hpp"
#include "mlops/objects/digest.hpp"
#include "mlops/objects/manifest.hpp"

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace {

void check_manifest(std::string_view bytes)
{
  std::vector<mlops::objects::TreeEntry> entries;
  try {
    entries = mlops::objects::parse_manifest(bytes);
  } catch (const mlops::Error& error) {
    if (error.code() != mlops::ExitCode::integrity) {
      __builtin_trap();
    }
    return;
  }
  for (const auto& entry : entries) {
    if (!mlops::objects::is_safe_relative_path(entry.path) || entry.size < 0) {
      __builtin_trap();
    }
  }
  // Accepted: canonical (renders to the same bytes), and the rendering parses to the same entries.
  std::string rendered = mlops::objects::render_manifest(entries);
  if (rendered != bytes || mlops::objects::parse_manifest(rendered) != entries) {
    __builtin_trap();
  }
}

void check_digest(std::string_view text)
{
  if (auto digest = mlops::objects::Digest::parse(text)) {
    auto hex = digest->hex();
    if (hex.size() != 64 || mlops::objects::Digest::parse(hex) != digest ||
        mlops::objects::Digest::parse(digest->text()) != digest) {
      __builtin_trap();
    }
  }
  try {
    auto prefix = mlops::objects::parse_digest_prefix(text);
    if (prefix.size() < mlops::objects::min_prefix_digits || prefix.size() > 64 ||
        prefix.find_first_not_of("0123456789abcdef") != std::string::npos) {
      __builtin_trap();
    }
    // A full-length prefix is a digest, and names the same one.
    if (prefix.size() == 64 && (!mlops::objects::Digest::parse(text) || mlops::objects::Digest::parse(text)->hex() != prefix)) {
      __builtin_trap();
    }
  } catch (const mlops::Error& error) {
    if (error.code() != mlops::ExitCode::usage) {
      __builtin_trap();
    }
  }
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size)
{
  std::string_view text(reinterpret_cast<const char*>(data), size);
  check_manifest(text);
  check_digest(text);
  return 0;
}
