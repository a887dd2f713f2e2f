// Where records go. Sinks receive whole batches from worker threads, concurrently.
#pragma once
#include <atomic>
#include <cstdint>
#include <memory>
#include <string>

#include "core/record.h"
#include "core/result.h"

namespace ea {

struct SinkCounters {
  std::atomic<uint64_t> records{0};
  std::atomic<uint64_t> bytes{0};
  std::atomic<uint64_t> failures{0};  // records that could not be written
};

class Sink {
 public:
  virtual ~Sink() = default;
  virtual std::string name() const = 0;  // "file:/var/log/x.jsonl"
  // Thread-safe. `jsonl` is the batch already rendered as JSON lines (append_json_line), so
  // text sinks do not render twice; structured sinks may use `batch` instead.
  virtual void write(const RecordBatch& batch, std::string_view jsonl) = 0;
  virtual void flush() = 0;
  virtual void stop() = 0;  // idempotent: flush and close
  const SinkCounters& counters() const { return counters_; }

 protected:
  SinkCounters counters_;
};

// "stdout", "file:PATH[,max_bytes=N][,keep=N]"
Result<std::unique_ptr<Sink>> make_sink(std::string_view description);

}  // namespace ea
