// Kafka output: events to <prefix>.events (key "host/pid", value the record's JSON envelope),
// metric samples to <prefix>.metrics (key "host", value metric_json.h), through an idempotent
// librdkafka producer.
//
// Every record is appended to the local spool first (kafka_spool.h) and one thread feeds the
// spool to librdkafka in order, at most queue_max_records at a time, committing records as Kafka
// acknowledges them. So while the brokers are unreachable records simply stay in the spool
// (bounded by spool_max_bytes; what would exceed it is refused and counted), they are sent in
// order when Kafka is back, and whatever is not delivered at stop is replayed at the next start.
// write() only appends to the spool (tmpfs by default): it never waits for Kafka.
#pragma once
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>
#include <span>
#include <string>
#include <thread>

#include "sink/kafka_options.h"
#include "sink/kafka_producer.h"
#include "sink/kafka_spool.h"
#include "sink/output_description.h"
#include "sink/sink.h"

namespace ea {

// The spool's state, for health metrics (Sink::counters() has delivered/failed records).
struct KafkaSpoolCounters {
  uint64_t spooled = 0;   // records that had to wait in the spool: Kafka was unreachable or behind
  uint64_t replayed = 0;  // waiting records (and records left by an earlier run) delivered later
  uint64_t dropped_over_bound = 0;  // records refused because the spool was full (exact)
  uint64_t dropped_events = 0;          // ... of which events
  uint64_t dropped_metric_samples = 0;  // ... of which metric samples
  uint64_t spool_write_failures = 0;    // records the spool could not write (disk errors)
  uint64_t spool_bytes = 0;             // on disk now
  uint64_t spool_records = 0;           // not yet acknowledged by Kafka
  uint64_t corrupt_bytes_skipped = 0;   // damaged spool bytes skipped (torn writes after a crash)
  uint64_t producer_restarts = 0;       // librdkafka producers replaced after a fatal error
};

class KafkaSink : public Sink, private KafkaProducerEvents {
 public:
  static Result<std::unique_ptr<KafkaSink>> open(KafkaSinkOptions options);
  ~KafkaSink() override;
  std::string name() const override { return "kafka:" + options_.brokers; }
  void write(const RecordBatch& batch, std::string_view jsonl) override;
  void write_metrics(const MetricsSnapshot& snapshot) override;
  bool accepts_metrics() const override { return true; }
  uint64_t queue_depth() const override;
  void flush() override;  // makes the spool durable; does not wait for Kafka
  void stop() override;   // waits up to stop_timeout for Kafka to take the spool, keeps the rest
  KafkaSpoolCounters spool_counters() const;
  const KafkaSinkOptions& options() const { return options_; }
  // Tests: has librdkafka raise a fatal error in the current producer (see restart_producer).
  void inject_fatal_error_for_test();

 private:
  // One record handed to librdkafka and not yet retired, in spool order.
  struct InFlight {
    SpoolPosition end;
    KafkaDataKind kind;
    bool replay = false;  // counts as replayed when delivered
    enum class State : uint8_t { waiting, delivered, failed, purged } state = State::waiting;
  };

  explicit KafkaSink(KafkaSinkOptions options);
  void append(KafkaDataKind kind, std::span<SpoolEntry> entries);
  void note_refused(KafkaDataKind kind, const SpoolAppendOutcome& outcome);
  void wake();
  void run();
  void feed_producer();
  void retire_delivered();
  void restart_producer();
  void finish();
  void on_delivery(uint64_t id, rd_kafka_resp_err_t error, KafkaDataKind kind, size_t bytes) override;
  void on_error(rd_kafka_resp_err_t error, std::string_view reason) override;
  void log_summary();
  // Takes the spool's sync work under mutex_ and does it (fdatasync) without: writers never wait.
  void sync_spool();

  KafkaSinkOptions options_;
  std::string context_;  // "output 'kafka:BROKERS'" for messages
  int wake_fd_ = -1;     // eventfd: new spool data, librdkafka events, stop

  mutable std::mutex mutex_;  // guards spool_ and the stop request
  std::mutex sync_mutex_;     // one KafkaSpool::run_sync() at a time
  std::unique_ptr<KafkaSpool> spool_;
  bool stop_requested_ = false;
  std::chrono::steady_clock::time_point stop_deadline_;

  // Owned by the feeding thread.
  std::unique_ptr<KafkaProducer> producer_;
  std::deque<InFlight> in_flight_;
  uint64_t in_flight_base_ = 0;  // producer id of in_flight_.front()
  bool producer_failed_ = false;
  bool brokers_down_ = false;
  std::chrono::steady_clock::time_point brokers_down_since_;
  int64_t last_failure_log_ns_ = 0;
  std::thread feeder_;
  std::atomic<uint64_t> in_flight_count_{0};
  std::atomic<bool> test_fatal_requested_{false};
  std::atomic<uint64_t> producer_restarts_{0};

  std::atomic<uint64_t> spooled_{0};
  std::atomic<uint64_t> replayed_{0};
  std::atomic<uint64_t> dropped_events_{0};
  std::atomic<uint64_t> dropped_metric_samples_{0};
  int64_t last_drop_log_ns_ = 0;  // under mutex_
  std::atomic<uint64_t> delivered_events_{0};
  std::atomic<uint64_t> delivered_metric_samples_{0};
  std::atomic<uint64_t> failed_events_{0};  // Kafka refused them for good (not counting drops)
  std::atomic<uint64_t> failed_metric_samples_{0};
  std::mutex stop_mutex_;  // concurrent stop() calls join the thread once
};

Result<std::unique_ptr<Sink>> make_kafka_sink(const OutputDescription& output);

}  // namespace ea
