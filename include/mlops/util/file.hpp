#pragma once
// File helpers with the durability rules of the project: a file that others may read is written
// to a temporary name, flushed to disk, then renamed into place, so readers see the old or the
// new content and never half of it.

#include <filesystem>
#include <string>
#include <string_view>

namespace mlops::util {

// Writes `content` (mode 0644) to `path` atomically and durably: a uniquely named temporary file in
// `path`'s directory (same filesystem, so the rename is atomic), flushed, renamed into place, and
// the directory flushed. On failure the temporary file is removed and `path` is unchanged.
// Throws std::system_error.
void write_file_atomic(const std::filesystem::path& path, std::string_view content);

// Reads a whole file. Throws std::system_error.
std::string read_file(const std::filesystem::path& path);

} // namespace mlops::util
