// mlops init [DIR]
#include "context.hpp"
#include "nouns.hpp"

#include "mlops/home/home.hpp"

#include <CLI/CLI.hpp>
#include <fmt/format.h>
#include <fmt/std.h>
#include <nlohmann/json.hpp>

namespace mlops::cli {

namespace {

struct InitOptions
{
  std::string dir;
};

void run_init(Context& context, const InitOptions& options)
{
  // DIR wins, then --home/MLOPS_HOME, then the working directory.
  std::filesystem::path target = !options.dir.empty()      ? std::filesystem::path(options.dir)
                                 : context.explicit_home() ? *context.explicit_home()
                                                           : std::filesystem::current_path();
  auto result = init_home(target, context.database_options());
  nlohmann::json document = {
    {"home", result.home.dir().string()},
    {"created", result.created},
    {"schema_version", result.schema_version},
    {"applied", result.applied},
  };
  context.out().result(document, "");
  std::string home = result.home.dir().string();
  if (result.created) {
    context.out().info(fmt::format("Initialized mlops home in {}", home));
  } else if (!result.applied.empty()) {
    context.out().info(fmt::format("mlops home {} already exists; upgraded its schema to version {}",
                                   home, result.schema_version));
  } else {
    context.out().info(fmt::format("mlops home {} already exists (schema version {}), nothing to do",
                                   home, result.schema_version));
  }
}

} // namespace

void setup_init(CLI::App& noun, Context& context)
{
  auto options = std::make_shared<InitOptions>();
  noun.add_option("DIR", options->dir, "Project directory (default: the working directory)")
    ->type_name("DIR");
  on_run(noun, context, [&context, options] { run_init(context, *options); });
}

} // namespace mlops::cli
