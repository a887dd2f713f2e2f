/* OOM kills: the record oom.bpf.c puts in its `oom_events` ring buffer and plugins/oom_user
 * decodes (the talk's OOM example). Shared by kernel and user space; laid out without implicit
 * padding so both sides (and the BTF decoder) agree byte for byte. */
#ifndef EA_BPF_OOM_EVENT_H
#define EA_BPF_OOM_EVENT_H

#ifndef __VMLINUX_H__
#include <linux/types.h>
#endif

#define OOM_COMM_LEN 16
#define OOM_MESSAGE_LEN 64

struct oom_event {
  __u64 ts_ns;          /* CLOCK_MONOTONIC (bpf_ktime_get_ns) when the victim was chosen */
  __u64 start_ns;       /* CLOCK_MONOTONIC when the victim thread started (task->start_time) */
  __u64 delta_ns;       /* ts_ns - start_ns: how long the victim had been running */
  __u64 total_vm_pages; /* the victim's address space, in pages (0 when it has no mm any more) */
  __u64 rss_pages;      /* resident: anon + file + shmem pages (approximate per-cpu counters) */
  __s32 pid;            /* victim thread id (kernel pid) */
  __s32 tgid;           /* victim process id */
  __s32 ppid;           /* its parent's process id */
  __u32 state;          /* task->__state */
  __s32 exit_code;      /* (task->exit_code >> 8) & 0xff, as in the talk */
  __u32 reserved;       /* zero: keeps the layout free of implicit padding */
  char comm[OOM_COMM_LEN];
  char message[OOM_MESSAGE_LEN]; /* "Out of memory", "Memory cgroup out of memory", ... */
};

#endif /* EA_BPF_OOM_EVENT_H */
