#include "sink/clickhouse_sink.h"

#include <pthread.h>

#include <spdlog/spdlog.h>

#include "sink/clickhouse_retention.h"
#include "sink/clickhouse_rows.h"
#include "sink/clickhouse_schema.h"

namespace ea {

namespace {

constexpr auto kFirstBackoff = std::chrono::milliseconds(250);
constexpr auto kMaxBackoff = std::chrono::seconds(10);
constexpr auto kStopGrace = std::chrono::seconds(5);
constexpr int64_t kLogIntervalNs = 10'000'000'000;
constexpr auto kRetentionInterval = std::chrono::hours(1);

}  // namespace

Result<std::unique_ptr<Sink>> make_clickhouse_sink(const OutputDescription& output) {
  auto options = parse_clickhouse_options(output);
  if (!options) return std::unexpected(options.error());
  return std::unique_ptr<Sink>(new ClickHouseSink(std::move(*options)));
}

ClickHouseSink::ClickHouseSink(ClickHouseOptions options)
    : options_(std::move(options)),
      events_{clickhouse_insert_statement(options_.database, kClickHouseEventsTable),
              RowQueue(options_.queue_max, options_.queue_bytes, options_.batch_records), false},
      metrics_{clickhouse_insert_statement(options_.database, kClickHouseMetricsTable),
               RowQueue(options_.queue_max, options_.queue_bytes, options_.batch_records), true},
      backoff_(kFirstBackoff) {
  writer_ = std::thread([this] {
    pthread_setname_np(pthread_self(), "ea-clickhouse");
    run();
  });
}

ClickHouseSink::~ClickHouseSink() { stop(); }

std::string ClickHouseSink::name() const {
  return "clickhouse:" + options_.connection.url + ",database=" + options_.database;
}

void ClickHouseSink::write(const RecordBatch& batch, std::string_view jsonl) {
  (void)jsonl;  // rows have their own shape (typed columns, data as a string)
  if (batch.records.empty()) return;
  thread_local std::string rows;
  rows.clear();
  const RecordOrigin* rendered_origin = nullptr;
  std::string origin_fields;
  for (const Record& record : batch.records) {
    if (origin_fields.empty() || record.origin != rendered_origin) {
      rendered_origin = record.origin;
      origin_fields = clickhouse_origin_fields(record.origin, host_name());
    }
    append_event_row(record, batch.fields(record), origin_fields, rows);
  }
  queue_rows(events_, rows, batch.records.size());
}

void ClickHouseSink::write_metrics(const MetricsSnapshot& snapshot) {
  std::string rows;
  uint64_t count = 0;
  for (const MetricFamily& family : snapshot.families) {
    for (const MetricSeries& series : family.series) {
      append_metric_row(family, series, snapshot.time_ns, host_name(), rows);
      ++count;
    }
  }
  if (count > 0) queue_rows(metrics_, rows, count);
}

void ClickHouseSink::queue_rows(Table& table, std::string_view rows, uint64_t count) {
  uint64_t dropped;
  bool closed;
  {
    std::lock_guard lock(mutex_);
    closed = closed_;
    if (closed) {
      dropped = count;
    } else {
      bool was_empty = !table.queue.has_waiting();
      dropped = table.queue.push(rows, count, Clock::now());
      // The writer sleeps without a deadline while nothing waits: the first row sets its flush timer.
      if (was_empty || table.queue.waiting_rows() >= options_.batch_records) wake_.notify_one();
    }
  }
  if (dropped > 0) note_dropped(table, dropped, closed ? "the output is stopped" : "the queue is full");
}

void ClickHouseSink::note_dropped(const Table& table, uint64_t rows, std::string_view why) {
  (table.metrics ? counters_.metric_failures : counters_.failures).fetch_add(rows, std::memory_order_relaxed);
  std::lock_guard lock(mutex_);
  dropped_since_log_ += rows;
  int64_t now = static_cast<int64_t>(wall_clock_ns());
  if (now - last_drop_log_ns_ < kLogIntervalNs) return;
  last_drop_log_ns_ = now;
  spdlog::warn("clickhouse output {}: dropped {} rows ({}; queue_max={} rows, queue_bytes={} per table); "
               "{} records and {} metric samples lost so far",
               options_.connection.url, dropped_since_log_, why, options_.queue_max, options_.queue_bytes,
               counters_.failures.load(), counters_.metric_failures.load());
  dropped_since_log_ = 0;
}

void ClickHouseSink::log_failure_locked(std::string_view message) {
  int64_t now = static_cast<int64_t>(wall_clock_ns());
  if (now - last_failure_log_ns_ < kLogIntervalNs) return;
  last_failure_log_ns_ = now;
  spdlog::error("clickhouse output {}: {} ({} events and {} metric samples waiting; retrying in {} ms)",
                options_.connection.url, message, events_.queue.rows(), metrics_.queue.rows(),
                std::chrono::duration_cast<std::chrono::milliseconds>(backoff_).count());
}

uint64_t ClickHouseSink::queue_depth() const {
  std::lock_guard lock(mutex_);
  return events_.queue.rows() + metrics_.queue.rows();
}

void ClickHouseSink::flush() {
  std::unique_lock lock(mutex_);
  if (closed_) return;
  uint64_t ticket = ++flush_requested_;
  wake_.notify_one();
  flushed_.wait_for(lock, options_.connection.timeout * 2,
                    [&] { return flush_served_ >= ticket || closed_; });
}

void ClickHouseSink::stop() {
  std::lock_guard stop_lock(stop_mutex_);
  {
    std::lock_guard lock(mutex_);
    if (!stopping_) {
      stopping_ = true;
      stop_deadline_ = Clock::now() + kStopGrace;
    }
  }
  wake_.notify_all();
  if (writer_.joinable()) writer_.join();
}

// Waits until something should be sent (true) or the writer should exit (false).
bool ClickHouseSink::wait_for_work(std::unique_lock<std::mutex>& lock) {
  for (;;) {
    auto now = Clock::now();
    bool waiting = events_.queue.has_waiting() || metrics_.queue.has_waiting();
    if (flush_served_ < flush_requested_ && !waiting) {
      flush_served_ = flush_requested_;
      flushed_.notify_all();
    }
    if (stopping_ && (!waiting || now >= stop_deadline_)) return false;
    bool urgent = stopping_ || flush_served_ < flush_requested_;
    auto due = std::min(events_.queue.due_at(options_.batch_records, options_.flush),
                        metrics_.queue.due_at(options_.batch_records, options_.flush));
    if (urgent && waiting) due = now;
    if (waiting && now >= retry_at_ && now >= due) return true;
    auto until = std::max(due, retry_at_);
    if (stopping_) until = std::min(until, stop_deadline_);
    if (until == Clock::time_point::max())
      wake_.wait(lock);
    else
      wake_.wait_until(lock, until);
  }
}

ClickHouseSink::Delivery ClickHouseSink::deliver(ClickHouseClient& client, const Table& table,
                                                 const std::vector<RowChunk>& chunks, uint64_t& body_bytes,
                                                 std::string& error) {
  if (chunks.empty()) return Delivery::Sent;
  if (!schema_ready_) {
    for (const std::string& statement : clickhouse_schema_statements(options_.database)) {
      auto created = client.execute(statement);
      if (!created) {
        error = "creating database '" + options_.database + "' and its tables: " + created.error().message;
        return Delivery::Retry;
      }
    }
    schema_ready_ = true;
  }
  std::string joined;
  std::string_view body;
  if (chunks.size() == 1) {
    body = chunks.front().text;
  } else {
    for (const RowChunk& chunk : chunks) joined += chunk.text;
    body = joined;
  }
  body_bytes = body.size();
  auto inserted = client.execute_with_data(table.insert, body);
  if (inserted) return Delivery::Sent;
  error = inserted.error().message;
  if (inserted.error().schema_missing()) {
    schema_ready_ = false;  // dropped behind our back: create it again on the next attempt
    return Delivery::Retry;
  }
  return inserted.error().rows_rejected() ? Delivery::Rejected : Delivery::Retry;
}

void ClickHouseSink::apply_retention(ClickHouseClient& client) {
  if (options_.retention.count() == 0 || !schema_ready_) return;
  auto now = Clock::now();
  if (now < next_retention_at_) return;
  next_retention_at_ = now + kRetentionInterval;
  uint64_t now_seconds = wall_clock_ns() / 1'000'000'000ull;
  uint64_t retention_seconds = static_cast<uint64_t>(options_.retention.count()) / 1000;
  uint64_t cutoff = now_seconds > retention_seconds ? now_seconds - retention_seconds : 0;
  for (std::string_view table : {kClickHouseEventsTable, kClickHouseMetricsTable}) {
    auto dropped = drop_expired_partitions(client, options_.database, table, cutoff);
    if (!dropped)
      spdlog::warn("clickhouse output {}: retention: {} (tried again in an hour)", options_.connection.url,
                   dropped.error().message);
    else if (*dropped > 0)
      spdlog::info("clickhouse output {}: retention: dropped {} day partitions of {}.{}", options_.connection.url,
                   *dropped, options_.database, table);
  }
}

void ClickHouseSink::run() {
  ClickHouseClient client(options_.connection);
  std::unique_lock lock(mutex_);
  while (wait_for_work(lock)) {
    uint64_t serving = flush_requested_;
    Table* tables[] = {&events_, &metrics_};
    std::vector<RowChunk> taken[2];
    for (int i = 0; i < 2; ++i) taken[i] = tables[i]->queue.take(options_.batch_records);
    lock.unlock();
    Delivery outcome[2];
    uint64_t bytes[2] = {0, 0};
    std::string error[2];
    for (int i = 0; i < 2; ++i) outcome[i] = deliver(client, *tables[i], taken[i], bytes[i], error[i]);
    apply_retention(client);
    lock.lock();

    bool retry = false;
    for (int i = 0; i < 2; ++i) {
      Table& table = *tables[i];
      uint64_t rows = 0;
      for (const RowChunk& chunk : taken[i]) rows += chunk.rows;
      switch (outcome[i]) {
        case Delivery::Sent:
          table.queue.commit(taken[i]);
          if (rows == 0) break;
          (table.metrics ? counters_.metric_samples : counters_.records).fetch_add(rows, std::memory_order_relaxed);
          if (!table.metrics) counters_.bytes.fetch_add(bytes[i], std::memory_order_relaxed);  // bytes of records
          break;
        case Delivery::Rejected:
          table.queue.commit(taken[i]);
          (table.metrics ? counters_.metric_failures : counters_.failures).fetch_add(rows, std::memory_order_relaxed);
          // Not rate-limited away: each rejection loses rows, and says why.
          spdlog::error("clickhouse output {}: the server refused {} {}; they are dropped: {}", options_.connection.url,
                        rows, table.metrics ? "metric samples" : "records", error[i]);
          break;
        case Delivery::Retry:
          table.queue.restore(std::move(taken[i]));
          if (!retry) log_failure_locked(error[i]);
          retry = true;
          break;
      }
    }
    auto now = Clock::now();
    if (retry) {
      failing_ = true;
      retry_at_ = now + backoff_;
      backoff_ = std::min<Clock::duration>(backoff_ * 2, kMaxBackoff);
    } else {
      if (failing_)
        spdlog::info("clickhouse output {}: writing again ({} records, {} metric samples lost so far)",
                     options_.connection.url, counters_.failures.load(), counters_.metric_failures.load());
      failing_ = false;
      retry_at_ = now;
      backoff_ = kFirstBackoff;
    }
    // A flush is answered once everything queued went out, or as soon as an attempt failed.
    bool waiting = events_.queue.has_waiting() || metrics_.queue.has_waiting();
    if (flush_served_ < serving && (retry || !waiting)) {
      flush_served_ = serving;
      flushed_.notify_all();
    }
  }
  closed_ = true;
  uint64_t lost_events = events_.queue.clear();
  uint64_t lost_samples = metrics_.queue.clear();
  counters_.failures.fetch_add(lost_events, std::memory_order_relaxed);
  counters_.metric_failures.fetch_add(lost_samples, std::memory_order_relaxed);
  flushed_.notify_all();
  if (lost_events + lost_samples > 0)
    spdlog::error("clickhouse output {}: stopped with {} records and {} metric samples unsent (lost)",
                  options_.connection.url, lost_events, lost_samples);
}

}  // namespace ea
