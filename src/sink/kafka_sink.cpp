#include "sink/kafka_sink.h"

#include <poll.h>
#include <pthread.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <cerrno>
#include <charconv>
#include <cstring>
#include <vector>

#include <spdlog/spdlog.h>

#include "metrics/metric_json.h"
#include "sink/kafka_spool_frame.h"

namespace ea {

namespace {

constexpr int64_t kLogIntervalNs = 10'000'000'000;  // repeated warnings: at most one per 10 s
constexpr auto kSyncInterval = std::chrono::seconds(1);  // spool data and cursor made durable
constexpr int kIdleWaitMs = 200;

bool due(int64_t& last_ns) {
  auto now = static_cast<int64_t>(wall_clock_ns());
  if (last_ns != 0 && now - last_ns < kLogIntervalNs) return false;
  last_ns = now;
  return true;
}

void append_key(std::string& out, std::string_view host, int64_t process) {
  out += host;
  if (process < 0) return;
  out += '/';
  char digits[24];
  auto result = std::to_chars(digits, digits + sizeof(digits), process);
  out.append(digits, result.ptr);
}

std::string size_text(uint64_t bytes) {
  if (bytes >= (1ull << 30) && bytes % (1ull << 30) == 0) return fmt::format("{}G", bytes >> 30);
  if (bytes >= (1ull << 20) && bytes % (1ull << 20) == 0) return fmt::format("{}M", bytes >> 20);
  if (bytes >= (1ull << 10) && bytes % (1ull << 10) == 0) return fmt::format("{}K", bytes >> 10);
  return std::to_string(bytes);
}

}  // namespace

Result<std::unique_ptr<Sink>> make_kafka_sink(const OutputDescription& output) {
  auto options = parse_kafka_options(output);
  if (!options) return std::unexpected(options.error());
  auto sink = KafkaSink::open(std::move(*options));
  if (!sink) return std::unexpected(sink.error());
  return std::unique_ptr<Sink>(std::move(*sink));
}

// Messages name the output by kind and brokers; the full description is long and repeats options.
KafkaSink::KafkaSink(KafkaSinkOptions options)
    : options_(std::move(options)), context_(fmt::format("output 'kafka:{}'", options_.brokers)) {}

Result<std::unique_ptr<KafkaSink>> KafkaSink::open(KafkaSinkOptions options) {
  std::unique_ptr<KafkaSink> sink(new KafkaSink(std::move(options)));
  sink->wake_fd_ = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  if (sink->wake_fd_ < 0) return failf("{}: eventfd: {}", sink->context_, strerror(errno));
  auto spool = KafkaSpool::open(KafkaSpoolOptions{.dir = sink->options_.spool_dir,
                                                  .max_bytes = sink->options_.spool_max_bytes});
  if (!spool) return std::unexpected(with_context(spool.error(), sink->context_));
  sink->spool_ = std::move(*spool);
  auto producer = KafkaProducer::create(sink->options_, sink->context_, sink->wake_fd_, *sink);
  if (!producer) return std::unexpected(producer.error());
  sink->producer_ = std::move(*producer);

  const KafkaSpoolStats& stats = sink->spool_->stats();
  spdlog::info("{}: topics {} and {}, spool {} (at most {})", sink->context_,
               sink->producer_->topic(KafkaDataKind::events), sink->producer_->topic(KafkaDataKind::metrics),
               sink->options_.spool_dir, size_text(sink->options_.spool_max_bytes));
  if (stats.earlier_run_records > 0)
    spdlog::info("{}: replaying {} records ({} bytes) left in the spool by an earlier run, before new ones",
                 sink->context_, stats.earlier_run_records, stats.bytes);
  sink->feeder_ = std::thread([raw = sink.get()] { raw->run(); });
  return sink;
}

KafkaSink::~KafkaSink() {
  stop();
  producer_.reset();
  spool_.reset();
  if (wake_fd_ >= 0) close(wake_fd_);
}

void KafkaSink::wake() {
  uint64_t one = 1;
  (void)!::write(wake_fd_, &one, sizeof(one));
}

void KafkaSink::write(const RecordBatch& batch, std::string_view jsonl) {
  thread_local std::string keys;
  thread_local std::vector<size_t> key_ends;
  thread_local std::vector<SpoolEntry> entries;
  keys.clear();
  key_ends.clear();
  entries.clear();
  const std::string& host = host_name();
  for (const Record& record : batch.records) {
    append_key(keys, host, record.tgid >= 0 ? record.tgid : record.pid);
    key_ends.push_back(keys.size());
  }
  size_t line_start = 0;
  for (size_t i = 0; i < batch.records.size(); ++i) {
    size_t line_end = jsonl.find('\n', line_start);
    if (line_end == std::string_view::npos) break;
    size_t key_start = i == 0 ? 0 : key_ends[i - 1];
    entries.push_back(SpoolEntry{.kind = KafkaDataKind::events,
                                 .time_ns = batch.records[i].time_ns,
                                 .key = std::string_view(keys).substr(key_start, key_ends[i] - key_start),
                                 .value = jsonl.substr(line_start, line_end - line_start)});
    line_start = line_end + 1;
  }
  if (entries.size() < batch.records.size()) {
    // The envelope renders one line per record; fewer lines is a bug upstream, counted as lost.
    uint64_t missing = batch.records.size() - entries.size();
    counters_.failures.fetch_add(missing, std::memory_order_relaxed);
    failed_events_.fetch_add(missing, std::memory_order_relaxed);
    spdlog::error("{}: a batch of {} records came with {} JSON lines; {} records lost", context_,
                  batch.records.size(), entries.size(), missing);
  }
  append(KafkaDataKind::events, entries);
}

void KafkaSink::write_metrics(const MetricsSnapshot& snapshot) {
  std::string values;
  std::vector<size_t> value_ends;
  const std::string& host = host_name();
  for (const MetricFamily& family : snapshot.families)
    for (const MetricSeries& series : family.series) {
      append_metric_json(family, series, snapshot.time_ns, host, values);
      value_ends.push_back(values.size());
    }
  std::vector<SpoolEntry> entries;
  entries.reserve(value_ends.size());
  size_t start = 0;
  for (size_t end : value_ends) {
    entries.push_back(SpoolEntry{.kind = KafkaDataKind::metrics,
                                 .time_ns = snapshot.time_ns,
                                 .key = host,
                                 .value = std::string_view(values).substr(start, end - start)});
    start = end;
  }
  append(KafkaDataKind::metrics, entries);
}

void KafkaSink::append(KafkaDataKind kind, std::span<SpoolEntry> entries) {
  if (entries.empty()) return;
  {
    std::lock_guard lock(mutex_);
    // Records beyond what librdkafka may hold right now wait in the spool: Kafka is behind.
    uint64_t ahead = spool_->stats().unread + in_flight_count_.load(std::memory_order_relaxed);
    uint64_t waiting = 0;
    for (size_t i = 0; i < entries.size(); ++i)
      if (ahead + i >= options_.queue_max_records) {
        entries[i].flags |= kSpoolFlagWaited;
        ++waiting;
      }
    SpoolAppendOutcome outcome = spool_->append(entries);
    spooled_.fetch_add(std::min<uint64_t>(waiting, outcome.written), std::memory_order_relaxed);
    if (outcome.over_bound > 0 || outcome.failed > 0) note_refused(kind, outcome);
  }
  wake();
}

void KafkaSink::note_refused(KafkaDataKind kind, const SpoolAppendOutcome& outcome) {
  uint64_t refused = outcome.over_bound + outcome.failed;
  if (kind == KafkaDataKind::metrics) {
    counters_.metric_failures.fetch_add(refused, std::memory_order_relaxed);
    dropped_metric_samples_.fetch_add(outcome.over_bound, std::memory_order_relaxed);
  } else {
    counters_.failures.fetch_add(refused, std::memory_order_relaxed);
    dropped_events_.fetch_add(outcome.over_bound, std::memory_order_relaxed);
  }
  if (!due(last_drop_log_ns_)) return;
  if (outcome.over_bound > 0)
    spdlog::warn("{}: the spool {} is full (spool_max_bytes={}): {} events and {} metric samples dropped so far; "
                 "Kafka is unreachable or slower than the agent (check the brokers, or raise spool_max_bytes)",
                 context_, options_.spool_dir, size_text(options_.spool_max_bytes), dropped_events_.load(),
                 dropped_metric_samples_.load());
  if (outcome.failed > 0)
    spdlog::error("{}: {} {} could not be spooled and are lost: {}", context_, outcome.failed,
                  kind == KafkaDataKind::metrics ? "metric samples" : "events", outcome.error);
}

uint64_t KafkaSink::queue_depth() const {
  std::lock_guard lock(mutex_);
  return spool_->stats().records;
}

KafkaSpoolCounters KafkaSink::spool_counters() const {
  std::lock_guard lock(mutex_);
  const KafkaSpoolStats& stats = spool_->stats();
  KafkaSpoolCounters counters;
  counters.spooled = spooled_.load();
  counters.replayed = replayed_.load();
  counters.dropped_events = dropped_events_.load();
  counters.dropped_metric_samples = dropped_metric_samples_.load();
  counters.dropped_over_bound = counters.dropped_events + counters.dropped_metric_samples;
  counters.spool_write_failures = stats.write_failures;
  counters.spool_bytes = stats.bytes;
  counters.spool_records = stats.records;
  counters.corrupt_bytes_skipped = stats.corrupt_bytes_skipped;
  counters.producer_restarts = producer_restarts_.load();
  return counters;
}

void KafkaSink::inject_fatal_error_for_test() {
  test_fatal_requested_ = true;
  wake();
}

void KafkaSink::flush() { sync_spool(); }

void KafkaSink::sync_spool() {
  std::lock_guard sync_lock(sync_mutex_);
  SpoolSyncPlan plan;
  {
    std::lock_guard lock(mutex_);
    plan = spool_->plan_sync();
  }
  if (auto synced = KafkaSpool::run_sync(plan); !synced) {
    spdlog::warn("{}: {}", context_, synced.error().message);
    std::lock_guard lock(mutex_);
    spool_->retry_cursor();
  }
}

void KafkaSink::stop() {
  std::lock_guard stop_lock(stop_mutex_);
  {
    std::lock_guard lock(mutex_);
    if (!stop_requested_) {
      stop_requested_ = true;
      stop_deadline_ = std::chrono::steady_clock::now() + options_.stop_timeout;
    }
  }
  wake();
  if (feeder_.joinable()) {
    feeder_.join();
    log_summary();
  }
}

// The feeding thread: spool -> librdkafka in order, delivery reports -> spool commits.
void KafkaSink::run() {
  pthread_setname_np(pthread_self(), "ea-kafka");
  auto last_sync = std::chrono::steady_clock::now();
  while (true) {
    auto now = std::chrono::steady_clock::now();
    {
      std::lock_guard lock(mutex_);
      if (stop_requested_ && (spool_->stats().records == 0 || now >= stop_deadline_)) break;
    }
    if (now - last_sync >= kSyncInterval) {
      sync_spool();
      last_sync = now;
    }
    if (test_fatal_requested_.exchange(false) && producer_) producer_->raise_test_fatal_error();
    if (producer_failed_) restart_producer();
    feed_producer();
    pollfd waiting{.fd = wake_fd_, .events = POLLIN, .revents = 0};
    poll(&waiting, 1, kIdleWaitMs);
    uint64_t count;
    (void)!::read(wake_fd_, &count, sizeof(count));
    if (producer_) producer_->poll();
    retire_delivered();
  }
  finish();
}

void KafkaSink::feed_producer() {
  if (!producer_ || producer_failed_) return;
  std::unique_lock lock(mutex_);
  size_t fed = 0;
  while (in_flight_.size() < options_.queue_max_records) {
    if (++fed % 1024 == 0) {  // let writers append between chunks
      lock.unlock();
      lock.lock();
    }
    auto record = spool_->read_next();
    if (!record) break;
    uint64_t id = in_flight_base_ + in_flight_.size();
    rd_kafka_resp_err_t error = producer_->produce(record->kind, record->key, record->value, id);
    if (error == RD_KAFKA_RESP_ERR__QUEUE_FULL || error == RD_KAFKA_RESP_ERR__FATAL) {
      spool_->unread(*record);  // retried once librdkafka has room, or by a new producer
      if (error == RD_KAFKA_RESP_ERR__FATAL) producer_failed_ = true;
      break;
    }
    InFlight entry{.end = record->end,
                   .kind = record->kind,
                   .replay = (record->flags & kSpoolFlagWaited) != 0 || record->from_earlier_run};
    in_flight_.push_back(entry);
    if (error != RD_KAFKA_RESP_ERR_NO_ERROR) on_delivery(id, error, record->kind, record->value.size());
  }
  in_flight_count_.store(in_flight_.size(), std::memory_order_relaxed);
}

void KafkaSink::on_delivery(uint64_t id, rd_kafka_resp_err_t error, KafkaDataKind kind, size_t bytes) {
  if (id < in_flight_base_ || id - in_flight_base_ >= in_flight_.size()) return;  // from a discarded producer
  InFlight& entry = in_flight_[id - in_flight_base_];
  bool metrics = kind == KafkaDataKind::metrics;
  if (error == RD_KAFKA_RESP_ERR_NO_ERROR) {
    entry.state = InFlight::State::delivered;
    (metrics ? counters_.metric_samples : counters_.records).fetch_add(1, std::memory_order_relaxed);
    (metrics ? delivered_metric_samples_ : delivered_events_).fetch_add(1, std::memory_order_relaxed);
    counters_.bytes.fetch_add(bytes, std::memory_order_relaxed);
    if (entry.replay) replayed_.fetch_add(1, std::memory_order_relaxed);
    if (brokers_down_) {
      brokers_down_ = false;
      auto seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - brokers_down_since_).count();
      spdlog::info("{}: Kafka takes records again (brokers were down for {:.1f} s); the spool is sent in order",
                   context_, seconds);
    }
    return;
  }
  if (error == RD_KAFKA_RESP_ERR__PURGE_QUEUE || error == RD_KAFKA_RESP_ERR__PURGE_INFLIGHT) {
    entry.state = InFlight::State::purged;  // still in the spool: sent again by the next producer or run
    return;
  }
  if (error == RD_KAFKA_RESP_ERR__FATAL) {
    producer_failed_ = true;
    return;
  }
  // Kafka refused it for good (too large, topic missing or forbidden): resending cannot help.
  entry.state = InFlight::State::failed;
  (metrics ? counters_.metric_failures : counters_.failures).fetch_add(1, std::memory_order_relaxed);
  (metrics ? failed_metric_samples_ : failed_events_).fetch_add(1, std::memory_order_relaxed);
  if (due(last_failure_log_ns_)) {
    std::string_view hint;
    if (error == RD_KAFKA_RESP_ERR__UNKNOWN_TOPIC || error == RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART)
      hint = " (create the topic, or let the brokers create topics: auto.create.topics.enable=true)";
    else if (error == RD_KAFKA_RESP_ERR_MSG_SIZE_TOO_LARGE)
      hint = " (raise rdkafka.message.max.bytes and the topic's max.message.bytes)";
    spdlog::error("{}: Kafka refused a record for {}: {}{}; it is dropped ({} events, {} metric samples so far)",
                  context_, producer_ ? producer_->topic(kind) : std::string(kafka_kind_name(kind)),
                  rd_kafka_err2str(error), hint, failed_events_.load(), failed_metric_samples_.load());
  }
}

void KafkaSink::on_error(rd_kafka_resp_err_t error, std::string_view reason) {
  if (error == RD_KAFKA_RESP_ERR__FATAL) {
    producer_failed_ = true;
    return;
  }
  if (error == RD_KAFKA_RESP_ERR__ALL_BROKERS_DOWN) {
    if (!brokers_down_) {
      brokers_down_ = true;
      brokers_down_since_ = std::chrono::steady_clock::now();
      spdlog::warn("{}: all brokers are down ({}); records wait in the spool {} (at most {}) and are sent in order "
                   "when Kafka is back",
                   context_, reason, options_.spool_dir, size_text(options_.spool_max_bytes));
    }
    return;
  }
  // Connection errors are also logged by librdkafka itself; keep this for the rest, rate-limited.
  if (error == RD_KAFKA_RESP_ERR__TRANSPORT || error == RD_KAFKA_RESP_ERR__RESOLVE) return;
  if (due(last_failure_log_ns_)) spdlog::warn("{}: {}: {}", context_, rd_kafka_err2name(error), reason);
}

void KafkaSink::retire_delivered() {
  std::lock_guard lock(mutex_);
  while (!in_flight_.empty()) {
    const InFlight& front = in_flight_.front();
    if (front.state != InFlight::State::delivered && front.state != InFlight::State::failed) break;
    spool_->commit(front.end);
    in_flight_.pop_front();
    ++in_flight_base_;
  }
  in_flight_count_.store(in_flight_.size(), std::memory_order_relaxed);
}

void KafkaSink::restart_producer() {
  if (producer_) {
    spdlog::error("{}: the Kafka producer failed ({}); starting a new one and resending from the spool", context_,
                  producer_->fatal_reason());
    producer_->purge_and_drain(2000);
    retire_delivered();
    producer_.reset();
  }
  {
    std::lock_guard lock(mutex_);
    in_flight_base_ += in_flight_.size();
    in_flight_.clear();
    in_flight_count_.store(0, std::memory_order_relaxed);
    spool_->rewind();
  }
  auto producer = KafkaProducer::create(options_, context_, wake_fd_, *this);
  if (!producer) {
    spdlog::error("{}: {}; retrying in 1 s", context_, producer.error().message);
    std::this_thread::sleep_for(std::chrono::seconds(1));
    return;  // producer_failed_ stays set
  }
  producer_ = std::move(*producer);
  producer_failed_ = false;
  producer_restarts_.fetch_add(1, std::memory_order_relaxed);
}

void KafkaSink::finish() {
  if (producer_) {
    // stop_timeout is over: what librdkafka still holds is dropped from memory; it stays in the
    // spool for the next start.
    producer_->purge_and_drain(0);
    retire_delivered();
    producer_.reset();
  }
  {
    std::lock_guard lock(mutex_);
    in_flight_base_ += in_flight_.size();
    in_flight_.clear();
    in_flight_count_.store(0, std::memory_order_relaxed);
    spool_->rewind();
  }
  sync_spool();
}

void KafkaSink::log_summary() {
  KafkaSpoolCounters spool = spool_counters();
  spdlog::info("{}: stopped: delivered {} events and {} metric samples; dropped over the spool bound: {} events, "
               "{} metric samples; refused by Kafka: {} events, {} metric samples; {} records ({} bytes) left in {} "
               "for the next start",
               context_, delivered_events_.load(), delivered_metric_samples_.load(), spool.dropped_events,
               spool.dropped_metric_samples, failed_events_.load(), failed_metric_samples_.load(), spool.spool_records,
               spool.spool_bytes, options_.spool_dir);
}

}  // namespace ea
