#pragma once
// The CUDA device: one stream per device object (each executor makes its own device), memory
// from cudaMalloc kept by the executor's pool across requests, and a table of kernel factories
// that the ops_*.cu files fill, as the CPU's are. Compiled by nvcc as C++17.

#include "mlops/runtime/device.hpp"

#include <cuda_runtime_api.h>

#include <functional>
#include <map>
#include <string>
#include <type_traits>

namespace mlops::runtime::cuda {

class CudaDevice;

using KernelFactory = std::unique_ptr<Kernel> (*)(const Node& node, CudaDevice& device);
using OpTable = std::map<std::string, KernelFactory, std::less<>>;

void add_elementwise_ops(OpTable& table);  // Add Sub Mul Div Relu LeakyRelu Sigmoid Tanh Clip
void add_softmax_ops(OpTable& table);      // Softmax LogSoftmax ArgMax
void add_shape_ops(OpTable& table);        // Flatten Reshape Transpose Squeeze Unsqueeze Concat Identity Dropout Constant
void add_linear_ops(OpTable& table);       // Gemm MatMul
void add_conv_ops(OpTable& table);         // Conv MaxPool AveragePool GlobalAveragePool BatchNormalization

// Throws Error(failure) with CUDA's message when `status` is not cudaSuccess.
void check(cudaError_t status, const char* what);

class CudaDevice : public Device
{
public:
  explicit CudaDevice(int ordinal);
  ~CudaDevice() override;

  std::string_view kind() const override { return "cuda"; }
  std::string description() const override;
  void* allocate(size_t bytes) override;
  void release(void* memory, size_t bytes) override;
  void copy_from_host(void* device, const void* host, size_t bytes) override;
  void copy_to_host(void* host, const void* device, size_t bytes) override;
  void copy_on_device(void* to, const void* from, size_t bytes) override;
  void synchronize() override;
  std::vector<std::string> operators() const override;
  std::unique_ptr<Kernel> make_kernel(const Node& node) override;

  cudaStream_t stream() const { return m_stream; }
  int ordinal() const { return m_ordinal; }
  int multiprocessors() const { return m_multiprocessors; }

private:
  int m_ordinal = 0;
  int m_multiprocessors = 0;
  std::string m_name;
  cudaStream_t m_stream = nullptr;
};

// The op tables' factory for kernel class K: made from the node, and the device when its
// constructor takes one.
template <class K> std::unique_ptr<Kernel> make_kernel_of(const Node& node, CudaDevice& device)
{
  if constexpr (std::is_constructible_v<K, const Node&, CudaDevice&>) {
    return std::make_unique<K>(node, device);
  } else {
    return std::make_unique<K>(node);
  }
}

const OpTable& cuda_op_table();

} // namespace mlops::runtime::cuda
