// The Open Inference Protocol's infer request and response: JSON tensors, Triton's binary
// extension both ways, and the errors a client gets for malformed requests.
#include "mlops/worker/inference_protocol.hpp"

#include "mlops/core/error.hpp"

#include "expect_error.hpp"

#include <doctest/doctest.h>

#include <cstring>

using namespace mlops;
using namespace mlops::worker;
using mlops::test::error_message;
using mlops::test::mentions;

TEST_CASE("a JSON request: id, inputs with nested data, requested outputs")
{
  auto request = parse_infer_request(
    R"({"id": "r1", "inputs": [{"name": "x", "datatype": "FP32", "shape": [2, 2], "data": [[1, 2], [3, 4.5]]}],
        "outputs": [{"name": "y", "parameters": {"binary_data": true}}]})",
    std::nullopt);
  CHECK(request.id == "r1");
  REQUIRE(request.inputs.size() == 1);
  CHECK(request.inputs[0].tensor.shape == runtime::Shape{2, 2});
  CHECK(request.inputs[0].tensor.data<float>()[3] == 4.5f);
  REQUIRE(request.outputs.size() == 1);
  CHECK(request.outputs[0].binary);
}

TEST_CASE("binary inputs follow the JSON header, in order")
{
  std::string header = R"({"inputs": [{"name": "a", "datatype": "INT32", "shape": [2], "parameters": {"binary_data_size": 8}},
                                      {"name": "b", "datatype": "BOOL", "shape": [3], "parameters": {"binary_data_size": 3}}]})";
  std::int32_t ints[2] = {7, -9};
  std::string body = header;
  body.append(reinterpret_cast<const char*>(ints), sizeof(ints));
  body += std::string("\x01\x00\x01", 3);
  auto request = parse_infer_request(body, header.size());
  CHECK(request.inputs[0].tensor.data<std::int32_t>()[1] == -9);
  CHECK(request.inputs[1].tensor.bytes.size() == 3);

  auto short_body = body.substr(0, body.size() - 1);
  CHECK(mentions(error_message(ExitCode::usage, [&] { parse_infer_request(short_body, header.size()); }), "ends"));
  auto extra = body + "zz";
  CHECK(mentions(error_message(ExitCode::usage, [&] { parse_infer_request(extra, header.size()); }), "no input claims"));
  CHECK(mentions(error_message(ExitCode::usage, [&] { parse_infer_request(body, body.size() + 1); }),
                 "Inference-Header-Content-Length"));
}

TEST_CASE("a binary size that does not match the datatype and shape is refused")
{
  std::string header = R"({"inputs": [{"name": "a", "datatype": "FP32", "shape": [2], "parameters": {"binary_data_size": 4}}]})";
  auto message = error_message(ExitCode::usage, [&] { parse_infer_request(header + "abcd", header.size()); });
  CHECK(mentions(message, "takes 8"));
}

TEST_CASE("malformed requests say what is wrong")
{
  CHECK(mentions(error_message(ExitCode::usage, [] { parse_infer_request("{nope", std::nullopt); }), "not valid JSON"));
  CHECK(mentions(error_message(ExitCode::usage, [] { parse_infer_request("[]", std::nullopt); }), "\"inputs\""));
  CHECK(mentions(error_message(ExitCode::usage,
                               [] { parse_infer_request(R"({"inputs": [{"name": "x", "datatype": "FP16", "shape": [1], "data": [1]}]})", std::nullopt); }),
                 "FP16"));
  CHECK(mentions(error_message(ExitCode::usage,
                               [] { parse_infer_request(R"({"inputs": [{"name": "x", "datatype": "FP32", "shape": [3], "data": [1]}]})", std::nullopt); }),
                 "needs 3"));
  CHECK(mentions(error_message(ExitCode::usage, [] { parse_infer_request(R"({"id": 5, "inputs": []})", std::nullopt); }),
                 "\"id\""));
}

TEST_CASE("the response keeps the requested outputs, as JSON or binary")
{
  InferRequest request;
  request.id = "abc";
  std::vector<runtime::NamedTensor> outputs;
  outputs.push_back({"y", runtime::HostTensor::from(runtime::ElementType::float32, {2}, std::vector<float>{1.5f, -2})});
  outputs.push_back({"z", runtime::HostTensor::from(runtime::ElementType::int64, {1}, std::vector<std::int64_t>{42})});

  auto all = make_infer_response("m", "1", request, outputs);
  CHECK_FALSE(all.header_length);
  auto document = nlohmann::json::parse(all.body);
  CHECK(document["id"] == "abc");
  CHECK(document["outputs"].size() == 2);
  CHECK(document["outputs"][1]["data"][0] == 42);

  request.outputs = {{"z", false}, {"y", true}};
  auto picked = make_infer_response("m", "1", request, outputs);
  REQUIRE(picked.header_length);
  auto header = nlohmann::json::parse(picked.body.substr(0, *picked.header_length));
  CHECK(header["outputs"][0]["name"] == "z");
  CHECK(header["outputs"][1]["parameters"]["binary_data_size"] == 8);
  float floats[2];
  std::memcpy(floats, picked.body.data() + *picked.header_length, sizeof(floats));
  CHECK(floats[1] == -2.0f);

  request.outputs = {{"nope", false}};
  CHECK(mentions(error_message(ExitCode::usage, [&] { make_infer_response("m", "1", request, outputs); }), "y, z"));
}

TEST_CASE("integers just past INT64's range are refused, not wrapped")
{
  auto largest = parse_infer_request(
    R"({"inputs": [{"name": "x", "datatype": "INT64", "shape": [1], "data": [9223372036854775807]}]})", std::nullopt);
  CHECK(largest.inputs[0].tensor.data<std::int64_t>()[0] == INT64_MAX);
  auto message = error_message(ExitCode::usage, [] {
    parse_infer_request(R"({"inputs": [{"name": "x", "datatype": "INT64", "shape": [1], "data": [9223372036854775808]}]})",
                        std::nullopt);
  });
  CHECK(mentions(message, "does not fit"));
}
