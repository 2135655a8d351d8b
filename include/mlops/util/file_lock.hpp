#pragma once
// An flock on a file, held for the object's lifetime: shared or exclusive. The kernel releases it
// when the process dies, so a killed command never blocks the next one. Waiting polls rather than
// blocks, so that Ctrl-C still ends a command that waits for another.

#include <filesystem>
#include <string_view>

namespace mlops::util {

class FileLock
{
public:
  // Creates `file` when missing; `what` names it in errors ("the object store lock").
  FileLock(const std::filesystem::path& file, bool exclusive, std::string_view what);
  FileLock(const FileLock&) = delete;
  FileLock& operator=(const FileLock&) = delete;
  ~FileLock();

private:
  int m_fd = -1;
};

} // namespace mlops::util
