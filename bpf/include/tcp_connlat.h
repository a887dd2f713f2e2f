/* TCP connect latency: the record tcp_connlat.bpf.c puts in its `connlat_events` ring buffer and
 * the built-in `tcp_connlat` processor decodes. Shared by kernel and user space; laid out without
 * implicit padding so both sides (and the BTF decoder) agree byte for byte. */
#ifndef EA_BPF_TCP_CONNLAT_H
#define EA_BPF_TCP_CONNLAT_H

#ifndef __VMLINUX_H__
#include <linux/types.h>
#endif

enum connlat_result {
  CONNLAT_ESTABLISHED = 1, /* SYN_SENT -> ESTABLISHED: the handshake completed */
  CONNLAT_FAILED = 2,      /* SYN_SENT -> CLOSE: reset, timeout, unreachable or closed by the caller */
};

struct connlat_event {
  __u64 ts_ns;      /* CLOCK_MONOTONIC when the connect finished */
  __u64 latency_ns; /* from SYN_SENT to ESTABLISHED / CLOSE */
  __u32 pid;        /* thread that called connect() */
  __u32 tgid;       /* its process */
  char comm[16];    /* its command name */
  __u8 saddr[16];   /* network byte order; IPv4 in the first 4 bytes, the rest zero */
  __u8 daddr[16];
  __u16 sport; /* host byte order */
  __u16 dport;
  __u32 family; /* AF_INET or AF_INET6 */
  __u32 result; /* enum connlat_result */
  __s32 error;  /* the socket's error when the connect failed (ECONNREFUSED for a reset, ETIMEDOUT, ...); 0 otherwise */
};

#endif /* EA_BPF_TCP_CONNLAT_H */
