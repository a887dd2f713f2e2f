// OOM kills (the talk's example): one record per victim into the `oom_events` ring buffer.
//
// Two variants of the same record; a spec picks the first whose hook this kernel has with
// `progs: "kprobe_oom_kill_process|tp_btf_mark_victim"`:
//  - kprobe_oom_kill_process: as in the talk, on oom_kill_process(oc, message). The victim is
//    oc->chosen and `message` is the kernel's own text for the kill ("Out of memory",
//    "Memory cgroup out of memory", "Out of memory (oom_kill_allocating_task)").
//  - tp_btf_mark_victim: on the oom:mark_victim tracepoint through BTF, for kernels without
//    kprobes; needs a kernel whose tracepoint passes the victim's task_struct (6.x:
//    `bpftool btf dump file /sys/kernel/btf/vmlinux | grep -A3 btf_trace_mark_victim`). The
//    tracepoint does not carry the message, so it is derived from the victim's memory cgroup in
//    the same words: see oom_message_for().
#include "vmlinux.h"
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>

#include "oom_event.h"

char LICENSE[] SEC("license") = "GPL";

_Static_assert(sizeof(struct oom_event) == 144, "oom_event layout is shared with user space");

struct {
  __uint(type, BPF_MAP_TYPE_RINGBUF);
  __uint(max_entries, 256 * 1024);
} oom_events SEC(".maps");

// Records lost to a full ring buffer; the agent shows `<channel>_dropped` as kernel_lost.
__u64 oom_events_dropped = 0;

// Puts `struct oom_event` into the object's BTF, where the agent finds the record layout.
const struct oom_event *oom_event_btf __attribute__((unused));

// Kernels before 5.14 call task_struct::__state `state`.
struct task_struct___pre_5_14 {
  long state;
} __attribute__((preserve_access_index));

// Kernels before 6.2 keep the rss counters as atomics in struct mm_rss_stat.
struct mm_rss_stat___pre_6_2 {
  atomic_long_t count[4];
} __attribute__((preserve_access_index));
struct mm_struct___pre_6_2 {
  struct mm_rss_stat___pre_6_2 rss_stat;
} __attribute__((preserve_access_index));

// mm counter indexes, unchanged since 4.5: MM_FILEPAGES, MM_ANONPAGES, (MM_SWAPENTS), MM_SHMEMPAGES.
#define RSS_COUNTERS_MASK ((1u << 0) | (1u << 1) | (1u << 3))

// The largest charge a memcg OOM can fail on (a PMD-sized THP on x86-64), in pages.
#define MAX_CHARGE_PAGES 512
#define MAX_CGROUP_DEPTH 16

static __u32 task_state(struct task_struct *task) {
  if (bpf_core_field_exists(task->__state)) return BPF_CORE_READ(task, __state);
  return (__u32)BPF_CORE_READ((struct task_struct___pre_5_14 *)task, state);
}

static __u64 rss_pages(struct mm_struct *mm) {
  __u64 pages = 0;
  if (bpf_core_type_exists(struct mm_rss_stat___pre_6_2)) {
    struct mm_struct___pre_6_2 *old = (void *)mm;
    for (int i = 0; i < 4; i++)
      if (RSS_COUNTERS_MASK & (1u << i)) pages += BPF_CORE_READ(old, rss_stat.count[i].counter);
  } else {
    for (int i = 0; i < 4; i++)
      if (RSS_COUNTERS_MASK & (1u << i)) pages += BPF_CORE_READ(mm, rss_stat[i].count);
  }
  return (__s64)pages < 0 ? 0 : pages;  // per-cpu deltas can leave the global count slightly negative
}

static struct mem_cgroup *task_memcg(struct task_struct *task) {
  if (!bpf_core_enum_value_exists(enum cgroup_subsys_id, memory_cgrp_id)) return NULL;
  int id = bpf_core_enum_value(enum cgroup_subsys_id, memory_cgrp_id);
  if (id < 0 || id >= 16) return NULL;
  struct cgroup_subsys_state *css = BPF_CORE_READ(task, cgroups, subsys[id]);
  // css is the first member of struct mem_cgroup
  return css ? container_of(css, struct mem_cgroup, css) : NULL;
}

// Whether the kill is confined to a memory cgroup, as the kernel would have said from oc->memcg:
//  - where the kernel has the cgroup v1 memory code (every kernel with mem_cgroup::oom_lock), a
//    memcg OOM holds oom_lock on the whole OOMing subtree — the victim's memcg included — from
//    before the victim is chosen until the kill is done, while a global OOM takes no memcg lock
//    (under_oom, the flag memory.oom_control shows, is already cleared by then);
//  - otherwise, a memcg OOM means the charge that failed found a limited counter on the victim's
//    memory-counter chain full: usage within one maximal charge of max.
static bool memcg_oom(struct task_struct *task) {
  struct mem_cgroup *memcg = task_memcg(task);
  if (!memcg) return false;
  if (bpf_core_field_exists(memcg->oom_lock)) return BPF_CORE_READ(memcg, oom_lock);

  struct page_counter *counter = __builtin_preserve_access_index(&memcg->memory);
  for (int depth = 0; depth < MAX_CGROUP_DEPTH && counter; depth++) {
    long usage = BPF_CORE_READ(counter, usage.counter);
    unsigned long max = BPF_CORE_READ(counter, max);
    if (usage >= 0 && (unsigned long)usage + MAX_CHARGE_PAGES >= max) return true;
    counter = BPF_CORE_READ(counter, parent);
  }
  return false;
}

#define MEMCG_OOM_TEXT "Memory cgroup out of memory"
#define GLOBAL_OOM_TEXT "Out of memory"

static void oom_message_for(struct task_struct *victim, char *message) {
  if (memcg_oom(victim)) {
    __builtin_memcpy(message, MEMCG_OOM_TEXT, sizeof(MEMCG_OOM_TEXT));
  } else {
    __builtin_memcpy(message, GLOBAL_OOM_TEXT, sizeof(GLOBAL_OOM_TEXT));
  }
}

// Reserves and fills a record for `victim`; the caller adds the message and submits it.
static struct oom_event *victim_event(struct task_struct *victim) {
  struct oom_event *event = bpf_ringbuf_reserve(&oom_events, sizeof(*event), 0);
  if (!event) {
    __sync_fetch_and_add(&oom_events_dropped, 1);
    return NULL;
  }
  __builtin_memset(event, 0, sizeof(*event));
  event->ts_ns = bpf_ktime_get_ns();
  event->start_ns = BPF_CORE_READ(victim, start_time);
  event->delta_ns = event->ts_ns > event->start_ns ? event->ts_ns - event->start_ns : 0;
  event->pid = BPF_CORE_READ(victim, pid);
  event->tgid = BPF_CORE_READ(victim, tgid);
  event->ppid = BPF_CORE_READ(victim, real_parent, tgid);
  event->state = task_state(victim);
  event->exit_code = (BPF_CORE_READ(victim, exit_code) >> 8) & 0xff;
  BPF_CORE_READ_STR_INTO(&event->comm, victim, comm);
  struct mm_struct *mm = BPF_CORE_READ(victim, mm);
  if (mm) {
    event->total_vm_pages = BPF_CORE_READ(mm, total_vm);
    event->rss_pages = rss_pages(mm);
  }
  return event;
}

SEC("kprobe/oom_kill_process")
int BPF_KPROBE(kprobe_oom_kill_process, struct oom_control *oc, const char *message) {
  struct task_struct *victim = BPF_CORE_READ(oc, chosen);
  if (!victim) return 0;
  struct oom_event *event = victim_event(victim);
  if (!event) return 0;
  bpf_probe_read_kernel_str(event->message, sizeof(event->message), message);
  bpf_ringbuf_submit(event, 0);
  return 0;
}

SEC("tp_btf/mark_victim")
int BPF_PROG(tp_btf_mark_victim, struct task_struct *victim) {
  struct oom_event *event = victim_event(victim);
  if (!event) return 0;
  oom_message_for(victim, event->message);
  bpf_ringbuf_submit(event, 0);
  return 0;
}
