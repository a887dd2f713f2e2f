/* The talk's OOM example in C: decodes one `struct oom_event` (bpf/include/oom_event.h) from the
 * oom_events ring buffer into
 *   {"comm","message","timestamp","delta_time","tid","pid","ppid","state","exit_code",
 *    "total_vm_kb","rss_kb"}
 * timestamp: unix time in ns (the kernel's CLOCK_MONOTONIC stamp moved onto CLOCK_REALTIME);
 * delta_time: ns the victim had been running. tid is the victim thread, pid its process.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <ebpf_agent/plugin.h>

#include "oom_event.h"

EA_PLUGIN_DECLARE_ABI()

/* Per-load state: the same .so may serve several specs, so nothing lives in globals. */
struct oom_state {
  const struct ea_metrics_api *metrics;
  ea_metric *kills; /* oom_kills{comm}: processes the OOM killer chose, by victim command */
};

int ea_plugin_init(const struct ea_plugin_init_args *args, void **state) {
  struct oom_state *s = calloc(1, sizeof(*s));
  if (!s) return -1;
  s->metrics = args->metrics;
  if (s->metrics) {
    static const char *const labels[] = {"comm"};
    struct ea_metric_desc desc = {
        .name = "oom_kills",
        .help = "Processes killed by the kernel's OOM killer, by the victim's command",
        .kind = EA_METRIC_COUNTER,
        .label_names = labels,
        .label_count = 1,
    };
    char err[EA_ERR_MSG_MAX];
    s->kills = s->metrics->declare(s->metrics->host, &desc, err, sizeof(err));
    if (!s->kills) fprintf(stderr, "oom_user: no oom_kills metric: %s\n", err);
  }
  *state = s;
  return 0;
}

void ea_plugin_fini(void *state) { free(state); }

/* A label value from the kernel's comm: printable ASCII kept, anything else becomes '?'. */
static void comm_label(const char *comm, size_t size, char *out) {
  size_t i = 0;
  for (; i < size && comm[i]; ++i) out[i] = (comm[i] >= 0x20 && comm[i] < 0x7f) ? comm[i] : '?';
  out[i] = '\0';
}

#define DECODE_ERROR 1

/* Appends to the agent's result buffer, counting past its end so the size needed is known. */
struct writer {
  uint8_t *data;
  uint32_t cap;
  uint32_t len;
};

static void put(struct writer *w, const char *text, size_t n) {
  for (size_t i = 0; i < n; i++, w->len++)
    if (w->len < w->cap) w->data[w->len] = (uint8_t)text[i];
}

static void put_str(struct writer *w, const char *text) { put(w, text, strlen(text)); }

static void put_i64(struct writer *w, long long value) {
  char digits[24];
  int n = snprintf(digits, sizeof(digits), "%lld", value);
  put(w, digits, (size_t)n);
}

/* Length of the valid UTF-8 sequence at text[0..n), or 0 if it is not one. */
static size_t utf8_length(const unsigned char *text, size_t n) {
  unsigned char lead = text[0];
  size_t length;
  unsigned char low = 0x80, high = 0xbf;
  if (lead >= 0xc2 && lead <= 0xdf) {
    length = 2;
  } else if (lead >= 0xe0 && lead <= 0xef) {
    length = 3;
    if (lead == 0xe0) low = 0xa0;
    if (lead == 0xed) high = 0x9f;
  } else if (lead >= 0xf0 && lead <= 0xf4) {
    length = 4;
    if (lead == 0xf0) low = 0x90;
    if (lead == 0xf4) high = 0x8f;
  } else {
    return 0;
  }
  if (n < length || text[1] < low || text[1] > high) return 0;
  for (size_t i = 2; i < length; i++)
    if ((text[i] & 0xc0) != 0x80) return 0;
  return length;
}

/* A kernel char array as a JSON string: up to the first NUL, escaped; bytes that are not UTF-8
 * (a comm is whatever the process wrote) become U+FFFD. */
static void put_json_chars(struct writer *w, const char *chars, size_t size) {
  const unsigned char *text = (const unsigned char *)chars;
  size_t n = strnlen(chars, size);
  put_str(w, "\"");
  for (size_t i = 0; i < n;) {
    unsigned char c = text[i];
    if (c == '"' || c == '\\') {
      char escaped[2] = {'\\', (char)c};
      put(w, escaped, 2);
      i++;
    } else if (c < 0x20 || c == 0x7f) {
      char escaped[8];
      snprintf(escaped, sizeof(escaped), "\\u%04x", c);
      put_str(w, escaped);
      i++;
    } else if (c < 0x80) {
      put(w, (const char *)&text[i], 1);
      i++;
    } else {
      size_t length = utf8_length(text + i, n - i);
      if (length) {
        put(w, (const char *)&text[i], length);
        i += length;
      } else {
        put_str(w, "\\ufffd");
        i++;
      }
    }
  }
  put_str(w, "\"");
}

static long long timespec_ns(clockid_t clock) {
  struct timespec now;
  clock_gettime(clock, &now);
  return (long long)now.tv_sec * 1000000000LL + now.tv_nsec;
}

/* bpf_ktime_get_ns() is CLOCK_MONOTONIC; the offset to CLOCK_REALTIME is taken now, so a clock
 * step (NTP, settimeofday) since the event shifts the result by that step. */
static long long monotonic_to_unix_ns(unsigned long long monotonic_ns) {
  long long offset = timespec_ns(CLOCK_REALTIME) - timespec_ns(CLOCK_MONOTONIC);
  return (long long)monotonic_ns + offset;
}

void process(struct ea_tracer_ctx *ctx) {
  struct oom_event event;
  if (ctx->ring_ctx.len < sizeof(event)) {
    ctx->err_ctx.err_code = DECODE_ERROR;
    snprintf(ctx->err_ctx.err_msg, EA_ERR_MSG_MAX,
             "record of %u bytes is shorter than struct oom_event (%zu): is oom.bpf.o from the same build?",
             ctx->ring_ctx.len, sizeof(event));
    return;
  }
  memcpy(&event, ctx->ring_ctx.data, sizeof(event)); /* the record may be unaligned */

  long long page_kb = sysconf(_SC_PAGESIZE) / 1024;
  struct writer w = {ctx->res_ctx.data, ctx->res_ctx.cap, 0};
  put_str(&w, "{\"comm\":");
  put_json_chars(&w, event.comm, sizeof(event.comm));
  put_str(&w, ",\"message\":");
  put_json_chars(&w, event.message, sizeof(event.message));
  put_str(&w, ",\"timestamp\":");
  put_i64(&w, monotonic_to_unix_ns(event.ts_ns));
  put_str(&w, ",\"delta_time\":");
  put_i64(&w, (long long)event.delta_ns);
  put_str(&w, ",\"tid\":");
  put_i64(&w, event.pid);
  put_str(&w, ",\"pid\":");
  put_i64(&w, event.tgid);
  put_str(&w, ",\"ppid\":");
  put_i64(&w, event.ppid);
  put_str(&w, ",\"state\":");
  put_i64(&w, event.state);
  put_str(&w, ",\"exit_code\":");
  put_i64(&w, event.exit_code);
  put_str(&w, ",\"total_vm_kb\":");
  put_i64(&w, (long long)event.total_vm_pages * page_kb);
  put_str(&w, ",\"rss_kb\":");
  put_i64(&w, (long long)event.rss_pages * page_kb);
  put_str(&w, "}");

  ctx->res_ctx.len = w.len;
  if (w.len > w.cap) {
    ctx->err_ctx.err_code = EA_ERR_RESULT_TOO_SMALL;
    return;
  }
  ctx->meta.pid = event.pid;
  ctx->meta.tgid = event.tgid;
  memcpy(ctx->meta.comm, event.comm, sizeof(ctx->meta.comm));

  struct oom_state *s = ctx->plugin_state;
  if (s && s->kills) {
    char comm[sizeof(event.comm) + 1];
    comm_label(event.comm, sizeof(event.comm), comm);
    const char *values[] = {comm};
    s->metrics->counter_add(s->kills, values, 1, 1.0);
  }
}
