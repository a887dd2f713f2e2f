// The Kafka output's local spool: a bounded, ordered, crash-tolerant log of records not yet
// acknowledged by Kafka. Every record the output accepts is appended here first; a reader hands
// records to the producer in order and commits them once Kafka has acknowledged them, so the
// spool always holds exactly what is still owed to Kafka (also across agent restarts).
//
// On disk (one directory, normally on tmpfs): numbered segment files "<20 digits>.seg" of frames
// (kafka_spool_frame.h), a "cursor" file naming the first unacknowledged position, and a "lock"
// file held by the one agent using the directory. Segments wholly before the cursor are deleted.
//
// Not thread-safe: the caller serialises every call.
#pragma once
#include <compare>
#include <cstdint>
#include <deque>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "core/result.h"
#include "sink/kafka_topics.h"

namespace ea {

struct KafkaSpoolOptions {
  std::string dir;
  uint64_t max_bytes = 256ull << 20;  // the spool never grows past this on disk
  uint64_t segment_bytes = 0;         // 0: max_bytes / 8, kept between 4 KiB and 16 MiB
};

// A place in the spool: (segment id, byte offset). Positions in deleted segments sort before the
// next existing segment, so they stay meaningful after cleanup.
struct SpoolPosition {
  uint64_t segment = 0;
  uint64_t offset = 0;
  auto operator<=>(const SpoolPosition&) const = default;
};

struct SpoolEntry {
  KafkaDataKind kind = KafkaDataKind::events;
  uint8_t flags = 0;
  uint64_t time_ns = 0;
  std::string_view key;
  std::string_view value;
};

// A record read back. Views stay valid until the next call on the spool.
struct SpooledRecord {
  KafkaDataKind kind = KafkaDataKind::events;
  uint8_t flags = 0;
  uint64_t time_ns = 0;
  bool from_earlier_run = false;  // found in the directory when the spool was opened
  std::string_view key;
  std::string_view value;
  SpoolPosition start;
  SpoolPosition end;  // commit(end) marks this record (and all before it) delivered
};

struct SpoolAppendOutcome {
  size_t written = 0;
  size_t over_bound = 0;  // refused because the spool would grow past max_bytes
  size_t failed = 0;      // could not be written (I/O error, oversized record): see `error`
  std::string error;
};

// Work for KafkaSpool::run_sync(), taken by plan_sync().
struct SpoolSyncPlan {
  std::string dir;
  std::vector<int> fds;                 // own descriptors of segments with unsynced appends
  std::optional<SpoolPosition> cursor;  // the commit position to save, if it moved
  SpoolSyncPlan() = default;
  SpoolSyncPlan(SpoolSyncPlan&&) = default;
  SpoolSyncPlan& operator=(SpoolSyncPlan&&) = default;
  ~SpoolSyncPlan();
};

struct KafkaSpoolStats {
  uint64_t bytes = 0;     // segment bytes on disk now
  uint64_t records = 0;   // records not yet committed (owed to Kafka)
  uint64_t unread = 0;    // records not yet read
  uint64_t segments = 0;
  uint64_t appended = 0;                // records written since open
  uint64_t over_bound = 0;              // records refused by the bound since open
  uint64_t write_failures = 0;          // records that could not be written since open
  uint64_t earlier_run_records = 0;     // records found at open
  uint64_t corrupt_bytes_skipped = 0;   // damaged or torn bytes skipped while reading
  uint64_t unknown_kind_skipped = 0;    // intact records of a data kind this version does not know
};

class KafkaSpool {
 public:
  static Result<std::unique_ptr<KafkaSpool>> open(KafkaSpoolOptions options);
  ~KafkaSpool();
  KafkaSpool(const KafkaSpool&) = delete;
  KafkaSpool& operator=(const KafkaSpool&) = delete;

  // Appends in order. Each record that would take the spool past max_bytes is refused and
  // counted; the others are written (a refused record leaves a gap, never a reordering).
  SpoolAppendOutcome append(std::span<const SpoolEntry> entries);

  // The next record after the read position, or nothing when every record has been read.
  std::optional<SpooledRecord> read_next();
  // Steps the read position back to before `record`, the last one read.
  void unread(const SpooledRecord& record);
  // Kafka has the record ending at `end` and every record before it: frees whole segments.
  void commit(SpoolPosition end);
  // Reads again from the commit position (after the producer lost what it held).
  void rewind();
  // Makes the appended data and the commit position durable (fdatasync, cursor file):
  // plan_sync() under the caller's lock (cheap), then run_sync() without it (the slow part, so
  // writers never wait for the disk); one run_sync() at a time. sync() does both.
  SpoolSyncPlan plan_sync();
  static Result<void> run_sync(SpoolSyncPlan& plan);
  Result<void> sync();
  // After a failed run_sync(): the next plan saves the cursor again.
  void retry_cursor() { persisted_commit_ = SpoolPosition{UINT64_MAX, UINT64_MAX}; }

  const KafkaSpoolStats& stats() const { return stats_; }
  const KafkaSpoolOptions& options() const { return options_; }
  SpoolPosition commit_position() const { return commit_; }

 private:
  struct Segment {
    uint64_t id = 0;
    uint64_t size = 0;
    bool from_earlier_run = false;
  };

  explicit KafkaSpool(KafkaSpoolOptions options);
  Result<void> load();
  std::string segment_path(uint64_t id) const;
  Segment* segment_at_or_after(uint64_t id);
  bool is_open_tail(const Segment& segment) const;
  Result<void> open_tail();
  void close_tail();
  bool flush_pending(SpoolAppendOutcome& outcome, size_t records);
  std::string_view load_bytes(const Segment& segment, uint64_t offset, size_t want);
  uint64_t resync(const Segment& segment, uint64_t offset);
  void drop_committed_segments();
  void remove_front_segment();

  KafkaSpoolOptions options_;
  int lock_fd_ = -1;
  std::deque<Segment> segments_;
  int tail_fd_ = -1;  // the last segment, open for appends
  bool tail_unsynced_ = false;     // appended since the last plan_sync()
  std::vector<int> unsynced_fds_;  // rolled segments not yet synced (own descriptors)
  uint64_t next_segment_id_ = 1;
  std::string pending_;  // frames encoded by append(), written with one write() per segment
  SpoolPosition read_;
  SpoolPosition commit_;
  SpoolPosition persisted_commit_;  // as of the last plan_sync()
  bool counting_at_open_ = false;  // the open-time scan counts damage in earlier segments once
  int read_fd_ = -1;
  uint64_t read_fd_segment_ = 0;
  std::string buffer_;  // bytes of buffer_segment_ from buffer_offset_
  uint64_t buffer_segment_ = 0;
  uint64_t buffer_offset_ = 0;
  KafkaSpoolStats stats_;
};

}  // namespace ea
