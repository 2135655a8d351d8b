#include "mlops/util/parallel.hpp"

#include <algorithm>
#include <atomic>
#include <exception>
#include <mutex>
#include <vector>

namespace mlops::util {

unsigned default_jobs()
{
  // Asked once: each answer reads /sys (a few hundred microseconds), and every noun's options
  // ask at start-up.
  static const unsigned jobs = std::max(1u, std::thread::hardware_concurrency());
  return jobs;
}

void parallel_for(size_t count, unsigned jobs, const std::function<void(size_t)>& body,
                  const std::function<bool()>& stop)
{
  std::atomic<size_t> next{0};
  std::atomic<bool> failed{false};
  std::exception_ptr first_error;
  std::mutex error_mutex;

  auto worker = [&] {
    for (;;) {
      if (failed.load() || (stop && stop())) {
        return;
      }
      size_t index = next.fetch_add(1);
      if (index >= count) {
        return;
      }
      try {
        body(index);
      } catch (...) {
        std::lock_guard lock(error_mutex);
        if (!first_error) {
          first_error = std::current_exception();
        }
        failed.store(true);
      }
    }
  };

  size_t threads = std::min<size_t>(std::max(1u, jobs), count);
  std::vector<std::thread> helpers;
  for (size_t i = 1; i < threads; ++i) {
    helpers.emplace_back(worker);
  }
  worker();
  for (auto& helper : helpers) {
    helper.join();
  }
  if (first_error) {
    std::rethrow_exception(first_error);
  }
}

} // namespace mlops::util
