// mlops artifact add | get | cat | ls | show | verify | gc
#include "context.hpp"
#include "nouns.hpp"

#include "mlops/core/progress.hpp"
#include "mlops/objects/hash_cache.hpp"
#include "mlops/objects/object_store.hpp"
#include "mlops/util/parallel.hpp"

#include <CLI/CLI.hpp>
#include <fmt/format.h>
#include <nlohmann/json.hpp>
#include <spdlog/spdlog.h>

namespace mlops::cli {

namespace {

using namespace objects;

struct ArtifactOptions
{
  std::vector<std::string> paths;   // add
  std::vector<std::string> digests; // verify
  std::string digest;               // get, cat, show
  std::string out;                  // get
  std::string link = "auto";
  unsigned jobs = util::default_jobs();
  bool no_cache = false;
  bool force = false;
  bool all = false;
  bool dry_run = false;
};

ObjectStore open_store(Context& context)
{
  return ObjectStore(context.home(), context.database());
}

std::string short_hex(const Digest& digest)
{
  return digest.hex().substr(0, 12);
}

nlohmann::json object_json(const StoredObject& object)
{
  return {{"digest", object.digest.text()}, {"kind", object.kind}, {"size", object.size},
          {"created_at", object.created_at}};
}

void run_add(Context& context, const ArtifactOptions& options)
{
  std::vector<std::filesystem::path> paths(options.paths.begin(), options.paths.end());
  auto link = parse_link_mode(options.link);  // A usage error before the home is touched.
  auto store = open_store(context);
  std::optional<HashCache> cache;
  if (!options.no_cache) {
    cache.emplace(context.database());
  }
  auto result = [&] {
    Progress progress(context.progress_enabled(), "storing", 0, 0);  // Erased before the result.
    AddOptions add;
    add.link = link;
    add.jobs = options.jobs;
    add.cache = cache ? &*cache : nullptr;
    add.progress = &progress;
    return store.add(paths, add);
  }();
  nlohmann::json targets = nlohmann::json::array();
  std::string human;
  for (const auto& target : result.targets) {
    targets.push_back({{"path", target.path.string()}, {"kind", target.is_tree ? "tree" : "blob"},
                       {"digest", target.digest.text()}, {"size", target.size},
                       {"files", target.is_tree ? target.entries.size() : 1}});
    human += fmt::format("{}  {}\n", target.digest.hex(), target.path.string());
  }
  context.out().result({{"targets", targets}, {"objects_written", result.objects_written},
                        {"objects_existing", result.objects_existing}, {"bytes_written", result.bytes_written}},
                       human);
  spdlog::info("{} new object(s), {} bytes; {} already stored", result.objects_written,
               result.bytes_written, result.objects_existing);
}

void run_get(Context& context, const ArtifactOptions& options)
{
  auto link = parse_link_mode(options.link);
  auto store = open_store(context);
  auto object = store.resolve(options.digest);
  std::filesystem::path out = options.out.empty() ? short_hex(object.digest) : options.out;
  store.get(object, out, link, options.force);
  context.out().result({{"digest", object.digest.text()}, {"kind", object.kind}, {"out", out.string()}}, "");
  context.out().info(fmt::format("{} {} -> {}", object.kind, short_hex(object.digest), out.string()));
}

void run_ls(Context& context)
{
  auto store = open_store(context);
  Table table({"DIGEST", "KIND", "SIZE", "CREATED"});
  nlohmann::json documents = nlohmann::json::array();
  for (const auto& object : store.list()) {
    table.add_row({short_hex(object.digest), object.kind, std::to_string(object.size), object.created_at});
    documents.push_back(object_json(object));
  }
  context.out().result({{"objects", documents}}, table.empty() ? std::string("no objects stored yet\n") : table.render(context.out().style().color));
}

void run_show(Context& context, const ArtifactOptions& options)
{
  auto store = open_store(context);
  auto object = store.resolve(options.digest);
  auto references = store.references_to(object.digest);
  nlohmann::json document = object_json(object);
  document["path"] = store.object_path(object.digest).string();
  document["references"] = nlohmann::json::array();
  Fields fields;
  fields.add("digest", object.digest.text())
    .add("kind", object.kind)
    .add("size", fmt::format("{} bytes", object.size))
    .add("created", object.created_at)
    .add("stored at", store.object_path(object.digest).string());
  for (const auto& reference : references) {
    document["references"].push_back({{"kind", reference.kind}, {"owner", reference.owner}});
    fields.add("referred by", fmt::format("{} {}", reference.kind, reference.owner));
  }
  if (references.empty()) {
    fields.add("referred by", "nothing (`mlops artifact gc` would remove it)");
  }
  context.out().result(document, fields);
}

void run_verify(Context& context, const ArtifactOptions& options)
{
  if (options.all == !options.digests.empty()) {
    throw Error(ExitCode::usage, "give the objects to verify, or --all (not both)");
  }
  auto store = open_store(context);
  std::vector<StoredObject> objects;
  for (const auto& digest : options.digests) {
    objects.push_back(store.resolve(digest));
  }
  // With --all the store lists its objects itself, under its lock: a gc running meanwhile cannot
  // make an object removed on purpose look missing.
  auto report = store.verify(objects, options.jobs);
  const auto& problems = report.problems;
  size_t verified = report.checked;
  nlohmann::json bad = nlohmann::json::array();
  std::string human;
  for (const auto& problem : problems) {
    bad.push_back({{"digest", problem.digest.text()}, {"problem", problem.problem}});
    human += fmt::format("{}: {}\n", problem.digest.hex(), problem.problem);
  }
  human += fmt::format("verified {} object(s): {} ok, {} bad\n", verified, verified - problems.size(), problems.size());
  context.out().result({{"verified", verified}, {"problems", bad}}, human);
  if (!problems.empty()) {
    context.fail_after_result(Error(ExitCode::integrity,
                                    fmt::format("{} stored object(s) are missing or corrupt, listed above; "
                                                "restore them by adding the original files again",
                                                problems.size())));
  }
}

void run_gc(Context& context, const ArtifactOptions& options)
{
  auto store = open_store(context);
  auto report = store.gc(options.dry_run);
  nlohmann::json removed = nlohmann::json::array();
  for (const auto& object : report.removed) {
    removed.push_back(object_json(object));
  }
  std::string verb = options.dry_run ? "would remove" : "removed";
  context.out().result({{"dry_run", options.dry_run}, {"removed", removed}, {"bytes", report.bytes},
                        {"unrecorded_files", report.unrecorded_files}, {"tmp_files", report.tmp_files}},
                       fmt::format("{} {} unreferenced object(s) ({} bytes), {} unrecorded file(s), {} stale "
                                   "file(s) in tmp/\n",
                                   verb, report.removed.size(), report.bytes, report.unrecorded_files, report.tmp_files));
}

} // namespace

void setup_artifact(CLI::App& noun, Context& context)
{
  noun.require_subcommand(1);
  auto options = std::make_shared<ArtifactOptions>();
  const char* link_help = "auto (reflink, else copy), copy, hardlink, reflink";

  auto* add = add_verb(noun, context, "add", "Store files and directories; print their digests",
                       [&context, options] { run_add(context, *options); });
  add->add_option("PATH", options->paths, "Files and directories")->required()->type_name("PATH");
  add->add_option("--link", options->link, link_help)->type_name("MODE");
  add->add_option("-j,--jobs", options->jobs, "Files read at once (default: all cores)")->check(CLI::Range(1u, 1024u));
  add->add_flag("--no-cache", options->no_cache, "Read every file even when the hash cache knows it");

  auto* get = add_verb(noun, context, "get", "Write an object to OUT (a tree becomes a directory)",
                       [&context, options] { run_get(context, *options); });
  get->add_option("DIGEST", options->digest, "Digest or unique prefix (8+ hex digits)")->required();
  get->add_option("OUT", options->out, "Where to write (default: the first 12 hex digits)");
  get->add_option("--link", options->link, link_help)->type_name("MODE");
  get->add_flag("--force", options->force, "Replace OUT when it exists");

  auto* cat = add_verb(noun, context, "cat", "Print an object's bytes (a tree's file list)", [&context, options] {
    auto store = open_store(context);
    store.cat(store.resolve(options->digest));
  });
  cat->add_option("DIGEST", options->digest, "Digest or unique prefix (8+ hex digits)")->required();

  add_verb(noun, context, "ls", "List stored objects", [&context] { run_ls(context); });

  auto* show = add_verb(noun, context, "show", "Show an object: size, kind, what refers to it",
                        [&context, options] { run_show(context, *options); });
  show->add_option("DIGEST", options->digest, "Digest or unique prefix (8+ hex digits)")->required();

  auto* verify = add_verb(noun, context, "verify", "Re-hash objects; exit 5 naming every missing or corrupt one",
                          [&context, options] { run_verify(context, *options); });
  verify->add_option("DIGEST", options->digests, "Digests or unique prefixes");
  verify->add_flag("--all", options->all, "Verify every stored object");
  verify->add_option("-j,--jobs", options->jobs, "Objects read at once (default: all cores)")->check(CLI::Range(1u, 1024u));

  auto* gc = add_verb(noun, context, "gc", "Remove objects nothing refers to, and stale temporary files",
                      [&context, options] { run_gc(context, *options); });
  gc->add_flag("--dry-run", options->dry_run, "Only report what would be removed");
}

} // namespace mlops::cli
