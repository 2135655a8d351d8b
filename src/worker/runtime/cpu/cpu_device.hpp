#pragma once
// The CPU device: host memory, a thread pool, and a table of kernel factories that the ops_*.cpp
// files fill, one family of operators each.

#include "mlops/runtime/device.hpp"
#include "thread_pool.hpp"

#include <map>
#include <string>
#include <type_traits>

namespace mlops::runtime::cpu {

class CpuDevice;

using KernelFactory = std::unique_ptr<Kernel> (*)(const Node& node, CpuDevice& device);
using OpTable = std::map<std::string, KernelFactory, std::less<>>;

void add_elementwise_ops(OpTable& table);  // Add Sub Mul Div Relu LeakyRelu Sigmoid Tanh Clip
void add_softmax_ops(OpTable& table);      // Softmax LogSoftmax ArgMax
void add_shape_ops(OpTable& table);        // Flatten Reshape Transpose Squeeze Unsqueeze Concat Identity Dropout Constant
void add_linear_ops(OpTable& table);       // Gemm MatMul
void add_conv_ops(OpTable& table);         // Conv MaxPool AveragePool GlobalAveragePool BatchNormalization

class CpuDevice : public Device
{
public:
  explicit CpuDevice(unsigned threads);

  std::string_view kind() const override { return "cpu"; }
  std::string description() const override;
  void* allocate(size_t bytes) override;
  void release(void* memory, size_t bytes) override;
  void copy_from_host(void* device, const void* host, size_t bytes) override;
  void copy_to_host(void* host, const void* device, size_t bytes) override;
  void copy_on_device(void* to, const void* from, size_t bytes) override;
  std::vector<std::string> operators() const override;
  std::unique_ptr<Kernel> make_kernel(const Node& node) override;

  ThreadPool& pool() { return m_pool; }

private:
  ThreadPool m_pool;
};

// Large GEMMs run on OpenBLAS's own threads: capped like the device's pool so the two do not
// oversubscribe the cores. Process-wide, so only devices made for callers set it, not the
// one-thread device that folds constants at load.
void set_blas_threads(unsigned threads);

// The table of every CPU kernel, built once.
// The op tables' factory for kernel class K: made from the node, and the device when its
// constructor takes one.
template <class K> std::unique_ptr<Kernel> make_kernel_of(const Node& node, CpuDevice& device)
{
  if constexpr (std::is_constructible_v<K, const Node&, CpuDevice&>) {
    return std::make_unique<K>(node, device);
  } else {
    return std::make_unique<K>(node);
  }
}

const OpTable& cpu_op_table();

} // namespace mlops::runtime::cpu
