#pragma once

#include "mlops/core/command_tree.hpp"

namespace CLI {
class App;
}

namespace mlops::cli {

// The visible commands and options under `app` (hidden ones, in the empty group, are left out).
CommandNode command_tree(const CLI::App& app);

} // namespace mlops::cli
