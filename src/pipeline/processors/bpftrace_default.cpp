// "bpftrace_default": one bpftrace output line (a pipe channel record) in, one record out.
// The runtime's default processor for a pipe channel that routes no events.
#include "pipeline/bpftrace_json.h"
#include "pipeline/processor.h"

namespace ea {
namespace {

class BpftraceDefaultProcessor : public Processor {
 public:
  ProcessOutcome process(std::span<const std::byte> input, RecordMeta& meta, std::string& fields) override {
    std::string_view line(reinterpret_cast<const char*>(input.data()), input.size());
    switch (parser_.parse(line)) {
      case bpftrace::LineOutcome::Record: {
        const bpftrace::LineIdentity& identity = parser_.identity();
        meta.pid = identity.pid;
        meta.tgid = identity.tgid;
        meta.comm = identity.comm;  // lives in parser_ until the next call
        fields += parser_.fields();
        return ProcessOutcome::Emitted;
      }
      case bpftrace::LineOutcome::Control:
        return ProcessOutcome::Skipped;
      case bpftrace::LineOutcome::Invalid:
        break;
    }
    return ProcessOutcome::Failed;
  }
  std::string_view error() const override { return parser_.error(); }

 private:
  bpftrace::OutputLineParser parser_;
};

const BuiltinRegistration registration("bpftrace_default",
                                       [](const ProcessorContext&) -> Result<std::unique_ptr<Processor>> {
                                         return std::make_unique<BpftraceDefaultProcessor>();
                                       });

}  // namespace
}  // namespace ea
