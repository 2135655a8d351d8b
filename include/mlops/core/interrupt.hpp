#pragma once
// SIGINT and SIGTERM end a command cleanly: the handler only records the signal and pokes the
// registered hooks (SQLite's sqlite3_interrupt, which its own shell also calls from a handler);
// the command notices at its next check, unwinds through destructors (rolling back open
// transactions) and main() exits with ExitCode::interrupted. A second signal exits at once.

namespace mlops {

void install_interrupt_handlers();

// Whether SIGINT or SIGTERM arrived.
bool interrupted();

// Throws Error(ExitCode::interrupted) when a signal arrived. Long loops call it between steps.
void throw_if_interrupted();

// For a short clean-up after a signal (removing the record of what the signal stopped): within
// its scope the signal is set aside, so the database works again; at its end the signal is put
// back, so the command still ends with ExitCode::interrupted. A signal within the scope counts
// as a first one.
class InterruptSetAside
{
public:
  InterruptSetAside();
  ~InterruptSetAside();
  InterruptSetAside(const InterruptSetAside&) = delete;
  InterruptSetAside& operator=(const InterruptSetAside&) = delete;

private:
  int m_signal;
};

// A function the handler calls on the first signal, for work blocked where a flag is not seen.
// It must be async-signal-safe. At most a few hooks at a time; remove before ctx dies. Adding and
// removing are for one thread at a time (the signal handler may run during either).
using InterruptHook = void (*)(void* ctx);
void add_interrupt_hook(InterruptHook hook, void* ctx);
void remove_interrupt_hook(InterruptHook hook, void* ctx);

} // namespace mlops
