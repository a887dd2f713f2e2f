/* A test plugin exercising every part of the ABI.
 *
 * init:     keeps config_json and the initfile's first line; {"fail_init": true} makes it fail
 *           with a last-error text.
 * preload:  sets the variable `plugin_value` to config "variable" ({"bad_variable": true} names
 *           one that does not exist instead); tries map_update too, which must be refused.
 * postload: writes plugin_map[1] = config "map_value"; tries set_variable, which must be refused.
 * process:  by input — "skip", "fail", "big:N" (an N-byte result), "liar" (asks for a smaller
 *           buffer than it has), "overflow" (claims more bytes than the buffer), "notjson",
 *           "newline" (line breaks between tokens), "meta" (sets pid/tgid and a full 16-byte comm),
 *           "hooks" (what the hooks saw); anything else is echoed as
 *           {"input":..., "config":..., "initfile":...}.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <ebpf_agent/plugin.h>

EA_PLUGIN_DECLARE_ABI()

struct echo_state {
  char *config;
  char initfile_line[128];
  int preload_map_update_rc;
  int postload_set_variable_rc;
  int postload_map_fd;
  char error[128];
};

/* Appends to the result buffer, counting past its end so the size needed is known. */
struct writer {
  struct ea_tracer_ctx *ctx;
  uint32_t len;
};

static void put(struct writer *w, const char *text, size_t n) {
  for (size_t i = 0; i < n; i++, w->len++)
    if (w->len < w->ctx->res_ctx.cap) w->ctx->res_ctx.data[w->len] = (uint8_t)text[i];
}

static void put_str(struct writer *w, const char *text) { put(w, text, strlen(text)); }

static void put_json_string(struct writer *w, const uint8_t *text, size_t n) {
  put_str(w, "\"");
  for (size_t i = 0; i < n; i++) {
    char escaped[8];
    if (text[i] == '"' || text[i] == '\\') {
      snprintf(escaped, sizeof(escaped), "\\%c", text[i]);
    } else if (text[i] < 0x20 || text[i] >= 0x7f) {
      snprintf(escaped, sizeof(escaped), "\\u%04x", text[i]);
    } else {
      escaped[0] = (char)text[i];
      escaped[1] = '\0';
    }
    put_str(w, escaped);
  }
  put_str(w, "\"");
}

static void finish(struct writer *w) {
  w->ctx->res_ctx.len = w->len;
  if (w->len > w->ctx->res_ctx.cap) w->ctx->err_ctx.err_code = EA_ERR_RESULT_TOO_SMALL;
}

static long config_number(const struct echo_state *state, const char *key) {
  char pattern[64];
  snprintf(pattern, sizeof(pattern), "\"%s\":", key);
  const char *at = strstr(state->config, pattern);
  return at ? strtol(at + strlen(pattern), NULL, 10) : 0;
}

int ea_plugin_init(const struct ea_plugin_init_args *args, void **state_out) {
  if (strstr(args->config_json, "\"fail_init\":true")) return -EINVAL; /* state stays NULL */
  struct echo_state *state = calloc(1, sizeof(*state));
  if (!state) return -ENOMEM;
  state->config = strdup(args->config_json);
  if (args->initfile) {
    FILE *file = fopen(args->initfile, "r");
    if (file) {
      if (fgets(state->initfile_line, sizeof(state->initfile_line), file))
        state->initfile_line[strcspn(state->initfile_line, "\n")] = '\0';
      fclose(file);
    }
  }
  *state_out = state;
  return 0;
}

const char *ea_plugin_last_error(void *opaque) {
  struct echo_state *state = opaque;
  return state ? state->error : "init refused: the config asks it to fail";
}

int ea_plugin_preload(void *opaque, const struct ea_object_api *api, ea_object *obj) {
  struct echo_state *state = opaque;
  uint32_t value = (uint32_t)config_number(state, "variable");
  uint32_t key = 0;
  state->preload_map_update_rc = api->map_update(obj, "plugin_map", &key, sizeof(key), &value, sizeof(value));
  const char *name = strstr(state->config, "\"bad_variable\":true") ? "no_such_variable" : "plugin_value";
  int rc = api->set_variable(obj, name, &value, sizeof(value));
  if (rc != 0) snprintf(state->error, sizeof(state->error), "could not set %s in %s", name, api->object_name(obj));
  return rc;
}

int ea_plugin_postload(void *opaque, const struct ea_object_api *api, ea_object *obj) {
  struct echo_state *state = opaque;
  uint32_t key = 1, value = (uint32_t)config_number(state, "map_value");
  state->postload_set_variable_rc = api->set_variable(obj, "plugin_value", &value, sizeof(value));
  state->postload_map_fd = api->map_fd(obj, "plugin_map");
  return api->map_update(obj, "plugin_map", &key, sizeof(key), &value, sizeof(value));
}

void ea_plugin_fini(void *opaque) {
  struct echo_state *state = opaque;
  free(state->config);
  free(state);
}

static int input_is(const struct ea_tracer_ctx *ctx, const char *marker) {
  size_t len = strlen(marker);
  return ctx->ring_ctx.len == len && memcmp(ctx->ring_ctx.data, marker, len) == 0;
}

void process(struct ea_tracer_ctx *ctx) {
  struct echo_state *state = ctx->plugin_state;
  struct writer w = {ctx, 0};
  char text[256];

  if (input_is(ctx, "skip")) {
    ctx->err_ctx.err_code = EA_SKIP;
  } else if (input_is(ctx, "fail")) {
    ctx->err_ctx.err_code = 7;
    snprintf(ctx->err_ctx.err_msg, EA_ERR_MSG_MAX, "asked to fail");
  } else if (ctx->ring_ctx.len > 4 && memcmp(ctx->ring_ctx.data, "big:", 4) == 0) {
    char digits[16] = {0};
    memcpy(digits, ctx->ring_ctx.data + 4, ctx->ring_ctx.len - 4 < 15 ? ctx->ring_ctx.len - 4 : 15);
    long size = strtol(digits, NULL, 10); /* the whole result is exactly `size` bytes */
    put_str(&w, "{\"pad\":\"");
    for (long i = 10; i < size; i++) put_str(&w, "x");
    put_str(&w, "\"}");
    finish(&w);
  } else if (input_is(ctx, "liar")) {
    ctx->res_ctx.len = ctx->res_ctx.cap;
    ctx->err_ctx.err_code = EA_ERR_RESULT_TOO_SMALL;
  } else if (input_is(ctx, "overflow")) {
    ctx->res_ctx.len = ctx->res_ctx.cap + 1;
  } else if (input_is(ctx, "notjson")) {
    put_str(&w, "hello");
    finish(&w);
  } else if (input_is(ctx, "newline")) {
    put_str(&w, "{\n\"a\":1\r\n}");
    finish(&w);
  } else if (input_is(ctx, "meta")) {
    ctx->meta.pid = 42;
    ctx->meta.tgid = 43;
    memcpy(ctx->meta.comm, "abcdefghijklmnop", EA_COMM_LEN); /* no NUL: the agent must bound it */
    put_str(&w, "{}");
    finish(&w);
  } else if (input_is(ctx, "hooks")) {
    snprintf(text, sizeof(text), "{\"preload_map_update\":%d,\"postload_set_variable\":%d,\"postload_map_fd\":%d}",
             state->preload_map_update_rc, state->postload_set_variable_rc, state->postload_map_fd);
    put_str(&w, text);
    finish(&w);
  } else {
    put_str(&w, "{\"input\":");
    put_json_string(&w, ctx->ring_ctx.data, ctx->ring_ctx.len);
    put_str(&w, ",\"config\":");
    put_str(&w, state->config);
    put_str(&w, ",\"initfile\":");
    put_json_string(&w, (const uint8_t *)state->initfile_line, strlen(state->initfile_line));
    put_str(&w, "}");
    finish(&w);
  }
}
