#include "mlops/data/workspace.hpp"

#include "mlops/core/error.hpp"
#include "mlops/core/progress.hpp"
#include "mlops/objects/hash_cache.hpp"

#include <fmt/format.h>
#include <fmt/std.h>

namespace mlops::data {

ScannedDirectory scan_directory(const std::filesystem::path& dir, unsigned jobs, objects::HashCache* cache,
                                Progress* progress)
{
  std::error_code error;
  if (std::filesystem::exists(dir, error) && !std::filesystem::is_directory(dir, error)) {
    throw Error(ExitCode::usage, fmt::format("{} is not a directory", dir));
  }
  auto plan = objects::plan_hashing({dir}, jobs, /*skip_metadata=*/true);
  if (!plan.unreadable.empty()) {
    objects::throw_unreadable(plan.unreadable);
  }
  if (progress) {
    progress->set_totals(plan.files.size(), plan.total_bytes);
  }
  auto digests = objects::hash_files(plan, jobs, cache, progress);
  if (cache) {
    cache->flush();  // The next look at this directory reads nothing that did not change.
  }
  auto targets = objects::assemble_targets(plan, digests);
  return {std::move(targets.at(0).entries), std::move(targets.at(0).skipped)};
}

} // namespace mlops::data
