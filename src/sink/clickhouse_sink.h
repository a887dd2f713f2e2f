// The ClickHouse output: events and metric samples batched into JSONEachRow INSERTs over HTTP by
// one writer thread. write()/write_metrics() only render rows and queue them (bounded per table);
// rows that do not fit, that the server refuses, or that are still queued at stop are counted in
// failures / metric_failures. While the server is down or failing the writer retries with
// back-off, keeping what fits in the bound.
#pragma once
#include <chrono>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

#include "sink/clickhouse_client.h"
#include "sink/clickhouse_options.h"
#include "sink/clickhouse_row_queue.h"
#include "sink/sink.h"

namespace ea {

Result<std::unique_ptr<Sink>> make_clickhouse_sink(const OutputDescription& output);

class ClickHouseSink : public Sink {
 public:
  explicit ClickHouseSink(ClickHouseOptions options);
  ~ClickHouseSink() override;
  std::string name() const override;
  void write(const RecordBatch& batch, std::string_view jsonl) override;
  void write_metrics(const MetricsSnapshot& snapshot) override;
  bool accepts_metrics() const override { return true; }
  uint64_t queue_depth() const override;
  // Asks the writer to send everything queued now; returns when it is sent, when an attempt
  // failed (the writer keeps retrying on its own), or after twice the request timeout.
  void flush() override;
  // Sends what is queued (retrying for up to a few seconds), then counts the rest as failures.
  void stop() override;

 private:
  using Clock = std::chrono::steady_clock;
  enum class Delivery { Sent, Retry, Rejected };
  struct Table {
    std::string insert;  // INSERT INTO db.table FORMAT JSONEachRow
    RowQueue queue;
    bool metrics;        // counts go to metric_samples / metric_failures
  };

  void run();
  bool wait_for_work(std::unique_lock<std::mutex>& lock);
  Delivery deliver(ClickHouseClient& client, const Table& table, const std::vector<RowChunk>& chunks,
                   uint64_t& body_bytes, std::string& error);
  void apply_retention(ClickHouseClient& client);
  void queue_rows(Table& table, std::string_view rows, uint64_t count);
  void note_dropped(const Table& table, uint64_t rows, std::string_view why);
  void log_failure_locked(std::string_view message);

  ClickHouseOptions options_;
  mutable std::mutex mutex_;
  std::condition_variable wake_;     // the writer: work arrived, flush or stop asked
  std::condition_variable flushed_;  // flush() callers
  Table events_;
  Table metrics_;
  uint64_t flush_requested_ = 0;
  uint64_t flush_served_ = 0;
  bool stopping_ = false;
  bool closed_ = false;  // the writer has exited: later rows count as failures at once
  Clock::time_point stop_deadline_{};
  Clock::time_point retry_at_{};
  Clock::duration backoff_;
  bool failing_ = false;
  int64_t last_failure_log_ns_ = 0;
  int64_t last_drop_log_ns_ = 0;
  uint64_t dropped_since_log_ = 0;
  bool schema_ready_ = false;  // writer thread only
  Clock::time_point next_retention_at_{};  // writer thread only
  std::mutex stop_mutex_;
  std::thread writer_;
};

}  // namespace ea
