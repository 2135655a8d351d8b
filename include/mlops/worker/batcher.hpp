#pragma once
// Dynamic batching: concurrent requests to one model wait in a queue; one caller at a time, the
// leader, takes what has arrived (up to max_batch rows, waiting at most `delay` after the oldest
// request for more), concatenates the inputs along the batch dimension, runs the model once, and
// hands each caller exactly its own rows of every output. With the default delay of 0 nothing
// waits on purpose: requests that arrive while the model is busy form the next batch, so batches
// grow with load.
//
// There is no batching thread: the caller that finds the model idle runs the batch itself, and
// passes the lead to the oldest waiting request when done. A lone request therefore runs on its
// own thread with no hand-off, and each waiting request is woken exactly once.
//
// Requests merge only when the model's inputs and outputs all lead with the same symbolic
// dimension (the batch) and the requests agree on every other dimension; anything else runs
// alone, as does every request when max_batch is 1.

#include "mlops/runtime/executor.hpp"

#include <chrono>
#include <condition_variable>
#include <deque>
#include <exception>
#include <mutex>

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

class Batcher
{
public:
  Batcher(runtime::Executor& executor, BatchOptions options);
  Batcher(const Batcher&) = delete;
  Batcher& operator=(const Batcher&) = delete;

  // Validates the inputs (Error(usage) before queueing, so one bad request never fails a batch),
  // then blocks until the request has run. Throws what running its batch threw.
  BatchResult submit(std::vector<runtime::NamedTensor> inputs);

  bool batchable() const { return m_batchable; }

private:
  struct Pending;
  std::vector<std::shared_ptr<Pending>> take_batch(std::unique_lock<std::mutex>& lock);
  void run_batch(const std::vector<std::shared_ptr<Pending>>& batch);

  runtime::Executor& m_executor;
  BatchOptions m_options;
  bool m_batchable;
  std::mutex m_mutex;
  std::condition_variable m_arrived;  // the leader waits on it for company (delay > 0)
  std::deque<std::shared_ptr<Pending>> m_queue;
  bool m_running = false;             // a leader is taking or running a batch
};

} // namespace mlops::worker
