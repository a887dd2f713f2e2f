#include "tsdb/head_format.h"

#include <zstd.h>

#include <bit>

#include "tsdb/varint.h"

namespace ea::tsdb {

namespace {
constexpr char kLogFormat = 1;
constexpr size_t kMaxLogBytes = 512u << 20;  // decompressed; a larger claim is corruption
}  // namespace

void SampleLogBuilder::add(int64_t series_id, int64_t time_ms, double value) {
  put_varint(raw_, zigzag(static_cast<int64_t>(static_cast<uint64_t>(series_id) - static_cast<uint64_t>(last_series_))));
  put_varint(raw_, zigzag(static_cast<int64_t>(static_cast<uint64_t>(time_ms) - static_cast<uint64_t>(last_time_))));
  uint64_t bits = std::bit_cast<uint64_t>(value);
  for (int shift = 56; shift >= 0; shift -= 8) raw_.push_back(static_cast<char>(bits >> shift));
  last_series_ = series_id;
  last_time_ = time_ms;
  ++count_;
}

std::string SampleLogBuilder::compress() const {
  std::string payload;
  put_varint(payload, count_);
  payload.append(raw_);
  std::string out(1 + ZSTD_compressBound(payload.size()), '\0');
  out[0] = kLogFormat;
  size_t size = ZSTD_compress(out.data() + 1, out.size() - 1, payload.data(), payload.size(), 1);
  out.resize(ZSTD_isError(size) ? 1 : 1 + size);  // cannot fail with a compressBound buffer
  return out;
}

void SampleLogBuilder::clear() {
  raw_.clear();
  count_ = 0;
  last_series_ = last_time_ = 0;
}

Result<std::vector<LoggedSample>> decode_sample_log(std::string_view bytes) {
  if (bytes.empty() || bytes[0] != kLogFormat) return fail("sample log row: unknown format");
  bytes.remove_prefix(1);
  unsigned long long size = ZSTD_getFrameContentSize(bytes.data(), bytes.size());
  if (size == ZSTD_CONTENTSIZE_ERROR || size == ZSTD_CONTENTSIZE_UNKNOWN || size > kMaxLogBytes)
    return fail("sample log row: not a zstd frame of a plausible size");
  std::string payload(size, '\0');
  size_t got = ZSTD_decompress(payload.data(), payload.size(), bytes.data(), bytes.size());
  if (ZSTD_isError(got) || got != size) return fail("sample log row: corrupt zstd frame");
  std::string_view rest = payload;
  uint64_t count = 0;
  if (!get_varint(rest, count) || count > rest.size() / 10) return fail("sample log row: bad sample count");
  std::vector<LoggedSample> samples(count);
  uint64_t series = 0, time = 0;
  for (LoggedSample& sample : samples) {
    uint64_t series_delta = 0, time_delta = 0;
    if (!get_varint(rest, series_delta) || !get_varint(rest, time_delta) || rest.size() < 8)
      return fail("sample log row: truncated");
    series += static_cast<uint64_t>(unzigzag(series_delta));
    time += static_cast<uint64_t>(unzigzag(time_delta));
    uint64_t bits = 0;
    for (int i = 0; i < 8; ++i) bits = (bits << 8) | static_cast<uint8_t>(rest[i]);
    rest.remove_prefix(8);
    sample = {static_cast<int64_t>(series), static_cast<int64_t>(time), std::bit_cast<double>(bits)};
  }
  return samples;
}

void append_checkpoint_entry(std::string& row, int64_t series_id, std::string_view chunk) {
  put_varint(row, static_cast<uint64_t>(series_id));
  put_varint(row, chunk.size());
  row.append(chunk);
}

Result<std::vector<CheckpointEntry>> decode_checkpoint(std::string_view row) {
  std::vector<CheckpointEntry> entries;
  while (!row.empty()) {
    uint64_t series_id = 0, length = 0;
    if (!get_varint(row, series_id) || !get_varint(row, length) || length > row.size())
      return fail("open chunk checkpoint: truncated");
    entries.push_back({static_cast<int64_t>(series_id), row.substr(0, length)});
    row.remove_prefix(length);
  }
  return entries;
}

}  // namespace ea::tsdb
