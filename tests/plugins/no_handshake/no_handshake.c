/* A shared object that is not an ebpf-agent plugin: no ea_plugin_abi_version. */
#include <ebpf_agent/plugin.h>

void process(struct ea_tracer_ctx *ctx) { ctx->res_ctx.len = 0; }
