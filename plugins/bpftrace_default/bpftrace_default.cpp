/* bpftrace_default.so: the talk's user_so processor for bpftrace output, one pipe line in, one
 * JSON record out (same parser and record shapes as the built-in "bpftrace_default", see
 * src/pipeline/bpftrace_json.h). Spec: `functions: [{name: process}]`.
 */
#include <algorithm>
#include <cerrno>
#include <cstring>
#include <new>
#include <string_view>

#include <ebpf_agent/plugin.h>

#include "pipeline/bpftrace_json.h"

#define EA_EXPORT __attribute__((visibility("default")))

extern "C" {
EA_EXPORT uint32_t ea_plugin_abi_version(void);
EA_EXPORT void process(struct ea_tracer_ctx *ctx);

EA_PLUGIN_DECLARE_ABI()
}

namespace {

constexpr int32_t kInvalidLine = 1;

void set_error(ea_tracer_ctx *ctx, int32_t code, std::string_view message) {
  ctx->err_ctx.err_code = code;
  size_t length = std::min(message.size(), sizeof(ctx->err_ctx.err_msg) - 1);
  std::memcpy(ctx->err_ctx.err_msg, message.data(), length);
  ctx->err_ctx.err_msg[length] = '\0';
}

void emit(ea_tracer_ctx *ctx, const ea::bpftrace::OutputLineParser &parser) {
  const std::string &fields = parser.fields();
  ctx->res_ctx.len = static_cast<uint32_t>(fields.size());
  if (fields.size() > ctx->res_ctx.cap) {  // the agent grows the buffer and calls again
    ctx->err_ctx.err_code = EA_ERR_RESULT_TOO_SMALL;
    return;
  }
  std::memcpy(ctx->res_ctx.data, fields.data(), fields.size());
  const ea::bpftrace::LineIdentity &identity = parser.identity();
  if (identity.pid >= 0) ctx->meta.pid = identity.pid;
  if (identity.tgid >= 0) ctx->meta.tgid = identity.tgid;
  if (!identity.comm.empty()) {
    size_t length = std::min(identity.comm.size(), sizeof(ctx->meta.comm) - 1);
    std::memset(ctx->meta.comm, 0, sizeof(ctx->meta.comm));
    std::memcpy(ctx->meta.comm, identity.comm.data(), length);
  }
  ctx->err_ctx.err_code = EA_OK;
}

}  // namespace

// A parser per call, not per thread: thread_local state would pin the plugin in memory after
// dlclose, and a hot reload would then keep running the old code.
void process(struct ea_tracer_ctx *ctx) {
  try {
    ea::bpftrace::OutputLineParser parser;
    std::string_view line(reinterpret_cast<const char *>(ctx->ring_ctx.data), ctx->ring_ctx.len);
    switch (parser.parse(line)) {
      case ea::bpftrace::LineOutcome::Record:
        emit(ctx, parser);
        return;
      case ea::bpftrace::LineOutcome::Control:
        ctx->err_ctx.err_code = EA_SKIP;
        return;
      case ea::bpftrace::LineOutcome::Invalid:
        set_error(ctx, kInvalidLine, parser.error());
        return;
    }
  } catch (const std::bad_alloc &) {  // nothing may unwind into the agent's C caller
    set_error(ctx, ENOMEM, "out of memory parsing a bpftrace line");
  }
}
