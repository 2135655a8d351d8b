#include "memory_pool.hpp"

namespace mlops::runtime {

Block::~Block()
{
  m_pool.give_back(m_memory, m_bytes);
}

MemoryPool::~MemoryPool()
{
  for (auto [bytes, memory] : m_free) {
    m_device.release(memory, bytes);
  }
}

std::shared_ptr<Block> MemoryPool::take(size_t bytes)
{
  bytes = (std::max<size_t>(bytes, 1) + 255) / 256 * 256;  // Whole 256-byte units: aligned for any kernel.
  auto found = m_free.lower_bound(bytes);
  if (found != m_free.end() && found->first <= 2 * bytes) {
    auto block = std::make_shared<Block>(*this, found->second, found->first);
    m_free.erase(found);
    return block;
  }
  void* memory = nullptr;
  try {
    memory = m_device.allocate(bytes);
  } catch (const std::exception&) {
    // Out of memory, perhaps only because free blocks of the wrong sizes hold it: drop them, retry.
    for (auto [size, unused] : m_free) {
      m_device.release(unused, size);
      m_held -= size;
    }
    m_free.clear();
    memory = m_device.allocate(bytes);
  }
  m_held += bytes;
  return std::make_shared<Block>(*this, memory, bytes);
}

void MemoryPool::give_back(void* memory, size_t bytes)
{
  m_free.emplace(bytes, memory);
}

} // namespace mlops::runtime
