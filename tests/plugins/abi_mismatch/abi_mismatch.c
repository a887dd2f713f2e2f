/* A plugin built for a future ABI: the agent must refuse it, naming both versions. */
#include <ebpf_agent/plugin.h>

uint32_t ea_plugin_abi_version(void) { return EA_PLUGIN_ABI_VERSION + 1; }

void process(struct ea_tracer_ctx *ctx) { ctx->res_ctx.len = 0; }
