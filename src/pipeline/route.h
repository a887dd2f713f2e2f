// A route carries one channel's records to one processor and on to the sinks.
#pragma once
#include <atomic>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "core/record.h"
#include "pipeline/processor.h"
#include "sink/sink.h"
#include "spec/spec.h"

namespace ea {

struct RouteCounters {
  std::atomic<uint64_t> received{0};  // handed to the route by its channel
  std::atomic<uint64_t> emitted{0};   // became records sent to the sinks
  std::atomic<uint64_t> skipped{0};   // the processor chose to emit nothing
  std::atomic<uint64_t> failed{0};    // the processor returned an error
  std::atomic<uint64_t> dropped{0};   // never processed: the shard queue stayed full
};

// Where the dispatch key lives inside a binary record (from the record struct's BTF).
struct KeyField {
  uint32_t offset = 0;
  uint32_t size = 0;  // 1, 2, 4 or 8
};

using SinkSet = std::vector<std::shared_ptr<Sink>>;

struct Route {
  RecordOrigin origin;
  DispatchStrategy strategy = DispatchStrategy::Hash;
  std::optional<KeyField> key;
  std::vector<std::unique_ptr<Processor>> processors;  // one per shard
  std::shared_ptr<const SinkSet> sinks;
  RouteCounters counters;
  std::atomic<int64_t> last_error_log_ns{0};  // failures are logged at most every few seconds
};

}  // namespace ea
