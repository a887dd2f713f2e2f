/* L7 request metrics (bpf/l7.bpf.c, the built-in `http` spec): the map keys the agent decodes into
 * labels, the records it reads from ring buffers, and the shapes protocol parsers fill. Shared by
 * kernel and user space; laid out without implicit padding so both sides agree byte for byte. */
#ifndef EA_BPF_L7_H
#define EA_BPF_L7_H

#ifndef __VMLINUX_H__
#include <linux/types.h>
#endif

#define L7_COMM_LEN 16
#define L7_ROUTE_LEN 64     /* normalised HTTP route, NUL-terminated when shorter */
#define L7_OPERATION_LEN 16 /* database operation (Redis command, SQL verb), upper case */
#define L7_PEEK 512         /* bytes of a message start a parser sees (power of two) */
#define L7_PEEK_MASK (L7_PEEK - 1)
#define L7_CAPTURE_MAX 4096 /* payload bytes per capture record (HTTP/2) */

/* Which protocol a connection speaks, decided from the first message seen on it. */
enum l7_protocol : __u8 {  /* one byte, so that records can carry it typed */
  L7_PROTO_UNKNOWN = 0,
  L7_PROTO_HTTP1 = 1,
  L7_PROTO_HTTP2 = 2, /* payload captured to user space (HPACK needs the whole stream) */
  L7_PROTO_REDIS = 3,
  L7_PROTO_POSTGRES = 4,
};

/* Which end of the connection the observed process is: the one that reads requests serves. */
enum l7_role : __u8 {  /* one byte, so that records can carry it typed */
  L7_ROLE_UNKNOWN = 0,
  L7_ROLE_SERVER = 1,
  L7_ROLE_CLIENT = 2,
};

enum http_method : __u8 {  /* one byte, so that records can carry it typed */
  HTTP_METHOD_OTHER = 0, /* rendered "_OTHER", as OpenTelemetry asks for unknown methods */
  HTTP_METHOD_GET,
  HTTP_METHOD_POST,
  HTTP_METHOD_PUT,
  HTTP_METHOD_DELETE,
  HTTP_METHOD_HEAD,
  HTTP_METHOD_OPTIONS,
  HTTP_METHOD_PATCH,
  HTTP_METHOD_CONNECT,
  HTTP_METHOD_TRACE,
};

/* Protocol parsers (l7_http1.h, l7_redis.h, l7_postgres.h) are pure functions over a peeked
 * buffer, compiled both into the BPF object and into the unit tests:
 *
 *   __u32 <proto>_parse_request(const __u8 *buf, __u32 off, __u32 len, struct l7_request *req);
 *   __u32 <proto>_parse_response(const __u8 *buf, __u32 off, __u32 len, struct l7_response *resp);
 *
 * `buf` holds L7_PEEK bytes of which the first `len` are valid (len <= L7_PEEK); a message starts
 * at `off` (< len). They return the message's length in bytes, which may run past `len` (the rest
 * lies beyond what was peeked), or 0 when the bytes at `off` are not a message of the protocol or
 * are too short to tell. Every read is buf[i & L7_PEEK_MASK] with i < len, and every loop has a
 * constant bound, so the verifier accepts them. The caller loops over pipelined messages. */

/* Loops whose state would make the verifier follow too many paths (every combination of values,
 * step by step) run as step functions: through bpf_loop in the kernel, where the verifier checks
 * the step once per distinct entry state, and as a plain loop in user space (the unit tests).
 * `long step(struct X *state)` returns 1 to stop; L7_STEP_CALLBACK(step) once after its
 * definition, then L7_LOOP(max_steps, step, &state). */
#ifdef __bpf__
#define L7_STEP_CALLBACK(step) \
  static long step##_callback(__u32 index, void *state) { return step(state); }
#define L7_LOOP(max_steps, step, state) bpf_loop(max_steps, step##_callback, state, 0)
#else
#define L7_STEP_CALLBACK(step)
#define L7_LOOP(max_steps, step, state) \
  for (unsigned l7_step_ = 0; l7_step_ < (max_steps) && !step(state); l7_step_++) {}
#endif

/* A request as a parser reads it. `name` is the HTTP route or the database operation, NUL-padded;
 * `method` is an enum http_method for HTTP and 0 otherwise. `counts` is 1 when this message
 * starts a request to be paired with a response, 0 when it belongs to the protocol's handshake or
 * prepares a later request (PostgreSQL's startup message, Parse before Sync): such a message still
 * identifies the protocol, and a non-empty `name` is kept for the next counted request of the
 * same buffer that has none. */
struct l7_request {
  char name[L7_ROUTE_LEN] __attribute__((aligned(8))); /* aligned: cleared a word at a time */
  __u8 method;
  __u8 counts;
  __u8 pad[6];
};

/* A response as a parser reads it: the HTTP status code (0 for other protocols), whether the
 * request failed (Redis `-ERR`, PostgreSQL ErrorResponse; HTTP leaves it to the status code), and
 * whether this message completes the oldest pending request (`completes` 1: HTTP final status,
 * each Redis reply, PostgreSQL ReadyForQuery) or only informs on it (0: HTTP 1xx, PostgreSQL
 * ErrorResponse or CommandComplete before ReadyForQuery; `failed` still marks the request). */
struct l7_response {
  __u16 status;
  __u8 failed;
  __u8 completes;
  __u8 pad[4];
};

/* Key of the HTTP latency histograms (http_server_latency, http_client_latency). The last field is
 * the histogram bucket: microseconds rounded up to 1, 2, 3, 4, 6, 8, 12, 16, ... (two buckets per
 * power of two); the value (struct ea_hist_value) counts the requests and sums their microseconds,
 * so that a request costs one map lookup. */
struct http_metric_key {
  char comm[L7_COMM_LEN];
  char route[L7_ROUTE_LEN];
  __u8 method;       /* enum http_method */
  __u8 tls;          /* 1: seen through the TLS library probes */
  __u16 status;      /* exact status code */
  __u8 status_class; /* status / 100 */
  __u8 pad[3];
  __u32 bucket;
};

/* Key of the database latency histograms (db_client_latency, db_server_latency). */
struct db_metric_key {
  char comm[L7_COMM_LEN];
  char operation[L7_OPERATION_LEN];
  __u8 system; /* enum l7_protocol: L7_PROTO_REDIS or L7_PROTO_POSTGRES */
  __u8 failed;
  __u8 pad[2];
  __u32 bucket;
};

#define L7_LATENCY_MAX_KEY 67108864u /* 2^26 us (67 s); slower requests count in +Inf */

/* Why a message was not counted (the `l7_drops` array, index = reason). */
enum l7_drop_reason {
  L7_DROP_RESPONSE_WITHOUT_REQUEST = 0, /* a response on a connection with nothing pending */
  L7_DROP_PENDING_FULL = 1,             /* more pipelined requests than a connection can hold */
  L7_DROP_ROUTE_OVERFLOW = 2,           /* routes past the cap, counted under "_overflow" */
  L7_DROP_REASONS = 3,
  /* records a ring buffer had no room for are counted in l7_payload_dropped / l7_traces_dropped,
   * the channels' kernel-side drop counters */
};

/* A captured payload chunk of an HTTP/2 connection (`l7_payload` ring buffer), or the connection's
 * close (len 0, L7_PAYLOAD_CLOSED). Chunks of one connection arrive in order. */
enum l7_payload_flags {
  L7_PAYLOAD_FROM_START = 1, /* the connection's first bytes were captured (client preface seen) */
  L7_PAYLOAD_TRUNCATED = 2,  /* the syscall moved more than was captured: a gap follows */
  L7_PAYLOAD_CLOSED = 4,     /* the connection ended (its TCP socket closed, or SSL_free): forget it */
};

struct l7_payload_header {
  __u64 ts_ns; /* CLOCK_MONOTONIC when the bytes moved */
  __u32 tgid;  /* the process that first used the connection, its fd and name (the close carries */
  __u32 fd;    /* them too); for TLS the fd is folded from the SSL object */
  char comm[L7_COMM_LEN];
  __u8 egress; /* 1: the process wrote these bytes; 0: it read them */
  __u8 tls;    /* 1: plaintext from the TLS library probes */
  __u8 role;   /* enum l7_role, when known */
  __u8 flags;  /* enum l7_payload_flags */
  __u32 len;   /* bytes of data that follow the header */
  __u64 conn_id; /* unique per connection while the agent runs: tells a reused fd apart */
};

/* A sampled request (`l7_traces` ring buffer, when trace_every > 0): one in trace_every requests. */
struct l7_trace_event {
  __u64 ts_ns;       /* when the response started */
  __u64 duration_ns; /* request start to response start */
  __u32 tgid;
  __u32 fd;
  char comm[L7_COMM_LEN];
  char name[L7_ROUTE_LEN]; /* route or database operation */
  enum l7_protocol protocol; /* typed: events show the enumerator's name */
  enum l7_role role;
  enum http_method method;
  __u8 tls;
  __u16 status;
  __u8 failed;
  __u8 pad;
};

#endif /* EA_BPF_L7_H */
