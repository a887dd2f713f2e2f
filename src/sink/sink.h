// Where records go. Sinks receive whole batches from worker threads, concurrently.
#pragma once
#include <atomic>
#include <cstdint>
#include <memory>
#include <string>

#include "core/record.h"
#include "core/result.h"
#include "metrics/metric.h"

namespace ea {

struct SinkCounters {
  std::atomic<uint64_t> records{0};
  std::atomic<uint64_t> bytes{0};
  std::atomic<uint64_t> failures{0};  // records that could not be written
  std::atomic<uint64_t> metric_samples{0};   // metric samples written
  std::atomic<uint64_t> metric_failures{0};  // metric samples that could not be written
};

class Sink {
 public:
  virtual ~Sink() = default;
  virtual std::string name() const = 0;  // "file:/var/log/x.jsonl"
  // What a spec's `storage:` calls this output: the part of name() before ':' ("file", "tsdb").
  std::string kind() const {
    std::string full = name();
    return full.substr(0, full.find(':'));
  }
  // Thread-safe. `jsonl` is the batch already rendered as JSON lines (append_json_line), so
  // text sinks do not render twice; structured sinks may use `batch` instead.
  virtual void write(const RecordBatch& batch, std::string_view jsonl) = 0;
  // Thread-safe. Called by the metrics pump every interval with the families this sink receives
  // (per-spec storage selection already applied). Event-only sinks keep the default.
  virtual void write_metrics(const MetricsSnapshot& snapshot) { (void)snapshot; }
  virtual bool accepts_metrics() const { return false; }
  // Records and samples accepted but not yet written (health: sink queue depth).
  virtual uint64_t queue_depth() const { return 0; }
  virtual void flush() = 0;
  virtual void stop() = 0;  // idempotent: flush and close
  const SinkCounters& counters() const { return counters_; }

 protected:
  SinkCounters counters_;
};

// An output description (see output_description.h): stdout, file:PATH, tmpfs[:DIR], tsdb[:DIR],
// kafka:BROKERS, clickhouse:URL, each with its own options.
Result<std::unique_ptr<Sink>> make_sink(std::string_view description);
// One line per output kind, for --help and error messages.
std::string_view output_usage();

}  // namespace ea
