// How the store keeps the chunks still being filled (the "head", as Prometheus calls it) crash-safe
// without rewriting them at every flush:
//   - every commit appends one sample-log row: the samples appended since the previous commit;
//   - now and then (and whenever one of their chunks is closed) the open chunks are checkpointed,
//     64 series to a row, each row remembering the last log row it includes;
//   - after a restart, the checkpoints are loaded and the newer log rows replayed on top.
// A full checkpoint makes every log row redundant, and they are deleted.
//
// Sample-log row bytes: [format = 1][zstd frame of: uvarint count, then per sample: zigzag varint
//   series id delta, zigzag varint time delta (ms), 8 bytes IEEE-754 big-endian]
// Checkpoint row bytes: per open chunk: uvarint series id, uvarint length, chunk bytes.
#pragma once
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "core/result.h"

namespace ea::tsdb {

// Series ids 64*g ... 64*g+63 share checkpoint row g.
inline int64_t checkpoint_group(int64_t series_id) { return series_id >> 6; }

struct LoggedSample {
  int64_t series_id = 0;
  int64_t time_ms = 0;
  double value = 0;
};

// Accumulates the samples of one commit.
class SampleLogBuilder {
 public:
  void add(int64_t series_id, int64_t time_ms, double value);
  size_t samples() const { return count_; }
  size_t raw_bytes() const { return raw_.size(); }
  std::string compress() const;
  void clear();

 private:
  std::string raw_;
  size_t count_ = 0;
  int64_t last_series_ = 0, last_time_ = 0;
};

Result<std::vector<LoggedSample>> decode_sample_log(std::string_view bytes);

struct CheckpointEntry {
  int64_t series_id = 0;
  std::string_view chunk;  // into the row's bytes
};

void append_checkpoint_entry(std::string& row, int64_t series_id, std::string_view chunk);
Result<std::vector<CheckpointEntry>> decode_checkpoint(std::string_view row);

}  // namespace ea::tsdb
