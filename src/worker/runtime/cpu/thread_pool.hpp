#pragma once
// The CPU device's workers, started once: a kernel's parallel loop costs a wake-up, not a
// thread start. Loops smaller than two grains run on the calling thread alone.

#include <condition_variable>
#include <cstdint>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

namespace mlops::runtime::cpu {

class ThreadPool
{
public:
  explicit ThreadPool(unsigned threads);
  ~ThreadPool();
  ThreadPool(const ThreadPool&) = delete;
  ThreadPool& operator=(const ThreadPool&) = delete;

  unsigned size() const { return static_cast<unsigned>(m_workers.size()) + 1; }

  // Calls body(begin, end) on disjoint chunks covering [0, count), each at least `grain` long
  // (but the last), and returns when all are done. The first exception is rethrown here.
  void parallel_for(std::int64_t count, std::int64_t grain, const std::function<void(std::int64_t, std::int64_t)>& body);

private:
  void work();
  void run_chunks();

  std::vector<std::thread> m_workers;
  std::mutex m_mutex;
  std::condition_variable m_wake;
  std::condition_variable m_done;
  const std::function<void(std::int64_t, std::int64_t)>* m_body = nullptr;
  std::int64_t m_count = 0;
  std::int64_t m_chunk = 0;
  std::int64_t m_next = 0;
  unsigned m_busy = 0;
  std::uint64_t m_generation = 0;
  bool m_stopping = false;
  std::exception_ptr m_error;
};

} // namespace mlops::runtime::cpu
