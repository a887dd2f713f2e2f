// L7 request metrics aggregated in the kernel (the built-in `http` spec, docs/l7.md).
//
// The sockets' send/receive tracepoints (for read/write, recvfrom/sendto, readv/writev,
// recvmsg/sendmsg, whose user buffer the calling thread's registers give) and OpenSSL's
// SSL_read/SSL_write (plaintext) feed one per-connection state machine: the first message decides
// the protocol and whether this process serves or calls, requests wait in a small FIFO (keep-alive
// and pipelining), and each response pops the oldest and adds to a latency histogram keyed by
// process, method, status and normalised route. User space reads the histograms on its interval;
// nothing crosses per request, except HTTP/2 payload (HPACK needs every byte, decoded in user
// space) and, when asked for, one sampled request in `trace_every`.
#include "vmlinux.h"
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>

#include "ea_histogram.h"
#include "l7.h"
#include "l7_http1.h"
#include "l7_syscalls.h"
#if __has_include("l7_redis.h")
#include "l7_redis.h"
#define L7_HAVE_REDIS 1
#endif
#if __has_include("l7_postgres.h")
#include "l7_postgres.h"
#define L7_HAVE_POSTGRES 1
#endif

char LICENSE[] SEC("license") = "GPL";

extern void *bpf_rdonly_cast(const void *obj, __u32 btf_id) __ksym;

const volatile __u32 target_tgid = 0;  // only this process (0: every process)
const volatile __u32 trace_every = 0;  // send one request in this many to l7_traces (0: none)
const volatile __u8 capture_http2 = 1; // send HTTP/2 payload to user space

__u64 l7_payload_dropped = 0;  // the channels' kernel-side drop counters (agent convention)
__u64 l7_traces_dropped = 0;

#define L7_MAX_PENDING 8        // requests a connection may have outstanding (pipelining depth)
#define L7_MAX_MESSAGES 8       // messages walked in one syscall's buffer
#define L7_MAX_IOV 4            // iovecs gathered for parsing
#define L7_CAPTURE_STEPS 256    // iovecs and copies per syscall (at least 64 KiB; the rest is a gap)
#define L7_BATCH_BYTES (64 * 1024)  // wake user space once this much is waiting

// A size or offset the verifier must see bounded: the barrier keeps clang from dropping a mask it
// can prove redundant, which the verifier cannot.
#define VERIFIER_BOUND(value, mask) ({ __u32 _v = (value); barrier_var(_v); _v & (mask); })

#define MSG_PEEK 2
#define IPPROTO_TCP 6
#define S_IFMT 00170000
#define S_IFSOCK 0140000
#define PF_IO_WORKER 0x00000010
#define PF_KTHREAD 0x00200000
#define SOCK_STREAM 1
#define AF_UNIX 1
#define AF_INET 2
#define AF_INET6 10

enum io_kind { IO_BUF = 1, IO_IOV = 2 };

// What an SSL call in progress leaves for its return and for the socket I/O it makes; per
// thread, in task storage (no hashing).
struct thread_io {
  __u64 ssl;     // the SSL object of the call in progress
  __u64 ssl_buf;
  __u64 ssl_bytes_out;  // SSL_read_ex / SSL_write_ex: where the byte count is written
  __u8 in_ssl;   // an SSL_read/SSL_write of this thread is in progress
  __u8 ssl_egress;
  __u8 pad[6];
};

struct {
  __uint(type, BPF_MAP_TYPE_TASK_STORAGE);
  __uint(map_flags, BPF_F_NO_PREALLOC);
  __type(key, int);
  __type(value, struct thread_io);
} thread_io SEC(".maps");

struct pending_request {
  __u64 start_ns;
  char name[L7_ROUTE_LEN];
  __u8 method;
  __u8 failed;
  __u8 pad[6];
};

struct conn_state {
  __u64 conn_id;
  __u8 protocol;  // enum l7_protocol
  __u8 role;      // enum l7_role
  __u8 head;      // oldest pending request
  __u8 count;     // pending requests
  __u8 from_start;
  __u8 tls;       // its messages come from the TLS library probes
  __u8 pad[2];
  char comm[L7_COMM_LEN];  // the process that first used it (a helper call saved per request)
  __u32 tgid;              // and its id and fd: HTTP/2 records, the close included, carry them
  __u32 fd;
  struct pending_request pending[L7_MAX_PENDING];
};

// A plain connection's state lives with its socket: found from the socket the tracepoint gives,
// gone when the socket is, so a reused fd number never inherits it.
struct {
  __uint(type, BPF_MAP_TYPE_SK_STORAGE);
  __uint(map_flags, BPF_F_NO_PREALLOC);
  __type(key, int);
  __type(value, struct conn_state);
} l7_sock_conns SEC(".maps");

// A TLS connection's plaintext state lives with its SSL object (SSL_free ends it). LRU: an
// SSL_free we never saw (a process killed) must not leak an entry forever.
struct ssl_key {
  __u32 tgid;
  __u32 pad;
  __u64 ssl;
};

struct {
  __uint(type, BPF_MAP_TYPE_LRU_HASH);
  __uint(max_entries, 16384);
  __type(key, struct ssl_key);
  __type(value, struct conn_state);
} l7_tls_conns SEC(".maps");

struct {
  __uint(type, BPF_MAP_TYPE_PERCPU_HASH);
  __uint(max_entries, 16384);
  __type(key, struct http_metric_key);
  __type(value, struct ea_hist_value);
} http_server_latency SEC(".maps");

struct {
  __uint(type, BPF_MAP_TYPE_PERCPU_HASH);
  __uint(max_entries, 16384);
  __type(key, struct http_metric_key);
  __type(value, struct ea_hist_value);
} http_client_latency SEC(".maps");

struct {
  __uint(type, BPF_MAP_TYPE_PERCPU_HASH);
  __uint(max_entries, 8192);
  __type(key, struct db_metric_key);
  __type(value, struct ea_hist_value);
} db_server_latency SEC(".maps");

struct {
  __uint(type, BPF_MAP_TYPE_PERCPU_HASH);
  __uint(max_entries, 8192);
  __type(key, struct db_metric_key);
  __type(value, struct ea_hist_value);
} db_client_latency SEC(".maps");

// The route cardinality cap: a route not yet known is admitted while there is room.
struct {
  __uint(type, BPF_MAP_TYPE_HASH);
  __uint(max_entries, 512);
  __type(key, char[L7_ROUTE_LEN]);
  __type(value, __u8);
} http_routes SEC(".maps");

struct {
  __uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
  __uint(max_entries, L7_DROP_REASONS);
  __type(key, __u32);
  __type(value, __u64);
} l7_drops SEC(".maps");

struct {
  __uint(type, BPF_MAP_TYPE_RINGBUF);
  __uint(max_entries, 4 * 1024 * 1024);
} l7_payload SEC(".maps");

struct {
  __uint(type, BPF_MAP_TYPE_RINGBUF);
  __uint(max_entries, 1024 * 1024);
} l7_traces SEC(".maps");

// Per-CPU scratch: the peeked bytes and the structures too big for the 512-byte stack. The byte
// areas are larger than what is used so that masked offsets and sizes, which is what the verifier
// can follow, stay in bounds.
struct scratch {
  __u8 buf[3 * L7_PEEK];
  struct l7_request req;
  struct l7_response resp;
  char carried_name[L7_ROUTE_LEN];
  struct http_metric_key http_key;
  struct db_metric_key db_key;
  struct conn_state new_conn;
  struct l7_trace_event trace;
  struct l7_payload_header payload_header;
  __u8 payload[3 * L7_CAPTURE_MAX];  // right after the header: the two go out as one record
  __u64 next_conn_id;
  __u64 traced;
};

struct {
  __uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
  __uint(max_entries, 1);
  __type(key, __u32);
  __type(value, struct scratch);
} l7_scratch SEC(".maps");

static __always_inline void count_drop(__u32 reason) {
  __u64 *count = bpf_map_lookup_elem(&l7_drops, &reason);
  if (count) *count += 1;
}

static __always_inline struct thread_io *current_thread_io(int create) {
  struct task_struct *task = bpf_get_current_task_btf();
  return bpf_task_storage_get(&thread_io, task, 0, create ? BPF_LOCAL_STORAGE_GET_F_CREATE : 0);
}

static __always_inline int traced_process(__u32 tgid) { return !target_tgid || tgid == target_tgid; }

// Microseconds rounded up to the histogram's keys 1, 2, 3, 4, 6, 8, 12, ... 2^26 (two per
// power of two: enough to place a quantile within 50 %, few enough series to expose).
static __always_inline __u32 latency_key(__u64 ns) {
  __u64 us = (ns + 999) / 1000;
  if (us <= 1) return 1;
  if (us > L7_LATENCY_MAX_KEY) return L7_LATENCY_MAX_KEY + 1;  // +Inf
  __u32 k = ea_exp2_bucket(us, 26);
  if (k >= 2 && us <= (3ull << (k - 2))) return 3u << (k - 2);
  return 1u << k;
}

// Admits a route under the cardinality cap, or renames it "_overflow".
static __always_inline void cap_route(char *route) {
  if (bpf_map_lookup_elem(&http_routes, route)) return;
  __u8 seen = 1;
  long err = bpf_map_update_elem(&http_routes, route, &seen, BPF_NOEXIST);
  if (err == 0 || err == -17 /* EEXIST: another CPU admitted it */) return;
  count_drop(L7_DROP_ROUTE_OVERFLOW);
  __builtin_memset(route, 0, L7_ROUTE_LEN);
  __builtin_memcpy(route, "_overflow", 10);
}

// Adds a request to a latency histogram: one lookup of its bucket's entry, which counts and sums.
// `capped_route` (when given) goes through the route cap only when an entry starts.
static __always_inline void observe(void *map, void *key, __u32 *bucket, __u64 duration_ns, char *capped_route) {
  *bucket = latency_key(duration_ns);
  struct ea_hist_value *value = bpf_map_lookup_elem(map, key);
  if (!value) {
    if (capped_route) cap_route(capped_route);
    value = ea_hist_create(map, key);
    if (!value) return;
  }
  value->count += 1;  // this CPU's copy
  value->sum += (duration_ns + 999) / 1000;
}

static __always_inline void record_http(struct scratch *s, struct conn_state *conn, struct pending_request *request,
                                        __u16 status, __u64 duration) {
  struct http_metric_key *k = &s->http_key;
  __builtin_memcpy(k->route, request->name, L7_ROUTE_LEN);
  __builtin_memcpy(k->comm, conn->comm, L7_COMM_LEN);
  k->method = request->method;
  k->tls = conn->tls;
  k->status = status;
  k->status_class = status / 100;
  k->pad[0] = k->pad[1] = k->pad[2] = 0;
  observe(conn->role == L7_ROLE_SERVER ? (void *)&http_server_latency : (void *)&http_client_latency, k,
          &k->bucket, duration, k->route);
}

static __always_inline void record_db(struct scratch *s, struct conn_state *conn, struct pending_request *request,
                                      __u64 duration) {
  struct db_metric_key *k = &s->db_key;
  __builtin_memcpy(k->operation, request->name, L7_OPERATION_LEN);
  k->operation[L7_OPERATION_LEN - 1] = 0;
  __builtin_memcpy(k->comm, conn->comm, L7_COMM_LEN);
  k->system = conn->protocol;
  k->failed = request->failed;
  k->pad[0] = k->pad[1] = 0;
  observe(conn->role == L7_ROLE_SERVER ? (void *)&db_server_latency : (void *)&db_client_latency, k, &k->bucket,
          duration, 0);
}

static __always_inline void trace_request(struct scratch *s, struct conn_state *conn, __u32 tgid, __u32 fd,
                                          struct pending_request *request, __u16 status, __u64 now, __u64 duration) {
  if (!trace_every || ++s->traced % trace_every) return;
  struct l7_trace_event *t = &s->trace;
  t->ts_ns = now;
  t->duration_ns = duration;
  t->tgid = tgid;
  t->fd = fd;
  __builtin_memcpy(t->comm, conn->comm, L7_COMM_LEN);
  __builtin_memcpy(t->name, request->name, L7_ROUTE_LEN);
  t->protocol = conn->protocol;
  t->role = conn->role;
  t->method = request->method;
  t->tls = conn->tls;
  t->status = status;
  t->failed = request->failed;
  t->pad = 0;
  __u64 waiting = bpf_ringbuf_query(&l7_traces, BPF_RB_AVAIL_DATA);
  __u64 flags = waiting >= 64 * sizeof *t ? BPF_RB_FORCE_WAKEUP : BPF_RB_NO_WAKEUP;
  if (bpf_ringbuf_output(&l7_traces, t, sizeof *t, flags)) __sync_fetch_and_add(&l7_traces_dropped, 1);
}

// Each parser runs inside a global function of its own: the verifier checks a global function
// once, on its own, so parsers' loops do not add up along the paths of the programs calling them.
#define L7_PARSERS(proto, parse_request_fn, parse_response_fn)                                     \
  __noinline int l7_##proto##_request(struct scratch *s, __u32 off, __u32 len) {                  \
    if (!s) return 0;                                                                              \
    __builtin_memset(&s->req, 0, sizeof s->req);                                                   \
    return parse_request_fn(s->buf, off, len, &s->req);                                            \
  }                                                                                                \
  __noinline int l7_##proto##_response(struct scratch *s, __u32 off, __u32 len) {                  \
    if (!s) return 0;                                                                              \
    __builtin_memset(&s->resp, 0, sizeof s->resp);                                                 \
    return parse_response_fn(s->buf, off, len, &s->resp);                                          \
  }

static __always_inline __u32 http1_parse_response_walking(const __u8 *buf, __u32 off, __u32 len,
                                                          struct l7_response *resp) {
  return http1_parse_response_walk(buf, off, len, resp, 1);
}
static __always_inline __u32 http1_parse_response_first(const __u8 *buf, __u32 off, __u32 len,
                                                        struct l7_response *resp) {
  return http1_parse_response_walk(buf, off, len, resp, 0);
}
L7_PARSERS(http1, http1_parse_request, http1_parse_response_walking)
L7_PARSERS(http1_first, http1_parse_request, http1_parse_response_first)
#ifdef L7_HAVE_REDIS
L7_PARSERS(redis, redis_parse_request, redis_parse_response)
#endif
#ifdef L7_HAVE_POSTGRES
L7_PARSERS(postgres, postgres_parse_request, postgres_parse_response)
#endif

// Fills s->req; returns the message's length, 0 when it is not a request of `protocol`.
static __always_inline __u32 l7_parse_request(struct scratch *s, __u8 protocol, __u32 off, __u32 len) {
  switch (protocol) {
    case L7_PROTO_HTTP1: return l7_http1_request(s, off, len);
#ifdef L7_HAVE_REDIS
    case L7_PROTO_REDIS: return l7_redis_request(s, off, len);
#endif
#ifdef L7_HAVE_POSTGRES
    case L7_PROTO_POSTGRES: return l7_postgres_request(s, off, len);
#endif
  }
  return 0;
}

// Fills s->resp. Walking past an HTTP response's body costs a scan: only when another waits.
static __always_inline __u32 l7_parse_response(struct scratch *s, __u8 protocol, __u32 off, __u32 len, int walk) {
  switch (protocol) {
    case L7_PROTO_HTTP1: return walk ? l7_http1_response(s, off, len) : l7_http1_first_response(s, off, len);
#ifdef L7_HAVE_REDIS
    case L7_PROTO_REDIS: return l7_redis_response(s, off, len);
#endif
#ifdef L7_HAVE_POSTGRES
    case L7_PROTO_POSTGRES: return l7_postgres_response(s, off, len);
#endif
  }
  return 0;
}

// The messages of one buffer are walked with bpf_loop: the verifier checks one message's parsing
// once instead of once per message, which keeps the parsers' own loops within its limits.
struct walk {
  struct scratch *s;
  struct conn_state *conn;
  __u64 now;
  __u32 tgid;
  __u32 fd;
  __u32 off;
  __u32 len;
};

// A request joins the connection's FIFO with the time it was seen.
static long take_request(__u32 index, struct walk *w) {
  struct scratch *s = w->s;
  struct conn_state *conn = w->conn;
  __u32 off = w->off, len = w->len;
  if (off >= len) return 1;
  __u32 n = l7_parse_request(s, conn->protocol, off, len);
  if (!n) return 1;
  struct l7_request *req = &s->req;
  if (!req->counts) {
    if (req->name[0]) __builtin_memcpy(s->carried_name, req->name, L7_ROUTE_LEN);
  } else if (conn->count >= L7_MAX_PENDING) {
    count_drop(L7_DROP_PENDING_FULL);
  } else {
    struct pending_request *p = &conn->pending[(conn->head + conn->count) & (L7_MAX_PENDING - 1)];
    p->start_ns = w->now;
    p->method = req->method;
    p->failed = 0;
    if (req->name[0]) {
      __builtin_memcpy(p->name, req->name, L7_ROUTE_LEN);
    } else if (s->carried_name[0]) {
      __builtin_memcpy(p->name, s->carried_name, L7_ROUTE_LEN);
    } else {
      __builtin_memset(p->name, 0, L7_ROUTE_LEN);
      __builtin_memcpy(p->name, "EXECUTE", 8);
    }
    conn->count++;
  }
  if (n >= len - off) return 1;
  w->off = off + n;
  return 0;
}

// A response completes the oldest pending request.
static long take_response(__u32 index, struct walk *w) {
  struct scratch *s = w->s;
  struct conn_state *conn = w->conn;
  __u32 off = w->off, len = w->len;
  if (off >= len) return 1;
  __u32 n = l7_parse_response(s, conn->protocol, off, len, conn->count > 1);
  if (!n) return 1;
  struct l7_response *resp = &s->resp;
  if (!conn->count) {
    if (resp->completes) count_drop(L7_DROP_RESPONSE_WITHOUT_REQUEST);
  } else {
    struct pending_request *p = &conn->pending[conn->head & (L7_MAX_PENDING - 1)];
    if (resp->failed) p->failed = 1;
    if (resp->completes) {
      __u64 duration = w->now > p->start_ns ? w->now - p->start_ns : 0;
      if (conn->protocol == L7_PROTO_HTTP1) record_http(s, conn, p, resp->status, duration);
      else record_db(s, conn, p, duration);
      trace_request(s, conn, w->tgid, w->fd, p, resp->status, w->now, duration);
      conn->head = (conn->head + 1) & (L7_MAX_PENDING - 1);
      conn->count--;
    }
  }
  if (n >= len - off) return 1;
  w->off = off + n;
  return 0;
}

static __always_inline int is_http2_preface(const __u8 *buf, __u32 len) {
  // "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n": the first 8 bytes tell it apart from anything else
  return len >= 8 && buf[0] == 'P' && buf[1] == 'R' && buf[2] == 'I' && buf[3] == ' ' && buf[4] == '*' &&
         buf[5] == ' ' && buf[6] == 'H' && buf[7] == 'T';
}

// A message start decides what a connection speaks; the side that reads a request serves. A
// global function too: verified once rather than along every path of the exit programs.
__noinline int l7_classify(struct scratch *s, __u32 len) {
  if (!s) return L7_PROTO_UNKNOWN;
  if (is_http2_preface(s->buf, len)) return capture_http2 ? L7_PROTO_HTTP2 : L7_PROTO_UNKNOWN;
  const __u8 candidates[] = {L7_PROTO_HTTP1, L7_PROTO_REDIS, L7_PROTO_POSTGRES};
  for (int i = 0; i < sizeof candidates; i++)
    if (l7_parse_request(s, candidates[i], 0, len)) return candidates[i];
  return L7_PROTO_UNKNOWN;
}

// Copies the first `want` bytes of what the syscall moved into s->buf; returns the bytes peeked.
static __always_inline __u32 peek(struct scratch *s, __u8 kind, __u64 ptr, __u32 iovcnt, __u32 bytes, __u32 want) {
  if (bytes > want) bytes = want;
  if (kind == IO_BUF) {
    if (bpf_probe_read_user(s->buf, VERIFIER_BOUND(bytes, 2 * L7_PEEK - 1), (void *)ptr)) return 0;
    return bytes;
  }
  struct iovec *iov = (struct iovec *)ptr;
  __u32 filled = 0;
  for (int i = 0; i < L7_MAX_IOV; i++) {
    if (i >= iovcnt || filled >= bytes) break;
    struct iovec v;
    if (bpf_probe_read_user(&v, sizeof v, &iov[i])) break;
    __u32 n = v.iov_len < bytes - filled ? v.iov_len : bytes - filled;
    if (bpf_probe_read_user(&s->buf[VERIFIER_BOUND(filled, L7_PEEK_MASK)], VERIFIER_BOUND(n, 2 * L7_PEEK - 1), v.iov_base)) break;
    filled += n;
  }
  return filled;
}

// Whether the first bytes can start a request of a protocol we parse: most traffic that is not
// is turned away after copying 8 bytes.
static __always_inline int may_start_request(const __u8 *buf, __u32 len) {
  if (len < 8) return 0;
  __u8 c = buf[0];
  return (c >= 'A' && c <= 'Z') || c == '*' || c == 0;  // methods and PRI; Redis arrays; PostgreSQL startup
}

// HTTP/2 payload goes to user space coalesced into records of up to L7_CAPTURE_MAX bytes, however
// many iovecs it came in (gRPC writes a frame as a dozen small ones).
struct capture_walk {
  struct scratch *s;
  __u64 base;      // where the current segment (buffer or iovec) continues
  __u64 iov;       // the iovec array, for IO_IOV
  __u32 iovcnt, iov_index;
  __u32 left;      // bytes left in the current segment
  __u32 bytes;     // what the syscall moved
  __u32 sent;      // bytes copied so far
  __u32 filled;    // bytes waiting in s->payload
  __u8 from_start;
};

static __always_inline void capture_flush(struct capture_walk *w) {
  struct scratch *s = w->s;
  if (!w->filled) return;
  struct l7_payload_header *h = &s->payload_header;
  h->len = w->filled;
  h->flags = w->from_start ? L7_PAYLOAD_FROM_START : 0;
  __u64 waiting = bpf_ringbuf_query(&l7_payload, BPF_RB_AVAIL_DATA);
  __u64 flags = waiting >= L7_BATCH_BYTES ? BPF_RB_FORCE_WAKEUP : BPF_RB_NO_WAKEUP;
  // header and payload are adjacent in the scratch: one record
  if (bpf_ringbuf_output(&l7_payload, h, sizeof *h + VERIFIER_BOUND(w->filled, 2 * L7_CAPTURE_MAX - 1), flags))
    __sync_fetch_and_add(&l7_payload_dropped, 1);
  w->filled = 0;
}

static long capture_step(__u32 index, struct capture_walk *w) {
  if (w->sent >= w->bytes) return 1;
  if (!w->left) {  // the next iovec
    if (!w->iov || w->iov_index >= w->iovcnt) return 1;
    struct iovec v;
    if (bpf_probe_read_user(&v, sizeof v, &((struct iovec *)w->iov)[w->iov_index])) return 1;
    w->iov_index++;
    w->base = (__u64)v.iov_base;
    w->left = v.iov_len < w->bytes - w->sent ? v.iov_len : w->bytes - w->sent;
    return 0;
  }
  __u32 room = L7_CAPTURE_MAX - w->filled;
  __u32 n = w->left < room ? w->left : room;
  __u8 *to = &w->s->payload[VERIFIER_BOUND(w->filled, L7_CAPTURE_MAX - 1)];
  if (bpf_probe_read_user(to, VERIFIER_BOUND(n, 2 * L7_CAPTURE_MAX - 1), (void *)w->base)) return 1;
  w->filled += n;
  w->sent += n;
  w->base += n;
  w->left -= n;
  if (w->filled >= L7_CAPTURE_MAX) capture_flush(w);
  return 0;
}

// Where bytes came from: a plain socket (its storage holds the connection) or a TLS library call
// (the SSL object keys it).
struct origin {
  struct sock *sk;        // plain
  struct ssl_key tls_key; // TLS
  __u32 tgid;
  __u32 fd;               // the socket's fd; for TLS, folded from the SSL object
  __u8 tls;
};

// Sends what the syscall moved on an HTTP/2 connection to user space; bytes that could not be
// copied become a gap record the user-space reader recovers from.
static __always_inline void capture(struct scratch *s, struct conn_state *conn, __u8 egress,
                                    __u8 kind, __u64 ptr, __u32 iovcnt, __u32 bytes, __u64 now) {
  struct l7_payload_header *h = &s->payload_header;
  h->ts_ns = now;
  h->tgid = conn->tgid;
  h->fd = conn->fd;
  __builtin_memcpy(h->comm, conn->comm, L7_COMM_LEN);
  h->egress = egress;
  h->tls = conn->tls;
  h->role = conn->role;
  h->conn_id = conn->conn_id;
  struct capture_walk w = {.s = s, .bytes = bytes, .from_start = conn->from_start};
  if (kind == IO_BUF) {
    w.base = ptr;
    w.left = bytes;
  } else {
    w.iov = ptr;
    w.iovcnt = iovcnt;
  }
  bpf_loop(L7_CAPTURE_STEPS, capture_step, &w, 0);
  capture_flush(&w);
  if (w.sent < bytes) {  // the steps ran out or a copy failed: say where the gap is
    h->len = 0;
    h->flags = L7_PAYLOAD_TRUNCATED | (conn->from_start ? L7_PAYLOAD_FROM_START : 0);
    if (bpf_ringbuf_output(&l7_payload, h, sizeof *h, 0)) __sync_fetch_and_add(&l7_payload_dropped, 1);
  }
}

// Requests are what the server reads and the client writes; responses the other way round.
static __always_inline void pair(struct scratch *s, struct conn_state *conn, struct origin *o, __u8 egress,
                                 __u32 len, __u64 now) {
  struct walk w = {.s = s, .conn = conn, .now = now, .tgid = o->tgid, .fd = o->fd, .off = 0, .len = len};
  if ((conn->role == L7_ROLE_SERVER) != egress) {
    __builtin_memset(s->carried_name, 0, L7_ROUTE_LEN);
    bpf_loop(L7_MAX_MESSAGES, take_request, &w, 0);
  } else {
    bpf_loop(L7_MAX_MESSAGES, take_response, &w, 0);
  }
}

static __always_inline struct conn_state *new_connection(struct scratch *s, struct origin *o, __u8 protocol,
                                                         __u8 egress) {
  struct conn_state *fresh = &s->new_conn;
  __builtin_memset(fresh, 0, sizeof *fresh);
  fresh->conn_id = (++s->next_conn_id << 8) | bpf_get_smp_processor_id();
  fresh->protocol = protocol;
  fresh->role = egress ? L7_ROLE_CLIENT : L7_ROLE_SERVER;
  fresh->from_start = protocol == L7_PROTO_HTTP2;
  fresh->tls = o->tls;
  fresh->tgid = o->tgid;
  fresh->fd = o->fd;
  bpf_get_current_comm(fresh->comm, sizeof fresh->comm);
  if (!o->tls) return bpf_sk_storage_get(&l7_sock_conns, o->sk, fresh, BPF_SK_STORAGE_GET_F_CREATE);
  bpf_map_update_elem(&l7_tls_conns, &o->tls_key, fresh, BPF_ANY);
  return bpf_map_lookup_elem(&l7_tls_conns, &o->tls_key);
}

// `conn` is the connection's state, or null when none is known yet.
// `now`: when the bytes moved (CLOCK_MONOTONIC, ns).
static __always_inline void on_data(struct conn_state *conn, struct origin *o, __u8 egress, __u8 kind, __u64 ptr,
                                    __u32 iovcnt, __u32 bytes, __u64 now) {
  __u32 zero = 0;
  struct scratch *s = bpf_map_lookup_elem(&l7_scratch, &zero);
  if (!s) return;
  if (conn && conn->protocol == L7_PROTO_HTTP2) {
    capture(s, conn, egress, kind, ptr, iovcnt, bytes, now);
    return;
  }
  if (!conn) {
    if (!may_start_request(s->buf, peek(s, kind, ptr, iovcnt, bytes, 8))) return;
    __u32 len = peek(s, kind, ptr, iovcnt, bytes, L7_PEEK);
    __u8 protocol = l7_classify(s, len);
    if (protocol == L7_PROTO_UNKNOWN) return;
    conn = new_connection(s, o, protocol, egress);
    if (!conn) return;
    if (protocol == L7_PROTO_HTTP2) {
      capture(s, conn, egress, kind, ptr, iovcnt, bytes, now);
      return;
    }
    pair(s, conn, o, egress, len, now);
    return;
  }
  // An HTTP response needs only its status line, unless pipelined responses follow it.
  int status_line_only = conn->protocol == L7_PROTO_HTTP1 && conn->count <= 1 && (conn->role == L7_ROLE_SERVER) == egress;
  __u32 len = peek(s, kind, ptr, iovcnt, bytes, status_line_only ? 16 : L7_PEEK);
  if (len) pair(s, conn, o, egress, len, now);
}

// Tells an HTTP/2 connection's reader in user space that it ended.
static __always_inline void send_close_record(struct conn_state *conn) {
  __u32 zero = 0;
  struct scratch *s = bpf_map_lookup_elem(&l7_scratch, &zero);
  if (!s) return;
  struct l7_payload_header *h = &s->payload_header;
  __builtin_memset(h, 0, sizeof *h);
  h->ts_ns = bpf_ktime_get_ns();
  h->tgid = conn->tgid;
  h->fd = conn->fd;
  h->tls = conn->tls;
  h->role = conn->role;
  h->flags = L7_PAYLOAD_CLOSED;
  h->conn_id = conn->conn_id;
  __builtin_memcpy(h->comm, conn->comm, L7_COMM_LEN);
  if (bpf_ringbuf_output(&l7_payload, h, sizeof *h, 0)) __sync_fetch_and_add(&l7_payload_dropped, 1);
}

// --- socket I/O --------------------------------------------------------------------------------
//
// The sockets' own tracepoints fire after a send or receive on a socket and nothing else, so the
// rest of the host's system calls stay on their fast path (syscall tracepoints would send every
// system call of every process through the slow path). The user buffer comes from the registers
// the calling thread entered the kernel with.

// Only the byte streams our protocols run on: TCP and Unix stream sockets.
static __always_inline int stream_socket(struct sock *sk) {
  __u16 family = sk->__sk_common.skc_family;
  return sk->sk_type == SOCK_STREAM && (family == AF_INET || family == AF_INET6 || family == AF_UNIX);
}

// Whether the call's fd is this socket: a socket the kernel drives from inside another call
// (an NFS write sending its RPC) must not be read as the caller's buffer. Walked only before a
// connection is classified, never for an established one.
static __always_inline int fd_is_socket(struct task_struct *task, __u32 fd, struct sock *sk) {
  struct files_struct *files = task->files;
  if (!files) return 0;
  struct fdtable *fdt = files->fdt;
  if (!fdt || fd >= fdt->max_fds) return 0;
  struct file *file = 0;
  if (bpf_probe_read_kernel(&file, sizeof file, &fdt->fd[fd]) || !file) return 0;
  if ((BPF_CORE_READ(file, f_inode, i_mode) & S_IFMT) != S_IFSOCK) return 0;
  struct socket *socket = BPF_CORE_READ(file, private_data);
  return BPF_CORE_READ(socket, sk) == sk;
}

// When received bytes arrived. For TCP, the socket's last packet time (tcp_mstamp: microseconds
// of CLOCK_MONOTONIC, the clock of bpf_ktime_get_ns, refreshed as each segment is processed):
// the request's arrival rather than its read, and a clock read saved per request, which on a
// paravirtualised clock costs more than the rest of the lookup. Unix sockets read the clock.
static __always_inline __u64 received_at(struct sock *sk) {
  if (sk->sk_protocol == IPPROTO_TCP) {
    struct tcp_sock *tcp = bpf_rdonly_cast(sk, bpf_core_type_id_kernel(struct tcp_sock));
    __u64 micros = tcp->tcp_mstamp;
    if (micros) return micros * 1000;
  }
  return bpf_ktime_get_ns();
}

static __always_inline int on_socket_io(struct sock *sk, int bytes, int flags, __u8 egress) {
  if (!sk || bytes <= 0 || (flags & MSG_PEEK)) return 0;  // peeked bytes are read again
  struct task_struct *task = bpf_get_current_task_btf();
  __u32 tgid = task->tgid;
  if (!traced_process(tgid)) return 0;
  if (task->flags & (PF_KTHREAD | PF_IO_WORKER)) return 0;  // no user registers to read
  struct pt_regs *regs = (struct pt_regs *)bpf_task_pt_regs(task);
  if (!regs) return 0;
  __u64 nr = L7_SYSCALL_NR(regs);
  int buffer = nr == L7_NR_READ || nr == L7_NR_WRITE || nr == L7_NR_RECVFROM || nr == L7_NR_SENDTO;
  int vector = nr == L7_NR_READV || nr == L7_NR_WRITEV;
  int message = nr == L7_NR_RECVMSG || nr == L7_NR_SENDMSG;
  if (!buffer && !vector && !message) return 0;  // sendfile, splice, io_uring, in-kernel sends: no user buffer
  struct conn_state *conn = bpf_sk_storage_get(&l7_sock_conns, sk, 0, 0);
  __u32 fd = L7_SYSCALL_ARG1(regs);
  if (!conn && (!stream_socket(sk) || !fd_is_socket(task, fd, sk))) return 0;  // before any user memory is read
  // ciphertext under an SSL call: its plaintext comes through the SSL probes
  struct thread_io *io = bpf_task_storage_get(&thread_io, task, 0, 0);
  if (io && io->in_ssl) return 0;
  __u64 ptr = L7_SYSCALL_ARG2(regs);
  __u32 iovcnt = L7_SYSCALL_ARG3(regs);
  if (message) {  // the msghdr's iovecs
    struct user_msghdr msg;
    if (bpf_probe_read_user(&msg, sizeof msg, (void *)ptr)) return 0;
    ptr = (__u64)msg.msg_iov;
    iovcnt = msg.msg_iovlen;
  }
  struct origin o = {.sk = sk, .tgid = tgid, .fd = fd};
  on_data(conn, &o, egress, buffer ? IO_BUF : IO_IOV, ptr, iovcnt, bytes, egress ? bpf_ktime_get_ns() : received_at(sk));
  return 0;
}

SEC("tp_btf/sock_recv_length")
int BPF_PROG(l7_sock_recv, struct sock *sk, int bytes, int flags) { return on_socket_io(sk, bytes, flags, 0); }
SEC("tp_btf/sock_send_length")
int BPF_PROG(l7_sock_send, struct sock *sk, int bytes, int flags) { return on_socket_io(sk, bytes, flags, 1); }

// An HTTP/2 connection's TCP socket closing: user space forgets the connection (the kernel side
// goes with the socket). Unix sockets have no such event; user space expires them when idle.
SEC("tp_btf/inet_sock_set_state")
int BPF_PROG(l7_sock_state, const struct sock *sk, int oldstate, int newstate) {
  if (newstate != TCP_CLOSE || !sk) return 0;
  struct conn_state *conn = bpf_sk_storage_get(&l7_sock_conns, (struct sock *)sk, 0, 0);
  if (conn && conn->protocol == L7_PROTO_HTTP2) send_close_record(conn);
  return 0;
}

// The key of a TLS connection for records that carry an fd: folded from its SSL object's address.
static __always_inline __u32 ssl_pseudo_fd(__u64 ssl) { return 0x80000000u | (__u32)(ssl >> 4); }

// --- OpenSSL (libssl 3 and 1.1): plaintext at SSL_read / SSL_write -------------------------

static __always_inline int enter_ssl(void *ssl, void *buf, void *bytes_out, __u8 egress) {
  __u64 pid_tgid = bpf_get_current_pid_tgid();
  if (!traced_process(pid_tgid >> 32)) return 0;
  struct thread_io *io = current_thread_io(1);
  if (!io) return 0;
  io->in_ssl = 1;
  io->ssl_egress = egress;
  io->ssl = (__u64)ssl;
  io->ssl_buf = (__u64)buf;
  io->ssl_bytes_out = (__u64)bytes_out;
  return 0;
}

static __always_inline int exit_ssl(long ret) {
  __u64 pid_tgid = bpf_get_current_pid_tgid();
  if (!traced_process(pid_tgid >> 32)) return 0;
  struct thread_io *io = current_thread_io(0);
  if (!io || !io->in_ssl) return 0;
  io->in_ssl = 0;
  __u64 bytes = ret;
  if (io->ssl_bytes_out) {  // the _ex forms return 1 and write the count
    if (ret != 1 || bpf_probe_read_user(&bytes, sizeof bytes, (void *)io->ssl_bytes_out)) return 0;
  } else if (ret <= 0) {
    return 0;
  }
  struct origin o = {.tls_key = {.tgid = pid_tgid >> 32, .ssl = io->ssl},
                     .tgid = pid_tgid >> 32,
                     .fd = ssl_pseudo_fd(io->ssl),
                     .tls = 1};
  on_data(bpf_map_lookup_elem(&l7_tls_conns, &o.tls_key), &o, io->ssl_egress, IO_BUF, io->ssl_buf, 0, bytes,
          bpf_ktime_get_ns());
  return 0;
}

// SSL_free ends the TLS connection (the address may be reused by the next SSL object).
SEC("uprobe")
int BPF_KPROBE(l7_ssl_free, void *ssl) {
  __u64 pid_tgid = bpf_get_current_pid_tgid();
  __u32 tgid = pid_tgid >> 32;
  if (!traced_process(tgid)) return 0;
  struct ssl_key key = {.tgid = tgid, .ssl = (__u64)ssl};
  struct conn_state *conn = bpf_map_lookup_elem(&l7_tls_conns, &key);
  if (!conn) return 0;
  if (conn->protocol == L7_PROTO_HTTP2) send_close_record(conn);
  bpf_map_delete_elem(&l7_tls_conns, &key);
  return 0;
}

SEC("uprobe")
int BPF_KPROBE(l7_ssl_read, void *ssl, void *buf, int num) { return enter_ssl(ssl, buf, 0, 0); }
SEC("uretprobe")
int BPF_KRETPROBE(l7_ssl_read_ret, int ret) { return exit_ssl(ret); }
SEC("uprobe")
int BPF_KPROBE(l7_ssl_write, void *ssl, const void *buf, int num) { return enter_ssl(ssl, (void *)buf, 0, 1); }
SEC("uretprobe")
int BPF_KRETPROBE(l7_ssl_write_ret, int ret) { return exit_ssl(ret); }
SEC("uprobe")
int BPF_KPROBE(l7_ssl_read_ex, void *ssl, void *buf, __u64 num, __u64 *readbytes) {
  return enter_ssl(ssl, buf, readbytes, 0);
}
SEC("uretprobe")
int BPF_KRETPROBE(l7_ssl_read_ex_ret, int ret) { return exit_ssl(ret); }
SEC("uprobe")
int BPF_KPROBE(l7_ssl_write_ex, void *ssl, const void *buf, __u64 num, __u64 *written) {
  return enter_ssl(ssl, (void *)buf, written, 1);
}
SEC("uretprobe")
int BPF_KRETPROBE(l7_ssl_write_ex_ret, int ret) { return exit_ssl(ret); }
