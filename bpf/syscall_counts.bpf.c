// System calls by process name and how long they take, aggregated in the kernel; the agent reads
// both maps on every metrics collection (specs/examples/syscall_counts.yaml). Nothing is sent
// per call: the cost is two map updates per system call.
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>

#include "ea_histogram.h"

char LICENSE[] SEC("license") = "GPL";

#define LATENCY_MAX_BUCKET 26  // 2^26 us ~ 67 s; longer calls count in the last bucket

struct process_key {
  char comm[16];
};

// LRU: processes come and go; the least recently seen names make room for new ones.
struct {
  __uint(type, BPF_MAP_TYPE_LRU_PERCPU_HASH);
  __uint(max_entries, 10240);
  __type(key, struct process_key);
  __type(value, __u64);
} syscalls_by_process SEC(".maps");

struct {
  __uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
  __uint(max_entries, LATENCY_MAX_BUCKET + 2);
  __type(key, __u32);  // exp2 bucket of microseconds; LATENCY_MAX_BUCKET + 1 holds their sum
  __type(value, __u64);
} syscall_latency SEC(".maps");

struct {
  __uint(type, BPF_MAP_TYPE_LRU_HASH);
  __uint(max_entries, 65536);
  __type(key, __u32);    // thread id
  __type(value, __u64);  // entry time, ns
} syscall_start SEC(".maps");

SEC("tracepoint/raw_syscalls/sys_enter")
int syscall_enter(void *ctx) {
  struct process_key key;
  __builtin_memset(&key, 0, sizeof key);
  bpf_get_current_comm(key.comm, sizeof key.comm);
  __u64 *count = bpf_map_lookup_elem(&syscalls_by_process, &key);
  if (count) {
    *count += 1;  // this CPU's copy: no atomics needed
  } else {
    __u64 one = 1;
    bpf_map_update_elem(&syscalls_by_process, &key, &one, BPF_ANY);
  }
  __u32 tid = (__u32)bpf_get_current_pid_tgid();
  __u64 now = bpf_ktime_get_ns();
  bpf_map_update_elem(&syscall_start, &tid, &now, BPF_ANY);
  return 0;
}

SEC("tracepoint/raw_syscalls/sys_exit")
int syscall_exit(void *ctx) {
  __u32 tid = (__u32)bpf_get_current_pid_tgid();
  __u64 *start = bpf_map_lookup_elem(&syscall_start, &tid);
  if (!start) return 0;
  __u64 micros = (bpf_ktime_get_ns() - *start) / 1000;
  bpf_map_delete_elem(&syscall_start, &tid);
  __u32 bucket = ea_exp2_bucket(micros, LATENCY_MAX_BUCKET);
  __u64 *count = bpf_map_lookup_elem(&syscall_latency, &bucket);
  if (count) *count += 1;
  bucket = LATENCY_MAX_BUCKET + 1;
  __u64 *sum = bpf_map_lookup_elem(&syscall_latency, &bucket);
  if (sum) *sum += micros;
  return 0;
}
