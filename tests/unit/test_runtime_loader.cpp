// The loader against models that are wrong on purpose (tests/fixtures/models/bad, made by
// make_bad_models.py there): each is refused with an Error whose code and message say what is
// wrong, never a crash or an allocation the model asked for.
#include "mlops/runtime/model_loader.hpp"

#include "mlops/core/error.hpp"
#include "mlops/runtime/device.hpp"
#include "mlops/runtime/executor.hpp"

#include "expect_error.hpp"
#include "temp_dir.hpp"

#include <doctest/doctest.h>
#include <onnx/onnx_pb.h>

#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>

using namespace mlops;
using namespace mlops::runtime;
using mlops::test::error_message;
using mlops::test::mentions;

namespace fs = std::filesystem;

namespace {

const fs::path models = fs::path(MLOPS_TEST_FIXTURES) / "models";
const fs::path bad = models / "bad";

std::string file_bytes(const fs::path& path)
{
  std::ifstream in(path, std::ios::binary);
  REQUIRE(in);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

std::string load_error(ExitCode expected, const fs::path& path, const LoadOptions& options = {})
{
  return error_message(expected, [&] { load_model(path, options); });
}

std::string serialized(const onnx::TensorProto& proto)
{
  std::string bytes;
  REQUIRE(proto.SerializeToString(&bytes));
  return bytes;
}

// The message of the UnsupportedError that loading `path` throws ("" and a failed check if none).
std::string unsupported_error(const fs::path& path, const LoadOptions& options = {})
{
  try {
    load_model(path, options);
    FAIL_CHECK("no error was thrown");
  } catch (const UnsupportedError& error) {
    CHECK(error.code() == ExitCode::failure);
    return error.what();
  }
  return {};
}

} // namespace

TEST_CASE("mlops::runtime::load_model refuses bytes that are not a model")
{
  SUBCASE("text")
  {
    auto message = load_error(ExitCode::integrity, bad / "not_a_model.onnx");
    CAPTURE(message);
    CHECK(mentions(message, "not_a_model.onnx is not a valid model"));
  }
  SUBCASE("nothing")
  {
    auto message = error_message(ExitCode::integrity, [] { load_model_bytes("", "empty.onnx", ""); });
    CAPTURE(message);
    CHECK(mentions(message, "empty.onnx"));
  }
  SUBCASE("a real model cut in half")
  {
    auto whole = file_bytes(models / "mlp.onnx");
    auto half = whole.substr(0, whole.size() / 2);
    auto message = error_message(ExitCode::integrity, [&] { load_model_bytes(half, "half.onnx", ""); });
    CAPTURE(message);
    CHECK(mentions(message, "half.onnx is not a valid model"));
  }
  SUBCASE("a file that does not exist")
  {
    auto message = load_error(ExitCode::not_found, bad / "no_such_model.onnx");
    CAPTURE(message);
    CHECK(mentions(message, "no_such_model.onnx"));
  }
}

TEST_CASE("mlops::runtime::load_model refuses graphs that read values nobody defines")
{
  SUBCASE("a missing initializer")
  {
    auto message = load_error(ExitCode::integrity, bad / "missing_initializer.onnx");
    CAPTURE(message);
    CHECK(mentions(message, "'W'"));
  }
  SUBCASE("an initializer without values")
  {
    auto message = load_error(ExitCode::integrity, bad / "initializer_without_data.onnx");
    CAPTURE(message);
    CHECK(mentions(message, "W"));
  }
  SUBCASE("an undefined node input")
  {
    auto message = load_error(ExitCode::integrity, bad / "undefined_input.onnx");
    CAPTURE(message);
    CHECK(mentions(message, "'hidden'"));
  }
  SUBCASE("a cycle")
  {
    auto message = load_error(ExitCode::integrity, bad / "cycle.onnx");
    CAPTURE(message);
    CHECK(mentions(message, "cycle"));
    CHECK(mentions(message, "Add"));
  }
}

TEST_CASE("mlops::runtime::load_model refuses absurd sizes before allocating them")
{
  SUBCASE("a declared input of 4e15 bytes")
  {
    auto message = load_error(ExitCode::integrity, bad / "huge_input.onnx");
    CAPTURE(message);
    CHECK(mentions(message, "'x'"));
    CHECK(mentions(message, "limit"));
  }
  SUBCASE("a declared input of more elements than int64 counts")
  {
    auto message = load_error(ExitCode::integrity, bad / "overflowing_input.onnx");
    CAPTURE(message);
    CHECK(mentions(message, "'x'"));
  }
  SUBCASE("an initializer that claims 16 GiB and holds 12 bytes")
  {
    auto message = load_error(ExitCode::integrity, bad / "huge_initializer.onnx");
    CAPTURE(message);
    CHECK(mentions(message, "'W'"));
    CHECK(mentions(message, "[65536, 65536]"));
  }
  SUBCASE("a real initializer over a configured limit")
  {
    CHECK(load_model(bad / "wide_initializer.onnx")->constants.size() == 1);
    LoadOptions options;
    options.max_tensor_bytes = 16 * 1024;
    auto message = load_error(ExitCode::integrity, bad / "wide_initializer.onnx", options);
    CAPTURE(message);
    CHECK(mentions(message, "'W'"));
    CHECK(mentions(message, "16384 bytes"));
  }
}

TEST_CASE("mlops::runtime::load_model survives Conv weights that do not fit the input")
{
  SUBCASE("weights of another rank than the input (libonnx's shape inference crashed on them)")
  {
    Executor executor(load_model(bad / "conv_weights_of_another_rank.onnx"), make_device("cpu", DeviceOptions{1}));
    auto message = error_message(ExitCode::usage, [&] {
      executor.run({{"x", HostTensor::zeros(ElementType::float32, {1, 5})},
                    {"W", HostTensor::zeros(ElementType::float32, {1, 1, 3})}});
    });
    CAPTURE(message);
    CHECK(mentions(message, "[1, 1, 3]"));
    CHECK(mentions(message, "spatial dimensions"));
  }
  SUBCASE("weights whose shape only inference would know, without kernel_shape")
  {
    auto message = load_error(ExitCode::integrity, bad / "conv_weights_of_unknown_shape.onnx");
    CAPTURE(message);
    CHECK(mentions(message, "'W'"));
    CHECK(mentions(message, "give kernel_shape"));
  }
}

TEST_CASE("mlops::runtime::load_model reads external data only inside the model's folder")
{
  SUBCASE("a file beside the model")
  {
    auto graph = load_model(bad / "external_inside.onnx");
    REQUIRE(graph->constants.size() == 1);
    const auto& weight = *graph->constants.begin()->second;
    CHECK(weight.shape == Shape{4, 3});
    auto stored = file_bytes(bad / "external_inside.bin");
    REQUIRE(stored.size() == weight.bytes.size());
    CHECK(std::memcmp(stored.data(), weight.bytes.data(), stored.size()) == 0);
  }
  SUBCASE("a relative path that climbs out")
  {
    auto message = load_error(ExitCode::integrity, bad / "external_parent.onnx");
    CAPTURE(message);
    CHECK(mentions(message, "../secret"));
  }
  SUBCASE("a relative path that climbs out to a file that exists")
  {
    // The refusal must not depend on whether the target exists: it is where it is that matters.
    mlops::test::TempDir temp;
    fs::create_directory(temp.path() / "model");
    fs::copy_file(bad / "external_parent.onnx", temp.path() / "model" / "model.onnx");
    std::ofstream(temp.path() / "secret", std::ios::binary) << std::string(48, 'x');
    auto message = load_error(ExitCode::integrity, temp.path() / "model" / "model.onnx");
    CAPTURE(message);
    CHECK(mentions(message, "../secret"));
    CHECK(mentions(message, "outside the model's folder"));
  }
  SUBCASE("a link in the folder to a file outside it")
  {
    mlops::test::TempDir temp;
    fs::create_directory(temp.path() / "model");
    fs::copy_file(bad / "external_inside.onnx", temp.path() / "model" / "model.onnx");
    fs::create_symlink(fs::absolute(bad / "external_inside.bin"), temp.path() / "model" / "external_inside.bin");
    auto message = load_error(ExitCode::integrity, temp.path() / "model" / "model.onnx");
    CAPTURE(message);
    CHECK(mentions(message, "outside the model's folder"));
  }
  SUBCASE("an absolute path")
  {
    auto message = load_error(ExitCode::integrity, bad / "external_absolute.onnx");
    CAPTURE(message);
    CHECK(mentions(message, "/etc/passwd"));
  }
  SUBCASE("a length of 2^62 bytes")
  {
    auto message = load_error(ExitCode::integrity, bad / "external_too_long.onnx");
    CAPTURE(message);
    CHECK(mentions(message, "W"));
  }
  SUBCASE("bytes given without a folder")
  {
    auto bytes = file_bytes(bad / "external_inside.onnx");
    auto message = error_message(ExitCode::integrity, [&] { load_model_bytes(bytes, "uploaded.onnx", ""); });
    CAPTURE(message);
    CHECK(mentions(message, "external"));
  }
}

TEST_CASE("mlops::runtime::load_model lists the operators it cannot run")
{
  SUBCASE("operators no device has")
  {
    auto message = unsupported_error(bad / "unsupported_operators.onnx");
    CAPTURE(message);
    CHECK(mentions(message, "Det, Einsum"));
    CHECK(mentions(message, "opset 13"));
  }
  SUBCASE("operators the chosen device lacks")
  {
    LoadOptions options;
    options.operators = {"Gemm"};
    auto message = unsupported_error(models / "mlp.onnx", options);
    CAPTURE(message);
    CHECK(mentions(message, "Relu, Softmax"));
  }
}

TEST_CASE("mlops::runtime::parse_tensor")
{
  onnx::TensorProto proto;
  SUBCASE("typed fields")
  {
    proto.set_data_type(onnx::TensorProto::FLOAT);
    proto.add_dims(2);
    proto.add_float_data(1.5f);
    proto.add_float_data(-2.0f);
    auto tensor = parse_tensor(serialized(proto), "typed");
    CHECK(tensor.type == ElementType::float32);
    CHECK(tensor.shape == Shape{2});
    CHECK(tensor.data<float>()[1] == -2.0f);
  }
  SUBCASE("raw data")
  {
    proto.set_data_type(onnx::TensorProto::INT64);
    proto.add_dims(1);
    std::int64_t value = -7;
    proto.set_raw_data(std::string(reinterpret_cast<const char*>(&value), sizeof value));
    CHECK(parse_tensor(serialized(proto), "raw").as_int64s() == std::vector<std::int64_t>{-7});
  }
  SUBCASE("booleans in int32_data")
  {
    proto.set_data_type(onnx::TensorProto::BOOL);
    proto.add_dims(2);
    proto.add_int32_data(1);
    proto.add_int32_data(0);
    auto tensor = parse_tensor(serialized(proto), "flags");
    CHECK(tensor.type == ElementType::boolean);
    CHECK(tensor.data<std::uint8_t>()[0] == 1);
  }
  SUBCASE("fewer values than the shape")
  {
    proto.set_data_type(onnx::TensorProto::FLOAT);
    proto.add_dims(3);
    proto.add_float_data(1.0f);
    auto message = error_message(ExitCode::integrity, [&] { parse_tensor(serialized(proto), "short.pb"); });
    CAPTURE(message);
    CHECK(mentions(message, "short.pb"));
  }
  SUBCASE("a shape of a terabyte and no values")
  {
    // Refused from the bytes at hand, not after allocating what the shape claims.
    proto.set_data_type(onnx::TensorProto::FLOAT);
    proto.add_dims(std::int64_t{1} << 38);
    auto message = error_message(ExitCode::integrity, [&] { parse_tensor(serialized(proto), "liar.pb"); });
    CAPTURE(message);
    CHECK(mentions(message, "liar.pb"));
  }
  SUBCASE("bytes that are not a tensor")
  {
    auto message = error_message(ExitCode::integrity, [] { parse_tensor("this is text", "text.pb"); });
    CAPTURE(message);
    CHECK(mentions(message, "text.pb"));
  }
}
