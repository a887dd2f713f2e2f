/*
 * ebpf-agent user_so plugin ABI.
 *
 * A plugin is a shared object loaded with dlopen() by a spec program of `type: user_so`.
 * Only C types cross this boundary. Version handshake: the agent calls
 * ea_plugin_abi_version() first and refuses a plugin whose major ABI differs from
 * EA_PLUGIN_ABI_VERSION (the error names both numbers). Versions only add: a plugin built for
 * an older version (down to EA_PLUGIN_ABI_MIN_VERSION) keeps working.
 *
 * History: v1 init/preload/postload/process/fini hooks; v2 adds metrics (ea_metrics_api,
 * handed to ea_plugin_init as args->metrics).
 *
 * Memory ownership:
 *   - Everything the agent passes in (contexts, input records, strings) is owned by the agent
 *     and valid only during the call. Copy what you keep.
 *   - The result buffer (res_ctx.data, res_ctx.cap bytes) is owned by the agent; the plugin
 *     writes into it and sets res_ctx.len. If the result does not fit, set res_ctx.len to the
 *     size needed and err_ctx.err_code = EA_ERR_RESULT_TOO_SMALL: the agent grows the buffer
 *     and calls once more.
 *   - Plugin state (from ea_plugin_init) is owned by the plugin and released in ea_plugin_fini.
 *     When ea_plugin_init fails, ea_plugin_fini is not called: free what init allocated first.
 *   - ea_plugin_last_error() returns a string owned by the plugin, valid until the next call
 *     into the plugin from that thread.
 *
 * Threads: processing functions may be called from several worker threads at once, but the
 * records of one key (tgid by default) always arrive on the same thread, in order. Init,
 * preload, postload and fini are called from one thread, never concurrently with anything.
 *
 * Results: res_ctx must hold exactly one JSON object in UTF-8 (line breaks only between tokens).
 * The agent checks every result and counts a record failed when it is not; err_code EA_SKIP
 * emits nothing, any other non-zero err_code fails the record with err_msg as the reason.
 *
 * Faults: a plugin that faults (SIGSEGV, SIGBUS, SIGFPE, SIGILL) in any hook is disabled: it is
 * never called again (not even ea_plugin_fini) and its records count as failed until the spec is
 * applied again. Constructors run inside dlopen() and are not guarded.
 *
 * Required symbols:   ea_plugin_abi_version, and each function named in `properties.functions`
 * Optional symbols:   ea_plugin_init, ea_plugin_preload, ea_plugin_postload, ea_plugin_fini,
 *                     ea_plugin_last_error
 */
#ifndef EBPF_AGENT_PLUGIN_H
#define EBPF_AGENT_PLUGIN_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define EA_PLUGIN_ABI_VERSION 2u
#define EA_PLUGIN_ABI_MIN_VERSION 1u

/* err_ctx.err_code values (0 = success); any other non-zero value is a plugin-defined failure. */
#define EA_OK 0
#define EA_ERR_RESULT_TOO_SMALL 1000 /* grow res_ctx and call again */
#define EA_SKIP 1001                 /* not an error: this record produces no output */

#define EA_ERR_MSG_MAX 256
#define EA_COMM_LEN 16

/* One record in, one result out: the talk's TracerCtx. */
struct ea_tracer_ctx {
  uint32_t abi_version;    /* EA_PLUGIN_ABI_VERSION of the agent */
  void *plugin_state;      /* what ea_plugin_init stored, or NULL */
  const char *spec;        /* spec name */
  const char *channel;     /* channel the record came from */
  struct {
    const uint8_t *data;   /* the raw record (ring buffer / perf sample / one pipe line) */
    uint32_t len;
  } ring_ctx;
  struct {
    int32_t err_code;      /* EA_OK, EA_SKIP, EA_ERR_RESULT_TOO_SMALL, or a failure code */
    char err_msg[EA_ERR_MSG_MAX]; /* why, NUL-terminated */
  } err_ctx;
  struct {
    uint8_t *data;         /* agent-owned: write one JSON object here */
    uint32_t cap;
    uint32_t len;          /* bytes written (or needed, with EA_ERR_RESULT_TOO_SMALL) */
  } res_ctx;
  struct {
    int64_t pid;           /* thread id, -1 if unknown (set by the plugin when it knows) */
    int64_t tgid;          /* process id, -1 if unknown */
    char comm[EA_COMM_LEN];
  } meta;
};

typedef void (*ea_process_fn)(struct ea_tracer_ctx *ctx);

/* Metrics (v2). A plugin declares its metrics in ea_plugin_init and updates them from any hook
 * and any thread. They appear in every output beside the agent's own, owned by the spec (its
 * `storage:` applies) and removed with it. Names follow Prometheus / OpenTelemetry rules as the
 * agent renders them: base name with unit suffix and no `_total` ("oom_kills",
 * "alloc_latency_seconds"). Each metric has a cap on label sets; past it, new label sets fold
 * into one series labelled otel_metric_overflow="true" and the folds are counted. */
typedef struct ea_metric ea_metric; /* opaque, owned by the agent, valid until ea_plugin_fini */

#define EA_METRIC_COUNTER 0u
#define EA_METRIC_GAUGE 1u
#define EA_METRIC_HISTOGRAM 2u

struct ea_metric_desc {
  const char *name;
  const char *help;                 /* may be NULL */
  const char *unit;                 /* "seconds", "bytes", or NULL */
  uint32_t kind;                    /* EA_METRIC_* */
  const char *const *label_names;   /* label_count names */
  uint32_t label_count;
  const double *bounds;             /* histograms: bucket upper bounds, strictly ascending */
  uint32_t bound_count;
};

struct ea_metrics_api {
  uint32_t size; /* sizeof(struct ea_metrics_api) as the agent knows it */
  void *host;    /* pass back as the first argument of declare */
  /* ea_plugin_init only. Returns NULL on a bad description, with the reason in err (err_len
   * bytes, NUL-terminated). Declaring the same name again with the same shape returns it again. */
  ea_metric *(*declare)(void *host, const struct ea_metric_desc *desc, char *err, uint32_t err_len);
  /* Any hook, any thread. label_values: label_count values in declare order (copied). Return 0,
   * or -EINVAL (wrong count, NULL, negative counter delta, wrong kind). */
  int (*counter_add)(ea_metric *metric, const char *const *label_values, uint32_t label_count, double delta);
  int (*gauge_set)(ea_metric *metric, const char *const *label_values, uint32_t label_count, double value);
  int (*histogram_observe)(ea_metric *metric, const char *const *label_values, uint32_t label_count,
                           double value);
};

/* Handed to ea_plugin_init. */
struct ea_plugin_init_args {
  uint32_t abi_version;
  const char *spec;        /* spec name */
  const char *program;     /* this user_so program's name in the spec */
  const char *initfile;    /* resolved path of properties.initfile, or NULL */
  const char *config_json; /* properties.config as JSON text ("null" when absent) */
  /* v2: declare and update metrics; keep the pointer in your state (valid until fini) */
  const struct ea_metrics_api *metrics;
};

/* A BPF object of the same spec, passed to preload/postload. Opaque. */
typedef struct ea_object ea_object;

/* Agent services for preload/postload. All return 0 (map_fd: the fd, owned by the agent) or a
 * negative errno: -EPERM when called in the wrong phase, -ENOENT for an unknown map, -EINVAL
 * otherwise. The agent's reason for a failure is quoted in its error if the hook then fails. */
struct ea_object_api {
  uint32_t size; /* sizeof(struct ea_object_api) as the agent knows it */
  const char *(*object_name)(const ea_object *obj);
  /* preload only: before the object is loaded into the kernel */
  int (*set_variable)(ea_object *obj, const char *name, const void *data, uint32_t len);
  int (*set_map_max_entries)(ea_object *obj, const char *map, uint32_t max_entries);
  /* postload only: after load, before attach */
  int (*map_update)(ea_object *obj, const char *map, const void *key, uint32_t key_len,
                    const void *value, uint32_t value_len);
  int (*map_fd)(ea_object *obj, const char *map);
};

/* Symbol signatures. */
typedef uint32_t (*ea_plugin_abi_version_fn)(void);
typedef int (*ea_plugin_init_fn)(const struct ea_plugin_init_args *args, void **state);
typedef int (*ea_plugin_preload_fn)(void *state, const struct ea_object_api *api, ea_object *obj);
typedef int (*ea_plugin_postload_fn)(void *state, const struct ea_object_api *api, ea_object *obj);
typedef void (*ea_plugin_fini_fn)(void *state);
typedef const char *(*ea_plugin_last_error_fn)(void *state);

/* Declares the version handshake in a plugin: EA_PLUGIN_DECLARE_ABI(); */
#define EA_PLUGIN_DECLARE_ABI() \
  uint32_t ea_plugin_abi_version(void) { return EA_PLUGIN_ABI_VERSION; }

#ifdef __cplusplus
}
#endif

#endif /* EBPF_AGENT_PLUGIN_H */
