// mlops data add | ls | log | show | tag | diff | status | checkout | rm
#include "context.hpp"
#include "lineage_json.hpp"
#include "nouns.hpp"

#include "mlops/core/progress.hpp"
#include "mlops/data/datasets.hpp"
#include "mlops/data/tree_diff.hpp"
#include "mlops/data/workspace.hpp"
#include "mlops/objects/hash_cache.hpp"
#include "mlops/util/parallel.hpp"

#include <CLI/CLI.hpp>
#include <fmt/format.h>
#include <nlohmann/json.hpp>
#include <spdlog/spdlog.h>

namespace mlops::cli {

namespace {

using namespace data;
namespace fs = std::filesystem;

struct DataOptions
{
  std::string name;  // add
  std::string ref;   // NAME@REF of most verbs
  std::string other; // diff: the second side; status, checkout: the directory
  std::string path;  // add
  std::string message;
  std::vector<std::string> tags;
  std::string tag;
  std::string link = "auto";
  unsigned jobs = util::default_jobs();
  bool no_cache = false;
  bool force = false;
  bool files = false;
  bool all = false;
  bool stat = false;
};

std::string short_hex(const objects::Digest& digest)
{
  return digest.hex().substr(0, 12);
}

nlohmann::json version_json(const DatasetVersion& version)
{
  return {{"dataset", version.dataset},
          {"version", version.version},
          {"ref", version.ref()},
          {"tree", version.tree.text()},
          {"files", version.files},
          {"size", version.size},
          {"message", version.message},
          {"path", version.path},
          {"tags", version.tags},
          {"git", git_json(version.git)},
          {"created_at", version.created_at},
          {"deleted_at", version.deleted_at ? nlohmann::json(*version.deleted_at) : nlohmann::json(nullptr)}};
}

std::string commit_text(const DatasetVersion& version)
{
  if (!version.git || !version.git->commit) {
    return "-";
  }
  return version.git->commit->substr(0, 10) + (version.git->dirty ? "+dirty" : "");
}

std::string mode_text(std::uint32_t mode)
{
  return fmt::format("{:o}", mode);
}

// The hash cache, unless --no-cache.
std::unique_ptr<objects::HashCache> make_cache(Context& context, const DataOptions& options)
{
  return options.no_cache ? nullptr : std::make_unique<objects::HashCache>(context.database());
}

void warn_skipped(const std::vector<std::string>& skipped, const std::string& where)
{
  if (!skipped.empty()) {
    spdlog::warn("skipped {} special file(s) in {} (devices, FIFOs, sockets are not data): {}{}", skipped.size(), where,
                 fmt::join(skipped.begin(), skipped.begin() + std::min<size_t>(5, skipped.size()), ", "),
                 skipped.size() > 5 ? ", ..." : "");
  }
}

void run_add(Context& context, const DataOptions& options)
{
  AddRequest request{options.name, options.path, options.message, options.tags, {}};
  request.store.link = objects::parse_link_mode(options.link);
  validate_dataset_name(options.name);  // Usage errors before the home is touched.
  for (const auto& tag : options.tags) {
    validate_tag(tag);
  }
  Datasets datasets(context.home(), context.database());
  auto cache = make_cache(context, options);
  request.store.jobs = options.jobs;
  request.store.cache = cache.get();
  auto outcome = [&] {
    Progress progress(context.progress_enabled(), "storing", 0, 0);
    request.store.progress = &progress;
    return datasets.add(request);
  }();
  warn_skipped(outcome.skipped, options.path);
  const auto& version = outcome.version;
  auto document = version_json(version);
  document["created"] = outcome.created;
  document["same_as"] = outcome.same_as_older ? nlohmann::json(*outcome.same_as_older) : nlohmann::json(nullptr);
  document["objects_written"] = outcome.stored.objects_written;
  document["objects_existing"] = outcome.stored.objects_existing;
  document["bytes_written"] = outcome.stored.bytes_written;
  document["skipped"] = outcome.skipped;
  std::string human;
  if (outcome.created) {
    human = fmt::format("added {}: {} file(s), {}; {} new object(s), {} written\n", version.ref(), version.files,
                        human_size(static_cast<std::uint64_t>(version.size)), outcome.stored.objects_written,
                        human_size(outcome.stored.bytes_written));
    if (outcome.same_as_older) {
      human += fmt::format("same content as {}@{}\n", version.dataset, *outcome.same_as_older);
    }
  } else {
    human = fmt::format("unchanged: {} equals {}, no new version\n", options.path, version.ref());
    if (!options.message.empty()) {
      spdlog::warn("the message was not recorded: there is no new version to attach it to");
    }
  }
  context.out().result(document, human);
}

void run_ls(Context& context)
{
  Datasets datasets(context.home(), context.database());
  Table table({"NAME", "VERSIONS", "LATEST", "FILES", "SIZE", "UPDATED"});
  nlohmann::json list = nlohmann::json::array();
  for (const auto& summary : datasets.list()) {
    nlohmann::json entry = {{"name", summary.name}, {"created_at", summary.created_at}, {"versions", summary.versions},
                            {"latest", summary.latest ? version_json(*summary.latest) : nlohmann::json(nullptr)}};
    list.push_back(entry);
    const auto& latest = summary.latest;
    table.add_row({summary.name, std::to_string(summary.versions), latest ? std::to_string(latest->version) : "-",
                   latest ? std::to_string(latest->files) : "-",
                   latest ? human_size(static_cast<std::uint64_t>(latest->size)) : "-",
                   latest ? latest->created_at : summary.created_at});
  }
  context.out().result({{"datasets", list}},
                       table.empty() ? std::string("no datasets yet; `mlops data add NAME DIR` creates one\n")
                                     : table.render(context.out().style().color));
}

void run_log(Context& context, const DataOptions& options)
{
  validate_dataset_name(options.name);
  Datasets datasets(context.home(), context.database());
  Table table({"VERSION", "CREATED", "FILES", "SIZE", "COMMIT", "TAGS", "MESSAGE"});
  nlohmann::json list = nlohmann::json::array();
  for (const auto& version : datasets.versions(options.name, options.all)) {
    list.push_back(version_json(version));
    table.add_row({std::to_string(version.version) + (version.deleted_at ? " (removed)" : ""), version.created_at,
                   std::to_string(version.files), human_size(static_cast<std::uint64_t>(version.size)),
                   commit_text(version), fmt::format("{}", fmt::join(version.tags, ",")), version.message});
  }
  context.out().result({{"dataset", options.name}, {"versions", list}},
                       table.empty() ? fmt::format("{} has no versions left\n", options.name)
                                     : table.render(context.out().style().color));
}

void run_show(Context& context, const DataOptions& options)
{
  auto ref = parse_dataset_ref(options.ref);
  Datasets datasets(context.home(), context.database());
  auto version = datasets.resolve(ref);
  auto document = version_json(version);
  document["entries"] = nullptr;  // the list, with --files
  Fields fields;
  fields.add("version", version.ref())
    .add("tree", version.tree.text())
    .add("files", std::to_string(version.files))
    .add("size", fmt::format("{} ({} bytes)", human_size(static_cast<std::uint64_t>(version.size)), version.size))
    .add("created", version.created_at)
    .add("added from", version.path);
  if (!version.message.empty()) {
    fields.add("message", version.message);
  }
  if (!version.tags.empty()) {
    fields.add("tags", fmt::format("{}", fmt::join(version.tags, ", ")));
  }
  if (version.git) {
    const auto& git = *version.git;
    fields.add("git commit", git.commit ? *git.commit + (git.dirty ? " (dirty: uncommitted changes)" : "") : "(no commit yet)");
    fields.add("git branch", git.branch.value_or("(detached HEAD)"));
    fields.add("git path", git.path);
    if (git.remote) {
      fields.add("git remote", *git.remote);
    }
  } else {
    fields.add("git", "not in a git repository");
  }
  std::string human = fields.render(context.out().style().color);
  if (options.files) {
    nlohmann::json files = nlohmann::json::array();
    human += "\n";
    for (const auto& entry : datasets.files(version)) {
      files.push_back({{"path", entry.path}, {"mode", mode_text(entry.mode)}, {"size", entry.size}, {"digest", entry.digest.text()}});
      human += fmt::format("{} {:>12} {}  {}\n", mode_text(entry.mode), entry.size, short_hex(entry.digest), entry.path);
    }
    document["entries"] = files;
  }
  context.out().result(document, human);
}

void run_tag(Context& context, const DataOptions& options)
{
  auto ref = parse_dataset_ref(options.ref);
  validate_tag(options.tag);
  Datasets datasets(context.home(), context.database());
  auto outcome = datasets.tag(ref, options.tag, options.force);
  auto version = datasets.resolve(DatasetRef{ref.name, options.tag});
  std::string human;
  if (!outcome.changed) {
    human = fmt::format("{} already names {}, nothing to do\n", options.tag, version.ref());
  } else if (outcome.moved_from) {
    human = fmt::format("moved {} from {}@{} to {}\n", options.tag, ref.name, *outcome.moved_from, version.ref());
  } else {
    human = fmt::format("tagged {} as {}\n", version.ref(), options.tag);
  }
  context.out().result({{"dataset", version.dataset}, {"tag", options.tag}, {"version", version.version},
                        {"changed", outcome.changed},
                        {"moved_from", outcome.moved_from ? nlohmann::json(*outcome.moved_from) : nlohmann::json(nullptr)}},
                       human);
}

// A diff or status report: one line per change, or a summary with --stat.
void report_changes(Context& context, const TreeDiff& diff, nlohmann::json document, std::string header, bool stat)
{
  nlohmann::json changes = nlohmann::json::array();
  std::uint64_t bytes_added = 0;
  std::uint64_t bytes_removed = 0;
  std::string lines;
  for (const auto& change : diff.changes) {
    nlohmann::json item = {{"change", change_name(change.kind)}, {"path", change.path}};
    auto side = [](const std::optional<objects::TreeEntry>& entry) -> nlohmann::json {
      if (!entry) {
        return nullptr;
      }
      return {{"path", entry->path}, {"mode", fmt::format("{:o}", entry->mode)}, {"size", entry->size}, {"digest", entry->digest.text()}};
    };
    item["before"] = side(change.before);
    item["after"] = side(change.after);
    changes.push_back(item);
    auto before_size = change.before ? static_cast<std::uint64_t>(change.before->size) : 0;
    auto after_size = change.after ? static_cast<std::uint64_t>(change.after->size) : 0;
    switch (change.kind) {
    case ChangeKind::added:
      bytes_added += after_size;
      lines += fmt::format("  added:    {} ({})\n", change.path, human_size(after_size));
      break;
    case ChangeKind::removed:
      bytes_removed += before_size;
      lines += fmt::format("  removed:  {} ({})\n", change.path, human_size(before_size));
      break;
    case ChangeKind::modified:
      bytes_added += after_size;
      bytes_removed += before_size;
      lines += change.before->digest == change.after->digest
                 ? fmt::format("  modified: {} (mode {:o} -> {:o})\n", change.path, change.before->mode, change.after->mode)
                 : fmt::format("  modified: {} ({} -> {})\n", change.path, human_size(before_size), human_size(after_size));
      break;
    case ChangeKind::renamed:
      lines += fmt::format("  renamed:  {} -> {}\n", change.before->path, change.path);
      break;
    }
  }
  nlohmann::json summary = {{"added", diff.count(ChangeKind::added)},       {"removed", diff.count(ChangeKind::removed)},
                            {"modified", diff.count(ChangeKind::modified)}, {"renamed", diff.count(ChangeKind::renamed)},
                            {"bytes_added", bytes_added},                   {"bytes_removed", bytes_removed}};
  document["changes"] = changes;
  document["summary"] = summary;
  document["clean"] = diff.empty();
  std::string totals = fmt::format("{} added, {} removed, {} modified, {} renamed (+{}, -{})\n", diff.count(ChangeKind::added),
                                   diff.count(ChangeKind::removed), diff.count(ChangeKind::modified),
                                   diff.count(ChangeKind::renamed), human_size(bytes_added), human_size(bytes_removed));
  std::string human = header + (diff.empty() ? "" : stat ? "  " + totals : lines + totals);
  context.out().result(document, human);
}

// The second side of a diff: NAME@REF when it has an '@' and no '/', else a directory.
bool names_a_version(const std::string& text)
{
  return text.find('@') != std::string::npos && text.find('/') == std::string::npos;
}

void run_diff(Context& context, const DataOptions& options)
{
  auto from_ref = parse_dataset_ref(options.ref);
  Datasets datasets(context.home(), context.database());
  auto from = datasets.resolve(from_ref);
  auto before = datasets.files(from);
  std::vector<objects::TreeEntry> after;
  nlohmann::json document = {{"from", from.ref()}};
  std::string to_text;
  if (names_a_version(options.other)) {
    auto to = datasets.resolve(parse_dataset_ref(options.other));
    after = datasets.files(to);
    document["to"] = to.ref();
    to_text = to.ref();
  } else {
    auto cache = make_cache(context, options);
    auto scanned = scan_directory(options.other, options.jobs, cache.get(), nullptr);
    warn_skipped(scanned.skipped, options.other);
    after = std::move(scanned.entries);
    document["to"] = options.other;
    to_text = options.other;
  }
  auto diff = diff_trees(before, after);
  std::string header = diff.empty() ? fmt::format("{} and {} hold the same files\n", from.ref(), to_text)
                                    : fmt::format("{} -> {}:\n", from.ref(), to_text);
  report_changes(context, diff, document, header, options.stat);
}

void run_status(Context& context, const DataOptions& options)
{
  auto ref = parse_dataset_ref(options.ref);
  Datasets datasets(context.home(), context.database());
  auto version = datasets.resolve(ref);
  fs::path dir = options.other.empty() ? datasets.source_dir(version) : fs::path(options.other);
  auto cache = make_cache(context, options);
  auto scanned = scan_directory(dir, options.jobs, cache.get(), nullptr);
  warn_skipped(scanned.skipped, dir.string());
  auto diff = diff_trees(datasets.files(version), scanned.entries);
  nlohmann::json document = {{"dataset", version.dataset}, {"version", version.version}, {"ref", version.ref()}, {"dir", dir.string()}};
  std::string header = diff.empty() ? fmt::format("{} is clean: it holds exactly {} ({} file(s))\n", dir.string(), version.ref(), version.files)
                                    : fmt::format("{} against {}:\n", dir.string(), version.ref());
  report_changes(context, diff, document, header, options.stat);
}

void run_checkout(Context& context, const DataOptions& options)
{
  auto ref = parse_dataset_ref(options.ref);
  auto link = objects::parse_link_mode(options.link);
  Datasets datasets(context.home(), context.database());
  auto version = datasets.resolve(ref);
  fs::path dir = options.other.empty() ? datasets.source_dir(version) : fs::path(options.other);
  auto entries = datasets.files(version);
  auto cache = make_cache(context, options);
  auto report = [&] {
    Progress progress(context.progress_enabled(), "writing", 0, 0);
    CheckoutOptions checkout_options;
    checkout_options.link = link;
    checkout_options.force = options.force;
    checkout_options.jobs = options.jobs;
    checkout_options.cache = cache.get();
    checkout_options.progress = &progress;
    return checkout(datasets.store(), entries, dir, checkout_options);
  }();
  warn_skipped(report.skipped, dir.string());
  std::string human = fmt::format("{} -> {}: {} written, {} unchanged, {} removed\n", version.ref(), dir.string(),
                                  report.written, report.unchanged, report.removed);
  if (report.discarded > 0) {
    human += fmt::format("discarded {} local change(s) (--force)\n", report.discarded);
  }
  context.out().result({{"dataset", version.dataset}, {"version", version.version}, {"ref", version.ref()},
                        {"dir", dir.string()}, {"written", report.written}, {"unchanged", report.unchanged},
                        {"removed", report.removed}, {"discarded", report.discarded}, {"skipped", report.skipped}},
                       human);
}

void run_rm(Context& context, const DataOptions& options)
{
  auto ref = parse_dataset_ref(options.ref);
  if (!std::holds_alternative<std::int64_t>(ref.version)) {
    throw Error(ExitCode::usage, fmt::format("name the version to remove by number (NAME@N), not \"{}\": a tag or "
                                             "latest moves, and removal should be deliberate",
                                             options.ref));
  }
  Datasets datasets(context.home(), context.database());
  auto removal = datasets.remove(ref);
  std::string human = removal.already
                        ? fmt::format("{} was already removed ({}), nothing to do\n", removal.version.ref(), *removal.version.deleted_at)
                        : fmt::format("removed {}{}; `mlops artifact gc` frees the files no other version shares\n",
                                      removal.version.ref(),
                                      removal.tags.empty() ? "" : fmt::format(" and its tag(s) {}", fmt::join(removal.tags, ", ")));
  context.out().result({{"dataset", removal.version.dataset}, {"version", removal.version.version},
                        {"ref", removal.version.ref()}, {"already", removal.already}, {"tags", removal.tags}},
                       human);
}

} // namespace

void setup_data(CLI::App& noun, Context& context)
{
  noun.require_subcommand(1);
  auto options = std::make_shared<DataOptions>();
  const char* link_help = "auto (reflink, else copy), copy, hardlink, reflink";
  const char* ref_help = "NAME@N, NAME@TAG, NAME@latest or NAME (the latest)";
  auto jobs = [&](CLI::App* verb) {
    verb->add_option("-j,--jobs", options->jobs, "Files read at once (default: all cores)")->check(CLI::Range(1u, 1024u));
  };

  auto* add = add_verb(noun, context, "add", "Snapshot a directory as the dataset's next version",
                       [&context, options] { run_add(context, *options); });
  add->add_option("NAME", options->name, "Dataset name (letters, digits, . _ -)")->required();
  add->add_option("PATH", options->path, "The directory to snapshot")->required()->type_name("DIR");
  add->add_option("-m,--message", options->message, "What changed");
  add->add_option("--tag", options->tags, "Tag the version (repeatable)")->type_name("TAG");
  add->add_option("--link", options->link, link_help)->type_name("MODE");
  add->add_flag("--no-cache", options->no_cache, "Read every file even when the hash cache knows it");
  jobs(add);

  add_verb(noun, context, "ls", "List datasets and their latest versions", [&context] { run_ls(context); });

  auto* log = add_verb(noun, context, "log", "List a dataset's versions, newest first",
                       [&context, options] { run_log(context, *options); });
  log->add_option("NAME", options->name, "Dataset name")->required();
  log->add_flag("--all", options->all, "Include removed versions");

  auto* show = add_verb(noun, context, "show", "Show a version: size, tags, git lineage, files",
                        [&context, options] { run_show(context, *options); });
  show->add_option("REF", options->ref, ref_help)->required();
  show->add_flag("--files", options->files, "List every file");

  auto* tag = add_verb(noun, context, "tag", "Tag a version (a tag moves only with --force)",
                       [&context, options] { run_tag(context, *options); });
  tag->add_option("REF", options->ref, ref_help)->required();
  tag->add_option("TAG", options->tag, "Tag name (starts with a letter)")->required();
  tag->add_flag("--force", options->force, "Move the tag when it names another version");

  auto* diff = add_verb(noun, context, "diff", "Files added, removed, modified and renamed between versions",
                        [&context, options] { run_diff(context, *options); });
  diff->add_option("FROM", options->ref, ref_help)->required();
  diff->add_option("TO", options->other, "Another version (NAME@REF) or a directory")->required();
  diff->add_flag("--stat", options->stat, "Only the counts and sizes");
  diff->add_flag("--no-cache", options->no_cache, "Read every file of a directory");
  jobs(diff);

  auto* status = add_verb(noun, context, "status", "Compare a directory with a version (default: the latest)",
                          [&context, options] { run_status(context, *options); });
  status->add_option("REF", options->ref, ref_help)->required();
  status->add_option("PATH", options->other, "The directory (default: where the version was added from)")->type_name("DIR");
  status->add_flag("--stat", options->stat, "Only the counts and sizes");
  status->add_flag("--no-cache", options->no_cache, "Read every file even when the hash cache knows it");
  jobs(status);

  auto* checkout = add_verb(noun, context, "checkout", "Make a directory hold a version's files, verified",
                            [&context, options] { run_checkout(context, *options); });
  checkout->add_option("REF", options->ref, ref_help)->required();
  checkout->add_option("DIR", options->other, "Where (default: where the version was added from)")->type_name("DIR");
  checkout->add_option("--link", options->link, link_help)->type_name("MODE");
  checkout->add_flag("--force", options->force, "Discard local changes: replace and delete files stored nowhere");
  checkout->add_flag("--no-cache", options->no_cache, "Read every file of DIR even when the hash cache knows it");
  jobs(checkout);

  auto* rm = add_verb(noun, context, "rm", "Remove a version (its files stay until `artifact gc`)",
                      [&context, options] { run_rm(context, *options); });
  rm->add_option("REF", options->ref, "NAME@N")->required();
}

} // namespace mlops::cli
