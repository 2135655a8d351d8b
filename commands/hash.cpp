// mlops hash PATH... [--list] [--check FILE] [--jobs N] [--no-cache]
#include "context.hpp"
#include "nouns.hpp"

#include "mlops/core/progress.hpp"
#include "mlops/objects/checksum_list.hpp"
#include "mlops/objects/hash_cache.hpp"
#include "mlops/objects/hash_paths.hpp"
#include "mlops/util/file.hpp"
#include "mlops/util/parallel.hpp"

#include <CLI/CLI.hpp>
#include <fmt/format.h>
#include <nlohmann/json.hpp>
#include <spdlog/spdlog.h>

namespace mlops::cli {

namespace {

using namespace objects;

struct HashOptions
{
  std::vector<std::string> paths;
  bool list = false;
  std::string check;
  unsigned jobs = util::default_jobs();
  bool no_cache = false;
};

// Hashes `paths` through the home's cache when there is a home (and --no-cache was not given).
std::vector<HashedTarget> hash_targets(Context& context, const HashOptions& options,
                                       const std::vector<std::filesystem::path>& paths)
{
  using Clock = std::chrono::steady_clock;
  auto started = Clock::now();
  auto elapsed = [&] { return std::chrono::duration<double, std::milli>(Clock::now() - started).count(); };
  auto plan = plan_hashing(paths, options.jobs);
  spdlog::debug("listed {} file(s) in {:.1f} ms", plan.files.size(), elapsed());
  // The cache only saves time: a home this user cannot write (or a damaged one) must not stop a
  // command that only reads files.
  std::optional<HashCache> cache;
  if (!options.no_cache && context.find_home()) {
    try {
      cache.emplace(context.database());
    } catch (const Error& error) {
      spdlog::warn("hashing without the hash cache: {}", error.what());
    }
  }
  Progress progress(context.progress_enabled(), "hashing", plan.files.size(), plan.total_bytes);
  auto digests = hash_files(plan, options.jobs, cache ? &*cache : nullptr, &progress);
  if (cache) {
    try {
      cache->flush();
    } catch (const Error& error) {
      spdlog::warn("the hash cache was not updated: {}", error.what());
    }
  }
  spdlog::debug("hashed, cache written: {:.1f} ms", elapsed());
  size_t hits = std::count_if(digests.begin(), digests.end(), [](const auto& d) { return d.from_cache; });
  spdlog::info("{} file(s): {} from the hash cache, {} read", digests.size(), hits, digests.size() - hits);
  auto targets = assemble_targets(plan, digests);
  spdlog::debug("manifests built: {:.1f} ms", elapsed());
  for (const auto& target : targets) {
    for (const auto& skipped : target.skipped) {
      spdlog::warn("skipped {}/{}: not a regular file, directory or link", target.path.string(), skipped);
    }
  }
  return targets;
}

void print_hashes(Context& context, const HashOptions& options)
{
  std::vector<std::filesystem::path> paths(options.paths.begin(), options.paths.end());
  auto targets = hash_targets(context, options, paths);
  nlohmann::json documents = nlohmann::json::array();
  std::string human;
  for (const auto& target : targets) {
    std::string name = target.path.string();
    nlohmann::json document = {
      {"path", name},
      {"type", target.is_tree ? "tree" : "file"},
      {"digest", target.digest.text()},
      {"size", target.size},
    };
    if (target.is_tree) {
      document["files"] = target.entries.size();
      document["skipped"] = target.skipped;
    }
    if (target.is_tree && options.list) {
      nlohmann::json entries = nlohmann::json::array();
      for (const auto& entry : target.entries) {
        entries.push_back({{"path", entry.path}, {"mode", fmt::format("{:o}", entry.mode)},
                           {"size", entry.size}, {"digest", entry.digest.text()}});
        // Links are left out of the text: their digest is of the link's target text, which
        // neither `sha256sum -c` nor `--check` (both follow links) could confirm.
        if (entry.mode != mode_symlink) {
          human += format_checksum_line(entry.digest, (target.path / entry.path).string());
        }
      }
      document["entries"] = entries;
    }
    human += format_checksum_line(target.digest, name);
    documents.push_back(document);
  }
  context.out().result({{"targets", documents}}, human);
}

void check_hashes(Context& context, const HashOptions& options)
{
  std::string text;
  try {
    text = options.check == "-" ? std::string(std::istreambuf_iterator<char>(std::cin), {})
                                : util::read_file(options.check);
  } catch (const std::exception& error) {
    throw Error(ExitCode::not_found, fmt::format("cannot read the checksum list {}: {}", options.check, error.what()));
  }
  auto lines = parse_checksum_list(text);
  if (lines.empty()) {
    throw Error(ExitCode::usage, fmt::format("{} lists no checksums, give the output of `mlops hash`", options.check));
  }
  nlohmann::json results = nlohmann::json::array();
  std::string human;
  size_t bad = 0;
  for (const auto& line : lines) {
    std::string status = "OK";
    try {
      auto targets = hash_targets(context, options, {std::filesystem::path(line.name)});
      status = targets.front().digest == line.digest ? "OK" : "FAILED";
    } catch (const Error& error) {
      if (error.code() == ExitCode::interrupted) {
        throw;
      }
      status = "FAILED open or read";
      spdlog::warn("{}", error.what());
    }
    bad += status != "OK";
    human += format_check_result(line.name, status);
    results.push_back({{"path", line.name}, {"expected", line.digest.text()}, {"ok", status == "OK"}});
  }
  context.out().result({{"checked", results}, {"failed", bad}}, human);
  if (bad > 0) {
    context.fail_after_result(Error(ExitCode::integrity,
                                    fmt::format("{} of {} listed file(s) did not match, named above", bad, lines.size())));
  }
}

} // namespace

void setup_hash(CLI::App& noun, Context& context)
{
  auto options = std::make_shared<HashOptions>();
  noun.add_option("PATH", options->paths, "Files and directories to hash")->type_name("PATH");
  noun.add_flag("--list", options->list, "Also print every file inside directories (--json: links too)");
  noun.add_option("--check", options->check, "Verify a list printed before (sha256sum format; - for stdin)")
    ->type_name("FILE");
  noun.add_option("-j,--jobs", options->jobs, "Files hashed at once (default: all cores)")
    ->check(CLI::Range(1u, 1024u));
  noun.add_flag("--no-cache", options->no_cache, "Read every file, ignoring and not updating the hash cache");
  noun.footer("Directories get the digest of their manifest: see schemas/tree-manifest.md. Output "
              "is in sha256sum format; files can be checked with `sha256sum -c`.");
  on_run(noun, context, [&context, options] {
    if (!options->check.empty()) {
      if (!options->paths.empty()) {
        throw Error(ExitCode::usage, "--check FILE takes the paths from FILE, give no PATH with it");
      }
      check_hashes(context, *options);
    } else {
      if (options->paths.empty()) {
        throw Error(ExitCode::usage, "no PATH given, run `mlops hash FILE_OR_DIR...`");
      }
      print_hashes(context, *options);
    }
  });
}

} // namespace mlops::cli
