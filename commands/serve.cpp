// mlops serve start | ls | status | stop | logs | prune | predict | load
#include "context.hpp"
#include "nouns.hpp"

#include "mlops/core/interrupt.hpp"
#include "mlops/deploy/deployments.hpp"
#include "mlops/registry/registry.hpp"
#include "mlops/serve/http_client.hpp"
#include "mlops/serve/load_generator.hpp"
#include "mlops/serve/request_body.hpp"
#include "mlops/serve/services.hpp"
#include "mlops/util/duration.hpp"

#include <CLI/CLI.hpp>
#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include <fstream>
#include <iostream>
#include <iterator>
#include <sstream>
#include <thread>

namespace mlops::cli {

namespace {

using namespace serve;
using namespace std::chrono_literals;

struct ServeOptions
{
  std::string target;  // NAME@REF, a service, or either
  StartRequest start;  // serve start's options go straight in
  std::string ready_timeout = "60s";
  std::string timeout = "30s";
  bool all = false;
  bool follow = false;
  std::size_t tail = 0;
  std::string input;
  int concurrency = 1;
  std::string duration = "10s";
  double rate = 0;
};

std::chrono::milliseconds duration_option(const std::string& text, const char* option)
{
  auto value = util::parse_duration(text, 1000ms);
  if (!value || value->count() == 0) {
    throw Error(ExitCode::usage, fmt::format("{} {} is not a positive duration: use seconds (30) or a unit (250ms, "
                                             "30s, 5m)",
                                             option, text));
  }
  return *value;
}

nlohmann::json service_json(const Service& service)
{
  return {{"service", service.name}, {"model", service.model},   {"version", service.version},
          {"ref", service.ref()},    {"digest", service.digest}, {"pid", service.pid},
          {"host", service.host},    {"port", service.port},     {"url", service.url()},
          {"device", service.device}, {"max_batch", service.max_batch}, {"started_at", service.started_at},
          {"log", service.log_path}};
}

// Where predict and load send requests: a service's worker, or a deployment's stable endpoint.
struct Endpoint
{
  std::string name;  // the service or the deployment
  std::string ref;   // NAME@VERSION (a deployment's stable version)
  std::string base_url;
  std::string model_path;  // /v2/models/M[/versions/V]

  std::string infer_url() const { return base_url + model_path + "/infer"; }
};

Endpoint endpoint_of(const Service& service)
{
  return {service.name, service.ref(), service.url(),
          fmt::format("/v2/models/{}/versions/{}", service.model, service.version)};
}

// A service by name, else a live service serving NAME@REF.
Service resolve_target(Context& context, Services& services, const std::string& target)
{
  if (auto service = services.find(target)) {
    return *service;
  }
  if (target.find('@') == std::string::npos && !services.list().empty()) {
    return services.get(target);  // not found: lists the services
  }
  registry::Registry registry(context.home(), context.database());
  auto version = registry.resolve(registry::parse_model_ref(target));
  if (auto service = services.find_serving(version.model, version.version)) {
    return *service;
  }
  throw Error(ExitCode::not_found, fmt::format("no running service serves {} ({}); start one with `mlops serve start {}`",
                                               target, version.ref(), target));
}

// A service first, then a deployment of that name, then a service serving NAME@REF.
Endpoint resolve_endpoint(Context& context, Services& services, const std::string& target)
{
  if (!services.find(target)) {
    if (auto d = deploy::Deployments(context.database()).find(target)) {
      if (http_get(d->url() + "/v2/health/ready", 2s).status != 200) {
        throw Error(ExitCode::worker_unhealthy, fmt::format("the deployment '{}' is not ready; `mlops deploy status {}` "
                                                            "says why",
                                                            d->name, d->name));
      }
      return {d->name, fmt::format("{}@{}", d->model, d->stable_version), d->url(), "/v2/models/" + d->model};
    }
  }
  auto service = resolve_target(context, services, target);
  if (services.health(service) != Health::ready) {
    throw Error(ExitCode::worker_unhealthy, fmt::format("the service '{}' is not ready; `mlops serve status {}` says why",
                                                        service.name, service.name));
  }
  return endpoint_of(service);
}

// The model metadata the worker reports (signature, device), or Error(worker_unhealthy).
nlohmann::json endpoint_metadata(const Endpoint& endpoint)
{
  auto response = http_get(endpoint.base_url + endpoint.model_path, 5s);
  auto document = nlohmann::json::parse(response.body, nullptr, false);
  if (response.status != 200 || !document.is_object()) {
    throw Error(ExitCode::worker_unhealthy, fmt::format("'{}' did not describe its model: {}", endpoint.name,
                                                        worker_error_text(response)));
  }
  return document;
}

std::string read_input(const std::string& path)
{
  if (path == "-") {
    return std::string(std::istreambuf_iterator<char>(std::cin), {});
  }
  std::ifstream in(path);
  if (!in || std::filesystem::is_directory(path)) {
    throw Error(ExitCode::not_found, fmt::format("cannot read the input file {}", path));
  }
  return std::string(std::istreambuf_iterator<char>(in), {});
}

nlohmann::json parse_input(const std::string& path)
{
  // Deeper nesting than any tensor's rank is refused while parsing: copying or printing a
  // document nested 200,000 deep would overflow the stack.
  constexpr int max_depth = 64;
  auto refuse_deep = [&](int depth, nlohmann::json::parse_event_t, nlohmann::json&) {
    if (depth > max_depth) {
      throw Error(ExitCode::usage, fmt::format("{} nests lists or objects more than {} deep; no tensor has that many "
                                               "dimensions",
                                               path == "-" ? "standard input" : path, max_depth));
    }
    return true;
  };
  auto document = nlohmann::json::parse(read_input(path), refuse_deep, false);
  if (document.is_discarded()) {
    throw Error(ExitCode::usage, fmt::format("{} is not JSON: give a request {{\"inputs\": [...]}}, a row [1, 2, 3] or "
                                             "rows [[1, 2, 3], [4, 5, 6]]",
                                             path == "-" ? "standard input" : path));
  }
  return document;
}

// An output tensor as rows of numbers, for people.
std::string output_text(const nlohmann::json& output)
{
  std::string text = fmt::format("{} ({} {})\n", output.value("name", "?"), output.value("datatype", "?"),
                                 output.value("shape", nlohmann::json::array()).dump());
  const auto& shape = output.value("shape", nlohmann::json::array());
  const auto& data = output.value("data", nlohmann::json::array());
  size_t rows = shape.size() > 1 ? shape[0].get<size_t>() : 1;
  size_t per_row = rows > 0 ? data.size() / rows : 0;
  for (size_t row = 0; row < rows && per_row > 0; ++row) {
    std::vector<std::string> cells;
    for (size_t i = row * per_row; i < (row + 1) * per_row && i < data.size(); ++i) {
      cells.push_back(data[i].is_number_float() ? fmt::format("{:.6g}", data[i].get<double>()) : data[i].dump());
    }
    text += fmt::format("  {}\n", fmt::join(cells, "  "));
  }
  return text;
}

void run_start(Context& context, const ServeOptions& options)
{
  StartRequest request = options.start;
  request.ref = registry::parse_model_ref(options.target);
  request.ready_timeout = duration_option(options.ready_timeout, "--ready-timeout");
  request.worker = worker_path();
  Services services(context.home(), context.database());
  auto started = services.start(request);
  const auto& service = started.service;
  auto document = service_json(service);
  document["ready_ms"] = started.ready_ms;
  document["replaced"] = started.replaced ? service_json(*started.replaced) : nlohmann::json(nullptr);
  std::string human;
  if (started.replaced) {
    human += fmt::format("forgot the service '{}' of {}: its worker (pid {}) had died\n", started.replaced->name,
                         started.replaced->ref(), started.replaced->pid);
  }
  human += fmt::format("serving {} as '{}' on {} (pid {}), ready in {:.0f} ms\n"
                       "  infer:  POST {}\n  stop:   mlops serve stop {}\n",
                       service.ref(), service.name, service.url(), service.pid, started.ready_ms, service.infer_url(),
                       service.name);
  context.out().result(document, human);
}

void run_ls(Context& context)
{
  Services services(context.home(), context.database());
  Table table({"SERVICE", "MODEL", "URL", "PID", "DEVICE", "STATE", "STARTED"});
  nlohmann::json list = nlohmann::json::array();
  for (const auto& service : services.list()) {
    auto health = services.health(service, 500ms);
    auto document = service_json(service);
    document["state"] = health_name(health);
    list.push_back(document);
    table.add_row({service.name, service.ref(), service.url(), std::to_string(service.pid), service.device,
                   std::string(health_name(health)), service.started_at});
  }
  context.out().result({{"services", list}}, table.empty() ? std::string("no services; `mlops serve start MODEL@REF` starts one\n")
                                                           : table.render(context.out().style().color));
}

// Sums of the worker's request counters for the service's model (Prometheus text).
nlohmann::json request_counts(const Service& service)
{
  nlohmann::json counts = {{"success", 0}, {"failure", 0}, {"in_flight", 0}};
  auto response = http_get(service.url() + "/metrics", 2s);
  if (response.status != 200) {
    return nullptr;
  }
  auto labels = fmt::format("model=\"{}\",version=\"{}\"", service.model, service.version);
  std::istringstream lines(response.body);
  std::string line;
  while (std::getline(lines, line)) {
    if (line.find(labels) == std::string::npos) {
      continue;
    }
    auto value = [&] { return std::stoull(line.substr(line.rfind(' ') + 1)); };
    if (line.starts_with("mlops_inference_requests_total")) {
      counts[line.find("outcome=\"success\"") != std::string::npos ? "success" : "failure"] = value();
    } else if (line.starts_with("mlops_inference_in_flight")) {
      counts["in_flight"] = value();
    }
  }
  return counts;
}

void run_status(Context& context, const ServeOptions& options)
{
  Services services(context.home(), context.database());
  auto service = services.get(options.target);
  auto health = services.health(service);
  auto document = service_json(service);
  document["state"] = health_name(health);
  document["requests"] = health == Health::ready ? request_counts(service) : nlohmann::json(nullptr);
  document["worker_device"] = nullptr;
  Fields fields;
  fields.add("service", service.name).add("model", service.ref()).add("state", std::string(health_name(health)));
  fields.add("url", service.url()).add("pid", std::to_string(service.pid)).add("started", service.started_at);
  if (health == Health::ready) {
    auto metadata = endpoint_metadata(endpoint_of(service));
    if (metadata.contains("parameters") && metadata["parameters"].contains("device")) {
      document["worker_device"] = metadata["parameters"]["device"];
      fields.add("device", metadata["parameters"]["device"].get<std::string>());
    }
    if (document["requests"].is_object()) {
      const auto& counts = document["requests"];
      fields.add("requests", fmt::format("{} succeeded, {} failed, {} in flight", counts["success"].get<std::uint64_t>(),
                                         counts["failure"].get<std::uint64_t>(), counts["in_flight"].get<std::uint64_t>()));
    }
  } else {
    fields.add("device", service.device + " (asked)");
  }
  fields.add("log", services.log_file(service).string());
  context.out().result(document, fields);
}

void run_stop(Context& context, const ServeOptions& options)
{
  Services services(context.home(), context.database());
  if (options.all == !options.target.empty()) {
    throw Error(ExitCode::usage, "serve stop takes a SERVICE or --all");
  }
  auto grace = duration_option(options.timeout, "--timeout");
  std::vector<Service> targets = options.all ? services.list() : std::vector<Service>{services.get(options.target)};
  nlohmann::json stopped = nlohmann::json::array();
  std::string human;
  for (const auto& service : targets) {
    bool was_alive = services.alive(service);
    bool killed = services.stop(service, grace);
    auto document = service_json(service);
    document["outcome"] = !was_alive ? "already dead" : killed ? "killed" : "stopped";
    stopped.push_back(document);
    human += !was_alive ? fmt::format("forgot '{}' ({}): its worker had already exited\n", service.name, service.ref())
             : killed   ? fmt::format("killed '{}' ({}): it did not drain within {}\n", service.name, service.ref(),
                                      options.timeout)
                        : fmt::format("stopped '{}' ({})\n", service.name, service.ref());
  }
  if (targets.empty()) {
    human = "no services to stop\n";
  }
  context.out().result({{"stopped", stopped}}, human);
}

void run_logs(Context& context, const ServeOptions& options)
{
  Services services(context.home(), context.database());
  auto service = services.get(options.target);
  auto path = services.log_file(service);
  std::ifstream in(path);
  if (!in) {
    throw Error(ExitCode::not_found, fmt::format("the log of '{}' ({}) cannot be read", service.name, path.string()));
  }
  if (context.options.json) {
    if (options.follow) {
      throw Error(ExitCode::usage, "serve logs --follow prints the log as it grows; it cannot be one --json document");
    }
    auto text = options.tail > 0 ? tail_of_file(path, options.tail) : std::string(std::istreambuf_iterator<char>(in), {});
    nlohmann::json lines = nlohmann::json::array();
    std::istringstream split(text);
    for (std::string line; std::getline(split, line);) {
      lines.push_back(line);
    }
    context.out().result({{"service", service.name}, {"path", path.string()}, {"lines", lines}}, "");
    return;
  }
  std::string text = options.tail > 0 ? tail_of_file(path, options.tail) + "\n"
                                      : std::string(std::istreambuf_iterator<char>(in), {});
  if (options.tail > 0) {
    in.seekg(0, std::ios::end);
  }
  std::cout << text << std::flush;
  // -f: follow the log as it grows, until the worker exits or a signal arrives.
  while (options.follow && !interrupted()) {
    std::string more(std::istreambuf_iterator<char>(in), {});
    in.clear();
    if (!more.empty()) {
      std::cout << more << std::flush;
    } else if (!services.alive(service)) {
      break;
    } else {
      std::this_thread::sleep_for(200ms);
    }
  }
}

void run_prune(Context& context)
{
  Services services(context.home(), context.database());
  nlohmann::json pruned = nlohmann::json::array();
  std::string human;
  for (const auto& service : services.list()) {
    if (!services.alive(service)) {
      services.forget(service);
      pruned.push_back(service_json(service));
      human += fmt::format("forgot '{}' ({}, pid {} is gone)\n", service.name, service.ref(), service.pid);
    }
  }
  context.out().result({{"pruned", pruned}}, human.empty() ? std::string("every service is alive; nothing to prune\n") : human);
}

void run_predict(Context& context, const ServeOptions& options)
{
  Services services(context.home(), context.database());
  auto endpoint = resolve_endpoint(context, services, options.target);
  auto given = parse_input(options.input);
  auto body = infer_body(given, given.is_object() ? nlohmann::json::object() : endpoint_metadata(endpoint));
  auto response = http_post(endpoint.infer_url(), body, "application/json", 60s);
  if (response.status != 200) {
    auto message = fmt::format("'{}' ({}) answered: {}", endpoint.name, endpoint.ref, worker_error_text(response));
    throw Error(response.status == 400   ? ExitCode::usage
                : response.status == 404 ? ExitCode::not_found
                                         : ExitCode::worker_unhealthy,
                message);
  }
  auto document = nlohmann::json::parse(response.body, nullptr, false);
  if (!document.is_object()) {
    throw Error(ExitCode::worker_unhealthy, fmt::format("'{}' answered with something that is not JSON", endpoint.name));
  }
  if (!document.contains("id")) {
    document["id"] = nullptr;
  }
  std::string human;
  for (const auto& output : document.value("outputs", nlohmann::json::array())) {
    human += output_text(output);
  }
  context.out().result(document, human);
}

void run_load(Context& context, const ServeOptions& options)
{
  Services services(context.home(), context.database());
  auto endpoint = resolve_endpoint(context, services, options.target);
  LoadOptions load;
  load.url = endpoint.infer_url();
  load.concurrency = options.concurrency;
  load.duration = duration_option(options.duration, "--duration");
  if (options.rate > 0) {
    load.rate = options.rate;
  }
  auto metadata = endpoint_metadata(endpoint);
  load.body = options.input.empty() ? default_infer_body(metadata) : infer_body(parse_input(options.input), metadata);
  auto report = generate_load(load);
  nlohmann::json document = {{"service", endpoint.name},
                             {"ref", endpoint.ref},
                             {"concurrency", load.concurrency},
                             {"rate", load.rate ? nlohmann::json(*load.rate) : nlohmann::json(nullptr)},
                             {"seconds", report.seconds},
                             {"requests", report.requests},
                             {"succeeded", report.succeeded},
                             {"failed", report.failed},
                             {"errors", report.errors},
                             {"throughput_rps", report.throughput},
                             {"latency_ms",
                              {{"mean", report.mean_ms},
                               {"p50", report.p50_ms},
                               {"p95", report.p95_ms},
                               {"p99", report.p99_ms},
                               {"max", report.max_ms}}}};
  auto human = fmt::format("{} requests to '{}' ({}) in {:.1f} s at concurrency {}: {:.0f} requests/s\n"
                           "latency: p50 {:.2f} ms, p95 {:.2f} ms, p99 {:.2f} ms, max {:.2f} ms\n"
                           "{} succeeded, {} failed\n",
                           report.requests, endpoint.name, endpoint.ref, report.seconds, load.concurrency,
                           report.throughput, report.p50_ms, report.p95_ms, report.p99_ms, report.max_ms,
                           report.succeeded, report.failed);
  for (const auto& [error, count] : report.errors) {
    human += fmt::format("  {} x {}\n", count, error);
  }
  context.out().result(document, human);
}

} // namespace

void setup_serve(CLI::App& noun, Context& context)
{
  noun.require_subcommand(1);
  auto options = std::make_shared<ServeOptions>();

  auto* start = add_verb(noun, context, "start", "Serve a registered model version on the bundled worker",
                         [&context, options] { run_start(context, *options); });
  start->add_option("MODEL", options->target, "NAME@VERSION, NAME@ALIAS or NAME@latest")->required();
  start->add_option("--name", options->start.name, "Service name (default: the model's name)");
  start->add_option("--host", options->start.host, "Address the worker listens on")->capture_default_str();
  start->add_option("--port", options->start.port, "Port (default 0: any free port)")->check(CLI::Range(0, 65535));
  start->add_option("--device", options->start.device, "auto (CUDA when there is a GPU), cpu or cuda")
    ->check(CLI::IsMember({"auto", "cpu", "cuda"}))
    ->capture_default_str();
  start->add_option("--max-batch", options->start.max_batch, "Rows merged into one run; 1 turns batching off")
    ->check(CLI::Range(std::int64_t{1}, std::int64_t{1} << 20))
    ->capture_default_str();
  start->add_option("--batch-delay-us", options->start.batch_delay_us, "How long a request may wait for others to batch with")
    ->check(CLI::Range(std::int64_t{0}, std::int64_t{10'000'000}));
  start->add_option("--threads", options->start.threads, "CPU threads for the model (default: every core)");
  start->add_option("--ready-timeout", options->ready_timeout, "How long to wait for the worker to be ready")
    ->capture_default_str();

  add_verb(noun, context, "ls", "List services and their live health", [&context] { run_ls(context); });

  auto* status = add_verb(noun, context, "status", "Show a service: health, model, device, request counts",
                          [&context, options] { run_status(context, *options); });
  status->add_option("SERVICE", options->target, "Service name")->required();

  auto* stop = add_verb(noun, context, "stop", "Stop a service: SIGTERM, drain, SIGKILL after --timeout",
                        [&context, options] { run_stop(context, *options); });
  stop->add_option("SERVICE", options->target, "Service name");
  stop->add_flag("--all", options->all, "Stop every service");
  stop->add_option("--timeout", options->timeout, "How long to wait for the drain before SIGKILL")->capture_default_str();

  auto* logs = add_verb(noun, context, "logs", "Print a service's worker log",
                        [&context, options] { run_logs(context, *options); });
  logs->add_option("SERVICE", options->target, "Service name")->required();
  logs->add_flag("-f,--follow", options->follow, "Keep printing as the log grows, until the worker exits");
  logs->add_option("-n,--tail", options->tail, "Only the last N lines");

  add_verb(noun, context, "prune", "Forget services whose worker is gone", [&context] { run_prune(context); });

  auto* predict = add_verb(noun, context, "predict", "Send one inference request and print the outputs",
                           [&context, options] { run_predict(context, *options); });
  predict->add_option("TARGET", options->target, "A service, a deployment, or NAME@REF served by a service")->required();
  predict->add_option("--input", options->input, "JSON file (- for stdin): a request {\"inputs\": [...]}, a row, or rows")
    ->required();

  auto* load = add_verb(noun, context, "load", "Generate load on a service and report throughput and latency",
                        [&context, options] { run_load(context, *options); });
  load->add_option("TARGET", options->target, "A service, a deployment, or NAME@REF served by a service")->required();
  load->add_option("-c,--concurrency", options->concurrency, "Connections, each with one request in flight")
    ->check(CLI::Range(1, 10000))
    ->capture_default_str();
  load->add_option("-d,--duration", options->duration, "How long to send")->capture_default_str();
  load->add_option("--rate", options->rate, "Requests per second in all (default: as fast as answers come)")
    ->check(CLI::PositiveNumber);
  load->add_option("--input", options->input, "What to send, as for predict (default: one row of zeros)");
}

} // namespace mlops::cli
