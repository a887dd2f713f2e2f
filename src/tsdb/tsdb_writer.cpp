#include "tsdb/tsdb_writer.h"

#include <algorithm>
#include <chrono>

#include <spdlog/spdlog.h>

#include "tsdb/label_text.h"
#include "tsdb/schema.h"
#include "tsdb/tsdb_defaults.h"

namespace ea::tsdb {

namespace {

// An event block is finished once its JSON reaches this size (zstd works well on a few hundred
// KiB of similar lines) or this many records.
constexpr size_t kBlockRawBytes = 256u << 10;
constexpr size_t kBlockRecords = 16384;
// A block with no record for this long is left as it is on disk; the spec's next record starts a
// new one.
constexpr int64_t kIdleBlockMs = 10 * 60 * 1000;
// What may wait in memory for a commit that keeps failing, before the oldest is dropped.
constexpr size_t kMaxPendingBytes = 64u << 20;
// An open block is written at most this many times (2 minutes at the default flush interval).
constexpr unsigned kMaxBlockRewrites = 24;
// A full checkpoint of the open chunks is due once the sample log since the last one outgrows
// the open chunks (but not below this size), or after ChunkLimits::commits_per_checkpoint.
constexpr uint64_t kMinCheckpointLogBytes = 256u << 10;
// See append_sample: the most a sample time is moved onto its series' steady interval.
constexpr int64_t kMaxTimeToleranceMs = 25;

int64_t steady_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

std::string series_key(int64_t metric_id, std::string_view suffix, std::string_view labels) {
  std::string key = std::to_string(metric_id);
  key.push_back('\x1f');
  key.append(suffix);
  key.push_back('\x1f');
  key.append(labels);
  return key;
}

}  // namespace

struct TsdbWriter::Statements {
  Statement upsert_metric, insert_series, insert_chunk, insert_log, upsert_checkpoint, delete_checkpoint, prune_log,
      upsert_block;
};

Result<std::unique_ptr<TsdbWriter>> TsdbWriter::open(WriterOptions options, ChunkLimits limits) {
  if (options.dir.empty()) return fail("tsdb output: empty directory");
  auto lock = StoreLock::acquire(options.dir);
  if (!lock) return std::unexpected(lock.error());
  auto db = open_store_for_writing(options.dir + "/" + kDatabaseFileName);
  if (!db) return std::unexpected(db.error());
  std::unique_ptr<TsdbWriter> writer(new TsdbWriter(std::move(options), limits, std::move(*lock), std::move(*db)));
  if (auto prepared = writer->prepare_statements(); !prepared) return std::unexpected(prepared.error());
  if (auto loaded = writer->load_state(); !loaded) return std::unexpected(loaded.error());
  return writer;
}

TsdbWriter::TsdbWriter(WriterOptions options, ChunkLimits limits, StoreLock lock, Database db)
    : options_(std::move(options)), limits_(limits), lock_(std::move(lock)), db_(std::move(db)) {}

// Statements go before the connection they belong to.
TsdbWriter::~TsdbWriter() { statements_.reset(); }

Result<void> TsdbWriter::prepare_statements() {
  statements_ = std::make_unique<Statements>();
  struct Entry {
    Statement* statement;
    const char* sql;
  };
  for (const Entry& entry : std::initializer_list<Entry>{
           {&statements_->upsert_metric,
            "INSERT INTO metrics(id, name, kind, unit, help, spec) VALUES(?1, ?2, ?3, ?4, ?5, ?6) ON CONFLICT(id) DO "
            "UPDATE SET kind = excluded.kind, unit = excluded.unit, help = excluded.help, spec = excluded.spec"},
           {&statements_->insert_series, "INSERT INTO series(id, metric_id, suffix, labels) VALUES(?1, ?2, ?3, ?4)"},
           {&statements_->insert_chunk,
            "INSERT INTO chunks(series_id, start_ms, end_ms, samples, data) VALUES(?1, ?2, ?3, ?4, ?5)"},
           {&statements_->insert_log, "INSERT INTO sample_log(seq, data) VALUES(?1, ?2)"},
           {&statements_->upsert_checkpoint, "INSERT OR REPLACE INTO open_chunks(group_id, log_seq, data) VALUES(?1, ?2, ?3)"},
           {&statements_->delete_checkpoint, "DELETE FROM open_chunks WHERE group_id = ?1"},
           {&statements_->prune_log, "DELETE FROM sample_log WHERE seq <= ?1"},
           {&statements_->upsert_block,
            "INSERT OR REPLACE INTO event_blocks(id, spec, start_ns, end_ns, records, raw_bytes, data) "
            "VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7)"}}) {
    auto statement = db_.prepare(entry.sql);
    if (!statement) return std::unexpected(statement.error());
    *entry.statement = std::move(*statement);
  }
  return {};
}

TsdbWriter::SeriesState& TsdbWriter::series_state(int64_t id) {
  SeriesState& state = series_[id];
  if (!state.checkpoint) {
    state.id = id;
    state.checkpoint = &checkpoints_[checkpoint_group(id)];
  }
  return state;
}

Result<void> TsdbWriter::load_state() {
  auto metrics = db_.prepare("SELECT id, name, kind, unit, help, spec FROM metrics");
  if (!metrics) return std::unexpected(metrics.error());
  while (true) {
    auto row = metrics->step();
    if (!row) return std::unexpected(row.error());
    if (!*row) break;
    MetricState state;
    state.id = metrics->column_int(0);
    std::string_view kind = metrics->column_text(2);
    state.kind = kind == "gauge" ? MetricKind::Gauge : kind == "histogram" ? MetricKind::Histogram : MetricKind::Counter;
    state.unit = metrics->column_text(3);
    state.help = metrics->column_text(4);
    state.spec = metrics->column_text(5);
    next_metric_id_ = std::max(next_metric_id_, state.id + 1);
    metrics_.emplace(std::string(metrics->column_text(1)), std::move(state));
  }
  auto series = db_.prepare("SELECT id, metric_id, suffix, labels FROM series");
  if (!series) return std::unexpected(series.error());
  while (true) {
    auto row = series->step();
    if (!row) return std::unexpected(row.error());
    if (!*row) break;
    int64_t id = series->column_int(0);
    series_ids_.emplace(series_key(series->column_int(1), series->column_text(2), series->column_text(3)), id);
    series_state(id);
    next_series_id_ = std::max(next_series_id_, id + 1);
  }
  auto next_block = db_.query_int("SELECT coalesce(max(id), 0) + 1 FROM event_blocks");
  if (!next_block) return std::unexpected(next_block.error());
  next_block_id_ = *next_block;
  return load_head();
}

// Open chunks from their checkpoints, then the samples logged after each checkpoint.
Result<void> TsdbWriter::load_head() {
  auto checkpoints = db_.prepare("SELECT group_id, log_seq, data FROM open_chunks");
  if (!checkpoints) return std::unexpected(checkpoints.error());
  while (true) {
    auto row = checkpoints->step();
    if (!row) return std::unexpected(row.error());
    if (!*row) break;
    int64_t group = checkpoints->column_int(0);
    Checkpoint& checkpoint = checkpoints_[group];
    checkpoint.log_seq = checkpoints->column_int(1);
    checkpoint.has_row = true;
    log_seq_ = std::max(log_seq_, checkpoint.log_seq);
    auto entries = decode_checkpoint(checkpoints->column_blob(2));
    if (!entries) {
      spdlog::warn("tsdb {}: open chunks of series group {} cannot be read ({}); they are dropped", options_.dir, group,
                   entries.error().message);
      checkpoint.must_rewrite = true;
      continue;
    }
    for (const CheckpointEntry& entry : *entries) {
      auto encoder = reopen_chunk(entry.chunk);
      auto known = series_.find(entry.series_id);
      if (!encoder || known == series_.end() || checkpoint_group(entry.series_id) != group) {
        spdlog::warn("tsdb {}: open chunk of series {} cannot be continued ({}); it is dropped", options_.dir,
                     entry.series_id, encoder ? "unknown series" : encoder.error().message);
        checkpoint.must_rewrite = true;
        continue;
      }
      SeriesState& state = known->second;
      state.last_time_ms = encoder->last_time();
      state.float_values = encoder->encoding() == ChunkEncoding::Xor;
      newest_sample_ms_ = std::max(newest_sample_ms_, encoder->last_time());
      state.open = std::move(*encoder);
    }
  }
  checkpoints->reset();
  auto log = db_.prepare("SELECT seq, data FROM sample_log ORDER BY seq");
  if (!log) return std::unexpected(log.error());
  AppendResult replayed;
  while (true) {
    auto row = log->step();
    if (!row) return std::unexpected(row.error());
    if (!*row) break;
    int64_t seq = log->column_int(0);
    log_seq_ = std::max(log_seq_, seq);
    full_checkpoint_due_ = true;  // the next commit makes the log redundant
    auto samples = decode_sample_log(log->column_blob(1));
    if (!samples) {
      spdlog::warn("tsdb {}: sample log row {} cannot be read ({}); its samples are lost", options_.dir, seq,
                   samples.error().message);
      continue;
    }
    for (const LoggedSample& sample : *samples) {
      auto known = series_.find(sample.series_id);
      if (known == series_.end() || seq <= known->second.checkpoint->log_seq) continue;
      append_sample(known->second, sample.time_ms, sample.value, replayed, false);
    }
  }
  return {};
}

TsdbWriter::MetricState& TsdbWriter::metric_for(const MetricFamily& family) {
  auto [it, inserted] = metrics_.try_emplace(family.name);
  MetricState& metric = it->second;
  if (inserted) {
    metric.id = next_metric_id_++;
    metric.dirty = true;
  }
  if (inserted || metric.kind != family.kind || metric.unit != family.unit || metric.help != family.help ||
      metric.spec != family.spec) {
    metric.kind = family.kind;
    metric.unit = family.unit;
    metric.help = family.help;
    metric.spec = family.spec;
    metric.dirty = true;
  }
  return metric;
}

TsdbWriter::SeriesState* TsdbWriter::series_for(int64_t metric_id, std::string_view suffix, const LabelSet& labels) {
  std::string labels_text = canonical_labels(labels);
  auto [it, inserted] = series_ids_.try_emplace(series_key(metric_id, suffix, labels_text), 0);
  if (inserted) {
    it->second = next_series_id_++;
    new_series_rows_.push_back({it->second, metric_id, std::string(suffix), std::move(labels_text)});
  }
  return &series_state(it->second);
}

TsdbWriter::SeriesGroup& TsdbWriter::group_for(const MetricFamily& family, MetricState& metric, const MetricSeries& series,
                                               std::string& key) {
  key.assign(family.name);
  for (const auto& [name, value] : series.labels) {
    key.push_back('\0');
    key.append(name);
    key.push_back('\x1f');
    key.append(value);
  }
  auto it = groups_.find(key);
  if (it != groups_.end() && it->second.kind == family.kind &&
      (family.kind != MetricKind::Histogram || it->second.bounds == series.histogram.bounds))
    return it->second;
  SeriesGroup group{family.kind, {}, {}};
  if (family.kind != MetricKind::Histogram) {
    group.series.push_back(series_for(metric.id, "", series.labels));
  } else {
    group.bounds = series.histogram.bounds;
    LabelSet labels;
    labels.reserve(series.labels.size() + 1);
    for (const auto& label : series.labels)
      if (label.first != "le") labels.push_back(label);
    auto le = std::lower_bound(labels.begin(), labels.end(), std::string("le"),
                               [](const auto& label, const std::string& name) { return label.first < name; });
    size_t le_index = static_cast<size_t>(le - labels.begin());
    labels.insert(le, {"le", ""});
    for (size_t i = 0; i <= group.bounds.size(); ++i) {
      labels[le_index].second = i < group.bounds.size() ? format_bound(group.bounds[i]) : "+Inf";
      group.series.push_back(series_for(metric.id, "bucket", labels));
    }
    labels.erase(labels.begin() + static_cast<std::ptrdiff_t>(le_index));
    group.series.push_back(series_for(metric.id, "sum", labels));
    group.series.push_back(series_for(metric.id, "count", labels));
  }
  return groups_.insert_or_assign(key, std::move(group)).first->second;
}

void TsdbWriter::close_chunk(SeriesState& series) {
  ChunkEncoder& chunk = *series.open;
  ClosedChunk closed{series.id, chunk.first_time(), chunk.last_time(), chunk.samples(), chunk.bytes()};
  closed_chunk_bytes_ += closed.data.size();
  closed_chunks_.push_back(std::move(closed));
  series.open.reset();
  // The chunk goes to `chunks` in the next commit: its checkpoint must stop holding it then.
  series.checkpoint->must_rewrite = true;
}

void TsdbWriter::append_sample(SeriesState& series, int64_t time_ms, double value, AppendResult& result, bool logged) {
  // Snapshot times jitter by a millisecond or two around a steady interval, and each jitter costs
  // 7 bits in every series. As Prometheus does for scrapes (--scrape.timestamp-tolerance), a time
  // within 1/1000 of the interval (at most kMaxTimeToleranceMs) of the expected one is stored as
  // the expected one; drift beyond that is kept.
  if (series.open && series.open->samples() >= 2) {
    int64_t interval = series.open->last_interval();
    int64_t expected = series.open->last_time() + interval;
    int64_t tolerance = std::min(kMaxTimeToleranceMs, interval / 1000);
    if (time_ms != expected && time_ms >= expected - tolerance && time_ms <= expected + tolerance) time_ms = expected;
  }
  if (time_ms <= series.last_time_ms) {
    ++result.rejected;
    return;
  }
  bool appended = false;
  if (series.open) {
    ChunkEncoder& chunk = *series.open;
    bool full = chunk.samples() >= limits_.max_samples || time_ms - chunk.first_time() >= limits_.max_span_ms ||
                chunk.size_bytes() >= limits_.max_bytes;
    appended = !full && chunk.append(time_ms, value);
    if (!appended) {
      if (!full) series.float_values = true;  // an integer chunk refused this value
      close_chunk(series);
    }
  }
  if (!appended) {
    bool integer = !series.float_values && integer_representable(value);
    series.open.emplace(integer ? ChunkEncoding::Integer : ChunkEncoding::Xor);
    series.open->append(time_ms, value);
  }
  series.last_time_ms = time_ms;
  series.checkpoint->changed = true;
  newest_sample_ms_ = std::max(newest_sample_ms_, time_ms);
  if (logged && !log_abandoned_) {
    pending_log_.add(series.id, time_ms, value);
    // Logging more than the open chunks hold is pointless: the next commit checkpoints them all
    // instead (this happens when data comes faster than flushes, e.g. catching up).
    if (pending_log_.raw_bytes() > std::max<uint64_t>(kMinCheckpointLogBytes, open_chunk_bytes_)) {
      pending_log_.clear();
      log_abandoned_ = true;
      full_checkpoint_due_ = true;
    }
  }
  ++result.accepted;
}

AppendResult TsdbWriter::append_metrics(const MetricsSnapshot& snapshot) {
  AppendResult result;
  auto time_ms = static_cast<int64_t>(snapshot.time_ns / 1'000'000);
  for (const MetricFamily& family : snapshot.families) {
    if (family.series.empty()) continue;
    MetricState& metric = metric_for(family);
    for (const MetricSeries& series : family.series) {
      SeriesGroup& group = group_for(family, metric, series, key_scratch_);
      if (family.kind != MetricKind::Histogram) {
        append_sample(*group.series[0], time_ms, series.value, result);
        continue;
      }
      // Cumulative bucket counts, as Prometheus stores them; a short counts list reads as zeros.
      const HistogramData& histogram = series.histogram;
      uint64_t cumulative = 0;
      size_t buckets = group.bounds.size() + 1;
      for (size_t i = 0; i < buckets; ++i) {
        if (i < histogram.counts.size()) cumulative += histogram.counts[i];
        append_sample(*group.series[i], time_ms, static_cast<double>(cumulative), result);
      }
      append_sample(*group.series[buckets], time_ms, histogram.sum, result);
      append_sample(*group.series[buckets + 1], time_ms, static_cast<double>(histogram.count), result);
    }
  }
  uncommitted_samples_ += result.accepted;
  return result;
}

void TsdbWriter::append_event(uint64_t time_ns, std::string_view spec, std::string_view line) {
  auto it = open_blocks_.find(spec);
  if (it == open_blocks_.end()) {
    it = open_blocks_.emplace(std::string(spec), OpenBlock{}).first;
    it->second.id = next_block_id_++;
  }
  OpenBlock& block = it->second;
  block.builder.add(time_ns, line);
  block.dirty = true;
  block.last_append_ms = steady_ms();
  ++uncommitted_records_;
  uncommitted_bytes_ += line.size() + 1;
  if (block.builder.raw_bytes() >= kBlockRawBytes || block.builder.records() >= kBlockRecords) finish_block(it->first, block);
}

void TsdbWriter::finish_block(const std::string& spec, OpenBlock& block) {
  const EventBlockBuilder& builder = block.builder;
  FullBlock full{block.id,         spec,
                 builder.min_time(), builder.max_time(),
                 builder.records(),  builder.raw_bytes(),
                 builder.compress(options_.event_compression_level)};
  full_block_bytes_ += full.data.size();
  full_blocks_.push_back(std::move(full));
  block = OpenBlock{};
  block.id = next_block_id_++;
}

void TsdbWriter::close_idle_chunks() {
  if (newest_sample_ms_ == INT64_MIN) return;
  for (auto& [id, series] : series_)
    if (series.open && series.open->last_time() < newest_sample_ms_ - limits_.idle_close_ms) close_chunk(series);
}

Result<void> TsdbWriter::write_checkpoints(int64_t log_seq, bool full_checkpoint, WrittenGroups& written_groups) {
  // Groups to rewrite: those that lost a chunk, and at a full checkpoint every one with news.
  std::unordered_map<int64_t, std::string> rows;
  for (auto& [group, checkpoint] : checkpoints_)
    if (checkpoint.must_rewrite || (full_checkpoint && checkpoint.changed)) rows.emplace(group, std::string());
  if (rows.empty() && !full_checkpoint) return {};
  uint64_t open_bytes = 0;
  for (auto& [id, series] : series_) {
    if (!series.open) continue;
    open_bytes += series.open->size_bytes();
    auto row = rows.find(checkpoint_group(id));
    if (row != rows.end()) append_checkpoint_entry(row->second, id, series.open->bytes());
  }
  if (full_checkpoint) open_chunk_bytes_ = open_bytes;
  Statements& s = *statements_;
  for (const auto& [group, row] : rows) {
    Result<void> done;
    if (!row.empty())
      done = s.upsert_checkpoint.bind(1, group).bind(2, log_seq).bind_blob(3, row).run();
    else if (checkpoints_[group].has_row)
      done = s.delete_checkpoint.bind(1, group).run();
    if (!done) return done;
    written_groups.emplace_back(group, !row.empty());
  }
  return {};
}

Result<void> TsdbWriter::write_pending(int64_t log_seq, std::string_view log_row, bool full_checkpoint,
                                       WrittenGroups& written_groups) {
  Statements& s = *statements_;
  for (auto& [name, metric] : metrics_) {
    if (!metric.dirty) continue;
    auto done = s.upsert_metric.bind(1, metric.id).bind(2, name).bind(3, to_string(metric.kind)).bind(4, metric.unit)
                    .bind(5, metric.help).bind(6, metric.spec).run();
    if (!done) return done;
  }
  for (const NewSeriesRow& row : new_series_rows_) {
    auto done = s.insert_series.bind(1, row.id).bind(2, row.metric_id).bind(3, row.suffix).bind(4, row.labels).run();
    if (!done) return done;
  }
  if (!log_row.empty())
    if (auto done = s.insert_log.bind(1, log_seq).bind_blob(2, log_row).run(); !done) return done;
  for (const ClosedChunk& chunk : closed_chunks_) {
    auto done = s.insert_chunk.bind(1, chunk.series_id).bind(2, chunk.start_ms).bind(3, chunk.end_ms)
                    .bind(4, static_cast<int64_t>(chunk.samples)).bind_blob(5, chunk.data).run();
    if (!done) return done;
  }
  if (auto done = write_checkpoints(log_seq, full_checkpoint, written_groups); !done) return done;
  if (full_checkpoint)
    if (auto done = s.prune_log.bind(1, log_seq).run(); !done) return done;
  auto write_block = [&](int64_t id, const std::string& spec, uint64_t start, uint64_t end, uint64_t records,
                         uint64_t raw_bytes, std::string_view data) {
    return s.upsert_block.bind(1, id).bind(2, spec).bind(3, static_cast<int64_t>(start)).bind(4, static_cast<int64_t>(end))
        .bind(5, static_cast<int64_t>(records)).bind(6, static_cast<int64_t>(raw_bytes)).bind_blob(7, data).run();
  };
  for (const FullBlock& block : full_blocks_)
    if (auto done = write_block(block.id, block.spec, block.start_ns, block.end_ns, block.records, block.raw_bytes, block.data); !done)
      return done;
  for (auto& [spec, block] : open_blocks_) {
    if (!block.dirty || block.builder.records() == 0) continue;
    const EventBlockBuilder& builder = block.builder;
    if (auto done = write_block(block.id, spec, builder.min_time(), builder.max_time(), builder.records(),
                                builder.raw_bytes(), builder.compress(options_.event_compression_level));
        !done)
      return done;
  }
  return {};
}

// While commits fail, closed chunks and finished blocks wait in memory; past the bound the oldest
// go (their samples and records are reported lost). The sample log bounds itself (append_sample).
void TsdbWriter::bound_pending() {
  size_t drop_chunks = 0;
  while (closed_chunk_bytes_ > kMaxPendingBytes && drop_chunks < closed_chunks_.size()) {
    closed_chunk_bytes_ -= closed_chunks_[drop_chunks].data.size();
    lost_samples_ += closed_chunks_[drop_chunks].samples;
    ++drop_chunks;
  }
  closed_chunks_.erase(closed_chunks_.begin(), closed_chunks_.begin() + static_cast<std::ptrdiff_t>(drop_chunks));
  size_t drop_blocks = 0;
  while (full_block_bytes_ > kMaxPendingBytes && drop_blocks < full_blocks_.size()) {
    full_block_bytes_ -= full_blocks_[drop_blocks].data.size();
    lost_records_ += full_blocks_[drop_blocks].records;
    uncommitted_records_ -= std::min<uint64_t>(uncommitted_records_, full_blocks_[drop_blocks].records);
    ++drop_blocks;
  }
  full_blocks_.erase(full_blocks_.begin(), full_blocks_.begin() + static_cast<std::ptrdiff_t>(drop_blocks));
}

Losses TsdbWriter::take_losses() {
  Losses losses{lost_samples_, lost_records_};
  lost_samples_ = lost_records_ = 0;
  return losses;
}

Result<CommitResult> TsdbWriter::commit() {
  close_idle_chunks();
  int64_t seq = log_seq_ + 1;
  // A full checkpoint once the log holds about as much as the open chunks (so checkpoints cost
  // at most as much as the log), or every so many commits. It includes this commit's samples,
  // so then they need no log row.
  bool full_checkpoint = full_checkpoint_due_ || commits_since_checkpoint_ + 1 >= limits_.commits_per_checkpoint ||
                         log_bytes_since_checkpoint_ + pending_log_.raw_bytes() / 2 >=
                             std::max<uint64_t>(kMinCheckpointLogBytes, open_chunk_bytes_);
  std::string log_row = !full_checkpoint && pending_log_.samples() > 0 ? pending_log_.compress() : std::string();
  WrittenGroups written_groups;
  Result<void> written = db_.exec("BEGIN IMMEDIATE");
  if (written) written = write_pending(seq, log_row, full_checkpoint, written_groups);
  if (written) written = db_.exec("COMMIT");
  if (!written) {
    (void)db_.exec("ROLLBACK");
    bound_pending();
    return std::unexpected(written.error());
  }
  log_seq_ = seq;
  pending_log_.clear();
  log_abandoned_ = false;
  if (full_checkpoint) {
    log_bytes_since_checkpoint_ = 0;
    commits_since_checkpoint_ = 0;
    full_checkpoint_due_ = false;
  } else {
    log_bytes_since_checkpoint_ += log_row.size();
    ++commits_since_checkpoint_;
  }
  for (auto [group, has_row] : written_groups) {
    Checkpoint& checkpoint = checkpoints_[group];
    checkpoint.log_seq = seq;
    checkpoint.changed = checkpoint.must_rewrite = false;
    checkpoint.has_row = has_row;
  }
  for (auto& [name, metric] : metrics_) metric.dirty = false;
  new_series_rows_.clear();
  closed_chunks_.clear();
  closed_chunk_bytes_ = 0;
  full_blocks_.clear();
  full_block_bytes_ = 0;
  int64_t now = steady_ms();
  for (auto it = open_blocks_.begin(); it != open_blocks_.end();) {
    OpenBlock& block = it->second;
    if (block.dirty) ++block.rewrites;
    block.dirty = false;
    // A block rewritten many times, or idle, is left as it is on disk; the next record starts a
    // new one. That bounds what a slow trickle of events costs in rewrites.
    if (block.rewrites >= kMaxBlockRewrites || now - block.last_append_ms > kIdleBlockMs)
      it = open_blocks_.erase(it);
    else
      ++it;
  }
  CommitResult result;
  result.samples = uncommitted_samples_;
  result.records = uncommitted_records_;
  result.bytes = uncommitted_bytes_;
  uncommitted_samples_ = uncommitted_records_ = uncommitted_bytes_ = 0;
  return result;
}

}  // namespace ea::tsdb
