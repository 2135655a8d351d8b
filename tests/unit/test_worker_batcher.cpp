// Dynamic batching with the real runtime: concurrent callers of the PyTorch MLP, each with its
// own rows, must get exactly what the model gives them alone, whether their requests merged or
// not; bad requests fail alone; models without a shared batch dimension never merge.
#include "mlops/worker/batcher.hpp"

#include "mlops/core/error.hpp"
#include "mlops/runtime/model_loader.hpp"

#include "expect_error.hpp"

#include <doctest/doctest.h>

#include <cmath>
#include <condition_variable>
#include <filesystem>
#include <mutex>
#include <thread>
#include <vector>

using namespace mlops;
using namespace mlops::runtime;
using mlops::test::error_message;
using mlops::test::mentions;

namespace {

const std::filesystem::path mlp = std::filesystem::path(MLOPS_TEST_FIXTURES) / "models" / "mlp.onnx";

Executor cpu_executor()
{
  return Executor(load_model(mlp), make_device("cpu", DeviceOptions{1}));
}

// `rows` rows of features, different for every `seed`.
std::vector<NamedTensor> request(std::int64_t rows, int seed)
{
  std::vector<float> values;
  for (std::int64_t i = 0; i < rows * 4; ++i) {
    values.push_back(std::sin(static_cast<float>(seed * 131 + i) * 0.37f) * 2.0f);
  }
  return {{"features", HostTensor::from(ElementType::float32, {rows, 4}, values)}};
}

} // namespace

TEST_CASE("concurrent callers each get exactly their own rows, and batches form")
{
  auto reference = cpu_executor();
  auto executor = cpu_executor();
  worker::Batcher batcher(executor, worker::BatchOptions{16, std::chrono::microseconds(3000)});
  REQUIRE(batcher.batchable());

  constexpr int callers = 12;
  constexpr int requests_each = 8;
  std::vector<std::vector<worker::BatchResult>> results(callers);
  std::vector<std::thread> threads;
  for (int caller = 0; caller < callers; ++caller) {
    threads.emplace_back([&, caller] {
      for (int i = 0; i < requests_each; ++i) {
        results[static_cast<size_t>(caller)].push_back(batcher.run(request(1 + (caller + i) % 3, caller * 100 + i)));
      }
    });
  }
  for (auto& thread : threads) {
    thread.join();
  }
  std::int64_t largest_batch = 0;
  for (int caller = 0; caller < callers; ++caller) {
    for (int i = 0; i < requests_each; ++i) {
      const auto& result = results[static_cast<size_t>(caller)][static_cast<size_t>(i)];
      auto alone = reference.run(request(1 + (caller + i) % 3, caller * 100 + i));
      REQUIRE(result.outputs.size() == 1);
      CHECK(result.outputs[0].name == "probabilities");
      CHECK(result.outputs[0].tensor.shape == alone[0].tensor.shape);
      const auto* got = result.outputs[0].tensor.data<float>();
      const auto* want = alone[0].tensor.data<float>();
      for (std::int64_t k = 0; k < alone[0].tensor.count(); ++k) {
        CHECK(got[k] == doctest::Approx(want[k]).epsilon(1e-6));
      }
      largest_batch = std::max(largest_batch, result.batch_rows);
      CHECK(result.batch_rows <= 16);
    }
  }
  CHECK(largest_batch > 3);  // with a 3 ms delay and 12 callers, requests did merge
}

TEST_CASE("a bad request fails alone, before it can join a batch")
{
  auto executor = cpu_executor();
  worker::Batcher batcher(executor, worker::BatchOptions{64, std::chrono::microseconds(0)});
  std::vector<NamedTensor> wrong = {{"features", HostTensor::zeros(ElementType::float32, {2, 5})}};
  auto message = error_message(ExitCode::usage, [&] { batcher.run(wrong); });
  CHECK(mentions(message, "features"));
  auto fine = batcher.run(request(2, 1));
  CHECK(fine.outputs[0].tensor.shape == Shape{2, 3});
}

TEST_CASE("max_batch 1 never merges")
{
  auto executor = cpu_executor();
  worker::Batcher batcher(executor, worker::BatchOptions{1, std::chrono::microseconds(2000)});
  CHECK_FALSE(batcher.batchable());
  std::vector<std::thread> threads;
  std::vector<std::int64_t> batch_rows(6);
  for (int caller = 0; caller < 6; ++caller) {
    threads.emplace_back([&, caller] { batch_rows[static_cast<size_t>(caller)] = batcher.run(request(2, caller)).batch_rows; });
  }
  for (auto& thread : threads) {
    thread.join();
  }
  for (auto rows : batch_rows) {
    CHECK(rows == 2);
  }
}

TEST_CASE("a model whose outputs do not lead with the batch dimension is not batchable")
{
  Graph graph;
  graph.inputs.push_back({"x", 0, ElementType::float32, std::vector<Dimension>{{-1, "batch"}, {4, ""}}});
  graph.outputs.push_back({"y", 1, ElementType::float32, std::vector<Dimension>{{-1, "batch"}, {3, ""}}});
  CHECK(worker::graph_is_batchable(graph));
  graph.outputs[0].shape = std::vector<Dimension>{{3, ""}};
  CHECK_FALSE(worker::graph_is_batchable(graph));
  graph.outputs[0].shape = std::vector<Dimension>{{-1, "other"}, {3, ""}};
  CHECK_FALSE(worker::graph_is_batchable(graph));
  graph.outputs[0].shape.reset();
  CHECK_FALSE(worker::graph_is_batchable(graph));
}

TEST_CASE("a lone request runs on the caller's thread; requests that find the model busy are answered by the runner")
{
  auto executor = cpu_executor();
  worker::Batcher batcher(executor, worker::BatchOptions{64, std::chrono::microseconds(0)});
  auto caller = std::this_thread::get_id();

  std::thread::id answered_on;
  bool answered = false;
  batcher.submit(request(1, 1), [&](worker::BatchResult&& result, std::exception_ptr failure) {
    CHECK_FALSE(failure);
    CHECK(result.batch_rows == 1);
    answered_on = std::this_thread::get_id();
    answered = true;
  });
  CHECK(answered);  // before submit returned: no hand-off to another thread
  CHECK(answered_on == caller);

  // A completion that submits again finds the model busy (its batch is still being answered), so
  // the second request queues and the runner thread answers it.
  std::mutex mutex;
  std::condition_variable done;
  std::thread::id second_on;
  bool second_done = false;
  batcher.submit(request(1, 2), [&](worker::BatchResult&&, std::exception_ptr) {
    batcher.submit(request(2, 3), [&](worker::BatchResult&& result, std::exception_ptr failure) {
      std::lock_guard lock(mutex);
      CHECK_FALSE(failure);
      CHECK(result.outputs[0].tensor.shape == Shape{2, 3});
      second_on = std::this_thread::get_id();
      second_done = true;
      done.notify_one();
    });
  });
  std::unique_lock lock(mutex);
  REQUIRE(done.wait_for(lock, std::chrono::seconds(10), [&] { return second_done; }));
  CHECK(second_on != caller);
}
