// The executor on the CPU with real models: the PyTorch MLP against PyTorch's own outputs
// (tests/fixtures/models/torch/mlp, made by make_models.py), a symbolic batch, a warm memory pool,
// and requests that do not fit the model's signature or the configured size limit.
#include "mlops/runtime/executor.hpp"

#include "mlops/core/error.hpp"
#include "mlops/runtime/model_loader.hpp"

#include "expect_error.hpp"

#include <doctest/doctest.h>

#include <cmath>
#include <filesystem>
#include <string>
#include <vector>

using namespace mlops;
using namespace mlops::runtime;
using mlops::test::error_message;
using mlops::test::mentions;

namespace fs = std::filesystem;

namespace {

const fs::path models = fs::path(MLOPS_TEST_FIXTURES) / "models";

Executor cpu_executor(const fs::path& model, ExecutorOptions options = {})
{
  return Executor(load_model(model), make_device("cpu", DeviceOptions{2}), options);
}

// Deterministic, varied features: no two rows alike, some negative.
HostTensor features(std::int64_t batch)
{
  std::vector<float> values;
  for (std::int64_t i = 0; i < batch * 4; ++i) {
    values.push_back(std::sin(static_cast<float>(i) * 0.7f) * 3.0f);
  }
  return HostTensor::from(ElementType::float32, {batch, 4}, values);
}

float largest_difference(const HostTensor& a, const HostTensor& b)
{
  REQUIRE(a.shape == b.shape);
  float largest = 0;
  for (std::int64_t i = 0; i < a.count(); ++i) {
    largest = std::max(largest, std::fabs(a.data<float>()[i] - b.data<float>()[i]));
  }
  return largest;
}

} // namespace

TEST_CASE("mlops::runtime::Executor computes what PyTorch computed for the MLP")
{
  auto executor = cpu_executor(models / "mlp.onnx");
  for (auto data_set : {"test_data_set_0", "test_data_set_1"}) {
    CAPTURE(data_set);
    auto folder = models / "torch" / "mlp" / data_set;
    auto outputs = executor.run({{"features", read_tensor_file(folder / "input_0.pb")}});
    REQUIRE(outputs.size() == 1);
    CHECK(outputs[0].name == "probabilities");
    CHECK(largest_difference(outputs[0].tensor, read_tensor_file(folder / "output_0.pb")) <= 1e-5f);
  }
}

TEST_CASE("mlops::runtime::Executor runs any batch size on the same executor")
{
  auto executor = cpu_executor(models / "mlp.onnx");
  auto batch = executor.run({{"features", features(64)}});
  REQUIRE(batch[0].tensor.shape == Shape{64, 3});
  auto single = executor.run({{"features", features(1)}});
  REQUIRE(single[0].tensor.shape == Shape{1, 3});
  // The first row of the batch is the same request as the single one.
  for (int column = 0; column < 3; ++column) {
    auto expected = batch[0].tensor.data<float>()[column];
    CHECK(single[0].tensor.data<float>()[column] == doctest::Approx(expected).epsilon(1e-6));
  }
  for (int row = 0; row < 64; ++row) {
    const float* p = batch[0].tensor.data<float>() + row * 3;
    CHECK(p[0] + p[1] + p[2] == doctest::Approx(1.0).epsilon(1e-5));  // softmax
  }
}

TEST_CASE("mlops::runtime::Executor keeps its memory pool warm across requests")
{
  auto executor = cpu_executor(models / "cnn.onnx");
  auto image = HostTensor::zeros(ElementType::float32, {7, 1, 8, 8});
  auto first = executor.run({{"image", image}});
  auto held = executor.pool_bytes();
  CHECK(held > 0);
  auto second = executor.run({{"image", image}});
  CHECK(executor.pool_bytes() == held);
  CHECK(largest_difference(first[0].tensor, second[0].tensor) == 0.0f);
}

TEST_CASE("mlops::runtime::Executor refuses inputs that do not fit the signature")
{
  auto executor = cpu_executor(models / "mlp.onnx");
  SUBCASE("an unknown name")
  {
    auto message = error_message(ExitCode::usage, [&] { executor.run({{"feature", features(2)}}); });
    CAPTURE(message);
    CHECK(mentions(message, "'feature'"));
    CHECK(mentions(message, "features (float32 [batch, 4])"));
  }
  SUBCASE("a missing input")
  {
    auto message = error_message(ExitCode::usage, [&] { executor.run({}); });
    CAPTURE(message);
    CHECK(mentions(message, "'features'"));
  }
  SUBCASE("another element type")
  {
    auto integers = HostTensor::zeros(ElementType::int64, {2, 4});
    auto message = error_message(ExitCode::usage, [&] { executor.run({{"features", integers}}); });
    CAPTURE(message);
    CHECK(mentions(message, "must be float32, not int64"));
  }
  SUBCASE("another rank")
  {
    auto flat = HostTensor::zeros(ElementType::float32, {4});
    auto message = error_message(ExitCode::usage, [&] { executor.run({{"features", flat}}); });
    CAPTURE(message);
    CHECK(mentions(message, "float32 [batch, 4]"));
  }
  SUBCASE("another fixed dimension")
  {
    auto wide = HostTensor::zeros(ElementType::float32, {2, 5});
    auto message = error_message(ExitCode::usage, [&] { executor.run({{"features", wide}}); });
    CAPTURE(message);
    CHECK(mentions(message, "dimension 1 must be 4"));
  }
  SUBCASE("the executor still serves a good request afterwards")
  {
    CHECK_THROWS_AS(executor.run({{"features", HostTensor::zeros(ElementType::float32, {2, 5})}}), Error);
    CHECK(executor.run({{"features", features(2)}})[0].tensor.shape == Shape{2, 3});
  }
}

TEST_CASE("mlops::runtime::Executor refuses intermediates over its size limit")
{
  // [n, 1] x [1, m] is n * m values from n + m inputs: the request decides how big it gets.
  auto executor = cpu_executor(models / "bad" / "outer_product.onnx", ExecutorOptions{1 << 20});
  auto column = [](std::int64_t n) {
    return HostTensor::from(ElementType::float32, {n, 1}, std::vector<float>(static_cast<size_t>(n), 2.0f));
  };
  auto row = [](std::int64_t m) {
    return HostTensor::from(ElementType::float32, {1, m}, std::vector<float>(static_cast<size_t>(m), 3.0f));
  };
  auto message = error_message(ExitCode::usage, [&] { executor.run({{"a", column(1024)}, {"b", row(1024)}}); });
  CAPTURE(message);
  CHECK(mentions(message, "[1024, 1024]"));
  CHECK(mentions(message, "1048576 bytes"));
  // A request under the limit still runs.
  auto small = executor.run({{"a", column(16)}, {"b", row(16)}});
  REQUIRE(small[0].tensor.shape == Shape{16, 16});
  CHECK(small[0].tensor.data<float>()[255] == 6.0f);
}
