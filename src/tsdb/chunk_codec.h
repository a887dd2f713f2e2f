// The store's sample codec, after Facebook's Gorilla (VLDB 2015): per-series chunks with
// delta-of-delta timestamps and XOR-compressed float values. One extension: a chunk whose values
// are all integers (counters, bucket counts, byte gauges) may use delta-of-delta integers instead
// of XOR, which costs 1 bit per sample for a counter growing at a steady rate.
//
// Chunk bytes: [encoding: 1 byte][sample count: uvarint][t0: zigzag varint]
//              [v0: 8 bytes big-endian IEEE-754 (xor) | zigzag varint (integer)]
//              [bit stream: for each further sample, timestamp dod code, then value code]
// Timestamp delta-of-delta codes (milliseconds; the first delta is coded against 0):
//   '0' = 0 | '10'+5 bits | '110'+14 bits | '1110'+20 bits | '1111'+64 bits (two's complement)
// XOR values: '0' = same bits | '10' + meaningful bits inside the previous leading/trailing
//   window | '11' + 6 bits leading zeros + 6 bits (meaningful bits - 1) + meaningful bits.
// Integer values, delta-of-delta: '0' = 0 | '10'+6 | '110'+13 | '1110'+20 | '11110'+32 | '11111'+64.
// All arithmetic wraps (two's complement), so any int64 time decodes exactly; values keep every
// bit (NaN payloads, -0.0, infinities).
#pragma once
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "core/result.h"
#include "tsdb/bit_stream.h"

namespace ea::tsdb {

enum class ChunkEncoding : uint8_t { Xor = 1, Integer = 2 };

struct Sample {
  int64_t time_ms = 0;
  double value = 0;
};

// Exactly representable in an integer chunk: finite, integral, not -0.0, |v| <= 2^53.
bool integer_representable(double value);

class ChunkEncoder {
 public:
  explicit ChunkEncoder(ChunkEncoding encoding) : encoding_(encoding) {}
  // False (and nothing written) when the sample cannot go into this chunk: its time is not after
  // the last one, or an integer chunk is given a value it cannot hold. The caller cuts a new chunk.
  bool append(int64_t time_ms, double value);

  ChunkEncoding encoding() const { return encoding_; }
  uint32_t samples() const { return samples_; }
  int64_t first_time() const { return first_time_; }
  int64_t last_time() const { return last_time_; }
  // The interval between the last two samples (0 with fewer than two).
  int64_t last_interval() const { return static_cast<int64_t>(last_time_delta_); }
  // Size of bytes() without building it.
  size_t size_bytes() const { return header_.size() + 6 + (bits_.bit_count() + 7) / 8; }
  std::string bytes() const;

 private:
  void write_time(int64_t time_ms);
  void write_xor_value(double value);
  void write_integer_value(int64_t value);

  ChunkEncoding encoding_;
  uint32_t samples_ = 0;
  std::string header_;  // t0 and v0, written with the first sample
  BitWriter bits_;
  int64_t first_time_ = 0;
  int64_t last_time_ = 0;
  uint64_t last_time_delta_ = 0;
  uint64_t last_value_bits_ = 0;  // xor: the IEEE-754 bits; integer: the int64 value
  uint64_t last_value_delta_ = 0;
  unsigned leading_ = 0xff;  // xor window of the last value written with a new window
  unsigned trailing_ = 0;
};

// Every sample of a chunk, in order; fails on truncated or malformed bytes.
Result<std::vector<Sample>> decode_chunk(std::string_view bytes);
// An encoder holding the chunk's samples, ready to take more (open chunks after a restart).
Result<ChunkEncoder> reopen_chunk(std::string_view bytes);

}  // namespace ea::tsdb
