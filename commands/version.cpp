// mlops version [--load]
#include "context.hpp"
#include "nouns.hpp"

#include "mlops/core/build_info.hpp"

#include <CLI/CLI.hpp>
#include <fmt/format.h>
#include <nlohmann/json.hpp>

namespace mlops::cli {

namespace {

void run_version(Context& context, bool load)
{
  nlohmann::json libraries = nlohmann::json::object();
  Fields fields;
  fields.add("mlops", std::string(mlops_version()));
  fields.add("cuda", cuda_compiled_in() ? "compiled in (used by mlops-worker)" : "not compiled in");
  for (const auto& library : library_versions(load)) {
    libraries[library.name] = {{"version", library.version}, {"loaded", library.loaded}};
    fields.add(library.name, library.loaded
                               ? library.version
                               : fmt::format("{} (built against; loaded on demand, `--load` checks)",
                                             library.version));
  }
  nlohmann::json document = {
    {"mlops", mlops_version()},
    {"cuda", cuda_compiled_in()},
    {"libraries", libraries},
  };
  context.out().result(document, fields);
}

} // namespace

void setup_version(CLI::App& noun, Context& context)
{
  auto load = std::make_shared<bool>(false);
  noun.add_flag("--load", *load,
                "Load libgit2 and libcurl (normally loaded on demand) and print their run-time versions");
  on_run(noun, context, [&context, load] { run_version(context, *load); });
}

} // namespace mlops::cli
