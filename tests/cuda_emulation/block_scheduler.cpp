#include "block_scheduler.hpp"

#include <sys/mman.h>
#include <ucontext.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>

#ifdef MLOPS_EMULATION_ASAN
#include <sanitizer/common_interface_defs.h>
#endif

namespace mlops::cuda_emulation {
namespace {

// Kernel frames are small, but sanitized debug builds use several times the stack.
constexpr size_t stack_bytes = 256 * 1024;

// A fiber's stack: mapped once (pages are touched only as the stack grows), with a guard page
// below it so that an overflow faults instead of corrupting its neighbour.
class FiberStack
{
public:
  FiberStack()
  {
    size_t page = static_cast<size_t>(sysconf(_SC_PAGESIZE));
    m_size = stack_bytes + page;
    void* mapped = mmap(nullptr, m_size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (mapped == MAP_FAILED) {
      std::perror("cuda emulation: mmap of a fiber stack");
      std::abort();
    }
    m_base = static_cast<char*>(mapped);
    mprotect(m_base, page, PROT_NONE);
  }
  ~FiberStack() { munmap(m_base, m_size); }
  FiberStack(const FiberStack&) = delete;
  FiberStack& operator=(const FiberStack&) = delete;

  char* bottom() const { return m_base + (m_size - stack_bytes); }
  size_t usable() const { return stack_bytes; }

private:
  char* m_base = nullptr;
  size_t m_size = 0;
};

bool same_site(const std::source_location& a, const std::source_location& b)
{
  return a.line() == b.line() && a.column() == b.column() && std::strcmp(a.file_name(), b.file_name()) == 0;
}

std::string site_text(const std::source_location& site)
{
  return std::string(site.file_name()) + ":" + std::to_string(site.line());
}

thread_local BlockScheduler* active_scheduler = nullptr;

} // namespace

struct BlockScheduler::Fiber
{
  FiberStack stack;
  ucontext_t context{};
  Wait wait = Wait::runnable;
  std::source_location site;  // of the barrier it waits at
  uint3 index{};
  void* fake_stack = nullptr;  // AddressSanitizer's, across switches
};

// The scheduler's own context, to which fibers switch back.
struct BlockScheduler::SchedulerContext
{
  ucontext_t context{};
  void* fake_stack = nullptr;
  const void* stack_bottom = nullptr;
  size_t stack_size = 0;
};

std::string dim3_text(dim3 value)
{
  return "(" + std::to_string(value.x) + ", " + std::to_string(value.y) + ", " + std::to_string(value.z) + ")";
}

BlockScheduler::BlockScheduler() : m_scheduler(std::make_unique<SchedulerContext>()) {}

BlockScheduler::~BlockScheduler() = default;

BlockScheduler& BlockScheduler::active()
{
  return *active_scheduler;
}

void BlockScheduler::fiber_main()
{
  BlockScheduler& self = *active_scheduler;
  SchedulerContext& scheduler = *self.m_scheduler;
#ifdef MLOPS_EMULATION_ASAN
  __sanitizer_finish_switch_fiber(nullptr, &scheduler.stack_bottom, &scheduler.stack_size);
#endif
  self.m_thread(self.m_thread_context);
  self.m_running->wait = Wait::finished;
#ifdef MLOPS_EMULATION_ASAN
  // nullptr: this fiber's fake stack can be freed, it will not run again.
  __sanitizer_start_switch_fiber(nullptr, scheduler.stack_bottom, scheduler.stack_size);
#endif
  setcontext(&scheduler.context);
}

void BlockScheduler::switch_to(Fiber& fiber)
{
  m_running = &fiber;
  threadIdx = fiber.index;
#ifdef MLOPS_EMULATION_ASAN
  __sanitizer_start_switch_fiber(&m_scheduler->fake_stack, fiber.stack.bottom(), fiber.stack.usable());
#endif
  swapcontext(&m_scheduler->context, &fiber.context);
#ifdef MLOPS_EMULATION_ASAN
  __sanitizer_finish_switch_fiber(m_scheduler->fake_stack, nullptr, nullptr);
#endif
  m_running = nullptr;
}

void BlockScheduler::wait_at(Wait barrier, const std::source_location& site)
{
  Fiber& fiber = *m_running;
  fiber.wait = barrier;
  fiber.site = site;
#ifdef MLOPS_EMULATION_ASAN
  __sanitizer_start_switch_fiber(&fiber.fake_stack, m_scheduler->stack_bottom, m_scheduler->stack_size);
#endif
  swapcontext(&fiber.context, &m_scheduler->context);
#ifdef MLOPS_EMULATION_ASAN
  __sanitizer_finish_switch_fiber(fiber.fake_stack, &m_scheduler->stack_bottom, &m_scheduler->stack_size);
#endif
}

void BlockScheduler::sync_threads(const std::source_location& site)
{
  wait_at(Wait::block_barrier, site);
}

void BlockScheduler::exchange(const void* value, void* result, unsigned source, size_t bytes, unsigned mask,
                              const std::source_location& site)
{
  unsigned self = linear_thread_index();
  if (mask != 0xffffffffu && m_failure.empty()) {
    m_failure = "a shuffle at " + site_text(site) + " has a partial mask, which the emulation does not model";
  }
  std::memcpy(m_exchange[self].data(), value, bytes);
  wait_at(Wait::warp_barrier, site);  // every lane has given its value
  if (source >= m_block_threads) {
    source = self;  // past a partial last warp: as a lane outside the width, its own value
  }
  if (m_fibers[source]->wait == Wait::finished && m_failure.empty()) {
    m_failure = "a shuffle at " + site_text(site) + " reads lane " + std::to_string(source % warp_size) +
                " of a warp, which has returned (undefined on a GPU)";
  }
  std::memcpy(result, m_exchange[source].data(), bytes);
  wait_at(Wait::warp_barrier, site);  // every lane has read before any gives the next
}

// Opens the warp's barrier if all its running lanes wait at the same shuffle.
bool BlockScheduler::open_warp(size_t first, size_t last)
{
  const Fiber* at_shuffle = nullptr;
  for (size_t i = first; i < last; ++i) {
    const Fiber& lane = *m_fibers[i];
    if (lane.wait == Wait::finished) {
      continue;
    }
    if (lane.wait != Wait::warp_barrier) {
      return false;
    }
    if (at_shuffle && !same_site(at_shuffle->site, lane.site)) {
      m_failure = "lanes of warp " + std::to_string(first / warp_size) + " of block " + dim3_text(blockIdx) +
                  " wait at different shuffles (" + site_text(at_shuffle->site) + ", " + site_text(lane.site) +
                  "): undefined on a GPU";
      return false;
    }
    at_shuffle = &lane;
  }
  if (!at_shuffle) {
    return false;
  }
  for (size_t i = first; i < last; ++i) {
    if (m_fibers[i]->wait == Wait::warp_barrier) {
      m_fibers[i]->wait = Wait::runnable;
    }
  }
  return true;
}

// Opens the barriers that every thread they concern has reached; false when none can open (and
// m_failure says why).
bool BlockScheduler::open_barriers()
{
  bool opened = false;
  for (size_t first = 0; first < m_block_threads; first += warp_size) {
    opened = open_warp(first, std::min(m_block_threads, first + warp_size)) || opened;
  }
  if (opened || !m_failure.empty()) {
    return opened && m_failure.empty();
  }
  const Fiber* at_barrier = nullptr;
  for (size_t i = 0; i < m_block_threads; ++i) {
    const Fiber& thread = *m_fibers[i];
    if (thread.wait == Wait::finished) {
      continue;
    }
    if (thread.wait != Wait::block_barrier) {
      m_failure = stuck_report();
      return false;
    }
    if (at_barrier && !same_site(at_barrier->site, thread.site)) {
      m_failure = "threads of block " + dim3_text(blockIdx) + " wait at different __syncthreads calls (" +
                  site_text(at_barrier->site) + ", " + site_text(thread.site) +
                  "): a barrier in divergent code, which a GPU hangs on or gets wrong";
      return false;
    }
    at_barrier = &thread;
  }
  for (size_t i = 0; i < m_block_threads; ++i) {
    if (m_fibers[i]->wait == Wait::block_barrier) {
      m_fibers[i]->wait = Wait::runnable;
    }
  }
  return true;
}

std::string BlockScheduler::stuck_report() const
{
  size_t at_block = 0, at_warp = 0, finished = 0;
  for (size_t i = 0; i < m_block_threads; ++i) {
    Wait wait = m_fibers[i]->wait;
    at_block += wait == Wait::block_barrier;
    at_warp += wait == Wait::warp_barrier;
    finished += wait == Wait::finished;
  }
  return "threads of block " + dim3_text(blockIdx) + " wait at different barriers: " + std::to_string(at_block) +
         " at __syncthreads, " + std::to_string(at_warp) + " at a warp shuffle, " + std::to_string(finished) +
         " finished (a barrier in divergent code, which a GPU hangs on or gets wrong)";
}

bool BlockScheduler::run_block(bool descending, void (*thread)(void*), void* context, std::string& failure)
{
  dim3 block = blockDim;
  m_block_threads = size_t{block.x} * block.y * block.z;
  while (m_fibers.size() < m_block_threads) {
    m_fibers.push_back(std::make_unique<Fiber>());
  }
  m_exchange.resize(m_block_threads);
  m_thread = thread;
  m_thread_context = context;
  m_failure.clear();
  for (size_t i = 0; i < m_block_threads; ++i) {
    Fiber& fiber = *m_fibers[i];
    fiber.wait = Wait::runnable;
    fiber.index = uint3{static_cast<unsigned>(i % block.x), static_cast<unsigned>(i / block.x % block.y),
                        static_cast<unsigned>(i / (size_t{block.x} * block.y))};
    getcontext(&fiber.context);
    fiber.context.uc_stack.ss_sp = fiber.stack.bottom();
    fiber.context.uc_stack.ss_size = fiber.stack.usable();
    fiber.context.uc_link = nullptr;
    makecontext(&fiber.context, &BlockScheduler::fiber_main, 0);
  }
  active_scheduler = this;
  for (;;) {
    for (size_t n = 0; n < m_block_threads; ++n) {
      Fiber& fiber = *m_fibers[descending ? m_block_threads - 1 - n : n];
      if (fiber.wait == Wait::runnable) {
        switch_to(fiber);
      }
    }
    bool all_finished = std::all_of(m_fibers.begin(), m_fibers.begin() + static_cast<std::ptrdiff_t>(m_block_threads),
                                    [](auto& f) { return f->wait == Wait::finished; });
    if (all_finished && m_failure.empty()) {
      return true;
    }
    if (all_finished || !open_barriers()) {
      failure = m_failure;
      return false;
    }
  }
}

void warp_exchange(const void* value, void* result, unsigned source, size_t bytes, unsigned mask,
                   const std::source_location& site)
{
  BlockScheduler::active().exchange(value, result, source, bytes, mask, site);
}

} // namespace mlops::cuda_emulation

void __syncthreads(std::source_location site)
{
  mlops::cuda_emulation::BlockScheduler::active().sync_threads(site);
}
