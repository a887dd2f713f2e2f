// A processor turns one raw channel record into zero or one output record.
#pragma once
#include <atomic>
#include <cstddef>
#include <functional>
#include <memory>
#include <span>
#include <string>

#include "core/record.h"
#include "core/result.h"
#include "spec/spec.h"

struct btf;

namespace ea {

class MetricRegistry;

enum class ProcessOutcome {
  Emitted,  // fields were appended
  Skipped,  // nothing to emit (filtered, control message)
  Failed,   // error(); the record is counted as failed and dropped
};

// One instance per worker shard: process() is never called concurrently on one instance.
class Processor {
 public:
  virtual ~Processor() = default;
  // Appends exactly one JSON object to `fields` on Emitted (nothing otherwise) and fills the
  // envelope identity it knows into `meta`.
  virtual ProcessOutcome process(std::span<const std::byte> input, RecordMeta& meta, std::string& fields) = 0;
  // Why the last Failed happened.
  virtual std::string_view error() const = 0;
};

// What a processor factory knows about where its records come from.
struct ProcessorContext {
  const Spec* spec = nullptr;
  const ChannelSpec* channel = nullptr;
  const EventSpec* event = nullptr;      // null for the channel's default processor
  const struct btf* record_btf = nullptr;  // BTF holding the channel's record struct, if known
  int record_type_id = 0;                // 0 = unknown
  MetricRegistry* metrics = nullptr;      // where a processor's metrics go (owned by spec.name); may be null
};

using ProcessorFactory = std::function<Result<std::unique_ptr<Processor>>(const ProcessorContext&)>;

// Built-in processors are registered by name (see builtin_registry.cpp) and chosen in a spec with
// `events: [{name: builtin, target_processor: NAME}]`.
void register_builtin_processor(std::string name, ProcessorFactory factory);
const ProcessorFactory* find_builtin_processor(std::string_view name);
std::vector<std::string> builtin_processor_names();

// Registers at static-init time: `static BuiltinRegistration reg("tcp_connlat", make_tcp_connlat);`
struct BuiltinRegistration {
  BuiltinRegistration(std::string name, ProcessorFactory factory) {
    register_builtin_processor(std::move(name), std::move(factory));
  }
};

}  // namespace ea
