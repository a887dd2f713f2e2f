#include "l7/http2_frame_reader.h"

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <string_view>

namespace ea::l7 {
namespace {

constexpr std::string_view kPreface = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
constexpr size_t kHeaderSize = 9;

struct FrameHeader {
  uint32_t length;
  uint8_t type;
  uint8_t flags;
  uint32_t stream_id;
  bool reserved_bit;
};

FrameHeader parse_header(const uint8_t* p) {
  FrameHeader h;
  h.length = (uint32_t{p[0]} << 16) | (uint32_t{p[1]} << 8) | p[2];
  h.type = p[3];
  h.flags = p[4];
  uint32_t sid = (uint32_t{p[5]} << 24) | (uint32_t{p[6]} << 16) | (uint32_t{p[7]} << 8) | p[8];
  h.reserved_bit = (sid & 0x80000000u) != 0;
  h.stream_id = sid & 0x7fffffffu;
  return h;
}

// Strict checks used only while hunting for a boundary: known types with the flags, lengths and
// stream ids RFC 9113 allows, and small stream ids (real connections rarely pass 2^20 streams).
bool plausible_while_hunting(const FrameHeader& h) {
  if (h.reserved_bit || h.length > Http2FrameReader::kHuntMaxFrameSize || h.stream_id >= (1u << 20))
    return false;
  bool on_stream = h.stream_id != 0;
  switch (static_cast<Http2FrameType>(h.type)) {
    case Http2FrameType::Data: return on_stream && (h.flags & ~0x09) == 0;
    case Http2FrameType::Headers: return on_stream && (h.flags & ~0x2d) == 0 && h.length > 0;
    case Http2FrameType::Priority: return on_stream && h.flags == 0 && h.length == 5;
    case Http2FrameType::RstStream: return on_stream && h.flags == 0 && h.length == 4;
    case Http2FrameType::Settings:
      return !on_stream && (h.flags & ~0x1) == 0 && h.length % 6 == 0 && (h.flags == 0 || h.length == 0);
    case Http2FrameType::Ping: return !on_stream && (h.flags & ~0x1) == 0 && h.length == 8;
    case Http2FrameType::GoAway: return !on_stream && h.flags == 0 && h.length >= 8;
    case Http2FrameType::WindowUpdate: return h.flags == 0 && h.length == 4;
    default: return false;  // CONTINUATION needs its HEADERS; PUSH_PROMISE and unknown types are rare
  }
}

}  // namespace

Http2FrameReader::Http2FrameReader(Start start)
    : state_(start == Start::ClientPreface   ? State::Preface
             : start == Start::FrameBoundary ? State::Synced
                                             : State::Hunting) {}

void Http2FrameReader::lose_sync() {
  if (state_ == State::Hunting) return;
  state_ = State::Hunting;
  ++sync_losses_;
  // The current frame start is known bad; hunt from the next byte.
  if (pos_ < buffer_.size()) {
    ++pos_;
    ++bytes_skipped_;
  }
}

void Http2FrameReader::note_gap() {
  bytes_skipped_ += buffer_.size() - pos_;
  buffer_.clear();
  pos_ = 0;
  // Counted as a loss even when already hunting: the caller keys "frames may have been lost"
  // on this counter.
  state_ = State::Hunting;
  ++sync_losses_;
}

void Http2FrameReader::set_max_frame_size(uint32_t size) {
  // RFC 9113 6.5.2: valid values are 2^14 .. 2^24-1.
  max_frame_size_ = std::clamp<uint32_t>(size, kDefaultMaxFrameSize, (1u << 24) - 1);
}

void Http2FrameReader::feed(std::span<const uint8_t> bytes, const FrameCallback& on_frame) {
  buffer_.insert(buffer_.end(), bytes.begin(), bytes.end());
  run(on_frame);
  buffer_.erase(buffer_.begin(), buffer_.begin() + static_cast<std::ptrdiff_t>(pos_));
  pos_ = 0;
}

// Advances pos_ to a confirmed boundary. False = need more bytes. A candidate whose payload has
// not fully arrived does not block the scan: a later candidate confirmed by the bytes at hand
// wins (real frames are contiguous, so a true earlier boundary would confirm as well).
bool Http2FrameReader::hunt() {
  size_t pending = SIZE_MAX;  // first plausible candidate still waiting for bytes
  size_t scan = pos_;
  for (; buffer_.size() - scan >= kHeaderSize; ++scan) {
    const uint8_t* p = buffer_.data() + scan;
    size_t available = buffer_.size() - scan;
    bool confirmed = false;
    if (available >= kPreface.size() && std::memcmp(p, kPreface.data(), kPreface.size()) == 0) {
      bytes_skipped_ += scan - pos_;
      pos_ = scan + kPreface.size();
      state_ = State::Synced;
      ++resyncs_;
      return true;
    }
    FrameHeader h = parse_header(p);
    if (!plausible_while_hunting(h)) continue;
    size_t next = kHeaderSize + h.length;
    if (available < next + kHeaderSize) {
      pending = std::min(pending, scan);
      continue;
    }
    FrameHeader following = parse_header(p + next);
    confirmed = plausible_while_hunting(following) ||
                following.type == static_cast<uint8_t>(Http2FrameType::Continuation);
    if (confirmed) {
      bytes_skipped_ += scan - pos_;
      pos_ = scan;
      state_ = State::Synced;
      ++resyncs_;
      return true;
    }
  }
  size_t keep_from = std::min(pending, scan);  // rejected bytes are dropped
  bytes_skipped_ += keep_from - pos_;
  pos_ = keep_from;
  return false;
}

void Http2FrameReader::run(const FrameCallback& on_frame) {
  for (;;) {
    size_t available = buffer_.size() - pos_;
    if (state_ == State::Preface) {
      if (available == 0) return;  // (memcmp on an empty, possibly null, buffer is undefined)
      size_t n = std::min(available, kPreface.size());
      if (std::memcmp(buffer_.data() + pos_, kPreface.data(), n) != 0) {
        state_ = State::Hunting;  // not the start of a connection after all
        ++sync_losses_;
        continue;
      }
      if (n < kPreface.size()) return;
      pos_ += kPreface.size();
      state_ = State::Synced;
      continue;
    }
    if (state_ == State::Hunting) {
      if (!hunt()) return;
      continue;
    }
    if (available < kHeaderSize) return;
    FrameHeader h = parse_header(buffer_.data() + pos_);
    if (h.length > max_frame_size_) {
      lose_sync();
      continue;
    }
    if (available < kHeaderSize + h.length) return;
    Http2Frame frame{h.type, h.flags, h.stream_id,
                     std::span<const uint8_t>(buffer_.data() + pos_ + kHeaderSize, h.length)};
    pos_ += kHeaderSize + h.length;
    on_frame(frame);
  }
}

}  // namespace ea::l7
