/* Speaks the ABI but exports only `process`: a spec listing other functions must be refused. */
#include <string.h>

#include <ebpf_agent/plugin.h>

EA_PLUGIN_DECLARE_ABI()

void process(struct ea_tracer_ctx *ctx) {
  static const char result[] = "{}";
  memcpy(ctx->res_ctx.data, result, sizeof(result) - 1);
  ctx->res_ctx.len = sizeof(result) - 1;
}
