#include "mlops/worker/serve.hpp"

#include "mlops/core/build_info.hpp"
#include "mlops/core/error.hpp"
#include "mlops/util/url.hpp"
#include "mlops/worker/device_probe.hpp"
#include "mlops/worker/http_server.hpp"
#include "mlops/worker/inference_protocol.hpp"
#include "mlops/worker/stop_signals.hpp"
#include "mlops/worker/worker_log.hpp"

#include <fmt/format.h>

#include <atomic>
#include <charconv>
#include <csignal>
#include <thread>

namespace mlops::worker {

namespace {

using Clock = std::chrono::steady_clock;

enum class State { loading, ready, draining };

int http_status(const Error& error)
{
  switch (error.code()) {
  case ExitCode::usage: return 400;
  case ExitCode::not_found: return 404;
  default: return 500;
  }
}

// Where a request under /v2/models/ goes: the model, the version ("" for the newest) and what.
struct ModelRoute
{
  std::string name;
  std::string version;
  std::string action;  // "" (metadata), "ready" or "infer"
};

std::optional<ModelRoute> model_route(std::string_view path)
{
  constexpr std::string_view prefix = "/v2/models/";
  if (path.substr(0, prefix.size()) != prefix) {
    return std::nullopt;
  }
  path.remove_prefix(prefix.size());
  std::vector<std::string_view> parts;
  while (true) {
    auto slash = path.find('/');
    parts.push_back(path.substr(0, slash));
    if (slash == std::string_view::npos) {
      break;
    }
    path.remove_prefix(slash + 1);
  }
  if (std::any_of(parts.begin(), parts.end(), [](auto part) { return part.empty(); })) {
    return std::nullopt;
  }
  ModelRoute route{std::string(parts[0]), "", ""};
  size_t next = 1;
  if (parts.size() >= 3 && parts[1] == "versions") {
    route.version = parts[2];
    next = 3;
  }
  if (parts.size() == next + 1 && (parts[next] == "ready" || parts[next] == "infer")) {
    route.action = parts[next];
  } else if (parts.size() != next) {
    return std::nullopt;
  }
  return route;
}

class Worker
{
public:
  explicit Worker(const ServeOptions& options);

  int run();

private:
  void handle(HttpRequest&& request, const HttpResponder& responder);
  std::optional<HttpResponse> answer_model_route(const ModelRoute& route, HttpRequest& request,
                                                 const HttpResponder& responder);
  std::optional<HttpResponse> infer(ServedModel& model, HttpRequest& request, const HttpResponder& responder);
  std::string metrics_text();

  const ServeOptions& m_options;
  ResponseCounter m_responses;
  HttpServer m_server;  // before the models: answers still due are posted to its loops
  ModelRepository m_repository;
  std::atomic<State> m_state{State::loading};
  std::atomic<std::uint64_t> m_inferences{0};
};

Worker::Worker(const ServeOptions& options)
  : m_options(options),
    m_server(HttpServerOptions{options.host, options.port, options.http_threads,
                               HttpLimits{64 * 1024, options.max_body_bytes},
                               std::chrono::duration_cast<std::chrono::milliseconds>(options.read_timeout)},
             [this](HttpRequest&& request, HttpResponder responder) { handle(std::move(request), responder); },
             m_responses)
{
}

void Worker::handle(HttpRequest&& request, const HttpResponder& responder)
{
  const auto& path = request.path;
  bool reads = request.method == "GET" || request.method == "HEAD";
  auto wrong_method = [&](const char* allowed) {
    auto response = error_response(405, fmt::format("{} {} is not allowed; use {}", request.method, path, allowed));
    response.fields.emplace_back("Allow", allowed);
    return response;
  };
  std::optional<HttpResponse> response;
  if (path == "/v2/health/live" || path == "/v2/health/ready" || path == "/v2" || path == "/metrics") {
    if (!reads) {
      response = wrong_method("GET, HEAD");
    } else if (path == "/v2/health/live") {
      response = json_response(200, {{"live", true}});
    } else if (path == "/v2/health/ready") {
      switch (m_state.load()) {
      case State::ready: response = json_response(200, {{"ready", true}}); break;
      case State::loading: response = error_response(503, "the worker is loading its models"); break;
      case State::draining: response = error_response(503, "the worker is shutting down"); break;
      }
    } else if (path == "/v2") {
      response = json_response(200, {{"name", "mlops-worker"},
                                     {"version", mlops_version()},
                                     {"extensions", {"binary_tensor_data"}}});
    } else {
      response = HttpResponse{200, "text/plain; version=0.0.4", metrics_text(), {}};
    }
  } else if (auto route = model_route(path)) {
    bool posts = route->action == "infer";
    if (posts ? request.method != "POST" : !reads) {
      response = wrong_method(posts ? "POST" : "GET, HEAD");
    } else {
      response = answer_model_route(*route, request, responder);
    }
  } else {
    response = error_response(404, fmt::format("no such endpoint: {} {}", request.method, path));
  }
  if (response) {
    responder.send(std::move(*response));
  }
}

// The answer, or nothing when an inference will answer once its batch has run.
std::optional<HttpResponse> Worker::answer_model_route(const ModelRoute& route, HttpRequest& request,
                                                       const HttpResponder& responder)
{
  if (m_state.load() == State::loading) {
    return error_response(503, "the worker is loading its models");
  }
  auto* model = m_repository.find(route.name, route.version);
  if (!model) {
    return error_response(404, fmt::format("this worker does not serve {}{}; it serves {}", route.name,
                                           route.version.empty() ? "" : "@" + route.version, m_repository.listing()));
  }
  if (route.action == "infer") {
    return infer(*model, request, responder);
  }
  if (route.action == "ready") {
    return json_response(200, {{"name", model->spec.name}, {"version", model->spec.version}, {"ready", true}});
  }
  auto metadata = model->metadata;
  if (route.version.empty()) {
    metadata["versions"] = nlohmann::json::array();
    for (const auto& other : m_repository.models()) {
      if (other->spec.name == model->spec.name) {
        metadata["versions"].push_back(other->spec.version);
      }
    }
  }
  return json_response(200, metadata);
}

std::optional<size_t> inference_header_length(const HttpRequest& request)
{
  const auto* text = request.header("inference-header-content-length");
  if (!text) {
    return std::nullopt;
  }
  size_t value = 0;
  auto [end, problem] = std::from_chars(text->data(), text->data() + text->size(), value);
  if (problem != std::errc() || end != text->data() + text->size() || text->empty()) {
    throw Error(ExitCode::usage, fmt::format("Inference-Header-Content-Length '{}' is not a byte count", *text));
  }
  return value;
}

// Unknown outputs fail before the model runs, like unknown inputs.
void check_requested_outputs(const ServedModel& model, const InferRequest& request)
{
  const auto& outputs = model.executor->graph().outputs;
  for (const auto& wanted : request.outputs) {
    if (std::none_of(outputs.begin(), outputs.end(), [&](const auto& info) { return info.name == wanted.name; })) {
      std::vector<std::string> names;
      for (const auto& info : outputs) {
        names.push_back(info.name);
      }
      throw Error(ExitCode::usage, fmt::format("{} has no output named '{}'; its outputs are {}", model.spec.name,
                                               wanted.name, fmt::join(names, ", ")));
    }
  }
}

HttpResponse failure_response(const ServedModel& model, const std::exception& failure)
{
  const auto* error = dynamic_cast<const Error*>(&failure);
  int status = error ? http_status(*error) : 500;
  if (status == 500) {
    log_line("{}@{}: {}", model.spec.name, model.spec.version, failure.what());
  }
  return error_response(status, failure.what());
}

// Parses and checks the request here, on the event loop; the batcher answers through `responder`
// once the request's batch has run, on whichever thread ran it.
std::optional<HttpResponse> Worker::infer(ServedModel& model, HttpRequest& request, const HttpResponder& responder)
{
  auto& metrics = *model.metrics;
  auto start = Clock::now();
  ++metrics.in_flight;
  try {
    if (m_options.fail_after && m_inferences++ >= *m_options.fail_after) {
      throw std::runtime_error(fmt::format("injected failure: MLOPS_WORKER_FAIL_AFTER={} inference requests have been "
                                           "answered",
                                           *m_options.fail_after));
    }
    auto parsed = parse_infer_request(request.body, inference_header_length(request));
    check_requested_outputs(model, parsed);
    auto inputs = std::move(parsed.inputs);
    model.batcher->submit(std::move(inputs), [&model, parsed = std::move(parsed), responder,
                                              start](BatchResult&& result, std::exception_ptr failure) {
      auto& counters = *model.metrics;
      HttpResponse response;
      try {
        if (failure) {
          std::rethrow_exception(failure);
        }
        auto answer = make_infer_response(model.spec.name, model.spec.version, parsed, std::move(result.outputs));
        response.body = std::move(answer.body);
        if (answer.header_length) {
          response.content_type = "application/octet-stream";
          response.fields.emplace_back("Inference-Header-Content-Length", std::to_string(*answer.header_length));
        }
        counters.queue_seconds.observe(result.queue_seconds);
        counters.compute_seconds.observe(result.compute_seconds);
        counters.batch_size.observe(static_cast<double>(result.batch_rows));
        counters.request_seconds.observe(std::chrono::duration<double>(Clock::now() - start).count());
        ++counters.success;
      } catch (const std::exception& error) {
        ++counters.failure;
        response = failure_response(model, error);
      }
      --counters.in_flight;
      responder.send(std::move(response));
    });
    return std::nullopt;
  } catch (const std::exception& error) {
    ++metrics.failure;
    --metrics.in_flight;
    return failure_response(model, error);
  }
}

std::string Worker::metrics_text()
{
  std::string out;
  const auto& models = m_repository.models();
  append(out, "# HELP mlops_worker_info The worker's version and state.\n# TYPE mlops_worker_info gauge\n");
  const char* state = m_state.load() == State::ready ? "ready" : m_state.load() == State::loading ? "loading" : "draining";
  append(out, "mlops_worker_info{{version=\"{}\",state=\"{}\"}} 1\n", mlops_version(), state);
  append(out, "# HELP mlops_worker_http_responses_total HTTP responses by status code.\n"
         "# TYPE mlops_worker_http_responses_total counter\n");
  m_responses.render(out);
  if (m_state.load() == State::loading) {
    return out;  // the models are still being added
  }
  append(out, "# HELP mlops_model_device_info The device each model version runs on.\n# TYPE mlops_model_device_info gauge\n");
  for (const auto& model : models) {
    append(out, "mlops_model_device_info{{{},device=\"{}\"}} 1\n", model->metrics->labels,
           label_value(model->executor->device().description()));
  }
  append(out, "# HELP mlops_inference_requests_total Inference requests by outcome.\n"
         "# TYPE mlops_inference_requests_total counter\n");
  for (const auto& model : models) {
    append(out, "mlops_inference_requests_total{{{},outcome=\"success\"}} {}\n", model->metrics->labels,
           model->metrics->success.load());
    append(out, "mlops_inference_requests_total{{{},outcome=\"failure\"}} {}\n", model->metrics->labels,
           model->metrics->failure.load());
  }
  append(out, "# HELP mlops_inference_in_flight Inference requests being answered now.\n"
         "# TYPE mlops_inference_in_flight gauge\n");
  for (const auto& model : models) {
    append(out, "mlops_inference_in_flight{{{}}} {}\n", model->metrics->labels, model->metrics->in_flight.load());
  }
  struct Family
  {
    const char* name;
    const char* help;
    Histogram ModelMetrics::*histogram;
  };
  const Family families[] = {
    {"mlops_inference_queue_seconds", "Time from arrival until the request's batch started.", &ModelMetrics::queue_seconds},
    {"mlops_inference_compute_seconds", "Time the model ran for the request's batch.", &ModelMetrics::compute_seconds},
    {"mlops_inference_request_seconds", "Time from parsing the request to its answer.", &ModelMetrics::request_seconds},
    {"mlops_inference_batch_size", "Rows in the batch each request ran in.", &ModelMetrics::batch_size},
  };
  for (const auto& family : families) {
    append(out, "# HELP {} {}\n# TYPE {} histogram\n", family.name, family.help, family.name);
    for (const auto& model : models) {
      ((*model->metrics).*family.histogram).render(out, family.name, model->metrics->labels);
    }
  }
  if (auto memory = gpu_memory()) {
    append(out, "# HELP mlops_gpu_memory_used_bytes Memory in use on GPU 0, by every process.\n"
           "# TYPE mlops_gpu_memory_used_bytes gauge\nmlops_gpu_memory_used_bytes {}\n",
           memory->used);
    append(out, "# HELP mlops_gpu_memory_total_bytes GPU 0's memory.\n"
           "# TYPE mlops_gpu_memory_total_bytes gauge\nmlops_gpu_memory_total_bytes {}\n",
           memory->total);
  }
  return out;
}

int Worker::run()
{
  std::signal(SIGPIPE, SIG_IGN);  // a client that hangs up is an error on its socket, not our death

  int port = m_server.listen();
  if (!m_options.port_file.empty()) {
    write_port_file(m_options.port_file, port);  // connections wait in the backlog meanwhile
  }
  std::thread server([this] { m_server.run(); });
  log_line("listening on {}", util::http_url(m_options.host, port));
  drain_on_stop_signals(
    [this] {
      m_state = State::draining;
      m_server.stop_accepting();
    },
    m_options.drain_timeout);

  try {
    for (const auto& spec : m_options.models) {
      if (m_state.load() == State::draining) {
        break;
      }
      auto start = Clock::now();
      m_repository.load(spec, m_options.load);
      const auto& model = *m_repository.models().back();
      log_line("loaded {}@{} from {} on {} in {:.1f} ms{}", spec.name, spec.version, spec.path.string(),
               model.executor->device().description(),
               std::chrono::duration<double, std::milli>(Clock::now() - start).count(),
               model.batcher->batchable() ? fmt::format(" (batches up to {} rows)", m_options.load.batching.max_batch)
                                          : "");
    }
  } catch (...) {
    m_server.stop_accepting();
    server.join();
    throw;
  }
  State loading = State::loading;
  if (m_state.compare_exchange_strong(loading, State::ready)) {
    log_line("ready");
  }
  server.join();  // returns after a signal, once the requests in flight are answered
  log_line("stopped");
  return 0;
}

} // namespace

int serve(const ServeOptions& options)
{
  Worker worker(options);
  return worker.run();
}

} // namespace mlops::worker
