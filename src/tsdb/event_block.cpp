#include "tsdb/event_block.h"

#include <zstd.h>

#include <algorithm>

#include <fmt/format.h>

#include "tsdb/varint.h"

namespace ea::tsdb {

namespace {
constexpr char kBlockFormat = 1;
}

void EventBlockBuilder::add(uint64_t time_ns, std::string_view line) {
  times_.push_back(time_ns);
  lines_.append(line);
  lines_.push_back('\n');
  min_time_ = std::min(min_time_, time_ns);
  max_time_ = std::max(max_time_, time_ns);
}

std::string EventBlockBuilder::compress(int level) const {
  std::string payload;
  payload.reserve(times_.size() * 4 + lines_.size() + 10);
  put_varint(payload, times_.size());
  uint64_t previous = 0;
  for (uint64_t time : times_) {
    put_varint(payload, zigzag(static_cast<int64_t>(time - previous)));
    previous = time;
  }
  payload.append(lines_);
  std::string out(1 + ZSTD_compressBound(payload.size()), '\0');
  out[0] = kBlockFormat;
  size_t size = ZSTD_compress(out.data() + 1, out.size() - 1, payload.data(), payload.size(), level);
  // Compressing into a buffer of ZSTD_compressBound bytes cannot fail.
  out.resize(ZSTD_isError(size) ? 1 : 1 + size);
  return out;
}

Result<DecodedBlock> decode_event_block(std::string_view bytes, size_t max_bytes) {
  if (bytes.empty() || bytes[0] != kBlockFormat) return fail("event block: unknown format");
  bytes.remove_prefix(1);
  unsigned long long size = ZSTD_getFrameContentSize(bytes.data(), bytes.size());
  if (size == ZSTD_CONTENTSIZE_ERROR || size == ZSTD_CONTENTSIZE_UNKNOWN) return fail("event block: not a zstd frame with a size");
  if (size > max_bytes || size > UINT32_MAX) return failf("event block: {} bytes decompressed exceeds the {} byte limit", size, max_bytes);
  DecodedBlock block;
  block.text.resize(size);
  size_t got = ZSTD_decompress(block.text.data(), block.text.size(), bytes.data(), bytes.size());
  if (ZSTD_isError(got) || got != size) return failf("event block: corrupt: {}", ZSTD_isError(got) ? ZSTD_getErrorName(got) : "short");
  std::string_view rest = block.text;
  uint64_t count = 0;
  if (!get_varint(rest, count) || count > rest.size()) return fail("event block: bad record count");
  block.events.resize(count);
  uint64_t time = 0;
  for (auto& event : block.events) {
    uint64_t delta = 0;
    if (!get_varint(rest, delta)) return fail("event block: truncated times");
    time += static_cast<uint64_t>(unzigzag(delta));
    event.time_ns = time;
  }
  size_t position = block.text.size() - rest.size();
  for (auto& event : block.events) {
    size_t newline = block.text.find('\n', position);
    if (newline == std::string::npos) return fail("event block: fewer lines than records");
    event.offset = static_cast<uint32_t>(position);
    event.length = static_cast<uint32_t>(newline - position);
    position = newline + 1;
  }
  return block;
}

}  // namespace ea::tsdb
