#include "tsdb/tsdb_sink.h"

#include <pthread.h>

#include <spdlog/spdlog.h>

#include "tsdb/tsdb_defaults.h"

namespace ea::tsdb {

namespace {

constexpr int64_t kProblemLogIntervalNs = 60'000'000'000;

uint64_t sample_count(const MetricsSnapshot& snapshot) {
  uint64_t samples = 0;
  for (const MetricFamily& family : snapshot.families) {
    if (family.kind != MetricKind::Histogram) {
      samples += family.series.size();
      continue;
    }
    for (const MetricSeries& series : family.series) samples += series.histogram.bounds.size() + 3;
  }
  return samples;
}

// What a snapshot costs in the queue, roughly: its strings and numbers.
uint64_t snapshot_bytes(const MetricsSnapshot& snapshot) {
  uint64_t bytes = sizeof(MetricsSnapshot);
  for (const MetricFamily& family : snapshot.families) {
    bytes += sizeof(MetricFamily) + family.name.size() + family.help.size() + family.unit.size() + family.spec.size();
    for (const MetricSeries& series : family.series) {
      bytes += sizeof(MetricSeries) + series.histogram.bounds.size() * 8 + series.histogram.counts.size() * 8;
      for (const auto& [name, value] : series.labels) bytes += 64 + name.size() + value.size();
    }
  }
  return bytes;
}

int64_t wall_ms() { return static_cast<int64_t>(wall_clock_ns() / 1'000'000); }

}  // namespace

Result<std::unique_ptr<TsdbSink>> TsdbSink::open(TsdbSinkOptions options, ChunkLimits limits) {
  auto writer = TsdbWriter::open(options.writer, limits);
  if (!writer) return std::unexpected(Error{"tsdb output: " + writer.error().message});
  if (auto retained = (*writer)->enforce_retention(wall_ms()); !retained)
    spdlog::warn("tsdb output {}: retention: {}", options.writer.dir, retained.error().message);
  std::unique_ptr<TsdbSink> sink(new TsdbSink(std::move(options), std::move(*writer)));
  sink->thread_ = std::thread([raw = sink.get()] { raw->run(); });
  return sink;
}

TsdbSink::TsdbSink(TsdbSinkOptions options, std::unique_ptr<TsdbWriter> writer)
    : options_(std::move(options)), writer_(std::move(writer)) {}

TsdbSink::~TsdbSink() { stop(); }

std::optional<std::string> TsdbSink::enqueue(Item item) {
  std::lock_guard lock(mutex_);
  if (stopping_) return std::string("the output is stopped");
  if (queued_bytes_ + item.bytes > options_.queue_bytes)
    return fmt::format("queue full ({} bytes; the disk is slower than the data, or raise queue=)", options_.queue_bytes);
  queued_bytes_ += item.bytes;
  queued_count_ += item.count;
  queue_.push_back(std::move(item));
  wake_.notify_one();
  return std::nullopt;
}

void TsdbSink::write(const RecordBatch& batch, std::string_view jsonl) {
  if (batch.records.empty()) return;
  EventItem event;
  event.jsonl.assign(jsonl);
  event.times.reserve(batch.records.size());
  event.spec_of_record.reserve(batch.records.size());
  const RecordOrigin* last_origin = nullptr;
  for (const Record& record : batch.records) {
    if (event.specs.empty() || record.origin != last_origin) {
      event.specs.push_back(record.origin ? record.origin->spec : std::string());
      last_origin = record.origin;
    }
    event.times.push_back(record.time_ns);
    event.spec_of_record.push_back(static_cast<uint32_t>(event.specs.size() - 1));
  }
  uint64_t records = batch.records.size();
  uint64_t bytes = jsonl.size() + records * 12 + 128;
  if (auto refused = enqueue(Item{std::move(event), bytes, records})) {
    counters_.failures.fetch_add(records, std::memory_order_relaxed);
    note_problem(fmt::format("{}: {} records dropped", *refused, records));
  }
}

void TsdbSink::write_metrics(const MetricsSnapshot& snapshot) {
  uint64_t samples = sample_count(snapshot);
  if (samples == 0) return;
  uint64_t bytes = snapshot_bytes(snapshot);
  if (auto refused = enqueue(Item{snapshot, bytes, samples})) {
    counters_.metric_failures.fetch_add(samples, std::memory_order_relaxed);
    note_problem(fmt::format("{}: {} samples dropped", *refused, samples));
  }
}

uint64_t TsdbSink::queue_depth() const {
  std::lock_guard lock(mutex_);
  return queued_count_ + in_progress_count_;
}

uint64_t TsdbSink::queued() const {
  std::lock_guard lock(mutex_);
  return queued_count_;
}

void TsdbSink::note_problem(const std::string& message) {
  std::lock_guard lock(mutex_);
  int64_t now = static_cast<int64_t>(wall_clock_ns());
  if (now - last_problem_log_ns_ < kProblemLogIntervalNs) {
    ++problems_since_log_;
    return;
  }
  if (problems_since_log_ > 0)
    spdlog::warn("tsdb output {}: {} (and {} more problems in the last minute)", options_.writer.dir, message, problems_since_log_);
  else
    spdlog::warn("tsdb output {}: {}", options_.writer.dir, message);
  last_problem_log_ns_ = now;
  problems_since_log_ = 0;
}

void TsdbSink::append(Item& item) {
  if (auto* snapshot = std::get_if<MetricsSnapshot>(&item.payload)) {
    AppendResult appended = writer_->append_metrics(*snapshot);
    if (appended.rejected > 0) {
      counters_.metric_failures.fetch_add(appended.rejected, std::memory_order_relaxed);
      note_problem(fmt::format("{} samples not newer than their series' last sample (clock stepped back?) were dropped",
                               appended.rejected));
    }
    return;
  }
  auto& event = std::get<EventItem>(item.payload);
  std::string_view rest = event.jsonl;
  size_t index = 0;
  while (!rest.empty() && index < event.times.size()) {
    size_t newline = rest.find('\n');
    std::string_view line = rest.substr(0, newline);
    writer_->append_event(event.times[index], event.specs[event.spec_of_record[index]], line);
    ++index;
    rest.remove_prefix(newline == std::string_view::npos ? rest.size() : newline + 1);
  }
  if (index < event.times.size()) {
    counters_.failures.fetch_add(event.times.size() - index, std::memory_order_relaxed);
    note_problem(fmt::format("a batch of {} records came with {} JSON lines; the rest were dropped", event.times.size(), index));
  }
}

void TsdbSink::commit() {
  auto committed = writer_->commit();
  if (committed) {
    counters_.records.fetch_add(committed->records, std::memory_order_relaxed);
    counters_.bytes.fetch_add(committed->bytes, std::memory_order_relaxed);
    counters_.metric_samples.fetch_add(committed->samples, std::memory_order_relaxed);
  } else {
    note_problem(fmt::format("commit failed, retrying at the next flush: {}", committed.error().message));
  }
  Losses losses = writer_->take_losses();
  if (losses.records + losses.samples > 0) {
    counters_.failures.fetch_add(losses.records, std::memory_order_relaxed);
    counters_.metric_failures.fetch_add(losses.samples, std::memory_order_relaxed);
    note_problem(fmt::format("commits keep failing: {} records and {} samples dropped to bound memory", losses.records,
                             losses.samples));
  }
}

void TsdbSink::run() {
  pthread_setname_np(pthread_self(), "ea-tsdb");
  using Clock = std::chrono::steady_clock;
  auto next_flush = Clock::now() + options_.flush_interval;
  auto next_retention = Clock::now() + options_.retention_check_interval;
  std::unique_lock lock(mutex_);
  while (true) {
    wake_.wait_until(lock, next_flush, [&] { return !queue_.empty() || stopping_ || flush_requested_ != flush_done_; });
    std::deque<Item> items;
    items.swap(queue_);
    uint64_t flush_ticket = flush_requested_;
    bool stop = stopping_;
    in_progress_count_ += queued_count_;
    queued_count_ = 0;
    queued_bytes_ = 0;
    lock.unlock();

    for (Item& item : items) append(item);
    items.clear();
    auto now = Clock::now();
    bool commit_now = now >= next_flush || flush_ticket != flush_done_ || stop;
    if (commit_now) {
      commit();
      next_flush = now + options_.flush_interval;
    }
    if (now >= next_retention) {
      next_retention = now + options_.retention_check_interval;
      auto retained = writer_->enforce_retention(wall_ms());
      if (!retained)
        note_problem("retention: " + retained.error().message);
      else if (retained->over_size)
        note_problem(fmt::format("over max_size={} with only data still being written left", options_.writer.max_size));
      else if (retained->chunks_deleted + retained->blocks_deleted > 0)
        spdlog::debug("tsdb output {}: retention deleted {} chunks, {} event blocks, {} series; released {} pages",
                      options_.writer.dir, retained->chunks_deleted, retained->blocks_deleted, retained->series_deleted,
                      retained->pages_released);
    }
    lock.lock();
    if (commit_now) {
      in_progress_count_ = writer_->uncommitted_samples() + writer_->uncommitted_records();
      flush_done_ = flush_ticket;
      flushed_.notify_all();
    }
    if (stop && queue_.empty()) break;
  }
}

void TsdbSink::flush() {
  std::unique_lock lock(mutex_);
  if (stopped_ || !thread_.joinable()) return;
  uint64_t ticket = ++flush_requested_;
  wake_.notify_one();
  flushed_.wait(lock, [&] { return flush_done_ >= ticket || stopped_; });
}

void TsdbSink::stop() {
  {
    std::lock_guard lock(mutex_);
    if (stopped_) return;
    stopping_ = true;
  }
  wake_.notify_one();
  if (thread_.joinable()) thread_.join();
  std::lock_guard lock(mutex_);
  stopped_ = true;
  flushed_.notify_all();
  writer_.reset();  // closes the database and releases the store lock
}

Result<std::unique_ptr<Sink>> make_tsdb_sink(const OutputDescription& output) {
  if (auto checked = output.check_options({"retention", "max_size", "flush", "queue"}, kTsdbUsage); !checked)
    return std::unexpected(checked.error());
  TsdbSinkOptions options;
  options.writer.dir = output.target.empty() ? std::string(kDefaultTsdbDir) : output.target;
  auto retention = output.duration_option("retention", kDefaultRetention);
  auto max_size = output.size_option("max_size", kDefaultMaxSize);
  auto flush = output.duration_option("flush", kDefaultFlushInterval);
  auto queue = output.size_option("queue", kDefaultQueueBytes);
  for (const Error* error : {retention ? nullptr : &retention.error(), max_size ? nullptr : &max_size.error(),
                             flush ? nullptr : &flush.error(), queue ? nullptr : &queue.error()})
    if (error) return std::unexpected(*error);
  if (flush->count() <= 0) return failf("output '{}': flush must be more than 0 (e.g. flush=5s)", output.text);
  if (*queue < 4096) return failf("output '{}': queue must be at least 4K (e.g. queue=64M)", output.text);
  options.writer.retention = *retention;
  options.writer.max_size = *max_size;
  options.flush_interval = *flush;
  options.queue_bytes = *queue;
  auto sink = TsdbSink::open(std::move(options));
  if (!sink) return std::unexpected(sink.error());
  spdlog::info("tsdb output: {} (retention {}, max_size {}, flush every {} ms)", output.target.empty() ? kDefaultTsdbDir : output.target,
               retention->count() ? output.option("retention", "15d") : "forever",
               *max_size ? output.option("max_size", "1G") : "unbounded", flush->count());
  return std::unique_ptr<Sink>(std::move(*sink));
}

}  // namespace ea::tsdb
