#include "mlops/core/interrupt.hpp"

#include "mlops/core/error.hpp"

#include <array>
#include <atomic>
#include <csignal>
#include <cstring>
#include <string>
#include <unistd.h>

namespace mlops {

namespace {

struct HookSlot
{
  std::atomic<InterruptHook> hook{nullptr};
  std::atomic<void*> ctx{nullptr};
};

std::atomic<int> g_signal{0};
std::array<HookSlot, 4> g_hooks;

void on_signal(int signo)
{
  int expected = 0;
  if (!g_signal.compare_exchange_strong(expected, signo)) {
    // The user asked twice: stop waiting for a clean unwind.
    _exit(static_cast<int>(ExitCode::interrupted));
  }
  for (auto& slot : g_hooks) {
    auto hook = slot.hook.load();
    void* ctx = slot.ctx.load();
    if (hook && ctx) {
      hook(ctx);
    }
  }
}

} // namespace

void install_interrupt_handlers()
{
  struct sigaction action = {};
  action.sa_handler = on_signal;
  sigemptyset(&action.sa_mask);
  sigaction(SIGINT, &action, nullptr);
  sigaction(SIGTERM, &action, nullptr);
}

bool interrupted()
{
  return g_signal.load() != 0;
}

void throw_if_interrupted()
{
  if (int signo = g_signal.load()) {
    throw Error(ExitCode::interrupted, std::string("interrupted by SIG") + sigabbrev_np(signo));
  }
}

InterruptSetAside::InterruptSetAside() : m_signal(g_signal.exchange(0)) {}

InterruptSetAside::~InterruptSetAside()
{
  int none = 0;
  g_signal.compare_exchange_strong(none, m_signal);
}

void add_interrupt_hook(InterruptHook hook, void* ctx)
{
  // A slot is claimed through its context, and its hook published only once the context is set,
  // so the handler never sees a hook paired with another hook's context.
  for (auto& slot : g_hooks) {
    void* empty = nullptr;
    if (slot.ctx.compare_exchange_strong(empty, ctx)) {
      slot.hook.store(hook);
      return;
    }
  }
  // All slots taken: the flag still works, only the prompt wake-up of this hook is lost.
}

void remove_interrupt_hook(InterruptHook hook, void* ctx)
{
  for (auto& slot : g_hooks) {
    if (slot.hook.load() == hook && slot.ctx.load() == ctx) {
      slot.hook.store(nullptr);
      slot.ctx.store(nullptr);  // Frees the slot.
      return;
    }
  }
}

} // namespace mlops
