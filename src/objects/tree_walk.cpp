#include "mlops/objects/tree_walk.hpp"

#include "mlops/core/error.hpp"
#include "mlops/core/interrupt.hpp"
#include "mlops/objects/manifest.hpp"
#include "mlops/util/parallel.hpp"

#include <dirent.h>
#include <fcntl.h>
#include <fmt/format.h>
#include <fmt/std.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <utility>

namespace mlops::objects {

namespace {

class Walker
{
public:
  Walker(std::string root, bool skip_metadata) : m_root(std::move(root)), m_skip_metadata(skip_metadata) {}

  // Lists directory `dir_fd` (relative path `prefix`, "" for the root) with openat/fstatat.
  // Subdirectories are walked here, or, when `defer` is given, only collected there.
  void walk(int dir_fd, const std::string& prefix, std::vector<std::pair<int, std::string>>* defer = nullptr)
  {
    throw_if_interrupted();
    DIR* dir = fdopendir(dir_fd);
    if (!dir) {
      ::close(dir_fd);
      result.unreadable.push_back(prefix.empty() ? "." : prefix);
      return;
    }
    for (;;) {
      errno = 0;
      dirent* entry = readdir(dir);
      if (!entry) {
        if (errno != 0) {  // An I/O error, not the end: the listing would silently miss files.
          result.unreadable.push_back(prefix.empty() ? "." : prefix);
        }
        break;
      }
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
        if (m_skip_metadata && is_metadata_directory(name)) {
          continue;
        }
        int child = openat(dirfd(dir), entry->d_name, O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW);
        if (child < 0) {
          result.unreadable.push_back(path);
        } else if (defer) {
          defer->emplace_back(child, std::move(path));
        } else {
          walk(child, path);
        }
      } else if (S_ISREG(status.st_mode) || S_ISLNK(status.st_mode)) {
        std::uint32_t mode = S_ISLNK(status.st_mode)       ? mode_symlink
                             : (status.st_mode & S_IXUSR) ? mode_executable
                                                          : mode_file;
        std::string full = m_root;
        full += '/';
        full += path;
        result.files.push_back({std::move(path), std::move(full), mode, FileIdentity::of(status)});
      } else {
        result.skipped.push_back(path);
      }
    }
    closedir(dir);
  }

  TreeWalk result;

private:
  std::string m_root;
  bool m_skip_metadata;
};

void append(std::vector<std::string>& to, std::vector<std::string>& from)
{
  to.insert(to.end(), std::make_move_iterator(from.begin()), std::make_move_iterator(from.end()));
}

} // namespace

bool is_metadata_directory(std::string_view name)
{
  return name == ".git" || name == ".mlops";
}

TreeWalk walk_tree(const std::filesystem::path& root, unsigned jobs, bool skip_metadata)
{
  int fd = ::open(root.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) {
    if (errno == ENOENT) {
      throw Error(ExitCode::not_found, fmt::format("{} does not exist", root));
    }
    throw Error(ExitCode::failure, fmt::format("cannot read directory {}: {}", root, std::strerror(errno)));
  }
  std::string root_text = root.string();
  while (root_text.size() > 1 && root_text.back() == '/') {
    root_text.pop_back();
  }
  // The top level here; each subdirectory below it is a separate work item.
  Walker top(root_text, skip_metadata);
  std::vector<std::pair<int, std::string>> subdirectories;
  // Directories never walked (an interrupt or error stopped the loop) are closed here.
  struct CloseUnwalked
  {
    std::vector<std::pair<int, std::string>>& dirs;
    ~CloseUnwalked()
    {
      for (auto& [dir_fd, path] : dirs) {
        if (dir_fd >= 0) {
          ::close(dir_fd);
        }
      }
    }
  } close_unwalked{subdirectories};
  top.walk(fd, "", &subdirectories);
  std::vector<Walker> walkers(subdirectories.size(), Walker(root_text, skip_metadata));
  util::parallel_for(
    subdirectories.size(), jobs,
    [&](size_t i) { walkers[i].walk(std::exchange(subdirectories[i].first, -1), subdirectories[i].second); },
    [] { return interrupted(); });
  throw_if_interrupted();

  TreeWalk result = std::move(top.result);
  size_t files = result.files.size();
  for (const auto& walker : walkers) {
    files += walker.result.files.size();
  }
  result.files.reserve(files);
  for (auto& walker : walkers) {
    auto& found = walker.result;
    result.files.insert(result.files.end(), std::make_move_iterator(found.files.begin()),
                        std::make_move_iterator(found.files.end()));
    append(result.skipped, found.skipped);
    append(result.unreadable, found.unreadable);
  }
  std::sort(result.files.begin(), result.files.end(),
            [](const WalkedFile& a, const WalkedFile& b) { return a.path < b.path; });
  return result;
}

} // namespace mlops::objects
