// What this kernel offers BPF programs, and getting the kernel interfaces the agent needs ready.
#pragma once
#include <string>
#include <string_view>
#include <vector>

namespace ea {

// Mounts tracefs at /sys/kernel/tracing and bpffs at /sys/fs/bpf when they are missing and lifts
// RLIMIT_MEMLOCK (needed before kernel 5.11 accounted BPF memory to cgroups). Returns what it
// could not fix, one human-readable problem per entry (empty: all good).
std::vector<std::string> prepare_kernel_interfaces();

// kprobe/kretprobe hooks exist (CONFIG_KPROBES and kprobe events).
bool kernel_has_kprobes();

// fentry/fexit/fmod_ret/lsm programs can be attached (a BPF trampoline works here). Probed once by
// loading and attaching a tiny fentry program; the answer is cached.
bool kernel_has_fentry();

// Kernel hooks a BPF program section needs beyond the basics.
enum class HookFamily { Other, Kprobe, Trampoline };
HookFamily hook_family(std::string_view section_name);

// Whether this kernel has the hooks of `family`; with the reason in `why` when not.
bool kernel_has_hook(HookFamily family, std::string* why = nullptr);

}  // namespace ea
