#include "mlops/worker/http_server.hpp"

#include "mlops/core/build_info.hpp"
#include "mlops/core/error.hpp"
#include "mlops/util/url.hpp"
#include "mlops/worker/device_probe.hpp"
#include "mlops/worker/inference_protocol.hpp"

#include <fmt/chrono.h>
#include <fmt/format.h>
#include <httplib.h>

#include <atomic>
#include <charconv>
#include <csignal>
#include <cstdio>
#include <ctime>
#include <fstream>
#include <thread>
#include <cerrno>
#include <cstring>
#include <fcntl.h>
#include <poll.h>
#include <unistd.h>

namespace mlops::worker {

namespace {

using Clock = std::chrono::steady_clock;

enum class State { loading, ready, draining };

// One line on stderr (the worker's log when `mlops serve` started it), with the time.
template <class... Args> void log_line(fmt::format_string<Args...> format, Args&&... args)
{
  auto line = fmt::format("{:%Y-%m-%dT%H:%M:%S} mlops-worker[{}]: {}\n", fmt::localtime(std::time(nullptr)), getpid(),
                          fmt::format(format, std::forward<Args>(args)...));
  std::fputs(line.c_str(), stderr);
}

void send_json(httplib::Response& response, int status, const nlohmann::json& document)
{
  response.status = status;
  response.set_content(document.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace), "application/json");
}

void send_error(httplib::Response& response, int status, const std::string& message)
{
  send_json(response, status, {{"error", message}});
}

int http_status(const Error& error)
{
  switch (error.code()) {
  case ExitCode::usage: return 400;
  case ExitCode::not_found: return 404;
  default: return 500;
  }
}

template <class... Args> void append(std::string& out, fmt::format_string<Args...> format, Args&&... args)
{
  fmt::format_to(std::back_inserter(out), format, std::forward<Args>(args)...);
}

// Decrements the model's in-flight gauge however the request ends.
struct InFlight
{
  explicit InFlight(ModelMetrics& counted) : metrics(counted) { ++metrics.in_flight; }
  ~InFlight() { --metrics.in_flight; }
  ModelMetrics& metrics;
};

void write_port_file(const std::filesystem::path& file, int port)
{
  auto staging = file;
  staging += ".tmp";
  {
    std::ofstream out(staging, std::ios::trunc);
    out << port << "\n";
    if (!out.flush()) {
      throw Error(ExitCode::failure, fmt::format("cannot write the port file {}", file.string()));
    }
  }
  std::filesystem::rename(staging, file);
}

class Worker
{
public:
  explicit Worker(const ServeOptions& options) : m_options(options) {}

  int run();

private:
  void route();
  ServedModel* model_or_404(const httplib::Request& request, httplib::Response& response);
  void infer(const httplib::Request& request, httplib::Response& response);
  std::string metrics_text();
  void open_port();
  void watch_signals();

  const ServeOptions& m_options;
  httplib::Server m_server;
  ModelRepository m_repository;
  std::atomic<State> m_state{State::loading};
  ResponseCounter m_responses;
  int m_listen_socket = -1;
  int m_port = 0;
};

void Worker::route()
{
  m_server.Get("/v2/health/live", [](const httplib::Request&, httplib::Response& response) {
    send_json(response, 200, {{"live", true}});
  });
  m_server.Get("/v2/health/ready", [this](const httplib::Request&, httplib::Response& response) {
    switch (m_state.load()) {
    case State::ready: send_json(response, 200, {{"ready", true}}); break;
    case State::loading: send_error(response, 503, "the worker is loading its models"); break;
    case State::draining: send_error(response, 503, "the worker is shutting down"); break;
    }
  });
  m_server.Get("/v2", [](const httplib::Request&, httplib::Response& response) {
    send_json(response, 200,
              {{"name", "mlops-worker"}, {"version", mlops_version()}, {"extensions", {"binary_tensor_data"}}});
  });
  const std::string model_path = R"(/v2/models/([^/]+)(?:/versions/([^/]+))?)";
  m_server.Get(model_path, [this](const httplib::Request& request, httplib::Response& response) {
    if (auto* model = model_or_404(request, response)) {
      auto metadata = model->metadata;
      if (request.matches[2].length() == 0) {
        metadata["versions"] = nlohmann::json::array();
        for (const auto& other : m_repository.models()) {
          if (other->spec.name == model->spec.name) {
            metadata["versions"].push_back(other->spec.version);
          }
        }
      }
      send_json(response, 200, metadata);
    }
  });
  m_server.Get(model_path + "/ready", [this](const httplib::Request& request, httplib::Response& response) {
    if (auto* model = model_or_404(request, response)) {
      send_json(response, 200, {{"name", model->spec.name}, {"version", model->spec.version}, {"ready", true}});
    }
  });
  m_server.Post(model_path + "/infer",
                [this](const httplib::Request& request, httplib::Response& response) { infer(request, response); });
  m_server.Get("/metrics", [this](const httplib::Request&, httplib::Response& response) {
    response.set_content(metrics_text(), "text/plain; version=0.0.4");
  });
  // Whatever httplib answers by itself (no route, a body over the limit) still gets a JSON error.
  m_server.set_error_handler([](const httplib::Request& request, httplib::Response& response) {
    if (!response.body.empty()) {
      return;
    }
    switch (response.status) {
    case 404: send_error(response, 404, fmt::format("no such endpoint: {} {}", request.method, request.path)); break;
    case 413: send_error(response, 413, "the request body is larger than the worker's limit (--max-body-bytes)"); break;
    default: send_error(response, response.status, fmt::format("HTTP {}", response.status)); break;
    }
  });
  m_server.set_exception_handler([](const httplib::Request&, httplib::Response& response, std::exception_ptr failure) {
    std::string message = "internal error";
    try {
      std::rethrow_exception(failure);
    } catch (const std::exception& error) {
      message = error.what();
    } catch (...) {
    }
    log_line("500: {}", message);
    send_error(response, 500, message);
  });
  m_server.set_post_routing_handler([this](const httplib::Request& request, httplib::Response& response) {
    m_responses.count(response.status);
    if (request.has_header("X-Request-Id")) {
      response.set_header("X-Request-Id", request.get_header_value("X-Request-Id"));
    }
  });
}

ServedModel* Worker::model_or_404(const httplib::Request& request, httplib::Response& response)
{
  std::string name = request.matches[1];
  std::string version = request.matches[2];
  if (m_state.load() == State::loading) {
    send_error(response, 503, "the worker is loading its models");
    return nullptr;
  }
  auto* model = m_repository.find(name, version);
  if (!model) {
    send_error(response, 404,
               fmt::format("this worker does not serve {}{}; it serves {}", name, version.empty() ? "" : "@" + version,
                           m_repository.listing()));
  }
  return model;
}

void Worker::infer(const httplib::Request& request, httplib::Response& response)
{
  auto* model = model_or_404(request, response);
  if (!model) {
    return;
  }
  auto& metrics = *model->metrics;
  InFlight in_flight(metrics);
  auto start = Clock::now();
  try {
    // httplib enforces the limit on bodies with a Content-Length, not on chunked ones.
    if (request.body.size() > m_options.max_body_bytes) {
      ++metrics.failure;
      send_error(response, 413, "the request body is larger than the worker's limit (--max-body-bytes)");
      return;
    }
    std::optional<size_t> header_length;
    if (request.has_header("Inference-Header-Content-Length")) {
      auto text = request.get_header_value("Inference-Header-Content-Length");
      size_t value = 0;
      auto [end, problem] = std::from_chars(text.data(), text.data() + text.size(), value);
      if (problem != std::errc() || end != text.data() + text.size()) {
        throw Error(ExitCode::usage, fmt::format("Inference-Header-Content-Length '{}' is not a byte count", text));
      }
      header_length = value;
    }
    auto parsed = parse_infer_request(request.body, header_length);
    // Unknown outputs fail before the model runs, like unknown inputs.
    const auto& outputs = model->executor->graph().outputs;
    for (const auto& wanted : parsed.outputs) {
      if (std::none_of(outputs.begin(), outputs.end(), [&](const auto& info) { return info.name == wanted.name; })) {
        std::vector<std::string> names;
        for (const auto& info : outputs) {
          names.push_back(info.name);
        }
        throw Error(ExitCode::usage, fmt::format("{} has no output named '{}'; its outputs are {}", model->spec.name,
                                                 wanted.name, fmt::join(names, ", ")));
      }
    }
    auto result = model->batcher->submit(std::move(parsed.inputs));
    auto answer = make_infer_response(model->spec.name, model->spec.version, parsed, std::move(result.outputs));
    response.status = 200;
    response.body = std::move(answer.body);
    if (answer.header_length) {
      response.set_header("Content-Type", "application/octet-stream");
      response.set_header("Inference-Header-Content-Length", std::to_string(*answer.header_length));
    } else {
      response.set_header("Content-Type", "application/json");
    }
    metrics.queue_seconds.observe(result.queue_seconds);
    metrics.compute_seconds.observe(result.compute_seconds);
    metrics.batch_size.observe(static_cast<double>(result.batch_rows));
    metrics.request_seconds.observe(std::chrono::duration<double>(Clock::now() - start).count());
    ++metrics.success;
  } catch (const Error& error) {
    ++metrics.failure;
    int status = http_status(error);
    if (status == 500) {
      log_line("{}@{}: {}", model->spec.name, model->spec.version, error.what());
    }
    send_error(response, status, error.what());
  } catch (const std::exception& error) {
    ++metrics.failure;
    log_line("{}@{}: {}", model->spec.name, model->spec.version, error.what());
    send_error(response, 500, error.what());
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

void Worker::open_port()
{
  // httplib's default socket options set SO_REUSEPORT, which would let a second worker bind a
  // port in use and silently share its traffic. SO_REUSEADDR alone still allows a quick restart.
  m_server.set_socket_options([this](int socket) {
    int yes = 1;
    setsockopt(socket, SOL_SOCKET, SO_REUSEADDR, &yes, sizeof(yes));
    m_listen_socket = socket;
  });
  const auto& host = m_options.host;
  if (m_options.port == 0) {
    m_port = m_server.bind_to_any_port(host);
  } else {
    m_port = m_server.bind_to_port(host, m_options.port) ? m_options.port : -1;
  }
  if (m_port <= 0) {
    throw Error(ExitCode::conflict,
                fmt::format("cannot listen on {}:{}: the port is in use or the address is not this machine's; pick "
                            "another --port (0 picks a free one) or --host",
                            host, m_options.port));
  }
  // httplib listens with a backlog of 5; a burst of 64 clients connecting at once would see
  // refused or retried connections. Listening again on Linux only raises the backlog.
  ::listen(m_listen_socket, SOMAXCONN);
}

// SIGTERM and SIGINT write their number here. A handler rather than sigwait: threads that
// libraries start before main (OpenBLAS's) do not block signals, and one would die of it.
int g_signal_pipe[2] = {-1, -1};

extern "C" void on_stop_signal(int signal)
{
  auto byte = static_cast<unsigned char>(signal);
  [[maybe_unused]] auto written = write(g_signal_pipe[1], &byte, 1);
}

// Waits for a signal byte for up to `timeout` (forever when negative); the signal, or 0.
int wait_for_signal(int timeout_ms)
{
  pollfd wait{g_signal_pipe[0], POLLIN, 0};
  while (true) {
    int ready = poll(&wait, 1, timeout_ms);
    if (ready > 0) {
      unsigned char byte = 0;
      if (read(g_signal_pipe[0], &byte, 1) == 1) {
        return byte;
      }
    } else if (ready == 0 || errno != EINTR) {
      return 0;
    }
  }
}

// The first SIGTERM or SIGINT drains; a second one, or the drain timeout, ends the process.
void Worker::watch_signals()
{
  if (pipe2(g_signal_pipe, O_CLOEXEC) != 0) {
    throw Error(ExitCode::failure, fmt::format("cannot create a pipe: {}", std::strerror(errno)));
  }
  struct sigaction action = {};
  action.sa_handler = on_stop_signal;
  sigemptyset(&action.sa_mask);
  action.sa_flags = SA_RESTART;
  sigaction(SIGTERM, &action, nullptr);
  sigaction(SIGINT, &action, nullptr);
  std::thread([this] {
    int received = wait_for_signal(-1);
    log_line("received {}: no new connections; finishing the requests in flight (a second signal exits at once)",
             strsignal(received));
    m_state = State::draining;
    m_server.stop();
    if (wait_for_signal(static_cast<int>(m_options.drain_timeout.count() * 1000)) != 0) {
      log_line("second signal: exiting without finishing the requests in flight");
    } else {
      log_line("requests still in flight after {} s: exiting", m_options.drain_timeout.count());
    }
    std::_Exit(static_cast<int>(ExitCode::interrupted));
  }).detach();
}

int Worker::run()
{
  std::signal(SIGPIPE, SIG_IGN);  // a client that hangs up is an error on its socket, not our death

  m_server.new_task_queue = [threads = m_options.http_threads] { return new httplib::ThreadPool(threads); };
  m_server.set_payload_max_length(m_options.max_body_bytes);
  m_server.set_read_timeout(m_options.read_timeout.count());
  m_server.set_keep_alive_max_count(100000);
  m_server.set_tcp_nodelay(true);  // small answers go out at once, not after a delayed ACK (40 ms)
  route();
  open_port();
  std::thread listener([this] { m_server.listen_after_bind(); });
  if (!m_options.port_file.empty()) {
    write_port_file(m_options.port_file, m_port);
  }
  log_line("listening on {}", util::http_url(m_options.host, m_port));
  watch_signals();

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
    m_server.stop();
    listener.join();
    throw;
  }
  State loading = State::loading;
  if (m_state.compare_exchange_strong(loading, State::ready)) {
    log_line("ready");
  }
  listener.join();  // returns after a signal, once the requests in flight are answered
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
