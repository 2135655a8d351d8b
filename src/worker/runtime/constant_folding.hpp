#pragma once

#include "mlops/runtime/graph.hpp"

namespace mlops::runtime {

// Runs, once on the CPU, every node whose inputs are all constants, keeping its outputs as
// constants, then drops the nodes and constants no graph output depends on. Exported models
// are full of these (shape arithmetic before a Reshape, Constant nodes); requests then skip them.
void fold_constants(Graph& graph, std::int64_t max_tensor_bytes);

} // namespace mlops::runtime
