#include "mlops/core/progress.hpp"

#include <fmt/format.h>

#include <chrono>
#include <cstdio>

namespace mlops {

namespace {

constexpr auto quiet_period = std::chrono::seconds(1);  // Short work shows nothing.
constexpr auto redraw_every = std::chrono::milliseconds(200);

std::string megabytes(std::uint64_t bytes)
{
  return fmt::format("{:.1f} MB", static_cast<double>(bytes) / 1e6);
}

} // namespace

Progress::Progress(bool enabled, std::string label, std::uint64_t total_files, std::uint64_t total_bytes)
  : m_label(std::move(label)), m_total_files(total_files), m_total_bytes(total_bytes)
{
  if (enabled) {
    m_thread = std::thread([this] { run(); });
  }
}

Progress::~Progress()
{
  if (m_thread.joinable()) {
    {
      std::lock_guard lock(m_mutex);
      m_done = true;
    }
    m_wake.notify_one();
    m_thread.join();
  }
}

void Progress::advance(std::uint64_t files, std::uint64_t bytes)
{
  m_files.fetch_add(files, std::memory_order_relaxed);
  m_bytes.fetch_add(bytes, std::memory_order_relaxed);
}

void Progress::set_totals(std::uint64_t files, std::uint64_t bytes)
{
  m_total_files.store(files, std::memory_order_relaxed);
  m_total_bytes.store(bytes, std::memory_order_relaxed);
}

void Progress::run()
{
  auto started = std::chrono::steady_clock::now();
  std::unique_lock lock(m_mutex);
  if (m_wake.wait_for(lock, quiet_period, [this] { return m_done; })) {
    return;
  }
  while (!m_wake.wait_for(lock, redraw_every, [this] { return m_done; })) {
    draw(std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count());
  }
  if (m_drawn) {
    std::fputs("\r\033[K", stderr);  // Leave the terminal as it was.
  }
}

void Progress::draw(double seconds)
{
  auto files = m_files.load(std::memory_order_relaxed);
  auto bytes = m_bytes.load(std::memory_order_relaxed);
  double rate = seconds > 0 ? static_cast<double>(bytes) / seconds : 0;
  auto total_files = m_total_files.load(std::memory_order_relaxed);
  auto total_bytes = m_total_bytes.load(std::memory_order_relaxed);
  std::string eta = "?";
  if (rate > 0 && total_bytes >= bytes) {
    eta = fmt::format("{:.0f}s", static_cast<double>(total_bytes - bytes) / rate);
  }
  std::fprintf(stderr, "\r\033[K%s %llu/%llu files, %s/%s, %s/s, ETA %s", m_label.c_str(),
               static_cast<unsigned long long>(files), static_cast<unsigned long long>(total_files),
               megabytes(bytes).c_str(), megabytes(total_bytes).c_str(),
               megabytes(static_cast<std::uint64_t>(rate)).c_str(), eta.c_str());
  std::fflush(stderr);
  m_drawn = true;
}

} // namespace mlops
