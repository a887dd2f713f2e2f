#include "pipeline/crash_guard.h"

#include <dlfcn.h>
#include <setjmp.h>
#include <signal.h>
#include <sys/mman.h>
#include <ucontext.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstring>
#include <mutex>

#include <fmt/format.h>

namespace ea {
namespace {

constexpr int kGuardedSignals[] = {SIGSEGV, SIGBUS, SIGFPE, SIGILL};

struct sigaction previous_actions[NSIG];
std::atomic<uint64_t> caught_crashes{0};

// Read by the signal handler: plain data in static TLS (no lazy allocation, no init function),
// so touching it from the handler is async-signal-safe.
struct ThreadGuard {
  sigjmp_buf* armed;  // where to jump on a fault; null outside a guarded call
  CrashInfo crash;
};
[[gnu::tls_model("initial-exec")]] thread_local ThreadGuard thread_guard;

uintptr_t program_counter(const void* context) {
  const auto* uc = static_cast<const ucontext_t*>(context);
#if defined(__x86_64__)
  return static_cast<uintptr_t>(uc->uc_mcontext.gregs[REG_RIP]);
#elif defined(__aarch64__)
  return static_cast<uintptr_t>(uc->uc_mcontext.pc);
#else
  (void)uc;
  return 0;
#endif
}

void on_fault(int signal, siginfo_t* info, void* context) {
  ThreadGuard& guard = thread_guard;
  if (sigjmp_buf* jump = guard.armed) {
    guard.armed = nullptr;  // a second fault before the jump lands is not ours to catch
    guard.crash = CrashInfo{signal, reinterpret_cast<uintptr_t>(info->si_addr), program_counter(context)};
    siglongjmp(*jump, 1);
  }
  // Not inside a guarded call: a real agent bug. Put back what was there before us; a hardware
  // fault then repeats when we return, one sent with kill() has to be sent again.
  sigaction(signal, &previous_actions[signal], nullptr);
  if (info->si_code <= 0) raise(signal);
}

void install_handlers() {
  struct sigaction action {};
  action.sa_sigaction = on_fault;
  action.sa_flags = SA_SIGINFO | SA_ONSTACK;
  sigemptyset(&action.sa_mask);
  for (int signal : kGuardedSignals) sigaction(signal, &action, &previous_actions[signal]);
}

// An alternate signal stack for this thread, so a plugin that overflows its stack is caught too
// (the handler cannot run on the exhausted stack). Kept if the thread already has one.
class AltStack {
 public:
  AltStack() {
    stack_t current{};
    if (sigaltstack(nullptr, &current) != 0 || !(current.ss_flags & SS_DISABLE)) return;
    long page = sysconf(_SC_PAGESIZE);
    long minimum = sysconf(_SC_SIGSTKSZ);
    size_ = static_cast<size_t>(std::max<long>(minimum, 64 * 1024)) + page;
    void* memory = mmap(nullptr, size_, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_STACK, -1, 0);
    if (memory == MAP_FAILED) return;
    mprotect(memory, page, PROT_NONE);  // guard page: an overflowing handler faults, not corrupts
    stack_t stack{};
    stack.ss_sp = static_cast<char*>(memory) + page;
    stack.ss_size = size_ - page;
    if (sigaltstack(&stack, nullptr) != 0) {
      munmap(memory, size_);
      return;
    }
    memory_ = memory;
  }
  ~AltStack() {
    if (!memory_) return;
    stack_t off{};
    off.ss_flags = SS_DISABLE;
    sigaltstack(&off, nullptr);
    munmap(memory_, size_);
  }
  AltStack(const AltStack&) = delete;
  AltStack& operator=(const AltStack&) = delete;

 private:
  void* memory_ = nullptr;
  size_t size_ = 0;
};

std::string signal_name(int signal) {
  const char* abbrev = sigabbrev_np(signal);
  return abbrev ? fmt::format("SIG{}", abbrev) : fmt::format("signal {}", signal);
}

// "crashing.so+0x1139 (process+0x19)" for an address inside a loaded object.
std::string describe_code_address(uintptr_t address) {
  Dl_info info{};
  if (address == 0 || dladdr(reinterpret_cast<void*>(address), &info) == 0 || !info.dli_fname)
    return fmt::format("{:#x}", address);
  const char* file = std::strrchr(info.dli_fname, '/');
  file = file ? file + 1 : info.dli_fname;
  std::string text =
      fmt::format("{}+{:#x}", file, address - reinterpret_cast<uintptr_t>(info.dli_fbase));
  if (info.dli_sname && info.dli_saddr)
    text += fmt::format(" ({}+{:#x})", info.dli_sname, address - reinterpret_cast<uintptr_t>(info.dli_saddr));
  return text;
}

}  // namespace

std::string describe(const CrashInfo& crash) {
  std::string text = signal_name(crash.signal);
  if (crash.signal == SIGSEGV || crash.signal == SIGBUS) text += fmt::format(" (address {:#x})", crash.fault_address);
  text += " at ";
  text += describe_code_address(crash.instruction ? crash.instruction : crash.fault_address);
  return text;
}

std::optional<CrashInfo> call_guarded(void (*fn)(void*), void* arg) {
  static std::once_flag installed;
  std::call_once(installed, install_handlers);
  static thread_local AltStack alt_stack;

  ThreadGuard& guard = thread_guard;
  sigjmp_buf* const outer = guard.armed;  // nested guarded calls restore the outer one
  sigjmp_buf jump;
  // No signal mask is saved: that would cost a syscall on every call. The crash path unblocks
  // the one signal the handler left blocked instead.
  if (sigsetjmp(jump, 0) == 0) {
    guard.armed = &jump;
    std::atomic_signal_fence(std::memory_order_seq_cst);
    fn(arg);
    std::atomic_signal_fence(std::memory_order_seq_cst);
    guard.armed = outer;
    return std::nullopt;
  }
  guard.armed = outer;
  CrashInfo crash = guard.crash;
  sigset_t unblock;
  sigemptyset(&unblock);
  sigaddset(&unblock, crash.signal);
  pthread_sigmask(SIG_UNBLOCK, &unblock, nullptr);
  caught_crashes.fetch_add(1, std::memory_order_relaxed);
  return crash;
}

uint64_t caught_crash_count() { return caught_crashes.load(std::memory_order_relaxed); }

}  // namespace ea
