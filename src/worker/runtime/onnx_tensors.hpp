#pragma once
// ONNX TensorProto to HostTensor: values from raw_data or the typed fields, or from an external
// file that must lie inside the model's folder. Only the loader and its tests include this (it
// pulls in ONNX's protobuf header).

#include "mlops/runtime/tensor.hpp"

#include <onnx/onnx_pb.h>  // defines ONNX_API, then includes onnx-ml.pb.h

#include <filesystem>
#include <string>

namespace mlops::runtime {

// `folder` is where external data may be read from (empty: external data is refused); tensors
// over `max_bytes` are refused. `what` names the tensor in messages.
HostTensor tensor_from_proto(const onnx::TensorProto& proto, const std::filesystem::path& folder,
                             std::int64_t max_bytes, const std::string& what);

// Reads every external tensor of the model (initializers, tensor attributes) through the
// confined reader above into the model itself, so that ONNX's checker, which would look for the
// files relative to the working directory, never touches the file system.
void inline_external_data(onnx::ModelProto& model, const std::filesystem::path& folder, std::int64_t max_bytes,
                          const std::string& name);

} // namespace mlops::runtime
