// mlops-worker: the data plane. For now one verb, `inspect`, which the control plane runs at
// model registration (libonnx lives here, not in `mlops`); serving comes with the runtime.
#include "mlops/core/error.hpp"
#include "mlops/worker/model_signature.hpp"

#include <CLI/CLI.hpp>
#include <fmt/format.h>

#include <cstdio>
#include <iostream>

int main(int argc, char** argv)
{
  CLI::App app("mlops-worker: the data plane of mlops", "mlops-worker");
  app.require_subcommand(1);
  std::string model;
  auto* inspect = app.add_subcommand("inspect", "Print a model's format, signature and operator sets as JSON");
  inspect->add_option("MODEL", model, "An ONNX model file")->required();
  try {
    app.parse(argc, argv);
    std::cout << mlops::worker::inspect_onnx(model).dump(2) << "\n";
    return 0;
  } catch (const CLI::ParseError& error) {
    return app.exit(error);
  } catch (const mlops::Error& error) {
    std::fprintf(stderr, "mlops-worker: error: %s\n", error.what());
    return error.exit_status();
  } catch (const std::exception& error) {
    std::fprintf(stderr, "mlops-worker: error: %s\n", error.what());
    return 1;
  }
}
