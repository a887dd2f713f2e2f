// Survives a fault (SIGSEGV, SIGBUS, SIGFPE, SIGILL) inside a call into foreign code — a user_so
// plugin — so one bad plugin does not take down every other spec the agent runs.
//
// This is a BEST-EFFORT guard. A fault is caught with sigsetjmp/siglongjmp: the plugin's frames
// are abandoned where they stood, so whatever the plugin was doing is left half-done — its own
// state may be corrupt, a lock it held (its own, or one inside libc such as malloc's) stays held,
// and it may have scribbled over the agent's memory before it faulted. That is why a caller must
// never call a plugin again after it crashed: it disables it and reports the crash instead.
//
// Faults outside a guarded call are not touched: the handler restores the disposition that was
// there before and lets the fault happen again, so a real agent crash still crashes (and dumps
// core) as it would without the guard.
#pragma once
#include <cstdint>
#include <optional>
#include <string>

namespace ea {

struct CrashInfo {
  int signal = 0;
  uintptr_t fault_address = 0;  // si_addr: the bad address (SIGSEGV/SIGBUS) or instruction (SIGFPE/SIGILL)
  uintptr_t instruction = 0;    // program counter at the fault, 0 when unknown
};

// "SIGSEGV (address 0x0) at crashing.so+0x1139 (process+0x19)"
std::string describe(const CrashInfo& crash);

// Calls fn(arg) on this thread with the guard armed; returns the crash if fn faulted.
// Installs the signal handlers (once per process) and an alternate signal stack (once per
// thread, so a stack overflow in fn is caught too). fn's frames must not own anything with a
// destructor: they are unwound by siglongjmp, not by C++ unwinding.
std::optional<CrashInfo> call_guarded(void (*fn)(void*), void* arg);

// Guarded call of a callable that captures what it needs by reference.
template <class F>
std::optional<CrashInfo> call_guarded(F& callable) {
  return call_guarded([](void* self) { (*static_cast<F*>(self))(); }, &callable);
}

// Crashes caught in this process so far, over every thread and plugin.
uint64_t caught_crash_count();

}  // namespace ea
