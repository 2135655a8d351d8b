#pragma once
// File helpers with the durability rules of the project: a file that others may read is written
// to a temporary name, flushed to disk, then renamed into place, so readers see the old or the
// new content and never half of it.

#include <filesystem>
#include <string>
#include <string_view>

namespace mlops::util {

// Writes `content` to `path` atomically and durably. The temporary file lives in `path`'s
// directory (same filesystem, so the rename is atomic). Throws std::system_error.
void write_file_atomic(const std::filesystem::path& path, std::string_view content);

// Reads a whole file. Throws std::system_error.
std::string read_file(const std::filesystem::path& path);

} // namespace mlops::util
