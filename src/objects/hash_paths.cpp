#include "mlops/objects/hash_paths.hpp"

#include "mlops/core/error.hpp"
#include "mlops/core/interrupt.hpp"
#include "mlops/core/progress.hpp"
#include "mlops/objects/hash_cache.hpp"
#include "mlops/util/parallel.hpp"

#include <fmt/format.h>
#include <fmt/std.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <mutex>

namespace mlops::objects {

namespace fs = std::filesystem;

namespace {

FileDigest digest_of(const FileJob& job, HashCache* cache, Progress* progress, std::vector<char>& buffer)
{
  if (job.mode == mode_symlink) {
    return FileDigest{sha256(read_link_target(job)), false};
  }
  if (cache) {
    if (auto cached = cache->lookup(job.identity)) {
      if (progress) {
        progress->advance(1, static_cast<std::uint64_t>(job.identity.size));
      }
      return FileDigest{*cached, true};
    }
  }
  auto started = std::chrono::system_clock::now();
  // The listed identity makes the manifest's size and the digest describe the same content.
  auto hashed = hash_file(job.full, buffer, &job.identity);
  if (cache) {
    cache->remember(hashed.identity, hashed.digest, started);
  }
  if (progress) {
    progress->advance(1, static_cast<std::uint64_t>(hashed.identity.size));
  }
  return FileDigest{hashed.digest, false};
}

} // namespace

void throw_unreadable(std::vector<std::string> problems)
{
  std::sort(problems.begin(), problems.end());
  constexpr size_t shown = 10;
  std::string list = fmt::format("{}", fmt::join(problems.begin(), problems.begin() + std::min(shown, problems.size()), "; "));
  if (problems.size() > shown) {
    list += fmt::format("; and {} more", problems.size() - shown);
  }
  throw Error(ExitCode::failure, fmt::format("{} entr{} could not be read: {}; fix their permissions or move them away",
                                             problems.size(), problems.size() == 1 ? "y" : "ies", list));
}

std::string read_link_target(const FileJob& job)
{
  std::error_code error;
  std::string target = fs::read_symlink(job.full, error).string();
  if (error) {
    throw Error(ExitCode::failure, fmt::format("cannot read link \"{}\": {}", job.full, error.message()));
  }
  if (static_cast<std::int64_t>(target.size()) != job.identity.size) {
    throw Error(ExitCode::failure, fmt::format("link \"{}\" changed while it was being hashed, retry", job.full));
  }
  return target;
}

unsigned reader_threads(const HashPlan& plan, unsigned jobs)
{
  constexpr std::uint64_t small_file = 256 * 1024;
  bool small = !plan.files.empty() && plan.total_bytes / plan.files.size() < small_file;
  return small ? jobs * 4 : jobs;
}

HashPlan plan_hashing(const std::vector<fs::path>& paths, unsigned jobs, bool skip_metadata)
{
  HashPlan plan;
  for (const auto& path : paths) {
    struct stat status = {};
    if (::stat(path.c_str(), &status) != 0) {
      if (errno == ENOENT || errno == ENOTDIR) {
        throw Error(ExitCode::not_found, fmt::format("{} does not exist", path));
      }
      throw Error(ExitCode::failure, fmt::format("cannot inspect {}: {}", path, std::strerror(errno)));
    }
    size_t target = plan.targets.size();
    if (S_ISDIR(status.st_mode)) {
      auto walk = walk_tree(path, jobs, skip_metadata);
      for (const auto& entry : walk.unreadable) {
        plan.unreadable.push_back(fmt::format("{}: cannot be listed", (path / entry).string()));
      }
      plan.targets.push_back(Target{path, true, std::move(walk.skipped)});
      plan.files.reserve(plan.files.size() + walk.files.size());
      for (auto& file : walk.files) {
        plan.total_bytes += static_cast<std::uint64_t>(file.identity.size);
        plan.files.push_back(FileJob{std::move(file.full), std::move(file.path), file.mode, file.identity, target});
      }
    } else if (S_ISREG(status.st_mode)) {
      plan.targets.push_back(Target{path, false, {}});
      plan.total_bytes += static_cast<std::uint64_t>(status.st_size);
      std::uint32_t mode = (status.st_mode & S_IXUSR) ? mode_executable : mode_file;
      plan.files.push_back(FileJob{path.string(), {}, mode, FileIdentity::of(status), target});
    } else {
      throw Error(ExitCode::failure,
                  fmt::format("{} is not a regular file or a directory (a device, FIFO or socket), "
                              "mlops hashes only files and directories",
                              path));
    }
  }
  return plan;
}

std::vector<FileDigest> hash_files(const HashPlan& plan, unsigned jobs, HashCache* cache, Progress* progress)
{
  if (cache && plan.files.size() > preload_threshold) {
    cache->preload();
  }
  std::vector<FileDigest> digests(plan.files.size());
  std::vector<std::string> failures = plan.unreadable;
  std::mutex failures_mutex;
  util::parallel_for(
    plan.files.size(), reader_threads(plan, jobs),
    [&](size_t index) {
      thread_local std::vector<char> buffer;
      try {
        digests[index] = digest_of(plan.files[index], cache, progress, buffer);
      } catch (const Error& error) {
        if (error.code() == ExitCode::interrupted) {
          throw;
        }
        std::lock_guard lock(failures_mutex);
        failures.push_back(error.what());  // Keep going: the user wants to hear of every bad file.
      }
    },
    [] { return interrupted(); });
  throw_if_interrupted();
  if (!failures.empty()) {
    throw_unreadable(std::move(failures));
  }
  return digests;
}

std::vector<HashedTarget> assemble_targets(const HashPlan& plan, const std::vector<FileDigest>& digests)
{
  std::vector<HashedTarget> results(plan.targets.size());
  for (size_t i = 0; i < plan.targets.size(); ++i) {
    results[i].path = plan.targets[i].path;
    results[i].is_tree = plan.targets[i].is_tree;
    results[i].skipped = plan.targets[i].skipped;
  }
  for (size_t i = 0; i < plan.files.size(); ++i) {
    const auto& job = plan.files[i];
    auto& result = results[job.target];
    result.size += job.identity.size;
    if (result.is_tree) {
      result.entries.push_back(TreeEntry{job.tree_path, job.mode, job.identity.size, digests[i].digest});
    } else {
      result.digest = digests[i].digest;
    }
  }
  for (auto& result : results) {
    if (result.is_tree) {
      result.manifest = render_manifest(result.entries);
      result.digest = sha256(result.manifest);
    }
  }
  return results;
}

} // namespace mlops::objects
