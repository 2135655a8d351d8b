// mlops-worker: the data plane. `serve` answers the Open Inference Protocol over HTTP for one or
// more models; `route` is a deployment's stable endpoint, forwarding to serve workers by weight;
// `inspect` describes a model for the registry; `run` answers one inference request
// from a file; `bench` times a model at a batch size.
#include "mlops/core/error.hpp"
#include "mlops/runtime/executor.hpp"
#include "mlops/runtime/model_loader.hpp"
#include "mlops/worker/router.hpp"
#include "mlops/worker/serve.hpp"
#include "mlops/worker/model_signature.hpp"
#include "mlops/worker/tensor_json.hpp"

#include <CLI/CLI.hpp>
#include <fmt/format.h>

#include <algorithm>
#include <charconv>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <iterator>
#include <random>

namespace {

using namespace mlops;

struct Options
{
  std::string model;
  std::string device = "auto";
  unsigned threads = 0;
  std::string request = "-";
  std::int64_t batch = 1;
  int iterations = 100;
  int warmup = 10;
};

runtime::Executor open_model(const Options& options)
{
  auto device = runtime::make_device(options.device, runtime::DeviceOptions{options.threads});
  runtime::LoadOptions load;
  load.operators = device->operators();
  return runtime::Executor(runtime::load_model(options.model, load), std::move(device));
}

nlohmann::json read_request(const std::string& path)
{
  std::string text;
  if (path == "-") {
    text.assign(std::istreambuf_iterator<char>(std::cin), {});
  } else {
    std::ifstream in(path);
    if (std::filesystem::is_directory(path)) {
      throw Error(ExitCode::usage, fmt::format("the request {} is a directory; give a JSON file", path));
    }
    if (!in) {
      throw Error(ExitCode::not_found, fmt::format("cannot read the request file {}", path));
    }
    text.assign(std::istreambuf_iterator<char>(in), {});
  }
  auto document = nlohmann::json::parse(text, nullptr, false);
  if (document.is_discarded() || !document.is_object() || !document.contains("inputs") || !document["inputs"].is_array()) {
    throw Error(ExitCode::usage, fmt::format("{} is not an inference request: expected JSON {{\"inputs\": [...]}}",
                                             path == "-" ? "standard input" : path));
  }
  return document;
}

int run(const Options& options)
{
  auto executor = open_model(options);
  auto request = read_request(options.request);
  std::vector<runtime::NamedTensor> inputs;
  for (size_t i = 0; i < request["inputs"].size(); ++i) {
    inputs.push_back(worker::tensor_from_json(request["inputs"][i], fmt::format("inputs[{}]", i)));
  }
  nlohmann::json response = {{"model_name", executor.graph().name}, {"device", executor.device().description()}};
  response["outputs"] = nlohmann::json::array();
  for (const auto& output : executor.run(inputs)) {
    response["outputs"].push_back(worker::tensor_to_json(output));
  }
  std::cout << response.dump() << "\n";
  return 0;
}

// Random inputs of the model's declared shapes, symbolic dimensions set to the batch size.
std::vector<runtime::NamedTensor> random_inputs(const runtime::Graph& graph, std::int64_t batch)
{
  std::mt19937 random(42);
  std::uniform_real_distribution<float> uniform(-1.0f, 1.0f);
  std::vector<runtime::NamedTensor> inputs;
  for (const auto& info : graph.inputs) {
    runtime::Shape shape;
    for (const auto& dim : info.shape.value_or(std::vector<runtime::Dimension>{})) {
      shape.push_back(dim.fixed() ? dim.value : batch);
    }
    auto tensor = runtime::HostTensor::zeros(info.type, shape);
    if (info.type == runtime::ElementType::float32) {
      std::generate_n(tensor.data<float>(), tensor.count(), [&] { return uniform(random); });
    }
    inputs.push_back({info.name, std::move(tensor)});
  }
  return inputs;
}

int bench(const Options& options)
{
  auto executor = open_model(options);
  auto inputs = random_inputs(executor.graph(), options.batch);
  for (int i = 0; i < options.warmup; ++i) {
    executor.run(inputs);
  }
  std::vector<double> times;
  for (int i = 0; i < options.iterations; ++i) {
    auto start = std::chrono::steady_clock::now();
    executor.run(inputs);
    times.push_back(std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count());
  }
  std::sort(times.begin(), times.end());
  double total = 0;
  for (double time : times) {
    total += time;
  }
  nlohmann::json result = {
    {"model", executor.graph().name}, {"device", executor.device().description()}, {"batch", options.batch},
    {"iterations", options.iterations}, {"mean_ms", total / static_cast<double>(times.size())},
    {"p50_ms", times[times.size() / 2]}, {"min_ms", times.front()}, {"pool_bytes", executor.pool_bytes()}};
  std::cout << result.dump() << "\n";
  return 0;
}

} // namespace

int main(int argc, char** argv)
{
  CLI::App app("mlops-worker: the data plane of mlops", "mlops-worker");
  app.require_subcommand(1);
  Options options;
  auto device_options = [&](CLI::App* verb) {
    verb->add_option("--device", options.device, "auto (CUDA when there is a GPU), cpu or cuda")
      ->check(CLI::IsMember({"auto", "cpu", "cuda"}));
    verb->add_option("--threads", options.threads, "CPU threads (default: every core)");
  };
  worker::ServeOptions serve;
  std::vector<std::string> model_specs;
  std::string config;
  std::int64_t batch_delay_us = 0;
  unsigned read_timeout = 5;
  unsigned drain_timeout = 30;
  auto* serve_verb = app.add_subcommand("serve", "Serve models over HTTP (Open Inference Protocol v2) until SIGTERM");
  serve_verb->add_option("--model", model_specs, "NAME[@VERSION]=PATH, or PATH (name: the file's stem); repeatable");
  serve_verb->add_option("--config", config, "A JSON file: {\"models\": [{\"name\", \"version\", \"path\"}]}");
  serve_verb->add_option("--host", serve.host, "Address to listen on")->capture_default_str();
  serve_verb->add_option("--port", serve.port, "Port; 0 picks a free one (see --port-file)")
    ->check(CLI::Range(0, 65535))
    ->capture_default_str();
  serve_verb->add_option("--port-file", serve.port_file, "Write the port here once it is open");
  serve_verb->add_option("--device", serve.load.device, "auto (CUDA when there is a GPU), cpu or cuda")
    ->check(CLI::IsMember({"auto", "cpu", "cuda"}));
  serve_verb->add_option("--threads", serve.load.threads, "CPU threads per model (default: every core)");
  serve_verb->add_option("--http-threads", serve.http_threads, "Event loops reading and answering connections (0: one per core)")
    ->check(CLI::Range(0u, 256u))
    ->capture_default_str();
  serve_verb->add_option("--max-body-bytes", serve.max_body_bytes, "Larger request bodies get 413")
    ->check(CLI::Range(size_t{1}, size_t{1} << 40))
    ->capture_default_str();
  serve_verb->add_option("--max-batch", serve.load.batching.max_batch, "Rows merged into one run; 1 turns batching off")
    ->check(CLI::Range(std::int64_t{1}, std::int64_t{1} << 20))
    ->capture_default_str();
  serve_verb->add_option("--batch-delay-us", batch_delay_us, "How long a request may wait for others to batch with")
    ->check(CLI::Range(std::int64_t{0}, std::int64_t{10'000'000}))
    ->capture_default_str();
  serve_verb->add_option("--read-timeout", read_timeout, "Seconds a client may take to send its request")
    ->check(CLI::Range(1u, 3600u))
    ->capture_default_str();
  serve_verb->add_option("--drain-timeout", drain_timeout, "Seconds SIGTERM waits for requests in flight")
    ->check(CLI::Range(1u, 86400u))
    ->capture_default_str();
  worker::RouteOptions route;
  unsigned health_interval_ms = 500;
  unsigned upstream_timeout = 60;
  auto* route_verb = app.add_subcommand("route", "Forward inference requests to serve workers by weight, until SIGTERM");
  route_verb->add_option("--routes", route.routes_file, "The routing table at start (JSON; see docs/deploy.md)")->required();
  route_verb->add_option("--admin-token-file", route.admin_token_file, "A file holding the token /admin/ calls need")
    ->required();
  route_verb->add_option("--host", route.host, "Address to listen on")->capture_default_str();
  route_verb->add_option("--port", route.port, "Port; 0 picks a free one (see --port-file)")
    ->check(CLI::Range(0, 65535))
    ->capture_default_str();
  route_verb->add_option("--port-file", route.port_file, "Write the port here once it is open");
  route_verb->add_option("--http-threads", route.http_threads, "Event loops (0: one per core)")
    ->check(CLI::Range(0u, 256u))
    ->capture_default_str();
  route_verb->add_option("--sticky-header", route.sticky_header, "Requests with the same value of this header go to "
                                                                 "the same backend");
  route_verb->add_option("--health-interval-ms", health_interval_ms, "How often each backend's readiness is checked")
    ->check(CLI::Range(10u, 600'000u))
    ->capture_default_str();
  route_verb->add_option("--upstream-timeout", upstream_timeout, "Seconds a backend may take to answer (then 504)")
    ->check(CLI::Range(1u, 86400u))
    ->capture_default_str();
  route_verb->add_option("--max-body-bytes", route.max_body_bytes, "Larger request bodies get 413")
    ->check(CLI::Range(size_t{1}, size_t{1} << 40))
    ->capture_default_str();
  route_verb->add_option("--drain-timeout", drain_timeout, "Seconds SIGTERM waits for requests in flight")
    ->check(CLI::Range(1u, 86400u))
    ->capture_default_str();
  auto* inspect = app.add_subcommand("inspect", "Print a model's format, signature and operator sets as JSON");
  inspect->add_option("MODEL", options.model, "An ONNX model file")->required();
  auto* run_verb = app.add_subcommand("run", "Answer one inference request (Open Inference Protocol JSON) from a file");
  run_verb->add_option("MODEL", options.model, "An ONNX model file")->required();
  run_verb->add_option("--request", options.request, "The request: {\"inputs\": [...]} (default: standard input)");
  device_options(run_verb);
  auto* bench_verb = app.add_subcommand("bench", "Time a model on random inputs at one batch size; prints JSON");
  bench_verb->add_option("MODEL", options.model, "An ONNX model file")->required();
  bench_verb->add_option("--batch", options.batch, "The size of symbolic dimensions")
    ->check(CLI::Range(std::int64_t{1}, std::int64_t{1} << 30));
  bench_verb->add_option("--iterations", options.iterations, "Timed runs")->check(CLI::Range(1, 1'000'000));
  bench_verb->add_option("--warmup", options.warmup, "Untimed runs first")->check(CLI::Range(0, 1'000'000));
  device_options(bench_verb);
  try {
    app.parse(argc, argv);
    if (*inspect) {
      std::cout << worker::inspect_onnx(options.model).dump(2) << "\n";
      return 0;
    }
    if (*serve_verb) {
      for (const auto& spec : model_specs) {
        serve.models.push_back(worker::parse_model_spec(spec));
      }
      if (!config.empty()) {
        auto listed = worker::read_model_config(config);
        serve.models.insert(serve.models.end(), listed.begin(), listed.end());
      }
      if (serve.models.empty()) {
        throw Error(ExitCode::usage, "serve needs a model: --model NAME[@VERSION]=PATH or --config FILE");
      }
      serve.load.batching.delay = std::chrono::microseconds(batch_delay_us);
      if (const char* fail_after = std::getenv("MLOPS_WORKER_FAIL_AFTER")) {
        std::uint64_t count = 0;
        std::string_view text = fail_after;
        auto [end, problem] = std::from_chars(text.data(), text.data() + text.size(), count);
        if (problem != std::errc() || end != text.data() + text.size() || text.empty()) {
          throw Error(ExitCode::usage, fmt::format("MLOPS_WORKER_FAIL_AFTER='{}' is not a count of requests", text));
        }
        serve.fail_after = count;
      }
      serve.read_timeout = std::chrono::seconds(read_timeout);
      serve.drain_timeout = std::chrono::seconds(drain_timeout);
      return worker::serve(serve);
    }
    if (*route_verb) {
      std::transform(route.sticky_header.begin(), route.sticky_header.end(), route.sticky_header.begin(),
                     [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
      route.health_interval = std::chrono::milliseconds(health_interval_ms);
      route.upstream_timeout = std::chrono::seconds(upstream_timeout);
      route.drain_timeout = std::chrono::seconds(drain_timeout);
      return worker::route(route);
    }
    return *run_verb ? run(options) : bench(options);
  } catch (const CLI::ParseError& error) {
    // --help is 0; every other command-line mistake is a usage error, as for mlops.
    return app.exit(error) == 0 ? 0 : static_cast<int>(ExitCode::usage);
  } catch (const Error& error) {
    std::fprintf(stderr, "mlops-worker: error: %s\n", error.what());
    return error.exit_status();
  } catch (const std::exception& error) {
    std::fprintf(stderr, "mlops-worker: error: %s\n", error.what());
    return 1;
  }
}
