#include "mlops/worker/batcher.hpp"

#include "mlops/core/error.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <cstring>

namespace mlops::worker {

using runtime::NamedTensor;
using Clock = std::chrono::steady_clock;

struct Batcher::Pending
{
  std::vector<NamedTensor> inputs;  // in the graph's order
  std::int64_t rows = 0;            // their first dimension
  Clock::time_point enqueued;
  BatchCompletion done;
};

namespace {

double seconds_between(Clock::time_point from, Clock::time_point to)
{
  return std::chrono::duration<double>(to - from).count();
}

// Whether two requests can share a run: the same inputs with the same types and the same
// dimensions after the first.
bool can_merge(const std::vector<NamedTensor>& a, const std::vector<NamedTensor>& b)
{
  if (a.size() != b.size()) {
    return false;
  }
  for (size_t i = 0; i < a.size(); ++i) {
    const auto& x = a[i].tensor;
    const auto& y = b[i].tensor;
    if (a[i].name != b[i].name || x.type != y.type || x.shape.size() != y.shape.size() ||
        !std::equal(x.shape.begin() + 1, x.shape.end(), y.shape.begin() + 1)) {
      return false;
    }
  }
  return true;
}

// Rows of `part` after `offset` rows of `whole`, along the first dimension.
runtime::HostTensor slice_rows(const runtime::HostTensor& whole, std::int64_t offset, std::int64_t rows)
{
  auto shape = whole.shape;
  shape[0] = rows;
  auto part = runtime::HostTensor::zeros(whole.type, shape);
  size_t row_bytes = whole.bytes.size() / static_cast<size_t>(whole.shape[0]);
  std::memcpy(part.bytes.data(), whole.bytes.data() + static_cast<size_t>(offset) * row_bytes, part.bytes.size());
  return part;
}

} // namespace

bool graph_is_batchable(const runtime::Graph& graph)
{
  std::string symbol;
  auto leads_with_batch = [&](const runtime::ValueInfo& info) {
    if (!info.shape || info.shape->empty()) {
      return false;
    }
    const auto& first = info.shape->front();
    if (first.fixed() || first.symbol.empty()) {
      return false;
    }
    if (symbol.empty()) {
      symbol = first.symbol;
    }
    return first.symbol == symbol;
  };
  return !graph.inputs.empty() && std::all_of(graph.inputs.begin(), graph.inputs.end(), leads_with_batch) &&
         std::all_of(graph.outputs.begin(), graph.outputs.end(), leads_with_batch);
}

Batcher::Batcher(runtime::Executor& executor, BatchOptions options)
  : m_executor(executor), m_options(options), m_batchable(options.max_batch > 1 && graph_is_batchable(executor.graph()))
{
  m_runner = std::thread([this] { run_queued(); });
}

Batcher::~Batcher()
{
  {
    std::lock_guard lock(m_mutex);
    m_stopping = true;
  }
  m_changed.notify_one();
  m_runner.join();
}

void Batcher::submit(std::vector<NamedTensor> inputs, BatchCompletion done)
{
  const auto& graph = m_executor.graph();
  runtime::validate_inputs(graph, inputs);
  auto pending = std::make_unique<Pending>();
  for (const auto& info : graph.inputs) {
    auto given = std::find_if(inputs.begin(), inputs.end(), [&](const auto& input) { return input.name == info.name; });
    pending->inputs.push_back(std::move(*given));
  }
  const auto& first_shape = pending->inputs.front().tensor.shape;
  pending->rows = first_shape.empty() ? 0 : first_shape[0];
  pending->done = std::move(done);

  std::unique_lock lock(m_mutex);
  pending->enqueued = Clock::now();
  bool waits_for_company = m_batchable && m_options.delay.count() > 0;
  if (!m_running && m_queue.empty() && !waits_for_company) {
    m_running = true;
    lock.unlock();
    std::vector<std::unique_ptr<Pending>> alone;
    alone.push_back(std::move(pending));
    run_batch(std::move(alone));
    lock.lock();
    m_running = false;
    if (m_queue.empty()) {
      return;
    }
  } else {
    m_queue.push_back(std::move(pending));
  }
  m_changed.notify_one();
}

BatchResult Batcher::run(std::vector<NamedTensor> inputs)
{
  std::mutex mutex;
  std::condition_variable answered;
  bool done = false;
  BatchResult result;
  std::exception_ptr failure;
  submit(std::move(inputs), [&](BatchResult&& got, std::exception_ptr problem) {
    std::lock_guard lock(mutex);
    result = std::move(got);
    failure = problem;
    done = true;
    answered.notify_one();
  });
  std::unique_lock lock(mutex);
  answered.wait(lock, [&] { return done; });
  if (failure) {
    std::rethrow_exception(failure);
  }
  return result;
}

void Batcher::run_queued()
{
  std::unique_lock lock(m_mutex);
  while (true) {
    m_changed.wait(lock, [&] { return !m_running && (m_stopping || !m_queue.empty()); });
    if (m_queue.empty()) {
      return;  // stopping, with nothing left to run
    }
    m_running = true;
    auto batch = take_batch(lock);
    lock.unlock();
    run_batch(std::move(batch));
    lock.lock();
    m_running = false;
  }
}

std::vector<std::unique_ptr<Batcher::Pending>> Batcher::take_batch(std::unique_lock<std::mutex>& lock)
{
  auto queued_rows = [&] {
    std::int64_t rows = 0;
    for (const auto& pending : m_queue) {
      rows += pending->rows;
    }
    return rows;
  };
  if (m_batchable && m_options.delay.count() > 0) {
    auto deadline = m_queue.front()->enqueued + m_options.delay;
    while (queued_rows() < m_options.max_batch && Clock::now() < deadline && !m_stopping) {
      m_changed.wait_until(lock, deadline);
    }
  }
  std::vector<std::unique_ptr<Pending>> batch;
  batch.push_back(std::move(m_queue.front()));
  m_queue.pop_front();
  std::int64_t rows = batch.front()->rows;
  if (!m_batchable || rows == 0) {
    return batch;
  }
  for (auto it = m_queue.begin(); it != m_queue.end() && rows < m_options.max_batch;) {
    const auto& candidate = **it;
    if (candidate.rows > 0 && rows + candidate.rows <= m_options.max_batch &&
        can_merge(batch.front()->inputs, candidate.inputs)) {
      rows += candidate.rows;
      batch.push_back(std::move(*it));
      it = m_queue.erase(it);
    } else {
      ++it;
    }
  }
  return batch;
}

void Batcher::run_batch(std::vector<std::unique_ptr<Pending>> batch)
{
  auto start = Clock::now();
  std::int64_t total_rows = 0;
  for (const auto& pending : batch) {
    total_rows += pending->rows;
  }
  std::vector<BatchResult> results(batch.size());
  std::exception_ptr failure;
  try {
    std::vector<NamedTensor> outputs;
    if (batch.size() == 1) {
      outputs = m_executor.run(batch.front()->inputs);
    } else {
      std::vector<NamedTensor> merged;
      for (size_t i = 0; i < batch.front()->inputs.size(); ++i) {
        const auto& first = batch.front()->inputs[i];
        auto shape = first.tensor.shape;
        shape[0] = total_rows;
        NamedTensor input{first.name, runtime::HostTensor::zeros(first.tensor.type, shape)};
        auto* out = input.tensor.bytes.data();
        for (const auto& pending : batch) {
          const auto& bytes = pending->inputs[i].tensor.bytes;
          std::memcpy(out, bytes.data(), bytes.size());
          out += bytes.size();
        }
        merged.push_back(std::move(input));
      }
      outputs = m_executor.run(merged);
      for (const auto& output : outputs) {
        if (output.tensor.shape.empty() || output.tensor.shape[0] != total_rows) {
          throw Error(ExitCode::failure,
                      fmt::format("the output '{}' of a batch of {} rows has the shape {}; this model cannot be "
                                  "batched: serve it with --max-batch 1",
                                  output.name, total_rows, runtime::shape_text(output.tensor.shape)));
        }
      }
    }
    double compute = seconds_between(start, Clock::now());
    std::int64_t offset = 0;
    for (size_t i = 0; i < batch.size(); ++i) {
      auto& result = results[i];
      result = {{}, seconds_between(batch[i]->enqueued, start), compute, total_rows};
      if (batch.size() == 1) {
        result.outputs = std::move(outputs);
      } else {
        for (const auto& output : outputs) {
          result.outputs.push_back({output.name, slice_rows(output.tensor, offset, batch[i]->rows)});
        }
        offset += batch[i]->rows;
      }
    }
  } catch (...) {
    failure = std::current_exception();
  }
  for (size_t i = 0; i < batch.size(); ++i) {
    batch[i]->done(std::move(results[i]), failure);
  }
}

} // namespace mlops::worker
