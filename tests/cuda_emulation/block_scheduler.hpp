#pragma once
// Runs one block of an emulated kernel (cuda_emulation.hpp) on the CPU: the block's threads are
// fibers (ucontext) on the calling thread, run until they finish or wait at a barrier.
//
// A warp's barrier (a shuffle) opens when all of the warp's running lanes wait at the same
// shuffle; the block's when all of its running threads wait at the same __syncthreads. Anything
// else that leaves no barrier able to open (threads at different barriers, a shuffle with a
// partial mask or from a lane that has returned) is a kernel bug a GPU would hang on or silently
// get wrong: the block fails, and says why.

#include "cuda_emulation.hpp"

#include <array>
#include <memory>
#include <source_location>
#include <string>
#include <vector>

namespace mlops::cuda_emulation {

class BlockScheduler
{
public:
  BlockScheduler();
  ~BlockScheduler();
  BlockScheduler(const BlockScheduler&) = delete;
  BlockScheduler& operator=(const BlockScheduler&) = delete;

  // Runs `thread(context)` for every thread of block blockIdx, shaped blockDim. Threads start in
  // descending order when `descending`, so that code which only works in one order (a missing
  // barrier between a write and another thread's read) fails in one of the two. Returns false,
  // with the reason in `failure`, when the threads cannot all finish.
  bool run_block(bool descending, void (*thread)(void*), void* context, std::string& failure);

  // The scheduler running on this OS thread, for the running fiber's calls below.
  static BlockScheduler& active();

  void sync_threads(const std::source_location& site);
  void exchange(const void* value, void* result, unsigned source, size_t bytes, unsigned mask,
                const std::source_location& site);

private:
  enum class Wait { runnable, block_barrier, warp_barrier, finished };
  struct Fiber;
  struct SchedulerContext;

  static void fiber_main();
  void switch_to(Fiber& fiber);
  void wait_at(Wait barrier, const std::source_location& site);
  bool open_barriers();
  bool open_warp(size_t first, size_t last);
  std::string stuck_report() const;

  std::vector<std::unique_ptr<Fiber>> m_fibers;
  size_t m_block_threads = 0;
  Fiber* m_running = nullptr;
  std::string m_failure;  // set by a fiber or by open_barriers; ends the block
  void (*m_thread)(void*) = nullptr;
  void* m_thread_context = nullptr;
  std::vector<std::array<unsigned char, 16>> m_exchange;  // one shuffle value per thread
  std::unique_ptr<SchedulerContext> m_scheduler;
};

// "(x, y, z)"
std::string dim3_text(dim3 value);

} // namespace mlops::cuda_emulation
