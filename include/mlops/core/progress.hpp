#pragma once
// A progress line on stderr for work that takes longer than about a second: files, bytes, rate
// and ETA. Only on a terminal, and never with --json or -q (the caller decides `enabled`).

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <mutex>
#include <string>
#include <thread>

namespace mlops {

class Progress
{
public:
  Progress(bool enabled, std::string label, std::uint64_t total_files, std::uint64_t total_bytes);
  Progress(const Progress&) = delete;
  Progress& operator=(const Progress&) = delete;
  ~Progress();  // Erases the line.

  // Thread-safe and cheap: two atomic additions.
  void advance(std::uint64_t files, std::uint64_t bytes);

  // For work whose size is known only once it has started (after listing the files).
  void set_totals(std::uint64_t files, std::uint64_t bytes);

private:
  void run();
  void draw(double seconds);

  std::string m_label;
  std::atomic<std::uint64_t> m_total_files;
  std::atomic<std::uint64_t> m_total_bytes;
  std::atomic<std::uint64_t> m_files{0};
  std::atomic<std::uint64_t> m_bytes{0};
  bool m_drawn = false;
  std::mutex m_mutex;
  std::condition_variable m_wake;
  bool m_done = false;
  std::thread m_thread;
};

} // namespace mlops
