#include "loader/kernel_features.h"

#include <bpf/bpf.h>
#include <bpf/btf.h>
#include <bpf/libbpf.h>
#include <linux/magic.h>
#include <sys/mount.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/utsname.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <mutex>

#include <fmt/format.h>

namespace ea {
namespace {

constexpr const char* kTracefsDir = "/sys/kernel/tracing";
constexpr const char* kBpffsDir = "/sys/fs/bpf";

bool exists(const char* path) { return access(path, F_OK) == 0; }

std::string errno_text(int error) { return std::strerror(error); }

std::string prepare_tracefs() {
  if (exists("/sys/kernel/tracing/events")) return {};
  if (mount("tracefs", kTracefsDir, "tracefs", 0, nullptr) == 0) return {};
  return fmt::format(
      "tracefs is not mounted at {} and mounting it failed ({}): tracepoint and kprobe programs cannot attach "
      "(mount it with `mount -t tracefs tracefs {}`)",
      kTracefsDir, errno_text(errno), kTracefsDir);
}

std::string prepare_bpffs() {
  struct statfs fs {};
  if (statfs(kBpffsDir, &fs) == 0 && fs.f_type == BPF_FS_MAGIC) return {};
  if (mount("bpf", kBpffsDir, "bpf", 0, "mode=0700") == 0) return {};
  return fmt::format(
      "bpffs is not mounted at {} and mounting it failed ({}): channels with a `pinpath` cannot pin their maps "
      "(mount it with `mount -t bpf bpf {}`)",
      kBpffsDir, errno_text(errno), kBpffsDir);
}

// Since 5.11 BPF memory is charged to the memory cgroup and RLIMIT_MEMLOCK no longer applies.
bool kernel_charges_bpf_to_memcg() {
  utsname name{};
  int major = 0;
  int minor = 0;
  if (uname(&name) != 0 || std::sscanf(name.release, "%d.%d", &major, &minor) != 2) return false;
  return major > 5 || (major == 5 && minor >= 11);
}

std::string raise_memlock_limit() {
  rlimit unlimited{RLIM_INFINITY, RLIM_INFINITY};
  if (setrlimit(RLIMIT_MEMLOCK, &unlimited) == 0 || kernel_charges_bpf_to_memcg()) return {};
  return fmt::format(
      "cannot lift RLIMIT_MEMLOCK ({}): kernels before 5.11 count BPF maps and programs against it, so loads may "
      "fail with \"Operation not permitted\" (raise it, e.g. `ulimit -l unlimited`, or LimitMEMLOCK=infinity)",
      errno_text(errno));
}

std::string check_kernel_btf() {
  if (exists("/sys/kernel/btf/vmlinux")) return {};
  return "the kernel exposes no BTF (/sys/kernel/btf/vmlinux is missing, CONFIG_DEBUG_INFO_BTF off): CO-RE "
         "programs cannot be relocated; use a kernel built with BTF";
}

// A BPF trampoline can be refused at several stages (no BTF, no JIT support, lockdown, EPERM on
// attach), so the only reliable probe is to load and attach a program that does nothing.
std::string probe_fentry() {
  struct btf* vmlinux = btf__load_vmlinux_btf();
  if (!vmlinux) return "kernel BTF is missing";
  int target = -1;
  // bpf_fentry_test1 exists for exactly this purpose (BPF self-tests) and runs only from test_run.
  for (const char* function : {"bpf_fentry_test1", "do_nanosleep"}) {
    target = btf__find_by_name_kind(vmlinux, function, BTF_KIND_FUNC);
    if (target > 0) break;
  }
  btf__free(vmlinux);
  if (target <= 0) return "no function to probe with in the kernel BTF";

  const bpf_insn return_zero[] = {
      {.code = BPF_ALU64 | BPF_MOV | BPF_K, .dst_reg = BPF_REG_0, .src_reg = 0, .off = 0, .imm = 0},
      {.code = BPF_JMP | BPF_EXIT, .dst_reg = 0, .src_reg = 0, .off = 0, .imm = 0},
  };
  LIBBPF_OPTS(bpf_prog_load_opts, load_opts, .expected_attach_type = BPF_TRACE_FENTRY,
              .attach_btf_id = static_cast<__u32>(target));
  int prog_fd = bpf_prog_load(BPF_PROG_TYPE_TRACING, "ea_fentry_probe", "GPL", return_zero, 2, &load_opts);
  if (prog_fd < 0) return fmt::format("loading an fentry program failed: {}", errno_text(errno));
  int link_fd = bpf_link_create(prog_fd, 0, BPF_TRACE_FENTRY, nullptr);
  int link_errno = errno;
  if (link_fd >= 0) close(link_fd);
  close(prog_fd);
  if (link_fd < 0) return fmt::format("attaching an fentry program failed: {}", errno_text(link_errno));
  return {};
}

const std::string& fentry_problem() {
  static std::once_flag once;
  static std::string problem;
  std::call_once(once, [] { problem = probe_fentry(); });
  return problem;
}

}  // namespace

std::vector<std::string> prepare_kernel_interfaces() {
  std::vector<std::string> problems;
  for (std::string problem : {prepare_tracefs(), prepare_bpffs(), raise_memlock_limit(), check_kernel_btf()}) {
    if (!problem.empty()) problems.push_back(std::move(problem));
  }
  return problems;
}

bool kernel_has_kprobes() {
  return exists("/sys/bus/event_source/devices/kprobe") || exists("/sys/kernel/tracing/kprobe_events") ||
         exists("/sys/kernel/debug/tracing/kprobe_events");
}

bool kernel_has_fentry() { return fentry_problem().empty(); }

HookFamily hook_family(std::string_view section_name) {
  std::string_view kind = section_name.substr(0, section_name.find('/'));
  static constexpr std::array<std::string_view, 6> kprobe_kinds = {
      "kprobe", "kretprobe", "kprobe.multi", "kretprobe.multi", "ksyscall", "kretsyscall"};
  static constexpr std::array<std::string_view, 10> trampoline_kinds = {
      "fentry", "fexit", "fmod_ret", "fentry.s", "fexit.s", "fmod_ret.s", "lsm", "lsm.s", "lsm_cgroup", "freplace"};
  for (std::string_view k : kprobe_kinds) {
    if (kind == k) return HookFamily::Kprobe;
  }
  for (std::string_view k : trampoline_kinds) {
    if (kind == k) return HookFamily::Trampoline;
  }
  return HookFamily::Other;
}

bool kernel_has_hook(HookFamily family, std::string* why) {
  switch (family) {
    case HookFamily::Other: return true;
    case HookFamily::Kprobe:
      if (kernel_has_kprobes()) return true;
      if (why) *why = "this kernel has no kprobes (CONFIG_KPROBES off)";
      return false;
    case HookFamily::Trampoline:
      if (kernel_has_fentry()) return true;
      if (why) *why = fmt::format("this kernel cannot run fentry/fexit/fmod_ret/lsm programs ({})", fentry_problem());
      return false;
  }
  return true;
}

}  // namespace ea
