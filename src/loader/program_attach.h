// Attaching one loaded BPF program to its hook: from its SEC() name through libbpf, or from the
// spec's `attach` options (uprobes, perf events, XDP, TC, cgroups).
#pragma once
#include <functional>
#include <string>
#include <vector>

#include "core/result.h"
#include "spec/spec.h"

struct bpf_program;
struct bpf_link;

namespace ea {

struct Attachment {
  std::vector<bpf_link*> links;  // destroyed to detach (a perf-event link also closes its event)
  std::function<void()> undo;    // for attachments that are not links (TC filters, XDP with a mode)
  std::string point;             // for `list`: "tracepoint/oom/mark_victim", "xdp eth0 (generic)"
};

// On failure nothing stays attached and the error says why and how to fix it (without the
// spec position, which the caller adds).
Result<Attachment> attach_program(bpf_program* program, const AttachOptions* options);

// Options the kernel must know before load: refused here, at open, rather than after the verifier.
Result<void> check_attach_options(const bpf_program* program, const AttachOptions& options);

}  // namespace ea
