// Benchmark load generator: BPF_PROG_TYPE_SYSCALL programs, run with BPF_PROG_TEST_RUN, that fill
// a ring buffer with `fill_count` records in one call: small generic records (`bench_events`,
// decoded through BTF) or tcp_connlat's records (`connlat_events`, for its built-in processor).
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>

#include "tcp_connlat.h"

char LICENSE[] SEC("license") = "GPL";

struct bench_event {
  __u64 seq;
  __u32 pid;
  __u32 tgid;
  char comm[16];
  __u64 value;
};

// In the object's BTF so user space can decode records (and find the dispatch key) by name.
const struct bench_event *bench_event_btf __attribute__((unused));
const struct connlat_event *connlat_event_btf __attribute__((unused));

__u32 fill_count = 0;  // set by user space before each run
// The agent's `<channel>_dropped` convention: reservations that failed because the ring was full.
__u64 bench_events_dropped = 0;
__u64 connlat_events_dropped = 0;

// Both resized by user space to hold fill_count records.
struct {
  __uint(type, BPF_MAP_TYPE_RINGBUF);
  __uint(max_entries, 1 << 20);
} bench_events SEC(".maps");

struct {
  __uint(type, BPF_MAP_TYPE_RINGBUF);
  __uint(max_entries, 1 << 20);
} connlat_events SEC(".maps");

// The consumer drains after the fill: waking it per record would measure wake-ups.
#define SUBMIT_FLAGS BPF_RB_NO_WAKEUP

static long fill_bench_event(__u32 index, void *unused) {
  struct bench_event *event = bpf_ringbuf_reserve(&bench_events, sizeof(*event), 0);
  if (!event) {
    __sync_fetch_and_add(&bench_events_dropped, 1);
    return 1;  // full: stop
  }
  event->seq = index;
  event->pid = 1000 + (index & 63);  // 64 distinct "processes" for the dispatch key
  event->tgid = event->pid;
  __builtin_memcpy(event->comm, "bench-worker\0\0\0", sizeof(event->comm));
  event->value = (__u64)index * 2654435761u;
  bpf_ringbuf_submit(event, SUBMIT_FLAGS);
  return 0;
}

static long fill_connlat_event(__u32 index, void *unused) {
  struct connlat_event *event = bpf_ringbuf_reserve(&connlat_events, sizeof(*event), 0);
  if (!event) {
    __sync_fetch_and_add(&connlat_events_dropped, 1);
    return 1;
  }
  __builtin_memset(event, 0, sizeof(*event));
  event->latency_ns = index;  // the sequence number, checked at the end of the file
  event->pid = 1000 + (index & 63);
  event->tgid = event->pid;
  __builtin_memcpy(event->comm, "bench-worker\0\0\0", sizeof(event->comm));
  event->saddr[0] = 10, event->saddr[3] = 1;
  event->daddr[0] = 10, event->daddr[3] = 2;
  event->sport = 30000 + (index & 0x7fff);
  event->dport = 443;
  event->family = 2;  // AF_INET
  event->result = CONNLAT_ESTABLISHED;
  bpf_ringbuf_submit(event, SUBMIT_FLAGS);
  return 0;
}

SEC("syscall")
int fill_bench_events(void *ctx) {
  return bpf_loop(fill_count, fill_bench_event, 0, 0);
}

SEC("syscall")
int fill_connlat_events(void *ctx) {
  return bpf_loop(fill_count, fill_connlat_event, 0, 0);
}
