// TCP connect latency from the sock:inet_sock_set_state tracepoint (no kprobes needed).
//
// An active open moves the socket CLOSE -> SYN_SENT inside connect(), so that transition runs in
// the connecting task: its pid and comm are captured there, keyed by the socket. The handshake
// ends in softirq context (any task): SYN_SENT -> ESTABLISHED on success, SYN_SENT -> CLOSE on a
// reset, timeout, ICMP error or close() before completion; that transition emits the record.
#include "vmlinux.h"
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_helpers.h>

#include "tcp_connlat.h"

char LICENSE[] SEC("license") = "GPL";

#define AF_INET 2
#define AF_INET6 10

_Static_assert(sizeof(struct connlat_event) == 88, "connlat_event layout is shared with user space");

// Set from the spec's `variables` before load.
const volatile __u64 min_latency_ns = 0;  // report only connects at least this slow
const volatile __u32 target_tgid = 0;     // 0: every process

// Records that could not be reserved because the ring buffer was full. The agent reads a global
// named `<channel>_dropped` as the channel's kernel-side drops (shown as kernel_lost by `list`).
__u64 connlat_events_dropped = 0;

// Puts `struct connlat_event` into the object's BTF, where the agent finds the record layout
// (the dispatch key `tgid`, and field names for the BTF decoder).
const struct connlat_event *connlat_event_btf __attribute__((unused));

struct connect_start {
  __u64 ts_ns;
  __u32 pid;
  __u32 tgid;
  char comm[16];
};

// Connects in flight, keyed by socket. LRU so sockets that never leave SYN_SENT through the
// tracepoint (simultaneous open, a missed event) are evicted instead of filling the map.
struct {
  __uint(type, BPF_MAP_TYPE_LRU_HASH);
  __uint(max_entries, 16384);
  __type(key, const void *);
  __type(value, struct connect_start);
} connects_in_flight SEC(".maps");

struct {
  __uint(type, BPF_MAP_TYPE_RINGBUF);
  __uint(max_entries, 512 * 1024);
} connlat_events SEC(".maps");

static void on_connect_start(const void *sock) {
  __u64 id = bpf_get_current_pid_tgid();
  __u32 tgid = id >> 32;
  if (target_tgid && tgid != target_tgid) return;
  struct connect_start start = {
      .ts_ns = bpf_ktime_get_ns(),
      .pid = (__u32)id,
      .tgid = tgid,
  };
  bpf_get_current_comm(start.comm, sizeof(start.comm));
  bpf_map_update_elem(&connects_in_flight, &sock, &start, BPF_ANY);
}

static void on_connect_done(struct trace_event_raw_inet_sock_set_state *ctx) {
  const void *sock = ctx->skaddr;
  struct connect_start *start = bpf_map_lookup_elem(&connects_in_flight, &sock);
  if (!start) return;
  __u64 now = bpf_ktime_get_ns();
  __u64 latency = now - start->ts_ns;
  if (latency < min_latency_ns) goto done;

  struct connlat_event *event = bpf_ringbuf_reserve(&connlat_events, sizeof(*event), 0);
  if (!event) {
    __sync_fetch_and_add(&connlat_events_dropped, 1);
    goto done;
  }
  __builtin_memset(event, 0, sizeof(*event));
  event->ts_ns = now;
  event->latency_ns = latency;
  event->pid = start->pid;
  event->tgid = start->tgid;
  __builtin_memcpy(event->comm, start->comm, sizeof(event->comm));
  // Addresses and the source port are read now: connect() picks the port after SYN_SENT.
  event->sport = ctx->sport;
  event->dport = ctx->dport;
  event->family = ctx->family;
  // Read through the helper (as libbpf-tools' tcpstates does): clang turns these copies into
  // loads at a computed ctx offset, which the verifier refuses.
  if (ctx->family == AF_INET) {
    bpf_probe_read_kernel(event->saddr, 4, ctx->saddr);
    bpf_probe_read_kernel(event->daddr, 4, ctx->daddr);
  } else {
    bpf_probe_read_kernel(event->saddr, 16, ctx->saddr_v6);
    bpf_probe_read_kernel(event->daddr, 16, ctx->daddr_v6);
  }
  if (ctx->newstate == TCP_ESTABLISHED) {
    event->result = CONNLAT_ESTABLISHED;
  } else {
    event->result = CONNLAT_FAILED;
    event->error = BPF_CORE_READ((struct sock *)sock, sk_err);
  }
  bpf_ringbuf_submit(event, 0);
done:
  bpf_map_delete_elem(&connects_in_flight, &sock);
}

SEC("tracepoint/sock/inet_sock_set_state")
int tcp_connlat_set_state(struct trace_event_raw_inet_sock_set_state *ctx) {
  if (ctx->protocol != IPPROTO_TCP) return 0;
  if (ctx->newstate == TCP_SYN_SENT) {
    on_connect_start(ctx->skaddr);
  } else if (ctx->oldstate == TCP_SYN_SENT) {
    if (ctx->newstate == TCP_ESTABLISHED || ctx->newstate == TCP_CLOSE) {
      on_connect_done(ctx);
    } else {
      // Simultaneous open (SYN_SENT -> SYN_RECV) is not a timed connect; forget it.
      const void *sock = ctx->skaddr;
      bpf_map_delete_elem(&connects_in_flight, &sock);
    }
  }
  return 0;
}
