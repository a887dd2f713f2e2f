#include "loader/program_attach.h"

#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <fcntl.h>
#include <linux/if_link.h>
#include <linux/perf_event.h>
#include <net/if.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <map>
#include <mutex>
#include <optional>

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include "l7/offsets_search_path.h"
#include "loader/kernel_features.h"
#include "loader/libbpf_log.h"
#include "loader/uprobe_target.h"

namespace ea {
namespace {

constexpr std::string_view kUseVariant = "use a tracepoint/tp_btf variant (see `progs: \"a|b\"`)";

enum class AttachKind { Auto, Uprobe, PerfEvent, Xdp, Tc, Cgroup };

std::string section_of(const bpf_program* program) { return bpf_program__section_name(program); }

bool is_tc_program(bpf_prog_type type) { return type == BPF_PROG_TYPE_SCHED_CLS || type == BPF_PROG_TYPE_SCHED_ACT; }

// Which way a program attaches, given its type and the spec's options for it.
Result<AttachKind> classify(const bpf_program* program, const AttachOptions* options) {
  bpf_prog_type type = bpf_program__type(program);
  std::string section = section_of(program);
  bool uprobe_options =
      options && (!options->binary.empty() || !options->symbol.empty() || options->offset || options->optional);
  if (uprobe_options) {
    if (type != BPF_PROG_TYPE_KPROBE) {
      return failf("`binary`/`symbol`/`offset`/`optional` are uprobe options, but SEC(\"{}\") is not a uprobe program",
                   section);
    }
    if (options->binary.empty())
      return fail("a uprobe needs `binary` (a path, a library name like libssl.so.3, or a list of candidates)");
    if (options->symbol.empty() && !options->offset) return fail("a uprobe needs `symbol` or `offset`");
    return AttachKind::Uprobe;
  }
  if (type == BPF_PROG_TYPE_PERF_EVENT) return AttachKind::PerfEvent;
  if (type == BPF_PROG_TYPE_XDP) {
    if (options && options->mode == "offload") {
      return fail("XDP offload is not supported (it needs the program and its maps built for the NIC): use mode "
                  "native or generic");
    }
    return AttachKind::Xdp;
  }
  if (is_tc_program(type)) return AttachKind::Tc;
  if (options && !options->cgroup.empty()) return AttachKind::Cgroup;
  if (options && (!options->interface.empty() || !options->mode.empty() || !options->perf_config.empty() ||
                  !options->perf_type.empty() || options->frequency || options->period)) {
    return failf("the attach options given do not apply to SEC(\"{}\"), which attaches by its section name", section);
  }
  return AttachKind::Auto;
}

// The reason an attach failed, with the fix when the kernel lacks the hook family.
std::string attach_failure(const bpf_program* program, int error, const LibbpfLogCapture& log) {
  std::string section = section_of(program);
  std::string why;
  if (!kernel_has_hook(hook_family(section), &why)) return fmt::format("{}: {}", why, kUseVariant);
  std::string reason = error == EOPNOTSUPP
                           ? fmt::format("SEC(\"{}\") cannot be attached from its name alone: give `attach` options "
                                         "(uprobe binary/symbol, perf_event, interface, cgroup)",
                                         section)
                           : std::string(std::strerror(error));
  std::string summary = log.failure_summary();
  return summary.empty() ? reason : reason + "\n" + summary;
}

Result<Attachment> attach_auto(bpf_program* program) {
  LibbpfLogCapture log;
  bpf_link* link = bpf_program__attach(program);
  if (!link) return fail(attach_failure(program, errno, log));
  return Attachment{{link}, {}, section_of(program)};
}

// One uprobe on one file. A symbol the file's tables lack is placed through the offsets database.
Result<std::pair<bpf_link*, std::string>> attach_uprobe_to(bpf_program* program, const AttachOptions& options,
                                                           const std::string& path, bool retprobe) {
  uint64_t offset = options.offset.value_or(0);
  const char* func_name = options.symbol.empty() ? nullptr : options.symbol.c_str();
  std::string target = options.symbol;
  if (func_name) {
    auto located = locate_uprobe_symbol(path, options.symbol, current_offsets_database);
    if (!located) return std::unexpected(located.error());
    if (located->database_offset) {
      spdlog::info("uprobe {}: {} has no symbol '{}'; attaching at 0x{:x} from {}", bpf_program__name(program), path,
                   options.symbol, *located->database_offset, located->source);
      offset += *located->database_offset;
      func_name = nullptr;
      target += fmt::format(" (0x{:x} from the offsets database)", *located->database_offset);
    }
  }
  LIBBPF_OPTS(bpf_uprobe_opts, uprobe_opts, .retprobe = retprobe, .func_name = func_name);
  LibbpfLogCapture log;
  bpf_link* link = bpf_program__attach_uprobe_opts(program, options.pid, path.c_str(), offset, &uprobe_opts);
  if (!link) return fail(attach_failure(program, errno, log));
  if (options.offset) target += fmt::format("{}0x{:x}", target.empty() ? "" : "+", *options.offset);
  std::string point = fmt::format("{} {}:{}", retprobe ? "uretprobe" : "uprobe", path, target);
  if (options.pid >= 0) point += fmt::format(" pid {}", options.pid);
  return std::pair(link, std::move(point));
}

// Every candidate of `binary` present on this host gets the probe; absent ones are skipped.
Result<Attachment> attach_uprobe(bpf_program* program, const AttachOptions& options) {
  bool retprobe = options.retprobe || section_of(program).starts_with("uretprobe");
  std::vector<std::string> paths;
  std::vector<std::string> absent;
  for (const std::string& binary : options.binary) {
    if (auto path = resolve_uprobe_binary(binary)) {
      if (std::ranges::find(paths, *path) == paths.end()) paths.push_back(std::move(*path));
      continue;
    }
    absent.push_back(fmt::format("{} ({})", binary, uprobe_binary_search_description(binary)));
    if (options.binary.size() > 1)
      spdlog::info("uprobe {}: {} is not on this host, skipped", bpf_program__name(program), binary);
  }
  if (paths.empty() && options.optional) {
    std::string why = fmt::format("not on this host: {}", fmt::join(options.binary, ", "));
    spdlog::warn("uprobe {}: left unattached ({}; `optional: true`)", bpf_program__name(program), why);
    return Attachment{.point = fmt::format("not attached ({})", why)};
  }
  if (paths.empty()) {
    if (absent.size() == 1) return failf("uprobe binary {} does not exist on this host — fix `binary`", absent.front());
    return failf("none of the uprobe binaries exists on this host: {} — fix `binary` or install one of them",
                 fmt::join(absent, ", "));
  }
  Attachment attachment;
  std::vector<std::string> points;
  for (const std::string& path : paths) {
    auto attached = attach_uprobe_to(program, options, path, retprobe);
    if (!attached) {
      for (bpf_link* link : attachment.links) bpf_link__destroy(link);
      return std::unexpected(attached.error());
    }
    attachment.links.push_back(attached->first);
    points.push_back(std::move(attached->second));
  }
  attachment.point = fmt::format("{}", fmt::join(points, ", "));
  return attachment;
}

struct PerfEventName {
  std::string_view name;
  uint32_t type;
  uint64_t config;
};

constexpr std::array<PerfEventName, 21> kPerfEvents = {{
    {"cpu-clock", PERF_TYPE_SOFTWARE, PERF_COUNT_SW_CPU_CLOCK},
    {"task-clock", PERF_TYPE_SOFTWARE, PERF_COUNT_SW_TASK_CLOCK},
    {"page-faults", PERF_TYPE_SOFTWARE, PERF_COUNT_SW_PAGE_FAULTS},
    {"context-switches", PERF_TYPE_SOFTWARE, PERF_COUNT_SW_CONTEXT_SWITCHES},
    {"cpu-migrations", PERF_TYPE_SOFTWARE, PERF_COUNT_SW_CPU_MIGRATIONS},
    {"minor-faults", PERF_TYPE_SOFTWARE, PERF_COUNT_SW_PAGE_FAULTS_MIN},
    {"major-faults", PERF_TYPE_SOFTWARE, PERF_COUNT_SW_PAGE_FAULTS_MAJ},
    {"alignment-faults", PERF_TYPE_SOFTWARE, PERF_COUNT_SW_ALIGNMENT_FAULTS},
    {"emulation-faults", PERF_TYPE_SOFTWARE, PERF_COUNT_SW_EMULATION_FAULTS},
    {"dummy", PERF_TYPE_SOFTWARE, PERF_COUNT_SW_DUMMY},
    {"cpu-cycles", PERF_TYPE_HARDWARE, PERF_COUNT_HW_CPU_CYCLES},
    {"cycles", PERF_TYPE_HARDWARE, PERF_COUNT_HW_CPU_CYCLES},
    {"instructions", PERF_TYPE_HARDWARE, PERF_COUNT_HW_INSTRUCTIONS},
    {"cache-references", PERF_TYPE_HARDWARE, PERF_COUNT_HW_CACHE_REFERENCES},
    {"cache-misses", PERF_TYPE_HARDWARE, PERF_COUNT_HW_CACHE_MISSES},
    {"branch-instructions", PERF_TYPE_HARDWARE, PERF_COUNT_HW_BRANCH_INSTRUCTIONS},
    {"branches", PERF_TYPE_HARDWARE, PERF_COUNT_HW_BRANCH_INSTRUCTIONS},
    {"branch-misses", PERF_TYPE_HARDWARE, PERF_COUNT_HW_BRANCH_MISSES},
    {"bus-cycles", PERF_TYPE_HARDWARE, PERF_COUNT_HW_BUS_CYCLES},
    {"stalled-cycles-frontend", PERF_TYPE_HARDWARE, PERF_COUNT_HW_STALLED_CYCLES_FRONTEND},
    {"ref-cycles", PERF_TYPE_HARDWARE, PERF_COUNT_HW_REF_CPU_CYCLES},
}};

Result<PerfEventName> find_perf_event(const AttachOptions& options) {
  std::string_view config = options.perf_config.empty() ? "cpu-clock" : std::string_view(options.perf_config);
  std::optional<uint32_t> wanted_type;
  if (options.perf_type == "software") wanted_type = PERF_TYPE_SOFTWARE;
  else if (options.perf_type == "hardware") wanted_type = PERF_TYPE_HARDWARE;
  else if (!options.perf_type.empty()) {
    return failf("perf_event type '{}' is unknown: use software or hardware", options.perf_type);
  }
  std::vector<std::string_view> names;
  for (const PerfEventName& event : kPerfEvents) {
    if (wanted_type && event.type != *wanted_type) continue;
    if (event.name == config) return event;
    names.push_back(event.name);
  }
  return failf("perf_event config '{}' is unknown{}; known: {}", config,
               wanted_type ? fmt::format(" for type {}", options.perf_type) : "", fmt::join(names, ", "));
}

// "0-3,6,8-9" from /sys/devices/system/cpu/online.
Result<std::vector<int>> online_cpus() {
  std::ifstream file("/sys/devices/system/cpu/online");
  std::string list;
  if (!std::getline(file, list)) return fail("cannot read /sys/devices/system/cpu/online");
  std::vector<int> cpus;
  size_t position = 0;
  while (position < list.size()) {
    size_t end = list.find(',', position);
    std::string range = list.substr(position, end == std::string::npos ? std::string::npos : end - position);
    int first = 0;
    int last = 0;
    int fields = std::sscanf(range.c_str(), "%d-%d", &first, &last);
    if (fields < 1 || first < 0) return failf("cannot parse the online CPU list '{}'", list);
    if (fields == 1) last = first;
    for (int cpu = first; cpu <= last && cpus.size() < 65536; ++cpu) cpus.push_back(cpu);
    if (end == std::string::npos) break;
    position = end + 1;
  }
  return cpus;
}

std::string perf_open_failure(const PerfEventName& event, int error) {
  if (event.type == PERF_TYPE_HARDWARE && (error == ENOENT || error == EOPNOTSUPP || error == ENODEV)) {
    return fmt::format(
        "hardware counter '{}' is not available on this machine (virtual machines often hide hardware counters): use "
        "`type: software, config: cpu-clock`",
        event.name);
  }
  if (error == EACCES || error == EPERM) {
    return fmt::format("perf_event_open for '{}' was refused ({}): run as root or lower kernel.perf_event_paranoid",
                       event.name, std::strerror(error));
  }
  return fmt::format("perf_event_open for '{}' failed: {}", event.name, std::strerror(error));
}

Result<Attachment> attach_perf_event(bpf_program* program, const AttachOptions* options) {
  AttachOptions defaults;
  const AttachOptions& wanted = options ? *options : defaults;
  auto event = find_perf_event(wanted);
  if (!event) return std::unexpected(event.error());
  perf_event_attr attr{};
  attr.size = sizeof(attr);
  attr.type = event->type;
  attr.config = event->config;
  if (wanted.frequency > 0) {
    attr.freq = 1;
    attr.sample_freq = wanted.frequency;
  } else if (wanted.period > 0) {
    attr.sample_period = wanted.period;
  } else {
    return failf("SEC(\"{}\") samples a perf event: give its rate, e.g. `attach: {{{}: {{perf_event: {{type: "
                 "software, config: cpu-clock, frequency: 99}}}}}}`",
                 section_of(program), bpf_program__name(program));
  }

  // One event per online CPU samples every process; a pid follows that one process on any CPU.
  std::vector<std::pair<int, int>> targets;  // (pid, cpu)
  if (wanted.pid >= 0) {
    targets.emplace_back(wanted.pid, -1);
  } else {
    auto cpus = online_cpus();
    if (!cpus) return std::unexpected(cpus.error());
    for (int cpu : *cpus) targets.emplace_back(-1, cpu);
  }

  Attachment attachment;
  auto undo_links = [&attachment] {
    for (bpf_link* link : attachment.links) bpf_link__destroy(link);
  };
  LibbpfLogCapture log;
  for (auto [pid, cpu] : targets) {
    int fd = static_cast<int>(syscall(SYS_perf_event_open, &attr, pid, cpu, -1, PERF_FLAG_FD_CLOEXEC));
    if (fd < 0) {
      int error = errno;
      undo_links();
      return fail(perf_open_failure(*event, error));
    }
    bpf_link* link = bpf_program__attach_perf_event(program, fd);
    if (!link) {
      int error = errno;
      close(fd);
      undo_links();
      return fail(attach_failure(program, error, log));
    }
    attachment.links.push_back(link);  // the link owns the event fd from here on
  }
  std::string rate = attr.freq ? fmt::format("{} Hz", wanted.frequency) : fmt::format("every {}", wanted.period);
  std::string scope = wanted.pid >= 0 ? fmt::format("pid {}", wanted.pid) : fmt::format("{} CPUs", targets.size());
  attachment.point = fmt::format("perf_event {}:{} {} on {}", event->type == PERF_TYPE_HARDWARE ? "hardware" : "software",
                                 event->name, rate, scope);
  return attachment;
}

Result<int> interface_index(const AttachOptions* options, std::string_view what) {
  if (!options || options->interface.empty()) {
    return failf("{} programs need an interface: `attach: {{PROG: {{interface: eth0}}}}`", what);
  }
  unsigned index = if_nametoindex(options->interface.c_str());
  if (index == 0) return failf("no network interface '{}' (see `ip link`)", options->interface);
  return static_cast<int>(index);
}

Result<Attachment> attach_xdp(bpf_program* program, const AttachOptions* options) {
  auto ifindex = interface_index(options, "XDP");
  if (!ifindex) return std::unexpected(ifindex.error());
  const std::string& mode = options->mode;
  LibbpfLogCapture log;
  if (mode.empty()) {  // the kernel picks native when the driver has it, else generic
    bpf_link* link = bpf_program__attach_xdp(program, *ifindex);
    if (!link) return fail(attach_failure(program, errno, log));
    return Attachment{{link}, {}, fmt::format("xdp {}", options->interface)};
  }
  uint32_t flags = 0;
  if (mode == "generic" || mode == "skb") flags = XDP_FLAGS_SKB_MODE;
  else if (mode == "native" || mode == "drv") flags = XDP_FLAGS_DRV_MODE;
  else return failf("XDP mode '{}' is unknown: use generic or native", mode);
  // A BPF link (not netlink) so the program is detached even if the agent dies.
  LIBBPF_OPTS(bpf_link_create_opts, link_opts, .flags = flags);
  int link_fd = bpf_link_create(bpf_program__fd(program), *ifindex, BPF_XDP, &link_opts);
  if (link_fd < 0) {
    int error = errno;
    if (error == EBUSY || error == EEXIST) {
      return failf("interface {} already has an XDP program attached", options->interface);
    }
    if (error == EOPNOTSUPP && flags == XDP_FLAGS_DRV_MODE) {
      return failf("the driver of {} has no native XDP: use mode generic", options->interface);
    }
    return failf("attaching XDP to {} in {} mode failed: {}", options->interface, mode, std::strerror(error));
  }
  return Attachment{{}, [link_fd] { close(link_fd); }, fmt::format("xdp {} ({})", options->interface, mode)};
}

// clsact qdiscs the agent created, so the last of its filters on an interface removes it again
// (and one spec's detach never pulls the qdisc from under another spec's filter).
class TcHookRegistry {
 public:
  static TcHookRegistry& instance() {
    static TcHookRegistry registry;
    return registry;
  }
  // Makes sure clsact exists on `ifindex` and counts one more filter of ours on it.
  Result<void> acquire(int ifindex) {
    std::lock_guard lock(mutex_);
    Hook& hook = hooks_[ifindex];
    if (hook.users == 0) {
      LIBBPF_OPTS(bpf_tc_hook, tc_hook, .ifindex = ifindex, .attach_point = BPF_TC_INGRESS);
      int error = bpf_tc_hook_create(&tc_hook);
      if (error && error != -EEXIST) {
        hooks_.erase(ifindex);
        return failf("creating the clsact qdisc failed: {}", std::strerror(-error));
      }
      hook.created_by_us = error == 0;
    }
    ++hook.users;
    return {};
  }
  void release(int ifindex) {
    std::lock_guard lock(mutex_);
    auto it = hooks_.find(ifindex);
    if (it == hooks_.end() || --it->second.users > 0) return;
    if (it->second.created_by_us) {
      LIBBPF_OPTS(bpf_tc_hook, tc_hook, .ifindex = ifindex,
                  .attach_point = static_cast<bpf_tc_attach_point>(BPF_TC_INGRESS | BPF_TC_EGRESS));
      bpf_tc_hook_destroy(&tc_hook);
    }
    hooks_.erase(it);
  }

 private:
  struct Hook {
    int users = 0;
    bool created_by_us = false;
  };
  std::mutex mutex_;
  std::map<int, Hook> hooks_;
};

Result<Attachment> attach_tc(bpf_program* program, const AttachOptions* options) {
  auto ifindex = interface_index(options, "TC");
  if (!ifindex) return std::unexpected(ifindex.error());
  const std::string& direction = options->mode.empty() ? std::string("ingress") : options->mode;
  bpf_tc_attach_point point;
  if (direction == "ingress") point = BPF_TC_INGRESS;
  else if (direction == "egress") point = BPF_TC_EGRESS;
  else return failf("TC mode '{}' is unknown: use ingress or egress", direction);

  auto acquired = TcHookRegistry::instance().acquire(*ifindex);
  if (!acquired) return failf("TC on {}: {}", options->interface, acquired.error().message);
  LIBBPF_OPTS(bpf_tc_hook, hook, .ifindex = *ifindex, .attach_point = point);
  LIBBPF_OPTS(bpf_tc_opts, tc_opts, .prog_fd = bpf_program__fd(program));
  int error = bpf_tc_attach(&hook, &tc_opts);
  if (error) {
    TcHookRegistry::instance().release(*ifindex);
    return failf("attaching a TC {} filter to {} failed: {}", direction, options->interface, std::strerror(-error));
  }
  auto undo = [ifindex = *ifindex, point, handle = tc_opts.handle, priority = tc_opts.priority] {
    LIBBPF_OPTS(bpf_tc_hook, filter_hook, .ifindex = ifindex, .attach_point = point);
    LIBBPF_OPTS(bpf_tc_opts, filter, .handle = handle, .priority = priority);
    bpf_tc_detach(&filter_hook, &filter);
    TcHookRegistry::instance().release(ifindex);
  };
  return Attachment{{}, std::move(undo), fmt::format("tc {} {}", options->interface, direction)};
}

Result<Attachment> attach_cgroup(bpf_program* program, const AttachOptions& options) {
  int fd = open(options.cgroup.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return failf("cannot open cgroup {}: {}", options.cgroup, std::strerror(errno));
  LibbpfLogCapture log;
  bpf_link* link = bpf_program__attach_cgroup(program, fd);
  int error = errno;
  close(fd);  // the link holds its own reference to the cgroup
  if (!link) {
    return failf("attaching to cgroup {} failed (it must be a cgroup v2 directory): {}", options.cgroup,
                 attach_failure(program, error, log));
  }
  return Attachment{{link}, {}, fmt::format("cgroup {} ({})", options.cgroup, section_of(program))};
}

}  // namespace

Result<void> check_attach_options(const bpf_program* program, const AttachOptions& options) {
  auto kind = classify(program, &options);
  if (!kind) return std::unexpected(kind.error());
  if (*kind == AttachKind::PerfEvent) {
    auto event = find_perf_event(options);
    if (!event) return std::unexpected(event.error());
  }
  return {};
}

Result<Attachment> attach_program(bpf_program* program, const AttachOptions* options) {
  auto kind = classify(program, options);
  if (!kind) return std::unexpected(kind.error());
  switch (*kind) {
    case AttachKind::Uprobe: return attach_uprobe(program, *options);
    case AttachKind::PerfEvent: return attach_perf_event(program, options);
    case AttachKind::Xdp: return attach_xdp(program, options);
    case AttachKind::Tc: return attach_tc(program, options);
    case AttachKind::Cgroup: return attach_cgroup(program, *options);
    case AttachKind::Auto: break;
  }
  return attach_auto(program);
}

}  // namespace ea
