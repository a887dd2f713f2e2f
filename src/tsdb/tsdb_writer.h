// The store's write side, single-threaded: metric snapshots become per-series chunks, event lines
// become per-spec blocks, all in memory until commit() writes them in one SQLite transaction.
// Each commit logs the samples it adds (head_format.h) and rewrites the open event blocks; open
// chunks are checkpointed now and then and continued after a restart, so a crash loses only what
// was appended since the last commit. TsdbSink runs one on its own thread.
#pragma once
#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "core/result.h"
#include "metrics/metric.h"
#include "tsdb/chunk_codec.h"
#include "tsdb/event_block.h"
#include "tsdb/head_format.h"
#include "tsdb/sqlite.h"
#include "tsdb/store_lock.h"

namespace ea::tsdb {

struct WriterOptions {
  std::string dir;
  std::chrono::milliseconds retention{0};  // 0 = keep by age forever
  uint64_t max_size = 0;                   // bytes of database content; 0 = unbounded
  int event_compression_level = 3;         // zstd
};

// When a chunk is cut: whichever comes first. At a 10 s interval 480 samples span 80 minutes;
// long chunks spread the per-row cost of SQLite over many samples (Prometheus cuts at 120), and
// cost nothing at flushes (they are checkpointed, not rewritten, see head_format.h).
struct ChunkLimits {
  uint32_t max_samples = 480;
  int64_t max_span_ms = 2 * 3600 * 1000;
  size_t max_bytes = 4096;
  // A series with no sample for this long (behind the newest sample of the store) has its chunk
  // closed and its memory released.
  int64_t idle_close_ms = 2 * 3600 * 1000;
  // Open chunks are checkpointed in full at least every this many commits (see head_format.h).
  unsigned commits_per_checkpoint = 120;
};

struct AppendResult {
  uint64_t accepted = 0;
  uint64_t rejected = 0;  // not after the series' last sample (clock went back, duplicate)
};

struct CommitResult {
  uint64_t samples = 0;  // samples made durable by this commit
  uint64_t records = 0;  // event records made durable
  uint64_t bytes = 0;    // their JSON bytes
};

// Dropped because commits kept failing and what waits for them in memory is bounded.
struct Losses {
  uint64_t samples = 0;
  uint64_t records = 0;
};

struct RetentionResult {
  uint64_t chunks_deleted = 0;
  uint64_t blocks_deleted = 0;
  uint64_t series_deleted = 0;
  uint64_t pages_released = 0;
  bool over_size = false;  // still above max_size with nothing left to delete
};

class TsdbWriter {
 public:
  static Result<std::unique_ptr<TsdbWriter>> open(WriterOptions options, ChunkLimits limits = {});
  ~TsdbWriter();

  AppendResult append_metrics(const MetricsSnapshot& snapshot);
  // One event record: its time, owning spec and JSON line (without '\n').
  void append_event(uint64_t time_ns, std::string_view spec, std::string_view line);
  // Writes everything appended since the last commit in one transaction. On failure nothing is
  // lost yet: the next commit retries (memory held for that is bounded; beyond it the oldest
  // closed chunks and blocks are dropped and reported by take_losses()).
  Result<CommitResult> commit();
  Losses take_losses();
  // Deletes what is older than the retention or beyond max_size (oldest first), then the
  // series and metrics left without data, and gives free pages back to the file system when
  // the file is past max_size or mostly free.
  Result<RetentionResult> enforce_retention(int64_t now_ms);

  uint64_t uncommitted_samples() const { return uncommitted_samples_; }
  uint64_t uncommitted_records() const { return uncommitted_records_; }
  const std::string& database_path() const { return db_.path(); }

 private:
  struct MetricState {
    int64_t id = 0;
    MetricKind kind = MetricKind::Counter;
    std::string unit, help, spec;
    bool dirty = false;  // row to upsert
  };
  // One checkpoint row of open chunks (64 series).
  struct Checkpoint {
    int64_t log_seq = 0;        // the last sample-log row the row includes
    bool has_row = false;
    bool changed = false;       // samples appended since the row was written
    bool must_rewrite = false;  // a chunk of the group was closed or dropped since
  };
  struct SeriesState {
    int64_t id = 0;
    Checkpoint* checkpoint = nullptr;
    std::optional<ChunkEncoder> open;
    int64_t last_time_ms = INT64_MIN;
    bool float_values = false;  // a value did not fit an integer chunk: use XOR from now on
  };
  // The stored series behind one MetricSeries: one for counters and gauges; the buckets, _sum
  // and _count of a histogram.
  struct SeriesGroup {
    MetricKind kind;
    std::vector<double> bounds;
    std::vector<SeriesState*> series;
  };
  struct ClosedChunk {
    int64_t series_id, start_ms, end_ms;
    uint32_t samples;
    std::string data;
  };
  struct OpenBlock {
    int64_t id = 0;
    EventBlockBuilder builder;
    bool dirty = false;
    int64_t last_append_ms = 0;
    unsigned rewrites = 0;  // times written while open
  };
  struct FullBlock {
    int64_t id;
    std::string spec;
    uint64_t start_ns, end_ns, records, raw_bytes;
    std::string data;
  };

  TsdbWriter(WriterOptions options, ChunkLimits limits, StoreLock lock, Database db);
  Result<void> load_state();
  Result<void> load_head();
  SeriesState& series_state(int64_t id);
  Result<void> prepare_statements();
  MetricState& metric_for(const MetricFamily& family);
  SeriesGroup& group_for(const MetricFamily& family, MetricState& metric, const MetricSeries& series, std::string& key);
  SeriesState* series_for(int64_t metric_id, std::string_view suffix, const LabelSet& labels);
  // `logged`: false while replaying the sample log after a restart.
  void append_sample(SeriesState& series, int64_t time_ms, double value, AppendResult& result, bool logged = true);
  void close_chunk(SeriesState& series);
  void close_idle_chunks();
  void finish_block(const std::string& spec, OpenBlock& block);
  using WrittenGroups = std::vector<std::pair<int64_t, bool>>;  // group, row written (else deleted)
  Result<void> write_pending(int64_t log_seq, std::string_view log_row, bool full_checkpoint, WrittenGroups& written_groups);
  Result<void> write_checkpoints(int64_t log_seq, bool full_checkpoint, WrittenGroups& written_groups);
  void bound_pending();
  Result<void> delete_by_age(int64_t now_ms, RetentionResult& result);
  Result<void> delete_by_size(RetentionResult& result);
  Result<void> delete_orphans(RetentionResult& result);
  Result<void> release_free_pages(RetentionResult& result);
  Result<int64_t> used_bytes();

  WriterOptions options_;
  ChunkLimits limits_;
  StoreLock lock_;
  Database db_;
  struct Statements;
  std::unique_ptr<Statements> statements_;

  std::unordered_map<std::string, MetricState> metrics_;        // by family name
  std::unordered_map<std::string, int64_t> series_ids_;         // "metric_id|suffix|labels" -> id
  std::unordered_map<int64_t, SeriesState> series_;             // by id; node addresses are stable
  std::unordered_map<int64_t, Checkpoint> checkpoints_;         // by group; node addresses are stable
  std::unordered_map<std::string, SeriesGroup> groups_;         // by family name + labels
  struct NewSeriesRow {
    int64_t id, metric_id;
    std::string suffix, labels;
  };
  std::vector<NewSeriesRow> new_series_rows_;
  SampleLogBuilder pending_log_;  // the samples of the next commit
  int64_t log_seq_ = 0;           // the last sample-log row written
  uint64_t log_bytes_since_checkpoint_ = 0;
  unsigned commits_since_checkpoint_ = 0;
  bool full_checkpoint_due_ = false;
  bool log_abandoned_ = false;  // this commit's samples go to a full checkpoint, not the log
  uint64_t open_chunk_bytes_ = 0;  // all open chunks, as of the last full checkpoint
  std::vector<ClosedChunk> closed_chunks_;
  size_t closed_chunk_bytes_ = 0;
  struct StringHash {
    using is_transparent = void;
    size_t operator()(std::string_view text) const { return std::hash<std::string_view>{}(text); }
  };
  std::unordered_map<std::string, OpenBlock, StringHash, std::equal_to<>> open_blocks_;  // by spec
  std::vector<FullBlock> full_blocks_;
  size_t full_block_bytes_ = 0;

  int64_t next_metric_id_ = 1, next_series_id_ = 1, next_block_id_ = 1;
  int64_t newest_sample_ms_ = INT64_MIN;
  uint64_t uncommitted_samples_ = 0;
  uint64_t uncommitted_records_ = 0;
  uint64_t uncommitted_bytes_ = 0;
  uint64_t lost_samples_ = 0, lost_records_ = 0;
  std::string key_scratch_;
};

}  // namespace ea::tsdb
