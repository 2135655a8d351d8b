#pragma once
// Device memory kept for reuse. A tensor's block goes back to the pool when its last reader has
// run, so later tensors of the same request reuse it, and the next request finds the pool warm:
// after the first request of a given shape, running a model allocates nothing.

#include "mlops/runtime/device.hpp"

#include <map>
#include <memory>

namespace mlops::runtime {

class MemoryPool;

// A block of device memory, returned to its pool when the last shared_ptr to it goes.
class Block
{
public:
  Block(MemoryPool& pool, void* memory, size_t bytes) : m_pool(pool), m_memory(memory), m_bytes(bytes) {}
  ~Block();
  Block(const Block&) = delete;
  Block& operator=(const Block&) = delete;
  void* memory() const { return m_memory; }

private:
  MemoryPool& m_pool;
  void* m_memory;
  size_t m_bytes;
};

class MemoryPool
{
public:
  explicit MemoryPool(Device& device) : m_device(device) {}
  ~MemoryPool();
  MemoryPool(const MemoryPool&) = delete;
  MemoryPool& operator=(const MemoryPool&) = delete;

  // A free block of at least `bytes` (and at most twice that, so small tensors do not pin large
  // blocks), or a new one.
  std::shared_ptr<Block> take(size_t bytes);
  size_t held_bytes() const { return m_held; }

private:
  friend class Block;
  void give_back(void* memory, size_t bytes);

  Device& m_device;
  std::multimap<size_t, void*> m_free;
  size_t m_held = 0;
};

} // namespace mlops::runtime
