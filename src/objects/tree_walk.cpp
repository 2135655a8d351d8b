#include "mlops/objects/tree_walk.hpp"

#include "mlops/core/error.hpp"
#include "mlops/core/interrupt.hpp"
#include "mlops/objects/manifest.hpp"

#include <dirent.h>
#include <fcntl.h>
#include <fmt/format.h>
#include <fmt/std.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

namespace mlops::objects {

namespace {

struct Walker
{
  TreeWalk result;

  // Reads directory `dir_fd` (relative path `prefix`, "" for the root) with openat/fstatat, which
  // is several times faster than std::filesystem on trees of many small files.
  void walk(int dir_fd, const std::filesystem::path& root, const std::string& prefix)
  {
    throw_if_interrupted();
    DIR* dir = fdopendir(dir_fd);
    if (!dir) {
      ::close(dir_fd);
      result.unreadable.push_back(prefix.empty() ? "." : prefix);
      return;
    }
    while (dirent* entry = readdir(dir)) {
      std::string_view name = entry->d_name;
      if (name == "." || name == "..") {
        continue;
      }
      std::string path = prefix.empty() ? std::string(name) : prefix + "/" + std::string(name);
      struct stat status = {};
      if (fstatat(dirfd(dir), entry->d_name, &status, AT_SYMLINK_NOFOLLOW) != 0) {
        result.unreadable.push_back(path);
        continue;
      }
      if (S_ISDIR(status.st_mode)) {
        int child = openat(dirfd(dir), entry->d_name, O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW);
        if (child < 0) {
          result.unreadable.push_back(path);
          continue;
        }
        walk(child, root, path);
      } else if (S_ISREG(status.st_mode) || S_ISLNK(status.st_mode)) {
        std::uint32_t mode = S_ISLNK(status.st_mode)       ? mode_symlink
                             : (status.st_mode & S_IXUSR) ? mode_executable
                                                          : mode_file;
        result.files.push_back({path, root / path, mode, FileIdentity::of(status)});
      } else {
        result.skipped.push_back(path);
      }
    }
    closedir(dir);
  }
};

} // namespace

TreeWalk walk_tree(const std::filesystem::path& root)
{
  int fd = ::open(root.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) {
    if (errno == ENOENT) {
      throw Error(ExitCode::not_found, fmt::format("{} does not exist", root));
    }
    throw Error(ExitCode::failure, fmt::format("cannot read directory {}: {}", root, std::strerror(errno)));
  }
  Walker walker;
  walker.walk(fd, root, "");
  std::sort(walker.result.files.begin(), walker.result.files.end(),
            [](const WalkedFile& a, const WalkedFile& b) { return a.path < b.path; });
  return std::move(walker.result);
}

} // namespace mlops::objects
