// Nouns whose issue has not landed yet.
#include "context.hpp"
#include "nouns.hpp"

#include "mlops/core/build_info.hpp"

#include <CLI/CLI.hpp>
#include <fmt/format.h>

namespace mlops::cli {

void setup_planned(CLI::App& noun, Context& context)
{
  noun.fallthrough(false);
  noun.allow_extras();  // Whatever verbs a script passes, the answer is the same clear error.
  on_run(noun, context, [&context, &noun] {
    throw Error(ExitCode::failure,
                fmt::format("`mlops {}` is not available in mlops {} yet: it is planned and listed "
                            "in the README's roadmap, upgrade mlops when it lands",
                            noun.get_name(), mlops_version()));
  });
}

} // namespace mlops::cli
