#pragma once
// Dynamic batching: concurrent requests to one model wait in a queue; one caller at a time, the
// leader, takes what has arrived (up to max_batch rows, waiting at most `delay` after the oldest
// request for more), concatenates the inputs along the batch dimension, runs the model once, and
// hands each caller exactly its own rows of every output. With the default delay of 0 nothing
// waits on purpose: requests that arrive while the model is busy form the next batch, so batches
// grow with load.
//
// Submitting never blocks on other requests. A request that finds the model idle and nothing
// queued (with no delay) runs at once on the caller's thread: a lone request costs no hand-off
// between threads. Anything else queues for the model's runner thread, which takes what has
// arrived as one batch. The HTTP event loops therefore stay free to read and answer other
// connections while a model computes.
//
// Requests merge only when the model's inputs and outputs all lead with the same symbolic
// dimension (the batch) and the requests agree on every other dimension; anything else runs
// alone, as does every request when max_batch is 1.

#include "mlops/runtime/executor.hpp"

#include <chrono>
#include <condition_variable>
#include <deque>
#include <exception>
#include <functional>
#include <mutex>
#include <thread>

namespace mlops::worker {

struct BatchOptions
{
  std::int64_t max_batch = 64;          // rows per run
  std::chrono::microseconds delay{0};   // how long the oldest request may wait for company
};

struct BatchResult
{
  std::vector<runtime::NamedTensor> outputs;
  double queue_seconds = 0;    // from submit until its batch started
  double compute_seconds = 0;  // the batch's run
  std::int64_t batch_rows = 0; // rows in the batch it ran in
};

// Whether requests to `graph` may be merged along their first dimension.
bool graph_is_batchable(const runtime::Graph& graph);

// Called exactly once per request, on the thread that ran its batch, with the result or with
// what running the batch threw. It must not throw.
using BatchCompletion = std::function<void(BatchResult&& result, std::exception_ptr failure)>;

class Batcher
{
public:
  Batcher(runtime::Executor& executor, BatchOptions options);
  ~Batcher();  // runs what is still queued, then stops the runner thread
  Batcher(const Batcher&) = delete;
  Batcher& operator=(const Batcher&) = delete;

  // Validates the inputs (Error(usage), thrown before queueing, so one bad request never fails a
  // batch), then either runs the request at once on this thread or queues it for the runner.
  void submit(std::vector<runtime::NamedTensor> inputs, BatchCompletion done);

  // submit() and wait for the answer; throws what running the batch threw.
  BatchResult run(std::vector<runtime::NamedTensor> inputs);

  bool batchable() const { return m_batchable; }

private:
  struct Pending;
  void run_queued();
  std::vector<std::unique_ptr<Pending>> take_batch(std::unique_lock<std::mutex>& lock);
  void run_batch(std::vector<std::unique_ptr<Pending>> batch);

  runtime::Executor& m_executor;
  BatchOptions m_options;
  bool m_batchable;
  std::mutex m_mutex;
  std::condition_variable m_changed;  // the runner waits on it for work, or for company
  std::deque<std::unique_ptr<Pending>> m_queue;
  bool m_running = false;             // a batch is being taken or run
  bool m_stopping = false;
  std::thread m_runner;
};

} // namespace mlops::worker
