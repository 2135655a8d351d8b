#pragma once
// Runs work over an index range on a few threads. Work items are handed out one at a time from a
// shared counter, so uneven items (a 1 GB file among small ones) balance themselves.

#include <cstddef>
#include <functional>
#include <thread>

namespace mlops::util {

// The number of threads to use by default: every core.
unsigned default_jobs();

// Calls body(i) for every i in [0, count) on up to `jobs` threads (the calling thread is one of
// them) and returns when all are done. When a body throws, the others stop taking new items and
// the first exception is rethrown here. `stop()` is polled between items (for interrupts).
void parallel_for(size_t count, unsigned jobs, const std::function<void(size_t)>& body,
                  const std::function<bool()>& stop = {});

} // namespace mlops::util
