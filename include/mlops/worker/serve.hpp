#pragma once
// `mlops-worker serve`: the Open Inference Protocol v2 over HTTP/1.1 (the worker's own HttpServer),
// for the models of a ModelRepository.
//
//   GET  /v2/health/live                    200 once the port is open
//   GET  /v2/health/ready                   200 when every model is loaded; 503 loading or draining
//   GET  /v2                                server metadata
//   GET  /v2/models/M[/versions/V]          model metadata (signature from the model)
//   GET  /v2/models/M[/versions/V]/ready
//   POST /v2/models/M[/versions/V]/infer    JSON tensors, or Triton's binary tensor extension
//   GET  /metrics                           Prometheus text
//
// Errors are {"error": "..."} with 400, 404, 413, 500 or 503. The port opens before the models
// load, so a supervisor sees the process alive at once and ready when it is. SIGTERM (or SIGINT)
// stops accepting, finishes the requests in flight and exits 0; a second signal, or the drain
// timeout, exits at once with 8.

#include "mlops/worker/model_repository.hpp"

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

namespace mlops::worker {

struct ServeOptions
{
  std::vector<ModelSpec> models;
  LoadSettings load;
  std::string host = "127.0.0.1";
  int port = 8000;                   // 0: any free port, written to port_file and the log
  std::filesystem::path port_file;   // written atomically once the port is open
  unsigned http_threads = 0;         // event loops that read and answer connections; 0: one per core
  size_t max_body_bytes = size_t{64} << 20;
  std::chrono::seconds read_timeout{5};
  std::chrono::seconds drain_timeout{30};
  // Fault injection, for rehearsing a rollback: after this many inference requests, every one
  // is answered 500 (MLOPS_WORKER_FAIL_AFTER in the worker's environment).
  std::optional<std::uint64_t> fail_after;
};

// Runs until a signal ends it; returns the exit status. Throws Error when the port cannot be
// opened or a model cannot be loaded.
int serve(const ServeOptions& options);

} // namespace mlops::worker
