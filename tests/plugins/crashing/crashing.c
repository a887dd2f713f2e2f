/* Faults on marker inputs, to test that the agent survives and disables a crashing plugin.
 *   "segv" -> writes through a NULL pointer (SIGSEGV)
 *   "fpe"  -> divides by zero (SIGFPE)
 *   anything else -> {"ok":true}
 */
#include <string.h>

#include <ebpf_agent/plugin.h>

EA_PLUGIN_DECLARE_ABI()

static int input_is(const struct ea_tracer_ctx *ctx, const char *marker) {
  size_t len = strlen(marker);
  return ctx->ring_ctx.len == len && memcmp(ctx->ring_ctx.data, marker, len) == 0;
}

void process(struct ea_tracer_ctx *ctx) {
  if (input_is(ctx, "segv")) {
    volatile int *nowhere = NULL;
    *nowhere = 1;
  }
  if (input_is(ctx, "fpe")) {
    volatile int zero = 0;
    volatile int quotient = (int)ctx->ring_ctx.len / zero; /* a real idiv: 1/x would be folded */
    (void)quotient;
  }
  static const char result[] = "{\"ok\":true}";
  memcpy(ctx->res_ctx.data, result, sizeof(result) - 1);
  ctx->res_ctx.len = sizeof(result) - 1;
}
