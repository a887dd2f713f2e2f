// The `tsdb` output: metric snapshots and event records into the embedded store.
//   tsdb[:DIR][,retention=15d][,max_size=1G][,flush=5s][,queue=64M]
// write() and write_metrics() only copy into a bounded queue (what does not fit is dropped and
// counted); one thread appends to the store and commits once per flush interval.
#pragma once
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <variant>
#include <vector>

#include "sink/output_description.h"
#include "sink/sink.h"
#include "tsdb/tsdb_writer.h"

namespace ea::tsdb {

struct TsdbSinkOptions {
  WriterOptions writer;
  std::chrono::milliseconds flush_interval{5000};
  uint64_t queue_bytes = 64ull << 20;
  std::chrono::milliseconds retention_check_interval{60'000};
};

class TsdbSink : public Sink {
 public:
  static Result<std::unique_ptr<TsdbSink>> open(TsdbSinkOptions options, ChunkLimits limits = {});
  ~TsdbSink() override;
  std::string name() const override { return "tsdb:" + options_.writer.dir; }
  void write(const RecordBatch& batch, std::string_view jsonl) override;
  void write_metrics(const MetricsSnapshot& snapshot) override;
  bool accepts_metrics() const override { return true; }
  // Records and samples handed over and not yet committed (queued, or appended to the store and
  // waiting for the next flush).
  uint64_t queue_depth() const override;
  // Only those still in the queue, not yet taken by the writer thread: the backlog a producer
  // can pace itself on.
  uint64_t queued() const;
  // Waits until everything handed over before the call is committed (or failed to commit).
  void flush() override;
  void stop() override;

 private:
  struct EventItem {
    std::string jsonl;
    std::vector<uint64_t> times;
    std::vector<uint32_t> spec_of_record;  // index into specs
    std::vector<std::string> specs;
  };
  struct Item {
    std::variant<EventItem, MetricsSnapshot> payload;
    uint64_t bytes = 0;
    uint64_t count = 0;  // records or samples
  };

  TsdbSink(TsdbSinkOptions options, std::unique_ptr<TsdbWriter> writer);
  // Why the item was refused (dropped), or nothing when it was queued.
  std::optional<std::string> enqueue(Item item);
  void run();
  void append(Item& item);
  void commit();
  void note_problem(const std::string& message);

  TsdbSinkOptions options_;
  std::unique_ptr<TsdbWriter> writer_;  // used by the writer thread only once it runs

  mutable std::mutex mutex_;
  std::condition_variable wake_;
  std::condition_variable flushed_;
  std::deque<Item> queue_;
  uint64_t queued_bytes_ = 0;
  uint64_t queued_count_ = 0;
  uint64_t in_progress_count_ = 0;  // taken off the queue, not yet committed
  uint64_t flush_requested_ = 0;
  uint64_t flush_done_ = 0;
  bool stopping_ = false;
  bool stopped_ = false;
  std::thread thread_;

  int64_t last_problem_log_ns_ = 0;
  uint64_t problems_since_log_ = 0;
};

// `tsdb[:DIR][,...]` from --output; DIR defaults to kDefaultTsdbDir.
Result<std::unique_ptr<Sink>> make_tsdb_sink(const OutputDescription& output);
inline constexpr std::string_view kTsdbUsage = "tsdb[:DIR][,retention=15d][,max_size=1G][,flush=5s][,queue=64M]";

}  // namespace ea::tsdb
