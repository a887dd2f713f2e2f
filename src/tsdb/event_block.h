// Events on disk: the JSON lines of one spec, in arrival order, with their record times, packed
// into zstd-compressed blocks.
//
// Block bytes: [format = 1][zstd frame of: uvarint count, count zigzag varint time deltas in ns
// (the first against 0), then the count JSON lines, each ending with '\n']
#pragma once
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "core/result.h"

namespace ea::tsdb {

// Accumulates one block's records; cheap to append, compressed on demand.
class EventBlockBuilder {
 public:
  void add(uint64_t time_ns, std::string_view line);  // `line` without its '\n'
  size_t records() const { return times_.size(); }
  size_t raw_bytes() const { return lines_.size(); }
  uint64_t min_time() const { return min_time_; }
  uint64_t max_time() const { return max_time_; }
  std::string compress(int level) const;

 private:
  std::vector<uint64_t> times_;
  std::string lines_;
  uint64_t min_time_ = UINT64_MAX;
  uint64_t max_time_ = 0;
};

struct StoredEvent {
  uint64_t time_ns = 0;
  uint32_t offset = 0;  // the line in DecodedBlock::text, without '\n'
  uint32_t length = 0;
};

struct DecodedBlock {
  std::string text;  // decompressed payload
  std::vector<StoredEvent> events;
  std::string_view line(const StoredEvent& event) const { return std::string_view(text).substr(event.offset, event.length); }
};

// `max_bytes` caps the decompressed size (hostile or corrupt input).
Result<DecodedBlock> decode_event_block(std::string_view bytes, size_t max_bytes = 256u << 20);

}  // namespace ea::tsdb
