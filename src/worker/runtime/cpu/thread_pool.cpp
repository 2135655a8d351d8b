#include "thread_pool.hpp"

#include <algorithm>

namespace mlops::runtime::cpu {

ThreadPool::ThreadPool(unsigned threads)
{
  for (unsigned i = 1; i < std::max(threads, 1u); ++i) {
    m_workers.emplace_back([this] { work(); });
  }
}

ThreadPool::~ThreadPool()
{
  {
    std::lock_guard lock(m_mutex);
    m_stopping = true;
  }
  m_wake.notify_all();
  for (auto& worker : m_workers) {
    worker.join();
  }
}

void ThreadPool::parallel_for(std::int64_t count, std::int64_t grain,
                              const std::function<void(std::int64_t, std::int64_t)>& body)
{
  grain = std::max<std::int64_t>(grain, 1);
  if (count <= 0) {
    return;
  }
  if (m_workers.empty() || count < 2 * grain) {
    body(0, count);
    return;
  }
  std::int64_t chunks = std::min<std::int64_t>(count / grain, static_cast<std::int64_t>(size()) * 4);
  {
    std::lock_guard lock(m_mutex);
    m_body = &body;
    m_count = count;
    m_chunk = (count + chunks - 1) / chunks;
    m_next = 0;
    m_error = nullptr;
    m_busy = static_cast<unsigned>(m_workers.size());
    ++m_generation;
  }
  m_wake.notify_all();
  run_chunks();
  std::unique_lock lock(m_mutex);
  m_done.wait(lock, [&] { return m_busy == 0; });
  m_body = nullptr;
  if (m_error) {
    std::rethrow_exception(m_error);
  }
}

// Takes chunks until none is left; called by the workers and the caller alike.
void ThreadPool::run_chunks()
{
  for (;;) {
    std::int64_t begin;
    {
      std::lock_guard lock(m_mutex);
      if (m_next >= m_count || m_error) {
        return;
      }
      begin = m_next;
      m_next += m_chunk;
    }
    try {
      (*m_body)(begin, std::min(begin + m_chunk, m_count));
    } catch (...) {
      std::lock_guard lock(m_mutex);
      if (!m_error) {
        m_error = std::current_exception();
      }
    }
  }
}

void ThreadPool::work()
{
  std::uint64_t seen = 0;
  for (;;) {
    {
      std::unique_lock lock(m_mutex);
      m_wake.wait(lock, [&] { return m_stopping || m_generation != seen; });
      if (m_stopping) {
        return;
      }
      seen = m_generation;
    }
    run_chunks();
    {
      std::lock_guard lock(m_mutex);
      --m_busy;
    }
    m_done.notify_one();
  }
}

} // namespace mlops::runtime::cpu
