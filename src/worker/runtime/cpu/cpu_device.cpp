#include "cpu_device.hpp"

#include <cblas.h>
#include <fmt/format.h>

#include <cstdlib>
#include <cstring>
#include <new>

namespace mlops::runtime::cpu {

const OpTable& cpu_op_table()
{
  static const OpTable table = [] {
    OpTable built;
    add_elementwise_ops(built);
    add_softmax_ops(built);
    add_shape_ops(built);
    add_linear_ops(built);
    add_conv_ops(built);
    return built;
  }();
  return table;
}

CpuDevice::CpuDevice(unsigned threads) : m_pool(threads) {}

void set_blas_threads(unsigned threads)
{
  openblas_set_num_threads(static_cast<int>(threads));
}

std::string CpuDevice::description() const
{
  return fmt::format("cpu ({} thread{})", m_pool.size(), m_pool.size() == 1 ? "" : "s");
}

void* CpuDevice::allocate(size_t bytes)
{
  // 64-byte alignment: whole cache lines, and what vector loads like best.
  void* memory = std::aligned_alloc(64, (std::max<size_t>(bytes, 1) + 63) / 64 * 64);
  if (!memory) {
    throw std::bad_alloc();
  }
  return memory;
}

void CpuDevice::release(void* memory, size_t)
{
  std::free(memory);
}

void CpuDevice::copy_from_host(void* device, const void* host, size_t bytes)
{
  if (bytes) {
    std::memcpy(device, host, bytes);
  }
}

void CpuDevice::copy_to_host(void* host, const void* device, size_t bytes)
{
  if (bytes) {
    std::memcpy(host, device, bytes);
  }
}

void CpuDevice::copy_on_device(void* to, const void* from, size_t bytes)
{
  if (bytes) {
    std::memmove(to, from, bytes);
  }
}

std::vector<std::string> CpuDevice::operators() const
{
  std::vector<std::string> names;
  for (const auto& [name, factory] : cpu_op_table()) {
    names.push_back(name);
  }
  return names;
}

std::unique_ptr<Kernel> CpuDevice::make_kernel(const Node& node)
{
  const auto& table = cpu_op_table();
  auto found = table.find(node.op_type);
  if (found == table.end()) {
    throw UnsupportedError(fmt::format("{}: the CPU device has no kernel for {}", node.label(), node.op_type));
  }
  return found->second(node, *this);
}

} // namespace mlops::runtime::cpu
